"""One run per folder (sslkeypoint.locks); the two-process cases are in tests/bad_inputs/test_state_files.py."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import filelock
import pytest

from sslkeypoint.locks import (
    LOCK_FILE,
    LOCK_RECORD,
    FolderBusyError,
    folder_lock,
    launching_process,
)
from sslkeypoint.runs import RunFolderError


def test_the_owner_record_names_this_process_and_goes_with_the_lock(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "ft"
    with folder_lock(folder, "fine-tuning run") as lock:
        record = json.loads((folder / LOCK_RECORD).read_text())
        assert lock.held and lock.took_over is None and lock.notes == []
        assert record["pid"] == os.getpid() and record["what"] == "fine-tuning run"
        assert {"host", "user", "command", "started"} <= set(record)
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]


def test_a_process_may_hold_a_folder_it_holds_already(tmp_path: Path) -> None:
    with folder_lock(tmp_path, "stage") as outer:
        with folder_lock(tmp_path, "fine-tuning run") as inner:
            assert outer.held and inner.held
        assert (tmp_path / LOCK_RECORD).is_file()  # still held by the outer block
    assert not (tmp_path / LOCK_RECORD).exists()


def test_the_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), folder_lock(tmp_path):
        raise RuntimeError("the run failed")
    with folder_lock(tmp_path) as again:
        assert again.held


def test_a_release_from_another_thread_frees_the_lock(tmp_path: Path) -> None:
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with folder_lock(tmp_path):
            entered.set()
            leave.wait(30)

    worker = threading.Thread(target=hold)
    worker.start()
    entered.wait(30)
    with folder_lock(tmp_path) as nested:  # the same process: counted, not refused
        leave.set()
        worker.join(30)
        assert nested.held
    assert not (tmp_path / LOCK_RECORD).exists()
    probe = filelock.FileLock(str(tmp_path / LOCK_FILE), timeout=0)  # a new descriptor: free only if released
    probe.acquire()
    probe.release()


def test_other_ranks_do_not_take_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not launching_process()
    with folder_lock(tmp_path / "run") as lock:
        assert not lock.held and not (tmp_path / "run").exists()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")
    assert not launching_process()
    monkeypatch.setenv("NODE_RANK", "0")
    monkeypatch.setenv("RANK", "0")
    assert launching_process()


def test_a_busy_folder_is_a_run_folder_error_without_an_owner_record() -> None:
    err = FolderBusyError("runs/ft", None)
    assert isinstance(err, RunFolderError) and isinstance(err, ValueError)
    assert str(err) == ("runs/ft is in use by another process (it holds .lock; it left no readable .lock.json); "
                        "wait for it to end, or use another folder")
