"""The fine-tuning recipe: :func:`run_finetuning` and its :class:`FinetuneResult`."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger

from sslkeypoint._utils import plain
from sslkeypoint.configs import FinetuneConfig, TrainerConfig
from sslkeypoint.data import (
    KeypointDataModule,
    KeypointRecord,
    data_fingerprint,
    list_images,
    records_fingerprint,
    split_records,
)
from sslkeypoint.heatmaps import KeypointCodec, codec_to_dict
from sslkeypoint.lightning.callbacks import CollapseWarning, DropReport
from sslkeypoint.lightning.checkpoint import RunCheckpoint
from sslkeypoint.lightning.finetune import MONITOR, HeatmapFinetuneModule, LossFn
from sslkeypoint.recipes._run import (
    _open,
    _saved_checkpoint,
    _stops_on_signal,
    _weights_identity,
    _write_json,
)
from sslkeypoint.weights import read_weight_file

__all__ = ["FinetuneResult", "run_finetuning"]

Records = Sequence[KeypointRecord] | tuple[Sequence[KeypointRecord], Sequence[KeypointRecord]]


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return plain(dataclasses.asdict(self))


def _split(records: Records, config: FinetuneConfig) -> tuple[list[KeypointRecord], list[KeypointRecord]]:
    """An explicit ``(train, val)`` pair as given, else the config's seeded ``val_fraction`` split."""
    if (
        isinstance(records, tuple)
        and len(records) == 2
        and all(isinstance(r, list | tuple) for r in records)
        and not isinstance(records[0], KeypointRecord)
    ):
        pair: tuple[Any, Any] = records
        return list(pair[0]), list(pair[1])
    items: list[KeypointRecord] = list(records)  # type: ignore[arg-type]  # not a pair: records
    return split_records(items, val_fraction=config.val_fraction, seed=config.seed)


