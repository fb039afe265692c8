"""The encoder interface shared by every backbone."""

from __future__ import annotations

import abc
import itertools

from torch import Tensor, nn

__all__ = ["Encoder", "validate_encoder"]


class Encoder(nn.Module, abc.ABC):
    """Base class of the encoders: multi-scale features, finest first.

    Any ``nn.Module`` with the same three attributes and ``forward`` works wherever an encoder is
    expected (duck typing); subclassing is a convenience. ``forward`` is abstract: a subclass must
    define it.

    Attributes:
        channels: Channels of each feature map, finest first.
        reductions: Stride of each feature map relative to the input (1 = input resolution),
            non-decreasing.
        in_chans: Number of input image channels.
    """

    channels: list[int]
    reductions: list[int]
    in_chans: int

    @abc.abstractmethod
    def forward(self, x: Tensor) -> list[Tensor]:
        """Compute the feature maps.

        Args:
            x: ``(B, in_chans, H, W)`` images.

        Returns:
            One ``(B, channels[i], H / reductions[i], W / reductions[i])`` tensor per scale, finest
            first.
        """


def validate_encoder(encoder: nn.Module) -> None:
    """Check that ``encoder`` exposes the encoder interface consistently.

    Args:
        encoder: Module to check.

    Raises:
        ValueError: If ``channels``, ``reductions`` or ``in_chans`` is missing, their lengths differ,
            or the reductions are not positive and non-decreasing.

    Examples:
        >>> from sslkeypoint.encoders import UNetEncoder
        >>> validate_encoder(UNetEncoder(widths=(8, 16), bottleneck_width=32))
        >>> validate_encoder(nn.Conv2d(1, 1, 3))
        Traceback (most recent call last):
        ...
        ValueError: Conv2d is not an encoder: it lacks the attribute(s) channels, reductions, in_chans
    """
    absent = [a for a in ("channels", "reductions", "in_chans") if not hasattr(encoder, a)]
    if absent:
        raise ValueError(
            f"{type(encoder).__name__} is not an encoder: it lacks the attribute(s) {', '.join(absent)}"
        )
    channels = list(encoder.channels)  # type: ignore[arg-type]
    reductions = list(encoder.reductions)  # type: ignore[arg-type]
    if not channels or len(channels) != len(reductions):
        raise ValueError(
            f"encoder channels and reductions must be non-empty and of equal length; got "
            f"{len(channels)} channels and {len(reductions)} reductions"
        )
    if any(r < 1 for r in reductions) or any(b < a for a, b in itertools.pairwise(reductions)):
        raise ValueError(f"encoder reductions must be positive and non-decreasing; got {reductions}")
