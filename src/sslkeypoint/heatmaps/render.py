"""Gaussian heatmap targets rendered at sub-pixel centres.

Each target is a peak-1 Gaussian, the outer product of two exact 1-D factors that are exactly 0
far from the centre, so near its peak the log of a map is an exact quadratic (which DARK decoding
in :mod:`~sslkeypoint.heatmaps.decode` inverts exactly).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from sslkeypoint._utils import size_pair

__all__ = ["render_gaussian_heatmaps"]

# A 1-D Gaussian factor is set to exactly 0 where its exponent is below -_EXP_CUTOFF, so the 2-D
# map is 0 beyond ~8.9 sigma from the centre: the product of two factors never underflows into
# float32 denormals (which make exp and the product an order of magnitude slower on CPU).
_EXP_CUTOFF = 40.0
_EXP_FLOOR = math.exp(-_EXP_CUTOFF) * (1 + 1e-3)


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
    quadratic that :func:`~sslkeypoint.heatmaps.decode.decode_heatmaps` inverts exactly.

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

