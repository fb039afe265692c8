"""The codec interface, the library's Gaussian heatmap codec, and codecs' stored form.

A codec owns both directions between network-input keypoints and heatmaps, and the map of decoded
keypoints back to the original image. Checkpoints and run folders store a codec as its class path
and constructor arguments (:func:`codec_to_dict`); :func:`codec_from_dict` rebuilds it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from sslkeypoint._utils import dataclass_from_spec, dataclass_to_spec, size_pair
from sslkeypoint.heatmaps.coordinates import SizeLike, keypoints_to_original, rescale_keypoints
from sslkeypoint.heatmaps.decode import _REFINE_MODES, Refine, decode_heatmaps
from sslkeypoint.heatmaps.render import _render

__all__ = ["HeatmapCodec", "KeypointCodec", "check_codec_geometry", "codec_from_dict", "codec_to_dict"]

# The stored class path of HeatmapCodec (codec_to_dict): its public import path.
_HEATMAP_CODEC_PATH = "sslkeypoint.heatmaps.HeatmapCodec"


@runtime_checkable
class KeypointCodec(Protocol):
    """What a heatmap codec is: keypoints to target heatmaps, heatmaps back to keypoints.

    Any object with these properties (:attr:`input_size`, :attr:`heatmap_size`) and methods works
    wherever a codec is taken (checked with ``isinstance(obj, KeypointCodec)``); to be stored in
    checkpoints it must also be a dataclass whose fields are its constructor arguments (see
    :func:`codec_to_dict`).
    """

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(H, W)`` in pixels."""
        ...

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """Heatmap ``(h, w)``."""
        ...

    def encode(self, keypoints: Tensor, visible: Tensor | None = None) -> Tensor:
        """``(B, K, 2)`` input-pixel keypoints (and ``(B, K)`` visibility) to ``(B, K, h, w)`` targets."""
        ...

    def decode(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, K, h, w)`` heatmaps to ``(B, K, 2)`` input-pixel keypoints and ``(B, K)`` scores."""
        ...

    def to_original(self, keypoints: Tensor, original_size: SizeLike) -> Tensor:
        """Map ``(B, K, 2)`` decoded input-pixel keypoints to original-image pixels."""
        ...


def check_codec_geometry(
    input_size: int | Sequence[int], heatmap_size: int | Sequence[int], sigma: float
) -> tuple[tuple[int, int], tuple[int, int], float]:
    """Validate the sizes and σ of a heatmap codec.

    Sizes are whole numbers of pixels: ints, or floats with no fractional part (``64.0``, as
    ``256 / 4`` gives) taken as those ints. A fractional size such as ``64.5`` is refused, never
    truncated.

    Args:
        input_size: Network input ``(H, W)`` (or an int) in pixels.
        heatmap_size: Heatmap ``(h, w)`` (or an int), at least 3x3.
        sigma: Gaussian standard deviation in heatmap pixels, finite and > 0.

    Returns:
        ``(input_size, heatmap_size, sigma)`` as two int pairs and a float.

    Raises:
        ValueError: Naming the argument and the value given, on sizes that are not positive
            whole numbers (fractional, zero, negative, NaN, a bool or a string), a heatmap
            smaller than 3x3 or a bad σ.

    Examples:
        >>> check_codec_geometry(256, (64, 64), 2)
        ((256, 256), (64, 64), 2.0)
        >>> check_codec_geometry(256, (256 / 4, 256 / 4), 2)
        ((256, 256), (64, 64), 2.0)
        >>> check_codec_geometry(256, (64.5, 64.5), 2)
        Traceback (most recent call last):
        ...
        ValueError: heatmap_size must be positive whole numbers of pixels (H, W); got (64.5, 64.5)
    """
    input_pair = size_pair(input_size, "input_size")
    heatmap_pair = size_pair(heatmap_size, "heatmap_size")
    if min(heatmap_pair) < 3:
        raise ValueError(f"heatmap_size must be at least (3, 3); got {heatmap_pair}")
    if not (isinstance(sigma, int | float) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0; got {sigma}")
    return input_pair, heatmap_pair, float(sigma)


@dataclass(frozen=True)
class HeatmapCodec:
    """Encode input-pixel keypoints as Gaussian heatmaps and decode heatmaps back.

    The library's :class:`KeypointCodec`. The heatmap has stride ``s = H / h`` (rows) and
    ``W / w`` (columns) relative to the network input, and keypoint ``x`` (input px) lies at
    ``u = (x + 0.5) / s - 0.5`` (heatmap px) — the pixel-centre resize map, so no coordinate is
    ever truncated. A noiseless target decodes back to the encoded point with ``refine="dark"``
    (to float precision), and :meth:`to_original` maps decoded keypoints back to the original
    image with the exact inverse of the resize.

    Args:
        input_size: Network input ``(H, W)`` in pixels.
        heatmap_size: Heatmap ``(h, w)``, at least 3x3.
        sigma: Gaussian standard deviation in heatmap pixels.
        refine: Sub-pixel refinement of :meth:`decode`: ``"dark"``, ``"quarter"`` or ``"none"``
            (see :func:`~sslkeypoint.heatmaps.decode.decode_heatmaps`).
        blur_kernel: Odd Gaussian smoothing kernel applied before decoding (for noisy network
            output), or ``None``.

    Raises:
        ValueError: On sizes that are not positive whole numbers (``64.5`` is refused, ``64.0``
            is taken as 64; see :func:`check_codec_geometry`), a heatmap smaller than 3x3,
            ``sigma <= 0``, an unknown ``refine`` or a bad ``blur_kernel``.

    Examples:
        >>> import torch
        >>> codec = HeatmapCodec(input_size=(256, 256), heatmap_size=(64, 64), sigma=2.0)
        >>> codec.stride
        (4.0, 4.0)
        >>> kp = torch.tensor([[[100.0, 37.25], [0.0, 255.0]]])  # (B=1, K=2, 2) input px
        >>> hm = codec.encode(kp)
        >>> hm.shape
        torch.Size([1, 2, 64, 64])
        >>> decoded, scores = codec.decode(hm)
        >>> torch.allclose(decoded, kp, atol=1e-3)
        True
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float = 2.0
    refine: Refine = "dark"
    blur_kernel: int | None = None

    def __post_init__(self) -> None:
        input_size, heatmap_size, sigma = check_codec_geometry(self.input_size, self.heatmap_size, self.sigma)
        object.__setattr__(self, "input_size", input_size)
        object.__setattr__(self, "heatmap_size", heatmap_size)
        object.__setattr__(self, "sigma", sigma)
        if self.refine not in _REFINE_MODES:
            raise ValueError(f"refine must be one of {_REFINE_MODES}; got {self.refine!r}")
        if self.blur_kernel is not None and (self.blur_kernel < 1 or self.blur_kernel % 2 == 0):
            raise ValueError(f"blur_kernel must be a positive odd int or None; got {self.blur_kernel}")

    @property
    def stride(self) -> tuple[float, float]:
        """``(s_y, s_x)``: input pixels per heatmap pixel along rows and columns."""
        return (
            self.input_size[0] / self.heatmap_size[0],
            self.input_size[1] / self.heatmap_size[1],
        )

    def _check_keypoints(self, keypoints: Tensor) -> None:
        if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
            raise ValueError(
                "keypoints must have shape (B, K, 2) (or (K, 2)) of (x, y) input px; "
                f"got {tuple(keypoints.shape)}"
            )

    def to_heatmap_coords(self, keypoints: Tensor) -> Tensor:
        """Map ``(..., K, 2)`` input-pixel ``(x, y)`` to heatmap pixels ``(u, v)``.

        Examples:
            >>> import torch
            >>> HeatmapCodec((256, 256), (64, 64)).to_heatmap_coords(torch.tensor([[1.5, 255.0]]))
            tensor([[ 0.0000, 63.3750]])
        """
        self._check_keypoints(keypoints)
        return rescale_keypoints(keypoints, self.input_size, self.heatmap_size)

    def to_input_coords(self, coords: Tensor) -> Tensor:
        """Map ``(..., K, 2)`` heatmap-pixel ``(u, v)`` to input pixels ``(x, y)``.

        The exact inverse of :meth:`to_heatmap_coords`: ``x = (u + 0.5) * s - 0.5``.

        Examples:
            >>> import torch
            >>> HeatmapCodec((256, 256), (64, 64)).to_input_coords(torch.tensor([[0.0, 63.375]]))
            tensor([[  1.5000, 255.0000]])
        """
        self._check_keypoints(coords)
        return rescale_keypoints(coords, self.heatmap_size, self.input_size)

    def encode(self, keypoints: Tensor, visible: Tensor | None = None) -> Tensor:
        """Render target heatmaps for keypoints in network-input pixels.

        Args:
            keypoints: ``(B, K, 2)`` ``(x, y)`` in input px (any leading dims ``(..., K, 2)``
                work, e.g. ``(K, 2)`` for one sample). Any device and float dtype.
            visible: Optional ``(B, K)`` bool (the keypoints' leading dims); invisible and NaN
                keypoints get all-zero maps.

        Returns:
            ``(B, K, h, w)`` peak-1 Gaussian heatmaps in the keypoints' dtype and device.

        Raises:
            ValueError: On a wrong shape of ``keypoints`` or ``visible``, complex keypoints, or
                an infinite coordinate (NaN marks a missing keypoint; infinity is no position).

        Examples:
            >>> import torch
            >>> codec = HeatmapCodec((64, 64), (16, 16))
            >>> codec.encode(torch.tensor([[[float("nan"), 3.0]]])).abs().sum().item()  # missing
            0.0
            >>> codec.encode(torch.tensor([[[float("inf"), 3.0]]]))
            Traceback (most recent call last):
            ...
            ValueError: keypoints must be finite (NaN marks a missing keypoint); got [inf, 3.0] at index (0, 0) of a (1, 1, 2) tensor
        """
        self._check_keypoints(keypoints)
        return _render(keypoints, self.heatmap_size, self.stride, self.sigma, visible)

    def decode(
        self,
        heatmaps: Tensor,
        refine: Refine | None = None,
        blur_kernel: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Decode heatmaps to keypoints in network-input pixels.

        Args:
            heatmaps: ``(B, K, h, w)`` (any leading dims ``(..., K, h, w)``) with
                ``(h, w) == heatmap_size``.
            refine: Override of the codec's ``refine`` for this call; see
                :func:`~sslkeypoint.heatmaps.decode.decode_heatmaps`.
            blur_kernel: Override of the codec's ``blur_kernel`` for this call.

        Returns:
            ``(keypoints, scores)``: ``(B, K, 2)`` ``(x, y)`` in input px and ``(B, K)`` peak
            values.

        Raises:
            ValueError: On a wrong shape, an unknown ``refine`` or a bad ``blur_kernel``.
        """
        if heatmaps.ndim < 3 or tuple(heatmaps.shape[-2:]) != self.heatmap_size:
            raise ValueError(
                f"heatmaps must have shape (B, K, {self.heatmap_size[0]}, {self.heatmap_size[1]}); "
                f"got {tuple(heatmaps.shape)}"
            )
        coords, scores = decode_heatmaps(
            heatmaps,
            refine=self.refine if refine is None else refine,
            blur_kernel=self.blur_kernel if blur_kernel is None else blur_kernel,
        )
        return self.to_input_coords(coords), scores

    def to_original(self, keypoints: Tensor, original_size: SizeLike) -> Tensor:
        """Map decoded input-pixel keypoints to the original image's pixels.

        The exact inverse of the resize to the network input:
        :func:`~sslkeypoint.heatmaps.coordinates.keypoints_to_original`.

        Args:
            keypoints: ``(B, K, 2)`` ``(x, y)`` in input px.
            original_size: Original ``(H, W)``, or a ``(B, 2)`` tensor of per-sample ``(H, W)``.

        Returns:
            ``(B, K, 2)`` in original px.
        """
        return keypoints_to_original(keypoints, original_size, self.input_size)

    def decode_to_original(
        self,
        heatmaps: Tensor,
        original_size: SizeLike,
        refine: Refine | None = None,
        blur_kernel: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Decode heatmaps to keypoints in the original (pre-resize) image's pixels.

        Args:
            heatmaps: ``(B, K, h, w)`` heatmaps.
            original_size: Original ``(H, W)``, or a ``(B, 2)`` tensor of per-sample ``(H, W)``.
            refine: As in :meth:`decode`.
            blur_kernel: As in :meth:`decode`.

        Returns:
            ``(keypoints, scores)``: ``(B, K, 2)`` in original px and ``(B, K)`` peak values.

        Examples:
            >>> import torch
            >>> from sslkeypoint.heatmaps import keypoints_to_input
            >>> codec = HeatmapCodec((256, 256), (64, 64))
            >>> kp512 = torch.tensor([[[300.0, 80.0]]])
            >>> hm = codec.encode(keypoints_to_input(kp512, (512, 512), codec.input_size))
            >>> kp, _ = codec.decode_to_original(hm, (512, 512))
            >>> torch.allclose(kp, kp512, atol=1e-2)
            True
        """
        keypoints, scores = self.decode(heatmaps, refine=refine, blur_kernel=blur_kernel)
        return self.to_original(keypoints, original_size), scores


def codec_to_dict(codec: KeypointCodec) -> dict[str, Any]:
    """A codec as ``{"class": "module.Qualname", "kwargs": {...}}`` (plain types), for checkpoints.

    :class:`HeatmapCodec` is named by its public path, ``sslkeypoint.heatmaps.HeatmapCodec``; any
    other codec class (a subclass included) by its own module and qualified name.

    Examples:
        >>> codec_to_dict(HeatmapCodec((32, 32), (8, 8), sigma=1.0))["kwargs"]
        {'input_size': [32, 32], 'heatmap_size': [8, 8], 'sigma': 1.0, 'refine': 'dark', 'blur_kernel': None}
        >>> codec_to_dict(HeatmapCodec((32, 32), (8, 8)))["class"]
        'sslkeypoint.heatmaps.HeatmapCodec'
    """
    if not isinstance(codec, KeypointCodec):
        raise ValueError(f"{type(codec).__name__} lacks the KeypointCodec interface (encode, decode, to_original)")
    spec = dataclass_to_spec(codec)
    if type(codec) is HeatmapCodec:
        # The library's codec is stored by the path users import it from; checkpoints and run
        # folders (whose settings are compared on resume) keep that path whichever file defines it.
        spec["class"] = _HEATMAP_CODEC_PATH
    return spec


def codec_from_dict(data: Mapping[str, Any]) -> KeypointCodec:
    """Rebuild exactly the codec :func:`codec_to_dict` stored (its class is imported by path).

    Raises:
        ValueError: If the class cannot be imported or does not build a :class:`KeypointCodec`.

    Examples:
        >>> codec = HeatmapCodec((32, 32), (8, 8), sigma=1.0, refine="quarter")
        >>> codec_from_dict(codec_to_dict(codec)) == codec
        True
    """
    codec = dataclass_from_spec(data, "codec")
    if not isinstance(codec, KeypointCodec):
        raise ValueError(f"{data['class']} does not build a KeypointCodec (encode, decode, to_original)")
    return codec
