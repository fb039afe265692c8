"""Pseudo-labels of unlabelled images: a teacher's predictions, and the filters a kept one must pass.

The pure-torch parts of pseudo-label self-training (:class:`~sslkeypoint.methods.PseudoLabelMethod`,
run by :mod:`sslkeypoint.recipes.self_training`):

1. :func:`predict_pseudo_labels` — a network predicts each image in several augmented views
   (keypoint-aware, no mirroring); every view's landmarks are mapped back through the inverse of
   its transform and averaged: the pseudo-label, its confidence (the mean heatmap peak) and its
   spread over the views (root mean squared distance to the mean, in input px);
2. :func:`filter_pseudo_labels` — landmark by landmark, the first failed test is its reason:
   ``"confidence"`` (peak below the threshold), ``"agreement"`` (the views disagree by more than a
   share of the image size), ``"shape"`` (not where the other landmarks say it should be, under a
   :class:`~sslkeypoint.ssl.ShapeModel` of the labelled configurations) and ``"measure"`` (a
   measure of the task, e.g. the AoP, out of the labelled range: the landmarks it reads are
   dropped). One landmark of an image can be kept while another is dropped.

:class:`PseudoLabelStats` counts what was kept and dropped, per landmark and reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sslkeypoint.augment import KeypointAugmentation
from sslkeypoint.heatmaps import KeypointCodec
from sslkeypoint.ssl.shape_model import ShapeModel

__all__ = [
    "DROP_REASONS",
    "PseudoLabelStats",
    "PseudoLabels",
    "filter_pseudo_labels",
    "measure_ranges",
    "predict_pseudo_labels",
]

#: The tests a pseudo-label must pass, in the order they are applied (a dropped landmark's reason
#: is the first it failed).
DROP_REASONS = ("confidence", "agreement", "shape", "measure")


@dataclass
class PseudoLabels:
    """A teacher's predictions of unlabelled images, averaged over augmented views.

    Attributes:
        keypoints: ``(N, K, 2)`` ``(x, y)`` in network-input px (the mean over the views).
        confidence: ``(N, K)`` mean heatmap peak over the views, in ``[0, 1]``.
        spread: ``(N, K)`` root mean squared distance of the views' landmarks to their mean, in
            input px (0 with one view).
    """

    keypoints: Tensor
    confidence: Tensor
    spread: Tensor


def _apply(matrix: Tensor, points: Tensor) -> Tensor:
    """``(B, 3, 3)`` homogeneous transforms applied to ``(B, K, 2)`` points."""
    ones = torch.ones_like(points[..., :1])
    moved = torch.cat([points, ones], dim=-1) @ matrix.transpose(1, 2)
    return moved[..., :2] / moved[..., 2:]


@torch.no_grad()
def predict_pseudo_labels(
    network: nn.Module,
    codec: KeypointCodec,
    images: Tensor,
    augmentation: KeypointAugmentation | None = None,
    views: int = 1,
) -> PseudoLabels:
    """Predict ``images`` in ``views`` views and average the landmarks mapped back (see the module notes).

    View 0 is the image as it is; the others are drawn with ``augmentation`` from the global random
    state (seed it for repeatable labels). Predictions run in eval mode.

    Args:
        network: Heatmap network ``(B, C, H, W) -> (B, K, h, w)``.
        codec: Its codec (decodes in input px).
        images: ``(B, C, H, W)`` images in ``[0, 1]`` at the network's input size.
        augmentation: Keypoint augmentation of the other views; it must not mirror.
        views: Number of views (1: the image alone).

    Returns:
        :class:`PseudoLabels`.

    Raises:
        ValueError: With ``views > 1`` and no augmentation, or an augmentation that mirrors.

    Examples:
        >>> import torch
        >>> from sslkeypoint.heatmaps import HeatmapCodec
        >>> codec = HeatmapCodec((32, 32), (8, 8), sigma=1.0)
        >>> truth = torch.tensor([[[10.0, 12.0], [20.0, 6.0]]])
        >>> class Oracle(torch.nn.Module):  # heatmaps of the true landmarks of every view
        ...     def forward(self, x):
        ...         return codec.encode(truth.expand(x.shape[0], -1, -1))
        >>> labels = predict_pseudo_labels(Oracle(), codec, torch.rand(1, 1, 32, 32))
        >>> labels.keypoints.round().tolist(), labels.spread.tolist()
        ([[[10.0, 12.0], [20.0, 6.0]]], [[0.0, 0.0]])
    """
    if views < 1:
        raise ValueError(f"views must be >= 1; got {views}")
    if views > 1 and augmentation is None:
        raise ValueError("several views need an augmentation to draw them")
    if augmentation is not None and augmentation.hflip:
        raise ValueError("the views of pseudo-labels must not mirror the images (landmark identities would swap)")
    mode = network.training
    network.eval()
    try:
        points: list[Tensor] = []
        peaks: list[Tensor] = []
        for view in range(views):
            if view == 0:
                sample, inverse = images, None
            else:
                assert augmentation is not None
                stand_in = torch.zeros(images.shape[0], 1, 2, device=images.device, dtype=images.dtype)
                sample, _, _ = augmentation(images, stand_in, None)
                matrix = augmentation.pipeline.get_transformation_matrix(images, augmentation.last_params,
                                                                         recompute=True)
                inverse = None if matrix is None else torch.linalg.inv(matrix.to(torch.float64))
            keypoints, scores = codec.decode(network(sample).float())
            if inverse is not None:
                keypoints = _apply(inverse, keypoints.to(torch.float64)).to(keypoints.dtype)
            points.append(keypoints)
            peaks.append(scores)
    finally:
        network.train(mode)
    stacked = torch.stack(points)  # (V, B, K, 2)
    mean = stacked.mean(dim=0)
    spread = (stacked - mean).pow(2).sum(-1).mean(dim=0).sqrt()
    return PseudoLabels(mean, torch.stack(peaks).mean(dim=0).clamp(0.0, 1.0), spread)


def measure_ranges(measures: Mapping[str, Any], keypoints: Tensor) -> dict[str, tuple[float, float]]:
    """The smallest and largest value of each measure over labelled configurations ``(N, K, 2)``.

    Examples:
        >>> import torch
        >>> from sslkeypoint.measures import DistanceMeasure
        >>> kp = torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[0.0, 0.0], [6.0, 8.0]]])
        >>> measure_ranges({"d": DistanceMeasure(0, 1)}, kp)
        {'d': (5.0, 10.0)}
    """
    out: dict[str, tuple[float, float]] = {}
    for name, measure in measures.items():
        values = measure(keypoints.to(torch.float64))
        values = values[torch.isfinite(values)]
        if values.numel():
            out[name] = (float(values.min()), float(values.max()))
    return out


@dataclass
class PseudoLabelStats:
    """Pseudo-labels kept and dropped, per landmark and reason.

    Attributes:
        images: Unlabelled images labelled.
        landmarks: Landmark names.
        kept: Kept pseudo-labels per landmark.
        dropped: Reason → dropped pseudo-labels per landmark (reasons of :data:`DROP_REASONS`).
        images_used: Images with at least one kept landmark (what the student trains on).
    """

    images: int
    landmarks: list[str]
    kept: list[int]
    dropped: dict[str, list[int]] = field(default_factory=dict)
    images_used: int = 0

    @classmethod
    def count(cls, reasons: Sequence[Sequence[str]], names: Sequence[str]) -> PseudoLabelStats:
        """From a reason per image and landmark (``""`` for a kept one).

        Examples:
            >>> s = PseudoLabelStats.count([["", "shape"], ["", ""]], ["A", "B"])
            >>> s.kept, s.dropped["shape"], s.images_used
            ([2, 1], [0, 1], 2)
        """
        k = len(names)
        kept = [sum(1 for row in reasons if row[j] == "") for j in range(k)]
        dropped = {r: [sum(1 for row in reasons if row[j] == r) for j in range(k)] for r in DROP_REASONS}
        used = sum(1 for row in reasons if any(r == "" for r in row))
        return cls(len(reasons), list(names), kept, dropped, used)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form: per landmark name, the kept count and each reason's count."""
        return {
            "images": self.images,
            "images_used": self.images_used,
            "kept": dict(zip(self.landmarks, self.kept, strict=True)),
            "dropped": {r: dict(zip(self.landmarks, c, strict=True)) for r, c in self.dropped.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PseudoLabelStats:
        """Back from :meth:`to_dict` (other keys, such as a round number, are ignored).

        Examples:
            >>> s = PseudoLabelStats.count([["", "shape"], ["", ""]], ["A", "B"])
            >>> PseudoLabelStats.from_dict({"round": 1, **s.to_dict()}) == s
            True
        """
        names = list(data["kept"])
        return cls(int(data["images"]), names, [int(data["kept"][n]) for n in names],
                   {r: [int(c[n]) for n in names] for r, c in data.get("dropped", {}).items()},
                   int(data.get("images_used", 0)))

    def describe(self) -> str:
        """One line: e.g. ``700 images, 655 used; kept PS1 690, PS2 688, FH1 640; dropped ...``."""
        kept = ", ".join(f"{n} {c}" for n, c in zip(self.landmarks, self.kept, strict=True))
        dropped = "; ".join(f"{r}: " + ", ".join(f"{n} {c}" for n, c in zip(self.landmarks, counts, strict=True))
                            for r, counts in self.dropped.items() if any(counts))
        return f"{self.images} images, {self.images_used} used; kept {kept}" + (f"; dropped {dropped}" if dropped else "")


def filter_pseudo_labels(
    keypoints: Tensor,
    confidence: Tensor,
    spread: Tensor,
    sizes: Tensor,
    *,
    min_confidence: float = 0.0,
    max_spread: float | None = None,
    shape: ShapeModel | None = None,
    shape_quantile: float = 0.99,
    measures: Mapping[str, Any] | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    measure_margin: float = 0.1,
) -> list[list[str]]:
    """Which pseudo-labels to keep: a reason per image and landmark, ``""`` for a kept one.

    Args:
        keypoints: ``(N, K, 2)`` pseudo-labels in original px.
        confidence: ``(N, K)`` heatmap peaks in ``[0, 1]``.
        spread: ``(N, K)`` spread over the views in original px.
        sizes: ``(N, 2)`` original ``(H, W)``.
        min_confidence: Least confidence of a kept landmark.
        max_spread: Largest spread, as a share of the image's larger side (``None``: no test).
        shape: A :class:`~sslkeypoint.ssl.ShapeModel` of the labelled configurations (``None``:
            no test), fitted with the same ``sizes`` convention.
        shape_quantile: χ² quantile of :meth:`ShapeModel.implausible
            <sslkeypoint.ssl.ShapeModel.implausible>` (among the landmarks that passed the tests
            before).
        measures: The task's measures (``None``: no test).
        ranges: Each measure's labelled ``(min, max)`` (:func:`measure_ranges`); a measure without
            one is not tested.
        measure_margin: The range widened by this share of it on each side.

    Returns:
        ``N`` lists of ``K`` reasons (:data:`DROP_REASONS`, or ``""``).

    Raises:
        ValueError: On shapes that do not agree.

    Examples:
        >>> import torch
        >>> kp = torch.tensor([[[10.0, 10.0], [20.0, 20.0]]])
        >>> filter_pseudo_labels(kp, torch.tensor([[0.9, 0.1]]), torch.tensor([[0.5, 0.5]]),
        ...                      torch.tensor([[100, 100]]), min_confidence=0.3)
        [['', 'confidence']]
    """
    n, k = confidence.shape
    if keypoints.shape != (n, k, 2) or spread.shape != (n, k) or tuple(sizes.shape) != (n, 2):
        raise ValueError(
            f"need keypoints (N, K, 2), confidence and spread (N, K), sizes (N, 2) of one N and K; got "
            f"{tuple(keypoints.shape)}, {tuple(confidence.shape)}, {tuple(spread.shape)}, {tuple(sizes.shape)}"
        )
    reasons = [["" for _ in range(k)] for _ in range(n)]

    def drop(mask: Tensor, reason: str) -> None:
        for i, j in mask.nonzero().tolist():
            if not reasons[i][j]:
                reasons[i][j] = reason

    finite = torch.isfinite(keypoints).all(-1)
    drop(~finite | (confidence < min_confidence), "confidence")
    if max_spread is not None:
        side = sizes.to(torch.float64).amax(dim=1, keepdim=True)
        drop(spread.to(torch.float64) > max_spread * side, "agreement")
    if shape is not None:
        candidates = torch.tensor([[not r for r in row] for row in reasons], dtype=torch.bool)
        safe = torch.where(finite[..., None], keypoints, torch.zeros_like(keypoints))
        drop(shape.implausible(safe, sizes, quantile=shape_quantile, candidates=candidates), "shape")
    if measures and ranges:
        for name, measure in measures.items():
            if name not in ranges:
                continue
            low, high = ranges[name]
            pad = measure_margin * (high - low)
            values = measure(keypoints.to(torch.float64))
            out = ~((values >= low - pad) & (values <= high + pad))  # NaN counts as out of range
            for i in out.nonzero().flatten().tolist():
                used = list(measure.landmarks)
                if all(not reasons[i][j] for j in used):  # a measure of landmarks already dropped says nothing new
                    for j in used:
                        reasons[i][j] = "measure"
    return reasons
