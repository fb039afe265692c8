"""State files, locks and checkpoints under faults: a full disk, a cut-short file, a second run on one folder."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from sslkeypoint.recipes import FinetuneResult, run_finetuning, run_pretraining
from sslkeypoint.runs import RUN_FILE, RunFolderError
from tests.bad_inputs.cases import Case, ids, run_case
from tests.bad_inputs.test_run_folders import (
    TRAINER,
    finetune,
    finished,
    pretrain_config,
    pretrained,
    records,
    smoke_data,
    snapshot,
)
from tests.lightning.test_finetune import tiny_config

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[2]


def _python(script: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, **kwargs)


def leftovers(folder: Path) -> list[str]:
    """Temporary files of an atomic write left in ``folder`` (none may be)."""
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


# -- atomic writes: the disk fills while a state or result file is replaced ---------------------------

FILE_SIZE_LIMIT = """
import errno, resource, signal, sys
from pathlib import Path

what, folder = sys.argv[1], Path(sys.argv[2])


def limited(write):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails like a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        write()
    except OSError as exc:
        print("EFBIG" if exc.errno == errno.EFBIG else repr(exc))
        sys.exit(3)


if what == "stage.json":
    from iugc_aop.stages.cache import StageCache

    cache = StageCache(folder, {"lr": 0.1}, "smoke")
    cache.start()
    limited(lambda: cache.finish({"history": list(range(2000))}))
elif what == "encoder.safetensors":
    import torch
    from sslkeypoint.weights import save_state_dict

    save_state_dict({"w": torch.zeros(4)}, folder / what)
    limited(lambda: save_state_dict({"w": torch.zeros(4000)}, folder / what))
elif what == "picks.csv":
    from sslkeypoint.selection import Choice, Selection

    Selection([Choice(1, Path("a.png"), "random draw")], "random").write_csv(folder / what)
    many = [Choice(i, Path(f"frame_{i:05d}.png"), "random draw") for i in range(1, 400)]
    limited(lambda: Selection(many, "random").write_csv(folder / what))
