"""Labels of synthetic IUGC data: AoP distributions, data set sizes, scenes and their sampling.

Label statistics can be studied without drawing a single pixel: :func:`sample_labels` and
:func:`sample_sequences` draw scene geometry only — the pubic symphysis (an elongated ellipse
whose major-axis ends are ``PS1`` and ``PS2``), the fetal skull (an ellipse placed in closed form
so that its far-side tangent from ``PS1`` makes a target Angle of Progression, see
:func:`iugc_aop.synth.scene.place_head`) and, for videos, smooth probe motion and head descent.
:func:`iugc_aop.synth.render.render_scene` draws a :class:`Scene`.

Every item is drawn from its own seed ``(seed, part, index)`` (:data:`SPLIT_CODES`), so a
smaller data set is a prefix of a larger one with the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from iugc_aop.formats.iugc import POINT_DECIMALS
from iugc_aop.landmarks import aop_degrees
from iugc_aop.synth.scene import (
    IUGC_RANGES,
    PIVOT,
    CoordinateRanges,
    DrawnEllipse,
    Fan,
    place_head,
    rigid_transform,
)

__all__ = [
    "PRESETS",
    "SEQUENCE_KINDS",
    "SPLIT_CODES",
    "TESTING_AOP",
    "TRAIN_AOP",
    "VALIDATION_AOP",
    "AoPDistribution",
    "Scene",
    "SequenceSpec",
    "SynthConfig",
    "sample_duplicates",
    "sample_labels",
    "sample_references",
    "sample_scene",
    "sample_sequences",
]

#: Kinds of unlabelled videos. Only ``"standard"`` videos are good standard-plane sequences.
SEQUENCE_KINDS = ("standard", "no_symphysis", "tissue_only", "noisy")

#: Seed stream of each part of a data set: item ``i`` of part ``p`` draws from
#: ``numpy.random.default_rng([seed, SPLIT_CODES[p], i])``.
SPLIT_CODES = {"train": 1, "validation": 2, "testing": 3, "sequences": 4, "references": 5}


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
            Both are :class:`~iugc_aop.synth.scene.DrawnEllipse` (``.ellipse`` is the
            :class:`sslkeypoint.geometry.Ellipse`).
        skull_thickness: Thickness of the bright skull rim inside the outer ellipse (px).
        tissue_seed: Seed of the tissue layers and texture (shared by the frames of a video).
        noise_seed: Seed of this frame's speckle and electronic noise.
        speckle_seed: Seed of a speckle pattern shared by the frames of a video, or ``None``.
        body_rotation: Rotation of the tissue layers (radians) about ``(256, 256)``.
        body_shift: Shift ``(dx, dy)`` of the tissue layers (px).
        noise_level: Extra additive noise (0 normal; about 1 makes the anatomy hard to see).
        kind: One of :data:`SEQUENCE_KINDS`.

    Examples:
        >>> scene = sample_scene(np.random.default_rng(0), TRAIN_AOP)
        >>> scene.keypoints.shape, sorted(scene.truth())[:3]
        ((3, 2), ['aop', 'fh1', 'head'])
    """

    ps1: np.ndarray | None
    ps2: np.ndarray | None
    fh1: np.ndarray | None
    symphysis: DrawnEllipse | None
    head: DrawnEllipse | None
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
        return None if kp is None else aop_degrees(kp)

    def truth(self) -> dict[str, Any]:
        """JSON-friendly record of the drawn geometry."""
        kp = self.keypoints
        return {
            "kind": self.kind,
            "ps1": None if self.ps1 is None else [float(v) for v in self.ps1],
            "ps2": None if self.ps2 is None else [float(v) for v in self.ps2],
            "fh1": None if self.fh1 is None else [float(v) for v in self.fh1],
            "aop": None if kp is None else aop_degrees(kp),
            "head": None if self.head is None else self.head.as_dict(),
            "symphysis": None if self.symphysis is None else self.symphysis.as_dict(),
            "skull_thickness": self.skull_thickness,
        }


# --------------------------------------------------------------------------------------------
# Label sampling
# --------------------------------------------------------------------------------------------


def _round_points(*pts: np.ndarray) -> list[np.ndarray]:
    # Landmarks are rounded as they are written; labels are computed from the rounded values.
    return [np.round(np.asarray(p, dtype=np.float64), POINT_DECIMALS) for p in pts]


def _symphysis(ps1: np.ndarray, ps2: np.ndarray, width: float) -> DrawnEllipse:
    mid = 0.5 * (ps1 + ps2)
    d = ps1 - ps2
    return DrawnEllipse(
        float(mid[0]), float(mid[1]), float(np.hypot(*d)) / 2.0, width / 2.0,
        math.atan2(float(d[1]), float(d[0])),
    )


