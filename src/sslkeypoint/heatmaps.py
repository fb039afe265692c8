"""Gaussian heatmap targets and their decoding, and the keypoint resize maps.

Conventions (see the Concepts page): keypoints are ``(..., K, 2)`` in ``(x, y)`` pixels, integer
coordinates are pixel centres, and resizing from width ``W`` to ``W'`` maps
``x' = (x + 0.5) * W' / W - 0.5`` (likewise ``y``), as torch/PIL resize with
``align_corners=False``. A heatmap of stride ``s`` relative to the network input uses the same map:
``u = (x + 0.5) / s - 0.5``.

A *codec* owns both directions between keypoints and heatmaps, and the map of decoded keypoints
back to the original image. :class:`KeypointCodec` is the interface every part of the library
takes (the fine-tuning module, the predictor, the exporters); :class:`HeatmapCodec` is the
library's sub-pixel-exact implementation, built from the plain batched functions
:func:`render_gaussian_heatmaps` and :func:`decode_heatmaps` (which work in heatmap pixels).
Variation comes from constructor arguments (σ, the decoding method) or from another class that
implements the interface — never from swapping attributes of a running module. Checkpoints store
a codec with :func:`codec_to_dict` (its class path and constructor arguments) and
:func:`codec_from_dict` rebuilds exactly that codec.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from sslkeypoint._utils import dataclass_from_spec, dataclass_to_spec, size_pair

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

Refine = Literal["none", "quarter", "dark"]
_REFINE_MODES = ("none", "quarter", "dark")
# Floor applied before taking the log of a heatmap (DARK refinement).
_LOG_EPS = 1e-10
# With smoothing, a peak whose 3x3 stencil comes this close to an edge is decoded from the
# unsmoothed map (the edge padding of the smoothing pulls such a peak by up to ~1 heatmap px).
_BLUR_EDGE_MARGIN = 2
# A 1-D Gaussian factor is set to exactly 0 where its exponent is below -_EXP_CUTOFF, so the 2-D
# map is 0 beyond ~8.9 sigma from the centre: the product of two factors never underflows into
# float32 denormals (which make exp and the product an order of magnitude slower on CPU).
_EXP_CUTOFF = 40.0
_EXP_FLOOR = math.exp(-_EXP_CUTOFF) * (1 + 1e-3)

SizeLike = Sequence[int] | Tensor


def _size_tensor(size: SizeLike, like: Tensor, name: str) -> Tensor:
    """Return ``size`` as a float tensor ``(..., 2)`` of ``(H, W)`` on ``like``'s device and dtype."""
    t = torch.as_tensor(size, device=like.device)
    if t.shape[-1:] != (2,):
        raise ValueError(f"{name} must be (H, W) or a (B, 2) tensor of (H, W); got shape {tuple(t.shape)}")
    return t.to(like.dtype)


def rescale_keypoints(keypoints: Tensor, src_size: SizeLike, dst_size: SizeLike) -> Tensor:
    """Map keypoints from an image of size ``src_size`` to the same image resized to ``dst_size``.

    Uses the pixel-centre resize convention ``x' = (x + 0.5) * W' / W - 0.5`` (likewise ``y``).

    Args:
        keypoints: ``(..., K, 2)`` float tensor of ``(x, y)`` pixels in the source image.
        src_size: Source ``(H, W)``, or a ``(B, 2)`` tensor of per-sample ``(H, W)`` when
            ``keypoints`` is ``(B, K, 2)``.
        dst_size: Destination ``(H, W)`` (or ``(B, 2)``, as ``src_size``).

    Returns:
        ``(..., K, 2)`` keypoints in destination pixels. NaN stays NaN.

    Examples:
        >>> import torch
        >>> rescale_keypoints(torch.tensor([[0.0, 511.0]]), (512, 512), (256, 256)).tolist()
        [[-0.25, 255.25]]
    """
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (..., K, 2); got {tuple(keypoints.shape)}")
    if not keypoints.is_floating_point():
        keypoints = keypoints.float()
    src = _size_tensor(src_size, keypoints, "src_size")
    dst = _size_tensor(dst_size, keypoints, "dst_size")
    # (H, W) -> (W, H) to line up with (x, y); per-sample sizes broadcast over K.
    scale = (dst / src).flip(-1)
    if scale.ndim == 2:
        if keypoints.ndim != 3 or scale.shape[0] != keypoints.shape[0]:
            raise ValueError(
                "per-sample sizes of shape (B, 2) need keypoints of shape (B, K, 2); got sizes "
                f"{tuple(scale.shape)} and keypoints {tuple(keypoints.shape)}"
            )
        scale = scale[:, None, :]
    return (keypoints + 0.5) * scale - 0.5


