"""The demo's steps, each a library call: split by subject, pre-train, choose labels, fine-tune, score.

1. :func:`testing_split` — a fixed fifth of the subjects (seed 0) for testing; every image of a
   subject on one side (:func:`sslkeypoint.data.split_records` with the subject as group).
2. :func:`pretrain` — MoCo v2 (:func:`sslkeypoint.recipes.run_pretraining`) on every image of the
   training subjects plus the unlabelled images, labels unused.
3. :func:`choose_labelled` — ``N`` training images by coverage of the pre-trained encoder's
   features, one subject at a time (:func:`sslkeypoint.selection.select_images`), or ``N`` at
   random (the benchmark's draw).
4. :func:`finetune` — a heatmap U-Net from scratch (``unet``) or with pseudo-label
   self-training on the unlabelled pool (``pseudo_unet``, the recommended recipe), through
   :func:`sslkeypoint.recipes.run_finetuning`.
5. :func:`score` — the best checkpoint predicts the testing images
   (:func:`sslkeypoint.metrics.evaluate`); HC, BPD and OFD in mm with each image's pixel size,
   and the challenge's score against the data set's HC.

Every step writes into its own folder of the run and is resumed or reused when run again.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hc18_biometry.landmarks import landmark_names
from hc18_biometry.measures import hc_error_mm, head_measures
from sslkeypoint.configs import FinetuneConfig, PretrainConfig
from sslkeypoint.data import KeypointRecord, split_records
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.methods import FinetuningMethod, MoCoV2Method, PseudoLabelMethod, SupervisedMethod
from sslkeypoint.metrics import Evaluation, evaluate
from sslkeypoint.recipes import FinetuneResult, run_finetuning, run_pretraining
from sslkeypoint.selection import select_images

__all__ = ["METHODS", "PROFILES", "RECOMMENDED", "Profile", "Score", "choose_labelled", "finetune",
           "finetune_config", "pretrain", "score", "testing_split"]


@dataclass(frozen=True)
class Profile:
    """Sizes and schedule of a demo run.

    Attributes:
        name: The profile's name.
        input_size: Network input ``(H, W)``: HC18's 800×540 images keep their aspect.
        heatmap_size: Heatmap ``(h, w)``.
        widths: U-Net encoder widths; ``bottleneck``: its bottleneck width.
        directions: Outline points in fixed directions per head (beside the 4 ends of the axes).
        pretrain_epochs: MoCo v2 epochs; ``queue``: its queue length.
        finetune_epochs: Most fine-tuning epochs (early stopping on validation MRE, ``patience``).
        student_epochs: Epochs of the pseudo-label student.
    """

    name: str
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    widths: tuple[int, ...]
    bottleneck: int
    directions: int
    pretrain_epochs: int
    queue: int
    finetune_epochs: int
    patience: int
    student_epochs: int


PROFILES: dict[str, Profile] = {
    p.name: p for p in (
        Profile("quick", (112, 160), (28, 40), (16, 32, 64, 128), 256, 8, pretrain_epochs=5, queue=4096,
                finetune_epochs=50, patience=20, student_epochs=6),
        Profile("smoke", (48, 64), (12, 16), (4, 8, 16, 32), 32, 8, pretrain_epochs=1, queue=64,
                finetune_epochs=2, patience=2, student_epochs=1),
    )
}

#: Fine-tuning methods by name: from scratch, and pseudo-label self-training (the recommended one).
METHODS: dict[str, FinetuningMethod] = {
    "unet": SupervisedMethod(),
    "pseudo_unet": PseudoLabelMethod(student_epochs=None),
}
#: The method the demo's model is trained with.
RECOMMENDED = "pseudo_unet"


def testing_split(records: Sequence[KeypointRecord], fraction: float = 0.2) -> tuple[list[KeypointRecord], list[KeypointRecord]]:
    """``(training, testing)``: a fixed share of the subjects (seed 0) for testing."""
    return split_records(records, fraction, seed=0, group=lambda r: r.group)


def pretrain(images: Sequence[Path], out: Path, profile: Profile, progress: bool) -> Path:
    """MoCo v2 on ``images``; returns the encoder file."""
    config = PretrainConfig.profile(
        "cpu", image_size=profile.input_size, max_epochs=profile.pretrain_epochs,
        encoder_kwargs={"widths": list(profile.widths), "bottleneck_width": profile.bottleneck},
        method=MoCoV2Method(queue_size=profile.queue, split_bn=4 if profile.queue >= 1024 else 2),
        batch_size=32 if profile.queue >= 1024 else 8)
    result = run_pretraining(config, images=list(images), out_dir=out, progress=progress)
    return result.out_dir / "encoder.safetensors"


def choose_labelled(train: Sequence[KeypointRecord], budget: int | None, *, encoder: Path | None, seed: int,
                    out: Path | None = None, progress: bool = False) -> list[KeypointRecord]:
    """``budget`` training records (``None``: all): by coverage of ``encoder``'s features, one
    subject at a time, or at random when ``encoder`` is ``None``; the choice is written to
    ``out`` (``rank,path,group,...,reason``) when given."""
    if budget is None or budget >= len(train):
        return list(train)
    if encoder is None:
        return random.Random(seed).sample(list(train), budget)
    by_path = {Path(r.path): r for r in train}
    selection = select_images(list(by_path), budget, strategy="coverage", groups=[r.group for r in train],
                              encoder=encoder, seed=seed, progress=progress)
    if out is not None:
        selection.write_csv(out)
    return [by_path[p] for p in selection.paths]


def finetune_config(profile: Profile, method: str, seed: int = 0, init_encoder: Path | None = None) -> FinetuneConfig:
    """The fine-tuning config of ``method`` (a key of :data:`METHODS`)."""
    chosen = METHODS[method]
    if isinstance(chosen, PseudoLabelMethod):
        chosen = dataclasses.replace(chosen, student_epochs=profile.student_epochs)
    return FinetuneConfig.profile(
        "cpu", input_size=profile.input_size, heatmap_size=profile.heatmap_size,
        encoder_kwargs={"widths": list(profile.widths), "bottleneck_width": profile.bottleneck},
        num_keypoints=4 + profile.directions, keypoint_names=landmark_names(profile.directions),
        measures=head_measures(profile.directions), max_epochs=profile.finetune_epochs,
        early_stopping_patience=profile.patience, seed=seed, method=chosen,
        init_encoder=None if init_encoder is None else str(init_encoder))


def finetune(labelled: Sequence[KeypointRecord], pool: Sequence[Path], out: Path, profile: Profile, method: str,
             seed: int = 0, progress: bool = False) -> FinetuneResult:
    """Fine-tune ``method`` on ``labelled`` (split 8:2 by subject for validation) into ``out``;
    the pool of unlabelled images is used by the methods that learn from them."""
    config = finetune_config(profile, method, seed)
    return run_finetuning(config, list(labelled), out, unlabelled=list(pool) if config.method.uses_unlabelled else None,
                          progress=progress)


@dataclass(frozen=True)
class Score:
    """A model scored on the testing images.

    Attributes:
        evaluation: The library's :class:`~sslkeypoint.metrics.Evaluation` (landmark errors in
            px and mm, HC/BPD/OFD predicted and from the labelled landmarks).
        hc_truth: The data set's HC of every testing image (mm).
        hc_error: The challenge's score of every image: ``|HC predicted − HC given|`` (mm).
    """

    evaluation: Evaluation
    hc_truth: np.ndarray
    hc_error: np.ndarray

    def summary(self) -> dict[str, Any]:
        """The headline figures (mm): HC error mean, sd, median, 95th percentile, worst; BPD and
        OFD mean absolute errors; mean radial error of all landmarks, of the ends of the axes and
        of the direction points; images without an HC."""
        e = self.hc_error[np.isfinite(self.hc_error)]
        m = self.evaluation.metrics
        in_mm = self.evaluation.errors_mm
        radial = in_mm.numpy() if in_mm is not None else np.full((len(self.hc_error), 1), np.nan)
        return {
            "hc_mae_mm": float(e.mean()) if e.size else float("nan"),
            "hc_sd_mm": float(e.std()) if e.size else float("nan"),
            "hc_median_mm": float(np.median(e)) if e.size else float("nan"),
            "hc_p95_mm": float(np.percentile(e, 95)) if e.size else float("nan"),
            "hc_max_mm": float(e.max()) if e.size else float("nan"),
            "hc_missing": int((~np.isfinite(self.hc_error)).sum()),
            "bpd_mae_mm": float(m.get("bpd_mae_mm", float("nan"))),
            "ofd_mae_mm": float(m.get("ofd_mae_mm", float("nan"))),
            "mre_mm": float(m.get("mre_mm", float("nan"))),
            "axis_ends_mm": float(np.nanmean(radial[:, :4])),
            "directions_mm": float(np.nanmean(radial[:, 4:])),
            "images": len(self.hc_error),
        }


def score(checkpoint: Path, test: Sequence[KeypointRecord], progress: bool = False) -> Score:
    """Predict the testing records with ``checkpoint`` and score them (see :class:`Score`)."""
    predictor = KeypointPredictor.from_checkpoint(checkpoint)
    ev = evaluate(predictor, list(test), progress=progress)
    truth = np.array([np.nan if r.meta.get("hc_mm") is None else float(r.meta["hc_mm"]) for r in test])
    return Score(ev, truth, hc_error_mm(ev.measures["hc"][0].numpy(), truth))
