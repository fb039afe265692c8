"""One fine-tuning run on a given split: :func:`fit_finetuning`, its options and its :class:`FinetuneResult`.

What :func:`~sslkeypoint.recipes.run_finetuning` does once the records are split, for a method that
trains in one LightningModule; pseudo-label self-training (:mod:`sslkeypoint.recipes.self_training`)
calls it once per round.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, TQDMProgressBar

from sslkeypoint._utils import plain
from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.configs import FinetuneConfig, TrainerConfig
from sslkeypoint.configs.legacy import upgrade_finetune_settings
from sslkeypoint.data import (
    KeypointRecord,
    data_fingerprint,
    records_fingerprint,
)
from sslkeypoint.heatmaps import KeypointCodec, codec_to_dict
from sslkeypoint.lightning.callbacks import CollapseWarning, DropReport
from sslkeypoint.lightning.checkpoint import RunCheckpoint
from sslkeypoint.lightning.checkpoint_io import AtomicCheckpointIO
from sslkeypoint.lightning.datamodules import KeypointDataModule
from sslkeypoint.lightning.finetune import MONITOR, HeatmapFinetuneModule, LossFn
from sslkeypoint.locks import folder_lock
from sslkeypoint.recipes._run import (
    _open,
    _saved_checkpoint,
    _stops_on_signal,
    _weights_identity,
    _write_json,
    quiet_lightning,
)
from sslkeypoint.weights import read_weight_file

__all__ = ["FinetuneResult", "FitOptions", "fit_finetuning"]


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
        interrupted: The signal that stopped the run (``"SIGTERM"``, ``"SIGINT"``), or ``None``
            when it ran to its end; written to ``summary.json`` before
            :class:`~sslkeypoint.runs.RunInterrupted` is raised.
        collapsed_landmarks: Landmarks predicted at nearly the same place on every validation
            image at the best epoch (name → spread ratio; see
            :class:`~sslkeypoint.lightning.CollapseWarning`); empty when none.
        unlabelled_left_out: Files of the unlabelled pool left out because they are validation
            images (``0`` without a pool).
        pseudo_labels: Pseudo-label self-training (:class:`~sslkeypoint.methods.PseudoLabelMethod`):
            one entry per student round, with the pseudo-labels kept and dropped per landmark and
            reason (:meth:`~sslkeypoint.ssl.PseudoLabelStats.to_dict`); empty for other methods.
        split: How the training / validation split was made (given, by group, or image by
            image), in words.
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
    interrupted: str | None = None
    collapsed_landmarks: dict[str, float] = dataclasses.field(default_factory=dict)
    unlabelled_left_out: int = 0
    pseudo_labels: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    split: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return plain(dataclasses.asdict(self))


def _best_entry(history: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    scored = [h for h in history if math.isfinite(float(h.get(MONITOR, math.inf)))]
    if not scored:
        return None
    return dict(min(scored, key=lambda h: float(h[MONITOR])))


@dataclass(frozen=True)
class FitOptions:
    """How one fine-tuning run executes (the options of :func:`run_finetuning` besides what it learns)."""

    trainer: TrainerConfig
    codec: KeypointCodec | None = None
    resume: bool = True
    max_epochs: int | None = None
    max_steps: int | None = None
    progress: bool = True
    loss_fn: LossFn | None = None
    callbacks: tuple[pl.Callback, ...] = ()


def fit_finetuning(
    config: FinetuneConfig,
    train: Sequence[KeypointRecord],
    val: Sequence[KeypointRecord],
    out: Path,
    options: FitOptions,
    *,
    pool: Sequence[Path] | None = None,
    left_out: int = 0,
    init_model: Path | None = None,
    split: str = "",
) -> FinetuneResult:
    """One fine-tuning run in ``out`` on a given split: what :func:`run_finetuning` does for one method.

    Args:
        config: What to learn (a method that runs in one LightningModule).
        train: Training records.
        val: Validation records.
        out: Run folder.
        options: How to run.
        pool: Unlabelled image files (for a method that takes them batch by batch).
        left_out: Pool files left out as validation images (reported).
        init_model: A fine-tuning checkpoint whose network weights start a fresh run (after the
            encoder initialisation of ``config``), e.g. a student that starts from its teacher.
    """
    run = options.trainer
    codec, resume, max_epochs, max_steps = options.codec, options.resume, options.max_epochs, options.max_steps
    progress, loss_fn, callbacks = options.progress, options.loss_fn, options.callbacks
    ckpt_dir = out / "checkpoints"
    pl.seed_everything(config.seed, workers=True, verbose=False)
    data = KeypointDataModule(
        train,
        val,
        input_size=config.input_size,
        num_keypoints=config.num_keypoints,
        in_chans=config.in_chans,
        batch_size=config.batch_size,
        num_workers=run.num_workers,
        seed=config.seed,
        unlabelled=list(pool) if pool is not None else None,
        unlabelled_batch_size=config.method.batch_of_unlabelled(config.batch_size),
    )
    module = HeatmapFinetuneModule(config, codec=codec, loss_fn=loss_fn)
    # The best epoch's checkpoint is for prediction: weights and description, no optimiser state
    # (a third of its size with Adam). ``last.ckpt`` keeps everything a resumed run needs.
    checkpoint = RunCheckpoint(
        dirpath=ckpt_dir, filename="best-{epoch:03d}", monitor=MONITOR, mode="min", save_top_k=1,
        auto_insert_metric_name=False, save_weights_only=True,
    )
    # A second, unmonitored checkpoint written after every validation: with a monitor, Lightning
    # only refreshes ``last.ckpt`` when the monitored value improves.
    latest = RunCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, enable_version_counter=False)
    early = EarlyStopping(monitor=MONITOR, mode="min", patience=config.early_stopping_patience, check_finite=False)
    guard = CollapseWarning()
    cbs: list[pl.Callback] = [checkpoint, latest, early, LearningRateMonitor(logging_interval="epoch"),
                              DropReport(verbose=progress), guard]
    if progress:
        cbs.append(TQDMProgressBar())
    cbs.extend(callbacks)
    quiet_lightning()
    fit = pl.Trainer(
        **run.trainer_kwargs(),
        plugins=[AtomicCheckpointIO()],  # checkpoints whole or not at all, beside their target
        default_root_dir=out,
        max_epochs=int(max_epochs if max_epochs is not None else config.max_epochs),
        max_steps=int(max_steps) if max_steps is not None else -1,
        callbacks=cbs,
        logger=run.loggers(out),
        enable_progress_bar=progress,
        enable_model_summary=False,
        # The DataModule shards itself: exact validation figures under DDP (no padded repeats).
        use_distributed_sampler=False,
    )
    processes = fit.num_devices * fit.num_nodes
    if len(val) < processes:
        raise ValueError(
            f"the validation split has {len(val)} records, fewer than the {processes} processes: "
            "every process needs at least one (give more validation records or fewer devices)"
        )
    settings = {**config.run_settings(), "init_encoder": _weights_identity(config.init_encoder),
                "codec": codec_to_dict(module.codec)}
    if init_model is not None:
        settings["init_model"] = _weights_identity(init_model)
    data_id = f"{records_fingerprint(train)}/{records_fingerprint(val)}"
    if pool is not None:
        data_id += f"/unlabelled:{data_fingerprint(pool)}"
    data_key = hashlib.sha256(data_id.encode()).hexdigest()
    # One run per folder, held from the first look into it to the end (by process 0: the other
    # DDP processes run this code too).
    with folder_lock(out, "fine-tuning run", hold=fit.is_global_zero):
        folder = _open(out, "finetune", settings, data_key,
                       {**config.run_settings(), "init_encoder": config.init_encoder}, resume, fit,
                       upgrade=upgrade_finetune_settings)
        last = ckpt_dir / "last.ckpt"
        ckpt_path = last if not folder.fresh and last.is_file() else None
        if ckpt_path is not None:
            read_weight_file(ckpt_path)  # a damaged last.ckpt is named and described before Lightning reads it
        init_text: str | None = None
        if ckpt_path is None and config.init_encoder:
            report = module.init_encoder_from(config.init_encoder)
            init_text = f"encoder initialised from {config.init_encoder}\n{report}"
            if config.init_decoder:
                decoder_report = module.init_decoder_from(config.init_encoder)
                init_text += f"\ndecoder initialised from {config.init_encoder}\n{decoder_report}"
        if ckpt_path is None and init_model is not None:
            weights = read_weight_file(init_model)["state_dict"]
            module.model.load_state_dict({k[len("model."):]: v for k, v in weights.items() if k.startswith("model.")})
            module.objective.reset(module.model)
            init_text = (init_text + "\n" if init_text else "") + f"network initialised from {init_model}"
        if ckpt_path is not None and (out / "encoder_init.txt").is_file():
            init_text = (out / "encoder_init.txt").read_text().strip()
        if fit.is_global_zero:
            _write_json(out / "config.json", config.to_dict())
            if left_out and progress:
                print(f"{left_out} unlabelled images are validation images: left out of the pool", flush=True)
            if ckpt_path is None and init_text is not None:
                print(init_text, flush=True)
                write_text_atomic(out / "encoder_init.txt", init_text + "\n")

        def result(interrupted: str | None = None) -> FinetuneResult:
            best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
            best_entry = _best_entry(module.val_history)
            drops = module.drop_history
            examples: dict[str, str] = {}
            for entry in drops:
                examples.update(entry.get("examples", {}))
            best_metrics = {k: v for k, v in (best_entry or {}).items() if k.startswith("val/")}
            return FinetuneResult(
                out_dir=out,
                best_checkpoint=best_path,
                last_checkpoint=last if last.is_file() else None,
                best_metrics=best_metrics,
                best_epoch=int(best_entry["epoch"]) if best_entry else None,
                epochs=int(fit.current_epoch),
                global_step=int(fit.global_step),
                stopped_early=bool(early.stopped_epoch > 0),
                drop_summary={"last_epoch": drops[-1] if drops else None, "dropped": examples},
                val_history=list(module.val_history),
                encoder_init=init_text,
                interrupted=interrupted,
                collapsed_landmarks=guard.check(best_metrics),
                unlabelled_left_out=left_out,
                split=split,
            )

        def on_stop(signum: int) -> None:
            if fit.is_global_zero:
                _write_json(out / "summary.json", result(signal.Signals(signum).name).to_dict())

        def saved() -> list[str]:
            lines = [line for line in (_saved_checkpoint(last),) if line]
            best = checkpoint.best_model_path
            if best:
                lines.append(f"checkpoints/{Path(best).name} (best so far)")
            return [*lines, "summary.json"]

        with _stops_on_signal(fit, out, saved, on_stop):
            fit.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
        final = result()
        if fit.is_global_zero:
            _write_json(out / "summary.json", final.to_dict())
        # Every process returns only once the run files exist: the next step (on any process) reads them.
        fit.strategy.barrier("run_finetuning")
        return final
