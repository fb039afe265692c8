"""Small helpers shared by the primitive modules (not part of the public API)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def size_pair(size: int | Sequence[int] | Tensor, name: str = "size") -> tuple[int, int]:
    """Return ``size`` (an int, or two ints ``(H, W)``) as a tuple of two positive ints.

    Raises:
        ValueError: naming ``name`` and the value received, when it is not one or two positive ints.
    """
    if isinstance(size, int):
        pair = (size, size)
    else:
        items = size.tolist() if isinstance(size, Tensor) else list(size)
        if len(items) != 2:
            raise ValueError(f"{name} must be an int or (H, W); got {size!r}")
        pair = (int(items[0]), int(items[1]))
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive (H, W); got {pair}")
    return pair
