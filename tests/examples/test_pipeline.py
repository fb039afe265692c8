"""End-to-end and command-line tests of the IUGC pipeline (``demo --profile smoke``), profiles, report."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import time
from pathlib import Path

import pytest

from iugc_aop.cli import main
from iugc_aop.landmarks import AOP
from iugc_aop.profiles import PROFILES, Profile, get_profile
from iugc_aop.report import ssl_verdict
from iugc_aop.stages import labelled_subset, stage_pretrain, stage_select
from iugc_aop.variants import DEMO_VARIANTS as VARIANTS

PIPELINE_COMMANDS = ("pretrain", "select", "pretrain-temporal", "finetune", "evaluate", "demo")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("demo") / "run"
    start = time.perf_counter()
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        rc = main(["demo", "--profile", "smoke", "--out", str(out), "--no-progress"])
    return {"rc": rc, "out": out, "seconds": time.perf_counter() - start, "stderr": said.getvalue()}


@pytest.mark.timeout(300)
def test_demo_smoke_end_to_end(demo: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo["rc"] == 0
    assert demo["seconds"] < 120, f"demo --profile smoke took {demo['seconds']:.0f} s"
    out: Path = demo["out"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == list(VARIANTS)
    report = (out / "report.md").read_text()
    assert "with two-stage SSL" in report and "## Validation split" in report  # synthetic data: both stages
    for number, name in enumerate(VARIANTS, start=1):  # each variant is reported as it finishes
        assert f"variant {number}/{len(VARIANTS)} {name}: validation MRE " in demo["stderr"], name
    assert "evaluate submission" not in demo["stderr"]  # --no-progress: no progress bar
    for name, m in metrics.items():
        assert math.isfinite(m["mre_px"]) and m["mre_px"] >= 0, name
        # Two smoke epochs may leave a variant's heatmaps at their flat start, every landmark at one
        # pixel: then no predicted AoP is defined, and each image is counted as failed.
        if math.isfinite(m["aop_mae_deg"]):
            assert 0 <= m["aop_mae_deg"] <= 180, name
        else:
            assert m["aop_count"] == 0 and m["aop_failed"] == m["count"], name
        assert m["count"] == 13  # smoke testing split: 12 images + 1 duplicate
        assert set(m["per_landmark_px"]) == {"PS1", "PS2", "FH1"}
        assert m["heatmap_mse"] >= 0 and m["heatmap_mae"] >= 0
        assert m["validation"]["count"] == 8
        assert m["ms_per_image"] > 0
        # per-landmark errors average to the MRE (every landmark scored on every image)
        assert sum(m["per_landmark_px"].values()) / 3 == pytest.approx(m["mre_px"], rel=1e-9)


def test_demo_ssl_unet_metrics_come_from_the_submission(demo: dict) -> None:
    out: Path = demo["out"]
    m = json.loads((out / "metrics.json").read_text())["ssl_unet"]
    assert m["source"] == "submission"
    assert (out / "submission" / "model.py").is_file()
    assert abs(m["mre_px"] - m["library_predictor"]["mre_px"]) <= 1e-4
    assert m["agrees_within_1e-4_px"] is True
    assert m["max_coordinate_difference_px"] < 0.01


def test_demo_report_and_figures(demo: dict) -> None:
    out: Path = demo["out"]
    report = (out / "report.md").read_text()
    for name in VARIANTS:
        assert f"| `{name}` |" in report
    assert "Does self-supervised pre-training help here?" in report
    assert "profile smoke" in report
    for fig in ("test_predictions", "worst_cases", "training_curves", "error_histograms", "screening_scores"):
        path = out / "figures" / f"{fig}.png"
        assert path.is_file() and path.stat().st_size > 1000, fig
        assert f"figures/{fig}.png" in report
    rows = (out / "eval" / "ssl_unet" / "testing_predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + 13
    selection = json.loads((out / "select" / "selection.json").read_text())
    assert len(selection["kept"]) >= get_profile("smoke").screening.min_sequences
    truth_scores = json.loads((out / "run.json").read_text())["selection_truth"]
    assert 0.0 <= truth_scores["precision"] <= 1.0 and 0.0 <= truth_scores["recall"] <= 1.0


def test_demo_resumes_without_retraining(demo: dict, capsys: pytest.CaptureFixture[str]) -> None:
    out: Path = demo["out"]
    before = json.loads((out / "metrics.json").read_text())
    ckpt_times = {p: p.stat().st_mtime_ns for p in out.glob("finetune/*/checkpoints/*.ckpt")}
    capsys.readouterr()
    assert main(["demo", "--profile", "smoke", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "report:" in printed and str(out / "report.md") in printed
    assert "ssl_unet" in printed
    after = json.loads((out / "metrics.json").read_text())
    assert {k: v["mre_px"] for k, v in after.items()} == {k: v["mre_px"] for k, v in before.items()}
    assert {p: p.stat().st_mtime_ns for p in ckpt_times} == ckpt_times
    run = json.loads((out / "run.json").read_text())
    assert run["stage_seconds"]["stage1"] < 5.0  # skipped


def test_stage_refuses_a_run_folder_made_with_other_settings(demo: dict) -> None:
    out: Path = demo["out"]
    other = get_profile("smoke").with_overrides(
        pretrain=dataclasses.replace(get_profile("smoke").pretrain, max_epochs=2))
    with pytest.raises(ValueError, match="other settings"):
        stage_pretrain(out / "data", out, other, progress=False)


def test_select_requires_stage1(tmp_path: Path, demo: dict) -> None:
    with pytest.raises(FileNotFoundError, match="pretrain"):
        stage_select(demo["out"] / "data", tmp_path / "empty", "smoke", progress=False)


@pytest.mark.parametrize("command", PIPELINE_COMMANDS)
def test_command_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--data", "--work", "--profile", "--accelerator", "--devices", "--strategy"):
        assert option in text, (command, option)


@pytest.mark.parametrize("command", ["pretrain", "finetune", "demo"])
def test_bad_data_folder_gives_one_clear_error(command: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "not_iugc"
    (bad / "Training" / "Labeled cases").mkdir(parents=True)
    work = tmp_path / "work"
    rc = main([command, "--data", str(bad), "--work", str(work), "--profile", "smoke", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("error:") == 1
    assert "Traceback" not in err
    assert "label.csv" in err and "Validation" in err and "Testing" in err
    assert not (work / "stage1").exists()


def test_profiles() -> None:
    assert set(PROFILES) == {"paper", "quick", "smoke"}
    paper = get_profile("paper")
    assert (paper.input_size, paper.heatmap_size, paper.unet_kwargs()) == (
        (256, 256), (64, 64), {"widths": [64, 128, 256, 512], "bottleneck_width": 1024})
    s1, s2, ft = paper.pretrain, paper.pretrain_temporal, paper.finetune
    assert (s1.lr, s1.weight_decay, s1.batch_size, s1.max_epochs, s1.stage) == (1e-3, 1e-3, 64, 200, 1)
    assert (s2.method.queue_size, s2.lr, s2.plateau, s2.stage) == (16384, 1e-4, True, 2)
    assert (ft.lr, ft.batch_size, ft.max_epochs, ft.measures) == (1e-5, 8, 1000, {"aop": AOP})
    # The three stages train one network: the library configs agree, nothing is copied by hand.
    assert s1.image_size == s2.image_size == ft.input_size and s1.encoder_kwargs == ft.encoder_kwargs
    with pytest.raises(ValueError, match="pre-training stages must train the fine-tuning network"):
        dataclasses.replace(paper, pretrain=dataclasses.replace(s1, image_size=(128, 128)))
    assert get_profile(paper) is paper
    assert json.loads(json.dumps(paper.to_dict()))["name"] == "paper"
    for p in PROFILES.values():
        assert p.finetune.heatmap_stride * p.heatmap_size[0] == p.input_size[0]
        assert "profile" in p.describe()
    with pytest.raises(ValueError, match="paper"):
        get_profile("fast")
    with pytest.raises(ValueError, match="integer multiple"):
        dataclasses.replace(paper, finetune=dataclasses.replace(paper.finetune, heatmap_size=(60, 64)))
    with pytest.raises(ValueError, match="exactly one"):
        dataclasses.replace(paper.screening, zscore=1.0).criterion()
    assert isinstance(get_profile("quick"), Profile)


def test_labelled_subset_is_nested_and_seeded() -> None:
    items = list(range(50))
    small, large = labelled_subset(items, 10, seed=3), labelled_subset(items, 30, seed=3)
    assert len(small) == 10 and len(large) == 30
    assert set(small) <= set(large)
    assert small == sorted(small)
    assert labelled_subset(items, 10, seed=3) == small
    assert labelled_subset(items, 10, seed=4) != small
    assert labelled_subset(items, None) == items and labelled_subset(items, 99) == items


def test_ssl_verdict_wording() -> None:
    worse = {"unet": {"mre_px": 10.0, "aop_mae_deg": 4.0}, "ssl_unet": {"mre_px": 12.0, "aop_mae_deg": 5.0}}
    text = ssl_verdict(worse, 60, 100)
    assert text.startswith("**SSL does not help**")
    assert "+2.00 px" in text and "+20.0 %" in text and "60 labelled images" in text
    mixed = {"unet": {"mre_px": 10.0, "aop_mae_deg": 4.0}, "ssl_unet": {"mre_px": 9.0, "aop_mae_deg": 5.0}}
    assert ssl_verdict(mixed, 60, 100).startswith("**SSL gives a mixed result**")
    assert "needs both" in ssl_verdict({"unet": worse["unet"]}, 60, 100)


def test_readme_help_and_tutorial_name_the_same_demo_variants(capsys: pytest.CaptureFixture[str]) -> None:
    """One source for the list of variants: README, --help and the tutorial agree with DEMO_VARIANTS."""
    from iugc_aop.variants import DEMO_VARIANTS

    root = Path(__file__).resolve().parents[2]
    words = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
    count = words[len(DEMO_VARIANTS)]
    assert f"{count} variants" in " ".join((root / "README.md").read_text().split())
    assert f"trains {count} variants" in " ".join((root / "docs" / "tutorial_iugc.rst").read_text().split())
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"the {len(DEMO_VARIANTS)} of iugc_aop.variants.DEMO_VARIANTS ({' '.join(DEMO_VARIANTS)})" in help_text