def keypoints_to_input(keypoints: Tensor, original_size: SizeLike, input_size: SizeLike) -> Tensor:
    """Map keypoints from original image pixels to network-input pixels.

    Args:
        keypoints: ``(..., K, 2)`` ``(x, y)`` in original pixels.
        original_size: Original ``(H, W)`` or ``(B, 2)`` per-sample sizes.
        input_size: Network input ``(H, W)``.

    Returns:
        ``(..., K, 2)`` in input pixels.

    Examples:
        >>> import torch
        >>> keypoints_to_input(torch.tensor([[255.5, 255.5]]), (512, 512), (256, 256))
        tensor([[127.5000, 127.5000]])
    """
    return rescale_keypoints(keypoints, original_size, input_size)


def keypoints_to_original(keypoints: Tensor, original_size: SizeLike, input_size: SizeLike) -> Tensor:
    """Map keypoints from network-input pixels back to original image pixels.

    The exact inverse of :func:`keypoints_to_input`.

    Args:
        keypoints: ``(..., K, 2)`` ``(x, y)`` in input pixels.
        original_size: Original ``(H, W)`` or ``(B, 2)`` per-sample sizes.
        input_size: Network input ``(H, W)``.

    Returns:
        ``(..., K, 2)`` in original pixels.

    Examples:
        >>> import torch
        >>> keypoints_to_original(torch.tensor([[127.5, 127.5]]), (512, 512), (256, 256))
        tensor([[255.5000, 255.5000]])
    """
    return rescale_keypoints(keypoints, input_size, original_size)



def render_gaussian_heatmaps(
    centres: Tensor,
    heatmap_size: Sequence[int],
    sigma: float = 2.0,
    visible: Tensor | None = None,
) -> Tensor:
    """Render peak-1 Gaussians centred (sub-pixel) at points given in heatmap pixels.

    Each map is ``exp(-((j - u)^2 + (i - v)^2) / (2 sigma^2))`` at pixel (row ``i``, col ``j``),
    computed as the outer product of a 1-D Gaussian along ``y`` and one along ``x``: one batched
    op for every sample and keypoint, on ``centres``' device and dtype. Each 1-D factor is exact
    to within ``5e-18`` (absolute) and exactly 0 beyond about ``8.9 * sigma`` from the centre
    (where ``exp(-d^2 / (2 sigma^2)) < exp(-40)``), so near its peak the log of a map is an exact
    quadratic that :func:`decode_heatmaps` inverts exactly.

    Args:
        centres: ``(..., K, 2)`` float ``(u, v)`` centres in heatmap pixels (pixel centres are
            integers).
        heatmap_size: ``(h, w)`` of the maps.
        sigma: Standard deviation in heatmap pixels.
        visible: Optional ``(..., K)`` bool; ``False`` gives an all-zero map. NaN centres
            (missing keypoints) give all-zero maps too.

    Returns:
        ``(..., K, h, w)`` heatmaps in ``[0, 1]`` with ``centres``' dtype (float32 when
        ``centres`` is an integer tensor).

    Raises:
        ValueError: On a wrong shape of ``centres`` or ``visible``, ``sigma <= 0``, a
            ``heatmap_size`` that is not positive whole numbers, complex centres, or an infinite
            coordinate (NaN marks a missing keypoint; infinity is no position).

    Examples:
        >>> import torch
        >>> hm = render_gaussian_heatmaps(torch.tensor([[2.0, 1.0]]), (3, 5), sigma=1.0)
        >>> hm.shape
        torch.Size([1, 3, 5])
        >>> hm[0, 1, 2].item(), round(hm[0, 1, 3].item(), 4)  # exp(-1/2) next to the centre
        (1.0, 0.6065)
    """
    if centres.ndim < 2 or centres.shape[-1] != 2:
        raise ValueError(f"centres must have shape (..., K, 2); got {tuple(centres.shape)}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0; got {sigma}")
    return _render(centres, size_pair(heatmap_size, "heatmap_size"), (1.0, 1.0), sigma, visible)


