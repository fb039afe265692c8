"""HC, BPD and OFD from outline points: golden values, mm with each image's pixel size, storage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hc18_biometry.measures import HeadCircumference, hc_error_mm, head_measures
from sslkeypoint.geometry import Ellipse, ellipse_outline_points
from sslkeypoint.measures import accepts_pixel_size, compute_measures, measure_from_dict, measure_to_dict


def _points(e: Ellipse, count: int) -> torch.Tensor:
    return torch.from_numpy(ellipse_outline_points(e, count))


@pytest.mark.parametrize("count", [4, 8, 16])
def test_golden_values_in_px_and_mm(count: int) -> None:
    e = Ellipse((400.0, 270.0), (100.0, 80.0), 0.4)
    m = head_measures(count)
    kp = _points(e, count)
    # Ramanujan: π(a + b)(1 + 3h/(10 + sqrt(4 − 3h))), h = (20/180)², = 567.4236 px.
    h = (20 / 180) ** 2
    golden = math.pi * 180 * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))
    assert float(m["hc"](kp)) == pytest.approx(golden, rel=1e-9)
    assert float(m["hc"](kp, pixel_size=0.25)) == pytest.approx(golden / 4, rel=1e-9)
    assert float(m["bpd"](kp, pixel_size=0.25)) == pytest.approx(40.0)  # 2b · 0.25
    assert float(m["ofd"](kp, pixel_size=0.25)) == pytest.approx(50.0)  # 2a · 0.25


def test_each_image_its_own_pixel_size_and_nan_without_an_ellipse() -> None:
    e = Ellipse((50.0, 50.0), (30.0, 30.0), 0.0)
    kp = torch.stack([_points(e, 8), _points(e, 8), torch.full((8, 2), float("nan")), torch.zeros(8, 2)])
    hc = HeadCircumference(8)(kp, pixel_size=torch.tensor([0.1, 0.2, 0.1, 0.1]))
    assert hc[:2].tolist() == pytest.approx([6 * math.pi, 12 * math.pi])
    assert math.isnan(hc[2]) and math.isnan(hc[3])  # missing points; all points in one place
    # Non-square pixels: the points are scaled before the fit (a circle of 30 px, 0.1 × 0.2 mm pixels
    # is an ellipse of semi-axes 3 and 6 mm).
    stretched = float(HeadCircumference(8)(_points(e, 8), pixel_size=(0.1, 0.2)))
    assert stretched == pytest.approx(Ellipse((0.0, 0.0), (6.0, 3.0), 0.0).perimeter(), rel=1e-9)


def test_the_measure_is_stored_and_computed_like_the_library_s() -> None:
    hc = HeadCircumference(8)
    assert accepts_pixel_size(hc)
    assert measure_from_dict(measure_to_dict(hc)) == hc
    assert measure_to_dict(hc) == {"class": "hc18_biometry.measures.HeadCircumference", "kwargs": {"count": 8}}
    kp = _points(Ellipse((50.0, 50.0), (40.0, 30.0), 1.0), 8)[None]
    values = compute_measures(head_measures(8), kp, torch.tensor([0.5]))
    assert set(values) == {"hc", "bpd", "ofd"} and values["bpd"].item() == pytest.approx(30.0)
    with pytest.raises(ValueError, match="count must be 4 or at least 5"):
        HeadCircumference(3)
    with pytest.raises(ValueError, match=r"K >= 8"):
        hc(torch.zeros(4, 2))


def test_the_challenge_score() -> None:
    np.testing.assert_allclose(hc_error_mm([170.0, 150.0], [168.5, 151.25]), [1.5, 1.25])
