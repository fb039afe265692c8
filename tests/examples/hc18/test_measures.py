"""HC, BPD and OFD of the ellipse through the direction points: golden values, mm, storage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hc18_biometry.landmarks import head_landmarks
from hc18_biometry.measures import HeadEllipse, hc_error_mm, head_measures
from sslkeypoint.geometry import Ellipse, ellipse_points_towards
from sslkeypoint.measures import (
    accepts_pixel_size,
    compute_measures,
    measure_from_dict,
    measure_to_dict,
)


def _landmarks(e: Ellipse, directions: int = 8) -> torch.Tensor:
    return torch.from_numpy(head_landmarks(e, directions))


@pytest.mark.parametrize("directions", [4, 8, 16])
def test_golden_values_in_px_and_mm(directions: int) -> None:
    e = Ellipse((400.0, 270.0), (100.0, 80.0), 0.4)
    m = head_measures(directions)
    kp = _landmarks(e, directions)
    # Ramanujan: π(a + b)(1 + 3h/(10 + sqrt(4 − 3h))), h = (20/180)², = 567.4236 px.
    h = (20 / 180) ** 2
    golden = math.pi * 180 * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))
    if directions == 4:  # four direction points are the ends of the axes only when the axes are level
        kp = _landmarks(Ellipse((400.0, 270.0), (100.0, 80.0), 0.0), 4)
    assert float(m["hc"](kp)) == pytest.approx(golden, rel=1e-9)
    assert float(m["hc"](kp, pixel_size=0.25)) == pytest.approx(golden / 4, rel=1e-9)
    assert float(m["bpd"](kp, pixel_size=0.25)) == pytest.approx(40.0)  # 2b · 0.25
    assert float(m["ofd"](kp, pixel_size=0.25)) == pytest.approx(50.0)  # 2a · 0.25


def test_the_measures_read_the_direction_points_only() -> None:
    e = Ellipse((50.0, 50.0), (30.0, 20.0), 0.2)
    kp = _landmarks(e).clone()
    kp[:4] = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # axis ends far off: no effect
    assert float(head_measures()["hc"](kp)) == pytest.approx(e.perimeter(), rel=1e-9)
    assert HeadEllipse("perimeter", 4, 8).landmarks == tuple(range(4, 12))


def test_each_image_its_own_pixel_size_and_nan_without_an_ellipse() -> None:
    e = Ellipse((50.0, 50.0), (30.0, 30.0), 0.0)
    kp = torch.stack([_landmarks(e), _landmarks(e), torch.full((12, 2), float("nan")), torch.zeros(12, 2)])
    hc = HeadEllipse()(kp, pixel_size=torch.tensor([0.1, 0.2, 0.1, 0.1]))
    assert hc[:2].tolist() == pytest.approx([6 * math.pi, 12 * math.pi])
    assert math.isnan(hc[2]) and math.isnan(hc[3])  # missing points; all points in one place
    # Non-square pixels: the points are scaled before the fit (a circle of 30 px with 0.1 × 0.2 mm
    # pixels is an ellipse of semi-axes 6 and 3 mm).
    circle = torch.from_numpy(ellipse_points_towards(e, 8))
    stretched = float(HeadEllipse("perimeter", 0, 8)(circle, pixel_size=(0.1, 0.2)))
    assert stretched == pytest.approx(Ellipse((0.0, 0.0), (6.0, 3.0), 0.0).perimeter(), rel=1e-9)


def test_the_measure_is_stored_and_computed_like_the_library_s() -> None:
    hc = HeadEllipse("perimeter", 4, 8)
    assert accepts_pixel_size(hc)
    assert measure_from_dict(measure_to_dict(hc)) == hc
    assert measure_to_dict(hc) == {"class": "hc18_biometry.measures.HeadEllipse",
                                   "kwargs": {"quantity": "perimeter", "first": 4, "count": 8}}
    values = compute_measures(head_measures(8), _landmarks(Ellipse((50.0, 50.0), (40.0, 30.0), 1.0))[None],
                              torch.tensor([0.5]))
    assert set(values) == {"hc", "bpd", "ofd"} and values["bpd"].item() == pytest.approx(30.0)
    with pytest.raises(ValueError, match="count must be 4 or at least 5"):
        HeadEllipse("perimeter", 0, 3)
    with pytest.raises(ValueError, match="quantity must be"):
        HeadEllipse("area")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"K >= 12"):
        hc(torch.zeros(8, 2))


def test_the_challenge_score() -> None:
    np.testing.assert_allclose(hc_error_mm([170.0, 150.0], [168.5, 151.25]), [1.5, 1.25])
