"""The U-Net encoder of the paper: double 3×3 conv blocks with 2×2 max-pooling between them."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from sslkeypoint.encoders.base import Encoder

__all__ = ["ConvBlock", "UNetEncoder"]


class ConvBlock(nn.Module):
    """Two 3×3 convolutions, each followed by BatchNorm and ReLU (the U-Net "double conv").

    Parameters are named ``conv1``, ``bn1``, ``conv2``, ``bn2``. Convolutions have no bias (the
    BatchNorm that follows has one). Spatial size is preserved (padding 1).

    Args:
        in_channels: Input channels.
        out_channels: Output channels of both convolutions.

    Examples:
        >>> import torch
        >>> ConvBlock(3, 8)(torch.zeros(2, 3, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, H, W) -> (B, out_channels, H, W)``."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))


class UNetEncoder(Encoder):
    """The U-Net encoder: ``len(widths)`` conv blocks with 2×2 max-pooling between them, then a
    bottleneck block after one more pooling.

    The defaults are the paper's (64, 128, 256, 512 and a 1024-channel bottleneck); narrower widths
    such as ``(16, 32, 64, 128)`` with ``bottleneck_width=256`` suit CPUs. Parameter names are stable
    so that checkpoints load by name: ``blocks.{i}.conv1.weight``, ``blocks.{i}.bn1.running_mean``,
    ..., ``bottleneck.conv2.weight``.

    Args:
        in_chans: Input image channels (1 for grayscale ultrasound).
        widths: Channels of the blocks, finest first.
        bottleneck_width: Channels of the bottleneck block.

    Attributes:
        channels: ``[*widths, bottleneck_width]``.
        reductions: ``[1, 2, 4, ..., 2 ** len(widths)]`` (``[1, 2, 4, 8, 16]`` by default).
        in_chans: Input channels.

    Examples:
        >>> import torch
        >>> enc = UNetEncoder(in_chans=1, widths=(8, 16, 32, 64), bottleneck_width=128)
        >>> [tuple(f.shape) for f in enc(torch.zeros(2, 1, 64, 64))]
        [(2, 8, 64, 64), (2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8), (2, 128, 4, 4)]
        >>> enc.reductions
        [1, 2, 4, 8, 16]
    """

    def __init__(
        self,
        in_chans: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        bottleneck_width: int = 1024,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if in_chans < 1 or not widths or min(widths) < 1 or bottleneck_width < 1:
            raise ValueError(
                "in_chans, widths and bottleneck_width must be positive and widths non-empty; got "
                f"in_chans={in_chans}, widths={tuple(widths)}, bottleneck_width={bottleneck_width}"
            )
        self.in_chans = int(in_chans)
        self.channels = [*widths, int(bottleneck_width)]
        self.reductions = [2**i for i in range(len(widths) + 1)]
        ins = [self.in_chans, *widths[:-1]]
        self.blocks = nn.ModuleList(ConvBlock(i, o) for i, o in zip(ins, widths))
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(widths[-1], int(bottleneck_width))

    def forward(self, x: Tensor) -> list[Tensor]:
        """Compute the five (by default) feature maps.

        Args:
            x: ``(B, in_chans, H, W)`` images. Odd sizes are floored by each pooling; keep ``H`` and
                ``W`` multiples of ``reductions[-1]`` for exact halving.

        Returns:
            ``[(B, channels[i], H / 2**i, W / 2**i) for each i]``, finest first.
        """
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"UNetEncoder expects images of shape (B, {self.in_chans}, H, W); got {tuple(x.shape)}"
            )
        features: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = self.pool(x)
            x = block(x)
            features.append(x)
        features.append(self.bottleneck(self.pool(x)))
        return features
