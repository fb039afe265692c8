"""Run folders under misuse: changed settings or data, folders no run made, copies, moves, signals."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from sslkeypoint.configs import PretrainConfig, TrainerConfig
from sslkeypoint.data import KeypointRecord
from sslkeypoint.methods import MoCoV2Method
from sslkeypoint.recipes import FinetuneResult, run_finetuning, run_pretraining
from sslkeypoint.runs import RUN_FILE, RunFolderError, RunInterrupted
from tests.bad_inputs.cases import Case, ids, run_case
from tests.lightning.test_finetune import make_blobs, tiny_config

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TRAINER = TrainerConfig(accelerator="cpu", devices=1, deterministic=True, num_sanity_val_steps=0)


def records(tmp: Path, n: int = 10) -> list[KeypointRecord]:
    return make_blobs(tmp / "data", n=n)


def finetune(out: Path, recs: list[KeypointRecord], max_epochs: int = 2, callbacks: tuple = (), **kw: Any) -> FinetuneResult:
    return run_finetuning(tiny_config(max_epochs=max_epochs, **kw), recs, out, progress=False, trainer=TRAINER,
                          callbacks=callbacks)


def finished(tmp: Path) -> tuple[Path, list[KeypointRecord]]:
    """A finished 2-epoch fine-tuning run in ``tmp/run`` and its records."""
    recs = records(tmp)
    finetune(tmp / "run", recs)
    return tmp / "run", recs


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def best_files(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "checkpoints").glob("best-*.ckpt"))


# -- changed settings or data -----------------------------------------------------------------


def other_lr(tmp: Path) -> None:
    out, recs = finished(tmp)
    finetune(out, recs, lr=1e-3)


def other_architecture(tmp: Path) -> None:
    out, recs = finished(tmp)
    finetune(out, recs, encoder_kwargs={"widths": (8, 8), "bottleneck_width": 16})


def fewer_records(tmp: Path) -> None:
    out, recs = finished(tmp)
    finetune(out, recs[:8])


def edited_label(tmp: Path) -> None:
    out, recs = finished(tmp)
    recs[3] = KeypointRecord(recs[3].path, np.asarray(recs[3].keypoints) + 1.0)
    finetune(out, recs)


def image_replaced_same_size(tmp: Path) -> None:
    out, recs = finished(tmp)
    a, b = Path(recs[0].path), Path(recs[1].path)
    data = bytearray(a.read_bytes())
    data[-20] ^= 0xFF  # same size, other content
    a.write_bytes(bytes(data))
    assert a.stat().st_size == len(data) and b.is_file()
    finetune(out, recs)


def refused_run_changes_nothing(tmp: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    out, recs = finished(tmp)
    before = snapshot(out)
    with pytest.raises(RunFolderError):
        finetune(out, recs, encoder_kwargs={"widths": (8, 8), "bottleneck_width": 16})
    return before, snapshot(out)


def check_unchanged(result: tuple[dict[str, bytes], dict[str, bytes]], tmp: Path) -> None:
    before, after = result
    assert before == after


def files_no_run_wrote(tmp: Path) -> None:
    out = tmp / "mine"
    (out / "logs").mkdir(parents=True)
    (out / "summary.json").write_text('{"mine": true}')
    finetune(out, records(tmp))


def user_files_beside(tmp: Path) -> Path:
    out = tmp / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    finetune(out, records(tmp))
    return out


def check_user_files_kept(out: Path, tmp: Path) -> None:
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / RUN_FILE).is_file() and (out / "summary.json").is_file()


def more_epochs(tmp: Path) -> FinetuneResult:
    out, recs = finished(tmp)
    return finetune(out, recs, max_epochs=3)


def check_extended(result: FinetuneResult, tmp: Path) -> None:
    assert result.epochs == 3 and len(result.val_history) == 3


def start_over(tmp: Path) -> tuple[FinetuneResult, Path]:
    out, recs = finished(tmp)
    (out / "notes.txt").write_text("kept")
    res = run_finetuning(tiny_config(max_epochs=1, lr=1e-3), recs, out, progress=False, trainer=TRAINER,
                         resume=False)
    return res, out


def check_started_over(result: tuple[FinetuneResult, Path], tmp: Path) -> None:
    res, out = result
    assert res.epochs == 1 and len(res.val_history) == 1
    assert best_files(out) == ["best-000.ckpt"]
    assert json.loads((out / "config.json").read_text())["lr"] == 1e-3
    assert (out / "notes.txt").read_text() == "kept"


def pretrain_config(**kw: Any) -> PretrainConfig:
    moco: dict[str, Any] = dict(projection_dim=8, hidden_dim=16, queue_size=16, cap_queue=False, split_bn=1)
    moco.update(kw.pop("method", {}))
    base: dict[str, Any] = dict(image_size=32, encoder_kwargs={"widths": (8, 16), "bottleneck_width": 16},
                                batch_size=4, max_epochs=1, method=MoCoV2Method(**moco))
    base.update(kw)
    return PretrainConfig.stage1(**base)


def pretrained(tmp: Path) -> tuple[Path, Path]:
    images = tmp / "data"
    make_blobs(images, n=8)
    run_pretraining(pretrain_config(), images=images, out_dir=tmp / "pre", trainer=TRAINER, max_steps=2,
                    progress=False)
    return tmp / "pre", images


def pretrain_other_images(tmp: Path) -> None:
    out, images = pretrained(tmp)
    (images / "im07.png").unlink()
    run_pretraining(pretrain_config(), images=images, out_dir=out, trainer=TRAINER, max_steps=3, progress=False)


def pretrain_other_temperature(tmp: Path) -> None:
    out, images = pretrained(tmp)
    run_pretraining(pretrain_config(method={"temperature": 0.1}), images=images, out_dir=out, trainer=TRAINER, max_steps=3,
                    progress=False)


# -- copied and moved run folders -------------------------------------------------------------


def copied_and_extended(tmp: Path) -> tuple[FinetuneResult, Path, Path, dict[str, bytes]]:
    a, recs = finished(tmp)
    before = snapshot(a)
    b = tmp / "copy"
    shutil.copytree(a, b)
    return finetune(b, recs, max_epochs=5), a, b, before


def check_copy_extended(result: tuple[FinetuneResult, Path, Path, dict[str, bytes]], tmp: Path) -> None:
    res, a, b, before = result
    assert res.best_checkpoint is not None and res.best_checkpoint.parent == b / "checkpoints"
    assert best_files(b) == [res.best_checkpoint.name]  # save_top_k=1: one best file
    assert res.best_checkpoint.name == f"best-{res.best_epoch:03d}.ckpt"
    summary = json.loads((b / "summary.json").read_text())
    assert Path(summary["best_checkpoint"]) == res.best_checkpoint
    record, original = json.loads((b / RUN_FILE).read_text()), json.loads((a / RUN_FILE).read_text())
    assert record["copied_from"] == str(a.resolve()) and record["path"] == str(b.resolve())
    assert record["id"] != original["id"]
    assert snapshot(a) == before  # the original is untouched


def copied_unchanged(tmp: Path) -> tuple[FinetuneResult, Path]:
    a, recs = finished(tmp)
    b = tmp / "copy"
    shutil.copytree(a, b)
    return finetune(b, recs), b


def check_copy_unchanged(result: tuple[FinetuneResult, Path], tmp: Path) -> None:
    res, b = result
    assert res.best_checkpoint is not None and res.best_checkpoint.parent == b / "checkpoints"
    assert res.last_checkpoint == b / "checkpoints" / "last.ckpt"


def moved(tmp: Path) -> tuple[FinetuneResult, Path]:
    a, recs = finished(tmp)
    b = tmp / "moved"
    shutil.move(a, b)
    return finetune(b, recs, max_epochs=3), b


def check_moved(result: tuple[FinetuneResult, Path], tmp: Path) -> None:
    res, b = result
    assert res.epochs == 3 and res.best_checkpoint is not None and res.best_checkpoint.parent == b / "checkpoints"
    assert len(best_files(b)) == 1
    assert json.loads((b / RUN_FILE).read_text())["moved_from"] == str((tmp / "run").resolve())


# -- signals ----------------------------------------------------------------------------------


class SendSignal(pl.Callback):
    """Sends a signal to this process at the first training batch of ``epoch``."""

    def __init__(self, signum: int, epoch: int) -> None:
        self.signum, self.epoch = signum, epoch

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.current_epoch == self.epoch and trainer.fit_loop.epoch_loop.batch_progress.current.ready == 1:
            handler = signal.getsignal(self.signum)
            assert handler not in (signal.SIG_DFL, signal.SIG_IGN, None), "Lightning did not take the signal"
            os.kill(os.getpid(), self.signum)


@contextlib.contextmanager
def not_ignored(signum: int) -> Iterator[None]:
    """The signal's ordinary handling while the block runs, also when the test runner was started
    with it ignored (a job started with ``&`` by a shell without job control ignores SIGINT, and
    Python then never installs its handler)."""
    before = signal.getsignal(signum)
    if before == signal.SIG_IGN:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    try:
        yield
    finally:
        if before == signal.SIG_IGN:
            signal.signal(signum, before)


def interrupted(signum: int) -> Any:
    def run(tmp: Path) -> tuple[RunInterrupted, Path, FinetuneResult]:
        recs = records(tmp)
        out = tmp / "run"
        with not_ignored(signum), pytest.raises(RunInterrupted) as stop:
            finetune(out, recs, max_epochs=3, callbacks=(SendSignal(signum, 1),))
        return stop.value, out, finetune(out, recs, max_epochs=3)

    return run


def check_interrupted(signum: int) -> Any:
    def check(result: tuple[RunInterrupted, Path, FinetuneResult], tmp: Path) -> None:
        stop, _, resumed = result
        assert stop.code == 128 + signum
        assert "last.ckpt (after epoch 0, step 4)" in str(stop) and "run the same command again" in str(stop)
        assert resumed.epochs == 3 and resumed.interrupted is None  # resumed to the end
        assert [h["epoch"] for h in resumed.val_history] == [0, 1, 2]

    return check


def interrupted_summary(tmp: Path) -> dict[str, Any]:
    with pytest.raises(RunInterrupted):
        finetune(tmp / "run", records(tmp), max_epochs=3, callbacks=(SendSignal(signal.SIGTERM, 1),))
    return dict(json.loads((tmp / "run" / "summary.json").read_text()))


def check_interrupted_summary(summary: dict[str, Any], tmp: Path) -> None:
    assert summary["interrupted"] == "SIGTERM" and summary["best_epoch"] == 0


FULL_DISK = """
import resource, signal, sys, torch
from pathlib import Path
from sslkeypoint.configs import TrainerConfig
from sslkeypoint.recipes import run_finetuning
from tests.lightning.test_finetune import make_blobs, tiny_config

