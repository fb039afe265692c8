"""Typed configurations: what a run learns (model, loss, optimiser, schedule) and where it runs.

* :class:`PretrainConfig` — a MoCo v2 pre-training stage (defaults: the paper's stage 1;
  :meth:`PretrainConfig.stage2` for stage 2);
* :class:`FinetuneConfig` — heatmap fine-tuning (defaults: the paper's stage 3);
* :class:`TrainerConfig` — the machine: accelerator, devices, strategy, precision, workers,
  logging. It changes how fast a run goes, not what it learns (within floating-point noise).

Configs are plain dataclasses: derive variants with :func:`dataclasses.replace`, store them with
``to_dict()`` (plain JSON-ready types) and rebuild them with ``from_dict()``, which rejects unknown
fields by name. The command line (``python -m sslkeypoint pretrain|finetune --help``) is generated
from their fields.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sslkeypoint._utils import plain, size_pair
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.measures import Measure, measures_from_dict, measures_to_dict, validate_measures

__all__ = ["SEMI_FIELDS", "STAGE2_AUGMENT", "FinetuneConfig", "PretrainConfig", "TrainerConfig"]

C = TypeVar("C")

#: Lighter view augmentation for stage 2 (the two frames already differ by motion).
STAGE2_AUGMENT: dict[str, Any] = {"scale": (0.6, 1.0), "jitter": 0.2, "blur_p": 0.2}


class _DictForm:
    """``to_dict`` / ``from_dict`` of a config dataclass (plain JSON-ready types; unknown keys refused)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings, None): JSON- and ``weights_only``-safe."""
        return plain(dataclasses.asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build from a dict such as :meth:`to_dict`'s; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; valid fields: {sorted(names)}")
        return cls(**dict(data))


def _tuple_or_none(value: Any, cast: Any) -> tuple[Any, ...] | None:
    return None if value is None else tuple(cast(v) for v in value)


@dataclass
class TrainerConfig(_DictForm):
    """Where and how a run executes: passed to ``pytorch_lightning.Trainer`` and the DataLoaders.

    Attributes:
        accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``, ...
        devices: Devices per node (an int, a list of indices or ``"auto"``).
        strategy: ``"auto"`` or ``"ddp"`` (several GPUs, processes or nodes).
        num_nodes: Number of nodes.
        precision: ``"32-true"``, ``"16-mixed"``, ``"bf16-mixed"``, ...
        num_workers: DataLoader worker processes.
        deterministic: Lightning's ``deterministic`` (``True`` makes a CPU run repeatable;
            several CUDA kernels have no deterministic version); ``None`` is Lightning's default.
        log_every_n_steps: Logging interval of step metrics.
        num_sanity_val_steps: Validation batches run before training to catch errors early.

    Examples:
        >>> TrainerConfig(accelerator="cpu", devices=2, strategy="ddp").devices
        2
    """

    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    num_workers: int = 0
    deterministic: bool | None = None
    log_every_n_steps: int = 10
    num_sanity_val_steps: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.devices, str) and self.devices.isdigit():
            self.devices = int(self.devices)
        if self.num_nodes < 1 or self.num_workers < 0 or self.log_every_n_steps < 1:
            raise ValueError(
                "num_nodes and log_every_n_steps must be >= 1 and num_workers >= 0; got "
                f"num_nodes={self.num_nodes}, num_workers={self.num_workers}, "
                f"log_every_n_steps={self.log_every_n_steps}"
            )

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``pytorch_lightning.Trainer`` (all fields but ``num_workers``)."""
        return {
            "accelerator": self.accelerator,
            "devices": self.devices,
            "strategy": self.strategy,
            "num_nodes": self.num_nodes,
            "precision": self.precision,
            "deterministic": self.deterministic,
            "log_every_n_steps": self.log_every_n_steps,
            "num_sanity_val_steps": self.num_sanity_val_steps,
        }


