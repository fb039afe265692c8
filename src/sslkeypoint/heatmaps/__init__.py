"""Gaussian heatmap targets and their decoding, and the keypoint resize maps.

Conventions (see the Concepts page): keypoints are ``(..., K, 2)`` in ``(x, y)`` pixels, integer
coordinates are pixel centres, and resizing from width ``W`` to ``W'`` maps
``x' = (x + 0.5) * W' / W - 0.5`` (likewise ``y``), as torch/PIL resize with
``align_corners=False``. A heatmap of stride ``s`` relative to the network input uses the same map:
``u = (x + 0.5) / s - 0.5``.

A *codec* owns both directions between keypoints and heatmaps, and the map of decoded keypoints
back to the original image. :class:`~sslkeypoint.heatmaps.codec.KeypointCodec` is the interface
every part of the library takes (the fine-tuning module, the predictor, the exporters);
:class:`~sslkeypoint.heatmaps.codec.HeatmapCodec` is the library's sub-pixel-exact implementation,
built from the plain batched functions
:func:`~sslkeypoint.heatmaps.render.render_gaussian_heatmaps` and
:func:`~sslkeypoint.heatmaps.decode.decode_heatmaps` (which work in heatmap pixels). Variation
comes from constructor arguments (σ, the decoding method) or from another class that implements
the interface — never from swapping attributes of a running module. Checkpoints store a codec with
:func:`~sslkeypoint.heatmaps.codec.codec_to_dict` (its class path and constructor arguments) and
:func:`~sslkeypoint.heatmaps.codec.codec_from_dict` rebuilds exactly that codec.

The parts, one file each (every name is importable from the package itself):

* :mod:`~sslkeypoint.heatmaps.coordinates` — the resize maps between image sizes;
* :mod:`~sslkeypoint.heatmaps.render` — Gaussian heatmap targets;
* :mod:`~sslkeypoint.heatmaps.decode` — heatmap peaks, with argmax / quarter / DARK refinement;
* :mod:`~sslkeypoint.heatmaps.codec` — the codec interface, the Gaussian heatmap codec and the
  stored form of codecs.
"""

from __future__ import annotations

from sslkeypoint.heatmaps.codec import (
    HeatmapCodec,
    KeypointCodec,
    check_codec_geometry,
    codec_from_dict,
    codec_to_dict,
)
from sslkeypoint.heatmaps.coordinates import SizeLike as SizeLike
from sslkeypoint.heatmaps.coordinates import (
    keypoints_to_input,
    keypoints_to_original,
    rescale_keypoints,
)
from sslkeypoint.heatmaps.decode import Refine as Refine
from sslkeypoint.heatmaps.decode import decode_heatmaps
from sslkeypoint.heatmaps.render import render_gaussian_heatmaps

__all__ = [
    "HeatmapCodec",
    "KeypointCodec",
    "check_codec_geometry",
    "codec_from_dict",
    "codec_to_dict",
    "decode_heatmaps",
    "keypoints_to_input",
    "keypoints_to_original",
    "render_gaussian_heatmaps",
    "rescale_keypoints",
]
