"""Heatmap regression losses: plain functions on batched heatmaps, and ``nn.Module`` wrappers.

Every loss has the signature ``(pred (B, K, h, w), target (B, K, h, w), visible (B, K) | None)
-> scalar``, so the fine-tuning loop can swap one for another. The arithmetic is done in float32
(or wider) whatever the dtype of the predictions, which keeps the loss stable under mixed
precision.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["HeatmapMSELoss", "MaskedHeatmapMSELoss", "heatmap_mse_loss", "masked_heatmap_mse_loss"]


def _check_heatmaps(pred: Tensor, target: Tensor) -> None:
    """Raise ``ValueError`` unless ``pred`` and ``target`` are both ``(B, K, h, w)`` of one shape."""
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape; got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.ndim != 4:
        raise ValueError(f"pred and target must be (B, K, h, w) heatmaps; got shape {tuple(pred.shape)}")


def heatmap_mse_loss(pred: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
    """Mean squared error over all heatmaps (the paper's loss).

    Invisible landmarks have all-zero targets and still count, which teaches the network to stay
    dark where there is no landmark.

    Args:
        pred: ``(B, K, h, w)`` predicted heatmaps.
        target: ``(B, K, h, w)`` target heatmaps.
        visible: Ignored (present for the common loss signature).

    Returns:
        Scalar loss (float32 or wider).

    Raises:
        ValueError: If ``pred`` and ``target`` differ in shape or are not 4-D.

    Examples:
        >>> import torch
        >>> heatmap_mse_loss(torch.ones(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
        tensor(1.)
    """
    _check_heatmaps(pred, target)
    return F.mse_loss(pred.float(), target.float())


def masked_heatmap_mse_loss(pred: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
    """Mean squared error over the heatmaps of visible landmarks only.

    Each heatmap's mean squared error is averaged over the visible ``(b, k)`` pairs.

    Args:
        pred: ``(B, K, h, w)`` predicted heatmaps.
        target: ``(B, K, h, w)`` target heatmaps.
        visible: ``(B, K)`` bool; ``None`` means all visible (then equal to
            :func:`heatmap_mse_loss`).

    Returns:
        Scalar loss (float32 or wider); zero (with a gradient path) when nothing is visible.

    Raises:
        ValueError: If ``pred`` and ``target`` differ in shape or are not 4-D, or ``visible`` is
            not ``(B, K)``.

    Examples:
        >>> import torch
        >>> pred, target = torch.ones(1, 2, 4, 4), torch.zeros(1, 2, 4, 4)
        >>> masked_heatmap_mse_loss(pred, target, torch.tensor([[True, False]]))
        tensor(1.)
    """
    _check_heatmaps(pred, target)
    if visible is None:
        return heatmap_mse_loss(pred, target)
    if tuple(visible.shape) != tuple(pred.shape[:2]):
        raise ValueError(
            f"visible must have shape (B, K) = {tuple(pred.shape[:2])}; got {tuple(visible.shape)}"
        )
    per_map = (pred.float() - target.float()).pow(2).mean(dim=(-2, -1))
    w = visible.to(per_map.dtype)
    return (per_map * w).sum() / w.sum().clamp(min=1.0)


class HeatmapMSELoss(nn.Module):
    """Module form of :func:`heatmap_mse_loss`: mean squared error over all heatmaps.

    Examples:
        >>> import torch
        >>> loss = HeatmapMSELoss()
        >>> loss(torch.full((2, 3, 4, 4), 0.5), torch.zeros(2, 3, 4, 4))
        tensor(0.2500)
    """

    def forward(self, pred: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
        """Loss of ``pred (B, K, h, w)`` against ``target (B, K, h, w)``; ``visible`` is ignored."""
        return heatmap_mse_loss(pred, target, visible)


class MaskedHeatmapMSELoss(nn.Module):
    """Module form of :func:`masked_heatmap_mse_loss`: mean squared error over visible heatmaps.

    Examples:
        >>> import torch
        >>> pred, target = torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4)
        >>> pred[0, 1] = 3.0  # wrong everywhere, but invisible
        >>> MaskedHeatmapMSELoss()(pred, target, torch.tensor([[True, False]]))
        tensor(0.)
    """

    def forward(self, pred: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
        """Loss of ``pred (B, K, h, w)`` against ``target (B, K, h, w)`` over ``visible (B, K)``."""
        return masked_heatmap_mse_loss(pred, target, visible)
