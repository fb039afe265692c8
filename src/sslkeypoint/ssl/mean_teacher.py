"""Mean teacher: semi-supervised heatmap fine-tuning on a pool of unlabelled images.

:class:`~sslkeypoint.methods.MeanTeacherMethod` builds a :class:`MeanTeacher`, which
:class:`~sslkeypoint.lightning.HeatmapFinetuneModule` composes. It keeps a teacher, an exponential
moving average of the network it trains (:class:`EMATeacher`), and adds to the labelled heatmap loss
a consistency loss on each batch's unlabelled images (``batch["unlabelled"]``, from
:class:`~sslkeypoint.lightning.KeypointDataModule` given an unlabelled pool):

1. the teacher predicts heatmaps on the unlabelled images as they are;
2. a random view of each image is drawn with :func:`~sslkeypoint.augment.keypoint_augmentation` of
   the fine-tuning config's ``augment_kwargs``, and the teacher's heatmaps are moved with the view's
   geometric transform (:func:`~sslkeypoint.augment.augment_with_heatmaps`: heatmap stride, flip pairs);
3. the network predicts on the view; the loss is the mean squared difference from the moved
   teacher heatmaps (:func:`~sslkeypoint.losses.consistency_loss`) over the pixels the transform
   keeps inside the image and the channels whose teacher peak reaches the method's ``confidence``
   (:func:`confidence_mask`), weighted by its ``weight`` times :func:`sigmoid_rampup` of the
   optimiser step;
4. after every optimiser step the teacher moves towards the network by the method's ``ema_decay``
   (:meth:`EMATeacher.update`), by default chosen from the run's length (:func:`auto_ema_decay`).

The teacher is a submodule (``objective.teacher.network.*`` in the LightningModule's
``state_dict``), so checkpoints and resumed runs carry it. With ``eval_teacher`` validation scores
the teacher, and checkpoints store it as their ``model.*`` weights (the trained network as
``student.*``; see :func:`~sslkeypoint.lightning.checkpoint.teacher_as_model`), so
:meth:`KeypointPredictor.from_checkpoint <sslkeypoint.inference.KeypointPredictor.from_checkpoint>`
predicts with the network that was validated.

Under DDP every process draws other unlabelled images (the sampler shards the pool by rank) and
other views (the augmentation seed includes the rank); the network's parameters are the same on
every process after each optimiser step, so the teacher's parameters, updated from them, are too.
BatchNorm statistics are per process, as the network's are; DDP broadcasts module buffers, the
teacher's included, from process 0 before every training forward.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
from lightly.models.utils import update_momentum
from torch import Tensor, nn

from sslkeypoint.augment import KeypointAugmentation, augment_with_heatmaps
from sslkeypoint.losses.consistency import consistency_loss
from sslkeypoint.ssl.base import FinetuneObjective
from sslkeypoint.ssl.moco import auto_momentum

__all__ = [
    "EMA_DECAY_RANGE",
    "EMATeacher",
    "MeanTeacher",
    "auto_ema_decay",
    "confidence_mask",
    "mean_teacher_loss",
    "sigmoid_rampup",
]


class EMATeacher(nn.Module):
    """An exponential moving average of a network, never trained, predicting in eval mode.

    Calling the teacher runs its network in eval mode (BatchNorm with the statistics copied from
    the network) and without gradient, whatever mode the surrounding module is in; its own mode
    follows the module's as usual (so Lightning finds no module left in eval mode when training starts).

    Args:
        student: The trained network; the teacher starts as a deep copy of it.

    Attributes:
        network: The averaged copy (``requires_grad`` off).

    Examples:
        >>> import torch
        >>> student = torch.nn.Linear(1, 1, bias=False)
        >>> teacher = EMATeacher(student)
        >>> with torch.no_grad():
        ...     _ = teacher.network.weight.fill_(1.0)
        ...     _ = student.weight.fill_(3.0)
        >>> teacher.update(student, decay=0.75)
        >>> teacher.network.weight.item()  # 0.75 * 1 + 0.25 * 3
        1.5
        >>> teacher(torch.ones(1, 1)).requires_grad
        False
    """

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.network = copy.deepcopy(student)
        self.network.requires_grad_(False)

    def forward(self, images: Tensor) -> Tensor:
        """The teacher's output, computed in eval mode without gradient."""
        mode = self.network.training
        self.network.eval()
        try:
            with torch.no_grad():
                return self.network(images)
        finally:
            self.network.train(mode)

    def _pairs(self, student: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
        mine, theirs = list(self.network.buffers()), list(student.buffers())
        n_params = (sum(1 for _ in self.network.parameters()), sum(1 for _ in student.parameters()))
        if len(mine) != len(theirs) or n_params[0] != n_params[1]:
            raise ValueError(
                f"the student does not match the teacher: {n_params[1]} parameters and {len(theirs)} "
                f"buffers, expected {n_params[0]} and {len(mine)}"
            )
        return mine, theirs

    @torch.no_grad()
    def update(self, student: nn.Module, decay: float) -> None:
        """``teacher = decay * teacher + (1 - decay) * student`` for parameters; buffers copied.

        Parameters go through lightly's ``update_momentum``. Buffers (BatchNorm running
        statistics, batch counters) are copied from the network: averaged on their own, apart
        from the weights they normalise, they lag far behind them in a short run where the
        weights move far (a first-layer variance that falls a thousandfold in 200 steps keeps a
        tenth of its start after an average with decay 0.99), and the teacher's heatmaps flatten
        to nothing.
        """
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1]; got {decay}")
        mine, theirs = self._pairs(student)
        update_momentum(student, self.network, decay)
        for ema, current in zip(mine, theirs, strict=True):
            ema.copy_(current.to(ema.dtype))

    @torch.no_grad()
    def reset(self, student: nn.Module) -> None:
        """Make the teacher an exact copy of ``student`` again (e.g. after loading its weights)."""
        self.network.load_state_dict(student.state_dict())


