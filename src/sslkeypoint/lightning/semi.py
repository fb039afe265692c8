"""Mean teacher: semi-supervised heatmap fine-tuning on a pool of unlabelled images.

With ``FinetuneConfig(semi="mean_teacher")``, :class:`~sslkeypoint.lightning.HeatmapFinetuneModule`
keeps a teacher, an exponential moving average of the network it trains (:class:`EMATeacher`),
and adds to the labelled heatmap loss a consistency loss on each batch's unlabelled images
(``batch["unlabelled"]``, from :class:`~sslkeypoint.data.KeypointDataModule` given an unlabelled
pool):

1. the teacher predicts heatmaps on the unlabelled images as they are;
2. a random view of each image is drawn with :func:`~sslkeypoint.augment.keypoint_augmentation` of
   ``config.augment_kwargs``, and the teacher's heatmaps are moved with the view's geometric
   transform (:func:`~sslkeypoint.augment.augment_with_heatmaps`: heatmap stride, flip pairs);
3. the network predicts on the view; the loss is the mean squared difference from the moved
   teacher heatmaps (:func:`consistency_loss`) over the pixels the transform keeps inside the
   image and the channels whose teacher peak reaches ``config.semi_confidence``
   (:func:`confidence_mask`), weighted by ``config.semi_weight`` times :func:`sigmoid_rampup`
   of the optimiser step;
4. after every optimiser step the teacher moves towards the network by ``config.ema_decay``
   (:meth:`EMATeacher.update`), by default chosen from the run's length (:func:`auto_ema_decay`).

The teacher is a submodule (``teacher.network.*`` in the module's ``state_dict``), so checkpoints
and resumed runs carry it. With ``config.semi_eval_teacher`` validation scores the teacher, and
checkpoints store it as their ``model.*`` weights (the trained network as ``student.*``; see
:func:`teacher_as_model`), so :meth:`KeypointPredictor.from_checkpoint
<sslkeypoint.inference.KeypointPredictor.from_checkpoint>` predicts with the network that was
validated; loading the checkpoint into the module puts both back in their place.

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
from sslkeypoint.ssl import auto_momentum

__all__ = [
    "EMA_DECAY_RANGE",
    "MODEL_PREFIX",
    "STUDENT_PREFIX",
    "TEACHER_PREFIX",
    "EMATeacher",
    "auto_ema_decay",
    "confidence_mask",
    "consistency_loss",
    "mean_teacher_loss",
    "rename_prefixes",
    "sigmoid_rampup",
    "teacher_as_model",
    "teacher_from_model",
]

#: ``state_dict`` prefix of the trained network in the module.
MODEL_PREFIX = "model."
#: ``state_dict`` prefix of the teacher network in the module.
TEACHER_PREFIX = "teacher.network."
#: Prefix of the trained network in a checkpoint whose ``model.*`` weights are the teacher's.
STUDENT_PREFIX = "student."


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


def consistency_loss(pred: Tensor, target: Tensor, valid: Tensor, keep: Tensor) -> Tensor:
    """Mean squared difference over the kept channels' valid pixels (0 when none is kept).

    Args:
        pred: ``(B, K, h, w)`` student heatmaps.
        target: ``(B, K, h, w)`` teacher heatmaps (no gradient flows into them).
        valid: ``(B, 1, h, w)`` or ``(B, K, h, w)`` bool: pixels where the target is known.
        keep: ``(B, K)`` bool: channels that count.

    Returns:
        Scalar float32 loss, on ``pred``'s graph also when nothing is kept.

    Examples:
        >>> import torch
        >>> pred, target = torch.zeros(1, 2, 1, 2), torch.tensor([[[[1.0, 2.0]], [[5.0, 5.0]]]])
        >>> valid = torch.tensor([[[[True, False]]]])
        >>> consistency_loss(pred, target, valid, torch.tensor([[True, False]])).item()  # (0 - 1)^2 / 1
        1.0
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"pred and target must have the same shape (B, K, h, w); got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    b, k = pred.shape[:2]
    if tuple(keep.shape) != (b, k):
        raise ValueError(f"keep must have shape (B, K) = ({b}, {k}); got {tuple(keep.shape)}")
    weight = valid.to(torch.float32) * keep[:, :, None, None].to(torch.float32)
    weight = weight.expand(pred.shape)
    diff = (pred.float() - target.detach().float()) ** 2
    return (diff * weight).sum() / weight.sum().clamp_min(1.0)


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
        ``(loss, kept)``: the :func:`consistency_loss` and the fraction of ``(image, channel)``
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


def teacher_as_model(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A module's ``state_dict`` for saving: the teacher as ``model.*``, the network as ``student.*``.

    Examples:
        >>> teacher_as_model({"model.w": 1, "teacher.network.w": 2, "val_loss.x": 3})
        {'student.w': 1, 'model.w': 2, 'val_loss.x': 3}
    """
    return rename_prefixes(state_dict, {MODEL_PREFIX: STUDENT_PREFIX, TEACHER_PREFIX: MODEL_PREFIX})


def teacher_from_model(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`teacher_as_model`: a saved ``state_dict`` back in the module's names.

    Examples:
        >>> teacher_from_model(teacher_as_model({"model.w": 1, "teacher.network.w": 2}))
        {'model.w': 1, 'teacher.network.w': 2}
    """
    return rename_prefixes(state_dict, {MODEL_PREFIX: TEACHER_PREFIX, STUDENT_PREFIX: MODEL_PREFIX})


def rename_prefixes(state_dict: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """The ``state_dict`` with key prefixes renamed (each key by the first prefix it starts with).

    :func:`teacher_as_model` and :func:`teacher_from_model` use it.

    Args:
        state_dict: The weights.
        renames: Old prefix → new prefix.

    Returns:
        A new dict, in the same order.

    Raises:
        ValueError: If two keys would get the same name.

    Examples:
        >>> sd = {"model.w": 1, "teacher.network.w": 2, "other": 3}
        >>> rename_prefixes(sd, {MODEL_PREFIX: STUDENT_PREFIX, TEACHER_PREFIX: MODEL_PREFIX})
        {'student.w': 1, 'model.w': 2, 'other': 3}
    """
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        new = key
        for old, replacement in renames.items():
            if key.startswith(old):
                new = replacement + key[len(old) :]
                break
        if new in out:
            raise ValueError(f"renaming {key!r} to {new!r} collides with another weight of that name")
        out[new] = value
    return out