@functools.lru_cache(maxsize=64)
def _render_tables(
    h: int,
    w: int,
    stride: tuple[float, float],
    sigma: float,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor]:
    """Pixel-centre positions ``(2, n)`` (columns, rows; ``n = max(h, w)``) and inverse widths.

    Positions are in the points' pixels: heatmap pixel ``j`` has its centre at
    ``(j + 0.5) * s - 0.5``; the 1-D Gaussian there is ``exp(-((pos - x) * k)^2)`` with
    ``k = 1 / (sqrt(2) * sigma * s)`` (a ``(2, 1)`` tensor). The shorter axis is padded with
    samples that are sliced away after use.
    """
    sy, sx = stride
    j = torch.arange(max(h, w), dtype=torch.float64)
    grid = torch.stack([(j + 0.5) * sx - 0.5, (j + 0.5) * sy - 0.5])
    k = torch.tensor([[sx], [sy]], dtype=torch.float64).mul(math.sqrt(2.0) * sigma).reciprocal()
    return grid.to(device=device, dtype=dtype), k.to(device=device, dtype=dtype)


def _render(
    points: Tensor,
    heatmap_size: tuple[int, int],
    stride: tuple[float, float],
    sigma: float,
    visible: Tensor | None,
) -> Tensor:
    """Gaussians for ``(..., K, 2)`` points given in pixels of an image ``stride`` times larger.

    The work is on ``(..., K, 2, max(h, w))`` 1-D factors; the only full-size op is the final
    outer product, so the cost is little more than writing the output.
    """
    if points.is_complex():
        raise ValueError(f"keypoints must be real (x, y) coordinates; got a complex tensor ({points.dtype})")
    if not points.is_floating_point():
        points = points.float()
    infinite = torch.isinf(points)
    if bool(infinite.any()):
        where = tuple(int(i) for i in infinite.nonzero()[0][:-1].tolist())
        raise ValueError(
            f"keypoints must be finite (NaN marks a missing keypoint); got {points[where].tolist()} "
            f"at index {where} of a {tuple(points.shape)} tensor"
        )
    h, w = heatmap_size
    if visible is not None:
        if visible.shape != points.shape[:-1]:
            raise ValueError(
                f"visible must have shape {tuple(points.shape[:-1])} (the keypoints' (..., K)); "
                f"got {tuple(visible.shape)}"
            )
        visible = visible.to(device=points.device, dtype=torch.bool)
        points = torch.where(visible[..., None], points, math.inf)
    # Invisible and missing (NaN) points move to +inf, whose factor is exactly 0 below.
    points = torch.nan_to_num(points, nan=math.inf)
    grid, k = _render_tables(h, w, stride, sigma, points.device, points.dtype)
    # Scaled distances clamped at the cutoff: exp never sees an underflowing argument (slow on
    # CPU), and the gradient is 0, not NaN, for clamped and invalid entries. Subtracting a
    # floor just above exp(-cutoff) makes everything beyond the cutoff exactly 0.
    if points.requires_grad and torch.is_grad_enabled():
        r = math.sqrt(_EXP_CUTOFF)
        t = ((grid - points[..., None]) * k).clamp(-r, r)  # (..., K, 2, n)
        g = (torch.exp(-t.square()) - _EXP_FLOOR).clamp(min=0)
    else:
        # The same values computed in place on one small buffer (targets need no gradient).
        g = (grid - points[..., None]).mul_(k).square_().clamp_(max=_EXP_CUTOFF)
        g = g.neg_().exp_().sub_(_EXP_FLOOR).clamp_(min=0)
    return g[..., 1, :h, None] * g[..., 0, None, :w]


