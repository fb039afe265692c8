"""Angles between vectors and the Angle of Progression (AoP), on torch tensors or numpy arrays.

Both functions accept ``(..., 2)`` points or vectors in ``(x, y)`` order, in pixels, and return the
same kind (tensor or ndarray) they were given. Degenerate inputs give NaN, never an exception inside
a batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from sslkeypoint.geometry._points import ArrayT, check_points, check_same_shape

__all__ = ["angle_between", "angle_of_progression"]


def angle_between(u: ArrayT, v: ArrayT) -> ArrayT:
    """Unsigned angle between two vectors, in degrees.

    Args:
        u: Vectors of shape ``(..., 2)``.
        v: Vectors of the same shape as ``u``; either may instead be one vector ``(2,)`` used for
            every row of the other. No other broadcasting: ``(3, 1, 2)`` against ``(4, 2)`` is
            refused rather than paired into a ``(3, 4)`` table.

    Returns:
        Angles in degrees in ``[0, 180]``, shape ``(...)``. A zero-length vector gives NaN, and so
        does a vector with a NaN or infinite component (no exception inside a batch).

    Raises:
        ValueError: If ``u`` or ``v`` is not ``(..., 2)``, their shapes differ (other than a
            single ``(2,)`` vector), or they are complex.

    Examples:
        >>> import torch
        >>> angle_between(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
        tensor(90.)
        >>> angle_between(torch.tensor([1.0, 0.0]), torch.tensor([[0.0, 2.0], [1.0, 1.0]]))
        tensor([90., 45.])
    """
    check_points("u", u)
    check_points("v", v)
    check_same_shape(u=u, v=v)
    if isinstance(u, Tensor) or isinstance(v, Tensor):
        ut = torch.as_tensor(u)
        vt = torch.as_tensor(v)
        if not ut.is_floating_point():
            ut = ut.float()
        vt = vt.to(ut)
        # atan2(|u x v|, u . v) is accurate at every angle, unlike acos near 0 and 180.
        cross = ut[..., 0] * vt[..., 1] - ut[..., 1] * vt[..., 0]
        dot = (ut * vt).sum(-1)
        ang = torch.rad2deg(torch.atan2(cross.abs(), dot))
        degenerate = (ut.norm(dim=-1) == 0) | (vt.norm(dim=-1) == 0)
        degenerate = degenerate | ~torch.isfinite(ut).all(-1) | ~torch.isfinite(vt).all(-1)
        return torch.where(degenerate, torch.full_like(ang, math.nan), ang)
    un = np.asarray(u, dtype=np.float64)
    vn = np.asarray(v, dtype=np.float64)
    cross_n = un[..., 0] * vn[..., 1] - un[..., 1] * vn[..., 0]
    dot_n = (un * vn).sum(-1)
    ang_n = np.degrees(np.arctan2(np.abs(cross_n), dot_n))
    degenerate_n = (np.linalg.norm(un, axis=-1) == 0) | (np.linalg.norm(vn, axis=-1) == 0)
    degenerate_n |= ~np.isfinite(un).all(-1) | ~np.isfinite(vn).all(-1)
    return np.where(degenerate_n, np.nan, ang_n)


def angle_of_progression(ps1: ArrayT, ps2: ArrayT, fh1: ArrayT) -> ArrayT:
    """Angle of Progression (IUGC 2025 definition), in degrees.

    The angle at the vertex ``PS1`` between ``PS1→PS2`` and ``PS1→FH1``:
    ``acos((PS2−PS1)·(FH1−PS1) / (|PS2−PS1|·|FH1−PS1|))``, unsigned, in ``[0, 180]``.

    Args:
        ps1: Right end of the pubic symphysis (the vertex), shape ``(..., 2)``, pixels.
        ps2: Left end of the pubic symphysis, shape ``(..., 2)``.
        fh1: Tangent point on the fetal head, shape ``(..., 2)``.

    The three must have the same shape; any of them may instead be a single point ``(2,)`` used
    for every row of the others (e.g. one ``PS1``/``PS2`` pair against ``(N, 2)`` candidate
    ``FH1`` points). No other broadcasting is done: ``(3, 1, 2)`` against ``(4, 2)`` is refused,
    not paired into a ``(3, 4)`` table.

    Returns:
        AoP in degrees, shape ``(...)``; the same kind (tensor or ndarray) as the input.
        Degenerate configurations (``FH1`` or ``PS2`` coinciding with ``PS1``) and missing
        points (NaN, or an infinite coordinate) give NaN rather than raising, so one bad sample
        never breaks a batch.

    Raises:
        ValueError: If a point array is not ``(..., 2)``, the shapes differ (other than single
            ``(2,)`` points), or the coordinates are complex. The message names every shape.

    Examples:
        >>> import torch
        >>> ps1, ps2, fh1 = torch.tensor([300.0, 80.0]), torch.tensor([200.0, 80.0]), torch.tensor([300.0, 200.0])
        >>> angle_of_progression(ps1, ps2, fh1)
        tensor(90.)
        >>> import numpy as np
        >>> float(angle_of_progression(np.array([0, 0]), np.array([-1, 0]), np.array([1, 1])))
        135.0
        >>> angle_of_progression(torch.zeros(3, 1, 2), torch.ones(4, 2), torch.ones(4, 2))
        Traceback (most recent call last):
        ...
        ValueError: ps1, ps2, fh1 must have the same shape (..., 2), or be one (x, y) pair (2,) used for every row; got ps1 (3, 1, 2), ps2 (4, 2), fh1 (4, 2)
    """
    check_points("ps1", ps1)
    check_points("ps2", ps2)
    check_points("fh1", fh1)
    check_same_shape(ps1=ps1, ps2=ps2, fh1=fh1)
    return angle_between(ps2 - ps1, fh1 - ps1)
