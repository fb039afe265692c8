"""Tests of the generated command line, ``python -m sslkeypoint pretrain|finetune``."""

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

from sslkeypoint.cli import build_parser, main
from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _blob(kp: np.ndarray, size: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    img = sum((0.5 + 0.5 * j) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0) for j, (x, y) in enumerate(kp))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def test_every_config_field_is_an_option() -> None:
    text = build_parser().parse_args(["finetune", "--records", "r.csv", "--out", "o"])
    for cls in (FinetuneConfig, TrainerConfig):
        for name in cls.__dataclass_fields__:
            assert hasattr(text, name), name
    method = '{"class": "sslkeypoint.methods.MoCoV2Method", "kwargs": {"cap_queue": false}}'
    pre = build_parser().parse_args(["pretrain", "--images", "i", "--out", "o", "--image-size", "32", "32",
                                     "--method", method, "--encoder-kwargs", '{"widths": [4]}', "--devices", "2"])
    assert pre.image_size == [32, 32] and pre.method["kwargs"] == {"cap_queue": False}
    assert pre.encoder_kwargs == {"widths": [4]}
    assert pre.devices == 2 and pre.max_epochs is None
    for name in PretrainConfig.__dataclass_fields__:
        assert hasattr(pre, name), name


def test_help_runs_as_a_module() -> None:
    proc = subprocess.run([sys.executable, "-m", "sslkeypoint", "finetune", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    assert "--records" in proc.stdout and "x1,y1,x2,y2" in proc.stdout and "--early-stopping-patience" in proc.stdout


def test_finetune_runs_one_epoch_with_a_measure(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["path,A_x,A_y,B_x,B_y"]
    for i in range(10):
        kp = rng.uniform(6, 41, size=(2, 2))
        Image.fromarray(_blob(kp)).save(tmp_path / f"im{i}.png")
        rows.append(f"im{i}.png,{kp[0, 0]},{kp[0, 1]},{kp[1, 0]},{kp[1, 1]}")
    (tmp_path / "records.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "cfg.json").write_text(json.dumps({"input_size": [32, 32], "heatmap_size": [16, 16], "sigma": 1.0}))
    measure = {"span": {"class": "sslkeypoint.measures.DistanceMeasure", "kwargs": {"first": 0, "second": 1}}}
    code = main([
        "finetune", "--records", str(tmp_path / "records.csv"), "--out", str(tmp_path / "cli"),
        "--config", str(tmp_path / "cfg.json"), "--encoder-kwargs", '{"widths": [4, 8], "bottleneck_width": 8}',
        "--max-epochs", "1", "--batch-size", "4", "--lr", "1e-3", "--no-progress", "--num-sanity-val-steps", "0",
        "--accelerator", "cpu", "--measures", json.dumps(measure),
    ])  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["epochs"] == 1 and math.isfinite(summary["best_metrics"]["val/span_mae_px"])
    saved = FinetuneConfig.from_dict(json.loads((tmp_path / "cli" / "config.json").read_text()))
    assert saved.keypoint_names == ("A", "B") and saved.num_keypoints == 2 and saved.sigma == 1.0
    assert list(saved.measures) == ["span"]


def test_pretrain_runs_two_steps(tmp_path: Path) -> None:
    for i in range(12):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    code = main([
        "pretrain", "--images", str(tmp_path), "--out", str(tmp_path / "run"), "--image-size", "32", "32",
        "--encoder-kwargs", '{"widths": [8, 16], "bottleneck_width": 32}', "--batch-size", "4", "--max-steps", "2",
        "--method", '{"class": "sslkeypoint.methods.MoCoV2Method", "kwargs": {"queue_size": 8}}',
        "--accelerator", "cpu", "--devices", "1", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    assert (tmp_path / "run" / "encoder.safetensors").is_file()
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2 and ckpt["sslkeypoint"]["config"]["image_size"] == [32, 32]


def test_bad_files_give_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("path,x1,y1\na.png,1,abc\n")
    assert main(["finetune", "--records", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "row 2, column 'y1'" in err and "Traceback" not in err
    (tmp_path / "cfg.json").write_text('{"learning_rate": 1}')
    good = tmp_path / "good.csv"
    good.write_text("path,x1,y1\na.png,1,2\n")
    assert main(["finetune", "--records", str(good), "--out", str(tmp_path / "o"), "--config", str(tmp_path / "cfg.json")]) == 2
    assert "unknown FinetuneConfig fields ['learning_rate']" in capsys.readouterr().err
