"""The project's own CSV layout: one row per image, coordinates as columns or ``"(x, y)"`` cells."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np

from sslkeypoint.data.records import (
    KeypointRecord,
    _parse_float,
    _resolve,
    check_pixel_size,
    parse_point,
)

__all__ = ["GROUP_COLUMNS", "PIXEL_SIZE_COLUMNS", "read_table"]

#: Column names (any case) that give a record's group rather than a landmark.
GROUP_COLUMNS = ("group", "subject", "video", "sequence")
#: Column names (any case) that give a record's pixel size in mm rather than a landmark.
PIXEL_SIZE_COLUMNS = ("pixel_size", "pixel_size_mm", "pixel_spacing", "pixel_spacing_mm", "spacing_mm")

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|NAN"


def _looks_like_point(text: str) -> bool:
    return bool(re.search(r"[(\[,;]", text)) or len(re.findall(_NUMBER, text)) == 2


def _pair_name(x: str, y: str, i: int) -> str:
    bx, by = re.sub(r"[\s_.\-]*[xX]$", "", x), re.sub(r"[\s_.\-]*[yY]$", "", y)
    if bx and bx == by and bx != x:
        return bx
    return f"kp{i}"


def read_table(p: Path) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    """Read the project's CSV layout (see :func:`sslkeypoint.data.read_records`)."""
    with p.open(newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValueError(f"{p}: expected a header row and at least one data row; got {len(rows)} rows")
    header = [h.strip() for h in rows[0]]
    if len(header) < 2:
        raise ValueError(f"{p}: expected an image path column and label columns; header is {header}")
    group_col = next((i for i, h in enumerate(header) if i and h.lower() in GROUP_COLUMNS), None)
    size_col = next((i for i, h in enumerate(header) if i and h.lower() in PIXEL_SIZE_COLUMNS), None)
    label_idx = [i for i in range(1, len(header)) if i not in (group_col, size_col)]
    label_cols = [header[i] for i in label_idx]
    if not label_cols:
        raise ValueError(f"{p}: no landmark columns after the image path; header is {header}")
    sample = next(
        (r[i] for r in rows[1:] for i in label_idx if i < len(r) and r[i].strip() and r[i].strip().lower() != "nan"), ""
    )
    point_mode = _looks_like_point(sample)
    if not point_mode and len(label_cols) % 2:
        raise ValueError(
            f"{p}: coordinate columns must come in (x, y) pairs after the path column; got "
            f"{len(label_cols)} columns {label_cols}"
        )
    if point_mode:
        names = tuple(label_cols)
    else:
        names = tuple(_pair_name(label_cols[2 * i], label_cols[2 * i + 1], i) for i in range(len(label_cols) // 2))
    named = not all(re.fullmatch(r"kp\d+", n) for n in names)
    records: list[KeypointRecord] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{p}, row {line}: expected {len(header)} columns ({header}); got {len(row)}")
        if not row[0].strip():
            raise ValueError(f"{p}, row {line}, column {header[0]!r}: empty image path")
        cells = [row[i] for i in label_idx]
        if point_mode:
            pts = []
            for col, cell in zip(label_cols, cells):
                where = f"{p}, row {line}, column {col!r}"
                pts.append([math.nan, math.nan] if cell.strip() in ("", "nan", "NaN") else list(parse_point(cell, where=where)))
            kp = np.asarray(pts, dtype=np.float64)
        else:
            vals = [_parse_float(cell, f"{p}, row {line}, column {col!r}") for col, cell in zip(label_cols, cells)]
            kp = np.asarray(vals, dtype=np.float64).reshape(-1, 2)
        group = row[group_col].strip() or None if group_col is not None else None
        size = None
        if size_col is not None and row[size_col].strip():
            where = f"{p}, row {line}, column {header[size_col]!r}"
            size = check_pixel_size(_parse_float(row[size_col], where), where)
        records.append(KeypointRecord(_resolve(p.parent, row[0].strip()), kp, None, {"row": line}, group, size))
    return records, names if named else None
