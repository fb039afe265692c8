"""DeepLabCut's ``CollectedData_<scorer>.csv``: three (or four) header rows, one row per frame.

The header rows are ``scorer``, optionally ``individuals`` (multi-animal projects), ``bodyparts``
(the landmark names, each over two columns) and ``coords`` (``x``, ``y``). The leading columns
give the image path: one column (``labeled-data/video1/img001.png``) or one per path part (DeepLabCut
2.2 and later). An empty cell marks a landmark that was not labelled (missing). The video folder
(``labeled-data/<video>/``) is the record's group, so frames of one video stay on one side of a
validation split. Paths are found relative to the project folder (two levels above the file) or
beside the file.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from sslkeypoint.data.records import KeypointRecord, _parse_float
from sslkeypoint.data.text import read_text

__all__ = ["is_deeplabcut", "read_deeplabcut"]


def is_deeplabcut(first_row: list[str]) -> bool:
    """Whether a CSV whose first row is ``first_row`` is a DeepLabCut labels file."""
    return bool(first_row) and first_row[0].strip().lower() == "scorer"


def _image(p: Path, parts: list[str]) -> tuple[Path, str | None]:
    rel = Path(*parts)
    candidates = [p.parent / rel, p.parent.parent.parent / rel, p.parent / rel.name]
    path = next((c for c in candidates if c.exists()), candidates[1] if parts[0] == "labeled-data" else candidates[0])
    group = parts[1] if len(parts) >= 3 and parts[0] == "labeled-data" else (parts[-2] if len(parts) >= 2 else None)
    return path, group


def read_deeplabcut(p: Path, text: str | None = None) -> tuple[list[KeypointRecord], tuple[str, ...]]:
    """Read a DeepLabCut labels CSV (see the module's documentation).

    Args:
        p: The CSV file.
        text: Its text, when already read (:func:`~sslkeypoint.data.text.read_text`).
    """
    if text is None:
        text = read_text(p)
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    heads = {r[0].strip().lower(): i for i, r in enumerate(rows[:4])
             if r and r[0].strip().lower() in ("scorer", "individuals", "bodyparts", "coords")}
    if "bodyparts" not in heads or "coords" not in heads:
        raise ValueError(
            f"{p}: a DeepLabCut labels file needs header rows 'scorer', 'bodyparts' and 'coords'; "
            f"got first cells {[r[0] for r in rows[:4]]}"
        )
    coords = [c.strip().lower() for c in rows[heads["coords"]]]
    bodyparts = [c.strip() for c in rows[heads["bodyparts"]]]
    first = next((i for i, c in enumerate(coords) if c in ("x", "y", "likelihood")), None)
    if first is None or first == 0:
        raise ValueError(f"{p}: the 'coords' row names no x / y columns: {coords}")
    if "individuals" in heads:
        individuals = {c.strip() for c in rows[heads["individuals"]][first:]}
        if len(individuals) > 1:
            raise ValueError(
                f"{p}: {len(individuals)} individuals ({sorted(individuals)}); one instance per image is supported"
            )
    columns: dict[str, dict[str, int]] = {}
    for j in range(first, len(coords)):
        if coords[j] in ("x", "y"):
            columns.setdefault(bodyparts[j], {})[coords[j]] = j
    names = tuple(columns)
    broken = [n for n, c in columns.items() if set(c) != {"x", "y"}]
    if broken:
        raise ValueError(f"{p}: bodypart {broken[0]!r} lacks an x or a y column")
    start = max(heads.values()) + 1
    records: list[KeypointRecord] = []
    for line, row in enumerate(rows[start:], start=start + 1):
        if len(row) < len(coords):
            row = row + [""] * (len(coords) - len(row))
        parts = [c.strip() for c in row[:first] if c.strip()]
        if not parts:
            raise ValueError(f"{p}, row {line}: empty image path")
        if len(parts) == 1:
            parts = parts[0].replace("\\", "/").split("/")
        kp = np.full((len(names), 2), math.nan)
        for k, name in enumerate(names):
            for a, axis in enumerate("xy"):
                j = columns[name][axis]
                kp[k, a] = _parse_float(row[j], f"{p}, row {line}, column {j + 1} ({name} {axis})")
        kp[~np.isfinite(kp).all(axis=1)] = np.nan
        path, group = _image(p, parts)
        records.append(KeypointRecord(path, kp, None, {"row": line}, group))
    return records, names