torch.set_num_threads(1)
recs = make_blobs(Path(sys.argv[1]) / "data", n=10)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))
run_finetuning(tiny_config(max_epochs=2), recs, Path(sys.argv[1]) / "run", progress=False,
               trainer=TrainerConfig(accelerator="cpu", devices=1, num_sanity_val_steps=0))
"""


def full_disk(tmp: Path) -> tuple[int, str, Path]:
    script = tmp / "train.py"
    script.write_text(FULL_DISK)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(script), str(tmp)], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stderr, tmp / "run" / "checkpoints"


def check_full_disk(result: tuple[int, str, Path], tmp: Path) -> None:
    status, err, checkpoints = result
    assert status != 0 and "File too large" in err, err[-2000:]
    leftovers = sorted(checkpoints.iterdir()) if checkpoints.is_dir() else []
    # What is left must be whole: the weights-only best checkpoint fits under the limit, the full
    # last.ckpt does not and must leave nothing behind.
    assert "last.ckpt" not in [p.name for p in leftovers]
    for path in leftovers:
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a cut-short file
            raise AssertionError(f"partial checkpoint file left: {path.name} ({err})") from None


# -- the example's stage cache ----------------------------------------------------------------


@functools.cache
def smoke_data() -> Path:
    from iugc_aop.synth import SynthConfig, write_synthetic_iugc

    root = Path(tempfile.mkdtemp(prefix="iugc-smoke-")) / "data"
    write_synthetic_iugc(root, SynthConfig.preset("smoke"), seed=0, progress=False, workers=1)
    return root


def finished_stage(tmp: Path) -> tuple[Path, Path]:
    from iugc_aop.stages import stage_finetune

    data = tmp / "data"
    shutil.copytree(smoke_data(), data)
    stage_finetune("unet", data, tmp / "work", "smoke", progress=False)
    return data, tmp / "work"


def stage_after_rows_deleted(tmp: Path) -> None:
    from iugc_aop.stages import stage_finetune

    data, work = finished_stage(tmp)
    labels = data / "Training" / "Labeled cases" / "label.csv"
    lines = labels.read_text().splitlines(keepends=True)
    labels.write_text("".join(lines[:13]))
    stage_finetune("unet", data, work, "smoke", progress=False)


def cli_after_rows_deleted(tmp: Path) -> tuple[int, str]:
    from iugc_aop.cli import main

    data, work = finished_stage(tmp)
    labels = data / "Training" / "Labeled cases" / "label.csv"
    labels.write_text("".join(labels.read_text().splitlines(keepends=True)[:13]))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["finetune", "--variant", "unet", "--data", str(data), "--work", str(work), "--profile",
                       "smoke", "--no-progress"])
    return status, err.getvalue()


def check_cli_error(result: tuple[int, str], tmp: Path) -> None:
    status, err = result
    assert status == 2 and "error: " in err and "data.labelled: 24 (in the folder) → 12 (now)" in err
    assert "Traceback" not in err


def stage_after_image_replaced(tmp: Path) -> None:
    from iugc_aop.stages import stage_finetune

    data, work = finished_stage(tmp)
    image = sorted((data / "Training" / "Labeled cases").glob("*.jpg"))[0]
    content = bytearray(image.read_bytes())
    content[-40] ^= 0x55  # same size, other pixels
    image.write_bytes(bytes(content))
    stage_finetune("unet", data, work, "smoke", progress=False)


def stage_in_copied_work_folder(tmp: Path) -> tuple[Any, Path]:
    from iugc_aop.stages import stage_finetune

    data, work = finished_stage(tmp)
    copy = tmp / "work-copy"
    shutil.copytree(work, copy)
    return stage_finetune("unet", data, copy, "smoke", progress=False), copy


def check_stage_copy(result: tuple[Any, Path], tmp: Path) -> None:
    res, copy = result
    assert res.skipped and Path(res.checkpoint).is_relative_to(copy)


CASES = [
    Case("finetune: another lr into a finished run folder", other_lr, RunFolderError,
         "lr: 0.003 (in the folder) → 0.001 (now)"),
    Case("finetune: another architecture into a finished run folder", other_architecture, RunFolderError,
         "encoder_kwargs.widths: [8, 16] (in the folder) → [8, 8] (now)"),
    Case("finetune: fewer records into a finished run folder", fewer_records, RunFolderError, "with other data"),
    Case("finetune: an edited label into a finished run folder", edited_label, RunFolderError, "with other data"),
    Case("finetune: a training image replaced by one of the same size", image_replaced_same_size, RunFolderError,
         "with other data"),
    Case("finetune: a refused run leaves the folder byte for byte as it was", refused_run_changes_nothing,
         check=check_unchanged),
    Case("finetune: a folder with summary.json and logs/ that no run wrote", files_no_run_wrote, RunFolderError,
         "no sslkeypoint run made it"),
    Case("finetune: a folder with the user's own files beside", user_files_beside, check=check_user_files_kept),
    Case("finetune: more epochs for a finished run resume it", more_epochs, check=check_extended),
    Case("finetune: resume=False starts the folder over, other files kept", start_over, check=check_started_over),
    Case("pretrain: other images into a finished run folder", pretrain_other_images, RunFolderError,
         "with other data"),
    Case("pretrain: another temperature into a finished run folder", pretrain_other_temperature, RunFolderError,
         "temperature: 0.2 (in the folder) → 0.1 (now)"),
    Case("finetune: a copied run folder resumed for more epochs", copied_and_extended, check=check_copy_extended),
    Case("finetune: a copied run folder re-run unchanged", copied_unchanged, check=check_copy_unchanged),
    Case("finetune: a moved run folder resumed", moved, check=check_moved),
    Case("finetune: SIGTERM in epoch 1, then the same call again", interrupted(signal.SIGTERM),
         check=check_interrupted(signal.SIGTERM)),
    Case("finetune: SIGINT in epoch 1, then the same call again", interrupted(signal.SIGINT),
         check=check_interrupted(signal.SIGINT)),
    Case("finetune: SIGTERM leaves a summary.json that says so", interrupted_summary, check=check_interrupted_summary),
    Case("finetune: the disk fills while a checkpoint is written", full_disk, check=check_full_disk),
    Case("example finetune stage: label rows deleted after it finished", stage_after_rows_deleted, RunFolderError,
         "data.labelled: 24 (in the folder) → 12 (now)"),
    Case("example CLI: finetune after label rows were deleted exits 2 naming the change", cli_after_rows_deleted,
         check=check_cli_error),
    Case("example finetune stage: a labelled image replaced by one of the same size", stage_after_image_replaced,
         RunFolderError, "data.content:"),
    Case("example finetune stage: a copied work folder uses its own checkpoint", stage_in_copied_work_folder,
         check=check_stage_copy),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_case(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
