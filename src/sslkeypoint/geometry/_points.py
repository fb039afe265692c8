"""Point arrays of the geometry modules: conversion to numpy and the checks of their shapes.

A point array is ``(..., 2)`` in ``(x, y)`` order, in pixels, a torch tensor or a numpy array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from torch import Tensor

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: A point array type: the angle and tangent functions return the kind they were given.
ArrayT = TypeVar("ArrayT", Tensor, np.ndarray)


def is_complex(p: Any) -> bool:
    """Whether ``p`` (tensor or array) holds complex values."""
    return bool(p.is_complex()) if isinstance(p, Tensor) else bool(np.iscomplexobj(p))


def check_points(name: str, p: Tensor | np.ndarray) -> None:
    """Raise ValueError naming ``name`` unless ``p`` is a real ``(..., 2)`` point array."""
    if p.ndim < 1 or p.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., 2) (x, y); got shape {tuple(p.shape)}")
    if is_complex(p):
        raise ValueError(f"{name} must be real (x, y) coordinates; got complex values ({p.dtype})")


def one_point(name: str, p: Any) -> NDArray[np.float64]:
    """``p`` as one real ``(2,)`` float64 point (a ``(1, 2)`` array is taken as one point)."""
    q = to_numpy(p)
    if q.size != 2:
        raise ValueError(f"{name} must be one point (x, y) of shape (2,); got shape {tuple(q.shape)}")
    return q.ravel()


def check_same_shape(**points: Tensor | np.ndarray) -> None:
    """Points of one call must have one shape ``(..., 2)``; a single ``(2,)`` point serves every row.

    Anything else (e.g. ``(3, 1, 2)`` with ``(4, 2)``, which broadcasting would silently pair into
    a ``(3, 4)`` table) is refused.
    """
    shapes = {name: tuple(p.shape) for name, p in points.items()}
    batched = {shape for shape in shapes.values() if shape != (2,)}
    if len(batched) > 1:
        given = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(
            f"{', '.join(shapes)} must have the same shape (..., 2), or be one (x, y) pair (2,) used "
            f"for every row; got {given}"
        )


def to_numpy(x: Any, dtype: Any = np.float64) -> NDArray[Any]:
    """``x`` (tensor, array or sequence) as a numpy array of ``dtype`` on the CPU."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    if np.iscomplexobj(x):
        raise ValueError(f"expected real (x, y) coordinates; got complex values {np.asarray(x).tolist()!r}"[:200])
    return np.asarray(x, dtype=dtype)