def _head_clear(
    ps1: np.ndarray, ps2: np.ndarray, sym: DrawnEllipse, head: DrawnEllipse, aop: float,
    thickness: float,
) -> bool:
    """Head apart from the symphysis, and FH1 the maximiser of ∠PS2–PS1–q over the head."""
    if float(np.min(head.ellipse.implicit(sym.ellipse.points(90)))) < 1.08:
        return False
    q = head.ellipse.points(1440)
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, DrawnEllipse, DrawnEllipse]:
    ps1 = g.ps1
    ps2 = ps1 + g.length * np.array([math.cos(g.theta_s), math.sin(g.theta_s)])
    b = float(np.clip(g.a * g.ratio, 70.0, 143.0))
    phi = g.phi if phi is None else phi
    fh1, head = place_head(ps1, g.theta_s, aop, g.distance if distance is None else distance,
                           g.a, b, phi)
    drawn = DrawnEllipse(head.center[0], head.center[1], g.a, b, phi)
    return ps1, ps2, fh1, _symphysis(ps1, ps2, g.length * g.width), drawn


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
        fan: Field of view; the default :class:`~iugc_aop.synth.scene.Fan`.
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
                np.random.default_rng([seed, SPLIT_CODES[split], i]), dists[split],
                fan=config.fan, ranges=config.ranges,
            )
            for i in range(n)
        ]
    return out


def sample_references(config: SynthConfig, seed: int = 0) -> list[Scene]:
    """Draw the ``ExampleN.jpg`` standard-plane reference scenes (training AoP distribution).

    Args:
        config: Sizes and distributions.
        seed: Seed of the whole data set.

    Returns:
        ``config.references`` scenes.

    Examples:
        >>> len(sample_references(SynthConfig.preset("smoke"), seed=0))
        2
    """
    return [
        sample_scene(np.random.default_rng([seed, SPLIT_CODES["references"], i]),
                     config.train_aop, fan=config.fan, ranges=config.ranges)
        for i in range(config.references)
    ]


def sample_duplicates(
    config: SynthConfig, seed: int, testing: Sequence[Scene]
) -> list[tuple[int, np.ndarray]]:
    """Choose the testing images written twice, and the second reading of their landmarks.

    As in the real test set, a copy's labels disagree with the original's: every landmark is
    moved by up to 6 px in ``x`` and ``y`` (then rounded to 1e-4 px, as written).

    Args:
        config: Sizes (``config.test_duplicates`` copies).
        seed: Seed of the whole data set.
        testing: The testing scenes (:func:`sample_labels`).

    Returns:
        ``(index of the copied testing scene, (3, 2) landmarks of the copy in px)`` per copy.

    Raises:
        ValueError: If a chosen scene has no landmarks.

    Examples:
        >>> config = SynthConfig.preset("smoke")
        >>> testing = sample_labels(config, seed=0, splits=("testing",))["testing"]
        >>> [(i, kp.shape) for i, kp in sample_duplicates(config, 0, testing)]
        [(3, (3, 2))]
    """
    if not config.test_duplicates:
        return []
    rng = np.random.default_rng([seed, SPLIT_CODES["testing"], 10**6])
    out = []
    for src in rng.permutation(len(testing))[: config.test_duplicates]:
        kp = testing[int(src)].keypoints
        if kp is None:
            raise ValueError(f"testing scene {int(src)} has no landmarks to copy")
        out.append((int(src), np.round(kp + rng.uniform(-6.0, 6.0, size=(3, 2)), POINT_DECIMALS)))
    return out


@dataclass(frozen=True)
class SequenceSpec:
    """One unlabelled video.

    Attributes:
        name: Folder name under ``Training/Unlabeled cases``.
        kind: One of :data:`SEQUENCE_KINDS`.
        frames: The scene of each frame, in time order.

    Examples:
        >>> video = sample_sequences(SynthConfig.preset("smoke"), seed=0)[0]
        >>> video.name, video.kind, video.good, len(video.frames)
        ('video_1', 'no_symphysis', False, 6)
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
            ps1, ps2, fh1 = (rigid_transform(p, rot, PIVOT, shift) for p in (ps1, ps2, fh1))
            sym, head = (e.transformed(rot, PIVOT, shift) for e in (sym, head))
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
    rng = np.random.default_rng([seed, SPLIT_CODES["sequences"], 10**6])
    poor = set(rng.permutation(n)[:n_poor].tolist())
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
                np.random.default_rng([seed, SPLIT_CODES["sequences"], i]), kind, config.frames,
                config.fan,
            ),
        )
        for i, kind in enumerate(kinds)
    ]
