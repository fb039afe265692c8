"""Which images to label next: :func:`select_images`, for any keypoint task.

Given unlabelled images and a budget — and optionally groups (frames of one video, images of one
subject), the images labelled already, a pre-trained encoder, a fine-tuned model — it returns the
images to label next, in order, each with the reason it was chosen. Strategies:

* ``"random"`` — a seeded random order (the baseline every other is measured against);
* ``"coverage"`` — typical clusters of the images' features (:func:`~sslkeypoint.selection.typical_clusters`):
  as many clusters as labels, one label in each cluster no label covers yet (its most typical
  image), the largest clusters first, one image per group while other groups remain. On frames cut
  from videos this spreads a small budget over the acquisitions instead of spending it on
  near-duplicates;
* ``"kcenter"`` — the farthest-first traversal of the features (:func:`~sslkeypoint.selection.kcenter_greedy`);
* ``"uncertainty"`` — for later rounds, given a fine-tuned model: the images where its predictions
  disagree most across augmented views (:func:`~sslkeypoint.selection.prediction_disagreement`),
  one per cluster of the candidates so that they are not all alike.

Features are an encoder's (a pre-training run's ``encoder.safetensors``, or a fine-tuned model's
encoder) or, with none, the images' thumbnails (:mod:`~sslkeypoint.selection.features`).
"""

from __future__ import annotations

import csv
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sslkeypoint.atomic import atomic_open
from sslkeypoint.selection.features import (
    encoder_features,
    load_feature_encoder,
    thumbnail_features,
)
from sslkeypoint.selection.strategies import (
    Pick,
    kcenter_greedy,
    typical_clusters,
    uncertain_clusters,
)
from sslkeypoint.selection.uncertainty import prediction_disagreement

__all__ = ["STRATEGIES", "Choice", "Selection", "select_images"]

#: The strategies of :func:`select_images`.
STRATEGIES = ("random", "coverage", "kcenter", "uncertainty")

ImagePath = str | PathLike[str]


@dataclass(frozen=True)
class Choice:
    """One image to label.

    Attributes:
        rank: Its place in the order (1 first).
        path: The image file.
        reason: Why it was chosen.
        score: The strategy's score (typicality, distance, disagreement; 0 for random).
        group: Its group, when groups were given.
        cluster: Its cluster, for the clustering strategies.
    """

    rank: int
    path: Path
    reason: str
    score: float = 0.0
    group: Hashable | None = None
    cluster: int | None = None


