"""Keypoint maps between image sizes: original image, network input and heatmap.

Keypoints are ``(..., K, 2)`` in ``(x, y)`` pixels and integer coordinates are pixel centres.
Resizing from width ``W`` to ``W'`` maps ``x' = (x + 0.5) * W' / W - 0.5`` (likewise ``y``), as
torch/PIL resize with ``align_corners=False``; a heatmap of stride ``s`` uses the same map,
``u = (x + 0.5) / s - 0.5``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["SizeLike", "keypoints_to_input", "keypoints_to_original", "rescale_keypoints"]

SizeLike = Sequence[int] | Tensor


def _size_tensor(size: SizeLike, like: Tensor, name: str) -> Tensor:
    """Return ``size`` as a float tensor ``(..., 2)`` of ``(H, W)`` on ``like``'s device and dtype."""
    t = torch.as_tensor(size, device=like.device)
    if t.shape[-1:] != (2,):
        raise ValueError(f"{name} must be (H, W) or a (B, 2) tensor of (H, W); got shape {tuple(t.shape)}")
    return t.to(like.dtype)


def rescale_keypoints(keypoints: Tensor, src_size: SizeLike, dst_size: SizeLike) -> Tensor:
    """Map keypoints from an image of size ``src_size`` to the same image resized to ``dst_size``.

    Uses the pixel-centre resize convention ``x' = (x + 0.5) * W' / W - 0.5`` (likewise ``y``).

    Args:
        keypoints: ``(..., K, 2)`` float tensor of ``(x, y)`` pixels in the source image.
        src_size: Source ``(H, W)``, or a ``(B, 2)`` tensor of per-sample ``(H, W)`` when
            ``keypoints`` is ``(B, K, 2)``.
        dst_size: Destination ``(H, W)`` (or ``(B, 2)``, as ``src_size``).

    Returns:
        ``(..., K, 2)`` keypoints in destination pixels. NaN stays NaN.

    Examples:
        >>> import torch
        >>> rescale_keypoints(torch.tensor([[0.0, 511.0]]), (512, 512), (256, 256)).tolist()
        [[-0.25, 255.25]]
    """
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (..., K, 2); got {tuple(keypoints.shape)}")
    if not keypoints.is_floating_point():
        keypoints = keypoints.float()
    src = _size_tensor(src_size, keypoints, "src_size")
    dst = _size_tensor(dst_size, keypoints, "dst_size")
    # (H, W) -> (W, H) to line up with (x, y); per-sample sizes broadcast over K.
    scale = (dst / src).flip(-1)
    if scale.ndim == 2:
        if keypoints.ndim != 3 or scale.shape[0] != keypoints.shape[0]:
            raise ValueError(
                "per-sample sizes of shape (B, 2) need keypoints of shape (B, K, 2); got sizes "
                f"{tuple(scale.shape)} and keypoints {tuple(keypoints.shape)}"
            )
        scale = scale[:, None, :]
    return (keypoints + 0.5) * scale - 0.5


def keypoints_to_input(keypoints: Tensor, original_size: SizeLike, input_size: SizeLike) -> Tensor:
    """Map keypoints from original image pixels to network-input pixels.

    Args:
        keypoints: ``(..., K, 2)`` ``(x, y)`` in original pixels.
        original_size: Original ``(H, W)`` or ``(B, 2)`` per-sample sizes.
        input_size: Network input ``(H, W)``.

    Returns:
        ``(..., K, 2)`` in input pixels.

    Examples:
        >>> import torch
        >>> keypoints_to_input(torch.tensor([[255.5, 255.5]]), (512, 512), (256, 256))
        tensor([[127.5000, 127.5000]])
    """
    return rescale_keypoints(keypoints, original_size, input_size)


def keypoints_to_original(keypoints: Tensor, original_size: SizeLike, input_size: SizeLike) -> Tensor:
    """Map keypoints from network-input pixels back to original image pixels.

    The exact inverse of :func:`keypoints_to_input`.

    Args:
        keypoints: ``(..., K, 2)`` ``(x, y)`` in input pixels.
        original_size: Original ``(H, W)`` or ``(B, 2)`` per-sample sizes.
        input_size: Network input ``(H, W)``.

    Returns:
        ``(..., K, 2)`` in original pixels.

    Examples:
        >>> import torch
        >>> keypoints_to_original(torch.tensor([[127.5, 127.5]]), (512, 512), (256, 256))
        tensor([[255.5000, 255.5000]])
    """
    return rescale_keypoints(keypoints, input_size, original_size)
