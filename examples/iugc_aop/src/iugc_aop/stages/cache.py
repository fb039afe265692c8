"""A small stage cache: skip a stage whose settings and data are unchanged, never delete what it did not make.

Every stage writes into its own folder under the run folder and keeps there a ``stage.json``
marker: the fingerprint of its settings and data, its status (``"running"`` while it works,
``"done"`` with its result when it finished) and the profile name. :class:`StageCache` reads it:

* marker ``done`` with the same fingerprint → the stage is skipped, its saved result returned
  (paths in it are stored relative to the stage folder, so a copied run folder uses its own
  files);
* marker ``running`` with the same fingerprint → the stage runs again and its training resumes
  from its own ``last.ckpt``;
* marker with another fingerprint → an error naming what changed (the marker keeps the stage's
  settings and data fingerprints), unless ``force``: then the folder, which the marker proves
  this pipeline made, is removed and the stage starts afresh;
* a marker that cannot be read (cut short by a crash of an older version, edited by hand) → an
  error naming ``--force``; with ``force`` the stage is redone (the marker file, even damaged,
  proves the pipeline made the folder);
* a folder with files but no marker was not made by a stage: the cache refuses to use it, with or
  without ``force``, and deletes nothing. The lock files (below) do not count.

While a stage works it holds its folder (:meth:`StageCache.lock`, a
:func:`sslkeypoint.locks.folder_lock`): a second command on the same stage folder is refused,
naming the process that holds it. ``force`` clears the folder but keeps the lock files, so the
folder stays locked while the stage is redone. The marker is replaced atomically
(:mod:`sslkeypoint.atomic`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.locks import LOCK_FILES, FolderLock, folder_lock, launching_process
from sslkeypoint.runs import RunFolderError, settings_difference

__all__ = ["STAGE_FILE", "StageCache", "fingerprint"]

#: Name of the marker file in every stage folder.
STAGE_FILE = "stage.json"


def fingerprint(obj: Any) -> str:
    """A short, stable hash of a JSON-ready description of a stage's settings and data.

    Examples:
        >>> fingerprint({"b": 1, "a": [1, 2]}) == fingerprint({"a": [1, 2], "b": 1})
        True
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class StageCache:
    """The marker of one stage folder.

    Args:
        folder: The stage folder (``RUN/stage1``, ``RUN/finetune/unet``, ...).
        key: Everything that changes the stage's result, JSON-ready: settings, and data and
            weight files by content fingerprint (never by path or modification time, so that a
            copied run or data folder is still recognised).
        profile: Profile name, recorded for the error message.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> cache = StageCache(Path(tempfile.mkdtemp()) / "stage1", {"lr": 0.1}, "quick")
        >>> with cache.lock():  # the stage folder is held while the stage works
        ...     cache.load(force=False) is None  # nothing yet: run the stage
        ...     cache.start(); cache.finish({"steps": 3})
        True
        >>> cache.load(force=False)
        {'steps': 3}
        >>> StageCache(cache.folder, {"lr": 0.2}, "quick").load(force=False)
        Traceback (most recent call last):
        ...
        sslkeypoint.runs.RunFolderError: ...stage1 was made with other settings or data:
          lr: 0.1 (in the folder) → 0.2 (now)
        nothing was changed: use another run folder, or redo the stage (--force)
    """

    folder: Path
    key: Mapping[str, Any] = field(default_factory=dict)
    profile: str = ""

    @property
    def fingerprint(self) -> str:
        """Fingerprint of :attr:`key`."""
        return fingerprint(self.key)

    @property
    def marker(self) -> Path:
        """The ``stage.json`` file."""
        return self.folder / STAGE_FILE

    @contextlib.contextmanager
    def lock(self) -> Iterator[FolderLock]:
        """Hold the stage folder while the block runs: another process working on it is refused.

        Only the launching process takes the lock (:func:`sslkeypoint.locks.launching_process`):
        under DDP the processes of the other ranks run the stage too.

        Raises:
            sslkeypoint.locks.FolderBusyError: If another process holds the folder (a
                :class:`~sslkeypoint.runs.RunFolderError`), naming it.
        """
        with folder_lock(self.folder, f"stage {self.folder.name}") as held:
            yield held

    def _saved(self) -> dict[str, Any] | None:
        """The marker's content; ``ValueError`` when it is cut short or holds no object."""
        if not self.marker.is_file():
            return None
        saved = json.loads(self.marker.read_text(encoding="utf-8"))
        if not isinstance(saved, dict):
            raise ValueError(f"it holds a JSON {type(saved).__name__}, not an object")
        return saved

    def _clear(self) -> None:
        """Remove the folder's content but the lock files (a held lock must stay the same file)."""
        for entry in self.folder.iterdir():
            if entry.name in LOCK_FILES:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def load(self, force: bool) -> dict[str, Any] | None:
        """The saved result of a finished stage, or ``None`` when the stage must run.

        Call it inside :meth:`lock`.

        Args:
            force: Redo the stage: its folder's content (made by this pipeline, as its marker
                shows) is removed first, also when the marker is unreadable; the lock files stay.
                Only the launching process removes anything.

        Raises:
            sslkeypoint.runs.RunFolderError: If the folder was made with other settings or data,
                or its marker is unreadable (and ``force`` is not set), or it holds files that no
                stage made.
        """
        try:
            saved = self._saved()
        except (OSError, ValueError) as exc:
            if not force:
                raise RunFolderError(
                    f"{self.marker} is unreadable ({exc}); nothing was changed: redo the stage with --force "
                    "(force=True), which removes what the stage wrote in its folder"
                ) from exc
            saved = {}
        if saved is None:
            if self.folder.is_dir() and any(p.name not in LOCK_FILES for p in self.folder.iterdir()):
                raise RunFolderError(
                    f"{self.folder} already holds files that no pipeline stage made (no {STAGE_FILE}); "
                    "nothing was changed: choose another run folder"
                )
            return None
        if force:
            if launching_process():  # the other ranks under DDP start when the stage runs already
                self._clear()
            return None
        if saved.get("fingerprint") != self.fingerprint:
            changes = settings_difference(saved.get("key", {}), self.key) if "key" in saved else []
            listed = "\n  " + "\n  ".join(changes) if changes else f" (profile {saved.get('profile')!r})"
            raise RunFolderError(
                f"{self.folder} was made with other settings or data:{listed}\nnothing was changed: use another "
                "run folder, or redo the stage (--force)"
            )
        if saved.get("status") == "done":
            return dict(saved.get("result", {}))
        return None

    def path(self, stored: str) -> Path:
        """A path of a saved result (relative to the stage folder) as a path to use."""
        return self.folder / stored

    def stored(self, path: str | Path) -> str:
        """``path`` as a saved result stores it: relative to the stage folder when inside it."""
        p = Path(path)
        try:
            return p.resolve().relative_to(self.folder.resolve()).as_posix()
        except ValueError:
            return str(p)

    def start(self) -> None:
        """Mark the stage as running (the folder is created)."""
        self._write({"status": "running"})

    def finish(self, result: dict[str, Any]) -> None:
        """Mark the stage as done with its result (JSON-ready)."""
        self._write({"status": "done", "result": result})

    def _write(self, extra: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {"fingerprint": self.fingerprint, "key": self.key, "profile": self.profile, **extra}
        write_text_atomic(self.marker, json.dumps(payload, indent=2, default=str))
