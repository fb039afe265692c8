"""Both recipes under DDP on 2 CPU processes (gloo): every process sees the same figures and weights.

Lightning's ``strategy="ddp"`` on the CPU re-launches the running script for process 1, so the
runs happen in ``tests/lightning/ddp_run.py`` (in a subprocess, on a free port, one thread per
process); each process dumps what it logged and its final weights, and the tests below compare
them with each other and with figures recomputed here from the checkpoints.

Fine-tuning uses 9 training and 5 validation images (an odd number: the validation shards hold 3
and 2 images), so a figure computed on one shard, or on shards padded with repeats, differs from
the figure over the whole set and is caught.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from sslkeypoint.inference import KeypointPredictor

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SCRIPT = Path(__file__).with_name("ddp_run.py")
SIZE = 48  # original image size: validation errors are scaled from the 32-px input back to 48 px
NUM_TRAIN, NUM_VAL, NUM_PRETRAIN = 9, 5, 14
TIMEOUT_S = 300


def _blob_image(kp: np.ndarray) -> np.ndarray:
    """Two Gaussian blobs of different brightness at the keypoints ``(x, y)``."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img = np.zeros((SIZE, SIZE))
    for j, (x, y) in enumerate(kp):
        img += (0.5 + 0.5 * j) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generate the data, run ddp_run.py on 2 processes, return the paths and both dumps."""
    root = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    records = []
    for i in range(NUM_TRAIN + NUM_VAL):
        kp = rng.uniform(6, SIZE - 7, size=(2, 2))
        path = root / "images" / f"im{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(_blob_image(kp)).save(path)
        records.append([str(path), kp.tolist()])
    extra = []
    for i in range(NUM_PRETRAIN - NUM_TRAIN - NUM_VAL):
        path = root / "images" / f"extra{i:02d}.png"
        Image.fromarray(_blob_image(rng.uniform(6, SIZE - 7, size=(2, 2)))).save(path)
        extra.append(str(path))
    pool_only = []  # unlabelled images in place of the validation ones, which the pool leaves out
    for i in range(NUM_VAL):
        path = root / "images" / f"pool{i:02d}.png"
        Image.fromarray(_blob_image(rng.uniform(6, SIZE - 7, size=(2, 2)))).save(path)
        pool_only.append(str(path))
    data = {
        "train": records[:NUM_TRAIN],
        "val": records[NUM_TRAIN:],
        "images": [r[0] for r in records] + extra,
        "unlabelled": [r[0] for r in records] + extra + pool_only,
    }
    data_file = root / "data.json"
    data_file.write_text(json.dumps(data))
    out = root / "out"
    out.mkdir()
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "GLOBAL_RANK", "RANK", "PL_GLOBAL_SEED"):
        env.pop(key, None)
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), str(data_file)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launched process 1 is in the same session
        log, _ = proc.communicate()
        pytest.fail(f"the DDP run did not finish in {TIMEOUT_S} s:\n{log[-4000:]}")
    assert proc.returncode == 0, log[-6000:]
    dumps = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return {"out": out, "data": data, "dumps": dumps, "log": log}


def _val_records(run: dict[str, Any]) -> tuple[list[str], torch.Tensor]:
    paths = [p for p, _ in run["data"]["val"]]
    return paths, torch.tensor([kp for _, kp in run["data"]["val"]], dtype=torch.float64)


def _states(run: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [torch.load(run["out"] / f"{name}_state{r}.pt", weights_only=True) for r in (0, 1)]


def _assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):  # a queue's extra state: {"keys", "pointer", "groups"}
            assert a[key].keys() == b[key].keys(), key
            for part in a[key]:
                assert torch.equal(a[key][part], b[key][part]), f"{key}[{part}] differs between processes"
        else:
            assert torch.equal(a[key], b[key]), f"{key} differs between processes"


# ---------------------------------------------------------------------------------- fine-tuning


def test_finetuning_every_process_logs_the_figures_of_the_whole_validation_set(ddp_run) -> None:
    first, second = (d["finetune"] for d in ddp_run["dumps"])
    # Unequal shards were exercised: 3 and 2 validation images, every epoch.
    assert [e["val_seen"] for e in first["epochs"]] == [3, 3, 3]
    assert [e["val_seen"] for e in second["epochs"]] == [2, 2, 2]
    assert [h["epoch"] for h in first["val_history"]] == [0, 1, 2]
    assert all(h["val/count"] == NUM_VAL for h in first["val_history"])
    # Every figure of every epoch is the same on both processes (bit for bit: one gathered state).
    assert first["val_history"] == second["val_history"]
    assert first["best_epoch"] == second["best_epoch"]


def test_finetuning_logged_mre_is_the_mre_of_the_checkpoint_over_every_image(ddp_run) -> None:
    """Each checkpoint's logged val/mre_px comes back from predicting all 5 images with it."""
    history = {h["epoch"]: h for h in ddp_run["dumps"][0]["finetune"]["val_history"]}
    paths, target = _val_records(ddp_run)
    checkpoints = sorted((ddp_run["out"] / "finetune" / "checkpoints").glob("*.ckpt"))
    assert {c.name for c in checkpoints} >= {"last.ckpt"} and len(checkpoints) >= 2
    for ckpt in checkpoints:
        epoch = int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
        predicted = KeypointPredictor.from_checkpoint(ckpt).predict(paths).keypoints.double()
        errors = (predicted - target).norm(dim=-1)  # (5, 2) px in the 48-px originals
        logged = history[epoch]
        assert abs(errors.mean().item() - logged["val/mre_px"]) < 1e-4, (ckpt.name, errors.mean().item(), logged)
        for k, name in enumerate(("A", "B")):
            assert abs(errors[:, k].mean().item() - logged[f"val/{name}_px"]) < 1e-4
        # The check has teeth: a figure of one process's shard alone is another number.
        shards = [errors[r::2].mean().item() for r in (0, 1)]
        assert max(abs(s - logged["val/mre_px"]) for s in shards) > 1e-2, (shards, logged["val/mre_px"])


