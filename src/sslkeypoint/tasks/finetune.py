"""Supervised heatmap fine-tuning (stage 3 of SSL-FetalBioNet) as a LightningModule.

The self-supervised encoder sits inside a :class:`~sslkeypoint.models.HeatmapUNet`; inputs are
resized to ``input_size`` (256×256 in the paper), targets are Gaussian heatmaps (64×64, σ = 2
heatmap px) built on the fly from each batch's keypoints by a
:class:`~sslkeypoint.heatmaps.HeatmapCodec`, the loss is the mean squared error over all heatmaps,
the optimiser Adam (lr 1e-5, batch 8) for up to 1000 epochs with early stopping and
``ReduceLROnPlateau`` on the validation MRE, with an 8:2 train/validation split and a collate
function that drops invalid samples (missing or unreadable files, NaN or out-of-frame labels) and
counts them.

Validation decodes exactly as :class:`~sslkeypoint.inference.KeypointPredictor` does (codec decode,
then :func:`~sslkeypoint.heatmaps.keypoints_to_original` with each sample's original size), so the
logged ``val/mre_px`` is in original image pixels.

Typical use::

    from sslkeypoint.tasks.finetune import FinetuneConfig, run_finetuning

    config = FinetuneConfig(num_keypoints=3, keypoint_names=("PS1", "PS2", "FH1"),
                            aop_indices=(0, 1, 2), init_encoder="stage2/encoder.safetensors")
    result = run_finetuning(config, records, "runs/finetune")
    print(result.best_checkpoint, result.best_metrics["val/mre_px"])

Before a long run, two checks catch most silent mistakes:
:func:`sslkeypoint.visualize.render_keypoint_grid` (are the targets where the landmarks are?) and
:func:`overfit_one_batch` (can the model fit one batch at all?).

Command line (records file format in :func:`read_records`)::

    python -m sslkeypoint.tasks.finetune --records labels.csv --out runs/ft --aop \\
        --init-encoder stage2/encoder.safetensors
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler

from sslkeypoint._utils import size_pair
from sslkeypoint.data import KeypointRecord
from sslkeypoint.heatmaps import HeatmapCodec, keypoints_to_original
from sslkeypoint.inference import _SPEC_KEY, SPEC_VERSION, build_heatmap_model

__all__ = [
    "DropReport",
    "EpochShuffleSampler",
    "FinetuneConfig",
    "FinetuneResult",
    "HeatmapFinetuneModule",
    "ReportingCollate",
    "format_drop_summary",
    "heatmap_mse_loss",
    "main",
    "masked_heatmap_mse_loss",
    "overfit_one_batch",
    "read_records",
    "run_finetuning",
]

#: Loss signature: ``loss(pred (B, K, h, w), target (B, K, h, w), visible (B, K)) -> scalar``.
LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]

_MONITOR = "val/mre_px"
_STATE_KEY = "sslkeypoint_state"


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


def _tuple_or_none(value: Any, cast: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    return None if value is None else tuple(cast(v) for v in value)


@dataclass
class FinetuneConfig:
    """Everything that defines a fine-tuning run; the defaults are the paper's stage 3.

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
        aop_indices: Indices of ``(PS1, PS2, FH1)`` to evaluate the Angle of Progression, e.g.
            ``(0, 1, 2)``; ``None`` for other landmark sets.
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
        batch_size: Training and validation batch size.
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
        refine: Heatmap decoding for validation and inference: ``"dark"``, ``"quarter"``,
            ``"none"``.
        blur_kernel: Optional odd smoothing kernel for decoding noisy heatmaps.
        pixel_spacing: Optional mm per pixel to also report errors in mm.
        num_workers: DataLoader worker processes.
        precision: Lightning precision (``"32-true"``, ``"bf16-mixed"``, ``"16-mixed"``).
        accelerator: Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``).
        devices: Lightning devices.
        strategy: Lightning strategy.
        deterministic: Passed to the Trainer; ``True`` makes a CPU run repeatable.
        num_sanity_val_steps: Validation batches run before training to catch errors early.
        log_every_n_steps: Logging interval of training metrics.
    """

    input_size: tuple[int, int] = (256, 256)
    heatmap_size: tuple[int, int] = (64, 64)
    sigma: float = 2.0
    in_chans: int = 1
    num_keypoints: int = 3
    keypoint_names: tuple[str, ...] | None = None
    aop_indices: tuple[int, int, int] | None = None
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
    num_workers: int = 0
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    deterministic: bool = True
    num_sanity_val_steps: int = 2
    log_every_n_steps: int = 10

    def __post_init__(self) -> None:
        self.input_size = size_pair(self.input_size, "input_size")
        self.heatmap_size = size_pair(self.heatmap_size, "heatmap_size")
        self.keypoint_names = _tuple_or_none(self.keypoint_names, str)
        aop = _tuple_or_none(self.aop_indices, int)
        self.init_strip_prefix = tuple(str(p) for p in self.init_strip_prefix)
        # Plain containers (lists, not tuples) so a config equals its JSON / checkpoint round trip.
        self.encoder_kwargs = _plain(dict(self.encoder_kwargs))
        self.augment_kwargs = _plain(dict(self.augment_kwargs))
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
        if aop is not None:
            if len(aop) != 3 or not all(0 <= i < self.num_keypoints for i in aop):
                raise ValueError(
                    f"aop_indices must be three landmark indices (PS1, PS2, FH1) in [0, "
                    f"{self.num_keypoints}); got {aop}"
                )
            self.aop_indices = (aop[0], aop[1], aop[2])
        if self.loss not in ("mse", "masked_mse"):
            raise ValueError(f"loss must be 'mse' or 'masked_mse'; got {self.loss!r}")
        if self.refine not in ("dark", "quarter", "none"):
            raise ValueError(f"refine must be 'dark', 'quarter' or 'none'; got {self.refine!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1); got {self.val_fraction}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.lr <= 0:
            raise ValueError(
                f"batch_size and max_epochs must be >= 1 and lr > 0; got batch_size={self.batch_size}, "
                f"max_epochs={self.max_epochs}, lr={self.lr}"
            )

    @property
    def heatmap_stride(self) -> int:
        """Input pixels per heatmap pixel."""
        return self.input_size[0] // self.heatmap_size[0]

    def codec(self) -> HeatmapCodec:
        """The :class:`~sslkeypoint.heatmaps.HeatmapCodec` of this configuration."""
        return HeatmapCodec(self.input_size, self.heatmap_size, self.sigma)

    def model_spec(self) -> dict[str, Any]:
        """Plain description of the network for :func:`~sslkeypoint.inference.build_heatmap_model`."""
        return {
            "encoder": self.encoder,
            "encoder_kwargs": _plain(self.encoder_kwargs),
            "in_chans": self.in_chans,
            "num_keypoints": self.num_keypoints,
            "heatmap_stride": self.heatmap_stride,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings, None): JSON- and ``weights_only``-safe."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FinetuneConfig:
        """Build from a dict such as :meth:`to_dict`'s; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown FinetuneConfig fields {unknown}; valid fields: {sorted(names)}")
        return cls(**dict(data))


