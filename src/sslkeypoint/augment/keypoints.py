"""Keypoint-aware batch augmentation: pixels and keypoints through the same kornia transform."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import kornia.augmentation as K
import torch
from kornia.augmentation.container.params import ParamItem
from torch import Tensor, nn

from sslkeypoint._utils import size_pair
from sslkeypoint.augment._checks import check_images
from sslkeypoint.augment._kornia import applied_samples

__all__ = ["KeypointAugmentation", "keypoint_augmentation", "keypoints_in_frame"]


def keypoints_in_frame(keypoints: Tensor, size: int | Sequence[int]) -> Tensor:
    """Whether keypoints lie inside an image of ``size``: ``[-0.5, W - 0.5) × [-0.5, H - 0.5)``.

    Args:
        keypoints: ``(..., K, 2)`` ``(x, y)`` in px.
        size: Image ``(H, W)`` (or an int for a square image).

    Returns:
        ``(..., K)`` bool tensor; NaN keypoints are not in the frame.

    Examples:
        >>> import torch
        >>> keypoints_in_frame(torch.tensor([[-0.5, 0.0], [3.5, 0.0], [float("nan"), 1.0]]), (4, 4))
        tensor([ True, False, False])
    """
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (..., K, 2); got {tuple(keypoints.shape)}")
    h, w = size_pair(size, "size")
    x, y = keypoints[..., 0], keypoints[..., 1]
    return (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)


class KeypointAugmentation(nn.Module):
    """Keypoint-aware batch augmentation: a random affine warp plus brightness/contrast jitter.

    Pixels and keypoints go through exactly the same transform (one kornia ``AugmentationSequential``
    with ``data_keys=["input", "keypoints"]``), in the library's pixel-centre convention. Keypoints are
    returned where the transform puts them, not clamped; those that leave the frame
    ``[-0.5, W - 0.5) × [-0.5, H - 0.5)`` are marked invisible. NaN keypoints (missing labels) are
    replaced by a finite stand-in for the warp, restored to NaN afterwards and stay invisible.

    No left-right flip by default: anatomical landmarks are not mirror-symmetric (in the IUGC task PS1
    is the *right* end of the pubic symphysis), so a mirrored image with unchanged identities is a
    wrong label. With ``hflip=True`` the image and keypoints are mirrored with probability 0.5, and
    ``flip_pairs`` says which landmark identities swap in a mirrored sample (e.g. ``[(0, 1)]``);
    without it identities are kept, which is only right for mirror-invariant landmarks.

    Every call stores its random draw in ``last_params``; passing it back as ``params=`` replays the
    call exactly (same images, keypoints and visibility), which helps debugging.

    Args:
        rotation: Maximum absolute rotation in degrees (uniform in ``[-rotation, rotation]``).
        translate: Maximum translation as a fraction of the width and height (a float, or ``(fx, fy)``).
        scale: Range of isotropic scale factors, or ``None`` for no scaling.
        brightness: Additive brightness jitter strength (0 disables).
        contrast: Contrast jitter strength (0 disables).
        hflip: Whether to mirror left-right with probability 0.5.
        flip_pairs: Index pairs of landmarks whose identities swap when a sample is mirrored.
        p: Probability of the affine warp per sample.
        intensity_p: Probability of the brightness/contrast jitter per sample.
        padding_mode: How the warp fills pixels from outside the image: ``"zeros"``, ``"border"`` or
            ``"reflection"``.

    Attributes:
        pipeline: The kornia ``AugmentationSequential``.
        last_params: Parameters of the last call (``None`` before the first), as drawn by the
            pipeline's ``forward_parameters``; pass them back as ``params=`` to replay that call.

    Examples:
        >>> import torch
        >>> aug = keypoint_augmentation(rotation=10.0)
        >>> img = torch.rand(2, 1, 32, 32)
        >>> kp = torch.tensor([[[4.0, 5.0], [31.4, 0.0]], [[16.0, 16.0], [float("nan"), 2.0]]])
        >>> out, kp2, vis = aug(img, kp, None)
        >>> out.shape, kp2.shape, vis.dtype, bool(vis[1, 1]), bool(kp2[1, 1].isnan().all())
        (torch.Size([2, 1, 32, 32]), torch.Size([2, 2, 2]), torch.bool, False, True)
        >>> again = aug(img, kp, None, params=aug.last_params)
        >>> torch.equal(out, again[0]) and torch.equal(kp2.nan_to_num(), again[1].nan_to_num())
        True
    """

    def __init__(
        self,
        rotation: float = 15.0,
        translate: float | tuple[float, float] = 0.05,
        scale: tuple[float, float] | None = (0.9, 1.1),
        brightness: float = 0.2,
        contrast: float = 0.2,
        hflip: bool = False,
        flip_pairs: Sequence[tuple[int, int]] | None = None,
        p: float = 1.0,
        intensity_p: float = 0.8,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        if rotation < 0:
            raise ValueError(f"rotation must be >= 0 degrees; got {rotation}")
        tx, ty = (translate, translate) if isinstance(translate, int | float) else translate
        if not (0.0 <= tx <= 1.0 and 0.0 <= ty <= 1.0):
            raise ValueError(f"translate must be fractions in [0, 1]; got {translate}")
        if scale is not None and not 0.0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must satisfy 0 < min <= max; got {scale}")
        if flip_pairs is not None and not hflip:
            raise ValueError("flip_pairs is given but hflip=False")
        self.hflip = hflip
        self.flip_pairs = [tuple(pair) for pair in flip_pairs] if flip_pairs is not None else []
        ops: list[Any] = []
        if hflip:
            ops.append(K.RandomHorizontalFlip(p=0.5))
        ops.append(
            K.RandomAffine(
                degrees=rotation,
                translate=(tx, ty) if (tx > 0 or ty > 0) else None,
                scale=scale,
                align_corners=False,
                padding_mode=padding_mode,
                p=p,
            )
        )
        if brightness > 0 or contrast > 0:
            ops.append(K.ColorJiggle(brightness, contrast, 0.0, 0.0, p=intensity_p))
        self.pipeline = K.AugmentationSequential(
            *ops, data_keys=["input", "keypoints"], same_on_batch=False
        )
        # The pipeline's name for the flip: the parameter lists it draws are keyed by these names.
        self._flip_name = next(
            (n for n, m in self.pipeline.named_children() if isinstance(m, K.RandomHorizontalFlip)),
            None,
        )
        self.last_params: list[ParamItem] | None = None

    def _flipped(self, params: list[ParamItem], batch: int, device: torch.device) -> Tensor:
        """``(B,)`` bool: which samples the horizontal flip of ``params`` mirrored."""
        for item in params:
            if item.name == self._flip_name and isinstance(item.data, dict):
                return applied_samples(item.data).to(device)
        return torch.zeros(batch, dtype=torch.bool, device=device)

    def forward(
        self,
        images: Tensor,
        keypoints: Tensor,
        visible: Tensor | None = None,
        params: list[ParamItem] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Augment images and move their keypoints with them.

        Args:
            images: ``(B, C, H, W)`` float in ``[0, 1]``.
            keypoints: ``(B, K, 2)`` ``(x, y)`` in px of ``images``; NaN marks a missing keypoint.
            visible: ``(B, K)`` bool, or ``None`` (every finite keypoint visible).
            params: Parameters of an earlier call (``last_params``) to replay it exactly.

        Returns:
            ``(images, keypoints, visible)``: the augmented ``(B, C, H, W)`` images, the ``(B, K, 2)``
            keypoints in their px (NaN stays NaN, out-of-frame points are not clamped) and the
            ``(B, K)`` visibility, false for missing and out-of-frame keypoints.
        """
        check_images(images)
        b = images.shape[0]
        if keypoints.ndim != 3 or keypoints.shape[0] != b or keypoints.shape[-1] != 2:
            raise ValueError(
                f"keypoints must have shape (B, K, 2) = ({b}, K, 2); got {tuple(keypoints.shape)}"
            )
        k = keypoints.shape[1]
        if visible is not None and tuple(visible.shape) != (b, k):
            raise ValueError(
                f"visible must have shape (B, K) = ({b}, {k}); got {tuple(visible.shape)}"
            )
        keypoints = keypoints.to(images.dtype)
        finite = torch.isfinite(keypoints).all(dim=-1)
        # kornia's matrix multiply would happily spread NaN; warp a harmless stand-in instead.
        safe = torch.where(finite[..., None], keypoints, torch.zeros_like(keypoints))
        if params is None:
            params = self.pipeline.forward_parameters(images.shape)
        out_images, out_kp = self.pipeline(images, safe, params=params)
        self.last_params = params
        vis = finite if visible is None else (visible.to(torch.bool) & finite)
        if self.flip_pairs:
            flipped = self._flipped(params, b, images.device)
            perm = torch.arange(k, device=images.device)
            for i, j in self.flip_pairs:
                perm[i], perm[j] = j, i
            out_kp = torch.where(flipped[:, None, None], out_kp[:, perm], out_kp)
            vis = torch.where(flipped[:, None], vis[:, perm], vis)
            finite = torch.where(flipped[:, None], finite[:, perm], finite)
        out_h, out_w = out_images.shape[-2:]
        vis = vis & keypoints_in_frame(out_kp, (out_h, out_w))
        out_kp = torch.where(finite[..., None], out_kp, torch.full_like(out_kp, float("nan")))
        return out_images, out_kp, vis


