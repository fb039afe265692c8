"""Heatmaps through the geometric part of a keypoint augmentation: targets for an augmented view.

Semi-supervised training (the mean teacher, :mod:`sslkeypoint.ssl.mean_teacher`) needs, for an augmented view of an
image, the heatmaps that another network predicted on the original image, moved exactly where the
augmentation moved the image content. Only the geometric transform applies: brightness and contrast
jitter change pixels, never where a landmark is.

The transform of a :class:`~sslkeypoint.augment.KeypointAugmentation` call is the ``(B, 3, 3)``
matrix kornia composes from its parameters (``AugmentationSequential.get_transformation_matrix``),
in input pixels with the library convention (integer coordinates are pixel centres). A heatmap of
stride ``s`` has ``u = (x + 0.5) / s - 0.5``, so in heatmap pixels the matrix is ``S⁻¹ M S`` with
``S`` the map ``u ↦ s u + (s - 1) / 2``; the heatmaps are resampled bilinearly with kornia's
``warp_affine``. A mirrored sample (the matrix has a negative determinant) swaps the channels of
``flip_pairs``, exactly as the augmentation swaps keypoint identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from kornia.augmentation.container.params import ParamItem
from kornia.geometry.transform import warp_affine
from torch import Tensor

from sslkeypoint.augment.keypoints import KeypointAugmentation

__all__ = ["HeatmapView", "augment_with_heatmaps", "flip_permutation", "heatmap_transform", "warp_heatmaps"]

# A warped all-ones map below this is a pixel whose source lies (partly) outside the heatmap.
_INSIDE = 1.0 - 1e-4


def _check_matrix(matrix: Tensor, batch: int | None = None) -> None:
    if matrix.ndim != 3 or matrix.shape[-2:] != (3, 3) or (batch is not None and matrix.shape[0] != batch):
        expected = f"({batch}, 3, 3)" if batch is not None else "(B, 3, 3)"
        raise ValueError(f"matrix must have shape {expected}; got {tuple(matrix.shape)}")


def heatmap_transform(matrix: Tensor, stride: int) -> Tensor:
    """An input-pixel transform expressed in the pixels of heatmaps with ``stride``.

    Args:
        matrix: ``(B, 3, 3)`` transforms of input pixel coordinates ``(x, y, 1)``.
        stride: Input pixels per heatmap pixel.

    Returns:
        ``(B, 3, 3)`` transforms of heatmap pixel coordinates ``(u, v, 1)``.

    Examples:
        >>> import torch
        >>> shift = torch.tensor([[[1.0, 0.0, 8.0], [0.0, 1.0, -4.0], [0.0, 0.0, 1.0]]])
        >>> heatmap_transform(shift, stride=4)[0, :2, 2].tolist()  # 8 and -4 input px
        [2.0, -1.0]
    """
    _check_matrix(matrix)
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer; got {stride}")
    s = float(stride)
    c = (s - 1.0) / 2.0
    to_input = matrix.new_tensor([[s, 0.0, c], [0.0, s, c], [0.0, 0.0, 1.0]])
    to_heatmap = matrix.new_tensor([[1.0 / s, 0.0, -c / s], [0.0, 1.0 / s, -c / s], [0.0, 0.0, 1.0]])
    return to_heatmap @ matrix @ to_input


def flip_permutation(matrix: Tensor, num_channels: int, flip_pairs: Sequence[Sequence[int]] = ()) -> Tensor:
    """Per sample, which channel each output channel takes: ``flip_pairs`` swapped where mirrored.

    A sample counts as mirrored when the linear part of its transform has a negative determinant
    (rotation, scaling and shearing keep the sign; a reflection flips it).

    Args:
        matrix: ``(B, 3, 3)`` transforms.
        num_channels: Channels ``K``.
        flip_pairs: Index pairs whose identities swap in a mirrored sample.

    Returns:
        ``(B, K)`` long: output channel ``k`` of sample ``b`` is input channel ``[b, k]``.

    Examples:
        >>> import torch
        >>> mirror = torch.tensor([[-1.0, 0.0, 31.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        >>> flip_permutation(torch.stack([torch.eye(3), mirror]), 3, [(0, 1)]).tolist()
        [[0, 1, 2], [1, 0, 2]]
    """
    _check_matrix(matrix)
    b = matrix.shape[0]
    identity = torch.arange(num_channels, device=matrix.device).expand(b, num_channels)
    if not flip_pairs:
        return identity.clone()
    swapped = torch.arange(num_channels, device=matrix.device)
    for i, j in flip_pairs:
        if not (0 <= i < num_channels and 0 <= j < num_channels):
            raise ValueError(f"flip pair {(i, j)} is out of range for {num_channels} channels")
        swapped[i], swapped[j] = j, i
    mirrored = torch.linalg.det(matrix[:, :2, :2].double()) < 0
    return torch.where(mirrored[:, None], swapped.expand(b, num_channels), identity)


def warp_heatmaps(
    heatmaps: Tensor,
    matrix: Tensor,
    stride: int = 1,
    flip_pairs: Sequence[Sequence[int]] = (),
) -> tuple[Tensor, Tensor]:
    """Move heatmaps with an input-pixel transform; say where the result is known.

    Args:
        heatmaps: ``(B, K, h, w)`` heatmaps of ``(B, C, H, W)`` images (``H = s h``).
        matrix: ``(B, 3, 3)`` transforms of the images' pixel coordinates (an augmentation's
            transformation matrix).
        stride: Input pixels per heatmap pixel ``s``.
        flip_pairs: Channel pairs that swap in a mirrored sample (see :func:`flip_permutation`).

    Returns:
        ``(warped, valid)``: the ``(B, K, h, w)`` heatmaps in the transformed image (float32 or the
        input's float64), and a ``(B, 1, h, w)`` bool mask of the pixels whose source lies inside
        the original heatmap (elsewhere the warp has no information and gives 0).

    Examples:
        >>> import torch
        >>> hm = torch.zeros(1, 1, 8, 8); hm[0, 0, 2, 3] = 1.0
        >>> shift = torch.tensor([[[1.0, 0.0, 4.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
        >>> warped, valid = warp_heatmaps(hm, shift, stride=2)  # 4 input px = 2 heatmap px right
        >>> int(warped[0, 0].argmax()) == 2 * 8 + 5, valid[0, 0, 0].tolist()
        (True, [False, False, True, True, True, True, True, True])
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must have shape (B, K, h, w); got {tuple(heatmaps.shape)}")
    b, k, h, w = heatmaps.shape
    _check_matrix(matrix, b)
    dtype = torch.float64 if heatmaps.dtype == torch.float64 else torch.float32
    heatmaps = heatmaps.to(dtype)
    affine = heatmap_transform(matrix.to(device=heatmaps.device, dtype=dtype), stride)[:, :2]
    warped = warp_affine(heatmaps, affine, (h, w), align_corners=True)
    ones = torch.ones(b, 1, h, w, device=heatmaps.device, dtype=dtype)
    valid = warp_affine(ones, affine, (h, w), align_corners=True) >= _INSIDE
    perm = flip_permutation(matrix, k, flip_pairs)
    warped = torch.gather(warped, 1, perm[:, :, None, None].expand(b, k, h, w))
    return warped, valid


class HeatmapView(NamedTuple):
    """An augmented view of images with their heatmaps mapped along (see :func:`augment_with_heatmaps`)."""

    #: ``(B, C, H, W)`` augmented images.
    images: Tensor
    #: ``(B, K, h, w)`` heatmaps moved by the view's geometric transform.
    heatmaps: Tensor
    #: ``(B, 1, h, w)`` bool: where the moved heatmaps are known.
    valid: Tensor
    #: ``(B, K)`` long: output channel ``k`` is input channel ``permutation[b, k]`` (flip pairs
    #: swapped in mirrored samples).
    permutation: Tensor
    #: ``(B, 3, 3)`` the transform in input pixels.
    matrix: Tensor


def augment_with_heatmaps(
    augmentation: KeypointAugmentation,
    images: Tensor,
    heatmaps: Tensor,
    stride: int,
    params: list[ParamItem] | None = None,
) -> HeatmapView:
    """Augment images and move heatmaps of them with the augmentation's geometric transform.

    The images go through the whole augmentation (warp and intensity jitter); the heatmaps through
    its geometric transform only, channels swapped as the augmentation swaps keypoint identities in
    mirrored samples (its ``flip_pairs``). A keypoint at ``p`` that the augmentation moves to ``q``
    thus has its heatmap peak moved from ``p`` to ``q`` (in heatmap pixels of ``stride``).

    Args:
        augmentation: The keypoint augmentation (its random draw is kept in ``last_params``).
        images: ``(B, C, H, W)`` float images in ``[0, 1]``.
        heatmaps: ``(B, K, H / stride, W / stride)`` heatmaps of ``images``.
        stride: Input pixels per heatmap pixel.
        params: A draw of the augmentation (``last_params``) to replay; ``None`` draws a new one.

    Returns:
        A :class:`HeatmapView`.

    Examples:
        >>> import torch
        >>> from sslkeypoint.augment import keypoint_augmentation
        >>> aug = keypoint_augmentation(rotation=20.0)
        >>> view = augment_with_heatmaps(aug, torch.rand(2, 1, 32, 32), torch.rand(2, 3, 8, 8), stride=4)
        >>> view.images.shape, view.heatmaps.shape, view.valid.shape, view.permutation.shape
        (torch.Size([2, 1, 32, 32]), torch.Size([2, 3, 8, 8]), torch.Size([2, 1, 8, 8]), torch.Size([2, 3]))
    """
    if images.ndim != 4 or heatmaps.ndim != 4 or heatmaps.shape[0] != images.shape[0]:
        raise ValueError(
            f"images must be (B, C, H, W) and heatmaps (B, K, h, w) with the same B; got "
            f"{tuple(images.shape)} and {tuple(heatmaps.shape)}"
        )
    expected = (images.shape[-2] / stride, images.shape[-1] / stride)
    if tuple(heatmaps.shape[-2:]) != expected:
        raise ValueError(
            f"heatmaps of images {tuple(images.shape[-2:])} with stride {stride} must be "
            f"({expected[0]:g}, {expected[1]:g}); got {tuple(heatmaps.shape[-2:])}"
        )
    # The keypoint path of the augmentation is not needed: stand-in points, one per channel.
    stand_in = torch.zeros(images.shape[0], heatmaps.shape[1], 2, device=images.device, dtype=images.dtype)
    out, _, _ = augmentation(images, stand_in, None, params=params)
    drawn = augmentation.last_params
    assert drawn is not None
    matrix = augmentation.pipeline.get_transformation_matrix(images, drawn, recompute=True)
    if matrix is None:  # no geometric transform in the pipeline
        matrix = torch.eye(3, device=images.device, dtype=images.dtype).expand(images.shape[0], 3, 3)
    warped, valid = warp_heatmaps(heatmaps, matrix, stride, augmentation.flip_pairs)
    perm = flip_permutation(matrix, heatmaps.shape[1], augmentation.flip_pairs)
    return HeatmapView(out, warped, valid, perm, matrix)