#: The smallest and largest teacher decay :func:`auto_ema_decay` returns.
EMA_DECAY_RANGE = (0.9, 0.999)


def auto_ema_decay(total_steps: int) -> float:
    """The teacher's decay for a run of ``total_steps`` optimiser steps (``FinetuneConfig(ema_decay=None)``).

    The teacher averages the network over about ``1 / (1 - decay)`` steps. A fixed 0.99 (100
    steps) suits runs of many thousands of steps; a fine-tuning run on a few dozen labels lasts a
    few hundred, and a teacher averaged over half of it lags far behind the network it should
    lead: on PSFHS with 50 labels (200 steps) the 0.99 teacher that was validated and exported
    erred by 11–19 px where its own network erred by 11–12 px. The time constant is kept at a
    twentieth of the run, as :func:`~sslkeypoint.ssl.auto_momentum` keeps MoCo's key encoder:
    ``1 - 20 / total_steps`` within :data:`EMA_DECAY_RANGE`.

    Args:
        total_steps: Optimiser steps of the run.

    Returns:
        The decay.

    Examples:
        >>> auto_ema_decay(200), auto_ema_decay(800), auto_ema_decay(4_000), auto_ema_decay(10**6)
        (0.9, 0.975, 0.995, 0.999)
    """
    low, high = EMA_DECAY_RANGE
    return auto_momentum(total_steps, low=low, high=high)


