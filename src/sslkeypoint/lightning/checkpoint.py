"""Checkpoints that follow their run folder when it is copied or moved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint

__all__ = ["RunCheckpoint"]


class RunCheckpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` whose remembered files move with the run folder.

    ``ModelCheckpoint`` stores absolute paths in every checkpoint. Resumed from a copied or moved
    run folder, it would keep pointing into the original folder: the best checkpoint reported
    would be the original's, the copy's own best file would never be replaced (two "best" files
    despite ``save_top_k=1``), and its best score would be forgotten. This callback maps every
    remembered path from the saved folder to its own folder when the file is there, and forgets
    the ones that are not; it reads and writes the same checkpoint entries as
    ``ModelCheckpoint``, so checkpoints of either resume with the other.

    Args:
        **kwargs: ``ModelCheckpoint``'s arguments (``dirpath`` is required).

    Examples:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> ckpt = RunCheckpoint(dirpath=folder, monitor="val/mre_px")
        >>> ckpt.load_state_dict({"dirpath": "/elsewhere", "best_model_path": "/elsewhere/best.ckpt",
        ...                       "best_model_score": 1.5, "best_k_models": {"/elsewhere/best.ckpt": 1.5}})
        >>> ckpt.best_model_path, ckpt.best_k_models  # best.ckpt is not in this folder: forgotten
        ('', {})
    """

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("dirpath") is None:
            raise ValueError("RunCheckpoint needs dirpath: the folder whose files it follows")
        super().__init__(**kwargs)

    @property
    def state_key(self) -> str:
        """The key of ``ModelCheckpoint`` with the same settings (checkpoints stay interchangeable)."""
        own = super().state_key
        return own.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def _relocate(self, value: Any, old: str) -> Any:
        """``value`` (a path under ``old``) as the same file under this callback's folder, or ``""``."""
        assert self.dirpath is not None
        if not value:
            return value
        rel = os.path.relpath(os.fspath(value), old)
        if rel.startswith(".."):
            return ""
        moved = Path(self.dirpath) / rel
        return str(moved) if moved.exists() else ""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state; paths saved under another folder are mapped into this one."""
        old = state_dict.get("dirpath")
        if old is None or self.dirpath is None or os.fspath(old) == os.fspath(self.dirpath):
            super().load_state_dict(state_dict)
            return
        state = dict(state_dict)
        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if key in state:
                state[key] = self._relocate(state[key], old)
        if "best_k_models" in state:
            moved = {self._relocate(p, old): s for p, s in state["best_k_models"].items()}
            state["best_k_models"] = {p: s for p, s in moved.items() if p}
        if not state.get("best_model_path"):
            # The best file did not come along: its score must not block a new best.
            state["best_model_score"] = None
        state["dirpath"] = self.dirpath
        super().load_state_dict(state)
