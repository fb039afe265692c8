"""DenseCL (Wang et al., 2021): MoCo v2 plus a dense contrastive loss, on lightly's parts.

:class:`DenseCL` extends :class:`~sslkeypoint.ssl.MoCoV2` with a second, per-location contrastive
task on a feature map of the network, so that pre-training teaches the features *where* things
are, not only *what* the image is — what a keypoint detector needs. The loss is::

    loss = (1 - λ) · global + λ · dense

* ``global``: MoCo v2's InfoNCE on the globally pooled deepest encoder feature (unchanged).
* ``dense``: a dense projection head (lightly's
  :class:`~lightly.models.modules.DenseCLProjectionHead`, an MLP applied at every location — a
  1×1-convolution MLP) maps every location ``r`` of a query feature map to a vector ``q_r``. Its
  positive is the key vector ``t_s`` at the key location ``s`` whose *backbone* feature is most
  similar (cosine) to the query's backbone feature at ``r`` (lightly's
  :func:`~lightly.models.utils.select_most_similar`): the views are different crops of one
  image (stage 1) or two frames of one sequence (stage 2), so the same place sits at different
  locations in them. The negatives are a second queue of globally pooled dense keys of earlier
  batches (a :class:`~sslkeypoint.losses.GroupMemoryBank`, saved in ``state_dict()`` like the
  global queue). :func:`~sslkeypoint.losses.dense_info_nce_loss` is this loss as a plain function; it reuses
  :func:`~sslkeypoint.losses.info_nce_loss` with the same temperature.

As in the paper, every key — global and dense — and the key backbone features come from the
momentum network (momentum encoder, momentum decoder, momentum heads) under ``torch.no_grad``,
with the same shuffle-BN / split-BN as the global keys; the query backbone features come from the
online network.

Feature level (``level``):

* ``"encoder"``: the encoder's deepest feature map (the paper's choice: the backbone output).
* ``"decoder"``: the output of a U-Net decoder built on the encoder — the same
  :class:`~sslkeypoint.models.DecoderStage` stack :class:`~sslkeypoint.models.HeatmapUNet` builds
  for ``heatmap_stride=decoder_stride`` — so the decoder is pre-trained too and its weights
  (:meth:`DenseCL.export_unet`, keys ``encoder.*`` / ``decoder.*`` as in the heatmap model)
  initialise the fine-tuning decoder.

Large maps: the dense loss compares each query location with ``queue_size`` negatives, so its
cost grows with the number of locations (a 64×64 decoder map of a batch of 64 against 65,536
negatives would need 1.7·10^10 logits). ``dense_samples`` scores a random subset of that many
query locations per image (each still matched against every key location): the loss is then an
unbiased estimate of the mean over all locations.

Random draws (the key shuffle, the sampled locations) use torch's global random state;
:class:`~sslkeypoint.lightning.MoCoPretrainModule` seeds it for each step from the run's seed,
the process rank and the step, so that a resumed run draws them again exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import torch
from lightly.models.modules import DenseCLProjectionHead
from lightly.models.utils import (
    batch_shuffle_distributed,
    batch_unshuffle_distributed,
    deactivate_requires_grad,
    update_momentum,
)
from lightly.utils import dist
from torch import Tensor, nn
from torch.nn import functional as F

from sslkeypoint.losses.dense import dense_info_nce_loss
from sslkeypoint.losses.infonce import GroupMemoryBank
from sslkeypoint.models import HeatmapUNet, run_decoder
from sslkeypoint.ssl.moco import MoCoV2

__all__ = ["DENSE_LEVELS", "DenseCL", "DenseCLLosses"]

#: Feature maps the dense loss can work on.
DENSE_LEVELS: tuple[str, ...] = ("encoder", "decoder")


class DenseCLLosses(NamedTuple):
    """The loss of one :class:`DenseCL` step and its two terms (scalars)."""

    total: Tensor
    """``(1 - dense_weight) · global_loss + dense_weight · dense_loss``: what is minimised."""
    global_loss: Tensor
    """MoCo v2's InfoNCE on the pooled deepest encoder feature."""
    dense_loss: Tensor
    """The dense InfoNCE (:func:`dense_info_nce_loss`)."""


def _points(feature_map: Tensor) -> Tensor:
    """``(B, C, h, w) -> (B, h·w, C)``."""
    return feature_map.flatten(2).transpose(1, 2)


