"""Tests of sslkeypoint.measures: angle and distance measures, validation, the stored form."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sslkeypoint.geometry import angle_of_progression
from sslkeypoint.measures import (
    AngleMeasure,
    DistanceMeasure,
    Measure,
    compute_measures,
    measure_from_dict,
    measures_from_dict,
    measures_to_dict,
    validate_measures,
)

coord = st.floats(-500, 500, allow_nan=False, allow_infinity=False)


def test_angle_measure_golden_and_batched() -> None:
    kp = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], [[0.0, 0.0], [1.0, 0.0], [-1.0, 1.0]]])
    assert AngleMeasure(0, 1, 2)(kp).tolist() == pytest.approx([90.0, 135.0])
    assert math.isnan(AngleMeasure(0, 1, 2)(torch.zeros(3, 2)).item())  # degenerate: NaN, no error
    assert AngleMeasure(0, 1, 2)(torch.tensor([[0, 0], [1, 0], [0, 1]])).item() == 90.0  # ints


@given(st.lists(st.tuples(coord, coord), min_size=3, max_size=3))
def test_angle_measure_is_the_aop_with_its_vertex_at_ps1(points) -> None:
    kp = torch.tensor(points, dtype=torch.float64)
    expected = angle_of_progression(kp[0], kp[1], kp[2])
    got = AngleMeasure(vertex=0, first=1, second=2)(kp)
    assert torch.allclose(got, expected, equal_nan=True)


def test_distance_measure_spacing() -> None:
    kp = torch.tensor([[1.0, 1.0], [4.0, 5.0]])
    assert DistanceMeasure(0, 1)(kp).item() == 5.0
    # Anisotropic: sqrt((2*3)^2 + (0.5*4)^2) = sqrt(40) mm.
    assert DistanceMeasure(0, 1, pixel_spacing=(2.0, 0.5))(kp).item() == pytest.approx(math.sqrt(40))
    assert DistanceMeasure(1, 0, pixel_spacing=0.1).unit == "mm"


def test_bad_measures() -> None:
    with pytest.raises(ValueError, match="three different"):
        AngleMeasure(0, 0, 1)
    with pytest.raises(ValueError, match="two different"):
        DistanceMeasure(2, 2)
    with pytest.raises(ValueError, match="pixel_spacing"):
        DistanceMeasure(0, 1, pixel_spacing=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"\(\.\.\., K, 2\)"):
        AngleMeasure(0, 1, 2)(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="out of range"):
        AngleMeasure(0, 1, 3)(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="names"):
        validate_measures({"a b": DistanceMeasure(0, 1)})


def test_compute_measures_and_protocol() -> None:
    kp = torch.tensor([[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]])
    values = compute_measures({"aop": AngleMeasure(0, 1, 2), "ps": DistanceMeasure(0, 1)}, kp)
    assert values == {"aop": torch.tensor(90.0), "ps": torch.tensor(100.0)}
    assert isinstance(AngleMeasure(0, 1, 2), Measure) and not isinstance((0, 1, 2), Measure)


def test_stored_form_round_trips_through_json() -> None:
    measures = {"aop": AngleMeasure(0, 1, 2), "bpd": DistanceMeasure(3, 4, pixel_spacing=(0.2, 0.25))}
    stored = json.loads(json.dumps(measures_to_dict(measures)))
    assert measures_from_dict(stored) == measures
    with pytest.raises(ValueError, match="cannot import"):
        measure_from_dict({"class": "sslkeypoint.measures.NoSuchMeasure", "kwargs": {}})
    with pytest.raises(ValueError, match="not a dataclass"):
        measure_from_dict({"class": "sslkeypoint.measures.validate_measures"})
    with pytest.raises(ValueError, match="'class'"):
        measure_from_dict({"kwargs": {}})


@pytest.mark.parametrize("bad", [0.5, 1.25, math.nan, "0", True, None])
def test_fractional_or_non_numeric_indices_are_refused_not_truncated(bad) -> None:
    with pytest.raises(ValueError, match=r"vertex must be a whole landmark index"):
        AngleMeasure(bad, 1, 2)
    with pytest.raises(ValueError, match=r"second must be a whole landmark index"):
        DistanceMeasure(0, bad)


def test_whole_float_indices_are_taken_as_ints() -> None:
    m = AngleMeasure(0.0, 1.0, 2.0)  # type: ignore[arg-type]  # e.g. read back from a JSON config as floats
    assert m == AngleMeasure(0, 1, 2) and isinstance(m.vertex, int)
    assert DistanceMeasure(0.0, 1.0).landmarks == (0, 1)  # type: ignore[arg-type]


def test_complex_keypoints_are_refused() -> None:
    kp = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]) + 0j
    for measure in (AngleMeasure(0, 1, 2), DistanceMeasure(0, 1)):
        with pytest.raises(ValueError, match=r"keypoints must be real \(x, y\) coordinates"):
            measure(kp)
