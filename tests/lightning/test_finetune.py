"""Tests of heatmap fine-tuning: the LightningModule, run_finetuning (invalid samples, resume, learning on a
synthetic keypoint set), overfitting one batch and checkpoint reloading."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from sslkeypoint.configs import FinetuneConfig, TrainerConfig
from sslkeypoint.data import FilteringCollate, KeypointDataset, KeypointRecord
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.lightning import HeatmapFinetuneModule, overfit_one_batch
from sslkeypoint.losses import heatmap_mse_loss
from sslkeypoint.recipes import run_finetuning
from sslkeypoint.weights import save_state_dict

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TRAINER = TrainerConfig(accelerator="cpu", devices=1, deterministic=True, num_sanity_val_steps=0)

SIZE = 48  # original image size of the synthetic set


def tiny_config(**kw) -> FinetuneConfig:
    base = dict(
        input_size=(32, 32),
        heatmap_size=(16, 16),
        sigma=1.0,
        num_keypoints=2,
        keypoint_names=("A", "B"),
        lr=3e-3,
        batch_size=2,
        encoder_kwargs={"widths": (8, 16), "bottleneck_width": 16},
        max_epochs=8,
    )
    base.update(kw)
    return FinetuneConfig(**base)


def blob_image(kp: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Two Gaussian blobs of different brightness at the keypoints (x, y)."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.zeros((size, size))
    for j, (x, y) in enumerate(kp):
        img += (0.5 + 0.5 * j) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_blobs(root: Path, n: int = 24, seed: int = 0) -> list[KeypointRecord]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        kp = rng.uniform(6, SIZE - 7, size=(2, 2))
        path = root / f"im{i:02d}.png"
        Image.fromarray(blob_image(kp)).save(path)
        records.append(KeypointRecord(path, kp))
    return records


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads; on a busy shared CPU two threads that
    wait on each other make these runs many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> list[KeypointRecord]:
    return make_blobs(tmp_path_factory.mktemp("blobs"))


# ---------------------------------------------------------------------------------- config, losses








# ---------------------------------------------------------------------------------- validation split


def test_validation_split_keeps_groups_whole_and_says_so() -> None:
    from sslkeypoint.recipes.finetune import _split

    records = [KeypointRecord(f"/d/im{i}.png", np.zeros((2, 2)), group=f"v{i // 4}") for i in range(40)]
    train, val, how = _split(records, tiny_config(val_fraction=0.2))
    assert {r.group for r in train}.isdisjoint({r.group for r in val})
    assert len({r.group for r in val}) == 2 and len(val) == 8
    assert how == "by group (the records' groups): 2 of 10 groups, 8 of 40 images, for validation"


def test_validation_split_uses_folders_when_records_have_no_groups() -> None:
    from sslkeypoint.recipes.finetune import FOLDER_GROUPS, _split

    records = [KeypointRecord(f"/d/video{i % 5}/f{i}.png", np.zeros((2, 2))) for i in range(30)]
    train, val, how = _split(records, tiny_config())
    assert {Path(r.path).parent for r in train}.isdisjoint({Path(r.path).parent for r in val})
    assert how.startswith("by group (the images' folders): 1 of 5 groups")
    flat = [KeypointRecord(f"/d/f{i}.png", np.zeros((2, 2))) for i in range(30)]
    assert FOLDER_GROUPS > 1 and _split(flat, tiny_config())[2].startswith("image by image (no groups known): 6 of 30")
    pair = (flat[:20], flat[20:])
    assert _split(pair, tiny_config())[2] == "given: 20 training and 10 validation images"


# ---------------------------------------------------------------------------------- records files








# ---------------------------------------------------------------------------------- training runs


def test_bad_samples_are_dropped_counted_and_the_rest_trains(tmp_path, blobs) -> None:
    data = tmp_path / "bad"
    data.mkdir()
    good = list(blobs[:8])
    kp = np.array([[10.0, 12.0], [30.0, 20.0]])
    png_as_jpg = data / "png_inside.jpg"
    Image.fromarray(blob_image(kp)).save(png_as_jpg, format="PNG")
    corrupt = data / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    bad = [
        KeypointRecord(data / "missing.png", kp),
        KeypointRecord(corrupt, kp),
        KeypointRecord(png_as_jpg, kp),  # valid: decoded by content
        KeypointRecord(png_as_jpg, np.array([[10.0, 12.0], [np.nan, np.nan]])),  # valid, one invisible
        KeypointRecord(png_as_jpg, np.full((2, 2), np.nan)),  # nothing visible
        KeypointRecord(png_as_jpg, np.array([[10.0, 12.0], [60.0, 20.0]])),  # out of the 48x48 frame
    ]
    val = [*blobs[8:12], KeypointRecord(data / "missing_val.png", kp)]
    # Encoder initialisation from a "pre-trained" file with prefixed keys.
    cfg = tiny_config(max_epochs=1, batch_size=4)
    donor = HeatmapFinetuneModule(cfg)
    init = tmp_path / "encoder.safetensors"
    save_state_dict({f"backbone.{k}": v for k, v in donor.model.encoder.state_dict().items()}, init)
    cfg = tiny_config(max_epochs=1, batch_size=4, init_encoder=str(init))
    result = run_finetuning(cfg, (good + bad, val), tmp_path / "run", progress=False, trainer=TRAINER)

    last = result.drop_summary["last_epoch"]
    assert last["train"]["seen"] == 14 and last["train"]["dropped"] == 4
    assert last["train"]["reasons"] == {
        "missing file": 1,
        "unreadable image": 1,
        "no visible keypoint": 1,
        "keypoint outside the image": 1,
    }
    assert last["val"] == {"seen": 5, "dropped": 1, "reasons": {"missing file": 1}}
    dropped = result.drop_summary["dropped"]
    assert str(data / "missing.png") in dropped and str(corrupt) in dropped
    assert "outside" in dropped[str(png_as_jpg)] or "no visible" in dropped[str(png_as_jpg)]
    # 14 training records in batches of 4; with this seed no batch is entirely invalid.
    assert result.global_step == math.ceil(14 / 4)
    assert result.best_metrics["val/count"] == 4.0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["drop_summary"]["last_epoch"]["train"]["dropped"] == 4
    assert summary["split"] == "given: 14 training and 5 validation images"
    # The encoder was initialised from the file and the report was saved.
    text = (tmp_path / "run" / "encoder_init.txt").read_text()
    assert "LoadReport: loaded" in text and result.encoder_init is not None
    assert (tmp_path / "run" / "logs").is_dir()


@pytest.fixture(scope="module")
def four_epochs(tmp_path_factory, blobs):
    out = tmp_path_factory.mktemp("run4")
    cfg = tiny_config(augment=True, augment_kwargs={"rotation": 5.0, "translate": 0.02, "scale": None})
    return cfg, run_finetuning(cfg, blobs, out, progress=False, trainer=TRAINER)


def test_resume_matches_uninterrupted_run(tmp_path, blobs, four_epochs) -> None:
    cfg, full = four_epochs
    out = tmp_path / "interrupted"
    first = run_finetuning(cfg, blobs, out, progress=False, trainer=TRAINER, max_epochs=3)
    assert first.epochs == 3
    resumed = run_finetuning(cfg, blobs, out, progress=False, trainer=TRAINER)
    assert resumed.epochs == 8 and resumed.global_step == full.global_step
    a = torch.load(resumed.last_checkpoint, weights_only=True)
    b = torch.load(full.last_checkpoint, weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], atol=1e-6, rtol=0)
    assert a["lr_schedulers"] == b["lr_schedulers"] and a["lr_schedulers"][0]["num_bad_epochs"] >= 0
    hist_a = [h["val/mre_px"] for h in resumed.val_history]
    hist_b = [h["val/mre_px"] for h in full.val_history]
    assert len(hist_a) == 8 and hist_a == pytest.approx(hist_b, abs=1e-6)


def test_finetuning_lowers_validation_error(four_epochs) -> None:
    _, result = four_epochs
    history = [h["val/mre_px"] for h in result.val_history]
    assert len(history) == 8
    # From ~30 px after the first epoch (about chance on 48 px images) to a few px.
    assert history[-1] < 3.0 and history[-1] < 0.2 * history[0], history
    assert result.best_metrics["val/mre_px"] == min(history)
    assert result.best_checkpoint is not None and result.best_checkpoint.is_file()
    assert {"val/A_px", "val/B_px", "val/heatmap_mse", "val/heatmap_mae"} <= set(result.best_metrics)


def test_predictor_from_checkpoint_reproduces_validation(four_epochs, blobs) -> None:
    """Inference decodes exactly as validation: the logged MRE comes back from predict()."""
    cfg, result = four_epochs
    from sslkeypoint.data import split_records

    _, val = split_records(blobs, val_fraction=cfg.val_fraction, seed=cfg.seed)
    predictor = KeypointPredictor.from_checkpoint(result.best_checkpoint)
    assert predictor.keypoint_names == ("A", "B") and predictor.input_size == (32, 32)
    out = predictor.predict([r.path for r in val])
    gt = torch.tensor(np.stack([r.keypoints for r in val]), dtype=torch.float32)
    mre = (out.keypoints - gt).norm(dim=-1).mean().item()
    assert mre == pytest.approx(result.best_metrics["val/mre_px"], abs=1e-3)
    module = HeatmapFinetuneModule.load_from_checkpoint(result.best_checkpoint, weights_only=True)
    assert module.config == cfg


def test_overfit_one_batch_reaches_near_zero(blobs) -> None:
    cfg = tiny_config(encoder_kwargs={"widths": (16, 32), "bottleneck_width": 32})
    ds = KeypointDataset(blobs[:4], input_size=cfg.input_size, in_chans=1)
    batch = FilteringCollate()([ds[i] for i in range(4)])
    torch.manual_seed(0)
    report = overfit_one_batch(cfg, batch, steps=150, lr=1e-2)
    assert report["passed"], {k: v for k, v in report.items() if k != "loss"}
    assert report["ratio"] < 0.05 and report["final_loss"] < 0.05 * report["initial_loss"]
    assert report["mre_input_px"] < 1.0
    assert len(report["loss"]) == 150


def test_overfit_one_batch_flags_a_broken_setup(blobs) -> None:
    """Targets that move every step cannot be memorised: the check must fail."""
    cfg = tiny_config()
    module = HeatmapFinetuneModule(cfg, loss_fn=lambda p, t, v: heatmap_mse_loss(p, torch.rand_like(t)))
    ds = KeypointDataset(blobs[:4], input_size=cfg.input_size, in_chans=1)
    batch = FilteringCollate()([ds[i] for i in range(4)])
    report = overfit_one_batch(module, batch, steps=20, lr=3e-3)
    assert not report["passed"]


def test_module_skips_empty_batches() -> None:
    module = HeatmapFinetuneModule(tiny_config())
    assert module.training_step(None, 0) is None
    assert module.training_step({"dropped": [], "num_samples": 4}, 0) is None


# ---------------------------------------------------------------------------------- command line





class _FreezeChannel(pl.Callback):
    """Make keypoint 0's heatmap image-independent: its head weights zero and frozen."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        head = pl_module.model.head
        with torch.no_grad():
            head.weight[0].zero_()
            head.bias[0] = 0.0
        head.weight.register_hook(lambda g: g * torch.tensor([0.0, 1.0], dtype=g.dtype)[:, None, None, None])
        head.bias.register_hook(lambda g: g * torch.tensor([0.0, 1.0], dtype=g.dtype))


def test_a_landmark_predicted_at_one_place_is_reported(tmp_path, blobs) -> None:
    # Keypoint A's heatmap is the same for every image, so it is decoded at one place: the run
    # warns about it by name and lists it in the result; B is not listed.
    with pytest.warns(UserWarning, match="landmark A is predicted at nearly the same place"):
        result = run_finetuning(tiny_config(max_epochs=3), blobs, tmp_path / "run", trainer=TRAINER,
                                progress=False, callbacks=[_FreezeChannel()])
    assert list(result.collapsed_landmarks) == ["A"]
    assert result.collapsed_landmarks["A"] < 0.1
    assert result.best_metrics["val/B_spread_ratio"] > 0.1
