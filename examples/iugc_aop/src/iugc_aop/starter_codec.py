"""The heatmap codec of the IUGC 2025 official starter code, re-implemented for comparison.

The official baseline (a U-Net with 64×64 heatmaps) encodes and decodes landmarks with three
simplifications that :class:`sslkeypoint.heatmaps.HeatmapCodec` avoids:

* **truncation** — the Gaussian is centred on the heatmap pixel ``int(x * w / W)`` (``int``
  truncates towards zero), so every sub-pixel position, and up to one whole heatmap pixel, is
  lost;
* **argmax** — the decode takes the peak pixel with no sub-pixel refinement;
* **x/W scaling** — heatmap column ``j`` maps back to ``j * W / w`` input pixels, and input
  column ``x`` to ``x * W_orig / W`` original pixels, with no half-pixel terms, so the decoded
  point sits at the left/top edge of the stride cell.

Together they make a systematic shift towards the origin: for stride ``s = W / w`` an input
coordinate ``x`` comes back as ``s * floor(x / s)``, on average ``(s - 1) / 2`` px low for
integer coordinates (1.5 px at stride 4, 3 px in the 512-px originals), and up to ``s - 1`` px
off even on perfect heatmaps.

:class:`StarterCodec` implements the library's :class:`~sslkeypoint.heatmaps.KeypointCodec`
interface (``encode``, ``decode``, ``to_original``), so it is used wherever a codec is taken:
training targets (``HeatmapFinetuneModule(config, codec=StarterCodec(...))``), validation,
:class:`~sslkeypoint.inference.KeypointPredictor` and the exporters. It is a frozen dataclass
whose fields are its constructor arguments, so a checkpoint stores it with
:func:`~sslkeypoint.heatmaps.codec_to_dict` and
:meth:`KeypointPredictor.from_checkpoint <sslkeypoint.inference.KeypointPredictor.from_checkpoint>`
rebuilds it, starter map back included. It is part of the example only, to reproduce the
"U-Net (starter)" rows of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sslkeypoint.heatmaps import check_codec_geometry

__all__ = ["StarterCodec"]


@dataclass(frozen=True)
class StarterCodec:
    """The IUGC starter's codec: truncated Gaussian centres, argmax decode, ``x / W`` scaling.

    A :class:`~sslkeypoint.heatmaps.KeypointCodec`. Encode: keypoint ``(x, y)`` (input px) gets
    a peak-1 Gaussian of standard deviation ``sigma`` (heatmap px) centred on the heatmap pixel
    ``(int(x * w / W), int(y * h / H))``. Decode: the first maximum ``(j, i)`` of each map
    (row-major) maps back to ``(j * W / w, i * H / h)`` input px. Map back to an original image
    of size ``(H_o, W_o)``: ``(x * W_o / W, y * H_o / H)``.

    Args:
        input_size: Network input ``(H, W)`` in pixels (an int for a square).
        heatmap_size: Heatmap ``(h, w)`` (an int for a square), at least 3×3.
        sigma: Gaussian standard deviation in heatmap pixels.

    Raises:
        ValueError: On sizes that are not positive ints, a heatmap smaller than 3×3 or a
            ``sigma`` that is not a finite number > 0
            (:func:`~sslkeypoint.heatmaps.check_codec_geometry`).

    Examples:
        >>> import torch
        >>> codec = StarterCodec((256, 256), (64, 64))
        >>> hm = codec.encode(torch.tensor([[[10.9, 100.0]]]))  # int(10.9 / 4) = 2, int(25.0) = 25
        >>> (hm[0, 0] == 1).nonzero().tolist()  # (row, col) of the peak
        [[25, 2]]
        >>> kp, scores = codec.decode(hm)
        >>> kp.tolist()  # column 2 -> 2 * 256 / 64 = 8.0: 2.9 px lost
        [[[8.0, 100.0]]]
        >>> codec.to_original(kp, (512, 512)).tolist()  # x * 512 / 256
        [[[16.0, 200.0]]]
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float = 2.0

    def __post_init__(self) -> None:
        input_size, heatmap_size, sigma = check_codec_geometry(self.input_size, self.heatmap_size, self.sigma)
        object.__setattr__(self, "input_size", input_size)
        object.__setattr__(self, "heatmap_size", heatmap_size)
        object.__setattr__(self, "sigma", sigma)

    @property
    def stride(self) -> tuple[float, float]:
        """``(s_y, s_x)``: input pixels per heatmap pixel along rows and columns."""
        return (
            self.input_size[0] / self.heatmap_size[0],
            self.input_size[1] / self.heatmap_size[1],
        )

    def _scale(self, like: Tensor) -> Tensor:
        """``(w / W, h / H)`` as a ``(2,)`` tensor lined up with ``(x, y)``."""
        (big_h, big_w), (h, w) = self.input_size, self.heatmap_size
        return torch.tensor([w / big_w, h / big_h], dtype=like.dtype, device=like.device)

    def to_heatmap_coords(self, keypoints: Tensor) -> Tensor:
        """Heatmap pixel of each ``(..., K, 2)`` input-pixel keypoint: ``int(x * w / W)`` (truncated).

        Examples:
            >>> import torch
            >>> StarterCodec((256, 256), (64, 64)).to_heatmap_coords(torch.tensor([[10.9, 3.99]]))
            tensor([[2., 0.]])
        """
        _check_keypoints(keypoints)
        kp = keypoints if keypoints.is_floating_point() else keypoints.float()
        return torch.trunc(kp * self._scale(kp))

    def to_input_coords(self, coords: Tensor) -> Tensor:
        """Map ``(..., K, 2)`` heatmap-pixel ``(u, v)`` to input pixels: ``x = u * W / w``.

        Examples:
            >>> import torch
            >>> StarterCodec((256, 256), (64, 64)).to_input_coords(torch.tensor([[2.0, 63.0]]))
            tensor([[  8., 252.]])
        """
        _check_keypoints(coords)
        c = coords if coords.is_floating_point() else coords.float()
        return c / self._scale(c)

    def encode(self, keypoints: Tensor, visible: Tensor | None = None) -> Tensor:
        """Render the starter's target heatmaps for keypoints in input pixels.

        Args:
            keypoints: ``(B, K, 2)`` ``(x, y)`` in input px (any leading dims ``(..., K, 2)``).
            visible: Optional ``(B, K)`` bool; invisible and non-finite keypoints get all-zero
                maps.

        Returns:
            ``(B, K, h, w)`` peak-1 Gaussians centred on the truncated heatmap pixel, in the
            keypoints' dtype (float32 for integer input) and device.

        Raises:
            ValueError: On a wrong shape of ``keypoints`` or ``visible``.

        Examples:
            >>> import torch
            >>> hm = StarterCodec((16, 16), (4, 4), sigma=1.0).encode(torch.tensor([[[5.0, 9.0]]]))
            >>> hm.shape, hm[0, 0, 2, 1].item()  # centre (int(1.25), int(2.25)) = (1, 2)
            (torch.Size([1, 1, 4, 4]), 1.0)
        """
        _check_keypoints(keypoints)
        kp = keypoints if keypoints.is_floating_point() else keypoints.float()
        valid = torch.isfinite(kp).all(-1)
        if visible is not None:
            if visible.shape != kp.shape[:-1]:
                raise ValueError(
                    f"visible must have shape {tuple(kp.shape[:-1])} (the keypoints' (..., K)); "
                    f"got {tuple(visible.shape)}"
                )
            valid = valid & visible.to(device=kp.device, dtype=torch.bool)
        centres = self.to_heatmap_coords(torch.where(valid[..., None], kp, torch.zeros_like(kp)))
        h, w = self.heatmap_size
        cols = torch.arange(w, device=kp.device, dtype=kp.dtype)
        rows = torch.arange(h, device=kp.device, dtype=kp.dtype)
        gx = torch.exp(-((cols - centres[..., 0:1]) ** 2) / (2 * self.sigma**2))  # (..., K, w)
        gy = torch.exp(-((rows - centres[..., 1:2]) ** 2) / (2 * self.sigma**2))  # (..., K, h)
        maps = gy[..., :, None] * gx[..., None, :]
        return maps * valid[..., None, None].to(maps.dtype)

    def decode(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """Decode heatmaps with the starter's rule: argmax, then ``x = j * W / w``.

        Args:
            heatmaps: ``(B, K, h, w)`` (any leading dims ``(..., K, h, w)``) with
                ``(h, w) == heatmap_size``.

        Returns:
            ``(keypoints, scores)``: ``(B, K, 2)`` ``(x, y)`` in input px and ``(B, K)`` peak
            values, float32 (or the heatmaps' dtype when wider).

        Raises:
            ValueError: On a wrong shape.

        Examples:
            >>> import torch
            >>> hm = torch.zeros(1, 1, 4, 4)
            >>> hm[0, 0, 3, 1] = 0.5
            >>> StarterCodec((16, 16), (4, 4)).decode(hm)
            (tensor([[[ 4., 12.]]]), tensor([[0.5000]]))
        """
        h, w = self.heatmap_size
        if heatmaps.ndim < 3 or tuple(heatmaps.shape[-2:]) != (h, w):
            raise ValueError(f"heatmaps must have shape (B, K, {h}, {w}); got {tuple(heatmaps.shape)}")
        dtype = torch.promote_types(heatmaps.dtype, torch.float32)
        flat = heatmaps.to(dtype).flatten(-2)
        scores, idx = flat.max(dim=-1)
        coords = torch.stack([(idx % w).to(dtype), torch.div(idx, w, rounding_mode="floor").to(dtype)], dim=-1)
        return self.to_input_coords(coords), scores

    def to_original(self, keypoints: Tensor, original_size: Sequence[int] | Tensor) -> Tensor:
        """Map decoded input-pixel keypoints to the original image with the starter's ``x * W_o / W``.

        No half-pixel terms: the starter's map, not the pixel-centre resize map of
        :meth:`HeatmapCodec.to_original <sslkeypoint.heatmaps.HeatmapCodec.to_original>`.

        Args:
            keypoints: ``(B, K, 2)`` ``(x, y)`` in input px (any leading dims ``(..., K, 2)``
                with a single ``original_size``).
            original_size: Original ``(H_o, W_o)``, or a ``(B, 2)`` tensor of per-sample sizes
                for ``(B, K, 2)`` keypoints.

        Returns:
            ``(B, K, 2)`` in original px, in the keypoints' dtype (float32 for integer input).

        Raises:
            ValueError: On a wrong shape of ``keypoints`` or ``original_size``.

        Examples:
            >>> import torch
            >>> codec = StarterCodec((64, 64), (16, 16))
            >>> codec.to_original(torch.tensor([[[8.0, 4.0]]]), (300, 400)).tolist()  # x*400/64, y*300/64
            [[[50.0, 18.75]]]
        """
        _check_keypoints(keypoints)
        kp = keypoints if keypoints.is_floating_point() else keypoints.float()
        size = torch.as_tensor(original_size, device=kp.device).to(kp.dtype)
        if size.shape[-1:] != (2,) or size.ndim > 2:
            raise ValueError(
                f"original_size must be (H, W) or a (B, 2) tensor of (H, W); got shape {tuple(size.shape)}"
            )
        big = torch.tensor(self.input_size, dtype=kp.dtype, device=kp.device)
        scale = (size / big).flip(-1)  # (W_o / W, H_o / H), lined up with (x, y)
        if scale.ndim == 2:
            if kp.ndim != 3 or scale.shape[0] != kp.shape[0]:
                raise ValueError(
                    "per-sample sizes of shape (B, 2) need keypoints of shape (B, K, 2); got sizes "
                    f"{tuple(scale.shape)} and keypoints {tuple(kp.shape)}"
                )
            scale = scale[:, None, :]
        return kp * scale


def _check_keypoints(keypoints: Tensor) -> None:
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(
            f"keypoints must have shape (B, K, 2) (or (K, 2)) of (x, y) input px; got {tuple(keypoints.shape)}"
        )