class DenseCL(MoCoV2):
    """DenseCL (Wang et al., 2021) around any sslkeypoint encoder: MoCo v2 + a dense loss.

    A drop-in for :class:`~sslkeypoint.ssl.MoCoV2`: ``forward(query_views, key_views, groups)``
    returns the loss ``(1 - dense_weight) · global + dense_weight · dense`` (see the module
    description), and in training enqueues the global keys and the pooled dense keys, each in
    its own queue; :meth:`update_momentum` moves every momentum part (encoder, decoder, both
    heads). :meth:`loss_terms` also returns both terms.

    Args:
        encoder: Query encoder: ``forward(x) -> list[Tensor]`` finest first, attributes
            ``channels``, ``reductions`` and ``in_chans`` (an sslkeypoint encoder).
        dense_weight: ``λ`` in ``[0, 1]`` (0.5 in the paper).
        level: ``"encoder"`` (deepest encoder map) or ``"decoder"`` (output of a U-Net decoder).
        decoder_stride: ``"decoder"`` level: input pixels per decoder output pixel, the
            ``heatmap_stride`` of the heatmap model the decoder will initialise.
        dense_samples: Query locations scored per image (a random subset; every one when the map
            has at most that many, or when ``None``).
        projection_dim: Output size of both projection heads (128).
        hidden_dim: Hidden size of both heads; ``None`` uses the width of each head's input.
        queue_size: Entries of each queue (the global one and the dense one).
        temperature: Softmax temperature of both losses (0.2).
        momentum: Momentum of :meth:`update_momentum` and of the first step (see ``MoCoV2``).
        split_bn: Sub-batches of the key network in a single process (see ``MoCoV2``).
        shuffle_bn: Shuffle keys across processes or within the batch before the key network.
        gather_distributed: Gather keys from every process into both queues.
        momentum_end: Momentum at the last step (see ``MoCoV2``).
        mask_same_source: Use the ``groups`` given to :meth:`step_losses` (see ``MoCoV2``).

    Attributes:
        dense_head: lightly ``DenseCLProjectionHead`` applied at every location of the dense map.
        dense_head_momentum: Its frozen momentum copy (computes the dense keys).
        decoder: The U-Net decoder (``"decoder"`` level; ``nn.ModuleList`` of
            :class:`~sslkeypoint.models.DecoderStage`, as ``HeatmapUNet.decoder``), else ``None``.
        decoder_momentum: Its frozen momentum copy, else ``None``.
        dense_queue: :class:`~sslkeypoint.losses.GroupMemoryBank` of pooled dense keys.
        dense_weight: ``λ``.
        level: The feature level.

    Examples:
        >>> import torch
        >>> from sslkeypoint.encoders import UNetEncoder
        >>> enc = UNetEncoder(in_chans=1, widths=(4, 8), bottleneck_width=16)
        >>> model = DenseCL(enc, level="decoder", decoder_stride=2, projection_dim=8, queue_size=16,
        ...                 split_bn=2)
        >>> x = torch.rand(4, 1, 16, 16)
        >>> terms = model.loss_terms(x, x.flip(-1))
        >>> terms.total.backward(); model.update_momentum(0.99)
        >>> model.queue.pointer, model.dense_queue.pointer
        (4, 4)
        >>> sorted({k.split(".")[0] for k in model.export_unet()})
        ['decoder', 'encoder']
    """

    #: The key shuffle and the sampled locations are drawn anew by a resumed run.
    seeded_draws: ClassVar[bool] = True

    #: Top-level parts a plain :class:`~sslkeypoint.ssl.MoCoV2` does not have.
    DENSE_PARTS: ClassVar[tuple[str, ...]] = (
        "dense_head",
        "dense_head_momentum",
        "decoder",
        "decoder_momentum",
        "dense_queue",
    )

    def __init__(
        self,
        encoder: nn.Module,
        dense_weight: float = 0.5,
        level: str = "encoder",
        decoder_stride: int = 4,
        dense_samples: int | None = None,
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
        super().__init__(
            encoder,
            projection_dim=projection_dim,
            hidden_dim=hidden_dim,
            queue_size=queue_size,
            temperature=temperature,
            momentum=momentum,
            split_bn=split_bn,
            shuffle_bn=shuffle_bn,
            gather_distributed=gather_distributed,
            momentum_end=momentum_end,
            mask_same_source=mask_same_source,
        )
        if not 0.0 <= dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be in [0, 1]; got {dense_weight}")
        if level not in DENSE_LEVELS:
            raise ValueError(f"level must be one of {DENSE_LEVELS}; got {level!r}")
        if dense_samples is not None and dense_samples < 1:
            raise ValueError(f"dense_samples must be >= 1 or None; got {dense_samples}")
        self.dense_weight = float(dense_weight)
        self.level = level
        self.dense_samples = dense_samples
        self.decoder: nn.ModuleList | None = None
        self.decoder_momentum: nn.ModuleList | None = None
        channels = int(encoder.channels[-1])  # type: ignore[index]
        self._divisor = 1
        if level == "decoder":
            # The heatmap model's own decoder (its head is not used): same stages, same names.
            unet = HeatmapUNet(encoder, num_keypoints=1, heatmap_stride=decoder_stride)
            self.decoder = unet.decoder
            self.decoder_momentum = copy.deepcopy(self.decoder)
            deactivate_requires_grad(self.decoder_momentum)
            channels = int(unet.decoder_channels[-1]) if unet.decoder_channels else channels
            self._divisor = int(encoder.reductions[-1])  # type: ignore[index]
        self.decoder_stride = int(decoder_stride)
        self.dense_head = DenseCLProjectionHead(channels, hidden_dim or channels, projection_dim)
        self.dense_head_momentum = copy.deepcopy(self.dense_head)
        deactivate_requires_grad(self.dense_head_momentum)
        self.dense_queue = GroupMemoryBank(queue_size, projection_dim, gather_distributed=gather_distributed)

    def _dense_map(self, features: list[Tensor], decoder: nn.ModuleList | None) -> Tensor:
        """The feature map of the dense loss, ``(B, C, h, w)``."""
        return features[-1] if decoder is None else run_decoder(decoder, features)

    @torch.no_grad()
    def _key_side(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Momentum network: global keys ``(B, D)``, dense keys ``(B, M, D)``, backbone ``(B, M, C)``.

        Shuffle BN across processes, or a random permutation run in ``split_bn`` sub-batches on
        one process, exactly as :meth:`MoCoV2.key`.
        """
        distributed = dist.world_size() > 1
        shuffle: Tensor | None = None
        if self.shuffle_bn and distributed:
            x, shuffle = batch_shuffle_distributed(x)
        elif self.shuffle_bn:
            shuffle = torch.randperm(x.shape[0], device=x.device)
            x = x[shuffle]
        splits = 1 if distributed else max(1, min(self.split_bn, x.shape[0] // 2))
        parts: list[tuple[Tensor, Tensor, Tensor]] = []
        for chunk in x.chunk(splits):
            features = self.encoder_momentum(chunk)
            k = self.projection_head_momentum(self._pool(features))
            backbone = _points(self._dense_map(features, self.decoder_momentum))
            parts.append((k, self.dense_head_momentum(backbone), backbone))
        outs = [torch.cat(list(items)) for items in zip(*parts)]
        if shuffle is not None and distributed:
            outs = [batch_unshuffle_distributed(t, shuffle) for t in outs]
        elif shuffle is not None:
            order = torch.argsort(shuffle)
            outs = [t[order] for t in outs]
        return outs[0], outs[1], outs[2]

    def _sample(self, points: Tensor) -> Tensor:
        """A random subset of ``dense_samples`` locations per image of ``(B, N, C)`` points."""
        batch, n, channels = points.shape
        if self.dense_samples is None or self.dense_samples >= n:
            return points
        index = torch.rand(batch, n, device=points.device).topk(self.dense_samples, dim=1).indices
        return points.gather(1, index[..., None].expand(-1, -1, channels))

    def loss_terms(self, query_views: Tensor, key_views: Tensor, groups: Tensor | None = None) -> DenseCLLosses:
        """Both losses and their weighted sum; enqueues both kinds of keys in training.

        Args:
            query_views: ``(B, C, H, W)`` first views (``H``, ``W`` multiples of the encoder's
                deepest reduction at the ``"decoder"`` level).
            key_views: ``(B, C, H, W)`` second views, same order.
            groups: Optional ``(B,)`` integer group ids (image or sequence index): queue entries
                of a query's own group are not its negatives, in either queue.

        Returns:
            :class:`DenseCLLosses`.
        """
        if query_views.shape != key_views.shape or query_views.ndim != 4:
            raise ValueError(
                "query_views and key_views must both be (B, C, H, W) of the same shape; got "
                f"{tuple(query_views.shape)} and {tuple(key_views.shape)}"
            )
        height, width = query_views.shape[-2:]
        if height % self._divisor or width % self._divisor:
            raise ValueError(
                f"the decoder level needs views whose size is a multiple of {self._divisor} (the "
                f"encoder's deepest reduction); got {height}x{width}: change image_size"
            )
        if groups is not None:
            if tuple(groups.shape) != (query_views.shape[0],):
                raise ValueError(f"groups must have shape ({query_views.shape[0]},); got {tuple(groups.shape)}")
            groups = groups.to(device=query_views.device, dtype=torch.long)
        features = self.encoder(query_views)
        q = self.projection_head(self._pool(features))
        q_points = self._sample(_points(self._dense_map(features, self.decoder)))
        q_dense = self.dense_head(q_points)
        k, k_dense, k_points = self._key_side(key_views)

        global_loss: Tensor = self.criterion(q, k, groups)  # enqueues the global keys in training
        negative_groups = None if groups is None else self.dense_queue.groups.clone()
        pooled = F.normalize(k_dense.mean(dim=1), dim=1)  # the paper's pooled dense key
        _, negatives = self.dense_queue(pooled)  # lightly's query: a copy of the queue
        dense_loss = dense_info_nce_loss(
            q_dense, k_dense, q_points, k_points, negatives, self.temperature, groups, negative_groups
        )
        if q_dense.requires_grad:
            self.dense_queue.enqueue(pooled, groups)
        total = (1.0 - self.dense_weight) * global_loss + self.dense_weight * dense_loss
        return DenseCLLosses(total, global_loss, dense_loss)

    def forward(self, query_views: Tensor, key_views: Tensor, groups: Tensor | None = None) -> Tensor:
        """The weighted loss of :meth:`loss_terms` (scalar); enqueues keys in training."""
        return self.loss_terms(query_views, key_views, groups).total

    def step_losses(self, views: Sequence[Tensor], groups: Tensor | None = None) -> dict[str, Tensor]:
        """``{"loss": total, "global": ..., "dense": ...}`` of :meth:`loss_terms` (groups used with
        ``mask_same_source`` only)."""
        terms = self.loss_terms(views[0], views[1], groups if self.mask_same_source else None)
        return {"loss": terms.total, "global": terms.global_loss, "dense": terms.dense_loss}

    @torch.no_grad()
    def update_momentum(self, m: float | None = None) -> None:
        """``k <- m k + (1 - m) q`` for the encoder, the decoder and both heads (lightly's helper).

        Args:
            m: Momentum in ``[0, 1]``; ``None`` uses :attr:`momentum`.
        """
        m = (self.momentum if self.momentum is not None else 0.99) if m is None else m
        super().update_momentum(m)
        update_momentum(self.dense_head, self.dense_head_momentum, m)
        if self.decoder is not None and self.decoder_momentum is not None:
            update_momentum(self.decoder, self.decoder_momentum, m)

    def export_decoder(self) -> dict[str, Tensor]:
        """The query decoder's weights with decoder-relative keys (``"0.up.weight"``, ...).

        Raises:
            ValueError: At the ``"encoder"`` level (there is no decoder).
        """
        if self.decoder is None:
            raise ValueError("this DenseCL works on the encoder level and has no decoder to export")
        return {name: t.detach().clone() for name, t in self.decoder.state_dict().items()}

    @property
    def trains_decoder(self) -> bool:
        """Whether the dense loss works on a decoder (the ``"decoder"`` level)."""
        return self.decoder is not None

    def export_unet(self) -> dict[str, Tensor]:
        """Encoder and decoder weights named as in :class:`~sslkeypoint.models.HeatmapUNet`.

        Keys ``encoder.*`` and ``decoder.*``:
        ``load_partial_state_dict(heatmap_model, model.export_unet())`` fills both (the head
        stays as it is, reported missing).

        Raises:
            ValueError: At the ``"encoder"`` level (there is no decoder).
        """
        decoder = self.export_decoder()
        return {
            **{f"encoder.{k}": v for k, v in self.export_encoder().items()},
            **{f"decoder.{k}": v for k, v in decoder.items()},
        }
