"""The example's two commands end to end on a small made-up HC18 folder: demo (smoke profile) and predict."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hc18_biometry.cli import main
from hc18_biometry.predict import COLUMNS

from .synthetic import write_hc18


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hc18")
    data, out = root / "data", root / "out"
    write_hc18(data, subjects=12, per_subject=2, unlabelled=6)
    assert main(["demo", "--data", str(data), "--labels", "10", "--profile", "smoke", "--out", str(out)]) == 0
    return data, out


def test_demo_writes_report_metrics_and_model(demo: tuple[Path, Path]) -> None:
    _, out = demo
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] == 10 and metrics["model"] == "pseudo_unet"
    assert set(metrics["methods"]) == {"unet", "pseudo_unet"}
    # A fifth of the 12 subjects, whole: 2 subjects, 4 images.
    assert (metrics["training_images"], metrics["testing_images"], metrics["testing_subjects"]) == (20, 4, 2)
    assert metrics["methods"]["unet"]["images"] == 4
    assert (out / "model" / "predictor.json").is_file() and (out / "model" / "model.safetensors").is_file()
    report = (out / "report.md").read_text()
    assert "| `pseudo_unet` (model) |" in report
    for figure in ("ellipses.png", "hc_error.png"):
        assert (out / "figures" / figure).stat().st_size > 1000
    chosen = list(csv.DictReader((out / "labelled.csv").open()))
    assert len(chosen) == 10
    # The labelled images come from the training subjects only.
    test_files = {Path(r["file"]).name for r in csv.DictReader((out / "evaluation" / "unet" / "per_image.csv").open())}
    assert not test_files & {Path(r["path"]).name for r in chosen}


def test_predict_writes_the_contract_columns(demo: tuple[Path, Path], tmp_path: Path) -> None:
    data, out = demo
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(out / "model"), "--images", str(data / "unlabelled"),
                 "--pixel-size", str(data / "unlabelled" / "pixel_size.csv"), "--out", str(pred)]) == 0
    rows = list(csv.reader(pred.open()))
    assert tuple(rows[0]) == COLUMNS == ("filename", "hc_mm", "bpd_mm", "ofd_mm")
    assert [r[0] for r in rows[1:]] == [f"{i:03d}_HC.png" for i in range(6)]
    for row in rows[1:]:
        for cell in row[1:]:
            assert cell == "" or float(cell) >= 0


def test_predict_refuses_an_image_without_a_pixel_size(demo: tuple[Path, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data, out = demo
    table = tmp_path / "px.csv"
    table.write_text("filename,pixel_size_mm\n000_HC.png,0.1\n")
    status = main(["predict", "--model", str(out / "model"), "--images", str(data / "unlabelled"),
                   "--pixel-size", str(table), "--out", str(tmp_path / "p.csv")])
    assert status == 2
    assert "no pixel size for 5 of the 6 images, e.g. 001_HC.png" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--data", "nowhere", "--out", "o", "--labels", "0"], "a label budget is a whole number >= 1"),
        (["predict", "--model", "m", "--images", "nowhere", "--pixel-size", "p.csv", "--out", "o.csv"],
         "--images nowhere: no such folder"),
    ],
)
def test_command_line_mistakes_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's own refusals
        status = int(stop.code or 0)
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_predict_reads_the_challenge_s_pixel_size_table_and_passes_over_annotations(
        demo: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = demo
    challenge = tmp_path / "challenge"
    write_hc18(challenge, subjects=2, per_subject=1, unlabelled=2, layout="challenge")
    table = tmp_path / "training_px.csv"  # the training set's table, header "pixel size(mm)"
    rows = (challenge / "training_set_pixel_size_and_HC.csv").read_text().splitlines()
    table.write_text("\n".join(",".join(r.split(",")[:2]) for r in rows) + "\n")
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(out / "model"), "--images", str(challenge / "training_set"),
                 "--pixel-size", str(table), "--out", str(pred)]) == 0
    names = [r["filename"] for r in csv.DictReader(pred.open())]
    assert names == ["000_HC.png", "001_HC.png"]  # *_Annotation.png are labels, not images
    assert main(["predict", "--model", str(out / "model"), "--images", str(challenge / "test_set"),
                 "--pixel-size", str(challenge / "test_set_pixel_size.csv"), "--out", str(pred)]) == 0
    assert len(list(csv.DictReader(pred.open()))) == 2
