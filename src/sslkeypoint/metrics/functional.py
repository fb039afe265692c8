"""Keypoint metrics as plain batched functions: radial error, measure errors, heatmap errors, SDR.

Conventions: keypoints are ``(..., K, 2)`` ``(x, y)`` in pixels of one image space (for IUGC, the
original 512×512 image); ``visible`` is a ``(..., K)`` bool mask. Functions take torch tensors
(any device, any float dtype) or numpy arrays and return tensors.

Two kinds of unusable entries are kept apart everywhere:

* **missing** — the target cannot be scored: the keypoint is invisible or the target is not
  finite (for AoP: the target angle is undefined). Error ``NaN``; excluded from every mean.
* **failed** — the target is fine but the prediction is not finite (for AoP: the predicted
  angle is undefined, e.g. coincident predicted points). Error ``+inf``; excluded from means and
  reported as a count, and counted as a miss by :func:`success_detection_rate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sslkeypoint.measures import AngleMeasure, Measure, compute_measures

__all__ = [
    "aop_absolute_error",
    "heatmap_mae",
    "heatmap_mse",
    "mean_radial_error",
    "measure_error",
    "prediction_spread",
    "radial_error",
    "success_detection_rate",
]

SpacingLike = float | Sequence[float] | Tensor


def _as_float(x: Any, name: str) -> Tensor:
    """``x`` as a floating tensor (integers become float32, floats keep their dtype)."""
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.float()
    return t


def _check_keypoints(pred: Tensor, target: Tensor) -> None:
    if pred.ndim < 2 or pred.shape[-1] != 2:
        raise ValueError(f"pred must have shape (..., K, 2); got {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(
            f"target must have the shape of pred {tuple(pred.shape)}; got {tuple(target.shape)}"
        )


def _visible(visible: Any, shape: torch.Size, device: torch.device) -> Tensor:
    """``visible`` as a bool tensor of ``shape`` (all True when None)."""
    if visible is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    v = torch.as_tensor(visible, device=device)
    if v.shape != shape:
        raise ValueError(f"visible must have shape {tuple(shape)}; got {tuple(v.shape)}")
    return v.bool()


def _spacing(pixel_spacing: SpacingLike, like: Tensor) -> Tensor:
    """Pixel spacing as a tensor broadcastable against ``(..., K, 2)`` keypoints."""
    s = torch.as_tensor(pixel_spacing, dtype=like.dtype, device=like.device)
    if s.ndim == 0:
        return s
    if s.shape[-1] != 2:
        raise ValueError(
            "pixel_spacing must be a float, (sx, sy), or a tensor of shape (..., 2) broadcastable "
            f"against the keypoints; got shape {tuple(s.shape)}"
        )
    return s


def radial_error(
    pred: Any,
    target: Any,
    visible: Any = None,
    pixel_spacing: SpacingLike | None = None,
) -> Tensor:
    """Euclidean distance between predicted and target keypoints.

    Args:
        pred: ``(..., K, 2)`` predicted keypoints ``(x, y)``, pixels.
        target: ``(..., K, 2)`` target keypoints, same space.
        visible: ``(..., K)`` bool; False marks a keypoint that cannot be scored. None: all.
        pixel_spacing: Optional size of a pixel (e.g. mm/px): a float, ``(sx, sy)``, or a tensor
            broadcastable against ``(..., K, 2)`` (e.g. ``(B, 1, 2)`` per sample). The error is
            then ``sqrt((sx·dx)² + (sy·dy)²)`` in those units.

    Returns:
        ``(..., K)`` errors in pixels (or spacing units), in pred's float dtype. ``NaN`` where the
        target is missing (invisible or not finite); ``+inf`` where the target is usable but the
        prediction is not finite (a failure).

    Examples:
        >>> import torch
        >>> radial_error(torch.tensor([[3.0, 4.0], [1.0, 1.0]]), torch.zeros(2, 2))
        tensor([5.0000, 1.4142])
        >>> radial_error(torch.tensor([[3.0, 4.0], [float("nan"), 0.0]]), torch.zeros(2, 2),
        ...              visible=torch.tensor([False, True]))
        tensor([nan, inf])
    """
    p = _as_float(pred, "pred")
    t = _as_float(target, "target").to(device=p.device)
    _check_keypoints(p, t)
    dtype = torch.promote_types(p.dtype, t.dtype)
    p, t = p.to(dtype), t.to(dtype)
    vis = _visible(visible, p.shape[:-1], p.device)
    diff = p - t
    if pixel_spacing is not None:
        diff = diff * _spacing(pixel_spacing, diff)
    err = diff.square().sum(-1).sqrt()
    missing = ~vis | ~torch.isfinite(t).all(-1)
    failed = ~missing & ~torch.isfinite(p).all(-1)
    err = torch.where(failed, torch.full_like(err, math.inf), err)
    return torch.where(missing, torch.full_like(err, math.nan), err)


def mean_radial_error(
    pred: Any,
    target: Any,
    visible: Any = None,
    pixel_spacing: SpacingLike | None = None,
) -> Tensor:
    """Mean radial error (MRE) over every scored keypoint of every sample.

    Missing keypoints (invisible / non-finite target) and failed ones (non-finite prediction) are
    left out of the mean; :class:`~sslkeypoint.metrics.KeypointMetrics` counts both.

    Args:
        pred: ``(..., K, 2)`` predicted keypoints, pixels.
        target: ``(..., K, 2)`` target keypoints.
        visible: Optional ``(..., K)`` bool.
        pixel_spacing: Optional pixel size, as in :func:`radial_error`.

    Returns:
        0-dim tensor: the mean error (NaN when nothing could be scored).

    Examples:
        >>> import torch
        >>> mean_radial_error(torch.tensor([[[3.0, 4.0], [0.0, 1.0]]]), torch.zeros(1, 2, 2))
        tensor(3.)
    """
    err = radial_error(pred, target, visible, pixel_spacing)
    ok = torch.isfinite(err)
    if not bool(ok.any()):
        return torch.full((), math.nan, dtype=err.dtype, device=err.device)
    return err[ok].mean()


def measure_error(measure: Measure, pred: Any, target: Any, visible: Any = None, pixel_size: Any = None) -> Tensor:
    """Absolute error of a measure, ``|m(pred) − m(target)|``, in the measure's unit.

    Args:
        measure: A :class:`~sslkeypoint.measures.Measure` (e.g. an
            :class:`~sslkeypoint.measures.AngleMeasure`).
        pred: ``(..., K, 2)`` predicted keypoints.
        target: ``(..., K, 2)`` target keypoints.
        visible: Optional ``(..., K)`` bool; the target value is missing when one of the measure's
            landmarks is invisible.
        pixel_size: Optional per-image pixel sizes in mm for lengths
            (:func:`~sslkeypoint.measures.accepts_pixel_size`; see
            :func:`~sslkeypoint.measures.pixel_size_tensor`): the error is then in mm, and
            missing (NaN) for an image without a size.

    Returns:
        ``(...)`` errors. ``NaN`` where the target value is missing (invisible, non-finite or
        degenerate target points); ``+inf`` where the target value is defined but the predicted
        one is not (non-finite or coincident predicted points).

    Examples:
        >>> import torch
        >>> from sslkeypoint.measures import DistanceMeasure
        >>> target = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
        >>> measure_error(DistanceMeasure(0, 1), torch.tensor([[0.0, 0.0], [6.0, 8.0]]), target)
        tensor(5.)
    """
    p = _as_float(pred, "pred")
    t = _as_float(target, "target").to(device=p.device)
    _check_keypoints(p, t)
    dtype = torch.promote_types(p.dtype, t.dtype)
    p, t = p.to(dtype), t.to(dtype)
    idx = [int(i) for i in measure.landmarks]
    num_k = p.shape[-2]
    if any(not -num_k <= i < num_k for i in idx):
        raise ValueError(f"the measure uses landmarks {tuple(idx)}, out of range for K={num_k} keypoints")
    vis = _visible(visible, p.shape[:-1], p.device)
    m_pred = compute_measures({"m": measure}, p, pixel_size)["m"]
    m_target = compute_measures({"m": measure}, t, pixel_size)["m"]
    err = (m_pred - m_target).abs()
    missing = ~torch.isfinite(m_target) | ~vis[..., idx].all(-1)
    failed = ~missing & ~torch.isfinite(m_pred)
    err = torch.where(failed, torch.full_like(err, math.inf), err)
    return torch.where(missing, torch.full_like(err, math.nan), err)


def aop_absolute_error(
    pred: Any,
    target: Any,
    indices: Sequence[int] = (0, 1, 2),
    visible: Any = None,
) -> Tensor:
    """Absolute Angle-of-Progression error ``|AoP(pred) − AoP(target)|`` in degrees.

    The AoP is the angle at ``kp[indices[0]]`` (PS1) between the directions to ``kp[indices[1]]``
    (PS2) and ``kp[indices[2]]`` (FH1), see :func:`sslkeypoint.geometry.angle_of_progression`:
    :func:`measure_error` of ``AngleMeasure(*indices)``.

    Args:
        pred: ``(..., K, 2)`` predicted keypoints.
        target: ``(..., K, 2)`` target keypoints.
        indices: Positions of ``(PS1, PS2, FH1)`` among the ``K`` keypoints.
        visible: Optional ``(..., K)`` bool; the target AoP is missing when any of the three
            keypoints is invisible.

    Returns:
        ``(...)`` errors in degrees, ``NaN`` where the target AoP is missing and ``+inf`` where it
        is defined but the predicted one is not (see :func:`measure_error`).

    Examples:
        >>> import torch
        >>> target = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])  # 90°
        >>> pred = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]])  # 45°
        >>> aop_absolute_error(pred, target)
        tensor(45.)
        >>> aop_absolute_error(torch.zeros(3, 2), target)  # coincident points: a failure
        tensor(inf)
    """
    if len(indices) != 3:
        raise ValueError(f"indices must name 3 keypoints (PS1, PS2, FH1); got {tuple(indices)}")
    return measure_error(AngleMeasure(*(int(i) for i in indices)), pred, target, visible)


def _heatmap_error(pred: Any, target: Any, reduction: str, power: int) -> Tensor:
    p = _as_float(pred, "pred_heatmaps")
    t = _as_float(target, "target_heatmaps").to(device=p.device, dtype=p.dtype)
    if p.ndim < 2:
        raise ValueError(f"heatmaps must have shape (..., h, w); got {tuple(p.shape)}")
    if t.shape != p.shape:
        raise ValueError(
            f"target heatmaps must have the shape of pred {tuple(p.shape)}; got {tuple(t.shape)}"
        )
    diff = (p - t).abs()
    if power == 2:
        diff = diff.square()
    if reduction == "mean":
        return diff.mean()
    if reduction == "none":
        return diff.mean(dim=(-2, -1))
    raise ValueError(f'reduction must be "mean" or "none"; got {reduction!r}')


def heatmap_mse(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error between heatmaps.

    Args:
        pred: ``(..., h, w)`` predicted heatmaps, e.g. ``(B, K, h, w)``.
        target: ``(..., h, w)`` target heatmaps.
        reduction: ``"mean"`` (one number over every element) or ``"none"`` (the mean over the
            last two dimensions, shape ``(...)``).

    Returns:
        0-dim tensor, or ``(...)`` for ``reduction="none"``.

    Examples:
        >>> import torch
        >>> heatmap_mse(torch.ones(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
        tensor(1.)
    """
    return _heatmap_error(pred, target, reduction, power=2)


