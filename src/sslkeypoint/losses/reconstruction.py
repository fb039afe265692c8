"""Reconstruction loss of masked-image pre-training: squared error over the masked pixels.

The loss of :class:`~sslkeypoint.ssl.MaskedReconstruction`: what the network painted back against
the original image, where the input was hidden (or over the whole image when nothing was masked,
the denoising case).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MaskedReconstructionLoss", "masked_reconstruction_loss"]


def masked_reconstruction_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over the masked pixels (every pixel when ``mask`` is ``None`` or empty).

    Args:
        pred: ``(B, C, H, W)`` reconstructed images.
        target: ``(B, C, H, W)`` original images.
        mask: Optional ``(B, 1, H, W)`` or ``(B, C, H, W)`` bool: the pixels that were hidden.

    Returns:
        Scalar float32 loss, the mean over the masked pixels and channels.

    Raises:
        ValueError: If the shapes differ or the mask does not broadcast to the images.

    Examples:
        >>> import torch
        >>> pred, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> mask = torch.tensor([[[[True, False], [False, True]]]])
        >>> masked_reconstruction_loss(pred, target, mask).item()  # (1 + 16) / 2
        8.5
        >>> masked_reconstruction_loss(pred, target).item()  # (1 + 4 + 9 + 16) / 4
        7.5
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must be (B, C, H, W) of one shape; got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    diff = (pred.float() - target.float()) ** 2
    if mask is None:
        return diff.mean()
    b, c, h, w = pred.shape
    if mask.ndim != 4 or mask.shape[0] != b or mask.shape[-2:] != (h, w) or mask.shape[1] not in (1, c):
        raise ValueError(f"mask must be (B, 1, H, W) or (B, C, H, W) = ({b}, 1 or {c}, {h}, {w}); got {tuple(mask.shape)}")
    weight = mask.to(torch.float32).expand(pred.shape)
    total = weight.sum()
    if total == 0:
        return diff.mean()
    return (diff * weight).sum() / total


class MaskedReconstructionLoss(nn.Module):
    """Module form of :func:`masked_reconstruction_loss`."""

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """See :func:`masked_reconstruction_loss`."""
        return masked_reconstruction_loss(pred, target, mask)