def _plain(obj: Any) -> Any:
    """Tuples to lists, recursively; leaves plain scalars."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ----------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------


def heatmap_mse_loss(pred: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
    """Mean squared error over all heatmaps (the paper's loss).

    Invisible landmarks have all-zero targets and still count, which teaches the network to stay
    dark where there is no landmark.

    Args:
        pred: ``(B, K, h, w)`` predicted heatmaps.
        target: ``(B, K, h, w)`` target heatmaps.
        visible: Ignored (present for the common loss signature).

    Returns:
        Scalar loss (float32 or wider).

    Examples:
        >>> import torch
        >>> heatmap_mse_loss(torch.ones(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
        tensor(1.)
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape; got {tuple(pred.shape)} and {tuple(target.shape)}")
    return F.mse_loss(pred.float(), target.float())


def masked_heatmap_mse_loss(pred: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
    """Mean squared error over the heatmaps of visible landmarks only.

    Args:
        pred: ``(B, K, h, w)`` predicted heatmaps.
        target: ``(B, K, h, w)`` target heatmaps.
        visible: ``(B, K)`` bool; ``None`` means all visible.

    Returns:
        Scalar loss; zero (with a gradient path) when nothing is visible.

    Examples:
        >>> import torch
        >>> pred, target = torch.ones(1, 2, 4, 4), torch.zeros(1, 2, 4, 4)
        >>> masked_heatmap_mse_loss(pred, target, torch.tensor([[True, False]]))
        tensor(1.)
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape; got {tuple(pred.shape)} and {tuple(target.shape)}")
    if visible is None:
        return heatmap_mse_loss(pred, target)
    if tuple(visible.shape) != tuple(pred.shape[:2]):
        raise ValueError(f"visible must have shape (B, K) = {tuple(pred.shape[:2])}; got {tuple(visible.shape)}")
    per_map = (pred.float() - target.float()).pow(2).mean(dim=(-2, -1))
    w = visible.to(per_map.dtype)
    return (per_map * w).sum() / w.sum().clamp(min=1.0)


# ----------------------------------------------------------------------------------------------
# The LightningModule
# ----------------------------------------------------------------------------------------------


class HeatmapFinetuneModule(pl.LightningModule):
    """Heatmap keypoint fine-tuning: a :class:`~sslkeypoint.models.HeatmapUNet` trained on
    Gaussian targets built on the fly.

    Batches are dicts from :class:`~sslkeypoint.data.KeypointDataset` collated by
    :func:`~sslkeypoint.data.filtering_collate`: ``image (B, C, H, W)`` in ``[0, 1]``,
    ``keypoints (B, K, 2)`` in input pixels, ``visible (B, K)``, ``original_size (B, 2)``. A
    ``None`` batch (every sample invalid) is skipped. Logged metrics: ``train/loss``,
    ``val/loss``, ``val/mre_px`` (original pixels), ``val/<name>_px`` per landmark,
    ``val/aop_mae_deg`` when ``aop_indices`` is set, ``val/heatmap_mse``, ``val/heatmap_mae``.

    The hyper-parameters saved in checkpoints are ``{"config": config.to_dict()}`` (plain
    types), and every checkpoint also carries an ``"sslkeypoint"`` entry with the model, codec and
    landmark description, so :meth:`KeypointPredictor.from_checkpoint
    <sslkeypoint.inference.KeypointPredictor.from_checkpoint>` rebuilds the predictor from the
    file alone. ``HeatmapFinetuneModule.load_from_checkpoint(path, weights_only=True)`` works too
    (with the default loss).

    Args:
        config: A :class:`FinetuneConfig` or its dict form.
        loss_fn: Optional loss ``(pred, target, visible) -> scalar``; default from
            ``config.loss``. A custom callable is not saved in checkpoints.
        model: Optional prebuilt network (``(B, C, H, W) -> (B, K, h, w)``); by default
            :func:`~sslkeypoint.inference.build_heatmap_model` of ``config.model_spec()``.

    Examples:
        >>> import torch
        >>> cfg = FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16), num_keypoints=2,
        ...                      encoder_kwargs={"widths": (4, 8), "bottleneck_width": 8})
        >>> module = HeatmapFinetuneModule(cfg)
        >>> module(torch.rand(2, 1, 32, 32)).shape
        torch.Size([2, 2, 16, 16])
    """

    def __init__(
        self,
        config: FinetuneConfig | Mapping[str, Any],
        loss_fn: LossFn | None = None,
        model: nn.Module | None = None,
    ) -> None:
        super().__init__()
        cfg = config if isinstance(config, FinetuneConfig) else FinetuneConfig.from_dict(config)
        self.config = cfg
        self.save_hyperparameters({"config": cfg.to_dict()})
        self.model = model if model is not None else build_heatmap_model(cfg.model_spec())
        self.codec = cfg.codec()
        if loss_fn is None:
            loss_fn = masked_heatmap_mse_loss if cfg.loss == "masked_mse" else heatmap_mse_loss
        self.loss_fn = loss_fn
        self.augmentation: nn.Module | None = None
        if cfg.augment:
            from sslkeypoint.augment import keypoint_augmentation

            self.augmentation = keypoint_augmentation(**cfg.augment_kwargs)
        self._evaluator = self._make_evaluator()
        #: One dict of validation metrics per validation epoch (also kept in checkpoints).
        self.val_history: list[dict[str, Any]] = []
        #: Invalid-sample counts per training epoch (also kept in checkpoints).
        self.drop_history: list[dict[str, Any]] = []
        #: The learning-rate schedule (created by :meth:`configure_optimizers`).
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._pending_plateau_state: dict[str, Any] | None = None

    def _make_evaluator(self) -> Any:
        from sslkeypoint.metrics import KeypointEvaluator

        cfg = self.config
        return KeypointEvaluator(
            keypoint_names=list(cfg.keypoint_names) if cfg.keypoint_names else None,
            aop_indices=cfg.aop_indices,
            pixel_spacing=cfg.pixel_spacing,
        )

    def forward(self, images: Tensor) -> Tensor:
        """Heatmaps ``(B, K, h, w)`` for images ``(B, C, H, W)``."""
        return self.model(images)

    def init_encoder_from(self, source: str | Path, strip_prefix: Sequence[str] | None = None) -> Any:
        """Load pre-trained encoder weights (partial, by name and shape) and return the report.

        Args:
            source: ``encoder.safetensors``, a Lightning checkpoint or any torch weight file.
            strip_prefix: Prefixes stripped from the file's keys; default
                ``config.init_strip_prefix``.

        Returns:
            The :class:`~sslkeypoint.weights.LoadReport` (raises if nothing matched).
        """
        from sslkeypoint.weights import load_partial_state_dict

        prefixes = self.config.init_strip_prefix if strip_prefix is None else tuple(strip_prefix)
        encoder = getattr(self.model, "encoder", self.model)
        return load_partial_state_dict(encoder, Path(source), strip_prefix=prefixes)

    # ------------------------------------------------------------------ steps
    def _unpack(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        images = batch["image"]
        keypoints = batch["keypoints"].to(torch.float32)
        visible = batch.get("visible")
        visible = torch.isfinite(keypoints).all(-1) if visible is None else visible.to(torch.bool)
        return images, keypoints, visible

    def _augment(self, images: Tensor, keypoints: Tensor, visible: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        assert self.augmentation is not None
        # A fresh seed per (run seed, step) keeps augmentation identical after a resume.
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.config.seed * 1_000_003 + int(self.global_step))
            return self.augmentation(images, keypoints, visible)

    def training_step(self, batch: Mapping[str, Any] | None, batch_idx: int) -> Tensor | None:
        """One optimisation step; returns ``None`` (skipped) for an empty batch."""
        batch = _strip_report_keys(batch)
        if batch is None:
            return None
        images, keypoints, visible = self._unpack(batch)
        if self.augmentation is not None:
            images, keypoints, visible = self._augment(images, keypoints, visible)
        target = self.codec.encode(keypoints, visible)
        pred = self.model(images)
        loss = self.loss_fn(pred, target, visible)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=images.shape[0])
        return loss

    def validation_step(self, batch: Mapping[str, Any] | None, batch_idx: int) -> None:
        """Accumulate validation metrics in original image pixels."""
        batch = _strip_report_keys(batch)
        if batch is None:
            return
        images, keypoints, visible = self._unpack(batch)
        target = self.codec.encode(keypoints, visible)
        pred = self.model(images)
        loss = self.loss_fn(pred, target, visible)
        self.log("val/loss", loss, on_epoch=True, batch_size=images.shape[0])
        kp_in, _ = self.codec.decode(pred.float(), refine=self.config.refine, blur_kernel=self.config.blur_kernel)  # type: ignore[arg-type]
        sizes = batch["original_size"].to(kp_in.device, torch.float32)
        pred_orig = keypoints_to_original(kp_in, sizes, self.config.input_size)
        gt_orig = keypoints_to_original(keypoints, sizes, self.config.input_size)
        self._evaluator.update(
            pred_orig.detach().cpu(),
            gt_orig.detach().cpu(),
            visible=visible.detach().cpu(),
            pred_heatmaps=pred.detach().float().cpu(),
            target_heatmaps=target.detach().float().cpu(),
        )

    def on_validation_epoch_start(self) -> None:
        """Start a fresh metric accumulation."""
        self._evaluator.reset()

    def on_validation_epoch_end(self) -> None:
        """Compute and log the epoch's metrics (``val/mre_px`` is ``inf`` with no valid sample)."""
        metrics = _flatten_metrics(self._evaluator.compute(), self.config.keypoint_names)
        self._evaluator.reset()
        if not math.isfinite(metrics.get(_MONITOR, math.nan)):
            metrics[_MONITOR] = math.inf
        for name, value in metrics.items():
            self.log(name, float(value), prog_bar=name == _MONITOR)
        if not self.trainer.sanity_checking:
            entry = {"epoch": int(self.current_epoch), "step": int(self.global_step), **metrics}
            self.val_history.append(entry)
            if self.plateau is not None and self.trainer.state.fn == "fit":
                self.plateau.step(metrics[_MONITOR])

    def configure_optimizers(self) -> Any:
        """Adam; the ``ReduceLROnPlateau`` on ``val/mre_px`` is stepped by the module itself.

        Lightning steps epoch schedulers after the epoch's checkpoint is written, so a resumed
        run would miss one plateau update; stepping it at the end of validation (before the
        checkpoint) and keeping its state in the checkpoint makes a resumed run identical to an
        uninterrupted one.
        """
        cfg = self.config
        optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
        )
        if self._pending_plateau_state is not None:
            self.plateau.load_state_dict(self._pending_plateau_state)
            self._pending_plateau_state = None
        return optimizer

    # ------------------------------------------------------------------ checkpoints
    def predictor_spec(self) -> dict[str, Any]:
        """The model/codec/landmark description stored in checkpoints (plain types)."""
        cfg = self.config
        return {
            "version": SPEC_VERSION,
            "model": cfg.model_spec(),
            "codec": {"input_size": list(cfg.input_size), "heatmap_size": list(cfg.heatmap_size), "sigma": cfg.sigma},
            "keypoint_names": list(cfg.keypoint_names) if cfg.keypoint_names else None,
            "aop_indices": list(cfg.aop_indices) if cfg.aop_indices else None,
            "refine": cfg.refine,
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the predictor description and the metric history (plain types only)."""
        checkpoint[_SPEC_KEY] = self.predictor_spec()
        checkpoint[_STATE_KEY] = {
            "val_history": _plain(self.val_history),
            "drop_history": _plain(self.drop_history),
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the metric history."""
        state = checkpoint.get(_STATE_KEY) or {}
        self.val_history = list(state.get("val_history", []))
        self.drop_history = list(state.get("drop_history", []))
        plateau = state.get("plateau")
        if plateau is not None:
            if self.plateau is not None:
                self.plateau.load_state_dict(plateau)
            else:
                self._pending_plateau_state = dict(plateau)


def _flatten_metrics(raw: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, float]:
    """Evaluator output to flat ``val/...`` scalars."""
    out: dict[str, float] = {}
    for key, value in raw.items():
        if key == "per_landmark_px":
            items: Sequence[tuple[str, Any]]
            if isinstance(value, Mapping):
                items = [(str(k), v) for k, v in value.items()]
            else:
                vals = value.tolist() if isinstance(value, (Tensor, np.ndarray)) else list(value)
                items = [(names[i] if names and i < len(names) else f"kp{i}", v) for i, v in enumerate(vals)]
            for name, v in items:
                out[f"val/{name}_px"] = float(v)
            continue
        if key == "sdr" and isinstance(value, Mapping):
            for radius, v in value.items():
                out[f"val/sdr_{float(radius):g}px"] = float(v)
            continue
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out[f"val/{key}"] = float(value)
    return out


# ----------------------------------------------------------------------------------------------
# Data plumbing
# ----------------------------------------------------------------------------------------------


class EpochShuffleSampler(Sampler[int]):
    """Random permutation per epoch from ``(seed, epoch)`` alone.

    Lightning calls :meth:`set_epoch` at the start of every epoch, so the order of epoch ``e`` is
    the same in an uninterrupted run and in a run resumed from a checkpoint — unlike a sampler
    that draws from the global random state.

    Args:
        num_samples: Dataset length.
        seed: Base seed.

    Examples:
        >>> s = EpochShuffleSampler(5, seed=1)
        >>> s.set_epoch(3); a = list(s); s.set_epoch(3); a == list(s)
        True
        >>> sorted(a)
        [0, 1, 2, 3, 4]
    """

    def __init__(self, num_samples: int, seed: int = 0) -> None:
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=g).tolist())

    def __len__(self) -> int:
        return self.num_samples


