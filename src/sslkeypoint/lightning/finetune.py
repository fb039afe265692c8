"""Supervised heatmap fine-tuning (stage 3 of SSL-FetalBioNet) as a LightningModule.

The (pre-trained) encoder sits inside a :class:`~sslkeypoint.models.HeatmapUNet`; inputs are
resized to ``input_size``, targets are heatmaps built on the fly from each batch's keypoints by
the module's :class:`~sslkeypoint.heatmaps.KeypointCodec` (by default the config's
:class:`~sslkeypoint.heatmaps.HeatmapCodec`; any codec can be passed to the constructor), the loss
is a heatmap loss of :mod:`sslkeypoint.losses`, the optimiser Adam with ``ReduceLROnPlateau`` on
the validation MRE.

Validation decodes exactly as :class:`~sslkeypoint.inference.KeypointPredictor` does (the codec's
``decode``, then its ``to_original`` with each sample's original size), so the logged
``val/mre_px`` is in original image pixels. Every validation figure is a ``torchmetrics`` metric:
under DDP each process computes on its shard and the figures are synchronised, so every rank logs
the value over the whole validation set and the learning-rate schedule, early stopping and the
best checkpoint see the same number everywhere.

How the module learns beyond the labelled heatmap loss is its fine-tuning method's
:class:`~sslkeypoint.ssl.FinetuneObjective`, built from ``config.method`` (or given): nothing more
for supervised fine-tuning; with a :class:`~sslkeypoint.methods.MeanTeacherMethod`, a consistency
loss on the unlabelled images of each training batch (``batch["unlabelled"]``) against a teacher
that averages the network (:mod:`sslkeypoint.ssl.mean_teacher`).

Labelled samples whose batch carries ``"annotated"`` (``(B, K)`` bool, from records with partial
labels such as pseudo-labels, see :class:`~sslkeypoint.data.KeypointDataset`) add no loss for the
landmarks that are not annotated: their target is the prediction itself.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from sslkeypoint._utils import plain
from sslkeypoint.configs import FinetuneConfig
from sslkeypoint.data.invalid import without_drops
from sslkeypoint.heatmaps import (
    KeypointCodec,
    codec_from_dict,
    codec_to_dict,
    keypoints_to_original,
)
from sslkeypoint.inference import SPEC_KEY, predictor_spec
from sslkeypoint.lightning.steps import planned_steps
from sslkeypoint.lightning.teacher_weights import (
    LEGACY_TEACHER_PREFIX,
    TEACHER_PREFIX,
    rename_prefixes,
    teacher_as_model,
    teacher_from_model,
)
from sslkeypoint.losses import heatmap_mse_loss, masked_heatmap_mse_loss
from sslkeypoint.metrics import KeypointMetrics
from sslkeypoint.models import build_heatmap_model
from sslkeypoint.ssl import EMATeacher, FinetuneObjective

__all__ = ["MONITOR", "HeatmapFinetuneModule", "LossFn", "flatten_metrics"]

#: Loss signature: ``loss(pred (B, K, h, w), target (B, K, h, w), visible (B, K)) -> scalar``.
LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]

#: The validation figure that early stopping, the learning-rate schedule and checkpoints follow.
MONITOR = "val/mre_px"
_STATE_KEY = "sslkeypoint_state"


def flatten_metrics(raw: Mapping[str, Any], prefix: str = "val/") -> dict[str, float]:
    """:meth:`KeypointMetrics.compute <sslkeypoint.metrics.KeypointMetrics.compute>` output as flat scalars.

    ``per_landmark_px`` becomes ``<prefix><name>_px``, ``spread_ratio`` becomes
    ``<prefix><name>_spread_ratio``, ``sdr`` becomes ``<prefix>sdr_<r>px``, every other number
    ``<prefix><key>``.

    Examples:
        >>> flatten_metrics({"mre_px": 2.0, "per_landmark_px": {"A": 1.0}, "sdr": {5.0: 0.5}})
        {'val/mre_px': 2.0, 'val/A_px': 1.0, 'val/sdr_5px': 0.5}
    """
    out: dict[str, float] = {}
    for key, value in raw.items():
        if key == "per_landmark_px" and isinstance(value, Mapping):
            out.update({f"{prefix}{name}_px": float(v) for name, v in value.items()})
        elif key == "spread_ratio" and isinstance(value, Mapping):
            out.update({f"{prefix}{name}_spread_ratio": float(v) for name, v in value.items()})
        elif key == "sdr" and isinstance(value, Mapping):
            out.update({f"{prefix}sdr_{float(r):g}px": float(v) for r, v in value.items()})
        elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


class HeatmapFinetuneModule(pl.LightningModule):
    """Heatmap keypoint fine-tuning: a heatmap network trained on targets built on the fly.

    Batches are dicts from :class:`~sslkeypoint.data.KeypointDataset` collated by
    :class:`~sslkeypoint.data.FilteringCollate`: ``image (B, C, H, W)`` in ``[0, 1]``,
    ``keypoints (B, K, 2)`` in input pixels, ``visible (B, K)``, ``original_size (B, 2)``. A batch
    whose samples were all invalid is skipped. Logged metrics: ``train/loss``, ``val/loss``,
    ``val/mre_px`` (original pixels), ``val/<name>_px`` per landmark, ``val/<measure>_mae_<unit>``
    per measure (e.g. ``val/aop_mae_deg``), ``val/heatmap_mse``, ``val/heatmap_mae``, ...

    The fine-tuning method's :attr:`objective` adds the loss of ``batch["unlabelled"]`` when it
    learns from unlabelled images (its scalars logged as ``train/<name>``). With a
    :class:`~sslkeypoint.methods.MeanTeacherMethod` the module holds :attr:`teacher` (a copy of the
    network at the first step and after :meth:`init_encoder_from`, updated after every optimiser
    step), logs ``train/semi_loss``, ``train/semi_weight`` and ``train/semi_kept`` (the fraction of
    channels kept by the confidence filter) and, with ``eval_teacher``, validates, predicts
    (:meth:`forward`) and saves the teacher as the checkpoints' model.

    The hyper-parameters saved in checkpoints are ``{"config": config.to_dict(), "codec":
    codec_to_dict(codec)}`` (plain types), and every checkpoint also carries an ``"sslkeypoint"``
    entry with the model, codec, landmark names and measures, so
    :meth:`KeypointPredictor.from_checkpoint <sslkeypoint.inference.KeypointPredictor.from_checkpoint>`
    rebuilds the predictor — with exactly the codec the model was trained with — from the file
    alone. ``HeatmapFinetuneModule.load_from_checkpoint(path, weights_only=True)`` works too.

    Args:
        config: A :class:`~sslkeypoint.configs.FinetuneConfig` or its dict form.
        codec: The codec of the targets and of the decoding (a
            :class:`~sslkeypoint.heatmaps.KeypointCodec` or its stored dict form); default
            ``config.codec()``. Its sizes must be the config's.
        loss_fn: Optional loss ``(pred, target, visible) -> scalar``; default from
            ``config.loss``. A custom callable is not saved in checkpoints.
        model: Optional prebuilt network (``(B, C, H, W) -> (B, K, h, w)``); by default
            :func:`~sslkeypoint.models.build_heatmap_model` of ``config.model_spec()``.
        objective: Optional built fine-tuning method (a :class:`~sslkeypoint.ssl.FinetuneObjective`
            around ``model``); by default ``config.method.build(...)``.

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
        codec: KeypointCodec | Mapping[str, Any] | None = None,
        loss_fn: LossFn | None = None,
        model: nn.Module | None = None,
        objective: FinetuneObjective | None = None,
    ) -> None:
        super().__init__()
        cfg = config if isinstance(config, FinetuneConfig) else FinetuneConfig.from_dict(config)
        self.config = cfg
        if codec is None:
            codec = cfg.codec()
        elif isinstance(codec, Mapping):
            codec = codec_from_dict(codec)
        if not isinstance(codec, KeypointCodec):
            raise ValueError(f"codec must implement KeypointCodec; got {type(codec).__name__}")
        if tuple(codec.input_size) != cfg.input_size or tuple(codec.heatmap_size) != cfg.heatmap_size:
            raise ValueError(
                f"the codec's sizes (input {tuple(codec.input_size)}, heatmap {tuple(codec.heatmap_size)}) "
                f"must be the config's (input {cfg.input_size}, heatmap {cfg.heatmap_size})"
            )
        self.codec = codec
        self.save_hyperparameters({"config": cfg.to_dict(), "codec": codec_to_dict(codec)})
        self.model = model if model is not None else build_heatmap_model(cfg.model_spec())
        if loss_fn is None:
            loss_fn = masked_heatmap_mse_loss if cfg.loss == "masked_mse" else heatmap_mse_loss
        self.loss_fn = loss_fn
        self.augmentation: nn.Module | None = None
        if cfg.augment:
            from sslkeypoint.augment import keypoint_augmentation

            self.augmentation = keypoint_augmentation(**cfg.augment_kwargs)
        #: The built fine-tuning method: what the module learns beyond the labelled heatmap loss.
        self.objective = objective if objective is not None else cfg.method.build(
            self.model, heatmap_stride=cfg.heatmap_stride, augment_kwargs=cfg.augment_kwargs)
        self.val_metrics = KeypointMetrics(
            keypoint_names=cfg.keypoint_names,
            num_keypoints=cfg.num_keypoints,
            measures=cfg.measures,
            pixel_spacing=cfg.pixel_spacing,
        )
        self.val_loss = MeanMetric()
        #: One dict of validation metrics per validation epoch (also kept in checkpoints).
        self.val_history: list[dict[str, Any]] = []
        #: Invalid-sample counts per training epoch, written by
        #: :class:`~sslkeypoint.lightning.callbacks.DropReport` (also kept in checkpoints).
        self.drop_history: list[dict[str, Any]] = []
        #: Use the ``ReduceLROnPlateau`` schedule (off while overfitting one batch, which has no validation).
        self.schedule_lr = True

    @property
    def teacher(self) -> EMATeacher | None:
        """The fine-tuning method's teacher (the mean teacher's), else ``None``."""
        teacher = getattr(self.objective, "teacher", None)
        return teacher if isinstance(teacher, EMATeacher) else None

    @property
    def predicting_network(self) -> nn.Module:
        """The network validation scores and checkpoints store as ``model``: the method's choice
        (the mean teacher's teacher with ``eval_teacher``), else :attr:`model`."""
        return self.objective.predicting_network(self.model)

    def forward(self, images: Tensor) -> Tensor:
        """Heatmaps ``(B, K, h, w)`` of :attr:`predicting_network` for images ``(B, C, H, W)``."""
        return self.predicting_network(images)

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
        report = load_partial_state_dict(encoder, Path(source), strip_prefix=prefixes)
        self.objective.reset(self.model)
        return report

    def init_decoder_from(self, source: str | Path, strip_prefix: Sequence[str] = ("model.", "module.")) -> Any:
        """Load pre-trained decoder weights: the file's ``decoder.*`` tensors into ``model.decoder``.

        The file is the ``unet.safetensors`` of a DenseCL pre-training run at the decoder level
        (keys ``encoder.*`` / ``decoder.*`` as in :class:`~sslkeypoint.models.HeatmapUNet`), a
        DenseCL pre-training checkpoint, or a heatmap-model checkpoint. Loading is by name and
        shape (:func:`~sslkeypoint.weights.load_partial_state_dict`, shapes strict). The encoder
        is loaded by :meth:`init_encoder_from`; ``run_finetuning`` calls both when
        ``config.init_decoder`` is set.

        Args:
            source: Weight file.
            strip_prefix: Prefixes stripped from the file's keys (each tried in order) before the
                ``decoder.`` prefix is looked for.

        Returns:
            The :class:`~sslkeypoint.weights.LoadReport` (decoder-relative names).

        Raises:
            ValueError: If the model has no ``decoder``, the file holds no ``decoder.*`` tensor,
                or their shapes do not fit (e.g. another encoder width or heatmap stride).
        """
        from sslkeypoint.weights import load_partial_state_dict, load_state_dict_file

        decoder = getattr(self.model, "decoder", None)
        if not isinstance(decoder, nn.Module):
            raise ValueError(f"{type(self.model).__name__} has no 'decoder' module to initialise")
        weights: dict[str, Tensor] = {}
        for key, value in load_state_dict_file(Path(source)).items():
            name = key
            for prefix in strip_prefix:
                if prefix and name.startswith(prefix):
                    name = name[len(prefix) :]
            if name.startswith("decoder."):
                weights[name[len("decoder.") :]] = value
        if not weights:
            raise ValueError(
                f"{source} holds no decoder weights (no key 'decoder.*' after stripping {tuple(strip_prefix)}); "
                "pre-train with dense_level='decoder' and use its unet.safetensors, or set init_decoder=False"
            )
        try:
            report = load_partial_state_dict(decoder, weights)
        except ValueError as err:
            raise ValueError(f"the decoder weights of {source} do not fit this model's decoder: {err}") from err
        self.objective.reset(self.model)
        return report

    # ------------------------------------------------------------------ steps
    @staticmethod
    def unpack(batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """``(images, keypoints (float32), visible (bool))`` of a batch; missing ``visible``: finite keypoints."""
        images = batch["image"]
        keypoints = batch["keypoints"].to(torch.float32)
        visible = batch.get("visible")
        visible = torch.isfinite(keypoints).all(-1) if visible is None else visible.to(torch.bool)
        return images, keypoints, visible

    @contextlib.contextmanager
    def _seeded(self, device: torch.device, stream: int = 0) -> Iterator[None]:
        """A fresh seed per (run seed, step, rank, stream) keeps augmentation identical after a resume."""
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.config.seed * 1_000_003 + int(self.global_step) + 7919 * self.global_rank
                              + (stream << 40))
            yield

    def _unlabelled_loss(self, images: Tensor) -> Tensor:
        """The method's weighted loss of unlabelled images ``(B_u, C, H, W)``; its scalars logged."""
        with self._seeded(images.device, stream=1):
            loss, logs = self.objective.unlabelled_loss(self.model, images, int(self.global_step), planned_steps(self))
        n = images.shape[0]
        for name, value in logs.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=True, batch_size=n, sync_dist=True)
        return loss

    def _no_data_loss(self) -> Tensor:
        """A zero loss on the graph, so a process with an empty batch still joins DDP's gradient sync."""
        return sum((p.sum() * 0.0 for p in self.model.parameters()), torch.zeros((), device=self.device))

    def training_step(self, batch: Mapping[str, Any] | None, batch_idx: int) -> Tensor | None:
        """One optimisation step; a batch whose samples were all invalid is skipped."""
        data = without_drops(batch)
        if data is None or "image" not in data:
            return self._no_data_loss() if self._trainer_attached() and self.trainer.world_size > 1 else None
        images, keypoints, visible = self.unpack(data)
        if self.augmentation is not None:
            with self._seeded(images.device):
                images, keypoints, visible = self.augmentation(images, keypoints, visible)
        target = self.codec.encode(keypoints, visible)
        pred = self.model(images)
        annotated = data.get("annotated")
        if annotated is not None:
            # Landmarks a record does not annotate (a dropped pseudo-label) add no loss and no gradient.
            target = torch.where(annotated.to(torch.bool)[:, :, None, None], target, pred.detach().to(target.dtype))
        loss = self.loss_fn(pred, target, visible)
        if self.objective.uses_unlabelled and "unlabelled" in data:
            loss = loss + self._unlabelled_loss(data["unlabelled"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=images.shape[0],
                 sync_dist=True)
        return loss

    def validation_step(self, batch: Mapping[str, Any] | None, batch_idx: int) -> None:
        """Accumulate the validation metrics in original image pixels."""
        data = without_drops(batch)
        if data is None or "image" not in data:
            return
        images, keypoints, visible = self.unpack(data)
        target = self.codec.encode(keypoints, visible)
        pred = self.predicting_network(images)
        self.val_loss.update(self.loss_fn(pred, target, visible).detach(), weight=images.shape[0])
        kp_in, _ = self.codec.decode(pred.float())
        sizes = data["original_size"].to(kp_in.device, torch.float32)
        self.val_metrics.update(
            self.codec.to_original(kp_in, sizes),
            keypoints_to_original(keypoints, sizes, self.config.input_size),
            visible=visible,
            pred_heatmaps=pred.detach().float(),
            target_heatmaps=target.detach().float(),
            pixel_size=data["pixel_size"] if "pixel_size" in data else None,
        )

    def on_validation_epoch_end(self) -> None:
        """Compute (over every process), log and record the epoch's metrics; step the plateau.

        ``val/mre_px`` is ``inf`` when no sample could be scored.
        """
        metrics = flatten_metrics(self.val_metrics.compute())
        # Called on every process (the figures are gathered over all of them), batches or not.
        metrics["val/loss"] = float(self.val_loss.compute())
        self.val_metrics.reset()
        self.val_loss.reset()
        if not math.isfinite(metrics.get(MONITOR, math.nan)):
            metrics[MONITOR] = math.inf
        for name, value in metrics.items():
            # Already the figure over every process: nothing left to synchronise.
            self.log(name, value, prog_bar=name == MONITOR, sync_dist=False, rank_zero_only=False)
        if self.trainer.sanity_checking:
            return
        self.val_history.append({"epoch": int(self.current_epoch), "step": int(self.global_step), **metrics})
        if self.trainer.state.fn == "fit":
            plateau = self.lr_schedulers()
            if isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau):
                plateau.step(metrics[MONITOR])

    def configure_optimizers(self) -> Any:
        """Adam, and ``ReduceLROnPlateau`` on ``val/mre_px`` (stepped at the end of validation).

        Lightning owns the schedule (its state is in every checkpoint) but steps epoch schedules
        after the epoch's checkpoint is written, and skips plateau schedules when a run resumes;
        stepping it at the end of validation instead (see :meth:`lr_scheduler_step`) makes a
        resumed run repeat an uninterrupted one exactly. While overfitting one batch (the check
        :func:`~sslkeypoint.lightning.checks.overfit_one_batch`) there is no schedule.
        """
        cfg = self.config
        optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if not self.schedule_lr:
            return optimizer
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": plateau, "monitor": MONITOR, "interval": "epoch", "strict": False},
        }

    def _trainer_attached(self) -> bool:
        try:
            return self.trainer is not None
        except RuntimeError:  # Lightning raises when no trainer is attached
            return False

    @property
    def teacher_decay(self) -> float | None:
        """The teacher's decay per optimiser step (the method's ``ema_decay``, or when it is ``None``
        :func:`~sslkeypoint.ssl.auto_ema_decay` of the run's planned length,
        :func:`~sslkeypoint.lightning.steps.planned_steps`); ``None`` without a teacher.

        Examples:
            >>> from sslkeypoint.methods import MeanTeacherMethod
            >>> HeatmapFinetuneModule(FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16),
            ...     encoder_kwargs={"widths": [8, 16]}, method=MeanTeacherMethod(ema_decay=0.95))).teacher_decay
            0.95
        """
        decay = getattr(self.objective, "decay", None)
        return float(decay(planned_steps(self))) if callable(decay) else None

    def on_train_start(self) -> None:
        """Tell the method the network's starting weights (weights loaded after construction included)."""
        if self.global_step == 0:
            self.objective.reset(self.model)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Lightning's optimiser step, then the method's update (the mean teacher's towards the network)."""
        super().optimizer_step(*args, **kwargs)
        self.objective.after_step(self.model, int(self.global_step), planned_steps(self))

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """Lightning's stepping hook: the plateau schedule is stepped in :meth:`on_validation_epoch_end`."""
        if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step()

    # ------------------------------------------------------------------ checkpoints
    def predictor_spec(self) -> dict[str, Any]:
        """The model / codec / landmark / measure description stored in checkpoints (plain types)."""
        cfg = self.config
        return predictor_spec(cfg.model_spec(), self.codec, cfg.keypoint_names, cfg.measures)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the predictor description and the metric and drop histories (plain types only).

        With a validated teacher, the checkpoint's ``model.*`` weights are the teacher's and the
        trained network's are ``student.*`` (what a predictor loads is what was validated).
        """
        checkpoint[SPEC_KEY] = self.predictor_spec()
        checkpoint[_STATE_KEY] = {"val_history": plain(self.val_history), "drop_history": plain(self.drop_history)}
        if self.predicting_network is not self.model:
            checkpoint["state_dict"] = teacher_as_model(checkpoint["state_dict"])
            checkpoint[_STATE_KEY]["model_is_teacher"] = True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the metric and drop histories, and the teacher and network weights to their place."""
        state = checkpoint.get(_STATE_KEY) or {}
        if "state_dict" in checkpoint:
            # sslkeypoint 0.6 and earlier kept the teacher as ``teacher.network.*``.
            checkpoint["state_dict"] = rename_prefixes(checkpoint["state_dict"], {LEGACY_TEACHER_PREFIX: TEACHER_PREFIX})
        if state.get("model_is_teacher") and "state_dict" in checkpoint:
            checkpoint["state_dict"] = teacher_from_model(checkpoint["state_dict"])
        self.val_history = list(state.get("val_history", []))
        self.drop_history = list(state.get("drop_history", []))
