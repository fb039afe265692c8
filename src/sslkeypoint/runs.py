"""Run folders that know what they hold: their identity, settings and data.

Every run of :func:`~sslkeypoint.recipes.run_pretraining` and
:func:`~sslkeypoint.recipes.run_finetuning` keeps a ``run.json`` in its folder: what kind of run
it is, a random identity, the absolute folder it was made in, the settings that change its result
and the fingerprint of its data (:mod:`sslkeypoint.data.fingerprint`). :func:`open_run_folder`
reads it before anything is written, and decides:

* a new or empty folder → a fresh run; ``run.json`` is written;
* the same settings and data → the run resumes from its ``last.ckpt`` (settings listed in
  ``resumable``, such as ``max_epochs``, may change: a finished run can be extended);
* other settings or other data → :class:`RunFolderError` naming every difference, and nothing
  is changed; ``resume=False`` starts the folder over (only the files a run writes are removed);
* a folder written by an older version (``config.json`` or ``checkpoints/last.ckpt`` but no
  ``run.json``) is adopted after its ``config.json``, when there is one, is compared;
* a folder that holds a run's file names (``checkpoints/``, ``summary.json``, ...) but none of
  those was not made by a run: :class:`RunFolderError`, with or
  without ``resume``; nothing is removed;
* a folder whose ``run.json`` names another place was copied or moved: the run gets a new
  identity, records where it came from, and its checkpoints follow it
  (:class:`~sslkeypoint.lightning.RunCheckpoint`);
* a ``run.json`` (or the ``config.json`` of an older folder) that cannot be read — cut short by a
  crash of an older version, edited by hand — is refused when resuming, with the way out:
  ``resume=False`` (``--no-resume``) starts the folder over, with a note, as it would any run.

``run.json`` is replaced atomically (:mod:`sslkeypoint.atomic`), so a run of this version never
leaves it cut short. Which process may write into a folder at all is :mod:`sslkeypoint.locks`'s
business: one run holds a folder at a time.

:class:`RunInterrupted` is what a run stopped by ``SIGTERM`` or ``SIGINT`` raises: a
``SystemExit`` with status 128 + the signal number, after saying what was saved.
"""

from __future__ import annotations

import datetime
import json
import shutil
import signal
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from sslkeypoint._version import __version__
from sslkeypoint.atomic import write_text_atomic

__all__ = [
    "RUN_FILE",
    "RUN_OUTPUTS",
    "RunFolder",
    "RunFolderError",
    "RunInterrupted",
    "open_run_folder",
    "settings_difference",
]

#: The identity file of every run folder.
RUN_FILE = "run.json"
#: Everything a run writes into its folder: the only names ``resume=False`` removes.
RUN_OUTPUTS = (RUN_FILE, "config.json", "summary.json", "encoder_init.txt", "encoder.safetensors",
               "unet.safetensors", "checkpoints",
               "logs")


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked; nothing in it was changed.

    Raised when the folder holds a run with other settings or other data, a run of another kind,
    or files with a run's names that no run wrote.
    """


class RunInterrupted(SystemExit):
    """A run stopped by a signal: exit status 128 + the signal number (143 for ``SIGTERM``).

    Args:
        signum: The signal (``signal.SIGTERM`` or ``signal.SIGINT``).
        out_dir: The run folder.
        saved: What the folder holds to resume from (one line per file).

    Examples:
        >>> import signal
        >>> stop = RunInterrupted(signal.SIGTERM, "run", ["checkpoints/last.ckpt (after epoch 3, step 40)"])
        >>> stop.code
        143
        >>> print(stop)
        run stopped by SIGTERM; saved in run: checkpoints/last.ckpt (after epoch 3, step 40); run the same command again to resume
    """

    def __init__(self, signum: int, out_dir: str | PathLike[str], saved: Sequence[str]) -> None:
        self.signum = int(signum)
        self.out_dir = Path(out_dir)
        self.saved = list(saved)
        what = "; ".join(self.saved) if self.saved else "nothing yet"
        self.message = (
            f"run stopped by {signal.Signals(self.signum).name}; saved in {self.out_dir}: {what}; "
            "run the same command again to resume"
        )
        super().__init__(128 + self.signum)

    def __str__(self) -> str:
        return self.message


@dataclass
class RunFolder:
    """What :func:`open_run_folder` found and recorded.

    Attributes:
        path: The run folder.
        record: The content of its ``run.json`` (kind, id, path, settings, data, ...).
        fresh: Whether the run starts from nothing (no checkpoint is resumed).
        notes: What was noticed (a copied folder, an adopted folder without ``run.json``).
    """

    path: Path
    record: dict[str, Any]
    fresh: bool
    notes: list[str] = field(default_factory=list)

    def write(self) -> None:
        """Write ``run.json`` (process 0 only), atomically: another process checking the folder at
        the same moment reads the old file or the new one, never a cut-short one."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path / RUN_FILE, json.dumps(self.record, indent=2, sort_keys=True, default=str))


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: obj}


