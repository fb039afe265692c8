"""Tests for sslkeypoint.tasks.finetune: config, losses, records files, invalid samples, resume,
learning on a synthetic keypoint set, overfitting one batch, the CLI and checkpoint reloading."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sslkeypoint.data import FilteringCollate, InvalidSample, KeypointDataset, KeypointRecord
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.tasks.finetune import (
    EpochShuffleSampler,
    FinetuneConfig,
    HeatmapFinetuneModule,
    ReportingCollate,
    heatmap_mse_loss,
    main,
    masked_heatmap_mse_loss,
    overfit_one_batch,
    read_records,
    run_finetuning,
)
from sslkeypoint.weights import save_state_dict

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

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
        num_sanity_val_steps=0,
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


def test_config_defaults_are_the_paper() -> None:
    cfg = FinetuneConfig()
    assert cfg.input_size == (256, 256) and cfg.heatmap_size == (64, 64) and cfg.sigma == 2.0
    assert cfg.lr == 1e-5 and cfg.batch_size == 8 and cfg.max_epochs == 1000
    assert cfg.val_fraction == 0.2 and cfg.loss == "mse" and cfg.heatmap_stride == 4


def test_config_round_trip_and_errors() -> None:
    cfg = tiny_config(aop_indices=[0, 1, 1], num_keypoints=2, keypoint_names=None)
    again = FinetuneConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.aop_indices == (0, 1, 1)
    with pytest.raises(ValueError, match="unknown FinetuneConfig fields"):
        FinetuneConfig.from_dict({"lr": 1.0, "learning_rate": 2.0})
    with pytest.raises(ValueError, match="integer multiple"):
        FinetuneConfig(input_size=(256, 256), heatmap_size=(60, 64))
    with pytest.raises(ValueError, match="aop_indices"):
        FinetuneConfig(num_keypoints=3, aop_indices=(0, 1, 3))
    with pytest.raises(ValueError, match="keypoint_names"):
        FinetuneConfig(num_keypoints=3, keypoint_names=("a", "b"))


def test_losses_golden() -> None:
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 0, 0] = 2.0  # squared error 4 in one of 8 pixels
    target[0, 1] = 1.0  # squared error 1 in 4 pixels
    assert heatmap_mse_loss(pred, target).item() == pytest.approx((4 + 4) / 8)
    vis = torch.tensor([[True, False]])
    assert masked_heatmap_mse_loss(pred, target, vis).item() == pytest.approx(4 / 4)
    assert masked_heatmap_mse_loss(pred, target, torch.zeros(1, 2, dtype=torch.bool)).item() == 0.0
    with pytest.raises(ValueError, match="same shape"):
        heatmap_mse_loss(pred, target[:, :1])


def test_epoch_sampler_is_a_function_of_seed_and_epoch() -> None:
    a, b = EpochShuffleSampler(20, seed=3), EpochShuffleSampler(20, seed=3)
    a.set_epoch(5)
    b.set_epoch(5)
    assert list(a) == list(b) and sorted(a) == list(range(20))
    b.set_epoch(6)
    assert list(a) != list(b)


def test_reporting_collate_counts_and_keeps_batches() -> None:
    good = {"image": torch.zeros(1, 2, 2), "path": "a.png"}
    collate = ReportingCollate(FilteringCollate())
    batch = collate([good, InvalidSample(1, "b.png", "missing file", "")])
    assert batch["image"].shape == (1, 1, 2, 2) and batch["num_samples"] == 2
    assert batch["dropped"] == [("b.png", "missing file", "")]
    empty = collate([InvalidSample(2, "c.png", "unreadable image", "bad header")])
    assert "image" not in empty and empty["dropped"] == [("c.png", "unreadable image", "bad header")]


# ---------------------------------------------------------------------------------- records files


def test_read_records_csv_points_and_pairs(tmp_path) -> None:
    f = tmp_path / "points.csv"
    f.write_text('Filename,PS1,PS2,FH1\nimg/a.jpg,"(300, 80)",[200 80],\n/abs/b.png,"(1,2)","(3, 4)","(5.5, 6e1)"\n')
    records, names = read_records(f)
    assert names == ("PS1", "PS2", "FH1")
    assert records[0].path == tmp_path / "img" / "a.jpg" and records[1].path == Path("/abs/b.png")
    np.testing.assert_array_equal(records[1].keypoints, [[1, 2], [3, 4], [5.5, 60]])
    assert np.isnan(records[0].keypoints[2]).all()

    g = tmp_path / "pairs.csv"
    g.write_text("path,PS1_x,PS1_y,PS2_x,PS2_y\na.png,1,2,3,4\nb.png,5,6,,\n")
    records, names = read_records(g)
    assert names == ("PS1", "PS2")
    np.testing.assert_array_equal(records[0].keypoints, [[1, 2], [3, 4]])
    assert np.isnan(records[1].keypoints[1]).all()

    h = tmp_path / "anon.csv"
    h.write_text("path,a,b\nx.png,1,2\n")
    assert read_records(h)[1] is None


def test_read_records_errors_name_file_row_column(tmp_path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text('Filename,PS1,PS2\na.png,"(1, 2)","(3, 4)"\nb.png,"(1, 2)","(3, 4, 5)"\n')
    with pytest.raises(ValueError, match=r"bad\.csv, row 3, column 'PS2'.*\(3, 4, 5\)"):
        read_records(f)
    g = tmp_path / "odd.csv"
    g.write_text("path,x1,y1,x2\na.png,1,2,3\n")
    with pytest.raises(ValueError, match="pairs"):
        read_records(g)
    h = tmp_path / "short.csv"
    h.write_text("path,x1,y1\na.png,1\n")
    with pytest.raises(ValueError, match="row 2: expected 3 columns"):
        read_records(h)
    k = tmp_path / "word.csv"
    k.write_text("path,x1,y1\na.png,1,abc\n")
    with pytest.raises(ValueError, match="row 2, column 'y1'"):
        read_records(k)
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "none.csv")


def test_read_records_json(tmp_path) -> None:
    f = tmp_path / "r.json"
    data = {
        "keypoint_names": ["A", "B"],
        "records": [
            {"path": "a.png", "keypoints": [[1, 2], [None, None]], "meta": {"case": 3}},
            {"path": "b.png", "keypoints": [5, 6, 7, 8], "visible": [True, False]},
        ],
    }
    f.write_text(json.dumps(data))
    records, names = read_records(f)
    assert names == ("A", "B") and records[0].meta == {"case": 3}
    assert np.isnan(records[0].keypoints[1]).all()
    np.testing.assert_array_equal(records[1].keypoints, [[5, 6], [7, 8]])
    assert records[1].visible.tolist() == [True, False]
    f.write_text(json.dumps([{"path": "a.png"}]))
    with pytest.raises(ValueError, match="record 0"):
        read_records(f)


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
    result = run_finetuning(cfg, (good + bad, val), tmp_path / "run", progress=False)

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
    # The encoder was initialised from the file and the report was saved.
    text = (tmp_path / "run" / "encoder_init.txt").read_text()
    assert "LoadReport: loaded" in text and result.encoder_init is not None
    assert (tmp_path / "run" / "logs").is_dir()


@pytest.fixture(scope="module")
def four_epochs(tmp_path_factory, blobs):
    out = tmp_path_factory.mktemp("run4")
    cfg = tiny_config(augment=True, augment_kwargs={"rotation": 5.0, "translate": 0.02, "scale": None})
    return cfg, run_finetuning(cfg, blobs, out, progress=False)


def test_resume_matches_uninterrupted_run(tmp_path, blobs, four_epochs) -> None:
    cfg, full = four_epochs
    out = tmp_path / "interrupted"
    first = run_finetuning(cfg, blobs, out, progress=False, max_epochs=3)
    assert first.epochs == 3
    resumed = run_finetuning(cfg, blobs, out, progress=False)
    assert resumed.epochs == 8 and resumed.global_step == full.global_step
    a = torch.load(resumed.last_checkpoint, weights_only=True)
    b = torch.load(full.last_checkpoint, weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], atol=1e-6, rtol=0)
    assert a["sslkeypoint_state"]["plateau"] == b["sslkeypoint_state"]["plateau"]
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


def test_cli_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sslkeypoint.tasks.finetune", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    assert "--records" in proc.stdout and "x1,y1,x2,y2" in proc.stdout


def test_cli_runs_one_epoch(tmp_path, blobs) -> None:
    rows = ["path,A_x,A_y,B_x,B_y"] + [
        f"{r.path},{r.keypoints[0, 0]},{r.keypoints[0, 1]},{r.keypoints[1, 0]},{r.keypoints[1, 1]}" for r in blobs[:10]
    ]
    f = tmp_path / "records.csv"
    f.write_text("\n".join(rows) + "\n")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"input_size": [32, 32], "heatmap_size": [16, 16], "sigma": 1.0, "num_sanity_val_steps": 0}))
    code = main(
        [
            "--records", str(f), "--out", str(tmp_path / "cli"), "--config", str(cfg),
            "--encoder-kwargs", '{"widths": [4, 8], "bottleneck_width": 8}',
            "--max-epochs", "1", "--batch-size", "4", "--lr", "1e-3", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["epochs"] == 1
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert saved["keypoint_names"] == ["A", "B"] and saved["num_keypoints"] == 2
