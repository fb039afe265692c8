"""Masked-image reconstruction: pre-training the whole U-Net, encoder and decoder, on unlabelled images.

Contrastive pre-training (MoCo v2, DenseCL on the encoder) leaves the decoder — most of a heatmap
U-Net — to start random in fine-tuning. Here encoder and decoder learn together, as generative
pre-training of landmark U-Nets does (denoising diffusion pre-training, Di Via et al., WACV 2025;
masked-image modelling, SimMIM for convolutional networks): square patches of each view are hidden
(filled with the image's mean) and optionally the input is noised, and the network paints the
original back.

The network is the heatmap model's own: the encoder, the U-Net decoder that
:class:`~sslkeypoint.models.HeatmapUNet` builds for ``heatmap_stride = decoder_stride`` (same stages,
same names), and a 1×1 head whose ``C · s²`` channels are rearranged into ``s × s`` blocks of the
image (pixel shuffle): each decoder pixel paints its block. The loss is
:func:`~sslkeypoint.losses.masked_reconstruction_loss` over the hidden pixels (every pixel when
nothing is masked: denoising). :meth:`MaskedReconstruction.export_unet` gives encoder and decoder
weights named as in the heatmap model, which fine-tuning loads with ``init_decoder=True``; only the
heatmap head starts fresh.

The masks and the noise are random draws; :class:`~sslkeypoint.lightning.PretrainModule` seeds
them per step (:attr:`~sslkeypoint.ssl.PretrainObjective.seeded_draws`), so a resumed run draws
them again exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sslkeypoint.losses.reconstruction import masked_reconstruction_loss
from sslkeypoint.models import HeatmapUNet, run_decoder
from sslkeypoint.ssl.base import PretrainObjective

__all__ = ["MaskedReconstruction", "patch_mask"]


def patch_mask(batch: int, size: tuple[int, int], patch_size: int, ratio: float,
               device: torch.device | str | None = None) -> Tensor:
    """A random mask of square patches: ``round(ratio · n)`` of the ``n`` patches of each image.

    Args:
        batch: Images ``B``.
        size: Image ``(H, W)`` in px; patches cover it from the top left (the last row and column
            of patches may be cut by the border).
        patch_size: Side of a patch in px.
        ratio: Share of the patches hidden in every image.
        device: Device of the mask.

    Returns:
        ``(B, 1, H, W)`` bool, ``True`` where hidden.

    Examples:
        >>> m = patch_mask(2, (8, 8), patch_size=4, ratio=0.5)
        >>> m.shape, m.float().mean(dim=(1, 2, 3)).tolist()
        (torch.Size([2, 1, 8, 8]), [0.5, 0.5])
    """
    height, width = size
    rows, cols = -(-height // patch_size), -(-width // patch_size)
    count = round(ratio * rows * cols)
    order = torch.rand(batch, rows * cols, device=device).argsort(dim=1)
    hidden = torch.zeros(batch, rows * cols, dtype=torch.bool, device=device)
    hidden.scatter_(1, order[:, :count], True)
    grid = hidden.view(batch, 1, rows, cols)
    full = grid.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)
    return full[:, :, :height, :width]


class MaskedReconstruction(PretrainObjective):
    """Encoder + U-Net decoder + pixel-shuffle head, trained to paint back masked (and noised) images.

    Built by :meth:`ReconstructionMethod.build <sslkeypoint.methods.ReconstructionMethod.build>`.

    Args:
        encoder: The encoder (an sslkeypoint encoder).
        decoder_stride: Input pixels per decoder output pixel (the fine-tuning heatmap stride).
        mask_ratio: Share of the patches hidden in each image (0: none, denoising only).
        patch_size: Side of a hidden patch in px.
        noise_std: Standard deviation of the Gaussian noise added to the input (0: none).

    Attributes:
        encoder: The encoder.
        decoder: The U-Net decoder (``nn.ModuleList`` of :class:`~sslkeypoint.models.DecoderStage`,
            as ``HeatmapUNet.decoder``).
        head: The 1×1 convolution to ``in_chans · decoder_stride²`` channels.

    Examples:
        >>> import torch
        >>> from sslkeypoint.encoders import UNetEncoder
        >>> model = MaskedReconstruction(UNetEncoder(in_chans=1, widths=(4, 8), bottleneck_width=16),
        ...                              decoder_stride=2, patch_size=4)
        >>> x = torch.rand(2, 1, 16, 16)
        >>> model.reconstruct(x).shape
        torch.Size([2, 1, 16, 16])
        >>> losses = model.step_losses([x])
        >>> losses["loss"].backward()
        >>> sorted({k.split(".")[0] for k in model.export_unet()})
        ['decoder', 'encoder']
    """

    num_views: ClassVar[int] = 1
    seeded_draws: ClassVar[bool] = True

    def __init__(self, encoder: nn.Module, decoder_stride: int = 4, mask_ratio: float = 0.6, patch_size: int = 16,
                 noise_std: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= mask_ratio < 1.0 or patch_size < 1 or noise_std < 0:
            raise ValueError(
                f"need 0 <= mask_ratio < 1, patch_size >= 1 and noise_std >= 0; got mask_ratio={mask_ratio}, "
                f"patch_size={patch_size}, noise_std={noise_std}"
            )
        in_chans = int(getattr(encoder, "in_chans", 1))
        # The heatmap model's own encoder and decoder (its head is not used): same stages, same names.
        unet = HeatmapUNet(encoder, num_keypoints=1, heatmap_stride=decoder_stride)
        self.encoder = unet.encoder
        self.decoder = unet.decoder
        self.stride = int(decoder_stride)
        self.in_chans = in_chans
        width = int(unet.decoder_channels[-1]) if unet.decoder_channels else int(encoder.channels[-1])  # type: ignore[index]
        self.head = nn.Conv2d(width, in_chans * self.stride**2, 1)
        self.mask_ratio = float(mask_ratio)
        self.patch_size = int(patch_size)
        self.noise_std = float(noise_std)
        self._divisor = int(encoder.reductions[-1])  # type: ignore[index]

    @property
    def trains_decoder(self) -> bool:
        """Always: encoder and decoder are pre-trained together."""
        return True

    def reconstruct(self, inputs: Tensor) -> Tensor:
        """The network's image ``(B, C, H, W)`` painted from ``inputs`` ``(B, C, H, W)``."""
        if inputs.ndim != 4 or inputs.shape[1] != self.in_chans or inputs.shape[-2] % self._divisor \
                or inputs.shape[-1] % self._divisor:
            raise ValueError(
                f"images must be (B, {self.in_chans}, H, W) with H and W multiples of {self._divisor} (the "
                f"encoder's deepest reduction); got {tuple(inputs.shape)}: change image_size"
            )
        blocks = self.head(run_decoder(self.decoder, self.encoder(inputs)))
        return F.pixel_shuffle(blocks, self.stride)

    def corrupt(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """The network's input (patches filled with each image's mean, noise added) and the mask
        ``(B, 1, H, W)`` (``None`` when nothing is masked)."""
        mask = None
        inputs = images
        if self.mask_ratio > 0:
            mask = patch_mask(images.shape[0], (images.shape[-2], images.shape[-1]), self.patch_size,
                              self.mask_ratio, device=images.device)
            fill = images.mean(dim=(-2, -1), keepdim=True).expand_as(images)
            inputs = torch.where(mask, fill, images)
        if self.noise_std > 0:
            inputs = inputs + self.noise_std * torch.randn_like(inputs)
        return inputs, mask

    def step_losses(self, views: Sequence[Tensor], groups: Tensor | None = None) -> dict[str, Tensor]:
        """``{"loss": ...}``: the reconstruction error of the first views' hidden pixels (``groups`` unused)."""
        images = views[0]
        inputs, mask = self.corrupt(images)
        return {"loss": masked_reconstruction_loss(self.reconstruct(inputs), images, mask)}

    def export_unet(self) -> dict[str, Tensor]:
        """Encoder and decoder weights named as in :class:`~sslkeypoint.models.HeatmapUNet`
        (``encoder.*``, ``decoder.*``; the head is not part of the heatmap model)."""
        return {
            **{f"encoder.{k}": v for k, v in self.export_encoder().items()},
            **{f"decoder.{k}": v.detach().clone() for k, v in self.decoder.state_dict().items()},
        }
