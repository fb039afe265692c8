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
* a folder with files but no marker was not made by a stage: the cache refuses to use it, with or
  without ``force``, and deletes nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        >>> cache.load(force=False) is None  # nothing yet: run the stage
        True
        >>> cache.start(); cache.finish({"steps": 3})
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

    def _saved(self) -> dict[str, Any] | None:
        if not self.marker.is_file():
            return None
        try:
            return dict(json.loads(self.marker.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"{self.marker} is unreadable ({exc}): redo the stage (--force)") from exc

    def load(self, force: bool) -> dict[str, Any] | None:
        """The saved result of a finished stage, or ``None`` when the stage must run.

        Args:
            force: Redo the stage: its folder (made by this pipeline) is removed first.

        Raises:
            sslkeypoint.runs.RunFolderError: If the folder was made with other settings or data
                (and ``force`` is not set), or holds files that no stage made.
        """
        saved = self._saved()
        if saved is None:
            if self.folder.is_dir() and any(self.folder.iterdir()):
                raise RunFolderError(
                    f"{self.folder} already holds files that no pipeline stage made (no {STAGE_FILE}); "
                    "nothing was changed: choose another run folder"
                )
            return None
        if force:
            shutil.rmtree(self.folder)
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
        self.marker.write_text(json.dumps(payload, indent=2, default=str))
