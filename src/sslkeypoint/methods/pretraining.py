"""Pre-training methods: MoCo v2, DenseCL and masked-image reconstruction of the whole U-Net.

Each is a frozen dataclass given to :class:`~sslkeypoint.configs.PretrainConfig` as ``method``; the
LightningModule builds its objective (:mod:`sslkeypoint.ssl`) around the config's encoder. What each
learns:

* :class:`MoCoV2Method` — the encoder: two views of an image (or two frames) are one instance
  (:class:`~sslkeypoint.ssl.MoCoV2`);
* :class:`DenseCLMethod` — the encoder (or encoder and decoder): MoCo v2 plus a per-location
  contrastive loss (:class:`~sslkeypoint.ssl.DenseCL`);
* :class:`ReconstructionMethod` — encoder and decoder: the image behind masked patches (and noise)
  (:class:`~sslkeypoint.ssl.MaskedReconstruction`).

Methods that train a decoder (``DenseCLMethod(level="decoder")``, :class:`ReconstructionMethod`)
also save ``unet.safetensors``, which fine-tuning loads with ``FinetuneConfig(init_encoder=...,
init_decoder=True)``: the whole U-Net but its head starts pre-trained.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from sslkeypoint.methods.base import PretrainingMethod

__all__ = ["DenseCLMethod", "MoCoV2Method", "ReconstructionMethod"]


@dataclasses.dataclass(frozen=True)
class MoCoV2Method(PretrainingMethod):
    """MoCo v2 (Chen et al., 2020) on lightly's parts (:class:`~sslkeypoint.ssl.MoCoV2`).

    Attributes:
        projection_dim: Projection size.
        hidden_dim: Projection head hidden size (``None``: the encoder's deepest width).
        queue_size: Requested number of negatives.
        cap_queue: Cap the queue below the number of training items minus one global batch
            (:func:`~sslkeypoint.ssl.cap_queue_size`), so that an image is rarely its own negative.
        temperature: InfoNCE temperature.
        momentum: Key-encoder momentum at the first optimiser step; ``None`` chooses it from the
            run's length (:func:`~sslkeypoint.ssl.auto_momentum`: 0.99 for runs of up to 2,000
            steps, rising to MoCo v2's 0.999 for runs of 20,000 steps and more).
        momentum_end: Momentum at the last optimiser step, reached by a cosine schedule stepped
            every optimiser step; ``None`` keeps the momentum constant (MoCo v2).
        split_bn: Sub-batches for the key encoder on one device (shuffle-BN substitute).
        mask_same_source: Keep queue entries that come from the query's own image (stage 1) or
            its own sequence (stage 2) out of its negatives.

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")  # the cap is announced with a warning
        ...     MoCoV2Method(queue_size=4096).resolved(num_items=1000, global_batch=32).queue_size
        968
    """

    name: ClassVar[str] = "moco_v2"

    projection_dim: int = 128
    hidden_dim: int | None = None
    queue_size: int = 65536
    cap_queue: bool = True
    temperature: float = 0.2
    momentum: float | None = None
    momentum_end: float | None = None
    split_bn: int = 8
    mask_same_source: bool = True

    def __post_init__(self) -> None:
        for name in ("projection_dim", "queue_size", "split_bn"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ValueError(f"hidden_dim must be None or >= 1; got {self.hidden_dim}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0; got {self.temperature}")
        start = 0.0 if self.momentum is None else self.momentum
        end = 1.0 if self.momentum_end is None else self.momentum_end
        if not (0.0 <= start <= 1.0 and 0.0 <= end <= 1.0 and start <= end):
            raise ValueError(
                "momentum must satisfy 0 <= momentum <= momentum_end <= 1 (None: chosen from the run "
                f"length / constant); got momentum={self.momentum}, momentum_end={self.momentum_end}"
            )

    def resolved(self, num_items: int, global_batch: int) -> MoCoV2Method:
        """With ``cap_queue``, the queue capped for ``num_items`` items and batches of ``global_batch``."""
        if not self.cap_queue:
            return self
        from sslkeypoint.ssl import cap_queue_size

        return dataclasses.replace(self, queue_size=cap_queue_size(self.queue_size, num_items, global_batch),
                                   cap_queue=False)

    def _moco_kwargs(self) -> dict[str, Any]:
        return {
            "projection_dim": self.projection_dim,
            "hidden_dim": self.hidden_dim,
            "queue_size": self.queue_size,
            "temperature": self.temperature,
            "momentum": self.momentum,
            "momentum_end": self.momentum_end,
            "split_bn": self.split_bn,
            "mask_same_source": self.mask_same_source,
        }

    def build(self, encoder: Any, *, image_size: tuple[int, int], num_items: int | None = None,
              global_batch: int | None = None) -> Any:
        """A :class:`~sslkeypoint.ssl.MoCoV2` around ``encoder`` (queue capped when the data size is known)."""
        from sslkeypoint.ssl import MoCoV2

        method = self.resolved(num_items, global_batch) if num_items and global_batch else self
        return MoCoV2(encoder, **method._moco_kwargs())


@dataclasses.dataclass(frozen=True)
class DenseCLMethod(MoCoV2Method):
    """DenseCL (Wang et al., 2021): MoCo v2 plus a dense contrastive loss (:class:`~sslkeypoint.ssl.DenseCL`).

    The loss is ``(1 - weight) · global + weight · dense``; the other fields are MoCo v2's.

    Attributes:
        weight: ``λ`` of the dense loss (0.5 in the DenseCL paper).
        level: Feature map of the dense loss: ``"encoder"`` (the encoder's deepest map) or
            ``"decoder"`` (the output of a U-Net decoder built as the heatmap model's, at
            ``decoder_stride``; the run then also saves ``unet.safetensors`` for
            ``FinetuneConfig(init_decoder=True)``). ``"decoder"`` needs an ``image_size`` that is a
            multiple of the encoder's deepest reduction.
        samples: Query locations per image scored by the dense loss, a random subset (``None``:
            every location). Bounds its cost on large maps.
        decoder_stride: ``"decoder"`` level: input pixels per decoder output pixel. Use the
            fine-tuning ``heatmap_stride`` so the pre-trained decoder loads whole.
    """

    name: ClassVar[str] = "densecl"

    weight: float = 0.5
    level: str = "encoder"
    samples: int | None = 64
    decoder_stride: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"weight (of the dense loss) must be in [0, 1]; got {self.weight}")
        if self.level not in ("encoder", "decoder"):
            raise ValueError(f"level must be 'encoder' or 'decoder'; got {self.level!r}")
        if (self.samples is not None and self.samples < 1) or self.decoder_stride < 1:
            raise ValueError(
                "samples (or None) and decoder_stride must be >= 1; got "
                f"samples={self.samples}, decoder_stride={self.decoder_stride}"
            )

    def build(self, encoder: Any, *, image_size: tuple[int, int], num_items: int | None = None,
              global_batch: int | None = None) -> Any:
        """A :class:`~sslkeypoint.ssl.DenseCL` around ``encoder``."""
        from sslkeypoint.ssl import DenseCL

        method = self.resolved(num_items, global_batch) if num_items and global_batch else self
        return DenseCL(encoder, dense_weight=self.weight, level=self.level, decoder_stride=self.decoder_stride,
                       dense_samples=self.samples, **method._moco_kwargs())


@dataclasses.dataclass(frozen=True)
class ReconstructionMethod(PretrainingMethod):
    """Masked-image reconstruction of the whole U-Net (:class:`~sslkeypoint.ssl.MaskedReconstruction`).

    Encoder and decoder learn together to paint back the image under masked patches (and under
    noise, ``noise_std > 0``: denoising); nothing of the decoder starts random in fine-tuning
    (``init_decoder=True``) but its last 1×1 layer. The run saves ``unet.safetensors``.

    Attributes:
        mask_ratio: Share of the ``patch_size`` patches masked in each image (0: no masking, a
            denoising objective, which then needs ``noise_std > 0``).
        patch_size: Side of a masked square patch in input pixels.
        noise_std: Standard deviation of Gaussian noise added to the input (0: none).
        decoder_stride: Input pixels per decoder output pixel (the fine-tuning ``heatmap_stride``);
            each decoder pixel predicts its ``stride × stride`` block of the image.
    """

    name: ClassVar[str] = "reconstruction"
    num_views: ClassVar[int] = 1

    mask_ratio: float = 0.6
    patch_size: int = 16
    noise_std: float = 0.0
    decoder_stride: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1); got {self.mask_ratio}")
        if self.patch_size < 1 or self.decoder_stride < 1:
            raise ValueError(f"patch_size and decoder_stride must be >= 1; got {self.patch_size}, {self.decoder_stride}")
        if self.noise_std < 0 or (self.mask_ratio == 0 and self.noise_std == 0):
            raise ValueError(
                "give mask_ratio > 0 (masked reconstruction) or noise_std > 0 (denoising), noise_std >= 0; got "
                f"mask_ratio={self.mask_ratio}, noise_std={self.noise_std}"
            )

    def build(self, encoder: Any, *, image_size: tuple[int, int], num_items: int | None = None,
              global_batch: int | None = None) -> Any:
        """A :class:`~sslkeypoint.ssl.MaskedReconstruction` around ``encoder``."""
        from sslkeypoint.ssl import MaskedReconstruction

        return MaskedReconstruction(encoder, decoder_stride=self.decoder_stride, mask_ratio=self.mask_ratio,
                                    patch_size=self.patch_size, noise_std=self.noise_std)