@dataclass
class Selection:
    """The images to label next, in order.

    Attributes:
        choices: The :class:`Choice` list, best first.
        strategy: The strategy used.
        features: What the images were described by (``"thumbnails"`` or the encoder's file).
        candidates: Images that could be chosen (the unlabelled images not labelled already).
    """

    choices: list[Choice]
    strategy: str
    features: str = ""
    candidates: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.choices)

    @property
    def paths(self) -> list[Path]:
        """The chosen files, in order."""
        return [c.path for c in self.choices]

    def write_csv(self, path: ImagePath) -> Path:
        """Write ``rank,path,group,cluster,score,reason`` (one row per choice) to ``path``.

        Examples:
            >>> import tempfile
            >>> sel = Selection([Choice(1, Path("a.png"), "random draw")], "random")
            >>> out = sel.write_csv(Path(tempfile.mkdtemp()) / "picks.csv")
            >>> out.read_text().splitlines()
            ['rank,path,group,cluster,score,reason', '1,a.png,,,0,random draw']
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(out, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["rank", "path", "group", "cluster", "score", "reason"])
            for c in self.choices:
                writer.writerow([c.rank, str(c.path), "" if c.group is None else c.group,
                                 "" if c.cluster is None else c.cluster, f"{c.score:.6g}", c.reason])
        return out


def _features(images: Sequence[Path], encoder: Any, input_size: tuple[int, int] | None,
              progress: bool) -> tuple[Tensor, str]:
    if encoder is None:
        return thumbnail_features(images, progress=progress), "thumbnails"
    if isinstance(encoder, nn.Module):
        if input_size is None:
            raise ValueError("an encoder given as a module needs input_size (the network input (H, W) in px)")
        return encoder_features(encoder, images, input_size, progress=progress), type(encoder).__name__
    module, size = load_feature_encoder(encoder)
    return encoder_features(module, images, input_size or size, progress=progress), str(encoder)


def select_images(
    images: Sequence[ImagePath],
    budget: int,
    *,
    strategy: str = "coverage",
    groups: Sequence[Hashable] | None = None,
    labelled: Sequence[ImagePath] = (),
    encoder: nn.Module | ImagePath | None = None,
    model: Any = None,
    input_size: tuple[int, int] | None = None,
    seed: int = 0,
    views: int = 8,
    progress: bool = False,
) -> Selection:
    """Choose ``budget`` images to label next, in order, with a reason for each (see the module notes).

    Args:
        images: The unlabelled images (files).
        budget: How many to choose.
        strategy: One of :data:`STRATEGIES`.
        groups: Optional group of each image (same length as ``images``): near-duplicates (frames
            of one video, images of one subject) share one, and a group is chosen once while
            others remain.
        labelled: Images labelled already (files; those among ``images`` are not chosen again,
            and they count as covered).
        encoder: What the images are described by: a pre-training run's ``encoder.safetensors``
            or ``unet.safetensors``, a fine-tuning checkpoint (its encoder), an encoder module
            (then give ``input_size``); ``None``: thumbnails.
        model: For ``"uncertainty"``: a fine-tuned model — a
            :class:`~sslkeypoint.inference.KeypointPredictor` or a checkpoint file it loads from.
        input_size: Network input ``(H, W)`` of the encoder (default: the one of its file).
        seed: Seed of the random order, the clustering and the views.
        views: Augmented views per image for ``"uncertainty"``.
        progress: Show progress bars.

    Returns:
        A :class:`Selection` of ``min(budget, candidates)`` choices.

    Raises:
        ValueError: For an unknown strategy, a budget below 1, groups of another length than
            ``images``, or ``"uncertainty"`` without a model.

    Examples:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> files = []
        >>> for i in range(6):
        ...     img = np.zeros((16, 16), np.uint8); img[:, : 2 + 2 * (i // 3)] = 255  # two kinds of image
        ...     Image.fromarray(img).save(folder / f"{i}.png"); files.append(folder / f"{i}.png")
        >>> sel = select_images(files, 2, strategy="coverage")
        >>> sorted(int(p.stem) // 3 for p in sel.paths)  # one image of each kind
        [0, 1]
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")
    if budget < 1:
        raise ValueError(f"budget must be >= 1; got {budget}")
    paths = [Path(p) for p in images]
    if groups is not None and len(groups) != len(paths):
        raise ValueError(f"groups must give one group per image: {len(groups)} groups for {len(paths)} images")
    done = {Path(p).resolve() for p in labelled}
    keep = [i for i, p in enumerate(paths) if p.resolve() not in done]
    candidates = [paths[i] for i in keep]
    cand_groups = [groups[i] for i in keep] if groups is not None else None
    settings = {"budget": budget, "seed": seed, "labelled": len(done)}
    if not candidates:
        return Selection([], strategy, "", 0, settings)
    if strategy == "random":
        order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(seed)).tolist()
        picks = [Pick(i, 0.0, f"random draw (seed {seed})") for i in order[:budget]]
        described = ""
    else:
        feats, described = _features(candidates, encoder, input_size, progress)
        labelled_paths = [Path(p) for p in labelled]
        known = None
        if labelled_paths and strategy in ("coverage", "kcenter"):
            known, _ = _features(labelled_paths, encoder, input_size, progress)
        if strategy == "coverage":
            picks = typical_clusters(feats, budget, labelled=known, groups=cand_groups, seed=seed)
        elif strategy == "kcenter":
            picks = kcenter_greedy(feats, budget, labelled=known, groups=cand_groups)
        else:
            if model is None:
                raise ValueError("the 'uncertainty' strategy needs a fine-tuned model (model=...)")
            if not hasattr(model, "predict"):
                from sslkeypoint.inference import KeypointPredictor

                model = KeypointPredictor.from_checkpoint(model)
            disagreement = prediction_disagreement(model, candidates, views=views, seed=seed, progress=progress)
            picks = uncertain_clusters(feats, 100.0 * disagreement, budget, groups=cand_groups, seed=seed,
                                       unit="% of the image size")
    choices = [Choice(rank, candidates[p.index], p.reason, p.score,
                      None if cand_groups is None else cand_groups[p.index], p.cluster)
               for rank, p in enumerate(picks, start=1)]
    return Selection(choices, strategy, described, len(candidates), settings)
