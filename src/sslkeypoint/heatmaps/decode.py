"""Heatmap decoding: the peak of every map, with argmax, quarter-offset or DARK refinement.

All maps are decoded at once (batched argmax and gathers), optionally after a Gaussian smoothing
for noisy network output. Positions are in heatmap pixels; integer coordinates are pixel centres.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

__all__ = ["Refine", "decode_heatmaps"]

Refine = Literal["none", "quarter", "dark"]
_REFINE_MODES = ("none", "quarter", "dark")
# Floor applied before taking the log of a heatmap (DARK refinement).
_LOG_EPS = 1e-10
# With smoothing, a peak whose 3x3 stencil comes this close to an edge is decoded from the
# unsmoothed map (the edge padding of the smoothing pulls such a peak by up to ~1 heatmap px).
_BLUR_EDGE_MARGIN = 2


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
        >>> from sslkeypoint.heatmaps import render_gaussian_heatmaps
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