def _describe_invalid(sample: Any) -> tuple[str, str, str]:
    """``(path, reason, detail)`` of an invalid dataset item."""
    return (
        str(getattr(sample, "path", "")),
        str(getattr(sample, "reason", "empty item")),
        str(getattr(sample, "detail", "")),
    )


class ReportingCollate:
    """The invalid-sample filtering collate, with the drops carried inside each batch.

    Wraps :class:`~sslkeypoint.data.FilteringCollate` and adds a ``"dropped"`` entry — a list of
    ``(path, reason, detail)`` for the samples removed from the batch — and ``"num_samples"``
    (before filtering). A batch whose samples were all invalid becomes ``{"dropped": [...],
    "num_samples": n}`` (no ``"image"``), which the module counts and skips. Because the
    information travels in the batch, the per-epoch report is exact with DataLoader worker
    processes too.

    Args:
        collate: The filtering collate; a new :class:`~sslkeypoint.data.FilteringCollate` by
            default.

    Examples:
        >>> import torch
        >>> from sslkeypoint.data import InvalidSample
        >>> good = {"image": torch.zeros(1, 2, 2), "path": "a.png"}
        >>> batch = ReportingCollate()([good, InvalidSample(1, "b.png", "missing file")])
        >>> batch["image"].shape, batch["dropped"], batch["num_samples"]
        (torch.Size([1, 1, 2, 2]), [('b.png', 'missing file', '')], 2)
    """

    def __init__(self, collate: Callable[[list[Any]], Any] | None = None) -> None:
        if collate is None:
            from sslkeypoint.data import FilteringCollate

            collate = FilteringCollate()
        self.collate = collate

    def __call__(self, samples: list[Any]) -> dict[str, Any]:
        """Collate ``samples``; see the class notes for the extra keys."""
        from sslkeypoint.data import InvalidSample

        dropped = [_describe_invalid(s) for s in samples if s is None or isinstance(s, InvalidSample)]
        batch = self.collate(samples)
        if batch is None:
            return {"dropped": dropped, "num_samples": len(samples)}
        out = dict(batch)
        out["dropped"] = dropped
        out["num_samples"] = len(samples)
        return out


