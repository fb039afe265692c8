"""Input validation shared by the augmentation pipelines."""

from __future__ import annotations

from torch import Tensor


def check_images(images: Tensor, in_chans: int | None = None) -> None:
    """Raise ValueError unless ``images`` is a floating ``(B, C, H, W)`` batch (with ``C == in_chans``)."""
    if images.ndim != 4:
        raise ValueError(f"images must have shape (B, C, H, W); got {tuple(images.shape)}")
    if in_chans is not None and images.shape[1] != in_chans:
        raise ValueError(
            f"images must have {in_chans} channel(s), shape (B, {in_chans}, H, W); "
            f"got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating tensor in [0, 1]; got dtype {images.dtype}")
