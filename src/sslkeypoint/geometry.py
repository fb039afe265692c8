"""Geometric measures computed from landmarks.

All points are ``(..., 2)`` arrays in ``(x, y)`` order, in pixels. Functions accept
torch tensors or numpy arrays and return the same kind they were given.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

ArrayT = TypeVar("ArrayT", Tensor, np.ndarray)

__all__ = ["angle_between", "angle_of_progression"]


def _check_points(name: str, p: Tensor | np.ndarray) -> None:
    if p.ndim < 1 or p.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., 2) (x, y); got shape {tuple(p.shape)}")


def angle_between(u: ArrayT, v: ArrayT) -> ArrayT:
    """Unsigned angle between two vectors, in degrees.

    Args:
        u: Vectors of shape ``(..., 2)``.
        v: Vectors of shape ``(..., 2)``, broadcastable against ``u``.

    Returns:
        Angles in degrees in ``[0, 180]``, shape ``(...)``. A zero-length vector gives NaN.

    Examples:
        >>> import torch
        >>> angle_between(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
        tensor(90.)
    """
    _check_points("u", u)
    _check_points("v", v)
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
        return torch.where(degenerate, torch.full_like(ang, math.nan), ang)
    un = np.asarray(u, dtype=np.float64)
    vn = np.asarray(v, dtype=np.float64)
    cross_n = un[..., 0] * vn[..., 1] - un[..., 1] * vn[..., 0]
    dot_n = (un * vn).sum(-1)
    ang_n = np.degrees(np.arctan2(np.abs(cross_n), dot_n))
    degenerate_n = (np.linalg.norm(un, axis=-1) == 0) | (np.linalg.norm(vn, axis=-1) == 0)
    return np.where(degenerate_n, np.nan, ang_n)


def angle_of_progression(ps1: ArrayT, ps2: ArrayT, fh1: ArrayT) -> ArrayT:
    """Angle of Progression (IUGC 2025 definition), in degrees.

    The angle at the vertex ``PS1`` between ``PS1→PS2`` and ``PS1→FH1``:
    ``acos((PS2−PS1)·(FH1−PS1) / (|PS2−PS1|·|FH1−PS1|))``, unsigned, in ``[0, 180]``.

    Args:
        ps1: Right end of the pubic symphysis (the vertex), shape ``(..., 2)``, pixels.
        ps2: Left end of the pubic symphysis, shape ``(..., 2)``.
        fh1: Tangent point on the fetal head, shape ``(..., 2)``.

    Returns:
        AoP in degrees, shape ``(...)``; the same kind (tensor or ndarray) as the input.
        Degenerate configurations (``FH1`` or ``PS2`` coinciding with ``PS1``) give NaN
        rather than raising, so one bad sample never breaks a batch.

    Examples:
        >>> import torch
        >>> ps1, ps2, fh1 = torch.tensor([300.0, 80.0]), torch.tensor([200.0, 80.0]), torch.tensor([300.0, 200.0])
        >>> angle_of_progression(ps1, ps2, fh1)
        tensor(90.)
        >>> import numpy as np
        >>> float(angle_of_progression(np.array([0, 0]), np.array([-1, 0]), np.array([1, 1])))
        135.0
    """
    _check_points("ps1", ps1)
    _check_points("ps2", ps2)
    _check_points("fh1", fh1)
    return angle_between(ps2 - ps1, fh1 - ps1)
