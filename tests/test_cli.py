"""Tests of the command line, ``python -m sslkeypoint``: generated options, configs, every command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from sslkeypoint.cli import COMMANDS, build_parser, main, normalise
from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TINY = ["--input_size", "[32, 32]", "--heatmap_size", "[16, 16]", "--sigma", "1.0",
        "--encoder_kwargs", "{widths: [4, 8], bottleneck_width: 8}", "--trainer.num_sanity_val_steps", "0",
        "--trainer.accelerator", "cpu", "--progress", "false"]


def _blob(kp: np.ndarray, size: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    img = sum((0.5 + 0.5 * j) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0) for j, (x, y) in enumerate(kp))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def records(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["path,group,pixel_size_mm,A_x,A_y,B_x,B_y"]
    for i in range(10):
        kp = rng.uniform(6, 41, size=(2, 2))
        Image.fromarray(_blob(kp)).save(tmp_path / f"im{i}.png")
        rows.append(f"im{i}.png,g{i // 2},0.5,{kp[0, 0]},{kp[0, 1]},{kp[1, 0]},{kp[1, 1]}")
    (tmp_path / "records.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "records.csv"


def test_every_config_field_is_an_option_with_its_documentation() -> None:
    cfg = build_parser("finetune").parse_args(["--records", "r.csv", "--out", "o"])
    for name in FinetuneConfig.__dataclass_fields__:
        assert name in cfg or name == "num_keypoints", name  # K comes from the records
    for name in TrainerConfig.__dataclass_fields__:
        assert f"trainer.{name}" in cfg, name
    pre = build_parser("pretrain").parse_args(["--images", "i", "--out", "o", "--image_size", "[32, 32]"])
    for name in PretrainConfig.__dataclass_fields__:
        assert name in pre, name
    text = build_parser("finetune").format_help()
    assert "Adam learning rate" in text and "--early_stopping_patience" in text and "COCO keypoints" in text


def test_help_lists_every_command_without_importing_torch() -> None:
    proc = subprocess.run([sys.executable, "-m", "sslkeypoint", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and all(f"  {c}" in proc.stdout for c in COMMANDS)
    # What makes --help fast: no torch (seconds to import) behind the list of commands.
    code = "import sys, sslkeypoint.cli, sslkeypoint; sslkeypoint.cli.main(['--help']); print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "'torch'" not in loaded and "'pytorch_lightning'" not in loaded
    assert main(["train"]) == 2


def test_profiles_set_the_starting_values_and_fields_override_them() -> None:
    cpu = build_parser("finetune").parse_args(["--records", "r", "--out", "o"])
    assert cpu.lr == 1e-3 and tuple(cpu.input_size) == (128, 128) and cpu.augment is True
    from sslkeypoint.cli import _parse

    paper = _parse("finetune", ["--records", "r", "--out", "o", "--profile", "paper", "--lr", "2e-5"])
    assert paper.lr == 2e-5 and paper.max_epochs == 1000 and tuple(paper.input_size) == (256, 256)
    stage2 = _parse("pretrain", ["--sequences", "s", "--out", "o"])
    assert stage2.stage == 2 and stage2.plateau is True and tuple(stage2.image_size) == (128, 128)


def test_print_config_round_trips_through_yaml_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["finetune", "--records", "r.csv", "--out", "o", "--lr", "0.01", "--method", "MeanTeacherMethod",
            "--measures", "{d: {class_path: DistanceMeasure, init_args: {first: 0, second: 1}}}"]
    assert main([*args, "--print_config"]) == 0
    printed = capsys.readouterr().out
    (tmp_path / "c.yaml").write_text(printed)
    (tmp_path / "c.json").write_text(json.dumps(yaml.safe_load(printed)))
    from sslkeypoint.cli import _parse

    def values(cfg) -> dict:  # lists and tuples alike; the config file list aside
        return json.loads(json.dumps({k: v for k, v in cfg.as_dict().items() if k != "config"}))

    direct = _parse("finetune", args[1:])
    for name in ("c.yaml", "c.json"):
        assert values(_parse("finetune", ["--config", str(tmp_path / name)])) == values(direct)
    assert main(["finetune", "--config", str(tmp_path / "c.yaml"), "--print_config"]) == 0
    assert capsys.readouterr().out == printed


def test_a_bad_config_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cut.yaml").write_text("records: [a\n")
    assert main(["finetune", "--config", str(tmp_path / "cut.yaml"), "--out", "o"]) == 2
    assert "cut.yaml" in capsys.readouterr().err
    (tmp_path / "wrong.yaml").write_text("learning_rate: 1\n")
    assert main(["finetune", "--config", str(tmp_path / "wrong.yaml"), "--records", "r", "--out", "o"]) == 2
    assert "learning_rate" in capsys.readouterr().err


def test_dashes_and_no_switches_are_accepted() -> None:
    assert normalise(["--no-resume", "--init-encoder", "a-b", "--val-records=x"]) == [
        "--resume=false", "--init_encoder", "a-b", "--val_records=x"]


def test_finetune_evaluate_predict_export_from_one_records_file(records: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    measure = "{span: {class_path: DistanceMeasure, init_args: {first: 0, second: 1}}}"
    assert main(["finetune", "--records", str(records), "--out", str(run), *TINY, "--max_epochs", "1",
                 "--batch_size", "4", "--lr", "1e-3", "--measures", measure]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("finetune: 1 epochs, best validation error") and "mm" in line and "by group" in line
    summary = json.loads((run / "summary.json").read_text())
    assert math.isfinite(summary["best_metrics"]["val/span_mae_mm"])
    saved = FinetuneConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert saved.keypoint_names == ("A", "B") and saved.num_keypoints == 2 and list(saved.measures) == ["span"]

    ev = tmp_path.parent / f"{tmp_path.name}_ev"
    assert main(["evaluate", "--model", str(run), "--records", str(records), "--out", str(ev)]) == 0
    assert "mean mm" in capsys.readouterr().out
    assert json.loads((ev / "metrics.json").read_text())["count"] == 10

    (tmp_path / "sizes.csv").write_text("filename,pixel_size_mm\nim0.png,0.5\n")
    pred = ev / "pred.csv"
    assert main(["predict", "--model", str(run), "--images", str(tmp_path), "--out", str(pred),
                 "--pixel_size", str(tmp_path / "sizes.csv")]) == 0
    lines = pred.read_text().splitlines()
    assert lines[0].startswith("file,A_x,A_y,A_score,B_x") and lines[0].endswith("span_mm,pixel_size_mm")
    assert len(lines) == 11 and lines[1].startswith("im0.png,") and lines[2].endswith(",")  # no size: empty mm

    onnx = ev / "m.onnx"
    assert main(["export", "--model", str(run), "--out", str(onnx), "--check_images", str(tmp_path)]) == 0
    assert "checked on 10 images: within" in capsys.readouterr().out
    assert main(["export", "--model", str(run), "--out", str(ev / "resized.onnx"), "--original_pixels", "false",
                 "--check_images", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert "keypoints in input pixels" in said and "checked on 10 images: within" in said


def test_pretrain_runs_two_steps(tmp_path: Path) -> None:
    for i in range(12):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    code = main([
        "pretrain", "--images", str(tmp_path), "--out", str(tmp_path / "run"), "--image_size", "[32, 32]",
        "--encoder_kwargs", "{widths: [8, 16], bottleneck_width: 32}", "--batch_size", "4", "--max_steps", "2",
        "--method", "{class_path: MoCoV2Method, init_args: {queue_size: 8}}",
        "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    assert (tmp_path / "run" / "encoder.safetensors").is_file()
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2 and ckpt["sslkeypoint"]["config"]["image_size"] == [32, 32]
    assert ckpt["sslkeypoint"]["config"]["method"]["kwargs"]["queue_size"] == 8


def test_bad_files_give_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("path,x1,y1\na.png,1,abc\n")
    assert main(["finetune", "--records", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "row 2, column 'y1'" in err and "Traceback" not in err
    assert main(["predict", "--model", str(tmp_path / "none"), "--images", str(tmp_path), "--out", "p.csv"]) == 2
    assert "--model" in capsys.readouterr().err


def test_every_option_of_every_command_says_what_it_does() -> None:
    for command in COMMANDS:
        parser = build_parser(command)
        silent = [a.option_strings for a in parser._actions if a.option_strings and not (a.help or "").strip()]
        assert silent == [], f"{command}: options without help {silent}"
