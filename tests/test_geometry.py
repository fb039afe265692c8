"""Tests of sslkeypoint.geometry: AoP, ellipse fitting and tangents."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sslkeypoint.geometry import (
    Ellipse,
    angle_between,
    angle_of_progression,
    contour_tangent_point,
    ellipse_major_axis_endpoints,
    ellipse_tangent_points,
    far_tangent_point,
    fit_ellipse,
)

coord = st.floats(-500, 500, allow_nan=False, allow_infinity=False)


def conic_value_and_gradient(e: Ellipse, p: np.ndarray) -> tuple[float, np.ndarray]:
    a, b, c, d, e_, f = e.conic()
    x, y = p
    value = a * x * x + b * x * y + c * y * y + d * x + e_ * y + f
    grad = np.array([2 * a * x + b * y + d, b * x + 2 * c * y + e_])
    return float(value), grad


# --- angles ---------------------------------------------------------------------------------


def test_aop_right_angle_is_exactly_90():
    ps1, ps2, fh1 = (
        torch.tensor([300.0, 80.0]),
        torch.tensor([200.0, 80.0]),
        torch.tensor([300.0, 5.0]),
    )
    assert angle_of_progression(ps1, ps2, fh1).item() == 90.0
    assert (
        float(angle_of_progression(np.array([0, 0]), np.array([0, 3]), np.array([-7, 0]))) == 90.0
    )


def test_aop_golden_values_and_vertex_at_ps1():
    # 3-4-5 triangle: the angle at PS1 between (-4, 0) and (-4, 3) is atan(3/4).
    ps1, ps2, fh1 = np.array([4.0, 0.0]), np.array([0.0, 0.0]), np.array([0.0, 3.0])
    assert float(angle_of_progression(ps1, ps2, fh1)) == pytest.approx(
        math.degrees(math.atan2(3, 4))
    )
    # Putting the vertex at PS2 would give the other acute angle; make sure we do not.
    assert float(angle_of_progression(ps1, ps2, fh1)) != pytest.approx(
        math.degrees(math.atan2(4, 3))
    )
    # Obtuse angle, not 180° minus it.
    assert (
        float(angle_of_progression(np.array([0, 0]), np.array([-1, 0]), np.array([1, 1]))) == 135.0
    )


@given(
    pts=st.lists(st.tuples(coord, coord), min_size=3, max_size=3),
    theta=st.floats(-math.pi, math.pi),
    scale=st.floats(0.1, 10.0),
    shift=st.tuples(coord, coord),
)
def test_aop_invariant_under_similarity(pts, theta, scale, shift):
    p = np.array(pts, dtype=np.float64)
    u, v = p[1] - p[0], p[2] - p[0]
    # Well-conditioned configurations only: both arms clearly non-zero.
    if np.linalg.norm(u) < 1.0 or np.linalg.norm(v) < 1.0:
        return
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    q = scale * p @ rot.T + np.array(shift)
    before = float(angle_of_progression(p[0], p[1], p[2]))
    after = float(angle_of_progression(q[0], q[1], q[2]))
    assert after == pytest.approx(before, abs=1e-6)
    assert 0.0 <= before <= 180.0


@given(pts=st.lists(st.tuples(coord, coord), min_size=3, max_size=3))
def test_aop_numpy_torch_and_dtypes_agree(pts):
    p = np.array(pts, dtype=np.float64)
    ref = angle_of_progression(p[0], p[1], p[2])
    t64 = angle_of_progression(*torch.from_numpy(p))
    t32 = angle_of_progression(*torch.from_numpy(p).float())
    assert t64.dtype == torch.float64 and t32.dtype == torch.float32
    if np.isnan(ref):
        assert torch.isnan(t64)
        return
    assert float(t64) == pytest.approx(float(ref), abs=1e-9)
    norms = np.linalg.norm(p[1:] - p[0], axis=-1)
    if norms.min() > 1.0:
        assert float(t32) == pytest.approx(float(ref), abs=1e-3)


def test_aop_batched_and_degenerate_gives_nan():
    kp = torch.tensor(
        [
            [[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]],  # arms (-1, 0) and (0, 1): 90°
            [[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]],  # PS2 == PS1
            [[2.0, 2.0], [0.0, 0.0], [2.0, 2.0]],  # FH1 == PS1
        ]
    )
    out = angle_of_progression(kp[:, 0], kp[:, 1], kp[:, 2])
    assert out.shape == (3,)
    assert out[0].item() == pytest.approx(90.0)
    assert torch.isnan(out[1:]).all()
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        angle_between(torch.zeros(3), torch.zeros(3))



@pytest.mark.parametrize(
    ("a", "b", "c"),
    [((3, 1, 2), (4, 2), (4, 2)), ((1, 2), (4, 2), (4, 2)), ((2, 2), (3, 2), (3, 2)), ((4, 2), (4, 2), (4, 1, 2))],
)
def test_aop_refuses_shapes_that_would_broadcast_into_a_table(a, b, c):
    for make in (torch.ones, np.ones):
        with pytest.raises(ValueError, match=rf"got ps1 {re.escape(str(a))}, ps2 {re.escape(str(b))}, fh1 {re.escape(str(c))}"):
            angle_of_progression(make(a), make(b), make(c))  # type: ignore[type-var]
    with pytest.raises(ValueError, match=r"u \(3, 1, 2\), v \(4, 2\)"):
        angle_between(torch.ones(3, 1, 2), torch.ones(4, 2))


def test_aop_single_points_serve_every_row():
    fh1 = torch.tensor([[0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    expected = [90.0, 45.0, 180.0]
    assert angle_of_progression(torch.zeros(2), torch.tensor([1.0, 0.0]), fh1).tolist() == pytest.approx(expected)
    ps1 = torch.zeros(3, 2)
    assert angle_of_progression(ps1, torch.tensor([1.0, 0.0]), fh1).tolist() == pytest.approx(expected)
    assert angle_between(torch.tensor([1.0, 0.0]), fh1).tolist() == pytest.approx(expected)


def test_infinite_coordinates_give_nan_like_missing_ones():
    # atan2 of infinities would give 45 degrees here; an infinite point is no position.
    for inf in (math.inf, -math.inf):
        t = angle_of_progression(torch.zeros(2), torch.tensor([inf, 1.0]), torch.tensor([1.0, 1.0]))
        n = angle_of_progression(np.zeros(2), np.array([1.0, 1.0]), np.array([inf, 1.0]))
        assert torch.isnan(t) and np.isnan(n)
    batch = angle_between(torch.tensor([[1.0, 0.0], [math.inf, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert batch[0].item() == 90.0 and torch.isnan(batch[1])


def test_complex_coordinates_are_refused():
    with pytest.raises(ValueError, match=r"ps2 must be real \(x, y\) coordinates"):
        angle_of_progression(torch.zeros(2), torch.tensor([1 + 1j, 0]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="v must be real"):
        angle_between(np.array([1.0, 0.0]), np.array([0.0, 1j]))
    with pytest.raises(ValueError, match="complex"):
        fit_ellipse(Ellipse((0.0, 0.0), (2.0, 1.0), 0.0).points(8) + 0j)
    with pytest.raises(ValueError, match="complex"):
        Ellipse((0.0, 0.0), (2.0, 1.0), 0.0).implicit(np.array([[1j, 0.0]]))


def test_tangent_points_take_exactly_one_vertex_and_reference():
    circle = Ellipse((0.0, 0.0), (1.0, 1.0), 0.0)
    with pytest.raises(ValueError, match=r"vertex must be one point \(x, y\) of shape \(2,\); got shape \(3, 2\)"):
        contour_tangent_point(torch.rand(5, 2), torch.rand(3, 2), torch.rand(2))
    with pytest.raises(ValueError, match=r"reference must be one point .* got shape \(2, 2\)"):
        contour_tangent_point(np.ones((5, 2)), np.zeros(2), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"vertex must be one point .* got shape \(3,\)"):
        far_tangent_point(circle, [2.0, 0.0, 1.0], [2.0, 5.0])
    # A (1, 2) row is one point.
    assert far_tangent_point(circle, [[2.0, 0.0]], [2.0, 5.0]).round(6).tolist() == [0.5, -0.866025]


# --- ellipses -------------------------------------------------------------------------------


def test_ellipse_normalises_axes_and_angle():
    e = Ellipse((1.0, 2.0), (3.0, 5.0), math.radians(30))
    assert e.axes == (5.0, 3.0)
    assert math.degrees(e.angle) == pytest.approx(120.0)
    assert math.degrees(Ellipse((0, 0), (2, 1), -math.pi / 4).angle) == pytest.approx(135.0)
    with pytest.raises(ValueError, match="positive"):
        Ellipse((0.0, 0.0), (0.0, 1.0), 0.0)


def test_conic_round_trip_and_sign():
    e = Ellipse((40.0, -7.0), (9.0, 2.5), 1.1)
    back = Ellipse.from_conic(-3.0 * e.conic())  # any scale and sign
    np.testing.assert_allclose(back.center, e.center, atol=1e-9)
    np.testing.assert_allclose(back.axes, e.axes, atol=1e-9)
    assert back.angle == pytest.approx(e.angle, abs=1e-12)
    assert conic_value_and_gradient(e, np.array(e.center))[0] == pytest.approx(-1.0)
    for p in e.points(16):
        assert conic_value_and_gradient(e, p)[0] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="not an ellipse"):
        Ellipse.from_conic([1.0, 0.0, -1.0, 0.0, 0.0, -1.0])  # hyperbola
    with pytest.raises(ValueError, match="imaginary"):
        Ellipse.from_conic([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])  # x² + y² = -1


def test_from_opencv_convention():
    # width 60 along 120°, height 160 along 210° ≡ 30°: major semi-axis 80 at 30°.
    e = Ellipse.from_opencv(((128.0, 100.0), (60.0, 160.0), 120.0))
    assert e.axes == (80.0, 30.0)
    assert math.degrees(e.angle) == pytest.approx(30.0)
    e2 = Ellipse.from_opencv(((0.0, 0.0), (160.0, 60.0), 30.0))
    assert e2.axes == e.axes and e2.angle == pytest.approx(e.angle)


@given(
    cx=st.floats(-100, 100),
    cy=st.floats(-100, 100),
    a=st.floats(3.0, 80.0),
    ratio=st.floats(0.15, 0.95),
    angle=st.floats(0.0, math.pi - 1e-3),
    arc=st.floats(math.pi, 2 * math.pi),
)
def test_fit_ellipse_recovers_exact_points(cx, cy, a, ratio, angle, arc):
    truth = Ellipse((cx, cy), (a, a * ratio), angle)
    t = np.linspace(0.0, arc, 40)
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = truth.axes[0] * np.cos(t), truth.axes[1] * np.sin(t)
    pts = np.stack([cx + cos * u - sin * v, cy + sin * u + cos * v], axis=1)
    fit = fit_ellipse(pts)
    np.testing.assert_allclose(fit.center, truth.center, atol=1e-5 * a)
    np.testing.assert_allclose(fit.axes, truth.axes, rtol=1e-5)
    if ratio < 0.9:  # the angle of a near-circle is ill-defined
        diff = abs(fit.angle - truth.angle) % math.pi
        assert min(diff, math.pi - diff) < 1e-5


def test_shape_matrix_golden_and_quadratic_form():
    np.testing.assert_array_equal(Ellipse((0.0, 0.0), (3.0, 2.0), 0.0).shape_matrix(), np.diag([9.0, 4.0]))
    # Major axis along y: diag(b², a²).
    m90 = Ellipse((5.0, 5.0), (3.0, 2.0), math.pi / 2).shape_matrix()
    np.testing.assert_allclose(m90, np.diag([4.0, 9.0]), atol=1e-12)
    # 45°: M = [[(a²+b²)/2, (a²−b²)/2], [(a²−b²)/2, (a²+b²)/2]].
    m45 = Ellipse((0.0, 0.0), (3.0, 1.0), math.pi / 4).shape_matrix()
    np.testing.assert_allclose(m45, [[5.0, 4.0], [4.0, 5.0]], atol=1e-12)
    e = Ellipse((40.0, -7.0), (9.0, 2.5), 1.1)
    d = e.points(32) - np.asarray(e.center)
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", d, np.linalg.inv(e.shape_matrix()), d), 1.0)


@given(
    a=st.floats(1.0, 100.0),
    ratio=st.floats(0.1, 1.0),
    angle=st.floats(-10.0, 10.0),
    scale=st.floats(0.0, 3.0),
)
def test_implicit_contains_and_conic_agree(a, ratio, angle, scale):
    e = Ellipse((12.0, -30.0), (a, a * ratio), angle)
    # Points of the scaled copy through the centre: implicit value scale².
    pts = np.asarray(e.center) + scale * (e.points(24) - np.asarray(e.center))
    np.testing.assert_allclose(e.implicit(pts), scale**2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(e.implicit(pts) - 1.0, [conic_value_and_gradient(e, p)[0] for p in pts],
                               rtol=1e-6, atol=1e-6)
    if abs(scale - 1.0) > 1e-6:
        assert (e.contains(pts) == (scale < 1.0)).all()


def test_implicit_golden_shapes_and_torch_input():
    e = Ellipse((10.0, 20.0), (5.0, 2.0), 0.0)
    assert e.implicit([[15.0, 20.0], [10.0, 22.0], [10.0, 20.0], [20.0, 20.0]]).tolist() == [1.0, 1.0, 0.0, 4.0]
    assert e.implicit(np.zeros((3, 4, 2))).shape == (3, 4)
    assert e.implicit(torch.tensor([15.0, 20.0])).item() == 1.0
    assert e.contains([[10.0, 20.0], [16.0, 20.0]]).tolist() == [True, False]
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        e.implicit(np.zeros((4, 3)))


@given(a=st.floats(2.0, 50.0), ratio=st.floats(0.2, 1.0), angle=st.floats(0.0, 2 * math.pi))
def test_normal_is_unit_outward_and_perpendicular_to_the_ellipse(a, ratio, angle):
    e = Ellipse((3.0, 4.0), (a, a * ratio), angle)
    pts = e.points(64)
    n = e.normal(pts)
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0)
    tangent = np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)  # central differences
    tangent /= np.linalg.norm(tangent, axis=-1, keepdims=True)
    assert np.abs((n * tangent).sum(-1)).max() < 1e-9  # an affine image of a circle: exact
    assert ((n * (pts - np.asarray(e.center))).sum(-1) > 0).all()  # outward
    # Along the major axis the normal is the axis direction.
    end = ellipse_major_axis_endpoints(e)[0]
    np.testing.assert_allclose(e.normal(end), [math.cos(e.angle), math.sin(e.angle)], atol=1e-12)
    assert np.isnan(e.normal(e.center)).all()


@given(
    a=st.floats(1.0, 80.0),
    ratio=st.floats(0.1, 1.0),
    angle=st.floats(-4.0, 4.0),
    direction=st.floats(-math.pi, math.pi),
    length=st.floats(0.01, 100.0),
)
def test_support_point_maximises_the_projection(a, ratio, angle, direction, length):
    e = Ellipse((-5.0, 17.0), (a, a * ratio), angle)
    n = length * np.array([math.cos(direction), math.sin(direction)])
    s = e.support_point(n)
    assert float(e.implicit(s)) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(e.normal(s), n / length, atol=1e-7)
    assert float(s @ n) >= float((e.points(2000) @ n).max()) - 1e-9 * length * a
    # The constructor from a support point inverts it, whatever the angle's wrapping.
    back = Ellipse.from_support_point(s, n, (a, a * ratio), angle)
    np.testing.assert_allclose(back.center, e.center, atol=1e-9 * a)
    wrapped = Ellipse.from_support_point(s, n, (a, a * ratio), angle + math.pi)
    np.testing.assert_allclose(wrapped.center, e.center, atol=1e-9 * a)


def test_support_point_golden_batched_and_errors():
    e = Ellipse((1.0, 2.0), (3.0, 2.0), 0.0)
    assert e.support_point([[1.0, 0.0], [0.0, -5.0], [-2.0, 0.0]]).tolist() == [
        [4.0, 2.0], [1.0, 0.0], [-2.0, 2.0]]
    # 45° direction on a circle of radius 2 around the origin.
    circle = Ellipse((0.0, 0.0), (2.0, 2.0), 0.0)
    np.testing.assert_allclose(circle.support_point([1.0, 1.0]), [math.sqrt(2), math.sqrt(2)])
    assert np.isnan(e.support_point([0.0, 0.0])).all()
    f = Ellipse.from_support_point([0.0, 10.0], [0.0, 1.0], (4.0, 2.0), 0.0)
    assert f.center == (0.0, 8.0) and f.axes == (4.0, 2.0)
    g = Ellipse.from_support_point([0.0, 10.0], [0.0, 3.0], (2.0, 4.0), 0.0)  # b > a: swapped
    assert g.center == (0.0, 6.0) and g.axes == (4.0, 2.0)
    with pytest.raises(ValueError, match="non-zero"):
        Ellipse.from_support_point([0.0, 0.0], [0.0, 0.0], (1.0, 1.0), 0.0)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        Ellipse.from_support_point([0.0, 0.0, 0.0], [0.0, 1.0], (1.0, 1.0), 0.0)


def test_fit_ellipse_noisy_points_and_torch_input():
    rng = np.random.default_rng(0)
    truth = Ellipse((120.0, 90.0), (60.0, 25.0), 0.4)
    pts = truth.points(400) + rng.normal(scale=0.5, size=(400, 2))
    fit = fit_ellipse(torch.from_numpy(pts).float())
    np.testing.assert_allclose(fit.center, truth.center, atol=0.2)
    np.testing.assert_allclose(fit.axes, truth.axes, atol=0.3)
    assert fit.angle == pytest.approx(truth.angle, abs=0.01)


def test_fit_ellipse_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 5"):
        fit_ellipse(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        fit_ellipse(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fit_ellipse(np.full((6, 2), np.nan))
    with pytest.raises(ValueError):
        fit_ellipse(np.stack([np.arange(10.0), 2 * np.arange(10.0)], axis=1))  # a line


def test_major_axis_endpoints():
    e = Ellipse((10.0, 20.0), (5.0, 2.0), math.radians(90))
    np.testing.assert_allclose(
        ellipse_major_axis_endpoints(e), [[10.0, 25.0], [10.0, 15.0]], atol=1e-12
    )


@given(
    a=st.floats(5.0, 60.0),
    ratio=st.floats(0.2, 1.0),
    angle=st.floats(0.0, math.pi),
    direction=st.floats(-math.pi, math.pi),
    distance=st.floats(1.05, 6.0),
)
def test_tangent_points_are_tangent(a, ratio, angle, direction, distance):
    e = Ellipse((30.0, -10.0), (a, a * ratio), angle)
    p = np.array(e.center) + distance * a * np.array([math.cos(direction), math.sin(direction)])
    if conic_value_and_gradient(e, p)[0] <= 0.05:  # only clearly external points
        return
    tangents = ellipse_tangent_points(e, p)
    assert np.isfinite(tangents).all()
    for t in tangents:
        value, grad = conic_value_and_gradient(e, t)
        assert value == pytest.approx(0.0, abs=1e-7)  # on the ellipse
        d = (t - p) / np.linalg.norm(t - p)
        assert abs(d @ grad) / np.linalg.norm(grad) < 1e-6  # line p->t perpendicular to normal


def test_tangent_points_golden_and_inside():
    circle = Ellipse((0.0, 0.0), (1.0, 1.0), 0.0)
    t = ellipse_tangent_points(circle, np.array([2.0, 0.0]))
    np.testing.assert_allclose(t, [[0.5, math.sqrt(3) / 2], [0.5, -math.sqrt(3) / 2]], atol=1e-12)
    assert np.isnan(ellipse_tangent_points(circle, [0.2, 0.1])).all()
    np.testing.assert_allclose(ellipse_tangent_points(circle, [0.0, 1.0]), [[0.0, 1.0], [0.0, 1.0]])
    assert np.isnan(far_tangent_point(circle, [0.0, 0.5], [5.0, 0.0])).all()


@given(
    angle=st.floats(0.0, math.pi),
    ratio=st.floats(0.3, 1.0),
    ref_dir=st.floats(-math.pi, math.pi),
)
def test_far_tangent_point_maximises_the_angle(angle, ratio, ref_dir):
    head = Ellipse((150.0, 180.0), (70.0, 70.0 * ratio), angle)
    ps1 = np.array([200.0, 40.0])
    ps2 = ps1 + 30.0 * np.array([math.cos(ref_dir), math.sin(ref_dir)])
    fh1 = far_tangent_point(head, ps1, ps2)
    tangents = ellipse_tangent_points(head, ps1)
    angles = angle_between(np.broadcast_to(ps2 - ps1, (2, 2)), tangents - ps1)
    far = float(angle_of_progression(ps1, ps2, fh1))
    assert far == pytest.approx(float(angles.max()))
    # No ellipse point makes a larger angle (unless the ellipse straddles the ray opposite PS2,
    # where the supremum is 180° at an interior point).
    sampled = angle_between(np.broadcast_to(ps2 - ps1, (4000, 2)), head.points(4000) - ps1)
    if sampled.max() < 179.0:
        assert far >= sampled.max() - 1e-6
    # The tangent line is perpendicular to the conic gradient at FH1.
    _, grad = conic_value_and_gradient(head, fh1)
    d = (fh1 - ps1) / np.linalg.norm(fh1 - ps1)
    assert abs(d @ grad) / np.linalg.norm(grad) < 1e-6


def test_contour_tangent_point_matches_ellipse_tangent_numpy_and_torch():
    head = Ellipse((150.0, 180.0), (70.0, 50.0), 0.3)
    ps1, ps2 = np.array([230.0, 60.0]), np.array([180.0, 75.0])
    exact = far_tangent_point(head, ps1, ps2)
    pts = head.points(20000)
    approx_np = contour_tangent_point(pts, ps1, ps2)
    approx_t = contour_tangent_point(
        torch.from_numpy(pts), torch.from_numpy(ps1), torch.from_numpy(ps2)
    )
    assert isinstance(approx_t, torch.Tensor)
    np.testing.assert_allclose(approx_np, exact, atol=0.05)
    np.testing.assert_allclose(approx_t.numpy(), approx_np)
    assert np.isnan(contour_tangent_point(np.zeros((0, 2)), ps1, ps2)).all()
    assert torch.isnan(contour_tangent_point(torch.zeros(0, 2), ps1, ps2)).all()
