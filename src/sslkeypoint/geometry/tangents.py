"""Tangent points: on an ellipse from an outside point, and the far-side tangent point of a contour.

The far-side tangent point is the point ``q`` of a shape maximising the angle ``reference–vertex–q``;
with ``vertex = PS1``, ``reference = PS2`` and the fetal head as the shape it is FH1, the landmark of
the Angle of Progression.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from sslkeypoint.geometry._points import ArrayT, check_points, one_point, to_numpy
from sslkeypoint.geometry.angles import angle_between
from sslkeypoint.geometry.ellipse import Ellipse

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["contour_tangent_point", "ellipse_tangent_points", "far_tangent_point"]


def ellipse_tangent_points(ellipse: Ellipse, point: Any) -> NDArray[np.float64]:
    """The two points where lines through an external point touch the ellipse (closed form).

    The point is mapped into the frame where the ellipse is the unit circle; there the tangent
    points of ``p`` are ``(p ± sqrt(|p|² − 1)·p⊥) / |p|²``, and the affine map back preserves
    tangency.

    Args:
        ellipse: The ellipse.
        point: ``(2,)`` external point ``(x, y)``.

    Returns:
        ``(2, 2)`` float64 array of the two tangent points. All NaN when the point lies strictly
        inside the ellipse (no tangent exists); both rows equal the point when it lies on it.

    Examples:
        >>> ellipse_tangent_points(Ellipse((0.0, 0.0), (1.0, 1.0), 0.0), [2.0, 0.0]).round(6).tolist()
        [[0.5, 0.866025], [0.5, -0.866025]]
    """
    p = to_numpy(point).ravel()
    if p.shape != (2,):
        raise ValueError(f"point must have shape (2,) (x, y); got shape {tuple(p.shape)}")
    cos, sin = math.cos(ellipse.angle), math.sin(ellipse.angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    axes = np.asarray(ellipse.axes)
    c = np.asarray(ellipse.center)
    u = (rot.T @ (p - c)) / axes
    r2 = float(u @ u)
    if not math.isfinite(r2) or r2 < 1.0:
        return np.full((2, 2), np.nan)
    perp = np.array([-u[1], u[0]])
    h = math.sqrt(max(r2 - 1.0, 0.0))
    unit = np.stack([(u + h * perp) / r2, (u - h * perp) / r2])
    return c + (unit * axes) @ rot.T


def far_tangent_point(ellipse: Ellipse, vertex: Any, reference: Any) -> NDArray[np.float64]:
    """The tangent point from ``vertex`` that makes the larger angle with ``vertex→reference``.

    Of the two tangent points ``t`` of :func:`ellipse_tangent_points`, the one maximising the
    unsigned angle ``reference–vertex–t``; for a vertex outside the ellipse this is the ellipse
    point maximising that angle (unless the ellipse straddles the ray opposite to ``reference``).
    With ``vertex = PS1`` and ``reference = PS2`` on the head ellipse this is FH1.

    Args:
        ellipse: The ellipse.
        vertex: ``(2,)`` the point the tangents start from (outside the ellipse).
        reference: ``(2,)`` the point giving the reference direction.

    Returns:
        ``(2,)`` float64 tangent point; NaN when ``vertex`` is inside the ellipse or coincides
        with ``reference``.

    Raises:
        ValueError: If ``vertex`` or ``reference`` is not one real point ``(2,)``.

    Examples:
        >>> far_tangent_point(Ellipse((0.0, 0.0), (1.0, 1.0), 0.0), [2.0, 0.0], [2.0, 5.0]).round(6).tolist()
        [0.5, -0.866025]
    """
    v = one_point("vertex", vertex)
    r = one_point("reference", reference)
    tangents = ellipse_tangent_points(ellipse, v)
    angles = angle_between(np.broadcast_to(r - v, (2, 2)), tangents - v)
    if not np.all(np.isfinite(angles)):
        return np.full(2, np.nan)
    return tangents[int(np.argmax(angles))]


def contour_tangent_point(points: ArrayT, vertex: ArrayT, reference: ArrayT) -> ArrayT:
    """The point of a contour (or any point set) maximising the angle ``reference–vertex–q``.

    The discrete counterpart of :func:`far_tangent_point`: for a convex contour seen from an
    outside ``vertex`` it is the far-side tangent point, up to the contour's sampling.

    Args:
        points: ``(N, 2)`` candidate points ``q``.
        vertex: ``(2,)`` vertex of the angle.
        reference: ``(2,)`` point giving the reference direction ``vertex→reference``.

    Returns:
        ``(2,)`` the maximising point, the same kind (tensor or ndarray) as ``points``. NaN when
        no point gives a defined angle (no points, or all coincide with ``vertex``).

    Raises:
        ValueError: If ``points`` is not ``(N, 2)``, ``vertex`` or ``reference`` is not one point
            ``(2,)``, or any of them is complex.

    Examples:
        >>> import torch
        >>> pts = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.5]])
        >>> contour_tangent_point(pts, torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
        tensor([-1.0000,  0.5000])
    """
    check_points("points", points)
    if points.ndim != 2:
        raise ValueError(f"points must have shape (N, 2); got shape {tuple(points.shape)}")
    one_point("vertex", vertex)
    one_point("reference", reference)
    if isinstance(points, Tensor):
        pts = points if points.is_floating_point() else points.float()
        v = torch.as_tensor(vertex).to(pts)
        r = torch.as_tensor(reference).to(pts)
        ang = angle_between((r - v).expand_as(pts), pts - v)
        ang = torch.nan_to_num(ang, nan=-1.0)
        if pts.shape[0] == 0 or bool((ang < 0).all()):
            return torch.full((2,), math.nan, dtype=pts.dtype, device=pts.device)
        return pts[int(torch.argmax(ang))]
    pts_n = np.asarray(points, dtype=np.float64)
    v_n = to_numpy(vertex)
    r_n = to_numpy(reference)
    ang_n = np.nan_to_num(angle_between(np.broadcast_to(r_n - v_n, pts_n.shape), pts_n - v_n), nan=-1.0)
    if pts_n.shape[0] == 0 or bool((ang_n < 0).all()):
        return np.full(2, np.nan)
    return pts_n[int(np.argmax(ang_n))]