def sigmoid_rampup(step: int, length: int) -> float:
    """The weight ramp of the mean teacher: ``exp(-5 (1 - t)^2)`` with ``t = min(step / length, 1)``.

    Args:
        step: Optimiser steps taken.
        length: Steps to reach 1 (0: always 1).

    Examples:
        >>> round(sigmoid_rampup(0, 100), 4), round(sigmoid_rampup(50, 100), 4), sigmoid_rampup(100, 100)
        (0.0067, 0.2865, 1.0)
    """
    if length <= 0:
        return 1.0
    t = min(max(step, 0) / length, 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def confidence_mask(heatmaps: Tensor, threshold: float) -> Tensor:
    """Channels whose peak (maximum) reaches ``threshold``: the confident pseudo-labels.

    Args:
        heatmaps: ``(B, K, h, w)`` teacher heatmaps.
        threshold: Minimum peak value.

    Returns:
        ``(B, K)`` bool.

    Examples:
        >>> import torch
        >>> hm = torch.zeros(1, 2, 4, 4); hm[0, 0, 1, 2] = 0.9; hm[0, 1, 3, 3] = 0.2
        >>> confidence_mask(hm, 0.5).tolist()
        [[True, False]]
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must have shape (B, K, h, w); got {tuple(heatmaps.shape)}")
    return heatmaps.detach().amax(dim=(-2, -1)) >= threshold


def mean_teacher_loss(
    student: nn.Module,
    teacher: nn.Module,
    images: Tensor,
    augmentation: KeypointAugmentation,
    stride: int,
    confidence: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """The unlabelled loss of one batch: the student on a view against the moved teacher heatmaps.

    Args:
        student: The trained network ``(B, C, H, W) -> (B, K, H / stride, W / stride)``.
        teacher: The teacher (called without gradient on the un-augmented images).
        images: ``(B, C, H, W)`` unlabelled images in ``[0, 1]``.
        augmentation: Draws the student's view (the caller seeds the global generator).
        stride: Heatmap stride.
        confidence: :func:`confidence_mask` threshold on the teacher's peaks.

    Returns:
        ``(loss, kept)``: the :func:`~sslkeypoint.losses.consistency_loss` and the fraction of ``(image, channel)``
        pairs that passed the confidence filter (a detached scalar).

    Examples:
        >>> import torch
        >>> from sslkeypoint.augment import keypoint_augmentation
        >>> net = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(1, 2, 1), torch.nn.Sigmoid())
        >>> loss, kept = mean_teacher_loss(net, EMATeacher(net), torch.rand(2, 1, 16, 16),
        ...                                keypoint_augmentation(rotation=10.0), stride=4)
        >>> loss.shape, loss.requires_grad, kept.item()
        (torch.Size([]), True, 1.0)
    """
    with torch.no_grad():
        target = teacher(images).float()
    keep = confidence_mask(target, confidence)
    view = augment_with_heatmaps(augmentation, images, target, stride)
    keep = torch.gather(keep, 1, view.permutation)
    pred = student(view.images)
    return consistency_loss(pred, view.heatmaps, view.valid, keep), keep.float().mean().detach()


class MeanTeacher(FinetuneObjective):
    """The mean teacher as a :class:`~sslkeypoint.ssl.FinetuneObjective` (see the module notes).

    Built by :meth:`MeanTeacherMethod.build <sslkeypoint.methods.MeanTeacherMethod.build>`.

    Args:
        network: The network being trained; the teacher starts as a copy of it.
        stride: Heatmap stride of the network.
        augment_kwargs: Arguments of the :class:`~sslkeypoint.augment.KeypointAugmentation` that
            draws the network's view of each unlabelled image.
        weight: Weight of the unlabelled loss once ramped up.
        rampup_steps: Optimiser steps of the :func:`sigmoid_rampup` (0: none).
        ema_decay: Teacher decay per step; ``None``: :func:`auto_ema_decay` of the run's length.
        confidence: :func:`confidence_mask` threshold of the teacher's heatmap peaks.
        eval_teacher: Validate and save the teacher as the model (:meth:`predicting_network`).

    Attributes:
        teacher: The :class:`EMATeacher`.
        augmentation: The view augmentation.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(1, 2, 1), torch.nn.Sigmoid())
        >>> objective = MeanTeacher(net, stride=4, augment_kwargs={"rotation": 10.0}, ema_decay=0.5)
        >>> loss, logs = objective.unlabelled_loss(net, torch.rand(2, 1, 16, 16), step=0, total_steps=10)
        >>> loss.requires_grad, sorted(logs)
        (True, ['semi_kept', 'semi_loss', 'semi_weight'])
        >>> objective.predicting_network(net) is objective.teacher.network
        True
    """

    uses_unlabelled = True

    def __init__(self, network: nn.Module, stride: int, augment_kwargs: Mapping[str, Any], weight: float = 1.0,
                 rampup_steps: int = 200, ema_decay: float | None = None, confidence: float = 0.0,
                 eval_teacher: bool = True) -> None:
        super().__init__()
        self.teacher = EMATeacher(network)
        self.augmentation = KeypointAugmentation(**dict(augment_kwargs))
        self.stride = int(stride)
        self.weight = float(weight)
        self.rampup_steps = int(rampup_steps)
        self.ema_decay = ema_decay
        self.confidence = float(confidence)
        self.eval_teacher = bool(eval_teacher)

    def decay(self, total_steps: int) -> float:
        """The teacher's decay per optimiser step: ``ema_decay``, or :func:`auto_ema_decay` of ``total_steps``."""
        return float(self.ema_decay) if self.ema_decay is not None else auto_ema_decay(total_steps)

    def reset(self, network: nn.Module) -> None:
        """The teacher becomes an exact copy of ``network`` again."""
        self.teacher.reset(network)

    def unlabelled_loss(self, network: nn.Module, images: Tensor, step: int,
                        total_steps: int) -> tuple[Tensor, dict[str, Tensor | float]]:
        """The weighted :func:`mean_teacher_loss` and ``semi_loss``, ``semi_kept``, ``semi_weight``."""
        loss, kept = mean_teacher_loss(network, self.teacher, images, self.augmentation, self.stride,
                                       self.confidence)
        weight = self.weight * sigmoid_rampup(step, self.rampup_steps)
        return weight * loss, {"semi_loss": loss.detach(), "semi_kept": kept, "semi_weight": weight}

    def after_step(self, network: nn.Module, step: int, total_steps: int) -> None:
        """Move the teacher towards the network by :meth:`decay`."""
        self.teacher.update(network, self.decay(total_steps))

    def predicting_network(self, network: nn.Module) -> nn.Module:
        """The teacher with ``eval_teacher``, else ``network``."""
        return self.teacher.network if self.eval_teacher else network
