"""Batched kornia augmentation pipelines: MoCo v2 views and keypoint-aware geometric augmentation.

Both pipelines run on whole ``(B, C, H, W)`` batches on whatever device the batch lives on (CPU or
GPU), with a different random draw per sample (``same_on_batch=False``). Images are float tensors in
``[0, 1]``.

Coordinates follow the library convention, which is also kornia's: keypoints are ``(x, y)`` pixels and
integer coordinates are pixel centres, so pixel (row ``i``, column ``j``) is at ``(x=j, y=i)``. The
frame of an ``H × W`` image is ``[-0.5, W - 0.5) × [-0.5, H - 0.5)``.

Every pipeline draws its parameters with kornia's ``AugmentationSequential.forward_parameters`` and
keeps them in ``last_params``; passing them back as ``params=`` replays a call exactly.

Modules:
    :mod:`~sslkeypoint.augment.views`: the MoCo v2 view augmentation.
    :mod:`~sslkeypoint.augment.keypoints`: keypoint-aware affine and intensity augmentation.
    :mod:`~sslkeypoint.augment.heatmaps`: heatmaps moved with a keypoint augmentation's geometric
    transform (targets for an augmented view).
    :mod:`~sslkeypoint.augment.intensity`: gated colour jitter and Gaussian blur, kornia
    augmentations that compute only the samples their probability gate selects.
"""

from __future__ import annotations

from sslkeypoint.augment.heatmaps import (
    HeatmapView,
    augment_with_heatmaps,
    flip_permutation,
    heatmap_transform,
    warp_heatmaps,
)
from sslkeypoint.augment.intensity import GatedColorJiggle, GatedGaussianBlur
from sslkeypoint.augment.keypoints import (
    KeypointAugmentation,
    keypoint_augmentation,
    keypoints_in_frame,
)
from sslkeypoint.augment.views import MoCoV2Augmentation, blur_kernel_size, moco_v2_augmentation

__all__ = [
    "GatedColorJiggle",
    "GatedGaussianBlur",
    "HeatmapView",
    "KeypointAugmentation",
    "MoCoV2Augmentation",
    "augment_with_heatmaps",
    "blur_kernel_size",
    "flip_permutation",
    "heatmap_transform",
    "keypoint_augmentation",
    "keypoints_in_frame",
    "moco_v2_augmentation",
    "warp_heatmaps",
]
