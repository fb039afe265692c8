"""Checkpoints written whole or not at all, inside the run folder's own file system.

Lightning's default ``TorchCheckpointIO`` saves through ``fsspec``'s transaction: the checkpoint is
written to a temporary file in the *system's* temp folder and then moved into the run folder.
When the two lie on different file systems (``/tmp`` on a RAM disk, runs on a data disk) the move
is a copy, which a full disk cuts short — over the ``last.ckpt`` that held the previous state —
and nothing is flushed to the disk before it counts as saved.

:class:`AtomicCheckpointIO` writes the checkpoint to a temporary file beside its target, flushes
it (``fsync``) and renames it into place (:func:`sslkeypoint.atomic.atomic_open`). When the disk is
full, a quota is exceeded or the file-size limit is reached, the temporary file is removed, the
previous file is untouched, and :class:`CheckpointWriteError` says which file could not be written,
which checkpoints the folder still holds (whole) and that the same command resumes once there is
space. The recipes give it to every ``Trainer`` they build. ``ModelCheckpoint`` removes the file of
a former best only after its replacement was written, so a failed save never costs the kept one.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.utilities.cloud_io import get_filesystem
from pytorch_lightning.plugins import TorchCheckpointIO

from sslkeypoint.atomic import atomic_open

__all__ = ["AtomicCheckpointIO", "CheckpointWriteError", "describe_checkpoint"]

#: Why a write fails for want of room, in words.
_NO_ROOM = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file-size limit was reached",
}


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written for want of room (full disk, quota, file-size limit).

    An ``OSError`` with the original ``errno``, the file as ``filename`` and what happened as
    ``strerror``; it reads ``"<file>: <what happened>"``. Nothing was replaced: the message lists the
    checkpoints the folder still holds, whole.

    Examples:
        >>> import errno
        >>> err = CheckpointWriteError(errno.ENOSPC, "runs/ft/checkpoints/last.ckpt", "the disk is full")
        >>> err.errno == errno.ENOSPC, str(err)
        (True, 'runs/ft/checkpoints/last.ckpt: the disk is full')
    """

    def __init__(self, code: int, path: str | os.PathLike[str], message: str) -> None:
        super().__init__(code, message, os.fspath(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def describe_checkpoint(path: str | os.PathLike[str]) -> str:
    """A checkpoint file as a message names it: ``"checkpoints/last.ckpt (after epoch E, step S)"``.

    ``"(unreadable)"`` follows the name of a file that cannot be read as a checkpoint.

    Examples:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> f = Path(tempfile.mkdtemp()) / "checkpoints" / "last.ckpt"
        >>> f.parent.mkdir(); torch.save({"epoch": 3, "global_step": 40}, f)
        >>> describe_checkpoint(f)
        'checkpoints/last.ckpt (after epoch 3, step 40)'
    """
    path = Path(path)
    name = f"{path.parent.name}/{path.name}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return f"{name} (unreadable)"
    if not isinstance(state, dict) or "epoch" not in state:
        return name
    return f"{name} (after epoch {state.get('epoch')}, step {state.get('global_step')})"


def _no_room(target: Path, exc: OSError) -> CheckpointWriteError:
    assert exc.errno is not None
    kept = sorted(p for p in target.parent.glob("*.ckpt") if p.is_file() and not p.name.startswith("."))
    held = "; ".join(describe_checkpoint(p) for p in kept) if kept else "none (no checkpoint was saved before)"
    resume = ("run the same command again to resume from checkpoints/last.ckpt"
              if (target.parent / "last.ckpt").is_file() else "run the same command again")
    remedy = "raise the file-size limit (ulimit -f)" if exc.errno == errno.EFBIG else "free some space"
    message = (
        f"the checkpoint could not be written: {_NO_ROOM[exc.errno]} ({os.strerror(exc.errno)}); nothing was "
        f"replaced, and the checkpoints saved before are whole: {held}; {remedy}, then {resume}"
    )
    return CheckpointWriteError(exc.errno, target, message)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes a local checkpoint atomically, beside its target.

    Remote paths (``s3://``, ...) are left to Lightning's own saving. Loading and removing are
    Lightning's.

    Examples:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> target = Path(tempfile.mkdtemp()) / "checkpoints" / "last.ckpt"
        >>> AtomicCheckpointIO().save_checkpoint({"epoch": 0, "global_step": 4}, target)
        >>> torch.load(target, weights_only=True), sorted(p.name for p in target.parent.iterdir())
        ({'epoch': 0, 'global_step': 4}, ['last.ckpt'])
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` through a temporary file in the same folder.

        Raises:
            CheckpointWriteError: When the disk is full, a quota is exceeded or the file-size limit
                is reached (an ``OSError``); the temporary file is removed, ``path`` is untouched.
            TypeError: If ``storage_options`` is given (as Lightning's ``TorchCheckpointIO``).
        """
        from fsspec.implementations.local import LocalFileSystem

        if not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options=storage_options)
            return
        if storage_options is not None:
            raise TypeError(
                f"`Trainer.save_checkpoint(..., storage_options=...)` is not supported by {type(self).__name__}"
            )
        target = Path(os.fspath(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        # Serialised in memory first (as Lightning does): torch's own file writer reports a full
        # disk as a RuntimeError about positions; Python's write says ENOSPC.
        try:
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            with atomic_open(target, "wb") as handle:
                handle.write(buffer.getbuffer())
        except OSError as exc:
            if exc.errno in _NO_ROOM:
                raise _no_room(target, exc) from exc
            raise
