"""The error boundary of a command line: an ordinary mistake is one line and exit status 2.

Both command lines (``python -m sslkeypoint`` and the IUGC example's ``python -m iugc_aop``) run
their commands through :func:`run_command`. Everything a user can cause by giving something
unusable is a ``ValueError`` (bad values, unreadable text, a refused folder, an unusable weight
file: :class:`~sslkeypoint.runs.RunFolderError`, :class:`~sslkeypoint.weights.WeightFileError`,
``UnicodeDecodeError``, ``json.JSONDecodeError``, ...) or an ``OSError`` (a missing file, a folder
where a file is needed, a path below a file, no permission, a read-only or full disk); these end
as ``error: <what>`` on stderr with exit status 2, and so does Lightning's refusal of a setting
(``MisconfigurationException``, e.g. ``--trainer.devices 0``). Anything else is a bug of the project: its
traceback is printed with a request to report it, and the exit status is 1. ``--debug`` prints
the traceback of ordinary errors too.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

__all__ = ["USER_ERRORS", "describe_error", "run_command"]

#: Exception types that stand for a user's mistake (bad input), not for a bug.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def _user_errors() -> tuple[type[BaseException], ...]:
    """:data:`USER_ERRORS`, and Lightning's refusal of a setting (``--trainer.devices 0``) once
    Lightning is loaded."""
    fabric = sys.modules.get("lightning_fabric.utilities.exceptions")
    refusal = getattr(fabric, "MisconfigurationException", None)
    return (*USER_ERRORS, refusal) if isinstance(refusal, type) else USER_ERRORS

#: What an ``OSError`` means to someone who gave a path, by ``errno``.
_MEANING = {
    errno.ENOENT: "no such file or folder",
    errno.EISDIR: "is a folder; a file was expected",
    errno.EEXIST: "already exists",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "is on a read-only file system; choose a place you can write to",
    errno.ENOSPC: "no space left on the disk; free some space and run the same command again",
    errno.EDQUOT: "disk quota exceeded; free some space and run the same command again",
    errno.EFBIG: "file too large (a file-size limit was reached)",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links (a link loop)",
    errno.ENOTEMPTY: "folder not empty",
}


def _file_above(path: Path) -> Path | None:
    """The nearest part of ``path`` above it that exists and is not a folder."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _describe_os_error(exc: OSError) -> str:
    filename = exc.filename
    custom = exc.strerror and exc.errno is not None and exc.strerror != os.strerror(exc.errno)
    if filename is None or (custom and exc.errno not in (errno.ENOTDIR, errno.EEXIST)):
        return str(exc) if filename is None or not exc.strerror else f"{filename}: {exc.strerror}"
    path = Path(os.fsdecode(filename))
    if exc.errno == errno.ENOTDIR:
        blocker = _file_above(path)
        if blocker is not None:
            return f"{path}: {blocker} is a file, not a folder"
        return f"{path}: not a folder"
    if exc.errno == errno.EEXIST and path.exists() and not path.is_dir():
        return f"{path}: already exists and is a file; a folder was expected"
    meaning = _MEANING.get(exc.errno or -1, exc.strerror or str(exc))
    target = f" → {os.fsdecode(exc.filename2)}" if exc.filename2 is not None else ""
    return f"{path}{target}: {meaning}"


def describe_error(exc: BaseException) -> str:
    """One line for a user: what went wrong and with which file.

    An ``OSError`` is told by what it means to someone who gave a path (``runs/a.txt/ft:
    runs/a.txt is a file, not a folder``), with the file's name first; other errors by their own
    message, on one line.

    Examples:
        >>> import errno
        >>> describe_error(OSError(errno.EROFS, "Read-only file system", "/mnt/cd/run"))
        '/mnt/cd/run: is on a read-only file system; choose a place you can write to'
        >>> describe_error(IsADirectoryError(errno.EISDIR, "Is a directory", "weights/"))
        'weights: is a folder; a file was expected'
        >>> describe_error(ValueError("labels.csv, row 3: expected 4 columns;\\n got 5"))
        'labels.csv, row 3: expected 4 columns; got 5'
    """
    if isinstance(exc, OSError):
        text = _describe_os_error(exc)
    else:
        text = str(exc) or type(exc).__name__
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    if any(line.startswith("  ") for line in lines[1:]):  # a sentence, then a list of items: kept as lines
        return "\n".join(lines)
    return " ".join(line.strip() for line in lines)


def run_command(run: Callable[[], int], *, debug: bool = False, program: str = "python -m sslkeypoint") -> int:
    """Run one command behind the error boundary and return its exit status.

    Args:
        run: The command; returns its exit status.
        debug: Print the traceback of an ordinary error too (``--debug``).
        program: How the command line is called, for the bug report line.

    Returns:
        ``run``'s status; 2 after an ordinary error (printed as ``error: …``); 1 after a bug
        (traceback printed); 130 after Ctrl-C outside a training run. A training run stopped by
        a signal raises :class:`~sslkeypoint.runs.RunInterrupted` (a ``SystemExit``), which passes.

    Examples:
        >>> import contextlib, io
        >>> def bad() -> int:
        ...     raise FileNotFoundError(2, "No such file or directory", "labels.csv")
        >>> with contextlib.redirect_stderr(io.StringIO()) as err:
        ...     status = run_command(bad)
        >>> status, err.getvalue()
        (2, 'error: labels.csv: no such file or folder\\n')
    """
    try:
        return int(run())
    except KeyboardInterrupt:
        print("error: stopped (Ctrl-C)", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            traceback.print_exc()
            print(f"error: {type(exc).__name__}: {exc} — this is a bug in {program.split()[-1]}; please report it "
                  "with the traceback above", file=sys.stderr, flush=True)
            return 1
        if debug:
            traceback.print_exc()
        print(f"error: {describe_error(exc)}", file=sys.stderr, flush=True)
        return 2
