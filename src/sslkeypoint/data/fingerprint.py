"""A fingerprint of the files a run trains on, stored in its checkpoints."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

__all__ = ["data_fingerprint"]


def data_fingerprint(items: Sequence[str | PathLike[str]] | Sequence[Sequence[str | PathLike[str]]]) -> str:
    """sha256 of the sorted ``(sequence, relative path, size in bytes)`` of every file.

    Paths are taken relative to their common folder, so the fingerprint survives moving the data.

    Args:
        items: Image files, or sequences of frame files.

    Returns:
        Hex digest.

    Examples:
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> for name in ("a.png", "b.png"):
        ...     _ = open(os.path.join(folder, name), "wb").write(b"12")
        >>> files = [os.path.join(folder, n) for n in ("a.png", "b.png")]
        >>> data_fingerprint(files) == data_fingerprint(files[::-1])
        True
    """
    entries: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        if isinstance(item, str | PathLike):
            entries.append((-1, os.fspath(item)))
        else:
            entries.extend((i, os.fspath(p)) for p in item)
    if not entries:
        raise ValueError("no files to fingerprint")
    root = os.path.commonpath([os.path.abspath(p) for _, p in entries]) if len(entries) > 1 else ""
    lines = []
    for seq, p in entries:
        rel = os.path.relpath(os.path.abspath(p), root) if root else os.path.basename(p)
        size = os.path.getsize(p) if os.path.exists(p) else -1
        lines.append(f"{seq}\t{Path(rel).as_posix()}\t{size}")
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