def heatmap_mae(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error between heatmaps; arguments as :func:`heatmap_mse`.

    Examples:
        >>> import torch
        >>> heatmap_mae(torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 2, 2), reduction="none")
        tensor([[0.5000]])
    """
    return _heatmap_error(pred, target, reduction, power=1)


def success_detection_rate(errors: Any, radii: float | Sequence[float]) -> Tensor:
    """Success detection rate: the share of scored keypoints within each radius.

    Args:
        errors: Radial errors of any shape, e.g. from :func:`radial_error`. ``NaN`` entries
            (missing) are left out; ``+inf`` entries (failed) count as not detected.
        radii: A radius or a sequence of radii, in the errors' units (an error equal to the
            radius counts as a success).

    Returns:
        ``(R,)`` float tensor of fractions in ``[0, 1]`` (0-dim for a single radius); NaN when
        nothing could be scored.

    Examples:
        >>> import torch
        >>> errors = torch.tensor([1.0, 2.0, 3.0, float("inf"), float("nan")])
        >>> success_detection_rate(errors, [2.0, 10.0])
        tensor([0.5000, 0.7500])
    """
    e = _as_float(errors, "errors").flatten()
    r = torch.as_tensor(radii, dtype=e.dtype, device=e.device)
    scored = e[~torch.isnan(e)]
    if scored.numel() == 0:
        return torch.full(r.shape, math.nan, dtype=e.dtype, device=e.device)
    return (scored.unsqueeze(-1) <= r.reshape(-1)).to(e.dtype).mean(0).reshape(r.shape)


def prediction_spread(points: Any) -> Tensor:
    """Per-keypoint spread of points over samples: median distance from their median position.

    A robust figure: when most samples put a keypoint at the same place, the spread is near 0
    even if a few are elsewhere. Samples whose point is not finite (missing targets, failed
    predictions) are left out of that keypoint's figure.

    Args:
        points: ``(N, K, 2)`` points ``(x, y)``.

    Returns:
        ``(K,)`` float64 spreads; NaN for a keypoint with no finite point.

    Examples:
        >>> import torch
        >>> pts = torch.tensor([[[0.0, 0.0], [5.0, 5.0]], [[6.0, 8.0], [5.0, 5.0]]])
        >>> prediction_spread(pts).tolist()
        [5.0, 0.0]
    """
    p = _as_float(points, "points").to(torch.float64)
    if p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (N, K, 2); got {tuple(p.shape)}")
    if p.shape[0] == 0:
        return torch.full((p.shape[1],), math.nan, dtype=torch.float64)
    p = torch.where(torch.isfinite(p).all(-1, keepdim=True), p, torch.full_like(p, math.nan))
    centre = torch.nanquantile(p, 0.5, dim=0)
    return torch.nanquantile((p - centre).norm(dim=-1), 0.5, dim=0)