def test_finetuning_processes_end_with_identical_weights_and_learning_rates(ddp_run) -> None:
    first, second = (d["finetune"] for d in ddp_run["dumps"])
    # Every tensor, batch-norm running statistics included (DDP broadcasts process 0's buffers
    # at the start of every forward pass, validation's first one too).
    _assert_same_state(*_states(ddp_run, "finetune"))
    assert [e["lr"] for e in first["epochs"]] == [e["lr"] for e in second["epochs"]]
    assert [e["loss"] for e in first["epochs"]] == [e["loss"] for e in second["epochs"]]
    # The learning rate is the plateau schedule replayed on the logged (synchronised) figures.
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=3e-3)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0, min_lr=1e-8)
    expected = []
    for h in first["val_history"]:
        plateau.step(h["val/mre_px"])
        expected.append(optimizer.param_groups[0]["lr"])
    assert [e["lr"] for e in first["epochs"]] == pytest.approx(expected, rel=1e-12)


def test_run_files_are_written_by_process_0_alone_and_complete_on_return(ddp_run) -> None:
    out = ddp_run["out"]
    first, second = ddp_run["dumps"]
    runs = (str(out / "finetune"), str(out / "pretrain"))
    assert [w for w in second["writes"] if w.startswith(runs)] == []  # process 1 wrote nothing
    assert any(w.startswith(runs[0]) for w in first["writes"]) and any(w.startswith(runs[1]) for w in first["writes"])
    written = [Path(w) for w in first["writes"]]
    for path in (out / "finetune" / "config.json", out / "finetune" / "summary.json",
                 out / "finetune" / "encoder_init.txt", out / "pretrain" / "encoder.safetensors"):
        assert written.count(path) == 1, path
    summary = json.loads((out / "finetune" / "summary.json").read_text())
    assert summary == first["finetune"]["result"] == second["finetune"]["result"]
    assert summary["encoder_init"].startswith(f"encoder initialised from {out / 'pretrain'}")
    config = json.loads((out / "finetune" / "config.json").read_text())
    assert config["init_encoder"] == str(out / "pretrain" / "encoder.safetensors")
    # When run_finetuning returns, on either process, the run files are there and complete
    # (their writing is slowed down in ddp_run.py: without the recipe's barrier process 1 finds
    # no summary.json yet, and the fine-tuning could not start from the pre-trained encoder).
    for dump in (first, second):
        assert dump["finetune"]["seen"] == {"config.json": config, "summary.json": summary}


def test_finetuning_needs_a_validation_record_per_process(tmp_path) -> None:
    """An empty validation shard would stop Lightning on that process alone: refused up front."""
    from sslkeypoint.configs import FinetuneConfig, TrainerConfig
    from sslkeypoint.data import KeypointRecord
    from sslkeypoint.recipes import run_finetuning

    records = [KeypointRecord(tmp_path / f"im{i}.png", np.array([[1.0, 2.0]])) for i in range(3)]
    config = FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16), num_keypoints=1)
    trainer = TrainerConfig(accelerator="cpu", devices=2, strategy="ddp")
    with pytest.raises(ValueError, match="validation split has 1 records, fewer than the 2 processes"):
        run_finetuning(config, (records[:2], records[2:]), tmp_path / "run", trainer=trainer, progress=False)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------- mean teacher