def _top_key(name: str) -> str:
    return name.split(".", 1)[0]


def settings_difference(
    saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Collection[str] = ()
) -> list[str]:
    """The settings that differ between two runs, one readable line each.

    Args:
        saved: Settings recorded in the folder (nested dicts are compared key by key).
        current: Settings of the run asked for.
        ignore: Top-level keys that may differ.

    Returns:
        ``"key: saved → current"`` lines, sorted by key; empty when the settings agree.

    Examples:
        >>> settings_difference({"lr": 1e-3, "max_epochs": 5}, {"lr": 5e-4, "max_epochs": 9}, ignore=["max_epochs"])
        ['lr: 0.001 (in the folder) → 0.0005 (now)']
    """
    a = {k: v for k, v in _flatten(json.loads(json.dumps(saved, default=str))).items() if _top_key(k) not in ignore}
    b = {k: v for k, v in _flatten(json.loads(json.dumps(current, default=str))).items() if _top_key(k) not in ignore}
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            lines.append(f"{key}: {_short(a.get(key, '<absent>'))} (in the folder) → {_short(b.get(key, '<absent>'))} (now)")
    return lines


def _short(value: Any) -> Any:
    """A content digest cut to 12 characters; anything else as it is."""
    text = str(value)
    if len(text) >= 32 and all(c in "0123456789abcdef" for c in text):
        return text[:12] + "…"
    return value


