"""The project's own JSON layout: a list of records, or ``{"keypoint_names": [...], "records": [...]}``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sslkeypoint.data.records import (
    KeypointRecord,
    _json_coordinate,
    _resolve,
    check_pixel_size,
    parse_visible,
)

__all__ = ["is_records_json", "records_from_json"]


def is_records_json(data: Any) -> bool:
    """Whether parsed JSON has the project's own layout."""
    if isinstance(data, Mapping):
        return "records" in data
    return isinstance(data, list) and (not data or (isinstance(data[0], Mapping) and "path" in data[0]))


def records_from_json(p: Path, data: Any) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    """Records from the project's JSON layout (see :func:`sslkeypoint.data.read_records`)."""
    names: tuple[str, ...] | None = None
    if isinstance(data, Mapping):
        names = tuple(str(n) for n in data["keypoint_names"]) if data.get("keypoint_names") else None
        data = data["records"]
    if not isinstance(data, list):
        raise ValueError(f"{p}: expected a list of records; got {type(data).__name__}")
    records: list[KeypointRecord] = []
    for i, item in enumerate(data):
        where = f"{p}, record {i}"
        if not isinstance(item, Mapping) or "path" not in item or "keypoints" not in item:
            raise ValueError(f"{where}: expected an object with 'path' and 'keypoints'; got {item!r}"[:300])
        try:
            kp = np.asarray(
                [[_json_coordinate(v) for v in pt] for pt in item["keypoints"]], dtype=np.float64
            ) if item["keypoints"] and isinstance(item["keypoints"][0], (list, tuple)) else np.asarray(
                [_json_coordinate(v) for v in item["keypoints"]], dtype=np.float64
            ).reshape(-1, 2)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}, field 'keypoints': {err} (expected [[x, y], ...])") from None
        if kp.ndim != 2 or kp.shape[1] != 2:
            raise ValueError(f"{where}, field 'keypoints': expected shape (K, 2); got {kp.shape}")
        vis: Any = item.get("visible")
        visible = None if vis is None else parse_visible(vis, kp.shape[0], f"{where}, field 'visible'")
        first = next((j for j, r in enumerate(records) if r.num_keypoints), None)
        if first is not None and kp.shape[0] and kp.shape[0] != records[first].num_keypoints:
            raise ValueError(
                f"{where}, field 'keypoints': expected K={records[first].num_keypoints} keypoints, as in "
                f"record {first}; got {kp.shape[0]}"
            )
        meta = dict(item.get("meta") or {})
        group = item.get("group")
        size_key = "pixel_size_mm" if "pixel_size_mm" in item else "pixel_size"
        size = check_pixel_size(item.get(size_key), f"{where}, field {size_key!r}")
        records.append(KeypointRecord(
            _resolve(p.parent, str(item["path"])), kp, visible, meta, None if group is None else str(group), size,
        ))
    if names is not None and records and records[0].num_keypoints != len(names):
        raise ValueError(f"{p}: {len(names)} keypoint_names but records have {records[0].num_keypoints} keypoints")
    return records, names
