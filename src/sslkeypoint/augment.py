"""Batched kornia augmentation pipelines: MoCo v2 views and keypoint-aware geometric augmentation.

Both pipelines run on whole ``(B, C, H, W)`` batches on whatever device the batch lives on (CPU or
GPU), with a different random draw per sample (``same_on_batch=False``). Images are float tensors in
``[0, 1]``.

Coordinates follow the library convention, which is also kornia's: keypoints are ``(x, y)`` pixels and
integer coordinates are pixel centres, so pixel (row ``i``, column ``j``) is at ``(x=j, y=i)``. The
frame of an ``H × W`` image is ``[-0.5, W - 0.5) × [-0.5, H - 0.5)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import kornia.augmentation as K
import torch
from kornia.augmentation.container.params import ParamItem
from kornia.filters import gaussian_blur2d
from torch import Tensor, nn

from sslkeypoint._utils import size_pair

__all__ = [
    "KeypointAugmentation",
    "MoCoV2Augmentation",
    "blur_kernel_size",
    "keypoint_augmentation",
    "keypoints_in_frame",
    "moco_v2_augmentation",
]



def _check_images(images: Tensor, in_chans: int | None = None) -> None:
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


def blur_kernel_size(size: int | Sequence[int], fraction: float = 0.1) -> int:
    """Odd Gaussian-blur kernel size of about ``fraction`` of the image's shorter side.

    The SimCLR/MoCo v2 rule (also lightly's former default): a kernel of ~10 % of the image size,
    made odd, at least 3.

    Args:
        size: Image size, an int or ``(H, W)`` in px.
        fraction: Kernel size relative to ``min(H, W)``.

    Returns:
        The odd kernel size in px.

    Examples:
        >>> blur_kernel_size(224), blur_kernel_size((256, 256)), blur_kernel_size(16)
        (23, 25, 3)
    """
    h, w = size_pair(size, "size")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    k = int(fraction * min(h, w))
    if k % 2 == 0:
        k += 1
    return max(k, 3)


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


_JIGGLE_NEUTRAL = {"brightness_factor": 1.0, "contrast_factor": 1.0, "saturation_factor": 1.0, "hue_factor": 0.0}


class _GatedColorJiggle(K.ColorJiggle):
    """``ColorJiggle`` with its probability gate folded into the factors, computing only what changes.

    Same factor distribution and formulas as ``ColorJiggle(brightness, contrast, saturation, hue,
    p=p)`` (additive brightness, multiplicative contrast, HSV saturation and hue, clamped to
    ``[0, 1]``, steps in a random order). kornia's gate computes every sample and then keeps the
    unselected inputs; here an unselected sample gets neutral factors and is not computed. With
    brightness and contrast only (any channel count) the two steps run as fused in-place tensor
    ops; with saturation or hue (3 channels) kornia's own steps run on the selected sub-batch.
    """

    def __init__(
        self, brightness: float, contrast: float, p: float, saturation: float = 0.0, hue: float = 0.0
    ) -> None:
        super().__init__(brightness, contrast, saturation, hue, p=1.0)
        self.gate_p = float(p)
        self.colour = saturation > 0 or hue > 0

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        params = super().generate_parameters(batch_shape)
        gate = torch.rand(batch_shape[0]) < self.gate_p
        for key, neutral in _JIGGLE_NEUTRAL.items():
            params[key] = torch.where(gate, params[key], torch.full_like(params[key], neutral))
        return params

    def apply_transform(
        self,
        input: Tensor,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
    ) -> Tensor:
        if self.colour:
            active = torch.zeros(input.shape[0], dtype=torch.bool)
            for key, neutral in _JIGGLE_NEUTRAL.items():
                active |= params[key].cpu() != neutral
            out = input.clamp(0.0, 1.0)
            idx = active.nonzero().squeeze(1)
            if idx.numel():
                sub = {k: (v[idx.to(v.device)] if k in _JIGGLE_NEUTRAL else v) for k, v in params.items()}
                out[idx.to(input.device)] = super().apply_transform(input[idx.to(input.device)], sub, flags)
            return out
        shift = (params["brightness_factor"].to(input) - 1.0).view(-1, 1, 1, 1)
        gain = params["contrast_factor"].to(input).view(-1, 1, 1, 1)
        out = input.clamp(0.0, 1.0)
        for step in params["order"].tolist():
            if step == 0 and bool((shift != 0).any()):
                out = (out + shift).clamp_(0.0, 1.0)
            elif step == 1 and bool((gain != 1).any()):
                out = (out * gain).clamp_(0.0, 1.0)
        return out


class _GatedGaussianBlur(K.RandomGaussianBlur):
    """``RandomGaussianBlur`` that convolves only the samples its gate selects.

    kornia's probability gate blurs the whole batch and then keeps the unselected samples' inputs; this
    draws the same per-sample sigma plus a gate and blurs only the selected sub-batch.
    """

    def __init__(self, kernel_size: int, sigma: tuple[float, float], p: float) -> None:
        super().__init__((kernel_size, kernel_size), sigma, border_type="reflect", p=1.0)
        self.gate_p = float(p)

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        params = super().generate_parameters(batch_shape)
        params["blur_gate"] = torch.rand(batch_shape[0]) < self.gate_p
        return params

    def apply_transform(
        self,
        input: Tensor,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
    ) -> Tensor:
        out = input.clone()
        idx = params["blur_gate"].nonzero().squeeze(1)
        if idx.numel() == 0:
            return out
        idx = idx.to(input.device)
        sigma = params["sigma"].to(input)[idx].unsqueeze(-1).expand(-1, 2)
        out[idx] = gaussian_blur2d(
            input[idx], self.flags["kernel_size"], sigma, border_type="reflect", separable=True
        )
        return out


class MoCoV2Augmentation(nn.Module):
    """The MoCo v2 view augmentation as one batched kornia pipeline.

    The list of the MoCo v2 paper (Chen et al., 2020): random resized crop, colour jitter
    (applied with probability ``jitter_p``), random grayscale, Gaussian blur and horizontal flip. Every
    sample of the batch draws its own parameters. Call it twice on the same batch for the two views.

    One-channel images (ultrasound) are first-class: with ``in_chans != 3`` the jitter changes only
    brightness and contrast (saturation and hue are undefined) and there is no grayscale step, so no
    work is spent on three channels. With ``in_chans == 3`` the full list runs.

    Colour jitter uses kornia's ``ColorJiggle`` (brightness additive, contrast multiplicative, clamped to
    ``[0, 1]``), so its factors differ slightly from torchvision's ``ColorJitter`` blend formulas.
    The jitter and the blur are kornia's ops with their probability gate folded into the drawn
    parameters, so only the selected samples are computed (kornia's own gate computes the whole batch
    and discards the rest); the distributions are unchanged.

    Args:
        size: Output ``(H, W)`` (or an int) in px.
        in_chans: Channels of the input batch.
        scale: Range of the crop area relative to the input area.
        ratio: Range of the crop aspect ratio (width / height).
        jitter: Strength of brightness, contrast and (3 channels) saturation jitter.
        hue: Strength of hue jitter (3 channels only).
        jitter_p: Probability of the colour jitter per sample.
        grayscale_p: Probability of grayscale conversion per sample (3 channels only).
        blur_p: Probability of Gaussian blur per sample.
        blur_sigma: Range of the blur standard deviation in output px.
        blur_kernel: Odd blur kernel size in px; ``None`` uses :func:`blur_kernel_size` of ``size``
            (about 10 % of the shorter side).
        hflip_p: Probability of a horizontal flip per sample.
        normalize: Optional ``(mean, std)`` per channel applied last; ``None`` keeps ``[0, 1]``.

    Attributes:
        size: Output ``(H, W)``.
        in_chans: Expected input channels.
        pipeline: The kornia ``AugmentationSequential``.
        last_params: Parameters of the last call (``None`` before the first); pass them back as
            ``params=`` to reproduce that call exactly.

    Examples:
        >>> import torch
        >>> aug = moco_v2_augmentation(32, in_chans=1)
        >>> x = torch.rand(4, 1, 48, 40)
        >>> v1, v2 = aug(x), aug(x)
        >>> v1.shape, bool((v1 != v2).any())
        (torch.Size([4, 1, 32, 32]), True)
        >>> torch.equal(aug(x, params=aug.last_params), aug(x, params=aug.last_params))
        True
    """

    def __init__(
        self,
        size: int | Sequence[int],
        in_chans: int = 1,
        scale: tuple[float, float] = (0.2, 1.0),
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        jitter: float = 0.4,
        hue: float = 0.1,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel: int | None = None,
        hflip_p: float = 0.5,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        super().__init__()
        self.size = size_pair(size, "size")
        if in_chans < 1:
            raise ValueError(f"in_chans must be >= 1; got {in_chans}")
        self.in_chans = in_chans
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1; got {scale}")
        if blur_kernel is None:
            blur_kernel = blur_kernel_size(self.size)
        if blur_kernel < 1 or blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be a positive odd int; got {blur_kernel}")
        rgb = in_chans == 3
        ops: list[Any] = [
            # align_corners=False: the crop is resized on the half-pixel grid, as F.interpolate/PIL do.
            K.RandomResizedCrop(self.size, scale=scale, ratio=ratio, align_corners=False, p=1.0),
            K.RandomHorizontalFlip(p=hflip_p),
        ]
        if jitter > 0 or (rgb and hue > 0):
            if rgb:
                ops.append(_GatedColorJiggle(jitter, jitter, p=jitter_p, saturation=jitter, hue=hue))
            else:
                ops.append(_GatedColorJiggle(jitter, jitter, p=jitter_p))
        if rgb and grayscale_p > 0:
            ops.append(K.RandomGrayscale(p=grayscale_p))
        if blur_p > 0:
            ops.append(_GatedGaussianBlur(blur_kernel, blur_sigma, p=blur_p))
        if normalize is not None:
            mean, std = normalize
            if len(mean) != in_chans or len(std) != in_chans:
                raise ValueError(
                    f"normalize needs {in_chans} mean and std values; got {len(mean)} and {len(std)}"
                )
            ops.append(K.Normalize(mean=torch.tensor(mean), std=torch.tensor(std)))
        self.blur_kernel = blur_kernel
        self.pipeline = K.AugmentationSequential(*ops, data_keys=["input"], same_on_batch=False)
        self.last_params: list[ParamItem] | None = None

    def forward(self, images: Tensor, params: list[ParamItem] | None = None) -> Tensor:
        """Augment a batch into one view.

        Args:
            images: ``(B, C, H, W)`` float in ``[0, 1]`` with ``C == in_chans``.
            params: Parameters of an earlier call (``last_params``) to replay it exactly.

        Returns:
            ``(B, C, *size)`` view, float in ``[0, 1]`` (unless ``normalize`` was given).
        """
        _check_images(images, self.in_chans)
        out = self.pipeline(images, params=params)
        self.last_params = self.pipeline._params
        assert isinstance(out, Tensor)
        return out


def moco_v2_augmentation(
    size: int | Sequence[int],
    in_chans: int = 1,
    scale: tuple[float, float] = (0.2, 1.0),
    jitter: float = 0.4,
    jitter_p: float = 0.8,
    grayscale_p: float = 0.2,
    blur_p: float = 0.5,
    blur_sigma: tuple[float, float] = (0.1, 2.0),
    hflip_p: float = 0.5,
    **kwargs: Any,
) -> MoCoV2Augmentation:
    """Build the batched MoCo v2 view augmentation ``(B, C, H, W) -> (B, C, *size)``.

    See :class:`MoCoV2Augmentation` for the steps, the one-channel behaviour and the remaining
    keyword arguments (``ratio``, ``hue``, ``blur_kernel``, ``normalize``).

    Args:
        size: Output ``(H, W)`` (or an int) in px.
        in_chans: Channels of the input batch (1 for ultrasound).
        scale: Range of the crop area relative to the input area.
        jitter: Brightness/contrast (and, for 3 channels, saturation) jitter strength.
        jitter_p: Probability of the colour jitter.
        grayscale_p: Probability of grayscale conversion (3 channels only).
        blur_p: Probability of Gaussian blur.
        blur_sigma: Range of the blur standard deviation in px.
        hflip_p: Probability of a horizontal flip.
        **kwargs: Passed on to :class:`MoCoV2Augmentation`.

    Returns:
        The augmentation module.

    Examples:
        >>> import torch
        >>> aug = moco_v2_augmentation((24, 32), in_chans=3)
        >>> out = aug(torch.rand(2, 3, 40, 40))
        >>> out.shape, out.dtype, bool(out.min() >= 0 and out.max() <= 1)
        (torch.Size([2, 3, 24, 32]), torch.float32, True)
    """
    return MoCoV2Augmentation(
        size,
        in_chans=in_chans,
        scale=scale,
        jitter=jitter,
        jitter_p=jitter_p,
        grayscale_p=grayscale_p,
        blur_p=blur_p,
        blur_sigma=blur_sigma,
        hflip_p=hflip_p,
        **kwargs,
    )


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
        last_params: Parameters of the last call (``None`` before the first).

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
        self.last_params: list[ParamItem] | None = None

    def _flipped(self, params: list[ParamItem], batch: int, device: torch.device) -> Tensor:
        """``(B,)`` bool: which samples the horizontal flip of ``params`` mirrored."""
        for item in params:
            if item.name.startswith("RandomHorizontalFlip") and isinstance(item.data, dict):
                return item.data["batch_prob"].to(device) > 0.5
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
        _check_images(images)
        b = images.shape[0]
        if keypoints.ndim != 3 or keypoints.shape[0] != b or keypoints.shape[-1] != 2:
            raise ValueError(
                f"keypoints must have shape (B, K, 2) = ({b}, K, 2); got {tuple(keypoints.shape)}"
            )
        k = keypoints.shape[1]
        if visible is not None and tuple(visible.shape) != (b, k):
            raise ValueError(f"visible must have shape (B, K) = ({b}, {k}); got {tuple(visible.shape)}")
        keypoints = keypoints.to(images.dtype)
        finite = torch.isfinite(keypoints).all(dim=-1)
        # kornia's matrix multiply would happily spread NaN; warp a harmless stand-in instead.
        safe = torch.where(finite[..., None], keypoints, torch.zeros_like(keypoints))
        out_images, out_kp = self.pipeline(images, safe, params=params)
        used = cast(list[ParamItem], self.pipeline._params)
        self.last_params = used
        vis = finite if visible is None else (visible.to(torch.bool) & finite)
        if self.flip_pairs:
            flipped = self._flipped(used, b, images.device)
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
