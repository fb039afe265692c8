"""One run per folder: a lock on every run folder and stage folder.

A training run (:func:`~sslkeypoint.recipes.run_finetuning`,
:func:`~sslkeypoint.recipes.run_pretraining`) and every stage of the IUGC example hold
:func:`folder_lock` on their folder while they work. A second run started on the same folder —
by mistake, from a second terminal or a scheduler that retried a job — is refused at once with
:class:`FolderBusyError`, naming the process that holds the folder, and changes nothing.

The lock is an ``flock`` on ``FOLDER/.lock`` (through ``filelock``): the operating system
releases it when its process ends, however it ends, so a folder is never left locked by a
crashed run. Beside it, ``FOLDER/.lock.json`` records who holds it (process, host, user, command
line, start time) for the message; it is removed when the lock is released, so one found by the
next run that takes the lock was left by a process that ended without releasing it (killed, out
of memory, power lost), and a note says the lock was taken over. ``.lock`` itself stays in the
folder (an empty file; removing it would let two processes lock two different files).

Under DDP only the process the user started takes the lock (see :func:`launching_process`): the
processes a launcher starts for the other ranks run the same code into the same folder and must
not be refused. A process may take the lock of a folder it already holds (a stage folder that is
also a run folder): the lock is counted, and released when the outermost holder ends.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import json
import os
import shlex
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.runs import RunFolderError

__all__ = [
    "LOCK_FILE",
    "LOCK_FILES",
    "LOCK_RECORD",
    "FolderBusyError",
    "FolderLock",
    "folder_lock",
    "launching_process",
]

#: The file whose ``flock`` is the lock.
LOCK_FILE = ".lock"
#: Who holds the lock: process, host, user, command line, start time (JSON).
LOCK_RECORD = ".lock.json"
#: The names the lock keeps in a folder: never removed while a run holds it, never a user's file.
LOCK_FILES = (LOCK_FILE, LOCK_RECORD)

#: Environment variables in which launchers (Lightning, torchrun, SLURM, MPI) tell a process its rank.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK",
                   "OMPI_COMM_WORLD_RANK", "PMI_RANK")


class FolderBusyError(RunFolderError):
    """The folder is held by another running process; nothing in it was changed.

    Attributes:
        folder: The folder.
        owner: The holder's record (``pid``, ``host``, ``user``, ``command``, ``started``, ``what``),
            or ``None`` when it left none that can be read.

    Examples:
        >>> owner = {"pid": 1234, "host": "gpu1", "command": "python -m sslkeypoint finetune --config ft.yaml",
        ...          "started": "2026-12-07T06:10:31+00:00", "what": "fine-tuning run"}
        >>> print(FolderBusyError("runs/ft", owner))
        runs/ft is in use by process 1234 on host gpu1 (fine-tuning run: python -m sslkeypoint finetune --config ft.yaml, since 2026-12-07 06:10 UTC); wait for it to end, or use another folder
    """

    def __init__(self, folder: str | os.PathLike[str], owner: dict[str, Any] | None) -> None:
        self.folder = Path(folder)
        self.owner = owner
        super().__init__(f"{self.folder} is in use by {_describe(owner)}; wait for it to end, or use another folder")


def _describe(owner: dict[str, Any] | None) -> str:
    if not owner:
        return f"another process (it holds {LOCK_FILE}; it left no readable {LOCK_RECORD})"
    what = f"{owner['what']}: " if owner.get("what") else ""
    return (f"process {owner.get('pid', '?')} on host {owner.get('host', '?')} "
            f"({what}{_command(owner)}, since {_when(owner.get('started'))})")


def _command(owner: dict[str, Any]) -> str:
    """The recorded command line on one line (even ``python -c '<script>'``), at most 160 characters."""
    command = " ".join(str(owner.get("command") or "?").split())
    return command if len(command) <= 160 else command[:157] + "…"


def _when(started: Any) -> str:
    try:
        moment = datetime.datetime.fromisoformat(str(started)).astimezone(datetime.UTC)
    except ValueError:
        return str(started)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def launching_process() -> bool:
    """Whether this process is the one the user started, not one a launcher started for another rank.

    Judged, before any process group exists, from the variables launchers set for the processes
    they start — ``RANK`` (torchrun), ``LOCAL_RANK`` and ``NODE_RANK`` (Lightning's launcher),
    ``SLURM_PROCID``, ``GROUP_RANK``, ``JSM_NAMESPACE_RANK``, ``OMPI_COMM_WORLD_RANK``,
    ``PMI_RANK``: it is the launching process (global rank 0) when none of them is set to another
    number than 0. Lightning's processes started with ``strategy="ddp_spawn"`` do not run the
    caller's code, so they never ask.

    Examples:
        >>> import os
        >>> launching_process() == all(os.environ.get(v, "0") == "0" for v in _RANK_VARIABLES)
        True
    """
    for name in _RANK_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value and value != "0":
            try:
                if int(value) != 0:
                    return False
            except ValueError:
                continue
    return True


@dataclass
class FolderLock:
    """A folder lock taken by :func:`folder_lock`.

    Attributes:
        folder: The folder.
        held: Whether this process holds the lock (``False`` on the other ranks under DDP).
        took_over: The record left by a holder that ended without releasing it, when there was one.
        notes: What was noticed (a lock taken over), one line each; also printed on stderr.
    """

    folder: Path
    held: bool
    took_over: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Held:
    lock: Any
    count: int
    record: Path


#: The locks this process holds: lock file → its filelock and how many holders nest in it.
_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _owner(what: str) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment or the password database (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    if argv:
        argv[0] = os.path.basename(argv[0])
    return {
        "pid": os.getpid(), "host": socket.gethostname(), "user": user, "command": shlex.join(argv),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "what": what,
    }


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _running(owner: dict[str, Any]) -> bool | None:
    """Whether the recorded process still runs: ``None`` when that cannot be told (another host)."""
    if owner.get("host") != socket.gethostname():
        return None
    try:
        pid = int(owner["pid"])
    except (KeyError, TypeError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return None
    return True


def _took_over_note(folder: Path, owner: dict[str, Any]) -> str:
    running = _running(owner)
    who = f"process {owner.get('pid', '?')} on host {owner.get('host', '?')} ({_command(owner)})"
    if running is False:
        return f"{folder}: took over the lock of {who}, which is no longer running"
    if running is True:  # its number was given to another process since, or the record was copied
        return f"{folder}: took over the lock of {who}, which no longer holds it"
    return f"{folder}: took over the lock of {who}, which no longer holds it (it ran on another host)"


def _acquire(folder: Path, what: str) -> FolderLock:
    import filelock

    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder / LOCK_FILE)
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:  # this process holds it already (a run inside a stage of its own)
            held.count += 1
            return FolderLock(folder, held=True)
        try:  # one hold for the whole process, whichever thread releases it (filelock >= 3.10)
            lock = filelock.FileLock(key, timeout=0, thread_local=False)
        except TypeError:
            lock = filelock.FileLock(key, timeout=0)
        record = folder / LOCK_RECORD
        try:
            lock.acquire()
        except filelock.Timeout:
            raise FolderBusyError(folder, _read_record(record)) from None
        try:
            previous = _read_record(record)
            write_text_atomic(record, json.dumps(_owner(what), indent=2))
        except BaseException:
            lock.release()
            raise
        _HELD[key] = _Held(lock, 1, record)
    taken = FolderLock(folder, held=True, took_over=previous)
    if previous is not None:
        taken.notes.append(_took_over_note(folder, previous))
        for note in taken.notes:
            print(note, file=sys.stderr, flush=True)
    return taken


def _release(folder: Path) -> None:
    key = os.path.realpath(folder / LOCK_FILE)
    with _HELD_GUARD:
        held = _HELD[key]
        held.count -= 1
        if held.count:
            return
        del _HELD[key]
        try:
            with contextlib.suppress(FileNotFoundError):
                held.record.unlink()
        finally:
            held.lock.release()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], what: str = "run", *, hold: bool | None = None) -> Iterator[FolderLock]:
    """Hold ``folder`` for one run: refuse at once if another process holds it.

    The folder is created when missing. The lock is released when the block ends, however it
    ends; the owner record is removed first.

    Args:
        folder: The run or stage folder.
        what: What holds it, for the message another process gets (``"fine-tuning run"``).
        hold: Whether this process takes the lock; ``None`` (default): when it is the launching
            process (:func:`launching_process`). Under DDP pass ``trainer.is_global_zero`` or leave
            the default: the processes of the other ranks must not be refused.

    Yields:
        A :class:`FolderLock`: whether it is held and whether a lock left by an ended process was
        taken over (the note is printed on stderr too).

    Raises:
        FolderBusyError: If another process holds the folder (a
            :class:`~sslkeypoint.runs.RunFolderError`, so a ``ValueError``); the message names the
            process, its host, command line and start time.

    Examples:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with folder_lock(folder, "fine-tuning run") as lock:
        ...     lock.held, sorted(os.listdir(folder))
        (True, ['.lock', '.lock.json'])
        >>> sorted(os.listdir(folder))  # released: the owner record is gone, the empty lock file stays
        ['.lock']
    """
    path = Path(folder)
    if hold is None:
        hold = launching_process()
    if not hold:
        yield FolderLock(path, held=False)
        return
    taken = _acquire(path, what)
    try:
        yield taken
    finally:
        _release(path)
