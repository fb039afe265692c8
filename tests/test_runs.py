"""Tests of sslkeypoint.runs and RunCheckpoint: run folder records, differences, a real SIGTERM from outside."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pytorch_lightning.callbacks import ModelCheckpoint

from sslkeypoint.lightning import RunCheckpoint
from sslkeypoint.runs import (
    RUN_FILE,
    RUN_OUTPUTS,
    RunFolderError,
    open_run_folder,
    settings_difference,
)

REPO = Path(__file__).resolve().parents[1]


def test_settings_difference_lists_nested_keys_and_ignores_resumable() -> None:
    saved = {"lr": 0.1, "encoder_kwargs": {"widths": [8, 16]}, "max_epochs": 3, "gone": 1}
    now = {"lr": 0.1, "encoder_kwargs": {"widths": [8, 8]}, "max_epochs": 9, "new": (1, 2)}
    assert settings_difference(saved, now, ignore=["max_epochs"]) == [
        "encoder_kwargs.widths: [8, 16] (in the folder) → [8, 8] (now)",
        "gone: 1 (in the folder) → <absent> (now)",
        "new: <absent> (in the folder) → [1, 2] (now)",
    ]
    assert settings_difference({"a": (1, 2)}, {"a": [1, 2]}) == []  # tuples as JSON stores them


def test_fresh_folder_is_recorded_with_its_identity(tmp_path: Path) -> None:
    run = open_run_folder(tmp_path / "r", "finetune", {"lr": 0.1}, "d1")
    assert run.fresh and not (tmp_path / "r").exists()  # nothing written before write()
    run.write()
    record = json.loads((tmp_path / "r" / RUN_FILE).read_text())
    assert record["kind"] == "finetune" and record["path"] == str((tmp_path / "r").resolve())
    assert record["settings"] == {"lr": 0.1} and record["data"] == "d1" and len(record["id"]) == 32


def test_other_kind_and_other_data_are_refused(tmp_path: Path) -> None:
    open_run_folder(tmp_path, "pretrain", {"t": 0.2}, "d1").write()
    with pytest.raises(RunFolderError, match="holds a pretrain run, not a finetune run"):
        open_run_folder(tmp_path, "finetune", {"t": 0.2}, "d1")
    with pytest.raises(RunFolderError, match="with other data:\n  data: d1 "):
        open_run_folder(tmp_path, "pretrain", {"t": 0.2}, "d2")
    with pytest.raises(RunFolderError, match="with other settings and other data"):
        open_run_folder(tmp_path, "pretrain", {"t": 0.1}, "d2")


def test_start_over_removes_only_what_a_run_writes(tmp_path: Path) -> None:
    for name in RUN_OUTPUTS:
        target = tmp_path / name
        if name in ("checkpoints", "logs"):
            target.mkdir()
            (target / "x").write_text("x")
        else:
            target.write_text("{}")
    (tmp_path / "run.json").write_text(json.dumps({"kind": "finetune"}))
    (tmp_path / "mine.txt").write_text("mine")
    run = open_run_folder(tmp_path, "finetune", {}, "d", resume=False)
    assert run.fresh and sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_start_over_on_another_process_removes_nothing(tmp_path: Path) -> None:
    open_run_folder(tmp_path, "finetune", {}, "d").write()
    open_run_folder(tmp_path, "finetune", {}, "d", resume=False, writer=False)
    assert (tmp_path / RUN_FILE).is_file()


def test_folder_of_an_older_version_is_adopted_after_comparing_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"lr": 0.1, "max_epochs": 3}))
    run = open_run_folder(tmp_path, "finetune", {"lr": 0.1, "max_epochs": 5}, "d")
    assert not run.fresh and "older version" in run.notes[0]
    with pytest.raises(RunFolderError, match=re.escape("lr: 0.1 (in the folder) → 0.2 (now)")):
        open_run_folder(tmp_path, "finetune", {"lr": 0.2}, "d")


def test_unreadable_run_file_is_named(tmp_path: Path) -> None:
    (tmp_path / RUN_FILE).write_text("{not json")
    with pytest.raises(RunFolderError, match=f"{RUN_FILE} is unreadable"):
        open_run_folder(tmp_path, "finetune", {}, "d")


def test_run_checkpoint_keeps_model_checkpoint_state_key(tmp_path: Path) -> None:
    kwargs = dict(dirpath=tmp_path, monitor="val/mre_px", mode="min")
    assert RunCheckpoint(**kwargs).state_key == ModelCheckpoint(**kwargs).state_key
    with pytest.raises(ValueError, match="needs dirpath"):
        RunCheckpoint(monitor="x")


def test_run_checkpoint_maps_saved_paths_into_its_folder(tmp_path: Path) -> None:
    (tmp_path / "best-002.ckpt").write_text("x")
    ckpt = RunCheckpoint(dirpath=tmp_path, monitor="m")
    old = "/elsewhere/run/checkpoints"
    ckpt.load_state_dict({"dirpath": old, "best_model_path": f"{old}/best-002.ckpt", "best_model_score": 0.5,
                          "best_k_models": {f"{old}/best-002.ckpt": 0.5, f"{old}/best-001.ckpt": 0.7},
                          "kth_best_model_path": f"{old}/best-002.ckpt", "last_model_path": ""})
    moved = str(tmp_path / "best-002.ckpt")
    assert ckpt.best_model_path == moved and ckpt.kth_best_model_path == moved
    assert ckpt.best_k_models == {moved: 0.5} and ckpt.best_model_score == 0.5


SCRIPT = """
import sys, torch
from pathlib import Path
import pytorch_lightning as pl
from sslkeypoint.configs import TrainerConfig
from sslkeypoint.recipes import run_finetuning
from tests.lightning.test_finetune import make_blobs, tiny_config

class Announce(pl.Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 1:
            Path(sys.argv[2]).write_text("epoch 1")

torch.set_num_threads(1)
recs = make_blobs(Path(sys.argv[1]) / "data", n=10)
run_finetuning(tiny_config(max_epochs=1000), recs, Path(sys.argv[1]) / "run", progress=False,
               trainer=TrainerConfig(accelerator="cpu", devices=1, num_sanity_val_steps=0), callbacks=[Announce()])
"""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_sigterm_from_outside_exits_143_and_says_what_was_saved(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    flag = tmp_path / "flag"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(flag)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert flag.exists(), proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "run stopped by SIGTERM" in err and re.search(r"last.ckpt \(after epoch \d+, step \d+\)", err)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["interrupted"] == "SIGTERM"
