"""Named outline points of an ellipse, the ellipse back from them, and the perimeter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sslkeypoint.geometry import (
    Ellipse,
    angle_to_cut,
    ellipse_major_axis_endpoints,
    ellipse_outline_points,
    ellipse_through_points,
)


def _polyline_length(a: float, b: float, n: int = 400_000) -> float:
    t = np.linspace(0.0, 2 * math.pi, n + 1)
    return float(np.hypot(np.diff(a * np.cos(t)), np.diff(b * np.sin(t))).sum())


def test_perimeter_golden_values() -> None:
    # A circle of radius r: 2πr exactly.
    assert Ellipse((3.0, 4.0), (7.0, 7.0), 0.2).perimeter() == pytest.approx(14 * math.pi, rel=1e-15)
    # a = 5, b = 3: 20·E(e² = 16/25) = 25.526998863 (the complete elliptic integral, by a fine polyline).
    assert Ellipse((0.0, 0.0), (5.0, 3.0), 1.0).perimeter() == pytest.approx(25.526998863, abs=1e-6)


@given(ratio=st.floats(0.1, 1.0), a=st.floats(1.0, 500.0))
def test_perimeter_matches_the_polyline_within_2e5(ratio: float, a: float) -> None:
    exact = a * _polyline_length(1.0, ratio, 200_000)
    assert Ellipse((0.0, 0.0), (a, a * ratio), 0.0).perimeter() == pytest.approx(exact, rel=2e-5)


def test_outline_points_golden_axis_ends() -> None:
    e = Ellipse((10.0, 20.0), (4.0, 2.0), 0.0)
    # First the right end of the long axis, then turning towards +y (down on screen).
    assert ellipse_outline_points(e, 4).round(9).tolist() == [[14.0, 20.0], [10.0, 22.0], [6.0, 20.0], [10.0, 18.0]]
    # "The lower end first": the ends of the long axis of a horizontal ellipse are on the cut.
    assert ellipse_outline_points(e, 4, towards=(0, 1))[0].round(9).tolist() in ([14.0, 20.0], [6.0, 20.0])


@given(cx=st.floats(-100, 100), cy=st.floats(-100, 100), a=st.floats(2, 200), ratio=st.floats(0.2, 0.99),
       angle=st.floats(-10, 10), count=st.sampled_from([4, 8, 12, 16]))
def test_outline_points_name_an_ellipse_the_same_whichever_way_it_is_given(cx, cy, a, ratio, angle, count) -> None:
    e = Ellipse((cx, cy), (a, a * ratio), angle)
    turned = Ellipse((cx, cy), (a, a * ratio), angle + math.pi)  # the same ellipse
    swapped = Ellipse((cx, cy), (a * ratio, a), angle + math.pi / 2)  # axes given the other way round
    pts = ellipse_outline_points(e, count)
    np.testing.assert_allclose(ellipse_outline_points(turned, count), pts, atol=1e-6 * a)
    np.testing.assert_allclose(ellipse_outline_points(swapped, count), pts, atol=1e-6 * a)
    # Every point lies on the ellipse; the first is the end of the long axis on the right.
    np.testing.assert_allclose(e.implicit(pts), 1.0, rtol=1e-6)
    assert pts[0, 0] >= cx - 1e-9 * a
    np.testing.assert_allclose(np.hypot(*(pts[0] - pts[count // 2])), 2 * a, rtol=1e-9)
    np.testing.assert_allclose(np.hypot(*(pts[count // 4] - pts[3 * count // 4])), 2 * a * ratio, rtol=1e-9)
    # The points turn clockwise on screen (from +x towards +y): positive signed area in (x, y-down).
    x, y = (pts - [cx, cy]).T
    assert 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)) > 0


@given(angle=st.floats(0, math.pi), count=st.sampled_from([4, 8, 16]))
def test_the_ellipse_comes_back_from_its_points(angle: float, count: int) -> None:
    e = Ellipse((50.0, 40.0), (30.0, 21.0), angle)
    back = ellipse_through_points(ellipse_outline_points(e, count))
    np.testing.assert_allclose([*back.center, *back.axes], [*e.center, *e.axes], atol=1e-6)
    assert back.perimeter() == pytest.approx(e.perimeter(), rel=1e-9)


def test_four_noisy_points_take_the_longer_diagonal_as_the_major_axis() -> None:
    pts = np.array([[10.0, 0.0], [0.0, 3.0], [-10.0, 0.0], [1.0, -3.0]])  # diagonals not perpendicular
    e = ellipse_through_points(pts)
    assert e.axes == pytest.approx((10.0, math.hypot(1.0, 6.0) / 2))
    assert e.angle == pytest.approx(0.0, abs=1e-12) or e.angle == pytest.approx(math.pi)
    assert e.center == pytest.approx((0.25, 0.0))


def test_angle_to_cut_and_the_lower_end_rule() -> None:
    assert angle_to_cut(Ellipse((0.0, 0.0), (4.0, 2.0), 0.0)) == pytest.approx(90.0)
    assert angle_to_cut(Ellipse((0.0, 0.0), (4.0, 2.0), math.pi / 2)) == pytest.approx(0.0, abs=1e-9)
    assert angle_to_cut(Ellipse((0.0, 0.0), (4.0, 2.0), math.radians(30)), towards=(0, 1)) == pytest.approx(30.0)
    # ellipse_major_axis_endpoints names the ends by "the lower one first": towards (0, 1).
    e = Ellipse((0.0, 0.0), (4.0, 2.0), 0.3)
    np.testing.assert_allclose(ellipse_outline_points(e, 4, towards=(0, 1))[[0, 2]], ellipse_major_axis_endpoints(e))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ellipse_outline_points(Ellipse((0.0, 0.0), (2.0, 1.0), 0.0), 0), "count must be a whole number >= 1"),
        (lambda: ellipse_outline_points(Ellipse((0.0, 0.0), (2.0, 1.0), 0.0), towards=(0, 0)), "non-zero direction"),
        (lambda: ellipse_through_points(np.zeros((3, 2))), "K == 4 or K >= 5"),
        (lambda: ellipse_through_points(np.array([[0.0, 0.0], [0, 1], [0, 0], [0, 1]])), "coincide"),
        (lambda: ellipse_through_points(np.array([[0.0, np.nan], [0, 1], [1, 0], [2, 1]])), "NaN"),
        (lambda: ellipse_through_points(np.stack([np.arange(6.0), np.arange(6.0)], 1)), "ellipse"),
    ],
)
def test_bad_input_is_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@given(angle=st.floats(0, 2 * math.pi), ratio=st.floats(0.3, 1.0), count=st.sampled_from([4, 8, 12]))
def test_points_towards_fixed_directions_have_no_cut(angle: float, ratio: float, count: int) -> None:
    from sslkeypoint.geometry import ellipse_points_towards

    e = Ellipse((20.0, -5.0), (10.0, 10.0 * ratio), angle)
    pts = ellipse_points_towards(e, count)
    np.testing.assert_allclose(e.implicit(pts), 1.0, rtol=1e-9)
    d = pts - np.asarray(e.center)
    np.testing.assert_allclose(np.arctan2(d[:, 1], d[:, 0]) % (2 * math.pi), 2 * math.pi * np.arange(count) / count,
                               atol=1e-9)
    # A small turn of the object moves every point a little: no name jumps (unlike the axis ends at a cut).
    turned = ellipse_points_towards(Ellipse(e.center, (10.0, 10.0 * ratio), angle + 1e-4), count)
    assert np.abs(turned - pts).max() < 1e-2


def test_points_towards_golden_and_refused() -> None:
    from sslkeypoint.geometry import ellipse_points_towards

    # A circle of radius 5: the points of a regular octagon, the first straight right, the third straight down.
    pts = ellipse_points_towards(Ellipse((1.0, 2.0), (5.0, 5.0), 0.3), 8)
    np.testing.assert_allclose(pts[[0, 2]], [[6.0, 2.0], [1.0, 7.0]], atol=1e-12)
    np.testing.assert_allclose(pts[1], [1 + 5 / math.sqrt(2), 2 + 5 / math.sqrt(2)], atol=1e-12)
    with pytest.raises(ValueError, match="count must be"):
        ellipse_points_towards(Ellipse((0.0, 0.0), (2.0, 1.0), 0.0), 0)
    with pytest.raises(ValueError, match="finite angle"):
        ellipse_points_towards(Ellipse((0.0, 0.0), (2.0, 1.0), 0.0), 4, start=math.inf)