"""


def fills_while_writing(what: str) -> Any:
    def run(tmp: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
        folder = tmp / "out"
        folder.mkdir()
        return _python(FILE_SIZE_LIMIT, what, str(folder)), folder

    return run


def check_previous_kept(what: str) -> Any:
    def check(result: tuple[subprocess.CompletedProcess[str], Path], tmp: Path) -> None:
        proc, folder = result
        assert proc.returncode == 3 and "EFBIG" in proc.stdout, proc.stdout + proc.stderr[-3000:]
        target = folder / what
        if what == "stage.json":
            assert json.loads(target.read_text())["status"] == "running"  # the previous marker, whole
        elif what == "encoder.safetensors":
            from sslkeypoint.weights import load_state_dict_file

            assert load_state_dict_file(target)["w"].shape == (4,)
        else:
            assert target.read_text().splitlines()[1:] == ["1,a.png,,,0,random draw"]
        assert leftovers(folder) == []

    return check


# -- damaged state files ---------------------------------------------------------------------------


def cut_short(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def no_resume_after_cut_short_run_file(tmp: Path) -> tuple[FinetuneResult, Path, str]:
    out, recs = finished(tmp)
    cut_short(out / RUN_FILE)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        res = run_finetuning(tiny_config(max_epochs=1), recs, out, progress=False, trainer=TRAINER, resume=False)
    return res, out, err.getvalue()


def check_started_over_after_damage(result: tuple[FinetuneResult, Path, str], tmp: Path) -> None:
    res, out, err = result
    assert res.epochs == 1 and [h["epoch"] for h in res.val_history] == [0]
    assert json.loads((out / RUN_FILE).read_text())["kind"] == "finetune"
    assert "unreadable" in err and "started over" in err, err


def resume_after_cut_short_run_file(tmp: Path) -> None:
    out, recs = finished(tmp)
    cut_short(out / RUN_FILE)
    finetune(out, recs)


def no_resume_after_cut_short_legacy_config(tmp: Path) -> tuple[FinetuneResult, Path, str]:
    out, recs = finished(tmp)
    (out / RUN_FILE).unlink()  # a folder of version 0.2: config.json, no run.json
    cut_short(out / "config.json")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        res = run_finetuning(tiny_config(max_epochs=1), recs, out, progress=False, trainer=TRAINER, resume=False)
    return res, out, err.getvalue()


def pretrain_no_resume_after_cut_short_run_file(tmp: Path) -> Path:
    out, images = pretrained(tmp)
    cut_short(out / RUN_FILE)
    run_pretraining(pretrain_config(), images=images, out_dir=out, trainer=TRAINER, max_steps=2, progress=False,
                    resume=False)
    return out


def check_pretrain_started_over(out: Path, tmp: Path) -> None:
    assert json.loads((out / RUN_FILE).read_text())["kind"] == "pretrain"
    assert (out / "encoder.safetensors").is_file()


def stage_with_marker(tmp: Path, content: bytes | None = None) -> Path:
    """A finished stage folder (``StageCache``) with a checkpoint; ``content`` replaces its marker."""
    from iugc_aop.stages.cache import StageCache

    folder = tmp / "work" / "finetune" / "unet"
    cache = StageCache(folder, {"lr": 0.1}, "smoke")
    cache.start()
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    cache.finish({"checkpoint": "checkpoints/last.ckpt"})
    if content is None:
        cut_short(cache.marker)
    else:
        cache.marker.write_bytes(content)
    return folder


def stage_cut_short_marker_forced(tmp: Path) -> tuple[Any, Path]:
    from iugc_aop.stages.cache import StageCache

    folder = stage_with_marker(tmp)
    return StageCache(folder, {"lr": 0.1}, "smoke").load(force=True), folder


def check_stage_redone(result: tuple[Any, Path], tmp: Path) -> None:
    saved, folder = result
    assert saved is None  # the stage runs again
    assert not (folder / "checkpoints").exists() and not (folder / "stage.json").exists()


def stage_cut_short_marker(tmp: Path) -> None:
    from iugc_aop.stages.cache import StageCache

    StageCache(stage_with_marker(tmp), {"lr": 0.1}, "smoke").load(force=False)


def stage_marker_not_an_object(tmp: Path) -> None:
    from iugc_aop.stages.cache import StageCache

    StageCache(stage_with_marker(tmp, b"[1, 2]"), {"lr": 0.1}, "smoke").load(force=False)


def real_stage_cut_short_marker_forced(tmp: Path) -> Any:
    from iugc_aop.stages import stage_finetune

    data = tmp / "data"
    shutil.copytree(smoke_data(), data)
    stage_finetune("unet", data, tmp / "work", "smoke", progress=False)
    cut_short(tmp / "work" / "finetune" / "unet" / "stage.json")
    return stage_finetune("unet", data, tmp / "work", "smoke", progress=False, force=True)


def check_real_stage_redone(result: Any, tmp: Path) -> None:
    assert not result.skipped and Path(result.checkpoint).is_file()
    assert json.loads((tmp / "work" / "finetune" / "unet" / "stage.json").read_text())["status"] == "done"


# -- one run per folder ------------------------------------------------------------------------------

HOLDER = """
import sys
from sslkeypoint.locks import folder_lock

with folder_lock(sys.argv[1], "fine-tuning run"):
    print("held", flush=True)
    sys.stdin.readline()
"""

TRY_LOCK = """
import sys
from sslkeypoint.locks import FolderBusyError, folder_lock

try:
    with folder_lock(sys.argv[1], "stage"):
        print("taken")
except FolderBusyError as exc:
    print("refused:", exc)
"""


@contextlib.contextmanager
def held_by_other_process(folder: Path, kill: bool = False) -> Iterator[subprocess.Popen[str]]:
    """Another python process holds ``folder``'s lock while the block runs (``kill``: it is killed first)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "held", child.communicate(timeout=60)[1][-3000:]
        if kill:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
        yield child
    finally:
        if child.poll() is None:
            child.communicate("\n", timeout=60)


def second_process_refused(tmp: Path) -> tuple[str, int]:
    from sslkeypoint.locks import FolderBusyError, folder_lock

    folder = tmp / "runs" / "ft"
    with held_by_other_process(folder) as child, pytest.raises(FolderBusyError) as refused:
        with folder_lock(folder, "fine-tuning run"):
            pass
    return str(refused.value), child.pid


