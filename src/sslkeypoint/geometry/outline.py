"""Landmarks on an ellipse's outline, named by a rule that survives a rotation, and the ellipse back.

An ellipse is symmetric: turned by 180° it is the same ellipse, so "the first end of the major
axis" means nothing until a rule says which end it is. :func:`ellipse_outline_points` names the
points by one: the first point is the end of the major axis that lies towards a chosen direction
(``towards``, e.g. ``(1, 0)``: the right end), and the others follow at equal steps of the
parametric angle, turning from the major axis towards ``+y`` (clockwise on screen, where ``y``
points down). With four points these are the ends of the axes: major, minor, major, minor.

Every such rule has a *cut*: an orientation where two names swap abruptly as the object turns
(for ``towards=(1, 0)``, a vertical major axis). A rule is good for a data set when few of its
objects lie near its cut; :func:`angle_to_cut` measures how near. And points named by the axes
are only as well defined as the axes: on a nearly round outline the major axis may lie anywhere.

:func:`ellipse_points_towards` names points without the axes: the outline point in each of
``count`` fixed image directions from the centre. They have no cut and stay well defined on a
circle, and :func:`ellipse_through_points` goes back from them (or from any named outline points,
e.g. predicted ones) to an ellipse.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from sslkeypoint.geometry._points import check_points, one_point, to_numpy
from sslkeypoint.geometry.ellipse import Ellipse, fit_ellipse

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["angle_to_cut", "ellipse_outline_points", "ellipse_points_towards", "ellipse_through_points"]


def _direction(towards: Any) -> NDArray[np.float64]:
    d = one_point("towards", towards)
    n = float(np.hypot(*d))
    if not (math.isfinite(n) and n > 0):
        raise ValueError(f"towards must be a non-zero direction (x, y); got {tuple(d.tolist())}")
    return d / n


def _major_direction(ellipse: Ellipse, towards: NDArray[np.float64]) -> NDArray[np.float64]:
    """The unit vector along the major axis whose end lies towards ``towards`` (ties: +90° of it)."""
    u = np.array([math.cos(ellipse.angle), math.sin(ellipse.angle)])
    dot = float(u @ towards)
    if abs(dot) < 1e-12:  # on the cut: the end towards the direction turned by +90°
        dot = float(u @ np.array([-towards[1], towards[0]]))
    return u if dot > 0 else -u


def ellipse_outline_points(ellipse: Ellipse, count: int = 4, towards: Any = (1.0, 0.0)) -> NDArray[np.float64]:
    """``count`` named points on the outline: the rule of the module notes.

    Point ``k`` is ``c + a·cos(φ_k)·u + b·sin(φ_k)·v`` with ``φ_k = 2πk / count``, ``u`` the
    major-axis direction whose end lies towards ``towards`` and ``v`` = ``u`` turned by +90°
    (from ``+x`` towards ``+y``). With ``count=4``: the near end of the major axis, an end of the
    minor axis, the far end of the major axis, the other end of the minor axis.

    Args:
        ellipse: The ellipse.
        count: How many points (``>= 1``; a multiple of 4 keeps the ends of both axes among them).
        towards: The direction ``(x, y)`` that tells the ends of the major axis apart.

    Returns:
        ``(count, 2)`` float64 points ``(x, y)``.

    Raises:
        ValueError: For ``count < 1`` or a zero or non-finite direction.

    Examples:
        >>> e = Ellipse((0.0, 0.0), (4.0, 2.0), math.pi)  # the same ellipse as at angle 0
        >>> ellipse_outline_points(e).round(6).tolist()
        [[4.0, 0.0], [0.0, 2.0], [-4.0, 0.0], [-0.0, -2.0]]
        >>> ellipse_outline_points(e, towards=(-1, 0)).round(6).tolist()[0]
        [-4.0, 0.0]
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1; got {count!r}")
    u = _major_direction(ellipse, _direction(towards))
    v = np.array([-u[1], u[0]])
    phi = 2 * math.pi * np.arange(count) / count
    a, b = ellipse.axes
    local = np.stack([a * np.cos(phi), b * np.sin(phi)], axis=1)
    return np.asarray(ellipse.center) + local[:, :1] * u + local[:, 1:] * v


