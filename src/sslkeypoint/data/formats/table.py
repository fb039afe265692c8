"""The project's own CSV layout: one row per image, coordinates as columns or ``"(x, y)"`` cells."""

from __future__ import annotations

import csv
import io
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
from sslkeypoint.data.text import read_text

__all__ = ["DELIMITERS", "GROUP_COLUMNS", "PIXEL_SIZE_COLUMNS", "read_table", "table_delimiter"]

#: Column names (any case) that give a record's group rather than a landmark.
GROUP_COLUMNS = ("group", "subject", "video", "sequence")
#: Column names (any case) that give a record's pixel size in mm rather than a landmark.
PIXEL_SIZE_COLUMNS = ("pixel_size", "pixel_size_mm", "pixel_spacing", "pixel_spacing_mm", "spacing_mm")

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|NAN"
#: ``<name><sep>x`` / ``<name><sep>y`` (``PS1_x``, ``head.y``, ``x``) and ``x<digits>`` (``x1``, ``y_2``).
_SUFFIX = re.compile(r"(?P<base>.*?)[\s_.\-]*(?P<axis>[xXyY])")
_PREFIX = re.compile(r"(?P<axis>[xXyY])[\s_.\-]*(?P<base>\d+)")


def _looks_like_point(text: str) -> bool:
    return bool(re.search(r"[(\[,;]", text)) or len(re.findall(_NUMBER, text)) == 2


def _axis(column: str) -> tuple[str, str, str] | None:
    """``(key, axis, landmark name)`` of a coordinate column's header, or ``None`` when it names no axis.

    ``PS1_y`` → ``("ps1", "y", "PS1")``; ``x1`` → ``("1", "x", "")`` (numbered, unnamed); ``x`` →
    ``("", "x", "")``; ``top`` → ``None``.
    """
    match = _PREFIX.fullmatch(column) or _SUFFIX.fullmatch(column)
    if match is None:
        return None
    base = match["base"]
    name = "" if match.re is _PREFIX else base
    return base.casefold(), match["axis"].lower(), name


def _paired_by_name(columns: list[str]) -> list[tuple[int, int, str]] | None:
    """``(x column, y column, name)`` per landmark when every column names its axis and every
    landmark has exactly one x and one y column (landmarks in order of first appearance), else ``None``."""
    axes = [_axis(c) for c in columns]
    slots: dict[str, dict[str, list[int]]] = {}
    for i, a in enumerate(axes):
        if a is None:
            return None
        slots.setdefault(a[0], {"x": [], "y": []})[a[1]].append(i)
    if not all(len(v["x"]) == 1 and len(v["y"]) == 1 for v in slots.values()):
        return None
    return [(v["x"][0], v["y"][0], _axis(columns[v["x"][0]])[2] or f"kp{k}")  # type: ignore[index]
            for k, v in enumerate(slots.values())]


def _paired_in_order(p: Path, columns: list[str]) -> list[tuple[int, int, str]]:
    """``(x column, y column, name)`` per landmark in file order (x first); refused where a pair's
    names say otherwise (``PS2_y`` then ``top``)."""
    if len(columns) % 2:
        raise ValueError(
            f"{p}: coordinate columns must come in (x, y) pairs after the path column; got "
            f"{len(columns)} columns {columns}"
        )
    pairs = []
    for k in range(len(columns) // 2):
        ax, ay = _axis(columns[2 * k]), _axis(columns[2 * k + 1])
        if ax is None and ay is None:
            pairs.append((2 * k, 2 * k + 1, f"kp{k}"))
            continue
        if ax is None or ay is None or ax[1] != "x" or ay[1] != "y" or ax[0] != ay[0]:
            raise ValueError(
                f"{p}: columns {columns[2 * k]!r} and {columns[2 * k + 1]!r} are read as one landmark's x and y, "
                "but their names do not pair; name every coordinate column <landmark>_x / <landmark>_y (in any "
                "order), or give none of them an x/y ending (then they are read in pairs, x first)"
            )
        pairs.append((2 * k, 2 * k + 1, ax[2] or f"kp{k}"))
    return pairs


#: Cell separators of the project's CSV, in the order they are tried on the header line: commas, then
#: semicolons (what spreadsheets write where the comma is the decimal mark), then tabs.
DELIMITERS = (",", ";", "\t")


def table_delimiter(header: str) -> str | None:
    """The cell separator a CSV header line uses (:data:`DELIMITERS`), or ``None`` for none of them.

    Examples:
        >>> table_delimiter("image,x,y"), table_delimiter("image;x;y"), table_delimiter("image")
        (',', ';', None)
    """
    return next((d for d in DELIMITERS if d in header), None)


def read_table(p: Path, text: str | None = None) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    """Read the project's CSV layout (see :func:`sslkeypoint.data.read_records`).

    Cells are separated by commas, or by semicolons or tabs when the header line holds no comma
    (:func:`table_delimiter`); decimal commas are refused either way.

    Args:
        p: The CSV file.
        text: Its text, when already read (:func:`~sslkeypoint.data.text.read_text`).
    """
    if text is None:
        text = read_text(p)
    delimiter = table_delimiter(text.lstrip("\r\n").splitlines()[0] if text.strip() else "") or ","
    rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(c.strip() for c in r)]
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
    by_name = _paired_by_name(label_cols)
    sample = next(
        (r[i] for r in rows[1:] for i in label_idx if i < len(r) and r[i].strip() and r[i].strip().lower() != "nan"), ""
    )
    point_mode = by_name is None and _looks_like_point(sample)
    pairs = by_name or ([] if point_mode else _paired_in_order(p, label_cols))
    names = tuple(label_cols) if point_mode else tuple(name for _, _, name in pairs)
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
            kp = np.asarray([[vals[ix], vals[iy]] for ix, iy, _ in pairs], dtype=np.float64).reshape(-1, 2)
        group = row[group_col].strip() or None if group_col is not None else None
        size = None
        if size_col is not None and row[size_col].strip():
            where = f"{p}, row {line}, column {header[size_col]!r}"
            size = check_pixel_size(_parse_float(row[size_col], where), where)
        records.append(KeypointRecord(_resolve(p.parent, row[0].strip()), kp, None, {"row": line}, group, size))
    return records, names if named else None
