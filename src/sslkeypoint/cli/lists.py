"""Small files the commands read: lists of images, groups, pixel sizes (errors name file and row)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

__all__ = ["groups_for", "listed_files", "pixel_size_table"]

_HEADERS = ("path", "filename", "file", "image")


def _all_rows(path: Path) -> list[list[str]]:
    """The non-empty rows of a list or table file (UTF-8, or an error naming the file)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    from sslkeypoint.data.text import read_text

    return [row for row in csv.reader(io.StringIO(read_text(path), newline="")) if row and row[0].strip()]


def _rows(path: Path) -> list[list[str]]:
    """The rows of a list or table file, a header row (first cell ``path``, ``image``, ...) skipped."""
    rows = _all_rows(path)
    return rows[1:] if rows and rows[0][0].strip().lower() in _HEADERS else rows


def listed_files(path: Path, images: Path) -> list[Path]:
    """The image files a list file names (one per line, or a CSV's first column; a header is skipped).

    Relative paths are found under ``images`` first, then beside the list file.
    """
    out = []
    for row in _rows(path):
        name = Path(row[0].strip())
        if not name.is_absolute():
            name = images / name if (images / name).exists() else path.parent / name
        out.append(name)
    return out


def groups_for(path: Path, images: Path, files: Sequence[Path]) -> list[str]:
    """One group per image file from a ``path,group`` CSV; every image must have one."""
    table: dict[str, str] = {}
    for number, row in enumerate(_rows(path), start=2):
        if len(row) < 2:
            raise ValueError(f"{path} row {number}: expected path,group; got {row}")
        name = Path(row[0].strip())
        table[str((images / name if not name.is_absolute() else name).resolve())] = row[1].strip()
    missing = [f for f in files if str(f.resolve()) not in table]
    if missing:
        raise ValueError(f"{path} gives no group for {len(missing)} images, e.g. {missing[0]}")
    return [table[str(f.resolve())] for f in files]


def pixel_size_table(path: Path) -> dict[str, float]:
    """``filename,pixel_size_mm`` rows as name → size (a header row is skipped)."""
    table: dict[str, float] = {}
    for number, row in enumerate(_all_rows(path), start=1):
        if len(row) < 2:
            raise ValueError(f"{path} row {number}: expected filename,pixel_size_mm; got {row}")
        try:
            size = float(row[1])
        except ValueError:
            if number == 1:
                continue  # the header
            raise ValueError(f"{path} row {number}, column 2: expected a pixel size in mm; got {row[1]!r}") from None
        if not (math.isfinite(size) and size > 0):
            raise ValueError(f"{path} row {number}, column 2: expected a positive pixel size in mm; got {row[1]!r}")
        table[row[0].strip()] = size
    return table