@dataclass
class PretrainConfig(_DictForm):
    """A MoCo v2 pre-training stage; the defaults are the paper's stage 1.

    Use :meth:`stage1` / :meth:`stage2` for the paper's settings of each stage, with overrides.

    Attributes:
        stage: 1 (two views of one image) or 2 (frame ``t`` vs frame ``t + Δ`` of a sequence).
        image_size: Network input ``(H, W)`` in px (an int means square); images are resized to it
            on loading and the random resized crop outputs it.
        in_chans: Input channels (1 for ultrasound).
        encoder: Name for :func:`~sslkeypoint.encoders.create_encoder` (``"unet"``, ``"timm:<name>"``).
        encoder_kwargs: Its keyword arguments besides ``in_chans`` (e.g. ``widths``).
        projection_dim: MoCo projection size.
        hidden_dim: Projection head hidden size (``None``: the encoder's deepest width).
        queue_size: Requested number of negatives.
        cap_queue: Cap the queue below the number of training items minus one global batch
            (:func:`~sslkeypoint.ssl.cap_queue_size`).
        temperature: InfoNCE temperature.
        momentum: Key-encoder momentum at the first optimiser step; ``None`` chooses it from the
            run's length (:func:`~sslkeypoint.ssl.auto_momentum`: 0.99 for runs of up to 2,000
            steps, rising to MoCo v2's 0.999 for runs of 20,000 steps and more), so that the key
            encoder follows the query encoder closely enough to learn in a short run.
        momentum_end: Momentum at the last optimiser step, reached by a cosine schedule stepped
            every optimiser step; ``None`` keeps the momentum constant (MoCo v2).
        split_bn: Sub-batches for the key encoder on one device (shuffle-BN substitute).
        batch_size: Images (or frame pairs) per device per step.
        max_epochs: Epochs.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        plateau: Reduce the learning rate on a plateau of the epoch loss.
        plateau_factor: Factor of the reduction.
        plateau_patience: Epochs without improvement before a reduction.
        delta: Stage 2: inclusive range of the frame offset ``Δ``.
        mask_same_source: Keep queue entries that come from the query's own image (stage 1) or
            its own sequence (stage 2) out of its negatives.
        augment: Keyword arguments of :func:`~sslkeypoint.augment.moco_v2_augmentation` (crop
            ``scale``, ``jitter``, ``blur_p``, ``hflip_p``, ...).
        seed: Seed of everything (weights, queue, shuffling, augmentation).
        dense_weight: Weight ``λ`` of DenseCL's dense loss (:class:`~sslkeypoint.ssl.DenseCL`): the
            loss is ``(1 - λ) · global + λ · dense`` (0.5 in the DenseCL paper). ``0`` trains plain
            MoCo v2 (:class:`~sslkeypoint.ssl.MoCoV2`, exactly as without these fields).
        dense_level: Feature map of the dense loss: ``"encoder"`` (the encoder's deepest map) or
            ``"decoder"`` (the output of a U-Net decoder built as the heatmap model's, at
            ``dense_decoder_stride``; the run then also saves ``unet.safetensors``, which
            fine-tuning loads with ``FinetuneConfig(init_encoder=..., init_decoder=True)``).
            ``"decoder"`` needs ``dense_weight > 0`` and an ``image_size`` that is a multiple of
            the encoder's deepest reduction.
        dense_samples: Query locations per image scored by the dense loss, a random subset
            (``None``: every location). Bounds its cost on large maps: each location is scored
            against the whole queue.
        dense_decoder_stride: ``"decoder"`` level: input pixels per decoder output pixel. Use the
            fine-tuning ``heatmap_stride`` (``input_size / heatmap_size``, 4 by default) so the
            pre-trained decoder loads whole.

    Examples:
        >>> c = PretrainConfig.stage2(batch_size=32)
        >>> c.stage, c.queue_size, c.lr, c.plateau, c.batch_size
        (2, 16384, 0.0001, True, 32)
    """

    stage: int = 1
    image_size: tuple[int, int] | int = (256, 256)
    in_chans: int = 1
    encoder: str = "unet"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    projection_dim: int = 128
    hidden_dim: int | None = None
    queue_size: int = 65536
    cap_queue: bool = True
    temperature: float = 0.2
    momentum: float | None = None
    momentum_end: float | None = None
    split_bn: int = 8
    batch_size: int = 64
    max_epochs: int = 200
    lr: float = 1e-3
    weight_decay: float = 1e-3
    plateau: bool = False
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    delta: tuple[int, int] = (1, 3)
    mask_same_source: bool = True
    augment: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    dense_weight: float = 0.0
    dense_level: str = "encoder"
    dense_samples: int | None = 64
    dense_decoder_stride: int = 4

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2; got {self.stage}")
        self.image_size = size_pair(self.image_size, "image_size")
        # Plain containers (lists, not tuples) so a config equals its JSON / checkpoint round trip.
        self.encoder_kwargs = plain(dict(self.encoder_kwargs))
        self.augment = plain(dict(self.augment))
        self.delta = (int(self.delta[0]), int(self.delta[1]))
        if not 1 <= self.delta[0] <= self.delta[1]:
            raise ValueError(f"delta must satisfy 1 <= min <= max; got {self.delta}")
        for name in ("batch_size", "max_epochs", "queue_size", "in_chans", "split_bn"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        start = 0.0 if self.momentum is None else self.momentum
        end = 1.0 if self.momentum_end is None else self.momentum_end
        if not (0.0 <= start <= 1.0 and 0.0 <= end <= 1.0 and start <= end):
            raise ValueError(
                "momentum must satisfy 0 <= momentum <= momentum_end <= 1 (None: chosen from the run "
                f"length / constant); got momentum={self.momentum}, momentum_end={self.momentum_end}"
            )
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be in [0, 1]; got {self.dense_weight}")
        if self.dense_level not in ("encoder", "decoder"):
            raise ValueError(f"dense_level must be 'encoder' or 'decoder'; got {self.dense_level!r}")
        if self.dense_level == "decoder" and self.dense_weight == 0:
            raise ValueError(
                "dense_level='decoder' pre-trains a decoder through the dense loss: set dense_weight > 0 "
                "(dense_weight=0 trains plain MoCo v2, which has no decoder)"
            )
        if (self.dense_samples is not None and self.dense_samples < 1) or self.dense_decoder_stride < 1:
            raise ValueError(
                "dense_samples (or None) and dense_decoder_stride must be >= 1; got "
                f"dense_samples={self.dense_samples}, dense_decoder_stride={self.dense_decoder_stride}"
            )

    @classmethod
    def stage1(cls, **overrides: Any) -> PretrainConfig:
        """The paper's stage 1: AdamW 1e-3 / 1e-3, batch 64, 200 epochs, queue 65,536."""
        return cls(**{"stage": 1, **overrides})

    @classmethod
    def stage2(cls, **overrides: Any) -> PretrainConfig:
        """The paper's stage 2: AdamW 1e-4 / 1e-4 + ReduceLROnPlateau, queue 16,384, lighter views."""
        defaults: dict[str, Any] = {
            "stage": 2,
            "queue_size": 16384,
            "lr": 1e-4,
            "weight_decay": 1e-4,
            "plateau": True,
            "augment": dict(STAGE2_AUGMENT),
        }
        return cls(**{**defaults, **overrides})


#: The fields of :class:`FinetuneConfig` that change nothing while its ``semi`` is ``None``
#: (left out of :meth:`FinetuneConfig.run_settings` then).
SEMI_FIELDS = ("semi", "semi_weight", "semi_rampup_steps", "ema_decay", "semi_confidence", "unlabelled_batch_size",
               "semi_eval_teacher")


@dataclass
class FinetuneConfig(_DictForm):
    """Heatmap fine-tuning; the defaults are the paper's stage 3.

    The paper fixes the input and heatmap sizes, σ, the MSE loss, Adam with lr 1e-5, batch 8, up
    to 1000 epochs, early stopping, learning-rate reduction on plateau and the 8:2 split; it does
    not give the patience values or the reduction factor, so ``early_stopping_patience=50``,
    ``lr_factor=0.1``, ``lr_patience=20`` are this library's choices.

    Attributes:
        input_size: Network input ``(H, W)`` in pixels; images are resized to it.
        heatmap_size: Heatmap ``(h, w)``; ``input_size / heatmap_size`` is the model's heatmap
            stride (the same integer for rows and columns).
        sigma: Gaussian σ of the targets, in heatmap pixels.
        in_chans: Image channels given to the encoder (1 for grayscale ultrasound).
        num_keypoints: Number of landmarks ``K``.
        keypoint_names: Optional ``K`` names (used in logs, metrics and predictions).
        measures: Named measures scored on the validation set and reported by predictions, e.g.
            ``{"aop": AngleMeasure(vertex=0, first=1, second=2)}`` (see :mod:`sslkeypoint.measures`).
        encoder: :func:`~sslkeypoint.encoders.create_encoder` name (``"unet"``, ``"timm:<name>"``).
        encoder_kwargs: Keyword arguments of the encoder (``widths``, ``bottleneck_width``, ...);
            ``in_chans`` is taken from :attr:`in_chans`.
        init_encoder: Weight file (``encoder.safetensors`` from pre-training, or a Lightning /
            torch checkpoint) loaded into the encoder with
            :func:`~sslkeypoint.weights.load_partial_state_dict` before training; ``None`` for
            random initialisation.
        init_strip_prefix: Prefixes stripped from the checkpoint's keys, tried in order.
        loss: ``"mse"`` (the paper: mean over all heatmaps, invisible ones with all-zero
            targets) or ``"masked_mse"`` (only visible landmarks' heatmaps).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        batch_size: Training and validation batch size (per process).
        max_epochs: Upper bound on epochs.
        early_stopping_patience: Validation epochs without improvement of ``val/mre_px`` before
            stopping.
        lr_factor: ``ReduceLROnPlateau`` factor.
        lr_patience: ``ReduceLROnPlateau`` patience in validation epochs.
        min_lr: Lower bound of the learning rate.
        val_fraction: Fraction of records held out for validation when no explicit split is
            given.
        seed: Seed of the split, the model initialisation, the shuffling and the augmentation.
        augment: Apply :func:`~sslkeypoint.augment.keypoint_augmentation` to training batches
            (off in the paper's description).
        augment_kwargs: Its arguments (rotation, translate, scale, brightness, contrast, ...).
        refine: Heatmap decoding of the default codec: ``"dark"``, ``"quarter"``, ``"none"``.
        blur_kernel: Optional odd smoothing kernel of the default codec's decoding.
        pixel_spacing: Optional mm per pixel to also report errors in mm.
        init_decoder: Also initialise the decoder from :attr:`init_encoder`'s file: its
            ``decoder.*`` tensors (the ``unet.safetensors`` of a pre-training run with
            ``dense_level="decoder"``, or a heatmap-model checkpoint) are loaded into the decoder
            by name and shape (:meth:`HeatmapFinetuneModule.init_decoder_from
            <sslkeypoint.lightning.HeatmapFinetuneModule.init_decoder_from>`); a file without
            them is an error. Needs ``init_encoder``.
        semi: Semi-supervised learning on a pool of unlabelled images (the ``unlabelled``
            argument of :func:`~sslkeypoint.run_finetuning`): ``None`` (off) or
            ``"mean_teacher"`` — an exponential moving average of the network (the teacher)
            predicts heatmaps on each unlabelled image; the network learns to predict them, mapped
            through the same geometric transform, on an augmented view of the image
            (:mod:`sslkeypoint.lightning.semi`). The view is drawn with
            :func:`~sslkeypoint.augment.keypoint_augmentation` of :attr:`augment_kwargs`, whether
            or not :attr:`augment` also augments the labelled batches.
        semi_weight: Weight of the unlabelled loss once ramped up.
        semi_rampup_steps: Optimiser steps over which the weight rises from about
            ``0.007 * semi_weight`` to ``semi_weight`` along ``exp(-5 (1 - t)^2)`` (0: no ramp).
        ema_decay: Teacher update after every optimiser step:
            ``teacher = ema_decay * teacher + (1 - ema_decay) * network`` (parameters; BatchNorm
            statistics are copied). ``None`` (default): chosen from the run's planned length,
            :func:`~sslkeypoint.lightning.semi.auto_ema_decay` (a time constant of a twentieth of
            the run, 0.9 for runs of up to 200 steps, at most 0.999).
        semi_confidence: Confidence filter of the pseudo-labels: an unlabelled image's heatmap
            channel whose teacher peak (maximum, in ``[0, 1]``) is below this is left out of the
            loss (0: every channel counts).
        unlabelled_batch_size: Unlabelled images per training batch (per process); ``None``:
            :attr:`batch_size`.
        semi_eval_teacher: Validate (and so select the best checkpoint, stop early and reduce the
            learning rate) on the teacher, and save the teacher as the checkpoints' model, which
            :meth:`KeypointPredictor.from_checkpoint
            <sslkeypoint.inference.KeypointPredictor.from_checkpoint>` predicts with; the
            averaged network is usually the better one. ``False``: the trained network.
    """

    input_size: tuple[int, int] = (256, 256)
    heatmap_size: tuple[int, int] = (64, 64)
    sigma: float = 2.0
    in_chans: int = 1
    num_keypoints: int = 3
    keypoint_names: tuple[str, ...] | None = None
    measures: dict[str, Measure] = field(default_factory=dict)
    encoder: str = "unet"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    init_encoder: str | None = None
    init_strip_prefix: tuple[str, ...] = ("model.", "module.", "backbone.", "encoder.")
    loss: str = "mse"
    lr: float = 1e-5
    weight_decay: float = 0.0
    batch_size: int = 8
    max_epochs: int = 1000
    early_stopping_patience: int = 50
    lr_factor: float = 0.1
    lr_patience: int = 20
    min_lr: float = 1e-8
    val_fraction: float = 0.2
    seed: int = 0
    augment: bool = False
    augment_kwargs: dict[str, Any] = field(
        default_factory=lambda: {
            "rotation": 10.0,
            "translate": 0.05,
            "scale": (0.9, 1.1),
            "brightness": 0.2,
            "contrast": 0.2,
        }
    )
    refine: str = "dark"
    blur_kernel: int | None = None
    pixel_spacing: float | None = None
    init_decoder: bool = False
    semi: str | None = None
    semi_weight: float = 1.0
    semi_rampup_steps: int = 200
    ema_decay: float | None = None
    semi_confidence: float = 0.0
    unlabelled_batch_size: int | None = None
    semi_eval_teacher: bool = True

    def __post_init__(self) -> None:
        self.input_size = size_pair(self.input_size, "input_size")
        self.heatmap_size = size_pair(self.heatmap_size, "heatmap_size")
        self.keypoint_names = _tuple_or_none(self.keypoint_names, str)
        self.init_strip_prefix = tuple(str(p) for p in self.init_strip_prefix)
        # Plain containers (lists, not tuples) so a config equals its JSON / checkpoint round trip.
        self.encoder_kwargs = plain(dict(self.encoder_kwargs))
        self.augment_kwargs = plain(dict(self.augment_kwargs))
        if self.init_encoder is not None:
            self.init_encoder = str(self.init_encoder)
        if min(self.input_size) < 1 or min(self.heatmap_size) < 3:
            raise ValueError(
                f"input_size must be positive and heatmap_size at least (3, 3); got "
                f"input_size={self.input_size}, heatmap_size={self.heatmap_size}"
            )
        sy, ry = divmod(self.input_size[0], self.heatmap_size[0])
        sx, rx = divmod(self.input_size[1], self.heatmap_size[1])
        if ry or rx or sy != sx:
            raise ValueError(
                "input_size must be the same integer multiple of heatmap_size along both axes; got "
                f"input_size={self.input_size}, heatmap_size={self.heatmap_size}"
            )
        if self.num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1; got {self.num_keypoints}")
        if self.keypoint_names is not None and len(self.keypoint_names) != self.num_keypoints:
            raise ValueError(
                f"keypoint_names must have num_keypoints={self.num_keypoints} entries; got "
                f"{len(self.keypoint_names)}: {self.keypoint_names}"
            )
        self.measures = validate_measures(measures_from_dict(self.measures), self.num_keypoints)
        if self.loss not in ("mse", "masked_mse"):
            raise ValueError(f"loss must be 'mse' or 'masked_mse'; got {self.loss!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1); got {self.val_fraction}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.lr <= 0:
            raise ValueError(
                f"batch_size and max_epochs must be >= 1 and lr > 0; got batch_size={self.batch_size}, "
                f"max_epochs={self.max_epochs}, lr={self.lr}"
            )
        if self.init_decoder and self.init_encoder is None:
            raise ValueError(
                "init_decoder=True loads the decoder from the init_encoder file (a unet.safetensors); "
                "set init_encoder too"
            )
        self.codec()  # validates sigma, refine and blur_kernel
        self._check_semi()

    def _check_semi(self) -> None:
        """Validate the semi-supervised fields (named in every message)."""
        if self.semi not in (None, "mean_teacher"):
            raise ValueError(f"semi must be None or 'mean_teacher'; got {self.semi!r}")
        if not (math.isfinite(self.semi_weight) and self.semi_weight >= 0):
            raise ValueError(f"semi_weight must be a finite number >= 0; got {self.semi_weight}")
        if self.semi_rampup_steps < 0:
            raise ValueError(f"semi_rampup_steps must be >= 0; got {self.semi_rampup_steps}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay <= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1]; got {self.ema_decay}")
        if not 0.0 <= self.semi_confidence <= 1.0:
            raise ValueError(
                f"semi_confidence must be in [0, 1] (heatmap peaks are in [0, 1]); got {self.semi_confidence}"
            )
        if self.unlabelled_batch_size is not None and self.unlabelled_batch_size < 1:
            raise ValueError(f"unlabelled_batch_size must be None or >= 1; got {self.unlabelled_batch_size}")

    @property
    def heatmap_stride(self) -> int:
        """Input pixels per heatmap pixel."""
        return self.input_size[0] // self.heatmap_size[0]

    def codec(self) -> HeatmapCodec:
        """The :class:`~sslkeypoint.heatmaps.HeatmapCodec` of this configuration."""
        return HeatmapCodec(self.input_size, self.heatmap_size, self.sigma, self.refine, self.blur_kernel)  # type: ignore[arg-type]

    def model_spec(self) -> dict[str, Any]:
        """Plain description of the network for :func:`~sslkeypoint.models.build_heatmap_model`."""
        return {
            "encoder": self.encoder,
            "encoder_kwargs": plain(self.encoder_kwargs),
            "in_chans": self.in_chans,
            "num_keypoints": self.num_keypoints,
            "heatmap_stride": self.heatmap_stride,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings, None); measures in their stored form.

        Examples:
            >>> from sslkeypoint.measures import AngleMeasure
            >>> c = FinetuneConfig(measures={"aop": AngleMeasure(0, 1, 2)})
            >>> FinetuneConfig.from_dict(c.to_dict()) == c
            True
        """
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["measures"] = measures_to_dict(self.measures)
        return plain(data)

    def run_settings(self) -> dict[str, Any]:
        """:meth:`to_dict` without the fields that change nothing in this run: the settings a run
        folder (or a cached stage) is identified by.

        The semi-supervised fields (:data:`SEMI_FIELDS`) are left out while :attr:`semi` is
        ``None``, so a supervised run is not refused, nor redone, over a default of the mean
        teacher.

        Examples:
            >>> "ema_decay" in FinetuneConfig().run_settings()
            False
            >>> "ema_decay" in FinetuneConfig(semi="mean_teacher").run_settings()
            True
        """
        settings = self.to_dict()
        if self.semi is None:
            for name in SEMI_FIELDS:
                settings.pop(name, None)
        return settings