def test_mean_teacher_processes_end_with_identical_student_and_teacher(ddp_run) -> None:
    first, second = (d["semi"] for d in ddp_run["dumps"])
    a, b = _states(ddp_run, "semi")
    assert any(key.startswith("objective.teacher.") for key in a), sorted(a)[:5]  # the teacher is in the state
    _assert_same_state(a, b)
    assert first["val_history"] == second["val_history"] and len(first["val_history"]) == 2
    assert [e["loss"] for e in first["epochs"]] == [e["loss"] for e in second["epochs"]]
    # The teacher moved away from its start (the student's random weights) and is not the student.
    teacher = {"model." + k.removeprefix("objective.teacher.network."): v for k, v in a.items()
               if k.startswith("objective.teacher.")}
    assert teacher.keys() <= a.keys(), sorted(teacher.keys() - a.keys())[:5]
    differs = [k for k, v in teacher.items() if v.is_floating_point() and not torch.equal(v, a[k])]
    assert differs, "the teacher equals the student"
    summary = json.loads((ddp_run["out"] / "semi" / "summary.json").read_text())
    assert summary == first["result"] == second["result"]


def test_pseudo_label_rounds_agree_on_every_process(ddp_run) -> None:
    """Process 0 labels the pool once; both processes train the same student on the same labels."""
    first, second = (d["pseudo"] for d in ddp_run["dumps"])
    out = ddp_run["out"] / "pseudo"
    labels = json.loads((out / "round1" / "pseudo_labels.json").read_text())
    # The pool: every unlabelled image but the 9 labelled training ones and the 5 validation ones.
    assert labels["stats"]["images"] == NUM_PRETRAIN - NUM_TRAIN - NUM_VAL + NUM_VAL
    assert first["result"]["pseudo_labels"] == second["result"]["pseudo_labels"] != []
    assert first["result"]["best_metrics"] == second["result"]["best_metrics"]
    _assert_same_state(*_states(ddp_run, "pseudo"))
    assert [e["loss"] for e in first["epochs"]] == [e["loss"] for e in second["epochs"]]
    assert json.loads((out / "summary.json").read_text())["pseudo_labels"] == first["result"]["pseudo_labels"]


def test_mean_teacher_processes_draw_disjoint_shares_of_the_unlabelled_pool(ddp_run) -> None:
    first, second = (d["semi"]["unlabelled"] for d in ddp_run["dumps"])
    # The validation images given in the pool are left out on both processes: 14 images remain.
    assert [d["semi"]["result"]["unlabelled_left_out"] for d in ddp_run["dumps"]] == [NUM_VAL, NUM_VAL]
    # 9 labelled images: 5 per process (padded), batches of 2 -> 3 batches of 3 unlabelled images.
    assert [len(e) for e in first] == [len(e) for e in second] == [9, 9]
    for epoch in range(2):
        # Each process's first round is its 7 images of the epoch's permutation of the 14: no image
        # twice within it, none shared by the two processes, all 14 between them.
        share = [first[epoch][:7], second[epoch][:7]]
        assert all(len(set(s)) == 7 for s in share), share
        assert not set(share[0]) & set(share[1])
        assert len(set(share[0]) | set(share[1])) == NUM_PRETRAIN
    assert first[0] != first[1]  # a new permutation every epoch


# ---------------------------------------------------------------------------------- pre-training


def test_pretraining_processes_agree_on_loss_weights_and_queue(ddp_run) -> None:
    first, second = (d["pretrain"] for d in ddp_run["dumps"])
    losses = [e["loss"] for e in first["epochs"]]
    assert len(losses) == 2 and losses == [e["loss"] for e in second["epochs"]]
    assert first["global_step"] == second["global_step"] == 2 * 3  # 14 images: 7 per process, batches of 2
    # The epoch loss is the mean of the (synchronised) step losses of that epoch.
    log = np.genfromtxt(ddp_run["out"] / "pretrain" / "logs" / "version_0" / "metrics.csv", delimiter=",", names=True)
    for epoch, loss in enumerate(losses):
        steps = log["train_loss_step"][(log["epoch"] == epoch) & np.isfinite(log["train_loss_step"])]
        assert len(steps) == 3 and loss == pytest.approx(float(steps.mean()), abs=1e-6)
    a, b = _states(ddp_run, "pretrain")
    queue = "model.criterion.memory_bank._extra_state"
    assert int(a[queue]["pointer"]) == (6 * 4) % first["queue_size"]  # 4 keys (2 per process) per step
    assert set(a[queue]["groups"].tolist()) <= set(range(NUM_PRETRAIN))  # image indices, gathered
    # Query and key encoders, heads, queue (keys, pointer, groups) and, after training, the
    # batch-norm running statistics (process 0's, the ones the saved files hold) are identical.
    _assert_same_state(a, b)
    from sslkeypoint.weights import load_state_dict_file

    saved = load_state_dict_file(ddp_run["out"] / "pretrain" / "encoder.safetensors")
    for key, value in saved.items():
        assert torch.equal(value, a[f"model.encoder.{key}"]), key


def test_pretraining_processes_draw_their_own_augmentations(ddp_run) -> None:
    """One seed on every process must not mean the same crops for image i of each process's batch."""
    first, second = (d["pretrain"]["augment_rng"] for d in ddp_run["dumps"])
    assert len(first) == len(second) == 2 * 6  # query and key views, 6 steps
    assert not set(first) & set(second)
    assert len(set(first)) == len(first)
