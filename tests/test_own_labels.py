"""The "bring your own labels" quickstart, run as written in the docs on real HC18 images.

A COCO keypoints export of a task the library does not know (four ends of the fetal head, with two
lengths in mm and each image's pixel size) goes to a trained, evaluated model and a validated ONNX
file: once with the command line (``docs/snippets/own_labels.sh`` + ``own_labels.yaml``) and once
in Python (``docs/snippets/own_labels.py``). The ``cpu`` profile is shrunk for the test's time.
"""

from __future__ import annotations

import csv
import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslkeypoint.cli import main
from sslkeypoint.configs import profiles
from sslkeypoint.data import KeypointRecord, write_coco
from sslkeypoint.export import onnx_metadata

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SNIPPETS = Path(__file__).resolve().parents[1] / "docs" / "snippets"
NAMES = ["top", "bottom", "left", "right"]


def _ends(mask: np.ndarray) -> np.ndarray:
    """The head's topmost, bottommost, leftmost and rightmost pixels (mean position of each extreme)."""
    ys, xs = np.nonzero(mask)
    return np.array([[xs[ys == ys.min()].mean(), ys.min()], [xs[ys == ys.max()].mean(), ys.max()],
                     [xs.min(), ys[xs == xs.min()].mean()], [xs.max(), ys[xs == xs.max()].mean()]])


@pytest.fixture
def task(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hc18 = shared_data / "hc18"
    with (hc18 / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))[:24]
    records = []
    for row in rows:
        image = hc18 / "images" / row["filename"]
        mask = np.asarray(Image.open(hc18 / "masks" / row["filename"])) > 0
        records.append(KeypointRecord(image, _ends(mask), group=row["subject"], pixel_size=float(row["pixel_size_mm"])))
    write_coco(records[:18], tmp_path / "coco_train.json", NAMES, category="head")
    write_coco(records[18:], tmp_path / "coco_test.json", NAMES, category="head")
    (tmp_path / "new_images").mkdir()
    for r in records[18:]:
        shutil.copy(r.path, tmp_path / "new_images")
    (tmp_path / "pixel_size.csv").write_text(
        "filename,pixel_size_mm\n" + "".join(f"{Path(r.path).name},{r.pixel_size}\n" for r in records[18:]))
    shutil.copy(SNIPPETS / "own_labels.yaml", tmp_path)
    fast = {"input_size": [64, 64], "heatmap_size": [16, 16], "sigma": 1.5, "lr": 3e-3, "batch_size": 6,
            "max_epochs": 2, "augment": True,
            "encoder_kwargs": {"widths": [8, 16, 32], "bottleneck_width": 32}}
    monkeypatch.setitem(profiles.PROFILES["cpu"], "finetune", fast)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_command_line_quickstart_runs_as_documented(task: Path) -> None:
    for line in (SNIPPETS / "own_labels.sh").read_text().splitlines():
        args = shlex.split(line)
        assert args[:3] == ["python", "-m", "sslkeypoint"]
        assert main(args[3:]) == 0, line
    summary = json.loads((task / "runs/head/summary.json").read_text())
    assert summary["split"].startswith("by group (the records' groups)")
    config = json.loads((task / "runs/head/config.json").read_text())
    assert config["keypoint_names"] == NAMES and set(config["measures"]) == {"width", "height"}
    metrics = json.loads((task / "runs/head/test/metrics.json").read_text())
    assert metrics["count"] == 6 and metrics["mre_mm"] > 0 and "width_mae_mm" in metrics
    assert (task / "runs/head/test/errors.png").is_file()
    with (task / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and {"top_x", "right_score", "width_mm", "height_mm"} <= set(rows[0])
    assert all(float(r["width_mm"]) > 0 for r in rows)
    assert len(list((task / "overlays").glob("*.png"))) == 6
    meta = onnx_metadata(task / "head.onnx")
    assert meta["keypoint_names"] == NAMES and meta["keypoint_space"] == "original"


def test_the_python_quickstart_runs_as_documented(task: Path) -> None:
    code = (SNIPPETS / "own_labels.py").read_text()
    assert len(code.splitlines()) <= 25
    exec(compile(code, str(SNIPPETS / "own_labels.py"), "exec"), {"__name__": "__main__"})
    assert json.loads((task / "runs/head_py/test/metrics.json").read_text())["count"] == 6
    assert onnx_metadata(task / "head_py.onnx")["keypoint_names"] == NAMES
