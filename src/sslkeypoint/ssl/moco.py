"""MoCo v2 built from lightly's parts: projection head, momentum helpers, memory bank.

The model is a query encoder (any sslkeypoint encoder: ``forward(x) -> list[Tensor]`` finest first,
attribute ``channels``) whose deepest feature map is globally average pooled and projected by
lightly's :class:`~lightly.models.modules.MoCoProjectionHead`; a frozen momentum copy of both
computes the keys; :class:`~sslkeypoint.losses.InfoNCELoss` scores each query against its key and
a queue of negatives, held in a :class:`~sslkeypoint.losses.GroupMemoryBank` (a subclass of
lightly's ``MemoryBankModule``) whose keys, pointer and group ids are part of ``state_dict()``.

Batch-norm leakage (MoCo, He et al. 2020, section 3.3): if the positive key is normalised with the
statistics of the same images as its query, the network can recognise its positive by those
statistics instead of by content. The remedy here:

* several processes (``torch.distributed`` initialised, world size > 1): the key batch is shuffled
  across processes (lightly's ``batch_shuffle_distributed``) before the key encoder and restored
  afterwards, the original shuffling BN;
* one process: the key batch is randomly permuted and the key encoder is run on ``split_bn``
  sub-batches, so every key is normalised with the statistics of a random fraction of the batch,
  as on one GPU of a multi-GPU run. Running the encoder per sub-batch works for any normalisation
  layer (``BatchNorm2d``, timm's ``BatchNormAct2d``, ...) without changing the modules; the query
  encoder keeps whole-batch statistics, so the exported encoder is untouched.

Negatives that are not negatives: a queue as long as the training set holds keys of the query's own
image; :meth:`MoCoV2.cap_queue_size` caps it. With temporally adjacent frames (stage 2 of
SSL-FetalBioNet), frames of the query's own sequence are near-duplicates: pass ``groups`` (sequence
ids) to :meth:`MoCoV2.forward` and queue entries of the same group are left out of that query's
negatives (their logits are set to ``-inf``). Image indices as groups do the same for single images
at any queue size. With nothing masked the loss equals lightly's ``NTXentLoss`` with a memory bank
(up to float rounding).

Under DDP the queue gathers keys (and groups) from every rank before enqueueing, so every rank
holds the same queue; buffers need not be broadcast (``DDPStrategy(broadcast_buffers=False)``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import torch
from lightly.models.modules import MoCoProjectionHead
from lightly.models.utils import (
    batch_shuffle_distributed,
    batch_unshuffle_distributed,
    deactivate_requires_grad,
    update_momentum,
)
from lightly.utils import dist
from lightly.utils.scheduler import cosine_schedule
from torch import Tensor, nn

from sslkeypoint.losses.infonce import GroupMemoryBank, InfoNCELoss
from sslkeypoint.ssl.base import PretrainObjective

__all__ = ["MoCoV2", "auto_momentum", "cap_queue_size"]


def auto_momentum(total_steps: int, low: float = 0.99, high: float = 0.999) -> float:
    """A key-encoder momentum that suits a run of ``total_steps`` optimiser steps.

    The key encoder is an exponential moving average of the query encoder with a time constant
    of ``1 / (1 - m)`` steps. MoCo v2's 0.999 (1,000 steps) is made for runs of hundreds of
    thousands of steps; in a run of a few hundred steps it leaves the key encoder near its random
    initialisation, and the InfoNCE loss drifts back to chance. This rule keeps the time constant
    at most a twentieth of the run, ``m = 1 - 20 / total_steps``, within ``[low, high]``.

    Args:
        total_steps: Optimiser steps of the run.
        low: Smallest momentum returned (short runs).
        high: Largest momentum returned (long runs).

    Returns:
        The momentum.

    Examples:
        >>> auto_momentum(500), auto_momentum(10_000), auto_momentum(1_000_000)
        (0.99, 0.998, 0.999)
    """
    if total_steps < 1 or not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"need total_steps >= 1 and 0 <= low <= high <= 1; got {total_steps}, {low}, {high}")
    return float(min(high, max(low, 1.0 - 20.0 / total_steps)))


def cap_queue_size(requested: int, num_images: int, batch_size: int) -> int:
    """Cap a MoCo queue below ``num_images - batch_size`` so an image is rarely its own negative.

    Within one epoch the queue then holds only keys of other images than those in the current
    batch. (After a reshuffle at an epoch boundary an image seen at the end of the last epoch can
    still meet itself once; that is rare and harmless.) A reduced size is logged (INFO, logger
    ``sslkeypoint.ssl.moco``): it is the right size for the data, nothing to act on.

    Args:
        requested: Queue size asked for (e.g. 65536).
        num_images: Number of distinct training images (or frame pairs).
        batch_size: Keys enqueued per step: the global batch (per-device batch × devices × nodes).

    Returns:
        ``min(requested, num_images - batch_size)``.

    Raises:
        ValueError: If there are not more images than one batch.

    Examples:
        >>> cap_queue_size(4096, 100_000, 64)
        4096
        >>> cap_queue_size(65536, 1000, 64)
        936
    """
    if requested < 1 or batch_size < 1:
        raise ValueError(f"requested and batch_size must be >= 1; got {requested} and {batch_size}")
    limit = num_images - batch_size
    if limit < 1:
        raise ValueError(
            f"a MoCo queue needs more training images than one batch; got {num_images} images "
            f"and a batch of {batch_size}"
        )
    if requested > limit:
        logging.getLogger(__name__).info(
            "MoCo queue of %d capped to %d: the training set has %d images and a batch of %d, so a larger "
            "queue would hold keys of the query's own image", requested, limit, num_images, batch_size,
        )
        return limit
    return requested


class MoCoV2(PretrainObjective):
    """MoCo v2 (Chen et al., 2020) around any sslkeypoint encoder, on lightly's parts.

    ``forward(query_views, key_views)`` returns the InfoNCE loss of the queries against their keys
    (positives) and the queue (negatives), and, in training (when the query carries a gradient),
    enqueues the keys — gathered from every process when ``torch.distributed`` runs, so that the
    queue is the same on every rank. Call :meth:`update_momentum` once per step, before the
    forward pass (as lightly's examples do).

    Args:
        encoder: Query encoder: ``forward(x) -> list[Tensor]`` finest first, attribute ``channels``.
        projection_dim: Output size of the projection head (128 in MoCo v2).
        hidden_dim: Hidden size of the two-layer projection head; ``None`` uses the encoder's
            deepest channel count.
        queue_size: Number of negatives in the queue (65536 in MoCo v2). See
            :func:`cap_queue_size` for small training sets.
        temperature: Softmax temperature (0.2 in MoCo v2).
        momentum: Momentum ``m`` of :meth:`update_momentum` (0.999 in MoCo v2), and at the first
            step of :meth:`momentum_at`; ``None`` chooses it from the run's length there
            (:func:`auto_momentum`) and uses 0.99 in :meth:`update_momentum`.
        momentum_end: Momentum at the last step of :meth:`momentum_at`, reached along a cosine
            (lightly's ``cosine_schedule``); ``None`` keeps it constant.
        split_bn: Number of sub-batches the key encoder is run on in a single process (shuffle BN
            substitute); ``1`` runs it on the whole batch. Each sub-batch holds at least two
            images.
        shuffle_bn: Shuffle keys across processes (distributed) or within the batch (one process)
            before the key encoder. Turn off only for encoders without batch statistics.
        gather_distributed: Gather keys from every process into the queue (keep ``True``).
        mask_same_source: Use the ``groups`` given to :meth:`step_losses` (the items' source image
            or sequence); ``False`` ignores them there.

    Attributes:
        encoder: The query encoder (trained; see :meth:`export_encoder`).
        projection_head: lightly ``MoCoProjectionHead`` on the pooled deepest feature.
        encoder_momentum: Frozen momentum copy of ``encoder``.
        projection_head_momentum: Frozen momentum copy of ``projection_head``.
        criterion: :class:`~sslkeypoint.losses.InfoNCELoss`; its ``memory_bank`` is the queue
            (also :attr:`queue`).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> class Tiny(nn.Module):
        ...     channels, reductions, in_chans = [8], [2], 1
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        ...     def forward(self, x):
        ...         return [self.conv(x)]
        >>> model = MoCoV2(Tiny(), projection_dim=16, queue_size=32, split_bn=2)
        >>> x = torch.rand(4, 1, 16, 16)
        >>> loss = model(x, x.flip(-1))
        >>> loss.backward(); model.update_momentum(0.99)
        >>> model.queue.pointer, model.queue.keys.shape, sorted(model.export_encoder())[:2]
        (4, torch.Size([32, 16]), ['conv.0.bias', 'conv.0.weight'])
    """

    def __init__(
        self,
        encoder: nn.Module,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        queue_size: int = 65536,
        temperature: float = 0.2,
        momentum: float | None = 0.999,
        split_bn: int = 8,
        shuffle_bn: bool = True,
        gather_distributed: bool = True,
        momentum_end: float | None = None,
        mask_same_source: bool = True,
    ) -> None:
        super().__init__()
        channels = getattr(encoder, "channels", None)
        if not channels:
            raise ValueError("encoder must have a non-empty 'channels' list (an sslkeypoint encoder)")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1; got {queue_size}")
        if split_bn < 1:
            raise ValueError(f"split_bn must be >= 1; got {split_bn}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] or None; got {momentum}")
        if momentum_end is not None and not 0.0 <= momentum_end <= 1.0:
            raise ValueError(f"momentum_end must be in [0, 1] or None; got {momentum_end}")
        dim = int(channels[-1])
        self.momentum = momentum
        self.momentum_end = momentum_end
        self.mask_same_source = bool(mask_same_source)
        self.split_bn = split_bn
        self.shuffle_bn = shuffle_bn
        self.encoder = encoder
        self.projection_head = MoCoProjectionHead(dim, hidden_dim or dim, projection_dim)
        self.encoder_momentum = copy.deepcopy(encoder)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.encoder_momentum)
        deactivate_requires_grad(self.projection_head_momentum)
        self.criterion = InfoNCELoss(
            queue_size, projection_dim, temperature=temperature, gather_distributed=gather_distributed
        )

    @property
    def queue(self) -> GroupMemoryBank:
        """The queue of negatives: ``keys (queue_size, projection_dim)``, ``pointer``, ``groups``."""
        return self.criterion.memory_bank

    @property
    def queue_size(self) -> int:
        """Number of entries in the queue."""
        return self.queue.queue_size

    @property
    def temperature(self) -> float:
        """Softmax temperature of the loss."""
        return float(self.criterion.temperature)

    @staticmethod
    def cap_queue_size(requested: int, num_images: int, batch_size: int) -> int:
        """Same as :func:`cap_queue_size`."""
        return cap_queue_size(requested, num_images, batch_size)

    @staticmethod
    def _pool(features: list[Tensor]) -> Tensor:
        """Global average pool of the deepest feature map: ``(B, C, h, w) -> (B, C)``."""
        return features[-1].mean(dim=(-2, -1))

    def query(self, x: Tensor) -> Tensor:
        """Query projections ``(B, projection_dim)`` (unnormalised) of images ``(B, C, H, W)``."""
        return self.projection_head(self._pool(self.encoder(x)))

    @torch.no_grad()
    def key(self, x: Tensor) -> Tensor:
        """Key projections ``(B, projection_dim)`` of images ``(B, C, H, W)`` with shuffle/split BN."""
        distributed = dist.world_size() > 1
        shuffle: Tensor | None = None
        if self.shuffle_bn and distributed:
            x, shuffle = batch_shuffle_distributed(x)
        elif self.shuffle_bn:
            shuffle = torch.randperm(x.shape[0], device=x.device)
            x = x[shuffle]
        splits = 1 if distributed else max(1, min(self.split_bn, x.shape[0] // 2))
        k = torch.cat(
            [
                self.projection_head_momentum(self._pool(self.encoder_momentum(chunk)))
                for chunk in x.chunk(splits)
            ]
        )
        if shuffle is not None and distributed:
            k = batch_unshuffle_distributed(k, shuffle)
        elif shuffle is not None:
            k = k[torch.argsort(shuffle)]
        return k

    def forward(self, query_views: Tensor, key_views: Tensor, groups: Tensor | None = None) -> Tensor:
        """InfoNCE loss of queries against their keys and the queue; enqueues keys in training.

        Args:
            query_views: ``(B, C, H, W)`` first views.
            key_views: ``(B, C, H, W)`` second views (the positives), same order.
            groups: Optional ``(B,)`` integer group ids (e.g. sequence index). Queue entries with
                the query's own group are not used as its negatives, and the keys are stored with
                their group.

        Returns:
            Scalar loss.
        """
        if query_views.shape != key_views.shape or query_views.ndim != 4:
            raise ValueError(
                "query_views and key_views must both be (B, C, H, W) of the same shape; got "
                f"{tuple(query_views.shape)} and {tuple(key_views.shape)}"
            )
        if groups is not None and tuple(groups.shape) != (query_views.shape[0],):
            raise ValueError(f"groups must have shape ({query_views.shape[0]},); got {tuple(groups.shape)}")
        loss: Tensor = self.criterion(self.query(query_views), self.key(key_views), groups)
        return loss

    def step_losses(self, views: Sequence[Tensor], groups: Tensor | None = None) -> dict[str, Tensor]:
        """``{"loss": InfoNCE}`` of the first views (queries) against the second (keys); see :meth:`forward`.

        ``groups`` are used with ``mask_same_source`` only.
        """
        query_views, key_views = views
        return {"loss": self(query_views, key_views, groups if self.mask_same_source else None)}

    def momentum_at(self, step: int, total_steps: int) -> float:
        """Key momentum at optimiser step ``step`` of a run of ``total_steps``.

        :attr:`momentum` (or, when it is ``None``, :func:`auto_momentum` of the run's length) at the
        first step, then constant (``momentum_end=None``) or a cosine to ``momentum_end`` at the last.

        Examples:
            >>> from torch import nn
            >>> class Tiny(nn.Module):
            ...     channels, reductions, in_chans = [4], [2], 1
            ...     def forward(self, x):
            ...         return [x]
            >>> model = MoCoV2(Tiny(), projection_dim=4, queue_size=8, momentum=None)
            >>> model.momentum_at(0, 500), model.momentum_at(0, 10_000)
            (0.99, 0.998)
        """
        total = max(1, int(total_steps))
        start = self.momentum if self.momentum is not None else auto_momentum(total)
        if self.momentum_end is None:
            return float(start)
        return float(cosine_schedule(min(step, total), total, start, self.momentum_end))

    def step_start(self, step: int, total_steps: int) -> dict[str, float]:
        """Move the key side towards the query side by :meth:`momentum_at`; ``{"momentum": m}``."""
        m = self.momentum_at(step, total_steps)
        self.update_momentum(m)
        return {"momentum": m}

    @torch.no_grad()
    def update_momentum(self, m: float | None = None) -> None:
        """Exponential moving average of the query side into the key side: ``k <- m k + (1 - m) q``.

        Uses lightly's ``update_momentum`` on the encoder and the projection head (parameters only;
        the key encoder keeps its own batch-norm statistics).

        Args:
            m: Momentum in ``[0, 1]``; ``None`` uses :attr:`momentum`. Recipes schedule it with
                lightly's ``cosine_schedule`` from 0.999 towards 1.
        """
        m = (self.momentum if self.momentum is not None else 0.99) if m is None else m
        update_momentum(self.encoder, self.encoder_momentum, m)
        update_momentum(self.projection_head, self.projection_head_momentum, m)

    def export_encoder(self) -> dict[str, Tensor]:
        """The query encoder's weights with encoder-relative keys (detached copies).

        ``load_partial_state_dict(HeatmapUNet(encoder_like, K).encoder, model.export_encoder())``
        loads them whole.
        """
        return super().export_encoder()
