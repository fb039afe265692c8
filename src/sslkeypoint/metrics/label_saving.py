"""The label-saving factor: how many labels training from scratch needs to do as well.

A method that reaches an error ``e`` with ``n`` labels saves labels when training from scratch on
randomly chosen labels needs more than ``n`` to reach ``e``. On a measured scratch curve — mean
errors ``e_i`` at label counts ``n_i`` — the labels scratch needs for ``e`` are interpolated
linearly in ``log n`` between the two budgets whose errors bracket ``e``; the factor is that count
divided by ``n``. Outside the measured curve only a bound is known: an error below the curve's
lowest needs more labels than the largest budget (a lower bound), one above its highest fewer than
the smallest (an upper bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LabelSaving", "label_saving_factor", "labels_needed"]


@dataclass(frozen=True)
class LabelSaving:
    """A label-saving factor.

    Attributes:
        factor: Labels scratch needs divided by the labels used (``> 1``: labels saved).
        labels_needed: Labels scratch needs for the same error (interpolated).
        bound: ``""`` (interpolated), ``">"`` (at least: better than the whole curve) or ``"<"``
            (at most: worse than the whole curve).
    """

    factor: float
    labels_needed: float
    bound: str = ""

    def __str__(self) -> str:
        return f"{self.bound}{self.factor:.2f}×"


def _monotone(labels: Sequence[float], errors: Sequence[float]) -> tuple[list[float], list[float]]:
    """The curve sorted by labels, each error the lowest reached with at most that many labels."""
    if len(labels) != len(errors) or len(labels) < 2:
        raise ValueError(f"a scratch curve needs two or more (labels, error) points; got {len(labels)} and {len(errors)}")
    pairs = sorted(zip(labels, errors, strict=True))
    if any(n <= 0 or not math.isfinite(n) or not math.isfinite(e) for n, e in pairs):
        raise ValueError(f"labels must be positive and errors finite; got {pairs}")
    xs, ys, best = [], [], math.inf
    for n, e in pairs:
        best = min(best, e)
        xs.append(float(n))
        ys.append(best)
    return xs, ys


def labels_needed(labels: Sequence[float], errors: Sequence[float], error: float) -> tuple[float, str]:
    """Labels the scratch curve needs for ``error``, and ``""``, ``">"`` or ``"<"`` (see the module notes).

    A curve that rises somewhere (seed noise) is read as its lower envelope: more labels never
    need to do worse than fewer did.

    Examples:
        >>> needed, bound = labels_needed([25, 50, 100, 200], [10.0, 8.0, 7.0, 5.5], 7.5)
        >>> round(needed, 2), bound  # half way between 50 and 100 labels in log scale: 50·√2
        (70.71, '')
        >>> labels_needed([25, 50, 100, 200], [10.0, 8.0, 7.0, 5.5], 5.0)
        (200.0, '>')
    """
    xs, ys = _monotone(labels, errors)
    if error <= ys[-1]:
        return xs[-1], ">" if error < ys[-1] else ""
    if error >= ys[0]:
        return xs[0], "<" if error > ys[0] else ""
    for i in range(len(xs) - 1):
        high, low = ys[i], ys[i + 1]
        if low <= error <= high:
            if high == low:
                return xs[i], ""
            t = (high - error) / (high - low)
            return math.exp(math.log(xs[i]) + t * (math.log(xs[i + 1]) - math.log(xs[i]))), ""
    raise AssertionError("unreachable: the error lies within the curve")  # pragma: no cover


def label_saving_factor(labels: Sequence[float], errors: Sequence[float], used: float, error: float) -> LabelSaving:
    """The label-saving factor of reaching ``error`` with ``used`` labels, against a scratch curve.

    Args:
        labels: The scratch curve's label counts.
        errors: Its mean errors (lower is better), one per count.
        used: Labels the method used.
        error: The method's mean error.

    Returns:
        A :class:`LabelSaving`.

    Examples:
        >>> str(label_saving_factor([25, 50, 100, 200], [10.0, 8.0, 7.0, 5.5], used=50, error=5.5))
        '4.00×'
        >>> str(label_saving_factor([25, 50, 100, 200], [10.0, 8.0, 7.0, 5.5], used=50, error=5.0))
        '>4.00×'
    """
    if not used > 0:
        raise ValueError(f"used must be a positive number of labels; got {used}")
    needed, bound = labels_needed(labels, errors, error)
    return LabelSaving(needed / used, needed, bound)