def _blur_matrix(n: int, kernel_size: int, like: Tensor) -> Tensor:
    """``(n, n)`` matrix applying a 1-D Gaussian blur with edge replication along one axis.

    The standard deviation follows OpenCV's rule for a given kernel size,
    ``0.3 * ((k - 1) / 2 - 1) + 0.8``, as the DARK reference implementation does.
    """
    sigma = 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8
    r = kernel_size // 2
    t = torch.arange(-r, r + 1, device=like.device)
    k = torch.exp(-0.5 * (t.to(like.dtype) / sigma) ** 2)
    k = k / k.sum()
    # Row i gathers pixels i - r .. i + r, indices clamped to the map (edge replication).
    cols = (torch.arange(n, device=like.device)[:, None] + t[None, :]).clamp(0, n - 1)
    m = torch.zeros(n, n, device=like.device, dtype=like.dtype)
    return m.scatter_add_(1, cols, k.expand(n, -1).contiguous())


def _gaussian_blur(heatmaps: Tensor, kernel_size: int) -> Tensor:
    """Separable Gaussian blur of ``(N, h, w)`` maps (edge replication) as two matmuls."""
    h, w = heatmaps.shape[-2:]
    by = _blur_matrix(h, kernel_size, heatmaps)
    bx = _blur_matrix(w, kernel_size, heatmaps)
    return by @ heatmaps @ bx.T