def check_names_the_holder(result: tuple[str, int], tmp: Path) -> None:
    message, pid = result
    assert f"is in use by process {pid} on host " in message
    assert "fine-tuning run: python" in message and "UTC); wait for it to end, or use another folder" in message


def killed_holder_taken_over(tmp: Path) -> tuple[str, dict[str, Any], int, list[str]]:
    from sslkeypoint.locks import folder_lock

    folder = tmp / "runs" / "ft"
    with held_by_other_process(folder, kill=True) as child:
        assert json.loads((folder / ".lock.json").read_text())["pid"] == child.pid  # left behind
        err = io.StringIO()
        with contextlib.redirect_stderr(err), folder_lock(folder, "fine-tuning run") as lock:
            record = json.loads((folder / ".lock.json").read_text())
    return err.getvalue(), record, child.pid, lock.notes


def check_taken_over(result: tuple[str, dict[str, Any], int, list[str]], tmp: Path) -> None:
    err, record, dead, notes = result
    assert f"took over the lock of process {dead} on host " in err and "which is no longer running" in err, err
    assert record["pid"] == os.getpid() and notes and str(dead) in notes[0]
    assert sorted(p.name for p in (tmp / "runs" / "ft").iterdir()) == [".lock"]  # released: the record is gone


def finetune_into_held_folder(tmp: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    from sslkeypoint.locks import FolderBusyError

    out = tmp / "run"
    recs = records(tmp)
    with held_by_other_process(out) as child:
        before = snapshot(out)
        with pytest.raises(FolderBusyError, match=f"in use by process {child.pid}"):
            finetune(out, recs)
        after = snapshot(out)
    return before, after


def check_nothing_written(result: tuple[dict[str, bytes], dict[str, bytes]], tmp: Path) -> None:
    before, after = result
    assert before == after and sorted(after) == [".lock", ".lock.json"]


def pretrain_into_held_folder(tmp: Path) -> None:
    images = tmp / "data"
    from tests.lightning.test_finetune import make_blobs

    make_blobs(images, n=8)
    with held_by_other_process(tmp / "pre"):
        run_pretraining(pretrain_config(), images=images, out_dir=tmp / "pre", trainer=TRAINER, max_steps=2,
                        progress=False)


def stage_into_held_folder(tmp: Path) -> None:
    from iugc_aop.stages import stage_finetune

    data = tmp / "data"
    shutil.copytree(smoke_data(), data)
    with held_by_other_process(tmp / "work" / "finetune" / "unet"):
        stage_finetune("unet", data, tmp / "work", "smoke", progress=False)


def no_resume_keeps_the_lock_files(tmp: Path) -> tuple[FinetuneResult, Path]:
    out, recs = finished(tmp)
    (out / ".lock.json").write_text('{"pid": 999999999, "host": "elsewhere"}')  # left by a killed run
    res = run_finetuning(tiny_config(max_epochs=1), recs, out, progress=False, trainer=TRAINER, resume=False)
    return res, out


def check_lock_kept(result: tuple[FinetuneResult, Path], tmp: Path) -> None:
    res, out = result
    assert res.epochs == 1 and (out / ".lock").is_file() and not (out / ".lock.json").exists()


def forced_stage_keeps_its_lock(tmp: Path) -> tuple[str, list[str]]:
    from iugc_aop.stages.cache import StageCache

    folder = tmp / "work" / "stage1"
    cache = StageCache(folder, {"lr": 0.1}, "smoke")
    with cache.lock():
        cache.start()
        (folder / "checkpoints").mkdir()
        cache.finish({})
    with cache.lock():
        assert cache.load(force=True) is None
        names = sorted(p.name for p in folder.iterdir())
        other = _python(TRY_LOCK, str(folder)).stdout
    return other, names


def check_forced_stage_still_locked(result: tuple[str, list[str]], tmp: Path) -> None:
    other, names = result
    assert names == [".lock", ".lock.json"]
    assert other.startswith("refused:") and f"in use by process {os.getpid()}" in other, other


def stage_folder_with_lock_files_only(tmp: Path) -> Any:
    from iugc_aop.stages.cache import StageCache

    folder = tmp / "work" / "stage1"
    folder.mkdir(parents=True)
    (folder / ".lock").write_bytes(b"")  # left by a run that was refused or killed before it started
    (folder / ".lock.json").write_text('{"pid": 999999999, "host": "elsewhere"}')
    return StageCache(folder, {"lr": 0.1}, "smoke").load(force=False)


def check_stage_runs(saved: Any, tmp: Path) -> None:
    assert saved is None


# -- checkpoints: the disk fills while one is written -----------------------------------------------


class FullDiskOnSave:
    """``torch.save`` that writes half of the ``nth`` full checkpoint (with optimiser state), then fails
    like a full disk."""

    def __init__(self, nth: int) -> None:
        self.nth, self.seen, self.original = nth, 0, torch.save

    def __call__(self, obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(obj, dict) and "optimizer_states" in obj:
            self.seen += 1
            if self.seen == self.nth:
                buffer = io.BytesIO()
                self.original(obj, buffer, *args, **kwargs)
                part = buffer.getvalue()[: len(buffer.getvalue()) // 2]
                if isinstance(f, str | os.PathLike):
                    Path(f).write_bytes(part)
                else:
                    f.write(part)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.original(obj, f, *args, **kwargs)


def full_disk_at_second_last_checkpoint(tmp: Path) -> tuple[str, dict[str, Any], list[str], FinetuneResult]:
    recs = records(tmp)
    out = tmp / "run"
    with pytest.MonkeyPatch.context() as patch, pytest.raises(OSError) as failed:
        patch.setattr(torch, "save", FullDiskOnSave(nth=2))
        finetune(out, recs, max_epochs=3)
    kept = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    left = leftovers(out)
    return str(failed.value), kept, left, finetune(out, recs, max_epochs=3)  # space freed: the same call again


def check_full_disk_kept_last(result: tuple[str, dict[str, Any], list[str], FinetuneResult], tmp: Path) -> None:
    message, kept, left, resumed = result
    assert "the disk is full" in message and "last.ckpt" in message, message
    assert "checkpoints/last.ckpt (after epoch 0, step 4)" in message and "run the same command again" in message
    assert kept["epoch"] == 0 and kept["global_step"] == 4  # the previous last.ckpt, whole
    assert left == []
    assert resumed.epochs == 3 and [h["epoch"] for h in resumed.val_history] == [0, 1, 2]


class FillingDisk:
    """The checkpoint writer's ``atomic_open`` on a disk that fills during the ``nth`` write of ``name``:
    half of the data reaches the (temporary) file, then the write fails with ``ENOSPC``."""

    def __init__(self, name: str, nth: int) -> None:
        from sslkeypoint.lightning import checkpoint_io

        self.name, self.nth, self.seen, self.original = name, nth, 0, checkpoint_io.atomic_open

    @contextlib.contextmanager
    def __call__(self, path: Any, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
        with self.original(path, mode, **kwargs) as handle:
            if Path(path).name == self.name:
                self.seen += 1
                if self.seen == self.nth:
                    yield _Full(handle)
                    return
            yield handle


class _Full:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def disk_fills_in_second_last_checkpoint_write(tmp: Path) -> tuple[str, dict[str, Any], list[str], FinetuneResult]:
    from sslkeypoint.lightning import checkpoint_io

    recs = records(tmp)
    out = tmp / "run"
    with pytest.MonkeyPatch.context() as patch, pytest.raises(OSError) as failed:
        patch.setattr(checkpoint_io, "atomic_open", FillingDisk("last.ckpt", nth=2))
        finetune(out, recs, max_epochs=3)
    assert failed.value.errno == errno.ENOSPC
    kept = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    left = leftovers(out)
    return str(failed.value), kept, left, finetune(out, recs, max_epochs=3)


def full_disk_in_cross_device_copy(tmp: Path) -> FinetuneResult:
    """The system's temp folder on another file system than the run folder (a rename there fails with
    ``EXDEV``), and the run folder's disk full half-way through a copy into it."""
    out = tmp / "run"
    rename, copyfile = os.rename, shutil.copyfile

    def cross_device_rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(os.fspath(dst)).parent == out / "checkpoints" and Path(os.fspath(src)).parent != out / "checkpoints":
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), os.fspath(src), None, os.fspath(dst))
        rename(src, dst, *args, **kwargs)

    def copy_to_full_disk(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(os.fspath(dst)).name == "last.ckpt" and (out / "checkpoints" / "last.ckpt").is_file():
            Path(dst).write_bytes(Path(src).read_bytes()[:1000])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(dst))
        return copyfile(src, dst, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "rename", cross_device_rename)
        patch.setattr(shutil, "copyfile", copy_to_full_disk)
        return finetune(out, records(tmp), max_epochs=2)


def check_checkpoints_whole(result: FinetuneResult, tmp: Path) -> None:
    assert result.epochs == 2
    for path in sorted((tmp / "run" / "checkpoints").iterdir()):
        torch.load(path, map_location="cpu", weights_only=True)  # every file whole
    assert leftovers(tmp / "run") == []


CASES = [
    Case("example stage marker: the disk fills while stage.json is replaced", fills_while_writing("stage.json"),
         check=check_previous_kept("stage.json")),
    Case("save_state_dict: the disk fills while a safetensors file is replaced",
         fills_while_writing("encoder.safetensors"), check=check_previous_kept("encoder.safetensors")),
    Case("selection: the disk fills while picks.csv is replaced", fills_while_writing("picks.csv"),
         check=check_previous_kept("picks.csv")),
    Case("finetune: a cut-short run.json with resume=False starts the folder over", no_resume_after_cut_short_run_file,
         check=check_started_over_after_damage),
    Case("finetune: a cut-short run.json when resuming names --no-resume", resume_after_cut_short_run_file,
         RunFolderError, "start the folder over with resume=False (--no-resume)"),
    Case("finetune: a cut-short config.json of an older version with resume=False starts over",
         no_resume_after_cut_short_legacy_config, check=check_started_over_after_damage),
    Case("pretrain: a cut-short run.json with resume=False starts the folder over",
         pretrain_no_resume_after_cut_short_run_file, check=check_pretrain_started_over),
    Case("example stage cache: a cut-short stage.json with force redoes the stage", stage_cut_short_marker_forced,
         check=check_stage_redone),
    Case("example stage cache: a cut-short stage.json without force names --force", stage_cut_short_marker,
         RunFolderError, "nothing was changed: redo the stage with --force"),
    Case("example stage cache: a stage.json that holds no object", stage_marker_not_an_object, RunFolderError,
         "stage.json is unreadable"),
    Case("example finetune stage: a cut-short stage.json, then --force", real_stage_cut_short_marker_forced,
         check=check_real_stage_redone),
    Case("lock: a second process is refused, naming the first", second_process_refused,
         check=check_names_the_holder),
    Case("lock: the lock of a killed process is taken over with a note", killed_holder_taken_over,
         check=check_taken_over),
    Case("finetune: a folder another process holds is refused and left as it was", finetune_into_held_folder,
         check=check_nothing_written),
    Case("pretrain: a folder another process holds is refused", pretrain_into_held_folder, RunFolderError,
         "is in use by process"),
    Case("example finetune stage: a stage folder another process holds is refused", stage_into_held_folder,
         RunFolderError, "is in use by process"),
    Case("finetune: resume=False in a folder with the lock files of a killed run", no_resume_keeps_the_lock_files,
         check=check_lock_kept),
    Case("example stage cache: force keeps the stage folder locked", forced_stage_keeps_its_lock,
         check=check_forced_stage_still_locked),
    Case("example stage cache: a folder with only the lock files of an earlier run is used",
         stage_folder_with_lock_files_only, check=check_stage_runs),
    Case("finetune: the disk fills while the second last.ckpt is written", full_disk_at_second_last_checkpoint,
         check=check_full_disk_kept_last),
    Case("finetune: the disk fills half-way through writing the second last.ckpt",
         disk_fills_in_second_last_checkpoint_write, check=check_full_disk_kept_last),
    Case("finetune: the disk fills while a checkpoint is copied in from another file system",
         full_disk_in_cross_device_copy, check=check_checkpoints_whole),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_case(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
