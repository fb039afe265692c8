"""Fine-tuning methods: supervised, mean teacher, and pseudo-label self-training (noisy student).

Each is a frozen dataclass given to :class:`~sslkeypoint.configs.FinetuneConfig` as ``method``:

==========================  ==================================================================
method                      learns from
==========================  ==================================================================
:class:`SupervisedMethod`   the labelled images (the default)
:class:`MeanTeacherMethod`  the labelled images, and every batch of unlabelled images against
                            a teacher that averages the network (:class:`~sslkeypoint.ssl.MeanTeacher`)
:class:`PseudoLabelMethod`  rounds: a teacher trained on the labelled images labels the
                            unlabelled pool; the pseudo-labels that pass confidence, agreement
                            and plausibility filters (:mod:`sslkeypoint.ssl.pseudo_labels`) train
                            a student with strong augmentation, which is the next teacher
==========================  ==================================================================

Methods that learn from unlabelled images need the ``unlabelled`` pool of
:func:`~sslkeypoint.recipes.run_finetuning`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from sslkeypoint._utils import plain
from sslkeypoint.methods.base import FinetuningMethod, method_from_dict

__all__ = ["STRONG_AUGMENT", "VIEW_AUGMENT", "MeanTeacherMethod", "PseudoLabelMethod", "SupervisedMethod"]


@dataclasses.dataclass(frozen=True)
class SupervisedMethod(FinetuningMethod):
    """Supervised fine-tuning on the labelled images alone (the paper's stage 3).

    Examples:
        >>> SupervisedMethod().describe()
        'supervised()'
    """

    name: ClassVar[str] = "supervised"

    def build(self, model: Any, *, heatmap_stride: int, augment_kwargs: Mapping[str, Any]) -> Any:
        """The plain :class:`~sslkeypoint.ssl.FinetuneObjective` (nothing beyond the heatmap loss)."""
        from sslkeypoint.ssl import FinetuneObjective

        return FinetuneObjective()


@dataclasses.dataclass(frozen=True)
class MeanTeacherMethod(FinetuningMethod):
    """The mean teacher (Tarvainen & Valpola, 2017) on a pool of unlabelled images.

    An exponential moving average of the network (the teacher) predicts heatmaps on each unlabelled
    image; the network learns to predict them, moved through the same geometric transform, on an
    augmented view of the image (:mod:`sslkeypoint.ssl.mean_teacher`). The view is drawn with
    :func:`~sslkeypoint.augment.keypoint_augmentation` of the config's ``augment_kwargs``.

    Attributes:
        weight: Weight of the unlabelled loss once ramped up.
        rampup_steps: Optimiser steps over which the weight rises from about ``0.007 · weight`` to
            ``weight`` along ``exp(-5 (1 - t)^2)`` (0: no ramp).
        ema_decay: Teacher update after every optimiser step:
            ``teacher = ema_decay · teacher + (1 - ema_decay) · network`` (parameters; BatchNorm
            statistics are copied). ``None``: chosen from the run's planned length,
            :func:`~sslkeypoint.ssl.auto_ema_decay` (a time constant of a twentieth of the run).
        confidence: A teacher heatmap channel whose peak is below this is left out of the loss (0:
            every channel counts).
        unlabelled_batch_size: Unlabelled images per training batch (per process); ``None``: the
            labelled batch size.
        eval_teacher: Validate (and so select the best checkpoint, stop early and reduce the
            learning rate) on the teacher, and save the teacher as the checkpoints' model; the
            averaged network is usually the better one. ``False``: the trained network.

    Examples:
        >>> MeanTeacherMethod().batch_of_unlabelled(8), MeanTeacherMethod(unlabelled_batch_size=16).batch_of_unlabelled(8)
        (8, 16)
    """

    name: ClassVar[str] = "mean_teacher"
    uses_unlabelled: ClassVar[bool] = True

    weight: float = 1.0
    rampup_steps: int = 200
    ema_decay: float | None = None
    confidence: float = 0.0
    unlabelled_batch_size: int | None = None
    eval_teacher: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"weight must be a finite number >= 0; got {self.weight}")
        if self.rampup_steps < 0:
            raise ValueError(f"rampup_steps must be >= 0; got {self.rampup_steps}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay <= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1]; got {self.ema_decay}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1] (heatmap peaks are in [0, 1]); got {self.confidence}")
        if self.unlabelled_batch_size is not None and self.unlabelled_batch_size < 1:
            raise ValueError(f"unlabelled_batch_size must be None or >= 1; got {self.unlabelled_batch_size}")

    def batch_of_unlabelled(self, labelled_batch: int) -> int:
        """Unlabelled images per training batch: :attr:`unlabelled_batch_size`, or ``labelled_batch``."""
        return int(self.unlabelled_batch_size or labelled_batch)

    def build(self, model: Any, *, heatmap_stride: int, augment_kwargs: Mapping[str, Any]) -> Any:
        """A :class:`~sslkeypoint.ssl.MeanTeacher` following ``model``."""
        from sslkeypoint.ssl import MeanTeacher

        return MeanTeacher(model, heatmap_stride, augment_kwargs, weight=self.weight, rampup_steps=self.rampup_steps,
                           ema_decay=self.ema_decay, confidence=self.confidence, eval_teacher=self.eval_teacher)


#: The student's augmentation of :class:`PseudoLabelMethod` (noisy student): stronger than the
#: default keypoint augmentation of :class:`~sslkeypoint.configs.FinetuneConfig`.
STRONG_AUGMENT: dict[str, Any] = {
    "rotation": 20.0,
    "translate": 0.1,
    "scale": [0.8, 1.2],
    "brightness": 0.3,
    "contrast": 0.3,
}

#: The geometric transforms of the views a teacher labels each unlabelled image from.
VIEW_AUGMENT: dict[str, Any] = {"rotation": 10.0, "translate": 0.05, "scale": [0.9, 1.1], "brightness": 0.1,
                                "contrast": 0.1}


@dataclasses.dataclass(frozen=True)
class PseudoLabelMethod(FinetuningMethod):
    """Pseudo-label self-training (noisy student; Xie et al., 2020), landmark by landmark.

    Run by :func:`~sslkeypoint.recipes.run_finetuning` in rounds, each a run folder of its own
    (``round0/`` the teacher, ``round1/``, ... the students; the last is the result):

    1. the teacher is fine-tuned on the labelled images with :attr:`teacher` (supervised, or a mean
       teacher);
    2. it predicts every unlabelled image in :attr:`views` augmented views, mapped back and
       averaged: the pseudo-label (:func:`~sslkeypoint.ssl.predict_pseudo_labels`);
    3. each landmark's pseudo-label is kept only when its heatmap peak reaches
       :attr:`min_confidence`, the views agree within :attr:`max_spread` of the image size, it is
       where the other landmarks say it should be under a shape model of the labelled set
       (:class:`~sslkeypoint.ssl.ShapeModel`, a conditional Mahalanobis distance within the
       :attr:`shape_quantile` of its χ² distribution), and the task's measures on the whole
       configuration stay within the labelled range widened by :attr:`measure_margin`
       (:func:`~sslkeypoint.ssl.filter_pseudo_labels`); one landmark of an image can be kept
       while another is dropped;
    4. a student is fine-tuned, from scratch or from the teacher (:attr:`student_init`), on the
       labelled images and the kept pseudo-labels (a dropped landmark adds no loss) with
       :attr:`student_augment`, for :attr:`student_epochs` epochs; validation stays on the
       labelled hold-out. It is the teacher of the next round.

    Counts kept and dropped per landmark and reason are written with every round
    (``round<r>/pseudo_labels.json``) and into the run's ``summary.json``.

    Attributes:
        teacher: How the first teacher is fine-tuned (any method but this one).
        rounds: Students trained one after the other (each labels the pool for the next).
        views: Augmented views each unlabelled image is predicted in (1: the image alone).
        view_augment: Keypoint augmentation arguments of those views (no mirroring).
        min_confidence: Least heatmap peak (mean over the views) of a kept landmark.
        max_spread: Largest spread of a kept landmark's predictions over the views (root mean
            squared distance to their mean), as a fraction of the image's larger side.
        shape_quantile: χ² quantile of the shape test (``None``: no shape test).
        shape_shrinkage: Shrinkage of the shape model's covariance towards its diagonal.
        measure_margin: Measures of a kept configuration lie within the labelled range widened
            by this share of it on each side (``None``: no measure test); a measure out of range
            drops the landmarks it is computed from.
        student_augment: Keypoint augmentation arguments of the student (``None``: the config's).
        student_init: ``"scratch"`` (the config's initialisation, e.g. a pre-trained encoder) or
            ``"teacher"`` (the teacher's weights).
        student_epochs: Epochs of each student (``None``: the config's ``max_epochs``).
        labelled_share: The labelled images are repeated until they are at least this share of a
            student's training set.

    Examples:
        >>> m = PseudoLabelMethod(teacher=MeanTeacherMethod(), rounds=2)
        >>> PseudoLabelMethod.from_stored(m.to_dict()) == m
        True
    """

    name: ClassVar[str] = "pseudo_labels"
    uses_unlabelled: ClassVar[bool] = True

    teacher: FinetuningMethod = dataclasses.field(default_factory=SupervisedMethod)
    rounds: int = 1
    views: int = 8
    view_augment: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(VIEW_AUGMENT))
    min_confidence: float = 0.3
    max_spread: float = 0.02
    shape_quantile: float | None = 0.99
    shape_shrinkage: float = 0.1
    measure_margin: float | None = 0.1
    student_augment: dict[str, Any] | None = dataclasses.field(default_factory=lambda: dict(STRONG_AUGMENT))
    student_init: str = "scratch"
    student_epochs: int | None = None
    labelled_share: float = 0.25

    def __post_init__(self) -> None:
        teacher = method_from_dict(self.teacher, FinetuningMethod)
        if isinstance(teacher, PseudoLabelMethod):
            raise ValueError("the teacher of pseudo-label self-training must be another method (supervised, mean teacher)")
        object.__setattr__(self, "teacher", teacher)
        object.__setattr__(self, "view_augment", plain(dict(self.view_augment)))
        if self.student_augment is not None:
            object.__setattr__(self, "student_augment", plain(dict(self.student_augment)))
        if self.rounds < 1 or self.views < 1:
            raise ValueError(f"rounds and views must be >= 1; got rounds={self.rounds}, views={self.views}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1]; got {self.min_confidence}")
        if not self.max_spread > 0:
            raise ValueError(f"max_spread must be > 0 (a share of the image size); got {self.max_spread}")
        if self.shape_quantile is not None and not 0.0 < self.shape_quantile < 1.0:
            raise ValueError(f"shape_quantile must be in (0, 1) or None; got {self.shape_quantile}")
        if not 0.0 <= self.shape_shrinkage <= 1.0:
            raise ValueError(f"shape_shrinkage must be in [0, 1]; got {self.shape_shrinkage}")
        if self.measure_margin is not None and self.measure_margin < 0:
            raise ValueError(f"measure_margin must be >= 0 or None; got {self.measure_margin}")
        if self.student_init not in ("scratch", "teacher"):
            raise ValueError(f"student_init must be 'scratch' or 'teacher'; got {self.student_init!r}")
        if self.student_epochs is not None and self.student_epochs < 1:
            raise ValueError(f"student_epochs must be None or >= 1; got {self.student_epochs}")
        if not 0.0 <= self.labelled_share < 1.0:
            raise ValueError(f"labelled_share must be in [0, 1); got {self.labelled_share}")

    @classmethod
    def from_stored(cls, data: Any) -> PseudoLabelMethod:
        """The method from its stored form (:meth:`to_dict`)."""
        return method_from_dict(data, cls)

    def to_dict(self) -> dict[str, Any]:
        """``{"class": ..., "kwargs": {...}}``, the teacher method in its stored form too."""
        spec = super().to_dict()
        spec["kwargs"]["teacher"] = self.teacher.to_dict()
        return spec

    def build(self, model: Any, *, heatmap_stride: int, augment_kwargs: Mapping[str, Any]) -> Any:
        """Not built into one LightningModule: it runs in rounds.

        Raises:
            ValueError: Always (run it with :func:`~sslkeypoint.recipes.run_finetuning`).
        """
        raise ValueError(
            "pseudo-label self-training runs in rounds of fine-tuning (a teacher, then students): run it with "
            "sslkeypoint.recipes.run_finetuning, which builds each round's LightningModule"
        )