def _argmax_2d(maps: Tensor, row_max: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column of the first maximum (row-major) of each ``(N, h, w)`` map.

    Two stages (the row holding the maximum, then the column in that row) give the same answer
    as a flat argmax, but the full pass is a max reduction, which is much faster on CPU.
    """
    n, _, w = maps.shape
    if n == 0:
        empty = torch.zeros(0, dtype=torch.long, device=maps.device)
        return empty, empty
    iy = row_max.argmax(dim=-1)
    ix = torch.gather(maps, 1, iy[:, None, None].expand(n, 1, w))[:, 0].argmax(dim=-1)
    return iy, ix


def decode_heatmaps(
    heatmaps: Tensor,
    refine: Refine = "dark",
    blur_kernel: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Locate the peak of every heatmap, in heatmap pixels, with optional sub-pixel refinement.

    All maps are decoded at once (argmax and gathers; no per-sample loop).

    * ``"none"``: the argmax pixel.
    * ``"quarter"``: the argmax moved a quarter pixel, per axis, toward the higher of its two
      neighbours (the classic HRNet / SimpleBaseline rule). An axis on which the argmax lies on
      the border is left unrefined.
    * ``"dark"``: one Newton step on the log-heatmap (DARK, Zhang et al., "Distribution-Aware
      Coordinate Representation for Human Pose Estimation", CVPR 2020), with gradient and
      Hessian from central finite differences on the 3x3 neighbourhood. Exact for a Gaussian
      (whose log is quadratic). At a border the 3x3 stencil is shifted one pixel inwards, which
      stays exact for a Gaussian, so there is no wrap-around and no out-of-bounds read. When the
      Hessian is not negative definite the argmax is kept; the step is clamped to at most one
      pixel per axis from the argmax and to the map's extent ``[-0.5, w - 0.5]``.

    Args:
        heatmaps: ``(..., K, h, w)`` float heatmaps, ``h, w >= 3``.
        refine: ``"dark"`` (default), ``"quarter"`` or ``"none"``.
        blur_kernel: Odd kernel size of a Gaussian smoothing applied before the argmax and the
            refinement (recommended for noisy network output with ``"dark"``; 11 is the DARK
            reference setting at stride 4); ``None`` or 1 for none. The edge padding of the
            smoothing pulls peaks near an edge towards it, so a peak whose 3x3 stencil is within
            2 px of an edge is decoded from the unsmoothed map; a smaller pull (up to 0.2
            heatmap px for ``sigma=2`` and kernel 11, none for kernel 5) remains a few pixels
            further in. Scores are always taken from the unsmoothed maps.

    NaN pixels (e.g. from a diverged network) never win: each is read as the lowest finite
    number, below every value of its map, for the argmax, the refinement and the smoothing, and
    the score is the maximum of the other pixels. A map with no value but NaN decodes to NaN
    coordinates and a NaN score (a missing keypoint, as NaN means elsewhere).

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(u, v)`` peak positions in heatmap pixels and
        ``(..., K)`` peak values (the maximum of each map). Both are float32 for half-precision
        input, else the input dtype. An all-zero map decodes to ``(0, 0)`` with score 0.

    Raises:
        ValueError: On a wrong shape, complex heatmaps, an unknown ``refine`` or an invalid
            ``blur_kernel``.

    Examples:
        >>> import torch
        >>> hm = render_gaussian_heatmaps(torch.tensor([[10.3, 4.6]]), (16, 16))
        >>> coords, scores = decode_heatmaps(hm, refine="dark")
        >>> [round(c, 4) for c in coords[0].tolist()]
        [10.3, 4.6]
        >>> decode_heatmaps(hm, refine="none")[0].tolist()
        [[10.0, 5.0]]
        >>> hm[0, 0, 0] = float("nan")  # one NaN pixel does not move the peak
        >>> [round(c, 4) for c in decode_heatmaps(hm)[0][0].tolist()]
        [10.3, 4.6]
    """
    if heatmaps.ndim < 3:
        raise ValueError(f"heatmaps must have shape (..., K, h, w); got {tuple(heatmaps.shape)}")
    if refine not in _REFINE_MODES:
        raise ValueError(f"refine must be one of {_REFINE_MODES}; got {refine!r}")
    if blur_kernel is not None and (blur_kernel < 1 or blur_kernel % 2 == 0):
        raise ValueError(f"blur_kernel must be a positive odd int or None; got {blur_kernel}")
    h, w = heatmaps.shape[-2:]
    if h < 3 or w < 3:
        raise ValueError(f"heatmaps must be at least 3x3; got (h, w) = ({h}, {w})")
    if heatmaps.is_complex():
        raise ValueError(f"heatmaps must be real; got a complex tensor ({heatmaps.dtype})")
    lead = heatmaps.shape[:-2]
    dtype = torch.promote_types(heatmaps.dtype, torch.float32)
    # NaN pixels never win: they become the lowest finite value, below every number of the map
    # (a map with nothing but NaN is given NaN coordinates and score at the end).
    lowest = torch.finfo(dtype).min
    maps = torch.nan_to_num(heatmaps.reshape(-1, h, w).to(dtype), nan=lowest, posinf=math.inf, neginf=-math.inf)
    n = maps.shape[0]
    row_max = maps.amax(dim=-1)  # (N, h)
    scores = row_max.amax(dim=-1)
    no_value = scores == lowest
    raw_maps = maps
    flat = maps.reshape(n, h * w)
    iy, ix = _argmax_2d(maps, row_max)
    if blur_kernel is not None and blur_kernel > 1 and n > 0:
        # Smoothing pads the map at its edges, which pulls a peak next to an edge towards it
        # (by up to ~1 heatmap px): such peaks (3x3 stencil within the margin of an edge) keep
        # the unsmoothed map for both the argmax and the refinement.
        margin = min(blur_kernel // 2, _BLUR_EDGE_MARGIN)
        maps = _gaussian_blur(maps, blur_kernel)
        iy_b, ix_b = _argmax_2d(maps, maps.amax(dim=-1))
        sx = ix_b.clamp(1, w - 2)
        sy = iy_b.clamp(1, h - 2)
        near_edge = (
            (sx - 1 < margin)
            | (sx + 1 > w - 1 - margin)
            | (sy - 1 < margin)
            | (sy + 1 > h - 1 - margin)
        )
        iy = torch.where(near_edge, iy, iy_b)
        ix = torch.where(near_edge, ix, ix_b)
        flat = torch.where(near_edge[:, None], raw_maps.reshape(n, h * w), maps.reshape(n, h * w))
    fx = ix.to(dtype)
    fy = iy.to(dtype)

    if refine == "quarter":
        left = torch.gather(flat, 1, (iy * w + (ix - 1).clamp(min=0))[:, None])[:, 0]
        right = torch.gather(flat, 1, (iy * w + (ix + 1).clamp(max=w - 1))[:, None])[:, 0]
        up = torch.gather(flat, 1, ((iy - 1).clamp(min=0) * w + ix)[:, None])[:, 0]
        down = torch.gather(flat, 1, ((iy + 1).clamp(max=h - 1) * w + ix)[:, None])[:, 0]
        inner_x = ((ix > 0) & (ix < w - 1)).to(dtype)
        inner_y = ((iy > 0) & (iy < h - 1)).to(dtype)
        # inf - inf (two infinite neighbours) is NaN: no move along that axis.
        fx = fx + 0.25 * torch.sign(right - left).nan_to_num(0.0) * inner_x
        fy = fy + 0.25 * torch.sign(down - up).nan_to_num(0.0) * inner_y
    elif refine == "dark":
        # 3x3 stencil centred at the argmax, moved one pixel inwards on a border.
        cx = ix.clamp(1, w - 2)
        cy = iy.clamp(1, h - 2)
        d = torch.arange(-1, 2, device=maps.device)
        rows = (cy[:, None] + d)[:, :, None]  # (N, 3, 1)
        cols = (cx[:, None] + d)[:, None, :]  # (N, 1, 3)
        patch = torch.gather(flat, 1, (rows * w + cols).reshape(n, 9)).reshape(n, 3, 3)
        logp = torch.log(patch.clamp(min=_LOG_EPS))
        gx = 0.5 * (logp[:, 1, 2] - logp[:, 1, 0])
        gy = 0.5 * (logp[:, 2, 1] - logp[:, 0, 1])
        hxx = logp[:, 1, 2] - 2 * logp[:, 1, 1] + logp[:, 1, 0]
        hyy = logp[:, 2, 1] - 2 * logp[:, 1, 1] + logp[:, 0, 1]
        hxy = 0.25 * (logp[:, 2, 2] - logp[:, 2, 0] - logp[:, 0, 2] + logp[:, 0, 0])
        det = hxx * hyy - hxy * hxy
        neg_def = (hxx < 0) & (det > 0)
        safe_det = torch.where(neg_def, det, torch.ones_like(det))
        # Newton step -H^{-1} g from the stencil centre.
        nx = cx.to(dtype) - (hyy * gx - hxy * gy) / safe_det
        ny = cy.to(dtype) - (hxx * gy - hxy * gx) / safe_det
        nx = torch.minimum(torch.maximum(nx, fx - 1), fx + 1).clamp(-0.5, w - 0.5)
        ny = torch.minimum(torch.maximum(ny, fy - 1), fy + 1).clamp(-0.5, h - 0.5)
        fx = torch.where(neg_def, nx, fx)
        fy = torch.where(neg_def, ny, fy)

    coords = torch.stack([fx, fy], dim=-1)
    coords = torch.where(no_value[:, None], math.nan, coords).reshape(*lead, 2)
    scores = torch.where(no_value, math.nan, scores)
    return coords, scores.reshape(lead)


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
            (see :func:`decode_heatmaps`).
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
            refine: Override of the codec's ``refine`` for this call; see :func:`decode_heatmaps`.
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
        """Map decoded input-pixel keypoints to the original image: :func:`keypoints_to_original`.

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

    Examples:
        >>> codec_to_dict(HeatmapCodec((32, 32), (8, 8), sigma=1.0))["kwargs"]
        {'input_size': [32, 32], 'heatmap_size': [8, 8], 'sigma': 1.0, 'refine': 'dark', 'blur_kernel': None}
    """
    if not isinstance(codec, KeypointCodec):
        raise ValueError(f"{type(codec).__name__} lacks the KeypointCodec interface (encode, decode, to_original)")
    return dataclass_to_spec(codec)


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
