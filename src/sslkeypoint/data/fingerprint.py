"""Fingerprints of the data a run trains on: file contents and labels, not file locations.

A run folder records the fingerprint of its data (:mod:`sslkeypoint.runs`), and pre-training
checkpoints store it too, so that a run never continues, or is reused, on data that changed.
Files are identified by content: ``cp -r`` of a data folder keeps its fingerprint, and editing,
replacing or removing a file (or a label) changes it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from sslkeypoint.data.records import KeypointRecord

__all__ = ["data_fingerprint", "file_digest", "records_fingerprint"]

#: Files up to this size are hashed whole; larger ones by their size, first and last block.
WHOLE_FILE_BYTES = 1 << 20
_BLOCK = 1 << 18
# Digests of files already read in this process, keyed by (path, size, mtime): a command that
# fingerprints the same data twice reads it once.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | PathLike[str]) -> str:
    """sha256 of a file's content (files over 1 MiB: of their size, first and last 256 KiB).

    Image files are hashed whole; for a large file (a video or a weight file), an edit that keeps
    its size and touches neither end goes unnoticed: the price of not reading gigabytes.

    Args:
        path: The file.

    Returns:
        Hex digest; ``"missing"`` when the file does not exist.

    Examples:
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> a, b = os.path.join(folder, "a.png"), os.path.join(folder, "b.png")
        >>> _ = open(a, "wb").write(b"12"); _ = open(b, "wb").write(b"13")
        >>> file_digest(a) == file_digest(b)  # same size, other content
        False
    """
    p = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return "missing"
    key = (p, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            if st.st_size <= WHOLE_FILE_BYTES:
                h.update(f.read())
            else:
                h.update(str(st.st_size).encode())
                h.update(f.read(_BLOCK))
                f.seek(-_BLOCK, os.SEEK_END)
                h.update(f.read(_BLOCK))
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def data_fingerprint(items: Sequence[str | PathLike[str]] | Sequence[Sequence[str | PathLike[str]]]) -> str:
    """sha256 of the sorted ``(sequence, relative path, content digest)`` of every file.

    Paths are taken relative to their common folder and contents by :func:`file_digest`, so the
    fingerprint survives moving or copying the data, and changes when a file is edited, replaced,
    renamed, added or removed.

    Args:
        items: Image files, or sequences of frame files.

    Returns:
        Hex digest.

    Raises:
        ValueError: If there are no files.

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
        lines.append(f"{seq}\t{Path(rel).as_posix()}\t{file_digest(p)}")
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def records_fingerprint(records: Sequence[KeypointRecord]) -> str:
    """A fingerprint of labelled records: their files' contents, their order and their labels.

    Editing a label, a group, a pixel size or an image, or adding or removing a record, changes
    it; moving the data folder does not.

    Args:
        records: Labelled records (an empty list has a fingerprint too).

    Returns:
        Hex digest.

    Examples:
        >>> import numpy as np
        >>> a = KeypointRecord("x.png", np.array([[1.0, 2.0]]))
        >>> b = KeypointRecord("x.png", np.array([[1.0, 2.5]]))
        >>> records_fingerprint([a]) == records_fingerprint([b])
        False
    """
    h = hashlib.sha256(str(len(records)).encode())
    for r in records:
        h.update(Path(r.path).name.encode())
        for array in (r.keypoints, r.visible):
            data = b"-" if array is None else np.ascontiguousarray(np.asarray(array, dtype=np.float64)).tobytes()
            h.update(data)
        if r.group is not None or r.pixel_size is not None:  # absent ones keep older fingerprints
            h.update(f"|group={r.group}|pixel_size={r.pixel_size}".encode())
    if records:
        h.update(data_fingerprint([r.path for r in records]).encode())
    return h.hexdigest()
