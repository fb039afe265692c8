"""The HC18 reader (both layouts), the landmarks and their naming rule, on made-up and real folders."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hc18_biometry.data import HeadCase, read_cases, read_unlabelled, subject_of
from hc18_biometry.landmarks import (
    RIGHT_RULE,
    WRONG_RULE,
    head_landmarks,
    head_records,
    landmark_names,
)
from hc18_biometry.measures import head_measures
from sslkeypoint.geometry import angle_to_cut

from .synthetic import write_hc18

REAL = Path(os.environ.get("SSLKEYPOINT_SHARED_DATA", Path(__file__).resolve().parents[4] / "shared" / "data")) / "hc18"


@pytest.mark.parametrize("layout", ["shared", "challenge"])
def test_both_layouts_give_back_the_drawn_ellipses(tmp_path: Path, layout: str) -> None:
    truth = write_hc18(tmp_path, subjects=4, per_subject=2, unlabelled=3, layout=layout)
    cases = read_cases(tmp_path)
    assert [c.image.name for c in cases] == [name for name, _, _ in truth]
    assert [c.subject for c in cases] == ["000", "000", "001", "001", "002", "002", "003", "003"]
    for case, (_, e, px) in zip(cases, truth, strict=True):
        assert case.pixel_size == pytest.approx(px, abs=1e-6)
        # A filled mask's boundary pixels lie half a pixel inside the outline; a drawn outline is centred.
        assert case.ellipse.center == pytest.approx(e.center, abs=0.3)
        assert case.ellipse.axes == pytest.approx(e.axes, abs=0.8)
        assert case.hc_mm == pytest.approx(e.perimeter() * px, abs=0.01)
    unl = read_unlabelled(tmp_path)
    assert len(unl.images) == 3 and all(0.1 <= s <= 0.3 for s in unl.pixel_sizes)


def test_reader_errors_name_the_file_and_row(tmp_path: Path) -> None:
    write_hc18(tmp_path, subjects=2, per_subject=1, unlabelled=0)
    with pytest.raises(FileNotFoundError, match="not an HC18 folder"):
        read_cases(tmp_path / "images")
    with pytest.raises(FileNotFoundError, match="is a file"):
        read_cases(tmp_path / "labels.csv")
    table = tmp_path / "labels.csv"
    good = table.read_text()
    table.write_text(re.sub(r"001_HC.png,001,[0-9.]+,", "001_HC.png,001,x,", good))
    with pytest.raises(ValueError, match=r"labels.csv row 3: pixel_size_mm must be a number; got 'x'"):
        read_cases(tmp_path)
    table.write_text(good)
    (tmp_path / "masks" / "001_HC.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"masks/001_HC.png: no such file"):
        read_cases(tmp_path)
    table.write_text(good.replace("pixel_size_mm", "px"))
    with pytest.raises(ValueError, match="no column 'pixel_size_mm'"):
        read_cases(tmp_path)


def test_landmark_names_and_records(tmp_path: Path) -> None:
    write_hc18(tmp_path, subjects=2, per_subject=2, unlabelled=0)
    cases = read_cases(tmp_path)
    records = head_records(cases, 8)
    assert records[1].group == "000" and records[1].pixel_size == cases[1].pixel_size
    assert records[0].keypoints.shape == (12, 2)
    assert landmark_names(8)[3:6] == ("BPD2", "D000", "D045")
    assert subject_of("123_3HC.png") == "123"
    with pytest.raises(ValueError, match="directions must be 4 or at least 5"):
        landmark_names(3)
    # OFD1 is the end of the long axis on the right; BPD1 lies below the long axis; D000 is straight
    # right of the centre and D090 straight below it, on the outline.
    e = cases[0].ellipse
    kp = head_landmarks(e, 4)
    assert kp[0, 0] > kp[2, 0] and kp[1, 1] > e.center[1] - 1e-9
    np.testing.assert_allclose(kp[4, 1], e.center[1], atol=1e-9)
    np.testing.assert_allclose(kp[5, 0], e.center[0], atol=1e-9)
    assert kp[4, 0] > e.center[0] and kp[5, 1] > e.center[1]
    np.testing.assert_allclose(e.implicit(kp), 1.0, rtol=1e-9)


real = pytest.mark.skipif(not (REAL / "labels.csv").is_file(), reason="the shared HC18 data are not here")


@pytest.fixture(scope="module")
def real_cases() -> list[HeadCase]:
    return read_cases(REAL)


@real
def test_real_hc18_landmarks_give_the_given_head_circumference(real_cases: list[HeadCase]) -> None:
    cases = real_cases
    assert len(cases) == 804 and len({c.subject for c in cases}) == 645
    records = head_records(cases, 8)
    kp = torch.from_numpy(np.stack([r.keypoints for r in records]))
    sizes = torch.tensor([c.pixel_size for c in cases], dtype=torch.float64)
    hc = head_measures(8)["hc"](kp, pixel_size=sizes).numpy()
    err = np.abs(hc - np.array([c.hc_mm for c in cases]))
    # The data set's README: an ellipse fit to the masks gives HC within 0.82 mm on average, worst 2.39 mm.
    assert err.mean() < 0.9 and err.max() < 2.5
    assert len(read_unlabelled(REAL).images) == 335


@real
def test_the_naming_rule_cuts_through_few_real_heads(real_cases: list[HeadCase]) -> None:
    cases = real_cases
    near = {rule: np.mean([angle_to_cut(c.ellipse, rule) < 10 for c in cases]) for rule in (RIGHT_RULE, WRONG_RULE)}
    # "On the right" cuts at a vertical long axis (2 % of the heads within 10°); "the lower end first"
    # at a horizontal one, through most of them.
    assert near[RIGHT_RULE] < 0.03
    assert near[WRONG_RULE] > 0.6
    assert math.isclose(sum(angle_to_cut(c.ellipse, RIGHT_RULE) > 70 for c in cases) / len(cases), 0.79, abs_tol=0.03)
