"""Files that are replaced whole or not at all: a reader sees the old content or the new, never a cut-short file.

Every state or result file the library and its example write goes through :func:`atomic_path`:
the writer writes a temporary file in the target's own folder (so that the final rename stays on
one file system), the temporary file is flushed to the disk (``fsync``), and ``os.replace`` puts
it in place in one step. When anything fails on the way — a full disk, a file-size limit, an
exception in the writer, Ctrl-C — the temporary file is removed and the target is as it was.

* :func:`atomic_path` yields the temporary file's path, for writers that take a path
  (``matplotlib``'s ``savefig``, safetensors' ``save_file``, ``onnx.save``, ``torch.save``);
  it keeps the target's suffix, from which such writers choose their format;
* :func:`atomic_open` yields an open file, for writers that take a file (``csv.writer``);
* :func:`write_text_atomic` writes a string;
* :func:`save_figure` saves a matplotlib figure and closes it.

A temporary file is named ``.<name>.<random>.tmp<suffix>`` (hidden, and never matched by the
patterns a run looks for, such as ``best-*.ckpt``); the file put in place gets the permissions an
ordinary ``open`` would give it (the process's umask), or those of the file it replaces.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_path", "save_figure", "write_text_atomic"]

PathLike = str | os.PathLike[str]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(target: str) -> int:
    """The permissions ``target`` keeps (an existing file's) or gets (a new one's, as ``open`` gives)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable where the platform allows it (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error, it replaces ``path``.

    The temporary file exists (empty) when the block starts, in ``path``'s folder, with the same
    suffix. After the block it is flushed to the disk and renamed onto ``path`` with
    ``os.replace``; if the block (or the flush, or the rename) raises, it is removed and ``path``
    is left as it was. The folder must exist; a folder at ``path`` is refused before anything is
    written (``IsADirectoryError``).

    Args:
        path: The file to write.

    Yields:
        The temporary file to write instead of ``path``.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> target = Path(tempfile.mkdtemp()) / "weights.bin"
        >>> with atomic_path(target) as tmp:
        ...     (tmp.suffix, tmp.parent == target.parent)
        ...     _ = tmp.write_bytes(b"1234")
        ('.bin', True)
        >>> target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
        (b'1234', ['weights.bin'])
        >>> with atomic_path(target) as tmp:  # a writer that fails half-way changes nothing
        ...     _ = tmp.write_bytes(b"12")
        ...     raise OSError(28, "No space left on device")
        Traceback (most recent call last):
        ...
        OSError: [Errno 28] No space left on device
        >>> target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
        (b'1234', ['weights.bin'])
    """
    target = os.fspath(path)
    if os.path.isdir(target):  # refused before anything is written (os.replace would fail at the end)
        raise IsADirectoryError(errno.EISDIR, "is a folder; a file was expected", target)
    folder = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(target)
    suffix = os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_for(target))
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; it replaces ``path`` when the block ends without an error.

    Args:
        path: The file to write.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        encoding: Text encoding (text mode only).
        newline: As :func:`open`'s (``""`` for ``csv.writer``).

    Yields:
        The open file.

    Raises:
        ValueError: For a mode that does not write a whole file.

    Examples:
        >>> import csv, tempfile
        >>> from pathlib import Path
        >>> target = Path(tempfile.mkdtemp()) / "table.csv"
        >>> with atomic_open(target, newline="") as handle:
        ...     csv.writer(handle).writerow(["name", "mre_px"])
        13
        >>> target.read_bytes()
        b'name,mre_px\\r\\n'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        if mode == "wb":
            with open(tmp, "wb") as handle:
                yield handle
        else:
            with open(tmp, "w", encoding=encoding, newline=newline) as handle:
                yield handle


def write_text_atomic(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` through :func:`atomic_open`: a reader never sees a cut-short file.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> target = Path(tempfile.mkdtemp()) / "run.json"
        >>> write_text_atomic(target, '{"kind": "finetune"}')
        >>> target.read_text()
        '{"kind": "finetune"}'
    """
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)


def save_figure(fig: Any, path: PathLike, **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure through :func:`atomic_path`, then close it (also when saving fails).

    Args:
        fig: The ``matplotlib.figure.Figure``.
        path: The image file; its suffix chooses the format.
        **savefig_kwargs: Passed to ``fig.savefig`` (``dpi``, ...).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import matplotlib.pyplot as plt

    out = Path(path)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, **savefig_kwargs)
    finally:
        plt.close(fig)
    return out
