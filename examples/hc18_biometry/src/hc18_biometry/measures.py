"""The head's measures in mm: HC (a measure of this example), BPD and OFD (the library's distance).

:class:`HeadCircumference` shows how a task adds a measure of its own: a frozen dataclass with a
``unit``, the ``landmarks`` it reads, the ``segments`` that draw it, ``accepts_pixel_size = True``
(a length, turned into mm with each image's own pixel size) and a call on ``(..., K, 2)``
keypoints. The library stores it in checkpoints and predictor files by its import path and
fields, so a saved model computes it again wherever this package is installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from sslkeypoint.geometry import ellipse_through_points
from sslkeypoint.measures import DistanceMeasure, Measure, pixel_size_tensor

__all__ = ["HeadCircumference", "head_measures", "hc_error_mm"]


@dataclass(frozen=True)
class HeadCircumference:
    """The perimeter of the ellipse through the outline points, in px (mm with a pixel size).

    The ellipse is :func:`sslkeypoint.geometry.ellipse_through_points` of the ``count`` points
    (a least-squares fit from five points on; the ends of the two axes for four), in mm when
    each image's pixel size is given (points scaled first, so non-square pixels are right too);
    its perimeter is Ramanujan's (:meth:`sslkeypoint.geometry.Ellipse.perimeter`). A sample whose
    points are missing or fit no ellipse gives NaN.

    Args:
        count: How many outline points (landmarks ``0 .. count - 1``).

    Examples:
        >>> from sslkeypoint.geometry import Ellipse, ellipse_outline_points
        >>> kp = torch.from_numpy(ellipse_outline_points(Ellipse((50.0, 40.0), (30.0, 30.0), 0.0), 8))
        >>> round(float(HeadCircumference(8)(kp)) / math.pi, 6)  # a circle of radius 30 px
        60.0
        >>> round(float(HeadCircumference(8)(kp, pixel_size=0.5)) / math.pi, 6)
        30.0
    """

    count: int = 8

    #: A length: each image's own pixel size turns it into mm.
    accepts_pixel_size: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not (self.count == 4 or self.count >= 5):
            raise ValueError(f"count must be 4 or at least 5 outline points; got {self.count!r}")

    @property
    def unit(self) -> str:
        """``"px"``; ``"mm"`` when called with pixel sizes."""
        return "px"

    @property
    def landmarks(self) -> tuple[int, ...]:
        """Every outline point."""
        return tuple(range(self.count))

    @property
    def segments(self) -> tuple[tuple[int, int], ...]:
        """The outline, point to point."""
        return tuple((k, (k + 1) % self.count) for k in range(self.count))

    def __call__(self, keypoints: Tensor, pixel_size: Any = None) -> Tensor:
        """``(..., K, 2)`` keypoints (``K >= count``) to ``(...)`` perimeters."""
        if keypoints.ndim < 2 or keypoints.shape[-1] != 2 or keypoints.shape[-2] < self.count:
            raise ValueError(f"keypoints must have shape (..., K >= {self.count}, 2); got {tuple(keypoints.shape)}")
        kp = keypoints[..., : self.count, :].to(torch.float64)
        if pixel_size is not None:
            kp = kp * pixel_size_tensor(pixel_size, tuple(kp.shape[:-2]), kp)[..., None, :]
        flat = kp.reshape(-1, self.count, 2).cpu().numpy()
        out = np.full(len(flat), math.nan)
        for i, points in enumerate(flat):
            if np.isfinite(points).all():
                try:
                    out[i] = ellipse_through_points(points).perimeter()
                except ValueError:
                    pass  # no ellipse through these points: no value
        return torch.from_numpy(out).reshape(kp.shape[:-2]).to(keypoints.dtype if keypoints.is_floating_point() else torch.float32)


def head_measures(count: int = 8) -> dict[str, Measure]:
    """``hc``, ``bpd`` and ``ofd`` for ``count`` outline points named by
    :func:`hc18_biometry.landmarks.landmark_names`.

    Examples:
        >>> sorted(head_measures(8))
        ['bpd', 'hc', 'ofd']
    """
    step = count // 4
    return {"hc": HeadCircumference(count), "bpd": DistanceMeasure(step, 3 * step),
            "ofd": DistanceMeasure(0, 2 * step)}


def hc_error_mm(predicted: Any, truth: Any) -> np.ndarray:
    """The challenge's score of each image: the absolute HC difference in mm (NaN where either is).

    Examples:
        >>> hc_error_mm([170.0, float("nan")], [168.5, 100.0]).tolist()
        [1.5, nan]
    """
    return np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64))
