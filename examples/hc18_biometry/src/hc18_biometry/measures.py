"""The head's measures in mm: HC, BPD and OFD of the ellipse through the predicted outline points.

:class:`HeadEllipse` shows how a task adds a measure of its own: a frozen dataclass with a
``unit``, the ``landmarks`` it reads, the ``segments`` that draw it, ``accepts_pixel_size = True``
(a length, turned into mm with each image's own pixel size) and a call on ``(..., K, 2)``
keypoints. The library stores it in checkpoints and predictor files by its import path and
fields, so a saved model computes it again wherever this package is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from sslkeypoint.geometry import ellipse_through_points
from sslkeypoint.measures import Measure, pixel_size_tensor

__all__ = ["HeadEllipse", "hc_error_mm", "head_measures"]

Quantity = Literal["perimeter", "major", "minor"]


@dataclass(frozen=True)
class HeadEllipse:
    """A length of the ellipse through outline points: its perimeter (HC), long axis (OFD) or
    short axis (BPD); px, or mm with a pixel size.

    The ellipse is :func:`sslkeypoint.geometry.ellipse_through_points` of landmarks
    ``first .. first + count - 1`` (a least-squares fit from five points on), computed in mm when
    each image's pixel size is given (points scaled first, so non-square pixels are right too);
    the perimeter is Ramanujan's (:meth:`sslkeypoint.geometry.Ellipse.perimeter`). A sample whose
    points are missing or fit no ellipse gives NaN.

    Args:
        quantity: ``"perimeter"``, ``"major"`` (the long axis, ``2a``) or ``"minor"`` (``2b``).
        first: Index of the first outline point.
        count: How many outline points (4, the ends of the axes in order, or at least 5).

    Examples:
        >>> from sslkeypoint.geometry import Ellipse, ellipse_points_towards
        >>> kp = torch.from_numpy(ellipse_points_towards(Ellipse((50.0, 40.0), (30.0, 20.0), 0.3), 8))
        >>> round(float(HeadEllipse("major", 0, 8)(kp)), 6), round(float(HeadEllipse("minor", 0, 8)(kp, pixel_size=0.5)), 6)
        (60.0, 20.0)
    """

    quantity: Quantity = "perimeter"
    first: int = 4
    count: int = 8

    #: A length: each image's own pixel size turns it into mm.
    accepts_pixel_size: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.quantity not in ("perimeter", "major", "minor"):
            raise ValueError(f'quantity must be "perimeter", "major" or "minor"; got {self.quantity!r}')
        if isinstance(self.first, bool) or not isinstance(self.first, int) or self.first < 0:
            raise ValueError(f"first must be a landmark index >= 0; got {self.first!r}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not (self.count == 4 or self.count >= 5):
            raise ValueError(f"count must be 4 or at least 5 outline points; got {self.count!r}")

    @property
    def unit(self) -> str:
        """``"px"``; ``"mm"`` when called with pixel sizes."""
        return "px"

    @property
    def landmarks(self) -> tuple[int, ...]:
        """The outline points."""
        return tuple(range(self.first, self.first + self.count))

    @property
    def segments(self) -> tuple[tuple[int, int], ...]:
        """The outline, point to point."""
        ids = self.landmarks
        return tuple((ids[k], ids[(k + 1) % len(ids)]) for k in range(len(ids)))

    def __call__(self, keypoints: Tensor, pixel_size: Any = None) -> Tensor:
        """``(..., K, 2)`` keypoints (``K >= first + count``) to ``(...)`` lengths."""
        end = self.first + self.count
        if keypoints.ndim < 2 or keypoints.shape[-1] != 2 or keypoints.shape[-2] < end:
            raise ValueError(f"keypoints must have shape (..., K >= {end}, 2); got {tuple(keypoints.shape)}")
        kp = keypoints[..., self.first : end, :].to(torch.float64)
        if pixel_size is not None:
            kp = kp * pixel_size_tensor(pixel_size, tuple(kp.shape[:-2]), kp)[..., None, :]
        flat = kp.reshape(-1, self.count, 2).cpu().numpy()
        out = np.full(len(flat), np.nan)
        for i, points in enumerate(flat):
            if np.isfinite(points).all():
                try:
                    e = ellipse_through_points(points)
                except ValueError:
                    continue  # no ellipse through these points: no value
                out[i] = e.perimeter() if self.quantity == "perimeter" else 2 * e.axes[0 if self.quantity == "major" else 1]
        dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float32
        return torch.from_numpy(out).reshape(kp.shape[:-2]).to(dtype)


def head_measures(directions: int = 8) -> dict[str, Measure]:
    """``hc``, ``bpd`` and ``ofd`` of the ellipse through the direction points of
    :func:`hc18_biometry.landmarks.landmark_names`.

    Examples:
        >>> sorted(head_measures(8))
        ['bpd', 'hc', 'ofd']
    """
    return {"hc": HeadEllipse("perimeter", 4, directions), "bpd": HeadEllipse("minor", 4, directions),
            "ofd": HeadEllipse("major", 4, directions)}


def hc_error_mm(predicted: Any, truth: Any) -> np.ndarray:
    """The challenge's score of each image: the absolute HC difference in mm (NaN where either is).

    Examples:
        >>> hc_error_mm([170.0, float("nan")], [168.5, 100.0]).tolist()
        [1.5, nan]
    """
    return np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64))