def _start_over(path: Path) -> None:
    for name in RUN_OUTPUTS:
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def open_run_folder(
    out_dir: str | PathLike[str],
    kind: str,
    settings: Mapping[str, Any],
    data: str,
    *,
    resume: bool = True,
    resumable: Collection[str] = ("max_epochs",),
    legacy_settings: Mapping[str, Any] | None = None,
    writer: bool = True,
    upgrade: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> RunFolder:
    """Check a run folder against the run asked for, before anything is written to it.

    Args:
        out_dir: The run folder.
        kind: ``"pretrain"`` or ``"finetune"`` (a folder holds one kind).
        settings: Everything that changes the run's result (JSON-ready).
        data: Fingerprint of the run's data.
        resume: Continue the run in the folder; ``False`` starts it over (the files in
            :data:`RUN_OUTPUTS` are removed, nothing else), also when its ``run.json`` is
            unreadable.
        resumable: Top-level settings that may change when a run resumes.
        legacy_settings: Settings to compare with the ``config.json`` of a folder written
            without ``run.json`` (default: ``settings``).
        writer: Whether this process may remove and write files (process 0).
        upgrade: Reads the settings a folder of an earlier version recorded in this version's form
            (e.g. training methods that were flat fields), before they are compared.

    Returns:
        A :class:`RunFolder`; call :meth:`RunFolder.write` on process 0 to record it.

    Raises:
        RunFolderError: If the folder holds a run of another kind, with other settings or data
            (when resuming), an unreadable ``run.json`` (when resuming), or files with a run's
            names that no run wrote.

    Examples:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> run = open_run_folder(folder, "finetune", {"lr": 1e-3}, "abc")
        >>> run.fresh
        True
        >>> run.write()
        >>> open_run_folder(folder, "finetune", {"lr": 1e-3}, "abc").fresh
        False
        >>> open_run_folder(folder, "finetune", {"lr": 5e-4}, "abc")
        Traceback (most recent call last):
        ...
        sslkeypoint.runs.RunFolderError: ... holds a finetune run with other settings:
          lr: 0.001 (in the folder) → 0.0005 (now)
        nothing was changed: use another folder, or start this one over (resume=False, --no-resume)
    """
    path = Path(out_dir)
    here = str(path.resolve())
    record: dict[str, Any] = {
        "kind": kind, "id": uuid.uuid4().hex, "path": here, "sslkeypoint_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": dict(settings), "data": data,
    }
    present = [n for n in RUN_OUTPUTS if (path / n).exists()]
    run_file, config_file = path / RUN_FILE, path / "config.json"
    if not present:
        return RunFolder(path, record, fresh=True)
    legacy_checkpoint = (path / "checkpoints" / "last.ckpt").is_file()
    if not run_file.is_file() and not config_file.is_file() and not legacy_checkpoint:
        raise RunFolderError(
            f"{path} holds {', '.join(present)} but no {RUN_FILE}: no sslkeypoint run made it; nothing was "
            "changed: choose a new or empty folder"
        )
    state_file = run_file if run_file.is_file() else config_file
    try:
        saved = _read_state(run_file) if run_file.is_file() else None
        legacy = None if saved is not None else _read_state(config_file) if config_file.is_file() else {}
    except (OSError, ValueError) as exc:
        if resume:
            raise RunFolderError(
                f"{state_file} is unreadable ({exc}); nothing was changed: start the folder over with "
                "resume=False (--no-resume), which removes only the files a run writes, or choose a new folder"
            ) from exc
        if writer:
            _start_over(path)
        return RunFolder(path, record, fresh=True, notes=[
            f"{state_file} was unreadable ({exc}): {path} was started over (the previous run's files were removed)"])
    if saved is not None and saved.get("kind") != kind:
        raise RunFolderError(f"{path} holds a {saved.get('kind')} run, not a {kind} run: use another folder")
    if not resume:
        if writer:
            _start_over(path)
        return RunFolder(path, record, fresh=True, notes=[f"{path}: the previous run's files were replaced"])
    notes: list[str] = []
    if saved is None:
        diff = settings_difference(legacy, legacy_settings if legacy_settings is not None else settings,
                                   ignore=resumable) if legacy else []
        what = "other settings"
        notes.append(f"{path} had no {RUN_FILE} (made by an older version): it is adopted as it is")
    else:
        recorded = saved.get("settings", {})
        if upgrade is not None:
            try:
                recorded = upgrade(recorded)
            except ValueError as exc:
                raise RunFolderError(f"{run_file} records settings this version cannot read ({exc}); nothing was "
                                     "changed: use another folder, or start this one over (resume=False, "
                                     "--no-resume)") from exc
        diff = settings_difference(recorded, settings, ignore=resumable)
        what = "other settings" if diff else ""
        if saved.get("data") != data:
            what = "other settings and other data" if diff else "other data"
            diff.append(f"data: {_short(saved.get('data'))} (in the folder) → {_short(data)} (now)")
        record.update({k: saved[k] for k in ("id", "created", "copied_from") if k in saved})
        if saved.get("path") != here:
            origin = Path(str(saved.get("path")))
            copied = (origin / RUN_FILE).is_file() and _same_id(origin / RUN_FILE, saved.get("id"))
            record["id"] = uuid.uuid4().hex if copied else saved.get("id")
            record["copied_from" if copied else "moved_from"] = str(origin)
            notes.append(f"{path} was {'copied' if copied else 'moved'} from {origin}: its checkpoints are "
                         "followed in their new place" + ("; it is a run of its own from now on" if copied else ""))
    if diff:
        raise RunFolderError(
            f"{path} holds a {kind} run with {what}:\n  " + "\n  ".join(diff)
            + "\nnothing was changed: use another folder, or start this one over (resume=False, --no-resume)"
        )
    return RunFolder(path, record, fresh=False, notes=notes)


def _read_state(path: Path) -> dict[str, Any]:
    """A state file's JSON object; ``ValueError`` when it is cut short or holds something else."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"it holds a JSON {type(data).__name__}, not an object")
    return data


def _same_id(run_file: Path, run_id: Any) -> bool:
    try:
        return bool(json.loads(run_file.read_text()).get("id") == run_id)
    except (OSError, json.JSONDecodeError):
        return False
