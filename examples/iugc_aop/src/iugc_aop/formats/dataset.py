"""What reading an IUGC 2025 data set gives: the records, the videos and everything odd found."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sslkeypoint.data import KeypointRecord

__all__ = ["AOP_TOLERANCE_DEG", "DuplicateGroup", "IUGCDataset", "Problem"]

#: A labelled AoP further than this from the AoP of its landmarks is reported (degrees).
AOP_TOLERANCE_DEG = 0.01


@dataclass(frozen=True)
class Problem:
    """Something odd found while reading.

    Attributes:
        severity: ``"error"`` (data dropped), ``"warning"`` (kept but suspicious) or ``"info"``.
        kind: Short machine-readable tag, e.g. ``"aop_mismatch"``, ``"duplicate"``.
        message: Human-readable description.
        path: The file concerned, if any.

    Examples:
        >>> str(Problem("warning", "duplicate", "identical images testing/1.jpg, testing/7.jpg"))
        '[warning] duplicate: identical images testing/1.jpg, testing/7.jpg'
    """

    severity: Literal["error", "warning", "info"]
    kind: str
    message: str
    path: Path | None = None

    def __str__(self) -> str:
        return f"[{self.severity}] {self.kind}: {self.message}"


@dataclass(frozen=True)
class DuplicateGroup:
    """Labelled images with identical content (same SHA-256 of the file bytes).

    Attributes:
        digest: Hex SHA-256 of the file content.
        members: ``(split, filename)`` of every copy.
        max_landmark_px: Largest distance between the copies' labels of the same landmark (px).
        max_aop_deg: Largest difference between the copies' AoP labels (degrees).

    Examples:
        >>> DuplicateGroup("ab12", [("testing", "1.jpg"), ("testing", "7.jpg")], 4.5, 1.2).disagree
        True
    """

    digest: str
    members: list[tuple[str, str]]
    max_landmark_px: float
    max_aop_deg: float

    @property
    def disagree(self) -> bool:
        """Whether the copies carry different labels."""
        return self.max_landmark_px > 1e-6 or self.max_aop_deg > AOP_TOLERANCE_DEG


@dataclass
class IUGCDataset:
    """What :func:`read_iugc` (or :func:`~iugc_aop.formats.psfhs.read_psfhs`) found.

    Attributes:
        root: The data set's root folder.
        train: Labelled training images.
        validation: Validation images.
        testing: Testing images.
        sequences: Unlabelled videos: name (path relative to ``Unlabeled cases``, ``/``-separated)
            → frames sorted naturally by file name.
        references: ``ExampleN.jpg`` standard-plane reference images, sorted naturally.
        unlabelled: Unlabelled images without temporal order, e.g. the PSFHS images of the
            training groups (:func:`~iugc_aop.formats.psfhs.read_psfhs`); with no order they feed
            stage 1 (pre-training) only, never a temporal stage. Never an image of a validation
            or testing group. Empty for IUGC data, whose unlabelled frames are ``sequences``.
        problems: Everything odd that was found.
        duplicates: Groups of labelled images with identical content.
        report: Counts (images per split, image formats, sizes, ...).

    Each record has ``keypoints`` ``(3, 2)`` float64 in original pixels in the order PS1, PS2, FH1
    and ``meta`` with ``aop`` (the label, degrees, or ``None``), ``aop_landmarks`` (computed from
    the landmarks), ``split``, ``filename`` and ``row`` (1-based data row of the CSV).

    Examples:
        >>> ds = IUGCDataset(root=Path("IUGC2025"))
        >>> ds.num_frames, ds.split("testing")
        (0, [])
    """

    root: Path
    train: list[KeypointRecord] = field(default_factory=list)
    validation: list[KeypointRecord] = field(default_factory=list)
    testing: list[KeypointRecord] = field(default_factory=list)
    sequences: dict[str, list[Path]] = field(default_factory=dict)
    references: list[Path] = field(default_factory=list)
    unlabelled: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[DuplicateGroup] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[KeypointRecord]:
        """Records of ``"train"``, ``"validation"`` or ``"testing"``."""
        if name not in ("train", "validation", "testing"):
            raise ValueError(f"unknown split {name!r}; expected 'train', 'validation' or 'testing'")
        return list(getattr(self, name))

    @property
    def num_frames(self) -> int:
        """Number of unlabelled frames over all sequences."""
        return sum(len(v) for v in self.sequences.values())

    def summary(self) -> str:
        """A short human-readable report of what was found and every problem."""
        layout = self.report.get("layout", "")
        name = "PSFHS" if str(layout).startswith("psfhs") else "IUGC"
        lines = [f"{name} data at {self.root}" + (f" ({layout})" if name == "PSFHS" else "")]
        for split in ("train", "validation", "testing"):
            recs = self.split(split)
            if not recs:
                lines.append(f"  {split:<11} 0 labelled images")
                continue
            aop = np.array([r.meta["aop"] for r in recs if r.meta.get("aop") is not None])
            stats = (f"AoP {aop.mean():.1f}° (range {aop.min():.1f}–{aop.max():.1f}°)"
                     if aop.size else "no AoP labels")
            lines.append(f"  {split:<11} {len(recs)} labelled images, {stats}")
        lens = [len(v) for v in self.sequences.values()]
        if self.sequences or self.references or not self.unlabelled:
            lines.append(
                f"  unlabelled  {len(self.sequences)} sequences, {sum(lens)} frames"
                + (f" ({min(lens)}–{max(lens)} per sequence)" if lens else "")
                + f", {len(self.references)} reference images"
            )
        if self.unlabelled:
            lines.append(f"  unlabelled  {len(self.unlabelled)} unordered images "
                         "(no temporal order: stage 1 only)")
        groups = self.report.get("groups_per_split")
        if groups:
            lines.append("  groups      " + ", ".join(f"{k}: {v}" for k, v in groups.items())
                         + " (split by similarity group)")
        fmt = self.report.get("formats")
        if fmt:
            lines.append("  formats     " + ", ".join(f"{k}: {v}" for k, v in sorted(fmt.items())))
        sizes = self.report.get("sizes")
        if sizes:
            lines.append("  sizes       " + ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items())))
        if self.duplicates:
            n_dis = sum(g.disagree for g in self.duplicates)
            lines.append(f"  duplicates  {len(self.duplicates)} groups, {n_dis} with disagreeing labels")
        counts = Counter(p.severity for p in self.problems)
        lines.append(
            f"  problems    {counts.get('error', 0)} errors, {counts.get('warning', 0)} warnings, "
            f"{counts.get('info', 0)} notes"
        )
        lines.extend(f"    {p}" for p in self.problems)
        return "\n".join(lines)
