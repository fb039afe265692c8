"""Rendering of a synthetic transperineal frame with vectorised numpy.

:func:`render_scene` draws one 512×512 frame of a :class:`~iugc_aop.synth.labels.Scene`: the fan
of a curvilinear probe, tissue layers, the bright symphysis, the skull rim with the acoustic
shadow beneath it (attenuation integrated along each beam), multiplicative speckle generated on
the beam grid (:data:`BEAM_GRID`), depth attenuation with time-gain compensation and log
compression. The per-fan lookup tables (pixel ↔ beam grid) are built once per :class:`Fan`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from iugc_aop.synth.labels import Scene
from iugc_aop.synth.scene import IMAGE_SIZE, PIVOT, DrawnEllipse, Fan

__all__ = ["BEAM_GRID", "render_scene"]

#: Beam grid of the speckle and attenuation fields: samples along each beam, beams across the fan.
BEAM_GRID = (320, 220)

_NR, _NT = BEAM_GRID


@dataclass(frozen=True)
class _FanTables:
    x: np.ndarray  # (H, W) pixel-centre x
    y: np.ndarray
    r: np.ndarray  # (H, W) radius from the apex
    bx: np.ndarray  # (H, W) unit beam direction
    by: np.ndarray
    idx: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # flat beam-grid indices
    w: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # bilinear weights
    wnorm: np.ndarray  # (H, W) 1/sqrt(sum w²): unit variance for interpolated white noise
    mask: np.ndarray  # (H, W) soft fan mask
    xp: np.ndarray  # (NR, NT) beam-grid sample x
    yp: np.ndarray
    rp: np.ndarray  # (NR,) beam-grid radii
    dr: float


@functools.lru_cache(maxsize=4)
def _fan_tables(fan: Fan) -> _FanTables:
    n = IMAGE_SIZE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    dx, dy = xx - fan.apex_x, yy - fan.apex_y
    r = np.hypot(dx, dy)
    th = np.arctan2(dx, dy)
    half = math.radians(fan.half_angle_deg)
    fr = np.clip((r - fan.r_min) / (fan.r_max - fan.r_min) * (_NR - 1), 0, _NR - 1.001)
    ft = np.clip((th + half) / (2 * half) * (_NT - 1), 0, _NT - 1.001)
    i0, j0 = np.floor(fr).astype(np.intp), np.floor(ft).astype(np.intp)
    u, v = (fr - i0).astype(np.float32), (ft - j0).astype(np.float32)
    base = i0 * _NT + j0
    idx = (base, base + 1, base + _NT, base + _NT + 1)
    w = ((1 - u) * (1 - v), (1 - u) * v, u * (1 - v), u * v)
    wnorm = 1.0 / np.sqrt(sum(wi * wi for wi in w))
    margin = np.minimum(np.minimum(r - fan.r_min, fan.r_max - r), r * np.sin(half - np.abs(th)))
    mask = np.clip(margin + 0.5, 0.0, 1.0).astype(np.float32)
    rp = np.linspace(fan.r_min, fan.r_max, _NR)
    tp = np.linspace(-half, half, _NT)
    xp = (fan.apex_x + rp[:, None] * np.sin(tp)[None, :]).astype(np.float32)
    yp = (fan.apex_y + rp[:, None] * np.cos(tp)[None, :]).astype(np.float32)
    return _FanTables(
        x=xx, y=yy, r=r.astype(np.float32), bx=(dx / np.maximum(r, 1e-6)).astype(np.float32),
        by=(dy / np.maximum(r, 1e-6)).astype(np.float32),
        idx=idx, w=w, wnorm=wnorm.astype(np.float32), mask=mask, xp=xp, yp=yp,
        rp=rp.astype(np.float32), dr=float(rp[1] - rp[0]),
    )


def _to_image(t: _FanTables, polar: np.ndarray) -> np.ndarray:
    """Bilinear scan conversion of beam-grid fields ``(NR, NT, C)`` to the image ``(H, W, C)``."""
    p = polar.reshape(_NR * _NT, -1).T
    out = [sum(pc[t.idx[k]] * t.w[k] for k in range(4)) for pc in p]
    return np.stack(out, axis=-1)


def _grid_weights(
    shape: tuple[int, int], x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Flat indices and bilinear weights of image coordinates in a coarse grid spanning the image."""
    gh, gw = shape
    fx = np.clip(x * np.float32((gw - 1) / (IMAGE_SIZE - 1)), 0, gw - 1.001)
    fy = np.clip(y * np.float32((gh - 1) / (IMAGE_SIZE - 1)), 0, gh - 1.001)
    x0, y0 = fx.astype(np.intp), fy.astype(np.intp)
    u, v = fx - x0, fy - y0
    return y0 * gw + x0, ((1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v)


@functools.lru_cache(maxsize=8)
def _interp_1d(n_grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Left grid node and weight of the right node for each pixel centre along one axis."""
    f = np.clip(np.arange(IMAGE_SIZE) * ((n_grid - 1) / (IMAGE_SIZE - 1)), 0, n_grid - 1.001)
    i0 = f.astype(np.intp)
    return i0, (f - i0).astype(np.float32)


def _grid_sample(grid: np.ndarray, x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray:
    """Bilinear sample of a coarse grid spanning the image at image coordinates ``x, y``.

    ``x = y = None`` samples at every pixel centre (separable: two small matrix products).
    """
    gh, gw = grid.shape
    if x is None or y is None:
        (iy, fy), (ix, fx) = _interp_1d(gh), _interp_1d(gw)
        rows = grid[iy] * (1 - fy)[:, None] + grid[iy + 1] * fy[:, None]  # (H, gw)
        return rows[:, ix] * (1 - fx) + rows[:, ix + 1] * fx
    b, w = _grid_weights((gh, gw), x, y)
    g = grid.ravel()
    return g[b] * w[0] + g[b + 1] * w[1] + g[b + gw] * w[2] + g[b + gw + 1] * w[3]


def _sig(z: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * z)


def _ellipse_distance(e: DrawnEllipse, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Approximate signed distance to the ellipse (px, negative inside), and local coords."""
    c, s = math.cos(e.angle), math.sin(e.angle)
    dx, dy = x - np.float32(e.cx), y - np.float32(e.cy)
    p = dx * np.float32(c) + dy * np.float32(s)
    q = -dx * np.float32(s) + dy * np.float32(c)
    rho = np.sqrt((p / e.a) ** 2 + (q / e.b) ** 2)
    gp, gq = p / e.a**2, q / e.b**2
    grad = np.sqrt(gp * gp + gq * gq) / np.maximum(rho, 1e-6)
    d = (rho - 1.0) / np.maximum(grad, 1e-6)
    return d, p, q, gp, gq


@dataclass(frozen=True)
class _Tissue:
    tex: np.ndarray
    fine: np.ndarray
    bands: list[tuple[float, float, float, float, float, float, float, float]]
    level: float
    head_tex: np.ndarray


def _tissue(seed: int) -> _Tissue:
    rng = np.random.default_rng(seed)
    bands = []
    for k in range(int(rng.integers(4, 7))):
        if k < 2:  # superficial layers, curved like the skin under the probe
            y0 = float(rng.uniform(18.0, 90.0))
            curv = -float(rng.uniform(0.4, 1.1)) / (2.0 * (y0 + 150.0))
        else:
            y0 = float(rng.uniform(90.0, 470.0))
            curv = float(rng.uniform(-1.0e-3, 1.2e-3))
        bands.append((
            y0, curv, float(rng.uniform(2.0, 6.0)), float(rng.uniform(0.35, 0.9)),
            float(rng.uniform(-40.0, 180.0)), float(rng.uniform(330.0, 560.0)),
            float(rng.uniform(0.0, 6.0)), float(rng.uniform(0.0, 2.0 * math.pi)),
        ))
    return _Tissue(
        tex=rng.standard_normal((9, 9)).astype(np.float32),
        fine=rng.standard_normal((40, 40)).astype(np.float32),
        bands=bands,
        level=float(rng.uniform(0.75, 1.15)),
        head_tex=rng.standard_normal((24, 24)).astype(np.float32),
    )


def _background(ts: _Tissue, xb: np.ndarray, yb: np.ndarray, identity: bool) -> np.ndarray:
    gx, gy = (None, None) if identity else (xb, yb)
    refl = 0.17 * ts.level * np.exp(0.45 * _grid_sample(ts.tex, gx, gy)
                                    + 0.3 * _grid_sample(ts.fine, gx, gy))
    for y0, curv, width, amp, xa, xz, wav_amp, wav_phase in ts.bands:
        yc = y0 + curv * (xb - 256.0) ** 2 + wav_amp * np.sin(xb / 60.0 + wav_phase)
        lateral = _sig((xb - xa) / 12.0) * _sig((xz - xb) / 12.0)
        refl = refl + amp * np.exp(-0.5 * ((yb - yc) / width) ** 2) * lateral
    return refl.astype(np.float32)


def render_scene(scene: Scene, fan: Fan | None = None) -> np.ndarray:
    """Draw one transperineal frame of a scene.

    Args:
        scene: What to draw (landmarks and ellipses in image pixels).
        fan: Field of view; the default :class:`~iugc_aop.synth.scene.Fan`.

    Returns:
        ``(512, 512)`` uint8 grayscale image; black outside the fan.

    Examples:
        >>> from iugc_aop.synth.labels import TRAIN_AOP, sample_scene
        >>> img = render_scene(sample_scene(np.random.default_rng(0), TRAIN_AOP))
        >>> img.shape, img.dtype, int(img[0, 0])
        ((512, 512), dtype('uint8'), 0)
    """
    t = _fan_tables(fan or Fan())
    rng = np.random.default_rng(scene.noise_seed)
    ts = _tissue(scene.tissue_seed)
    x, y = t.x, t.y
    # Tissue coordinates: the inverse of the body motion.
    shift = np.asarray(scene.body_shift, dtype=np.float32)
    identity = not (scene.body_rotation or shift.any())
    if not identity:
        c, s = math.cos(-scene.body_rotation), math.sin(-scene.body_rotation)
        dx, dy = x - PIVOT[0] - shift[0], y - PIVOT[1] - shift[1]
        xb = (c * dx - s * dy + PIVOT[0]).astype(np.float32)
        yb = (s * dx + c * dy + PIVOT[1]).astype(np.float32)
    else:
        xb, yb = x, y
    refl = _background(ts, xb, yb, identity)
    att = np.full(t.xp.shape, 0.0022, dtype=np.float32)

    if scene.head is not None:
        h, th = scene.head, scene.skull_thickness
        d, p, q, gp, gq = _ellipse_distance(h, x, y)
        inside = _sig(-d / 0.8)
        rim = _sig(-d / 0.7) * _sig((d + th) / 1.6)
        interior = _sig(-(d + th) / 1.6)
        # Specular: brightest where the beam meets the skull head-on.
        ca, sa = math.cos(h.angle), math.sin(h.angle)
        nx, ny = gp * ca - gq * sa, gp * sa + gq * ca
        cos_inc = np.abs(nx * t.bx + ny * t.by) / np.maximum(np.hypot(nx, ny), 1e-9)
        brain = 0.2 * ts.level * np.exp(0.5 * _grid_sample(ts.head_tex, None, None))
        midline = 0.35 * np.exp(-0.5 * (q / 1.6) ** 2) * _sig((0.75 * h.a - np.abs(p)) / 6.0)
        refl = (refl * (1.0 - inside) + (brain + midline) * interior
                + 2.0 * (0.6 + 0.4 * cos_inc) * rim)
        dp, *_ = _ellipse_distance(h, t.xp, t.yp)
        att += 0.05 * _sig(-dp / 0.7) * _sig((dp + th) / 1.6) + 0.002 * _sig(-(dp + th))

    if scene.symphysis is not None:
        e = scene.symphysis
        d, *_ = _ellipse_distance(e, x, y)
        inside = _sig(-d / 0.8)
        outline = np.exp(-0.5 * (d / 1.6) ** 2)
        refl = refl * (1.0 - inside) + (1.25 * inside + 0.9 * outline) * ts.level
        dp, *_ = _ellipse_distance(e, t.xp, t.yp)
        att += 0.03 * _sig(-dp / 0.8)

    # Transmission along each beam, with partial time-gain compensation.
    trans = np.exp(-np.cumsum(att, axis=0) * t.dr)
    depth = t.rp - t.rp[0]
    gain = np.exp(float(rng.uniform(0.55, 0.8)) * 0.0022 * depth)
    beam = trans * gain[:, None] + (0.9 * np.exp(-depth / 5.0) + 0.25 * np.exp(-depth / 25.0))[:, None]

    # Speckle: circular complex Gaussian on the beam grid (optionally shared by a video), and
    # electronic noise, amplified by the gain with depth; the "noisy" kind adds much more.
    z = rng.standard_normal((4, _NR, _NT), dtype=np.float32)
    if scene.speckle_seed is not None:
        shared = np.random.default_rng(scene.speckle_seed).standard_normal(
            (2, _NR, _NT), dtype=np.float32)
        z[:2] = np.float32(math.sqrt(0.5)) * (z[:2] + shared)
    noise_amp = 0.03 + scene.noise_level
    noise = noise_amp * np.abs(z[2] + 1j * z[3]) * gain[:, None]
    fields = _to_image(t, np.stack([z[0], z[1], beam, noise], axis=-1).astype(np.float32))
    # |z| is Rayleigh with unit-variance components: mean sqrt(pi/2); normalised to mean 1.
    speck = np.hypot(fields[..., 0], fields[..., 1]) * (t.wnorm / np.float32(math.sqrt(math.pi / 2)))
    intensity = refl * speck * fields[..., 2] + fields[..., 3]
    if scene.noise_level:
        intensity = intensity * np.float32(0.7)

    out = np.log1p(6.0 * intensity) / math.log1p(6.0 * 2.2)
    out = np.clip(out * t.mask * 255.0, 0.0, 255.0)
    return np.rint(out).astype(np.uint8)
