"""Synthetic transperineal ultrasound in the IUGC 2025 on-disk layout, with exact labels.

The generator works in two steps so that label statistics can be studied without drawing a single
pixel:

1. :func:`sample_labels` / :func:`sample_sequences` draw scene geometry: the pubic symphysis (an
   elongated ellipse whose major-axis ends are ``PS1`` and ``PS2``), the fetal skull (an ellipse
   placed in closed form so that its far-side tangent from ``PS1`` makes a target Angle of
   Progression, see :func:`iugc_aop.geometry.place_head`) and, for videos, smooth probe motion and
   head descent.
2. :func:`render_scene` draws one 512×512 frame of a scene with vectorised numpy: the fan of a
   curvilinear probe, tissue layers, the bright symphysis, the skull rim with the acoustic shadow
   beneath it (attenuation integrated along each beam), multiplicative speckle generated on the
   beam grid, depth attenuation with time-gain compensation and log compression.

:func:`write_synthetic_iugc` writes a whole data set in the real layout (see :mod:`iugc_aop.reader`),
so the real reader is what runs on it, plus ``synthetic_truth.json`` (ellipses, per-frame landmarks
and which videos are good standard-plane sequences) and ``contact_sheet.png``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from iugc_aop.geometry import (
    IUGC_RANGES,
    CoordinateRanges,
    Ellipse,
    Fan,
    rigid_transform,
)

__all__ = [
    "IMAGE_SIZE",
    "PRESETS",
    "SEQUENCE_KINDS",
    "AoPDistribution",
    "Scene",
    "SequenceSpec",
    "SynthConfig",
    "SynthResult",
    "load_truth",
    "render_scene",
    "sample_labels",
    "sample_scene",
    "sample_sequences",
    "write_synthetic_iugc",
]

#: Side of every synthetic frame (px); the IUGC 2025 images are 512×512.
IMAGE_SIZE = 512

#: Kinds of unlabelled videos. Only ``"standard"`` videos are good standard-plane sequences.
SEQUENCE_KINDS = ("standard", "no_symphysis", "tissue_only", "noisy")

_SPLIT_CODES = {"train": 1, "validation": 2, "testing": 3, "sequences": 4, "references": 5}
_TRUTH_NAME = "synthetic_truth.json"


def _phi(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@dataclass(frozen=True)
class AoPDistribution:
    """A normal distribution of the Angle of Progression truncated to ``[low, high]`` (degrees).

    Attributes:
        loc: Mean of the untruncated normal.
        scale: Standard deviation of the untruncated normal.
        low: Smallest value drawn.
        high: Largest value drawn.

    Examples:
        >>> round(AoPDistribution(92.0, 14.0, 53.0, 136.0).mean(), 1)
        92.1
    """

    loc: float
    scale: float
    low: float
    high: float

    def mean(self) -> float:
        """Mean of the truncated distribution (degrees)."""
        a, b = (self.low - self.loc) / self.scale, (self.high - self.loc) / self.scale
        return self.loc + self.scale * (_phi(a) - _phi(b)) / (_cdf(b) - _cdf(a))

    def sample(self, rng: np.random.Generator) -> float:
        """One value by rejection (degrees)."""
        while True:
            v = float(rng.normal(self.loc, self.scale))
            if self.low <= v <= self.high:
                return v


#: Training labels: mean ≈ 92°, range 53–136° (as the 300 labelled IUGC 2025 training images).
TRAIN_AOP = AoPDistribution(92.0, 14.0, 53.0, 136.0)
#: Validation labels: halfway between training and testing (mean ≈ 98°).
VALIDATION_AOP = AoPDistribution(97.5, 15.5, 60.0, 150.0)
#: Testing labels: shifted like the IUGC 2025 test set, mean ≈ 104.5°, range 71–163°.
TESTING_AOP = AoPDistribution(103.3, 17.0, 71.0, 163.0)


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and label distributions of a synthetic IUGC-format data set.

    Attributes:
        train: Labelled training images (``Training/Labeled cases``).
        validation: Validation images.
        testing: Testing images, duplicates not counted.
        sequences: Unlabelled videos under ``Training/Unlabeled cases``.
        frames: Frames per video.
        references: ``ExampleN.jpg`` standard-plane reference images.
        poor_fraction: Share of videos that are not good standard-plane sequences (no symphysis,
            tissue only, or very noisy).
        png_fraction: Share of files named ``.jpg`` that are PNG inside.
        test_duplicates: Testing images written twice under a second name, with the second copy's
            landmarks moved by a few pixels (as the real test set's duplicates disagree).
        jpeg_quality: JPEG quality of the ``.jpg`` files that are JPEG.
        train_aop: AoP distribution of the training images.
        validation_aop: AoP distribution of the validation images.
        testing_aop: AoP distribution of the testing images.
        fan: Field of view of the probe.
        ranges: Boxes that labelled landmarks must fall in.

    Examples:
        >>> SynthConfig.preset("smoke").train
        24
    """

    train: int = 300
    validation: int = 60
    testing: int = 100
    sequences: int = 20
    frames: int = 16
    references: int = 5
    poor_fraction: float = 0.3
    png_fraction: float = 0.2
    test_duplicates: int = 2
    jpeg_quality: int = 90
    train_aop: AoPDistribution = TRAIN_AOP
    validation_aop: AoPDistribution = VALIDATION_AOP
    testing_aop: AoPDistribution = TESTING_AOP
    fan: Fan = field(default_factory=Fan)
    ranges: CoordinateRanges = IUGC_RANGES

    def __post_init__(self) -> None:
        for name in ("train", "validation", "testing", "sequences", "frames", "references"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.sequences and self.frames < 2:
            raise ValueError(f"frames must be >= 2 per video, got {self.frames}")
        for name in ("poor_fraction", "png_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.test_duplicates <= self.testing:
            raise ValueError(
                f"test_duplicates must be in [0, testing={self.testing}], got {self.test_duplicates}"
            )

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SynthConfig:
        """A named size (``"smoke"``, ``"quick"`` or ``"full"``) with optional field overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown size {name!r}; expected one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


#: Named sizes. ``quick`` is the default; ``full`` matches the real set's labelled counts.
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        train=24, validation=8, testing=12, sequences=4, frames=6, references=2, test_duplicates=1
    ),
    "quick": {},
    "full": dict(
        train=300, validation=100, testing=501, sequences=100, frames=32, references=10,
        test_duplicates=5,
    ),
}


@dataclass(frozen=True)
class Scene:
    """Everything needed to draw one frame; landmarks and ellipses in image pixels.

    Attributes:
        ps1: Right end of the symphysis ``(2,)``, or ``None`` when none is drawn.
        ps2: Left end of the symphysis ``(2,)``, or ``None``.
        fh1: Far-side tangent point on the skull ``(2,)``, or ``None``.
        symphysis: Ellipse drawn for the symphysis; its major-axis ends are ``PS1`` and ``PS2``.
        head: Outer ellipse of the skull; ``FH1`` lies on it and ``PS1→FH1`` is tangent to it.
        skull_thickness: Thickness of the bright skull rim inside the outer ellipse (px).
        tissue_seed: Seed of the tissue layers and texture (shared by the frames of a video).
        noise_seed: Seed of this frame's speckle and electronic noise.
        speckle_seed: Seed of a speckle pattern shared by the frames of a video, or ``None``.
        body_rotation: Rotation of the tissue layers (radians) about ``(256, 256)``.
        body_shift: Shift ``(dx, dy)`` of the tissue layers (px).
        noise_level: Extra additive noise (0 normal; about 1 makes the anatomy hard to see).
        kind: One of :data:`SEQUENCE_KINDS`.
    """

    ps1: np.ndarray | None
    ps2: np.ndarray | None
    fh1: np.ndarray | None
    symphysis: Ellipse | None
    head: Ellipse | None
    skull_thickness: float
    tissue_seed: int
    noise_seed: int
    speckle_seed: int | None = None
    body_rotation: float = 0.0
    body_shift: tuple[float, float] = (0.0, 0.0)
    noise_level: float = 0.0
    kind: str = "standard"

    @property
    def keypoints(self) -> np.ndarray | None:
        """``(3, 2)`` float64 landmarks PS1, PS2, FH1 (px), or ``None`` when not all exist."""
        if self.ps1 is None or self.ps2 is None or self.fh1 is None:
            return None
        return np.stack([self.ps1, self.ps2, self.fh1]).astype(np.float64)

    @property
    def aop(self) -> float | None:
        """Angle of Progression of :attr:`keypoints` (degrees), or ``None``."""
        kp = self.keypoints
        return None if kp is None else _aop(kp)

    def truth(self) -> dict[str, Any]:
        """JSON-friendly record of the drawn geometry."""
        kp = self.keypoints
        return {
            "kind": self.kind,
            "ps1": None if self.ps1 is None else [float(v) for v in self.ps1],
            "ps2": None if self.ps2 is None else [float(v) for v in self.ps2],
            "fh1": None if self.fh1 is None else [float(v) for v in self.fh1],
            "aop": None if kp is None else _aop(kp),
            "head": None if self.head is None else self.head.as_dict(),
            "symphysis": None if self.symphysis is None else self.symphysis.as_dict(),
            "skull_thickness": self.skull_thickness,
        }


def _aop(kp: np.ndarray) -> float:
    """AoP of ``(3, 2)`` landmarks with the library definition (numpy path)."""
    from sslkeypoint.geometry import angle_of_progression

    return float(angle_of_progression(kp[0], kp[1], kp[2]))


# --------------------------------------------------------------------------------------------
# Label sampling
# --------------------------------------------------------------------------------------------

_PIVOT = np.array([IMAGE_SIZE / 2.0, IMAGE_SIZE / 2.0])


def _round_points(*pts: np.ndarray) -> list[np.ndarray]:
    # Landmarks are written with 4 decimals; labels are computed from the rounded values.
    return [np.round(np.asarray(p, dtype=np.float64), 4) for p in pts]


def _symphysis(ps1: np.ndarray, ps2: np.ndarray, width: float) -> Ellipse:
    mid = 0.5 * (ps1 + ps2)
    d = ps1 - ps2
    return Ellipse(
        float(mid[0]), float(mid[1]), float(np.hypot(*d)) / 2.0, width / 2.0,
        math.atan2(float(d[1]), float(d[0])),
    )


def _head_clear(
    ps1: np.ndarray, ps2: np.ndarray, sym: Ellipse, head: Ellipse, aop: float, thickness: float
) -> bool:
    """Head apart from the symphysis, and FH1 the maximiser of ∠PS2–PS1–q over the head."""
    if float(np.min(head.implicit(sym.points(90)))) < 1.08:
        return False
    q = head.points(1440)
    v, w = ps2 - ps1, q - ps1
    ang = np.degrees(np.arctan2(np.abs(v[0] * w[:, 1] - v[1] * w[:, 0]), w @ v))
    return bool(ang.max() <= aop + 1e-6) and head.b > 2.5 * thickness


@dataclass(frozen=True)
class _Geometry:
    ps1: np.ndarray
    theta_s: float
    length: float
    width: float
    distance: float
    a: float
    ratio: float
    phi: float
    thickness: float


def _draw_geometry(rng: np.random.Generator) -> _Geometry:
    # Shape statistics from the PSFH 2023 masks (256 px, scaled to 512 px): symphysis major axis
    # 86–146 px (5th–95th percentile, median 122; 80–156 px 1st–99th), head ellipse axes
    # 198–336 × 152–278 px (1st–99th: 178–361 × 130–286) with a minor/major ratio 0.69–0.94.
    return _Geometry(
        ps1=np.array([rng.normal(282.0, 34.0), rng.normal(72.0, 18.0)]),
        theta_s=math.radians(rng.normal(163.0, 9.0)),
        length=float(np.clip(rng.normal(120.0, 18.0), 80.0, 158.0)),
        width=float(rng.uniform(0.26, 0.40)),
        distance=float(rng.uniform(95.0, 260.0)),
        a=float(np.clip(rng.normal(138.0, 20.0), 99.0, 170.0)),
        ratio=float(rng.uniform(0.70, 0.95)),
        phi=math.radians(rng.uniform(-40.0, 40.0)),
        thickness=float(rng.uniform(7.0, 13.0)),
    )


def _build(
    g: _Geometry, aop: float, distance: float | None = None, phi: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Ellipse, Ellipse]:
    from iugc_aop.geometry import place_head

    ps1 = g.ps1
    ps2 = ps1 + g.length * np.array([math.cos(g.theta_s), math.sin(g.theta_s)])
    fh1, head = place_head(
        ps1, g.theta_s, aop, g.distance if distance is None else distance, g.a,
        float(np.clip(g.a * g.ratio, 70.0, 143.0)),
        g.phi if phi is None else phi,
    )
    return ps1, ps2, fh1, _symphysis(ps1, ps2, g.length * g.width), head


def sample_scene(
    rng: np.random.Generator,
    aop_distribution: AoPDistribution,
    *,
    fan: Fan | None = None,
    ranges: CoordinateRanges = IUGC_RANGES,
    max_tries: int = 400,
) -> Scene:
    """Draw one labelled standard-plane scene.

    A target AoP is drawn first; symphysis position, direction and length, head size and
    orientation and the tangent distance are then drawn until the head placed for that AoP keeps
    every landmark inside ``ranges`` and 10 px inside the fan, clear of the symphysis, with ``FH1``
    the far tangent point (the AoP is redrawn only if no geometry fits, which keeps the AoP
    distribution as specified).

    Args:
        rng: Random generator (consumed).
        aop_distribution: Distribution of the AoP (degrees).
        fan: Field of view; the default :class:`~iugc_aop.geometry.Fan`.
        ranges: Landmark coordinate boxes (px).
        max_tries: Geometry draws per AoP value.

    Returns:
        A scene whose landmarks are rounded to 1e-4 px (as written) and whose ``aop`` is computed
        from the rounded landmarks.

    Examples:
        >>> s = sample_scene(np.random.default_rng(0), TRAIN_AOP)
        >>> s.keypoints.shape, 53.0 <= s.aop <= 136.0
        ((3, 2), True)
    """
    fan = fan or Fan()
    while True:
        aop = aop_distribution.sample(rng)
        for _ in range(max_tries):
            g = _draw_geometry(rng)
            ps1, ps2, fh1, sym, head = _build(g, aop)
            if not ranges.check(ps1, ps2, fh1):
                continue
            if not bool(np.all(fan.contains(np.stack([ps1, ps2, fh1]), margin=10.0))):
                continue
            if not _head_clear(ps1, ps2, sym, head, aop, g.thickness):
                continue
            ps1, ps2, fh1 = _round_points(ps1, ps2, fh1)
            return Scene(
                ps1=ps1, ps2=ps2, fh1=fh1, symphysis=sym, head=head,
                skull_thickness=g.thickness,
                tissue_seed=int(rng.integers(2**31)), noise_seed=int(rng.integers(2**31)),
            )


def sample_labels(
    config: SynthConfig, seed: int = 0, splits: Sequence[str] = ("train", "validation", "testing")
) -> dict[str, list[Scene]]:
    """Draw the labelled scenes of each split without rendering anything.

    Item ``i`` of a split depends only on ``(seed, split, i)``, so a smaller data set is a prefix
    of a larger one with the same seed.

    Args:
        config: Sizes and distributions.
        seed: Seed of the whole data set.
        splits: Which of ``"train"``, ``"validation"``, ``"testing"`` to draw.

    Returns:
        ``{split: [Scene, ...]}`` (testing without its duplicates).

    Examples:
        >>> labels = sample_labels(SynthConfig.preset("smoke"), seed=1, splits=("train",))
        >>> len(labels["train"])
        24
    """
    dists = {"train": config.train_aop, "validation": config.validation_aop,
             "testing": config.testing_aop}
    out: dict[str, list[Scene]] = {}
    for split in splits:
        if split not in dists:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(dists)}")
        n = getattr(config, split)
        out[split] = [
            sample_scene(
                np.random.default_rng([seed, _SPLIT_CODES[split], i]), dists[split],
                fan=config.fan, ranges=config.ranges,
            )
            for i in range(n)
        ]
    return out


@dataclass(frozen=True)
class SequenceSpec:
    """One unlabelled video.

    Attributes:
        name: Folder name under ``Training/Unlabeled cases``.
        kind: One of :data:`SEQUENCE_KINDS`.
        frames: The scene of each frame, in time order.
    """

    name: str
    kind: str
    frames: list[Scene]

    @property
    def good(self) -> bool:
        """Whether this is a good standard-plane video (what screening should keep)."""
        return self.kind == "standard"


def _smoothstep(s: np.ndarray) -> np.ndarray:
    return s * s * (3.0 - 2.0 * s)


def _sequence(rng: np.random.Generator, kind: str, n_frames: int, fan: Fan) -> list[Scene]:
    s = _smoothstep(np.linspace(0.0, 1.0, n_frames))
    lin = np.linspace(0.0, 1.0, n_frames)
    while True:
        a0 = TRAIN_AOP.sample(rng) - 6.0
        rise = float(rng.uniform(4.0, 16.0))
        g = _draw_geometry(rng)
        d_dist = float(rng.uniform(-25.0, 25.0))
        d_phi = math.radians(float(rng.uniform(-8.0, 8.0)))
        rot_end = math.radians(float(rng.normal(0.0, 1.5)))
        shift_end = rng.normal(0.0, 5.0, size=2)
        wobble = rng.uniform(0.0, 2.0, size=2)
        phase = rng.uniform(0.0, 2.0 * math.pi, size=2)
        tissue_seed, speckle_seed = (int(v) for v in rng.integers(2**31, size=2))
        thickness = g.thickness
        frames: list[Scene] = []
        for f in range(n_frames):
            aop = a0 + rise * float(s[f])
            ps1, ps2, fh1, sym, head = _build(
                g, aop, distance=g.distance + d_dist * float(s[f]), phi=g.phi + d_phi * float(s[f])
            )
            if not _head_clear(ps1, ps2, sym, head, aop, thickness):
                break
            rot = rot_end * float(lin[f])
            shift = shift_end * float(lin[f]) + wobble * np.sin(2.0 * math.pi * lin[f] + phase)
            ps1, ps2, fh1 = (rigid_transform(p, rot, _PIVOT, shift) for p in (ps1, ps2, fh1))
            sym, head = (e.transformed(rot, _PIVOT, shift) for e in (sym, head))
            if not bool(np.all(fan.contains(np.stack([ps1, ps2, fh1]), margin=4.0))):
                break
            if kind == "standard" and not IUGC_RANGES.check(ps1, ps2, fh1):
                break
            ps1, ps2, fh1 = _round_points(ps1, ps2, fh1)
            has_sym = kind in ("standard", "noisy")
            frames.append(
                Scene(
                    ps1=ps1 if has_sym else None,
                    ps2=ps2 if has_sym else None,
                    fh1=fh1 if has_sym else None,
                    symphysis=sym if has_sym else None,
                    head=None if kind == "tissue_only" else head,
                    skull_thickness=thickness,
                    tissue_seed=tissue_seed,
                    noise_seed=int(rng.integers(2**31)),
                    speckle_seed=speckle_seed,
                    body_rotation=rot,
                    body_shift=(float(shift[0]), float(shift[1])),
                    noise_level=float(rng.uniform(0.35, 0.6)) if kind == "noisy" else 0.0,
                    kind=kind,
                )
            )
        if len(frames) == n_frames:
            return frames


def _sequence_kinds(config: SynthConfig, seed: int) -> list[str]:
    n = config.sequences
    n_poor = round(config.poor_fraction * n)
    poor = set(np.random.default_rng([seed, _SPLIT_CODES["sequences"], 10**6]).permutation(n)[:n_poor].tolist())
    kinds, k = [], 0
    for i in range(n):
        if i in poor:
            kinds.append(SEQUENCE_KINDS[1 + k % 3])
            k += 1
        else:
            kinds.append("standard")
    return kinds


def sample_sequences(config: SynthConfig, seed: int = 0) -> list[SequenceSpec]:
    """Draw the unlabelled videos: smooth probe motion and head descent (AoP rising).

    A share ``config.poor_fraction`` of videos (seeded choice) are not good standard-plane
    sequences: ``"no_symphysis"`` (head and tissue only), ``"tissue_only"`` or ``"noisy"`` (the
    standard plane under strong noise).

    Args:
        config: Sizes.
        seed: Seed of the whole data set.

    Returns:
        One :class:`SequenceSpec` per video, named ``video_1``, ``video_2``, ...

    Examples:
        >>> seqs = sample_sequences(SynthConfig.preset("smoke"), seed=0)
        >>> len(seqs), len(seqs[0].frames)
        (4, 6)
    """
    kinds = _sequence_kinds(config, seed)
    return [
        SequenceSpec(
            name=f"video_{i + 1}",
            kind=kind,
            frames=_sequence(
                np.random.default_rng([seed, _SPLIT_CODES["sequences"], i]), kind, config.frames,
                config.fan,
            ),
        )
        for i, kind in enumerate(kinds)
    ]


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

_NR, _NT = 320, 220  # beam grid: samples along each beam, beams across the fan


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


def _ellipse_distance(e: Ellipse, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
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
        fan: Field of view; the default :class:`~iugc_aop.geometry.Fan`.

    Returns:
        ``(512, 512)`` uint8 grayscale image; black outside the fan.

    Examples:
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
        dx, dy = x - _PIVOT[0] - shift[0], y - _PIVOT[1] - shift[1]
        xb = (c * dx - s * dy + _PIVOT[0]).astype(np.float32)
        yb = (s * dx + c * dy + _PIVOT[1]).astype(np.float32)
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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _encode(gray: np.ndarray, fmt: str, quality: int) -> bytes:
    img = Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2), mode="RGB")
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, format="PNG", compress_level=3)
    else:
        img.save(buf, format="JPEG", quality=quality, subsampling=0, optimize=False)
    return buf.getvalue()


@dataclass(frozen=True)
class _Job:
    path: str
    scene: Scene
    fmt: str
    quality: int
    fan: Fan


def _run_job(job: _Job) -> int:
    data = _encode(render_scene(job.scene, job.fan), job.fmt, job.quality)
    Path(job.path).write_bytes(data)
    return len(data)


def _formats(n: int, fraction: float, rng: np.random.Generator) -> list[str]:
    png = set(rng.permutation(n)[: round(fraction * n)].tolist())
    return ["PNG" if i in png else "JPEG" for i in range(n)]


def _point(p: np.ndarray) -> str:
    return f"({p[0]:.4f}, {p[1]:.4f})"


@dataclass(frozen=True)
class SynthResult:
    """What :func:`write_synthetic_iugc` wrote.

    Attributes:
        root: The data set's root folder.
        images: Number of image files written.
        png: How many of them are PNG inside.
        seconds: Wall time of the whole run.
        truth_path: The ``synthetic_truth.json`` file.
        contact_sheet: The contact sheet, or ``None`` when not drawn.
    """

    root: Path
    images: int
    png: int
    seconds: float
    truth_path: Path
    contact_sheet: Path | None


def _iter_jobs(jobs: list[_Job], workers: int) -> Iterator[int]:
    if workers <= 1:
        for job in jobs:
            yield _run_job(job)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield from pool.map(_run_job, jobs, chunksize=4)


def write_synthetic_iugc(
    out: str | os.PathLike[str],
    config: SynthConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    *,
    workers: int = 1,
    contact_sheet: bool = True,
) -> SynthResult:
    """Write a synthetic data set in the IUGC 2025 layout.

    Layout written (``N`` counts from ``config``; every image is named ``.jpg``, a seeded share
    ``config.png_fraction`` is PNG inside)::

        out/Training/Labeled cases/label.csv          Filename, PS1, PS2, FH1, AOP
        out/Training/Labeled cases/1.jpg ...
        out/Training/Unlabeled cases/Example1.jpg ...  standard-plane references
        out/Training/Unlabeled cases/video_1/frame_1.jpg ...
        out/Validation/landmarks_data.csv              Filename, PS1, PS2, AOP Tangency
        out/Validation/aop_results.csv                 Filename, AOP
        out/Validation/1.jpg ...
        out/Testing/...                                as Validation, with duplicates
        out/synthetic_truth.json                       drawn geometry (not in the real layout)
        out/contact_sheet.png

    Points are written as ``"(x, y)"`` with 4 decimals, the AoP with 6 decimals, computed with
    :func:`sslkeypoint.geometry.angle_of_progression` from the written points. The same seed
    gives byte-identical files.

    Args:
        out: Root folder (created; existing files of the same names are overwritten).
        config: Sizes and distributions; the ``quick`` preset when ``None``.
        seed: Seed of the whole data set.
        progress: Show a progress bar.
        workers: Processes that render in parallel (1 renders in this process).
        contact_sheet: Also draw ``contact_sheet.png``.

    Returns:
        A :class:`SynthResult`.
    """
    start = time.perf_counter()
    config = config or SynthConfig()
    root = Path(out)
    (root / _TRUTH_NAME).unlink(missing_ok=True)
    labelled_dir = root / "Training" / "Labeled cases"
    unlabelled_dir = root / "Training" / "Unlabeled cases"
    for d in (labelled_dir, unlabelled_dir, root / "Validation", root / "Testing"):
        d.mkdir(parents=True, exist_ok=True)

    labels = sample_labels(config, seed)
    sequences = sample_sequences(config, seed)
    fmt_rng = np.random.default_rng([seed, 99])
    jobs: list[_Job] = []
    truth: dict[str, Any] = {
        "generator": "iugc_aop.synth",
        "format_version": 1,
        "seed": seed,
        "config": config.to_dict(),
        "landmark_order": ["PS1", "PS2", "FH1"],
        "labelled": {},
        "sequences": {},
        "references": [],
    }

    def add(path: Path, scene: Scene, fmt: str) -> dict[str, Any]:
        jobs.append(_Job(str(path), scene, fmt, config.jpeg_quality, config.fan))
        return {"file": path.relative_to(root).as_posix(), "format": fmt, **scene.truth()}

    # Labelled splits.
    split_dirs = {"train": labelled_dir, "validation": root / "Validation",
                  "testing": root / "Testing"}
    rows: dict[str, list[tuple[str, np.ndarray, float]]] = {}
    for split, scenes in labels.items():
        n_total = len(scenes) + (config.test_duplicates if split == "testing" else 0)
        formats = _formats(n_total, config.png_fraction, fmt_rng)
        entries, split_rows = [], []
        for i, scene in enumerate(scenes):
            name = f"{i + 1}.jpg"
            entry = add(split_dirs[split] / name, scene, formats[i])
            entry.update(filename=name, duplicate_of=None)
            entries.append(entry)
            kp = scene.keypoints
            assert kp is not None
            split_rows.append((name, kp, _aop(kp)))
        if split == "testing" and config.test_duplicates:
            dup_rng = np.random.default_rng([seed, _SPLIT_CODES["testing"], 10**6])
            for k, src in enumerate(dup_rng.permutation(len(scenes))[: config.test_duplicates]):
                name = f"{len(scenes) + k + 1}.jpg"
                scene = scenes[int(src)]
                kp0 = scene.keypoints
                assert kp0 is not None
                # A second reading of the same image: every landmark moved by up to 6 px.
                kp = np.round(kp0 + dup_rng.uniform(-6.0, 6.0, size=(3, 2)), 4)
                jobs.append(_Job(str(split_dirs[split] / name), scene, formats[int(src)],
                                 config.jpeg_quality, config.fan))
                entries.append({
                    "file": (split_dirs[split] / name).relative_to(root).as_posix(),
                    "format": formats[int(src)], **scene.truth(),
                    "filename": name, "duplicate_of": f"{int(src) + 1}.jpg",
                    "ps1": kp[0].tolist(), "ps2": kp[1].tolist(), "fh1": kp[2].tolist(),
                    "aop": _aop(kp), "relabelled": True,
                })
                split_rows.append((name, kp, _aop(kp)))
        truth["labelled"][split] = entries
        rows[split] = split_rows

    # References and videos.
    ref_formats = _formats(config.references, config.png_fraction, fmt_rng)
    for i in range(config.references):
        scene = sample_scene(np.random.default_rng([seed, _SPLIT_CODES["references"], i]),
                             config.train_aop, fan=config.fan, ranges=config.ranges)
        truth["references"].append(add(unlabelled_dir / f"Example{i + 1}.jpg", scene, ref_formats[i]))
    n_frames = sum(len(s.frames) for s in sequences)
    frame_formats = iter(_formats(n_frames, config.png_fraction, fmt_rng))
    for seq in sequences:
        folder = unlabelled_dir / seq.name
        folder.mkdir(exist_ok=True)
        truth["sequences"][seq.name] = {
            "good": seq.good,
            "kind": seq.kind,
            "frames": [add(folder / f"frame_{f + 1}.jpg", scene, next(frame_formats))
                       for f, scene in enumerate(seq.frames)],
        }

    # CSV files in the real layout.
    _write_csv(labelled_dir / "label.csv", ["Filename", "PS1", "PS2", "FH1", "AOP"],
               [[n, _point(kp[0]), _point(kp[1]), _point(kp[2]), f"{a:.6f}"]
                for n, kp, a in rows["train"]])
    for split, folder in (("validation", root / "Validation"), ("testing", root / "Testing")):
        _write_csv(folder / "landmarks_data.csv", ["Filename", "PS1", "PS2", "AOP Tangency"],
                   [[n, _point(kp[0]), _point(kp[1]), _point(kp[2])] for n, kp, _ in rows[split]])
        _write_csv(folder / "aop_results.csv", ["Filename", "AOP"],
                   [[n, f"{a:.6f}"] for n, _, a in rows[split]])

    n_png = 0
    bar = tqdm(total=len(jobs), desc="synth", unit="img", disable=not progress)
    for job, _ in zip(jobs, _iter_jobs(jobs, workers)):
        n_png += job.fmt == "PNG"
        bar.update(1)
    bar.close()
    # Written last: its presence marks a complete data set.
    truth_path = root / _TRUTH_NAME
    truth_path.write_text(json.dumps(truth, indent=1) + "\n")

    sheet = None
    if contact_sheet:
        from iugc_aop.plotting import contact_sheet as draw_sheet

        sheet = draw_sheet(root, root / "contact_sheet.png")
    return SynthResult(root, len(jobs), n_png, time.perf_counter() - start, truth_path, sheet)


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def load_truth(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``synthetic_truth.json`` of a synthetic data set, or ``None`` for real data."""
    path = Path(root) / _TRUTH_NAME
    return json.loads(path.read_text()) if path.is_file() else None
