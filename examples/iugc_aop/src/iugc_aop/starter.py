"""The heatmap codec of the IUGC 2025 official starter code, re-implemented for comparison.

The official baseline (a U-Net with 64×64 heatmaps) encodes and decodes landmarks with three
simplifications that :class:`sslkeypoint.heatmaps.HeatmapCodec` avoids:

* **truncation** — the Gaussian is centred on the heatmap pixel ``int(x * w / W)`` (``int``
  truncates towards zero), so every sub-pixel position, and up to one whole heatmap pixel, is
  lost;
* **argmax** — the decode takes the peak pixel with no sub-pixel refinement;
* **x/W scaling** — heatmap column ``j`` maps back to ``j * W / w`` input pixels, with no
  half-pixel terms, so the decoded point sits at the left/top edge of the stride cell.

Together they make a systematic shift towards the origin: for stride ``s = W / w`` an input
coordinate ``x`` comes back as ``s * floor(x / s)``, on average ``(s - 1) / 2`` px low for
integer coordinates (1.5 px at stride 4, 3 px in the 512-px originals), and up to ``s - 1`` px
off even on perfect heatmaps.

:class:`StarterCodec` has the same ``encode`` / ``decode`` interface as
:class:`~sslkeypoint.heatmaps.HeatmapCodec`, so it can replace it wherever a codec is used
(training targets, validation decode, :class:`~sslkeypoint.inference.KeypointDecoder`). It is
part of the example only, to reproduce the "U-Net (starter)" rows of the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sslkeypoint.heatmaps import HeatmapCodec

__all__ = ["StarterCodec"]


@dataclass(frozen=True)
class StarterCodec(HeatmapCodec):
    """The IUGC starter's codec: truncated Gaussian centres, argmax decode, ``x / W`` scaling.

    A :class:`~sslkeypoint.heatmaps.HeatmapCodec` (same sizes, validation and ``stride``) whose
    encode and decode follow the starter. Encode: keypoint ``(x, y)`` (input px) gets a peak-1
    Gaussian of standard deviation ``sigma`` (heatmap px) centred on the heatmap pixel ``(int(x * w / W), int(y * h / H))``.
    Decode: the first maximum ``(j, i)`` of each map (row-major) maps back to
    ``(j * W / w, i * H / h)`` input px.

    Args:
        input_size: Network input ``(H, W)`` in pixels.
        heatmap_size: Heatmap ``(h, w)``.
        sigma: Gaussian standard deviation in heatmap pixels.

    Raises:
        ValueError: On sizes that are not two positive ints (heatmaps at least 3×3) or
            ``sigma <= 0``.

    Examples:
        >>> import torch
        >>> codec = StarterCodec((256, 256), (64, 64))
        >>> hm = codec.encode(torch.tensor([[[10.9, 100.0]]]))  # int(10.9 / 4) = 2, int(25.0) = 25
        >>> (hm[0, 0] == 1).nonzero().tolist()  # (row, col) of the peak
        [[25, 2]]
        >>> codec.decode(hm)[0].tolist()  # column 2 -> 2 * 256 / 64 = 8.0: 2.9 px lost
        [[[8.0, 100.0]]]
    """

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

    def decode(
        self, heatmaps: Tensor, refine: str | None = None, blur_kernel: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Decode heatmaps with the starter's rule: argmax, then ``x = j * W / w``.

        Args:
            heatmaps: ``(B, K, h, w)`` (any leading dims ``(..., K, h, w)``) with
                ``(h, w) == heatmap_size``.
            refine: Ignored (the starter has no sub-pixel refinement); accepted so the codec
                can stand in for :class:`~sslkeypoint.heatmaps.HeatmapCodec`.
            blur_kernel: Ignored, likewise.

        Returns:
            ``(keypoints, scores)``: ``(B, K, 2)`` ``(x, y)`` in input px and ``(B, K)`` peak
            values, float32 (or the heatmaps' dtype when wider).

        Raises:
            ValueError: On a wrong shape.
        """
        h, w = self.heatmap_size
        if heatmaps.ndim < 3 or tuple(heatmaps.shape[-2:]) != (h, w):
            raise ValueError(f"heatmaps must have shape (B, K, {h}, {w}); got {tuple(heatmaps.shape)}")
        dtype = torch.promote_types(heatmaps.dtype, torch.float32)
        flat = heatmaps.to(dtype).flatten(-2)
        scores, idx = flat.max(dim=-1)
        coords = torch.stack([(idx % w).to(dtype), torch.div(idx, w, rounding_mode="floor").to(dtype)], dim=-1)
        return self.to_input_coords(coords), scores


def _check_keypoints(keypoints: Tensor) -> None:
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(
            f"keypoints must have shape (B, K, 2) (or (K, 2)) of (x, y) input px; got {tuple(keypoints.shape)}"
        )