class DropReport(pl.Callback):
    """Count invalid samples per epoch, print a one-line summary and keep it in the module.

    The module's :attr:`HeatmapFinetuneModule.drop_history` gets one entry per training epoch:
    ``{"epoch", "train": {"seen", "dropped", "reasons": {reason: count}}, "val": {...},
    "examples": {path: reason}}``.

    Args:
        verbose: Print the summary line once per epoch.
        max_examples: How many dropped paths to keep per epoch.
    """

    def __init__(self, verbose: bool = True, max_examples: int = 50) -> None:
        self.verbose = verbose
        self.max_examples = max_examples
        self._reset()

    def _reset(self) -> None:
        self.counts: dict[str, dict[str, Any]] = {
            split: {"seen": 0, "dropped": 0, "reasons": {}} for split in ("train", "val")
        }
        self.examples: dict[str, str] = {}

    def _count(self, split: str, batch: Any) -> None:
        if not isinstance(batch, Mapping) or "dropped" not in batch:
            return
        c = self.counts[split]
        c["seen"] += int(batch.get("num_samples", 0))
        for path, reason, detail in batch["dropped"]:
            c["dropped"] += 1
            c["reasons"][reason] = c["reasons"].get(reason, 0) + 1
            if len(self.examples) < self.max_examples:
                self.examples[path] = f"{reason}: {detail}" if detail else reason

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._count("train", batch)

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not trainer.sanity_checking:
            self._count("val", batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        entry = {"epoch": int(trainer.current_epoch), **_plain(self.counts), "examples": dict(self.examples)}
        history = getattr(pl_module, "drop_history", None)
        if isinstance(history, list):
            history.append(entry)
        if self.verbose:
            print(format_drop_summary(entry), flush=True)


def format_drop_summary(entry: Mapping[str, Any]) -> str:
    """One line per epoch, e.g. ``epoch 3: dropped train 2/40 (missing file: 2), val 0/10``."""
    parts = []
    for split in ("train", "val"):
        c = entry.get(split) or {}
        text = f"{split} {c.get('dropped', 0)}/{c.get('seen', 0)}"
        if c.get("reasons"):
            text += " (" + ", ".join(f"{r}: {n}" for r, n in sorted(c["reasons"].items())) + ")"
        parts.append(text)
    return f"epoch {entry.get('epoch', '?')}: dropped invalid samples: " + ", ".join(parts)


def _strip_report_keys(batch: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if batch is None or "image" not in batch:
        return None
    return batch


# ----------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------


@dataclass
class FinetuneResult:
    """What :func:`run_finetuning` produced.

    Attributes:
        out_dir: The run folder.
        best_checkpoint: Checkpoint with the lowest ``val/mre_px`` (``None`` if no validation ran).
        last_checkpoint: ``last.ckpt`` (what a resumed run continues from).
        best_metrics: Validation metrics of the best epoch (``val/mre_px`` in original pixels, ...).
        best_epoch: Epoch of the best checkpoint.
        epochs: Training epochs completed.
        global_step: Optimisation steps taken.
        stopped_early: Whether early stopping ended the run.
        drop_summary: Invalid samples: the last epoch's counts and every dropped path with its
            reason.
        val_history: Validation metrics of every epoch.
        encoder_init: The encoder initialisation report (text) or ``None``.
    """

    out_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    best_metrics: dict[str, float]
    best_epoch: int | None
    epochs: int
    global_step: int
    stopped_early: bool
    drop_summary: dict[str, Any]
    val_history: list[dict[str, Any]]
    encoder_init: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return _plain(dataclasses.asdict(self))


def _records_split(
    records: Sequence[KeypointRecord] | tuple[Sequence[KeypointRecord], Sequence[KeypointRecord]],
    config: FinetuneConfig,
) -> tuple[list[KeypointRecord], list[KeypointRecord]]:
    if (
        isinstance(records, tuple)
        and len(records) == 2
        and all(isinstance(r, (list, tuple)) for r in records)
        and not isinstance(records[0], KeypointRecord)
    ):
        pair: tuple[Any, Any] = records
        return list(pair[0]), list(pair[1])
    from sslkeypoint.data import split_records

    items: list[KeypointRecord] = list(records)  # type: ignore[arg-type]
    train, val = split_records(items, val_fraction=config.val_fraction, seed=config.seed)
    return list(train), list(val)


def _check_records(records: Sequence[KeypointRecord], split: str) -> None:
    if not records:
        raise ValueError(f"the {split} split is empty: give more records or a smaller val_fraction")


def _make_loaders(
    train: Sequence[KeypointRecord], val: Sequence[KeypointRecord], config: FinetuneConfig
) -> tuple[DataLoader, DataLoader]:
    from sslkeypoint.data import KeypointDataset

    collate = ReportingCollate()
    workers = int(config.num_workers)
    common: dict[str, Any] = {
        "batch_size": config.batch_size,
        "collate_fn": collate,
        "num_workers": workers,
        "persistent_workers": workers > 0,
    }
    kw: dict[str, Any] = {"input_size": config.input_size, "in_chans": config.in_chans, "num_keypoints": config.num_keypoints}
    train_ds = KeypointDataset(list(train), **kw)
    val_ds = KeypointDataset(list(val), **kw)
    train_loader = DataLoader(train_ds, sampler=EpochShuffleSampler(len(train_ds), config.seed), **common)
    val_loader = DataLoader(val_ds, shuffle=False, **common)
    return train_loader, val_loader


def run_finetuning(
    config: FinetuneConfig,
    records: Sequence[KeypointRecord] | tuple[Sequence[KeypointRecord], Sequence[KeypointRecord]],
    out_dir: str | Path,
    *,
    resume: bool = True,
    max_epochs: int | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    loss_fn: LossFn | None = None,
    callbacks: Sequence[pl.Callback] = (),
) -> FinetuneResult:
    """Fine-tune a heatmap U-Net on labelled records with Lightning.

    Sets up: the train/validation split (``config.val_fraction`` with ``config.seed`` unless
    ``records`` is a ``(train, val)`` pair), :class:`~sslkeypoint.data.KeypointDataset` loaders
    with the invalid-sample filtering collate (drops printed once per epoch), a seeded per-epoch
    shuffle, the encoder initialisation from ``config.init_encoder`` (report printed and saved as
    ``encoder_init.txt``), and a Trainer with a TQDM progress bar, a CSV logger
    (``out_dir/logs``), checkpoints (``checkpoints/best-*.ckpt`` on ``val/mre_px`` and
    ``checkpoints/last.ckpt``), early stopping, learning-rate monitoring and
    ``seed_everything(config.seed, workers=True)`` with deterministic algorithms, so that a CPU
    run is repeatable and a resumed run ends where an uninterrupted one does.

    Writes ``config.json`` and ``summary.json`` (the :class:`FinetuneResult`) to ``out_dir``.

    Args:
        config: The run's configuration.
        records: Labelled records, or an explicit ``(train_records, val_records)`` pair.
        out_dir: Run folder (created).
        resume: Continue from ``out_dir/checkpoints/last.ckpt`` when it exists.
        max_epochs: Override ``config.max_epochs`` (e.g. to extend a finished run).
        max_steps: Optional cap on optimisation steps.
        progress: Show the progress bar and the per-epoch drop summary.
        loss_fn: Optional custom loss ``(pred, target, visible) -> scalar``.
        callbacks: Extra Lightning callbacks.

    Returns:
        A :class:`FinetuneResult`.

    Raises:
        ValueError: On an empty split. Records with another keypoint count than
            ``config.num_keypoints`` are dropped as invalid (and reported), like unreadable files.
    """
    from pytorch_lightning.callbacks import (
        EarlyStopping,
        LearningRateMonitor,
        ModelCheckpoint,
        TQDMProgressBar,
    )
    from pytorch_lightning.loggers import CSVLogger

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    pl.seed_everything(config.seed, workers=True, verbose=False)

    train, val = _records_split(records, config)
    _check_records(train, "train")
    _check_records(val, "validation")
    train_loader, val_loader = _make_loaders(train, val, config)

    module = HeatmapFinetuneModule(config, loss_fn=loss_fn)
    last = ckpt_dir / "last.ckpt"
    ckpt_path = last if resume and last.is_file() else None
    init_text: str | None = None
    if ckpt_path is None and config.init_encoder:
        report = module.init_encoder_from(config.init_encoder)
        init_text = f"encoder initialised from {config.init_encoder}\n{report}"
        print(init_text, flush=True)
        (out / "encoder_init.txt").write_text(init_text + "\n")
    elif (out / "encoder_init.txt").is_file():
        init_text = (out / "encoder_init.txt").read_text().strip()

    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-{epoch:03d}",
        monitor=_MONITOR,
        mode="min",
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    # A second, unmonitored checkpoint written after every validation: with a monitor, Lightning
    # only refreshes ``last.ckpt`` when the monitored value improves.
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, enable_version_counter=False)
    early = EarlyStopping(monitor=_MONITOR, mode="min", patience=config.early_stopping_patience, check_finite=False)
    cbs: list[pl.Callback] = [checkpoint, latest, early, LearningRateMonitor(logging_interval="epoch"), DropReport(verbose=progress)]
    if progress:
        cbs.append(TQDMProgressBar())
    cbs.extend(callbacks)
    trainer = pl.Trainer(
        default_root_dir=out,
        max_epochs=int(max_epochs if max_epochs is not None else config.max_epochs),
        max_steps=int(max_steps) if max_steps is not None else -1,
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        precision=config.precision,  # type: ignore[arg-type]
        deterministic=config.deterministic,
        callbacks=cbs,
        logger=CSVLogger(out, name="logs"),
        enable_progress_bar=progress,
        enable_model_summary=progress,
        log_every_n_steps=config.log_every_n_steps,
        num_sanity_val_steps=config.num_sanity_val_steps,
    )
    trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path, weights_only=True)

    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    best_entry = _best_entry(module.val_history)
    drops = module.drop_history
    examples: dict[str, str] = {}
    for entry in drops:
        examples.update(entry.get("examples", {}))
    result = FinetuneResult(
        out_dir=out,
        best_checkpoint=best_path,
        last_checkpoint=last if last.is_file() else None,
        best_metrics={k: v for k, v in (best_entry or {}).items() if k.startswith("val/")},
        best_epoch=int(best_entry["epoch"]) if best_entry else None,
        epochs=int(trainer.current_epoch),
        global_step=int(trainer.global_step),
        stopped_early=bool(early.stopped_epoch > 0),
        drop_summary={"last_epoch": drops[-1] if drops else None, "dropped": examples},
        val_history=list(module.val_history),
        encoder_init=init_text,
    )
    (out / "summary.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return result


def _best_entry(history: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    scored = [h for h in history if math.isfinite(float(h.get(_MONITOR, math.inf)))]
    if not scored:
        return None
    return dict(min(scored, key=lambda h: float(h[_MONITOR])))


# ----------------------------------------------------------------------------------------------
# Pre-training check: overfit one batch
# ----------------------------------------------------------------------------------------------


def overfit_one_batch(
    module_or_config: HeatmapFinetuneModule | FinetuneConfig | Mapping[str, Any],
    batch: Mapping[str, Any],
    steps: int = 200,
    lr: float = 1e-3,
    *,
    threshold: float = 0.05,
    progress: bool = False,
) -> dict[str, Any]:
    """Train on a single batch and check that the loss goes (almost) to zero.

    A model that cannot memorise one batch has a bug between the data and the loss (targets in the
    wrong place, a broken decoder, a frozen layer, a wrong learning rate): on small medical data
    sets such a mistake otherwise looks like "training does not work". Augmentation is not used.

    The criterion compares against the loss of an all-zero prediction (what a network learns
    first, since most heatmap pixels are 0): the check **passes when the final loss is below
    ``threshold`` (default 5 %) of that all-zero loss**, i.e. the Gaussians themselves were
    fitted, not just the background. The decoded error on the batch is reported too.

    Args:
        module_or_config: A :class:`HeatmapFinetuneModule` (trained in place), or a config to
            build one from.
        batch: A collated batch dict (``image``, ``keypoints`` in input px, ``visible``).
        steps: Adam steps.
        lr: Learning rate (larger than the fine-tuning one: we want speed, not generalisation).
        threshold: Pass threshold on ``final_loss / zero_prediction_loss``.
        progress: Show a progress bar.

    Returns:
        Dict with ``loss`` (history), ``initial_loss``, ``final_loss``,
        ``zero_prediction_loss``, ``ratio`` (final / zero-prediction), ``threshold``,
        ``passed``, ``mre_input_px`` (mean error of the decoded keypoints on the batch, input px).
    """
    module = (
        module_or_config
        if isinstance(module_or_config, HeatmapFinetuneModule)
        else HeatmapFinetuneModule(module_or_config)
    )
    b = _strip_report_keys(batch)
    if b is None:
        raise ValueError("overfit_one_batch needs a batch with 'image', 'keypoints' (and 'visible')")
    images, keypoints, visible = module._unpack(b)
    device = next(module.model.parameters()).device
    images, keypoints, visible = images.to(device), keypoints.to(device), visible.to(device)
    target = module.codec.encode(keypoints, visible)
    zero_loss = float(module.loss_fn(torch.zeros_like(target), target, visible))
    optimizer = torch.optim.Adam(module.model.parameters(), lr=lr)
    module.model.train()
    history: list[float] = []
    it: Any = range(int(steps))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="overfit one batch", unit="step")
    for _ in it:
        optimizer.zero_grad(set_to_none=True)
        loss = module.loss_fn(module.model(images), target, visible)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    module.model.eval()
    with torch.no_grad():
        pred = module.model(images)
        final = float(module.loss_fn(pred, target, visible))
        kp, _ = module.codec.decode(pred.float(), refine=module.config.refine)  # type: ignore[arg-type]
        err = (kp - keypoints).norm(dim=-1)[visible]
    ratio = final / zero_loss if zero_loss > 0 else math.inf
    return {
        "loss": history,
        "initial_loss": history[0] if history else final,
        "final_loss": final,
        "zero_prediction_loss": zero_loss,
        "ratio": ratio,
        "threshold": threshold,
        "passed": bool(ratio < threshold),
        "mre_input_px": float(err.mean()) if err.numel() else math.nan,
    }


# ----------------------------------------------------------------------------------------------
# Records files and the command line
# ----------------------------------------------------------------------------------------------

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|NAN"


def _parse_point(text: str, where: str) -> list[float]:
    values = re.findall(_NUMBER, text)
    leftover = re.sub(_NUMBER, "", text)
    if len(values) != 2 or re.sub(r"[\s()\[\],;]", "", leftover):
        raise ValueError(f"{where}: expected a point like '(x, y)' with two numbers; got {text!r}")
    return [float(v) for v in values]


def _parse_float(text: str, where: str) -> float:
    t = text.strip()
    if t == "":
        return math.nan
    try:
        return float(t)
    except ValueError:
        raise ValueError(f"{where}: expected a number; got {text!r}") from None


def _looks_like_point(text: str) -> bool:
    return bool(re.search(r"[(\[,;]", text)) or len(re.findall(_NUMBER, text)) == 2


def _pair_name(x: str, y: str, i: int) -> str:
    bx, by = re.sub(r"[\s_.\-]*[xX]$", "", x), re.sub(r"[\s_.\-]*[yY]$", "", y)
    if bx and bx == by and bx != x:
        return bx
    return f"kp{i}"


def read_records(path: str | Path) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    """Read labelled records from a CSV or JSON file.

    **CSV** (header row required; relative image paths are relative to the CSV's folder). The
    first column is the image path; every other column is a label, in one of two layouts:

    * one column per coordinate: ``path,x1,y1,x2,y2,...`` (an even number of numeric columns;
      ``PS1_x,PS1_y`` style headers name the landmarks);
    * one column per landmark holding a point ``"(x, y)"`` (brackets and spaces optional,
      exactly two numbers): ``Filename,PS1,PS2,FH1`` — the header names the landmarks.

    Coordinates are ``(x, y)`` in the original image's pixels. An empty cell (or ``nan``) marks a
    missing landmark (it becomes NaN and is excluded from the loss mask and the metrics).

    **JSON**: a list of objects ``{"path": ..., "keypoints": [[x, y], ...], "visible": [...]
    (optional), "meta": {...} (optional)}``, or an object ``{"keypoint_names": [...], "records":
    [...]}``.

    Args:
        path: The ``.csv`` or ``.json`` file.

    Returns:
        ``(records, keypoint_names)``; names are ``None`` when the file does not give them.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: On a malformed file; the message names the file, row and column.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> f = Path(tempfile.mkdtemp()) / "labels.csv"
        >>> _ = f.write_text('Filename,PS1,PS2,FH1\\na.png,"(300, 80)","(200, 80)",(300 200)\\n')
        >>> records, names = read_records(f)
        >>> names, records[0].keypoints.tolist()
        (('PS1', 'PS2', 'FH1'), [[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]])
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"records file not found: {p}")
    if p.suffix.lower() == ".json":
        return _read_json_records(p)
    return _read_csv_records(p)


def _resolve(base: Path, value: str) -> Path:
    q = Path(value)
    return q if q.is_absolute() else base / q


def _read_csv_records(p: Path) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    with p.open(newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValueError(f"{p}: expected a header row and at least one data row; got {len(rows)} rows")
    header = [h.strip() for h in rows[0]]
    if len(header) < 2:
        raise ValueError(f"{p}: expected an image path column and label columns; header is {header}")
    label_cols = header[1:]
    sample = next((c for r in rows[1:] for c in r[1:] if c.strip() and c.strip().lower() != "nan"), "")
    point_mode = _looks_like_point(sample)
    if not point_mode and len(label_cols) % 2:
        raise ValueError(
            f"{p}: coordinate columns must come in (x, y) pairs after the path column; got "
            f"{len(label_cols)} columns {label_cols}"
        )
    if point_mode:
        names = tuple(label_cols)
    else:
        names = tuple(_pair_name(label_cols[2 * i], label_cols[2 * i + 1], i) for i in range(len(label_cols) // 2))
    named = not all(re.fullmatch(r"kp\d+", n) for n in names)
    records: list[KeypointRecord] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{p}, row {line}: expected {len(header)} columns ({header}); got {len(row)}")
        if not row[0].strip():
            raise ValueError(f"{p}, row {line}, column {header[0]!r}: empty image path")
        if point_mode:
            pts = []
            for col, cell in zip(label_cols, row[1:]):
                where = f"{p}, row {line}, column {col!r}"
                pts.append([math.nan, math.nan] if cell.strip() in ("", "nan", "NaN") else _parse_point(cell, where))
            kp = np.asarray(pts, dtype=np.float64)
        else:
            vals = [_parse_float(cell, f"{p}, row {line}, column {col!r}") for col, cell in zip(label_cols, row[1:])]
            kp = np.asarray(vals, dtype=np.float64).reshape(-1, 2)
        records.append(KeypointRecord(_resolve(p.parent, row[0].strip()), kp, None, {"row": line}))
    return records, names if named else None


def _read_json_records(p: Path) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{p}: not valid JSON: {err}") from None
    names: tuple[str, ...] | None = None
    if isinstance(data, Mapping):
        if "records" not in data:
            raise ValueError(f"{p}: a JSON object needs a 'records' list; got keys {sorted(data)}")
        names = tuple(str(n) for n in data["keypoint_names"]) if data.get("keypoint_names") else None
        data = data["records"]
    if not isinstance(data, list):
        raise ValueError(f"{p}: expected a list of records; got {type(data).__name__}")
    records = []
    for i, item in enumerate(data):
        where = f"{p}, record {i}"
        if not isinstance(item, Mapping) or "path" not in item or "keypoints" not in item:
            raise ValueError(f"{where}: expected an object with 'path' and 'keypoints'; got {item!r}"[:300])
        try:
            kp = np.asarray(
                [[math.nan if v is None else float(v) for v in pt] for pt in item["keypoints"]], dtype=np.float64
            ) if item["keypoints"] and isinstance(item["keypoints"][0], (list, tuple)) else np.asarray(
                [math.nan if v is None else float(v) for v in item["keypoints"]], dtype=np.float64
            ).reshape(-1, 2)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}, field 'keypoints': expected [[x, y], ...] numbers; {err}") from None
        if kp.ndim != 2 or kp.shape[1] != 2:
            raise ValueError(f"{where}, field 'keypoints': expected shape (K, 2); got {kp.shape}")
        vis: Any = item.get("visible")
        visible = None if vis is None else np.asarray(vis, dtype=bool)
        if visible is not None and visible.shape != (kp.shape[0],):
            raise ValueError(f"{where}, field 'visible': expected {kp.shape[0]} booleans; got {list(vis)}")
        meta = dict(item.get("meta") or {})
        records.append(KeypointRecord(_resolve(p.parent, str(item["path"])), kp, visible, meta))
    if names is not None and records and records[0].num_keypoints != len(names):
        raise ValueError(f"{p}: {len(names)} keypoint_names but records have {records[0].num_keypoints} keypoints")
    return records, names


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sslkeypoint.tasks.finetune",
        description=(
            "Fine-tune a heatmap U-Net on labelled images (stage 3 of SSL-FetalBioNet). Records file: "
            "CSV with a header, first column the image path, then x1,y1,x2,y2,... or one '(x, y)' "
            "column per landmark; or JSON [{\"path\": ..., \"keypoints\": [[x, y], ...]}, ...]. "
            "Coordinates in original image pixels."
        ),
    )
    parser.add_argument("--records", required=True, type=Path, help="records file (.csv or .json)")
    parser.add_argument("--val-records", type=Path, help="explicit validation records (else an 8:2 split)")
    parser.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, logs, summary.json)")
    parser.add_argument("--config", type=Path, help="JSON file of FinetuneConfig fields (flags below override it)")
    parser.add_argument("--encoder", help="encoder name, e.g. unet or timm:resnet18")
    parser.add_argument("--encoder-kwargs", help='JSON dict, e.g. \'{"widths": [16, 32, 64, 128]}\'')
    parser.add_argument("--init-encoder", help="pre-trained encoder weights (safetensors or checkpoint)")
    parser.add_argument("--strip-prefix", action="append", help="key prefix to strip from --init-encoder (repeatable)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--heatmap-size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--sigma", type=float)
    parser.add_argument("--in-chans", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-epochs", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--patience", type=int, dest="early_stopping_patience", help="early stopping patience")
    parser.add_argument("--val-fraction", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--aop", action="store_true", help="landmarks are PS1, PS2, FH1: also report the AoP error")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--loss", choices=["mse", "masked_mse"])
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--precision")
    parser.add_argument("--accelerator")
    parser.add_argument("--devices")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if last.ckpt exists")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m sslkeypoint.tasks.finetune --help``).

    Returns:
        Process exit status (0 on success).
    """
    args = _build_parser().parse_args(argv)
    records, names = read_records(args.records)
    data: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    simple = [
        "encoder", "init_encoder", "sigma", "in_chans", "lr", "batch_size", "max_epochs",
        "early_stopping_patience", "val_fraction", "seed", "augment", "loss", "num_workers",
        "precision", "accelerator",
    ]  # fmt: skip
    for key in simple:
        value = getattr(args, key)
        if value is not None:
            data[key] = value
    if args.devices is not None:
        data["devices"] = int(args.devices) if args.devices.isdigit() else args.devices
    if args.encoder_kwargs:
        data["encoder_kwargs"] = json.loads(args.encoder_kwargs)
    if args.strip_prefix:
        data["init_strip_prefix"] = args.strip_prefix
    if args.input_size:
        data["input_size"] = args.input_size
    if args.heatmap_size:
        data["heatmap_size"] = args.heatmap_size
    data["num_keypoints"] = records[0].num_keypoints
    if names is not None and "keypoint_names" not in data:
        data["keypoint_names"] = list(names)
    if args.aop:
        data["aop_indices"] = [0, 1, 2]
    config = FinetuneConfig.from_dict(data)
    source: Any = records
    if args.val_records:
        source = (records, read_records(args.val_records)[0])
    result = run_finetuning(
        config,
        source,
        args.out,
        resume=not args.no_resume,
        max_steps=args.max_steps,
        progress=not args.no_progress,
    )
    print(json.dumps({"best_checkpoint": str(result.best_checkpoint), "best_metrics": result.best_metrics}, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
