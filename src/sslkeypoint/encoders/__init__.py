"""Pluggable encoders: one interface for every backbone.

Every encoder is an ``nn.Module`` whose ``forward(x)`` returns multi-scale feature maps, finest
first, and which has the attributes ``channels`` (per feature), ``reductions`` (stride of each feature
relative to the input) and ``in_chans``. :class:`UNetEncoder` is the paper's U-Net encoder,
:class:`TimmEncoder` wraps any timm backbone, and :func:`create_encoder` builds either by name
(``"unet"``, ``"timm:<model name>"``); :func:`load_pretrained_encoder` rebuilds the encoder a
pre-training run saved from its weight file.
"""

from __future__ import annotations

from sslkeypoint.encoders.base import Encoder, validate_encoder
from sslkeypoint.encoders.pretrained import load_pretrained_encoder
from sslkeypoint.encoders.registry import create_encoder, list_encoders
from sslkeypoint.encoders.timm import TimmEncoder
from sslkeypoint.encoders.unet import ConvBlock, UNetEncoder

__all__ = [
    "ConvBlock",
    "Encoder",
    "TimmEncoder",
    "UNetEncoder",
    "create_encoder",
    "list_encoders",
    "load_pretrained_encoder",
    "validate_encoder",
]
