"""Consistency loss: a network's heatmaps against target heatmaps over the pixels where they are known.

The unlabelled loss of the mean teacher (:mod:`sslkeypoint.ssl.mean_teacher`): the network's
heatmaps on an augmented view against the teacher's heatmaps moved by the view's transform, over
the pixels the transform keeps inside the image and the channels whose pseudo-label is confident.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ConsistencyLoss", "consistency_loss"]


def consistency_loss(pred: Tensor, target: Tensor, valid: Tensor, keep: Tensor) -> Tensor:
    """Mean squared difference over the kept channels' valid pixels (0 when none is kept).

    Args:
        pred: ``(B, K, h, w)`` predicted heatmaps.
        target: ``(B, K, h, w)`` target heatmaps (no gradient flows into them).
        valid: ``(B, 1, h, w)`` or ``(B, K, h, w)`` bool: pixels where the target is known.
        keep: ``(B, K)`` bool: channels that count.

    Returns:
        Scalar float32 loss, on ``pred``'s graph also when nothing is kept.

    Raises:
        ValueError: On shapes other than the above.

    Examples:
        >>> import torch
        >>> pred, target = torch.zeros(1, 2, 1, 2), torch.tensor([[[[1.0, 2.0]], [[5.0, 5.0]]]])
        >>> valid = torch.tensor([[[[True, False]]]])
        >>> consistency_loss(pred, target, valid, torch.tensor([[True, False]])).item()  # (0 - 1)^2 / 1
        1.0
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"pred and target must have the same shape (B, K, h, w); got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    b, k = pred.shape[:2]
    if tuple(keep.shape) != (b, k):
        raise ValueError(f"keep must have shape (B, K) = ({b}, {k}); got {tuple(keep.shape)}")
    weight = valid.to(torch.float32) * keep[:, :, None, None].to(torch.float32)
    weight = weight.expand(pred.shape)
    diff = (pred.float() - target.detach().float()) ** 2
    return (diff * weight).sum() / weight.sum().clamp_min(1.0)


class ConsistencyLoss(nn.Module):
    """Module form of :func:`consistency_loss`."""

    def forward(self, pred: Tensor, target: Tensor, valid: Tensor, keep: Tensor) -> Tensor:
        """See :func:`consistency_loss`."""
        return consistency_loss(pred, target, valid, keep)