def keypoint_augmentation(
    rotation: float = 15.0,
    translate: float | tuple[float, float] = 0.05,
    scale: tuple[float, float] | None = (0.9, 1.1),
    brightness: float = 0.2,
    contrast: float = 0.2,
    hflip: bool = False,
    p: float = 1.0,
    **kwargs: Any,
) -> KeypointAugmentation:
    """Build the keypoint-aware augmentation, called as ``images, keypoints, visible = aug(...)``.

    See :class:`KeypointAugmentation` for the conventions (visibility, NaN, flips, replay) and the
    remaining keyword arguments (``flip_pairs``, ``intensity_p``, ``padding_mode``).

    Args:
        rotation: Maximum absolute rotation in degrees.
        translate: Maximum translation as a fraction of the image size.
        scale: Range of isotropic scale factors, or ``None``.
        brightness: Brightness jitter strength.
        contrast: Contrast jitter strength.
        hflip: Whether to mirror left-right with probability 0.5 (off: landmarks are not mirror-symmetric).
        p: Probability of the affine warp per sample.
        **kwargs: Passed on to :class:`KeypointAugmentation`.

    Returns:
        The augmentation module.

    Examples:
        >>> import torch
        >>> aug = keypoint_augmentation(rotation=0.0, translate=0.0, scale=None, brightness=0.0,
        ...                             contrast=0.0)
        >>> img, kp, vis = aug(torch.rand(1, 1, 8, 8), torch.tensor([[[2.0, 3.0]]]))
        >>> kp.tolist(), vis.tolist()
        ([[[2.0, 3.0]]], [[True]])
    """
    return KeypointAugmentation(
        rotation=rotation,
        translate=translate,
        scale=scale,
        brightness=brightness,
        contrast=contrast,
        hflip=hflip,
        p=p,
        **kwargs,
    )
