"""The MoCo v2 view augmentation as one batched kornia pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import kornia.augmentation as K
import torch
from kornia.augmentation.container.params import ParamItem
from torch import Tensor, nn

from sslkeypoint._utils import size_pair
from sslkeypoint.augment._checks import check_images
from sslkeypoint.augment.intensity import GatedColorJiggle, GatedGaussianBlur

__all__ = ["MoCoV2Augmentation", "blur_kernel_size", "moco_v2_augmentation"]


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
    The jitter and the blur are :class:`~sslkeypoint.augment.intensity.GatedColorJiggle` and
    :class:`~sslkeypoint.augment.intensity.GatedGaussianBlur`: kornia's parameter distributions and
    steps, with the probability gate drawn with the parameters so that only the selected samples are
    computed (kornia's own gate computes the whole batch and discards the rest).

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
        last_params: Parameters of the last call (``None`` before the first), as drawn by the
            pipeline's ``forward_parameters``; pass them back as ``params=`` to reproduce that call
            exactly.

    Examples:
        >>> import torch
        >>> aug = moco_v2_augmentation(32, in_chans=1)
        >>> x = torch.rand(4, 1, 48, 40)
        >>> v1, v2 = aug(x), aug(x)
        >>> v1.shape, bool((v1 != v2).any())
        (torch.Size([4, 1, 32, 32]), True)
        >>> torch.equal(aug(x, params=aug.last_params), v2)
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
                ops.append(GatedColorJiggle(jitter, jitter, jitter, hue, p=jitter_p))
            else:
                ops.append(GatedColorJiggle(jitter, jitter, p=jitter_p))
        if rgb and grayscale_p > 0:
            ops.append(K.RandomGrayscale(p=grayscale_p))
        if blur_p > 0:
            ops.append(GatedGaussianBlur(blur_kernel, blur_sigma, p=blur_p))
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
        check_images(images, self.in_chans)
        if params is None:
            params = self.pipeline.forward_parameters(images.shape)
        out = self.pipeline(images, params=params)
        self.last_params = params
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