def _best_entry(history: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    scored = [h for h in history if math.isfinite(float(h.get(MONITOR, math.inf)))]
    if not scored:
        return None
    return dict(min(scored, key=lambda h: float(h[MONITOR])))


def _unlabelled_files(config: FinetuneConfig,
                      unlabelled: str | PathLike[str] | Sequence[str | PathLike[str]] | None) -> list[Path] | None:
    """The unlabelled pool as files (a folder is listed), checked against ``config.semi``."""
    if unlabelled is None:
        if config.semi is not None:
            raise ValueError(
                f"config.semi={config.semi!r} learns from unlabelled images, but none were given: pass "
                "unlabelled=<folder or list of image files>, or set semi=None"
            )
        return None
    paths = list_images(Path(unlabelled)) if isinstance(unlabelled, str | PathLike) else [Path(p) for p in unlabelled]
    if not paths:
        raise ValueError(f"no unlabelled image files in {unlabelled}")
    if config.semi is None:
        raise ValueError(
            f"{len(paths)} unlabelled images were given but config.semi is None, which does not use them: "
            "set semi='mean_teacher', or leave unlabelled out"
        )
    return paths


def _without_validation(pool: list[Path] | None, val: Sequence[KeypointRecord]) -> tuple[list[Path] | None, int]:
    """The unlabelled pool without the validation images (same file), and how many were left out.

    The mean teacher learns from every pool image; a validation image among them would be
    trained on (its own predictions as targets), and the validation figures that pick the best
    checkpoint would no longer be those of unseen images.
    """
    if pool is None:
        return None, 0
    validation = {os.path.realpath(os.fspath(r.path)) for r in val}
    kept = [p for p in pool if os.path.realpath(os.fspath(p)) not in validation]
    if not kept:
        raise ValueError(
            f"all {len(pool)} unlabelled images are validation images, which are left out of the pool: "
            "give unlabelled images that are not in the validation split"
        )
    return kept, len(pool) - len(kept)


def run_finetuning(
    config: FinetuneConfig,
    records: Records,
    out_dir: str | PathLike[str],
    *,
    unlabelled: str | PathLike[str] | Sequence[str | PathLike[str]] | None = None,
    trainer: TrainerConfig | None = None,
    codec: KeypointCodec | None = None,
    resume: bool = True,
    max_epochs: int | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    loss_fn: LossFn | None = None,
    callbacks: Sequence[pl.Callback] = (),
) -> FinetuneResult:
    """Fine-tune a heatmap U-Net on labelled records with Lightning.

    Sets up: the train/validation split (``config.val_fraction`` with ``config.seed`` unless
    ``records`` is a ``(train, val)`` pair) in a :class:`~sslkeypoint.data.KeypointDataModule`
    (invalid samples dropped and counted per epoch), the encoder initialisation from
    ``config.init_encoder`` (and of the decoder too with ``config.init_decoder``; report printed
    and saved as ``encoder_init.txt``), and a Trainer with
    a progress bar, a CSV logger (``out_dir/logs``), checkpoints (``checkpoints/best-*.ckpt`` on
    ``val/mre_px`` and ``checkpoints/last.ckpt``), early stopping, learning-rate monitoring and
    ``seed_everything(config.seed, workers=True)``, so that a CPU run is repeatable and a resumed
    run ends where an uninterrupted one does. Under DDP every validation figure is computed over
    the whole validation set (see :class:`~sslkeypoint.lightning.HeatmapFinetuneModule`).

    Writes ``run.json`` (:mod:`sslkeypoint.runs`), ``config.json`` and ``summary.json`` (the
    :class:`FinetuneResult`) to ``out_dir``. A folder that holds a run with other settings
    (``max_epochs`` may change) or other records is refused before anything is written; a copied
    or moved run folder resumes from its own checkpoints.

    Semi-supervised (``config.semi = "mean_teacher"``, :mod:`sslkeypoint.lightning.semi`): every
    training batch also holds ``config.unlabelled_batch_size`` images of ``unlabelled``, read and
    resized as the labelled ones (unreadable ones dropped and counted with the training drops);
    the pool is part of the run's data identity, so a folder trained with another pool is refused.
    Pool files that are validation images are left out (counted in
    :attr:`FinetuneResult.unlabelled_left_out`): validation stays a measure on unseen images.

    Args:
        config: What to learn.
        records: Labelled records, or an explicit ``(train_records, val_records)`` pair.
        out_dir: Run folder (created).
        unlabelled: Unlabelled images (a folder, searched recursively, or a list of files); needed
            exactly when ``config.semi`` is set. Validation images among them are left out.
        trainer: Where to run; default ``TrainerConfig(deterministic=True)`` (repeatable on a CPU).
        codec: The heatmap codec; default ``config.codec()``. Stored in every checkpoint.
        resume: Continue from ``out_dir/checkpoints/last.ckpt`` when it exists; ``False`` starts
            the folder over (the files a run writes are removed first, nothing else).
        max_epochs: Override ``config.max_epochs`` (e.g. to extend a finished run).
        max_steps: Optional cap on optimisation steps.
        progress: Show the progress bar and the per-epoch drop summary.
        loss_fn: Optional custom loss ``(pred, target, visible) -> scalar``.
        callbacks: Extra Lightning callbacks.

    Returns:
        A :class:`FinetuneResult` (on every process).

    Raises:
        ValueError: On an empty split, fewer validation records than processes, ``config.semi``
            without unlabelled images, unlabelled images without ``config.semi``, or an
            unlabelled pool made only of validation images. Records
            with another keypoint count than ``config.num_keypoints`` are dropped as invalid
            (and reported), like unreadable files.
        sslkeypoint.runs.RunFolderError: If ``out_dir`` holds a run with other settings or data
            (a ``ValueError``), or files with a run's names that no run wrote.
        sslkeypoint.runs.RunInterrupted: On ``SIGTERM`` or ``SIGINT`` (a ``SystemExit`` with
            status 143 or 130), after ``summary.json`` recorded the interruption and the message
            said what was saved to resume from.
    """
    run = trainer or TrainerConfig(deterministic=True)
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    pool = _unlabelled_files(config, unlabelled)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    train, val = _split(records, config)
    pool, left_out = _without_validation(pool, val)
    data = KeypointDataModule(
        train,
        val,
        input_size=config.input_size,
        num_keypoints=config.num_keypoints,
        in_chans=config.in_chans,
        batch_size=config.batch_size,
        num_workers=run.num_workers,
        seed=config.seed,
        unlabelled=pool,
        unlabelled_batch_size=config.unlabelled_batch_size,
    )
    module = HeatmapFinetuneModule(config, codec=codec, loss_fn=loss_fn)
    checkpoint = RunCheckpoint(
        dirpath=ckpt_dir, filename="best-{epoch:03d}", monitor=MONITOR, mode="min", save_top_k=1,
        auto_insert_metric_name=False,
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
    fit = pl.Trainer(
        **run.trainer_kwargs(),
        default_root_dir=out,
        max_epochs=int(max_epochs if max_epochs is not None else config.max_epochs),
        max_steps=int(max_steps) if max_steps is not None else -1,
        callbacks=cbs,
        logger=CSVLogger(out, name="logs"),
        enable_progress_bar=progress,
        enable_model_summary=progress,
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
    data_id = f"{records_fingerprint(train)}/{records_fingerprint(val)}"
    if pool is not None:
        data_id += f"/unlabelled:{data_fingerprint(pool)}"
    data_key = hashlib.sha256(data_id.encode()).hexdigest()
    folder = _open(out, "finetune", settings, data_key,
                   {**config.run_settings(), "init_encoder": config.init_encoder}, resume, fit)
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
    elif (out / "encoder_init.txt").is_file():
        init_text = (out / "encoder_init.txt").read_text().strip()
    if fit.is_global_zero:
        _write_json(out / "config.json", config.to_dict())
        if left_out and progress:
            print(f"{left_out} unlabelled images are validation images: left out of the pool", flush=True)
        if ckpt_path is None and init_text is not None:
            print(init_text, flush=True)
            (out / "encoder_init.txt").write_text(init_text + "\n")

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
