"""LabelMe-style JSON: one file per image, each landmark a ``point`` shape with a label.

A file holds ``imagePath`` (relative to the file) and ``shapes``: ``{"label": "PS1", "points":
[[x, y]], "shape_type": "point"}``. Shapes of other types (polygons, boxes) are ignored. The landmark
names are the point labels of all files, in order of first appearance; a landmark absent from an
image is missing there (NaN). Coordinates are read as written. A folder of such files is read as
one records set; a sub-folder name between the folder and a file is that file's group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sslkeypoint.data.records import KeypointRecord, _json_coordinate, _resolve, check_pixel_size
from sslkeypoint.data.text import read_json

__all__ = ["is_labelme", "read_labelme"]


def is_labelme(data: Any) -> bool:
    """Whether parsed JSON is a LabelMe-style file."""
    return isinstance(data, Mapping) and "shapes" in data and "imagePath" in data


def _points(p: Path, data: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    found: dict[str, tuple[float, float]] = {}
    for i, shape in enumerate(data["shapes"]):
        if not isinstance(shape, Mapping) or shape.get("shape_type", "point") != "point":
            continue
        where = f"{p}, shapes[{i}]"
        label = str(shape.get("label", "")).strip()
        if not label:
            raise ValueError(f"{where}: a point without a label")
        pts = shape.get("points")
        if not isinstance(pts, list) or len(pts) != 1 or not isinstance(pts[0], list) or len(pts[0]) != 2:
            raise ValueError(f"{where} ({label!r}): expected 'points': [[x, y]]; got {pts!r}"[:300])
        try:
            x, y = (_json_coordinate(v) for v in pts[0])
        except ValueError as err:
            raise ValueError(f"{where} ({label!r}): {err}") from None
        if label in found:
            raise ValueError(f"{where}: a second point labelled {label!r} in this image")
        found[label] = (x, y)
    return found


def read_labelme(files: list[Path], root: Path | None = None) -> tuple[list[KeypointRecord], tuple[str, ...]]:
    """Records from LabelMe-style files (see the module's documentation)."""
    parsed: list[tuple[Path, Mapping[str, Any], dict[str, tuple[float, float]]]] = []
    names: dict[str, None] = {}
    for f in files:
        data = read_json(f)
        if not is_labelme(data):
            raise ValueError(f"{f}: expected a LabelMe file with 'imagePath' and 'shapes'")
        points = _points(f, data)
        names.update(dict.fromkeys(points))
        parsed.append((f, data, points))
    order = tuple(names)
    records = []
    for f, data, points in parsed:
        kp = np.asarray([points.get(n, (math.nan, math.nan)) for n in order], dtype=np.float64).reshape(-1, 2)
        group = None
        if root is not None and f.parent != root:
            group = f.relative_to(root).parts[0]
        size = check_pixel_size(data.get("pixel_size_mm"), f"{f}, field 'pixel_size_mm'")
        records.append(KeypointRecord(_resolve(f.parent, str(data["imagePath"])), kp, None, {"file": str(f)}, group, size))
    return records, order