def ellipse_points_towards(ellipse: Ellipse, count: int = 8, start: float = 0.0) -> NDArray[np.float64]:
    """The outline points in ``count`` fixed directions from the centre.

    Point ``k`` is where the ray from the centre at the angle ``start + 2πk / count`` (radians,
    from ``+x`` towards ``+y``: clockwise on screen) meets the ellipse. The names do not depend on
    the ellipse's axes, so they have no cut and stay well defined on a circle; turning the object
    slides every point along the outline.

    Args:
        ellipse: The ellipse.
        count: How many directions (``>= 1``).
        start: The angle of the first direction, in radians (0: to the right).

    Returns:
        ``(count, 2)`` float64 points ``(x, y)``.

    Examples:
        >>> ellipse_points_towards(Ellipse((0.0, 0.0), (4.0, 2.0), 0.0), 4).round(6).tolist()
        [[4.0, 0.0], [0.0, 2.0], [-4.0, 0.0], [-0.0, -2.0]]
        >>> p = ellipse_points_towards(Ellipse((0.0, 0.0), (3.0, 3.0), 0.0), 8)[1]  # 45° on a circle
        >>> p.round(6).tolist()
        [2.12132, 2.12132]
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1; got {count!r}")
    if not math.isfinite(float(start)):
        raise ValueError(f"start must be a finite angle in radians; got {start!r}")
    theta = float(start) + 2 * math.pi * np.arange(count) / count
    d = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    c = np.asarray(ellipse.center)
    # The implicit function grows with the square of the distance from the centre along a ray.
    return c + d / np.sqrt(ellipse.implicit(c + d))[:, None]


def angle_to_cut(ellipse: Ellipse, towards: Any = (1.0, 0.0)) -> float:
    """How far the major axis is from the rule's cut, in degrees (0: on it, 90: as far as can be).

    The cut of :func:`ellipse_outline_points` is the orientation where the major axis is
    perpendicular to ``towards``; near it, a small turn of the object swaps the names of the two
    ends, and a network trained on such labels sees the same picture named both ways.

    Examples:
        >>> angle_to_cut(Ellipse((0.0, 0.0), (4.0, 2.0), 0.0))
        90.0
        >>> round(angle_to_cut(Ellipse((0.0, 0.0), (4.0, 2.0), math.radians(80))), 6)
        10.0
    """
    t = _direction(towards)
    u = np.array([math.cos(ellipse.angle), math.sin(ellipse.angle)])
    return math.degrees(math.asin(min(1.0, abs(float(u @ t)))))


def ellipse_through_points(points: Any) -> Ellipse:
    """The ellipse through outline points named as :func:`ellipse_outline_points` names them.

    With five points or more: the least-squares fit (:func:`~sslkeypoint.geometry.fit_ellipse`).
    With four (the ends of the axes, in order): centre at their mean, semi-axes half the distances
    between points 0–2 and 1–3, the major axis along 0→2 or 1→3, whichever is longer (the two
    diagonals of noisy predictions need not be perpendicular; the ellipse takes the longer one's
    direction).

    Args:
        points: ``(K, 2)`` points ``(x, y)``, ``K == 4`` or ``K >= 5``, finite.

    Returns:
        The ellipse.

    Raises:
        ValueError: For another shape, non-finite points, or points no ellipse goes through
            (coincident ends, collinear points).

    Examples:
        >>> e = Ellipse((10.0, 5.0), (4.0, 2.0), 0.3)
        >>> fit = ellipse_through_points(ellipse_outline_points(e, 4))
        >>> [round(v, 6) for v in (*fit.center, *fit.axes, fit.angle)]
        [10.0, 5.0, 4.0, 2.0, 0.3]
    """
    pts = to_numpy(points)
    check_points("points", pts)
    if pts.ndim != 2 or not (pts.shape[0] == 4 or pts.shape[0] >= 5):
        raise ValueError(f"points must have shape (K, 2) with K == 4 or K >= 5; got {tuple(pts.shape)}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points contain NaN or infinite values")
    if pts.shape[0] >= 5:
        return fit_ellipse(pts)
    d1, d2 = pts[2] - pts[0], pts[3] - pts[1]
    l1, l2 = float(np.hypot(*d1)), float(np.hypot(*d2))
    if min(l1, l2) <= 0:
        raise ValueError("two opposite points coincide; no ellipse goes through them")
    major = d1 if l1 >= l2 else d2
    return Ellipse(tuple(pts.mean(axis=0)), (l1 / 2, l2 / 2) if l1 >= l2 else (l2 / 2, l1 / 2),
                   math.atan2(major[1], major[0]))
