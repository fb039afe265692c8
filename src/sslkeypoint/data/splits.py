"""Reproducible train / validation splits that can keep groups (cases, videos) on one side."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import numpy as np

__all__ = ["split_records"]

T = TypeVar("T")


def split_records(
    records: Sequence[T],
    val_fraction: float = 0.2,
    seed: int = 0,
    group: Callable[[T], Hashable] | None = None,
) -> tuple[list[T], list[T]]:
    """Split records into disjoint train and validation lists, reproducibly.

    ``round(n · val_fraction)`` records (at least 1, at most ``n - 1``) go to validation, chosen by
    a permutation from ``numpy.random.default_rng(seed)``; both lists keep the input order. With
    ``group``, whole groups (e.g. all frames of one case) go to the same side and the fraction
    counts groups.

    Args:
        records: Anything to split (typically :class:`KeypointRecord`).
        val_fraction: Validation share in ``(0, 1)``; 0.2 gives the usual 8:2 split.
        seed: Seed of the permutation.
        group: Optional key function; records with equal keys stay together.

    Returns:
        ``(train, val)``.

    Raises:
        ValueError: If ``val_fraction`` is not in ``(0, 1)`` or there are fewer than 2 records
            (groups).

    Examples:
        >>> train, val = split_records(list(range(10)), val_fraction=0.2, seed=0)
        >>> len(train), len(val), sorted(train + val) == list(range(10))
        (8, 2, True)
    """
    if not (isinstance(val_fraction, int | float) and 0.0 < val_fraction < 1.0):
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction!r}")
    items = list(records)
    keys: list[Hashable] = [group(r) for r in items] if group is not None else list(range(len(items)))
    unique = list(dict.fromkeys(keys))
    n = len(unique)
    if n < 2:
        what = "groups" if group is not None else "records"
        raise ValueError(f"need at least 2 {what} to split; got {n}")
    n_val = min(max(math.floor(n * val_fraction + 0.5), 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    val_keys = {unique[i] for i in perm[:n_val].tolist()}
    train = [r for r, k in zip(items, keys) if k not in val_keys]
    val = [r for r, k in zip(items, keys) if k in val_keys]
    return train, val
