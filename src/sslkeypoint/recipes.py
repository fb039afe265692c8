"""The recipes: one call each for pre-training and fine-tuning, on a ``pytorch_lightning.Trainer``.

:func:`run_pretraining` (MoCo v2, stage 1 on images or stage 2 on videos) and
:func:`run_finetuning` (heatmap fine-tuning) are thin: they build the DataModule
(:mod:`sslkeypoint.data.datamodules`), the LightningModule (:mod:`sslkeypoint.lightning`), the
callbacks and the Trainer from the configs (:mod:`sslkeypoint.configs`), run ``fit`` and gather
the result. Lightning does the rest: devices and DDP over processes or nodes, mixed precision,
checkpoints, resuming, early stopping, logging. Run files (``config.json``, ``summary.json``,
``encoder.safetensors``, ``encoder_init.txt``) are written by process 0 only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from sslkeypoint._utils import plain
from sslkeypoint._version import __version__
from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig
from sslkeypoint.data import (
    KeypointDataModule,
    KeypointRecord,
    PretrainDataModule,
    data_fingerprint,
    file_digest,
    list_images,
    list_sequences,
    records_fingerprint,
    split_records,
)
from sslkeypoint.heatmaps import KeypointCodec, codec_to_dict
from sslkeypoint.lightning.callbacks import CollapseWarning, DropReport
from sslkeypoint.lightning.checkpoint import RunCheckpoint
from sslkeypoint.lightning.finetune import MONITOR, HeatmapFinetuneModule, LossFn
from sslkeypoint.lightning.pretrain import MoCoPretrainModule
from sslkeypoint.runs import RunFolder, RunInterrupted, open_run_folder
from sslkeypoint.ssl import DenseCL, cap_queue_size
from sslkeypoint.weights import read_weight_file, save_state_dict

__all__ = ["FinetuneResult", "PretrainResult", "run_finetuning", "run_pretraining"]

Records = Sequence[KeypointRecord] | tuple[Sequence[KeypointRecord], Sequence[KeypointRecord]]


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(plain(data), indent=2, default=str))


def _weights_identity(path: str | PathLike[str] | None) -> dict[str, str] | None:
    """A weight file as its name and content digest: a run is tied to the weights, not to their place."""
    if path is None:
        return None
    return {"file": Path(path).name, "digest": file_digest(path)}


def _open(out: Path, kind: str, settings: dict[str, Any], data: str, legacy: dict[str, Any], resume: bool,
          fit: pl.Trainer) -> RunFolder:
    """Check the run folder (every process), then record it (process 0)."""
    run = open_run_folder(out, kind, settings, data, resume=resume, legacy_settings=legacy,
                          writer=fit.is_global_zero)
    if fit.is_global_zero:
        for note in run.notes:  # rare and worth seeing: a copied, moved, adopted or restarted folder
            print(note, file=sys.stderr, flush=True)
        run.write()
    return run


def _saved_checkpoint(path: Path) -> str | None:
    """``"checkpoints/last.ckpt (after epoch E, step S)"`` for a readable checkpoint, else ``None``."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return f"{path.parent.name}/{path.name} (unreadable)"
    return f"{path.parent.name}/{path.name} (after epoch {state.get('epoch')}, step {state.get('global_step')})"


@contextlib.contextmanager
def _stops_on_signal(fit: pl.Trainer, out: Path, saved: Callable[[], list[str]],
                     on_stop: Callable[[int], None]) -> Iterator[None]:
    """Turn Lightning's exit on ``SIGTERM`` (status 0) or ``SIGINT`` (status 1) into :class:`RunInterrupted`.

    ``on_stop(signum)`` records the partial result first; the message says what was saved.
    """
    try:
        yield
    except SystemExit as exc:
        if isinstance(exc, RunInterrupted):
            raise
        if isinstance(exc, SIGTERMException):
            signum = signal.SIGTERM
        elif isinstance(exc.__context__, KeyboardInterrupt):
            signum = signal.SIGINT
        else:
            raise
        on_stop(signum)
        stop = RunInterrupted(signum, out, saved() if fit.is_global_zero else [])
        if fit.is_global_zero:
            print(stop, file=sys.stderr, flush=True)
        raise stop from None


# ------------------------------------------------------------------------------------------
# Fine-tuning
# ------------------------------------------------------------------------------------------


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


#: Fields of :class:`FinetuneConfig` that change nothing while ``semi`` is ``None``.
_SEMI_FIELDS = ("semi", "semi_weight", "semi_rampup_steps", "ema_decay", "semi_confidence",
                "unlabelled_batch_size", "semi_eval_teacher")


def _finetune_settings(config: FinetuneConfig) -> dict[str, Any]:
    """``config.to_dict()`` without the semi-supervised fields when ``semi`` is off (they change nothing)."""
    settings = config.to_dict()
    if config.semi is None:
        for name in _SEMI_FIELDS:
            settings.pop(name, None)
    return settings


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

    Args:
        config: What to learn.
        records: Labelled records, or an explicit ``(train_records, val_records)`` pair.
        out_dir: Run folder (created).
        unlabelled: Unlabelled images (a folder, searched recursively, or a list of files); needed
            exactly when ``config.semi`` is set.
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
            without unlabelled images or unlabelled images without ``config.semi``. Records
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
    settings = {**_finetune_settings(config), "init_encoder": _weights_identity(config.init_encoder),
                "codec": codec_to_dict(module.codec)}
    data_id = f"{records_fingerprint(train)}/{records_fingerprint(val)}"
    if pool is not None:
        data_id += f"/unlabelled:{data_fingerprint(pool)}"
    data_key = hashlib.sha256(data_id.encode()).hexdigest()
    folder = _open(out, "finetune", settings, data_key,
                   {**_finetune_settings(config), "init_encoder": config.init_encoder}, resume, fit)
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


# ------------------------------------------------------------------------------------------
# Pre-training
# ------------------------------------------------------------------------------------------


@dataclass
class PretrainResult:
    """What :func:`run_pretraining` produced.

    Attributes:
        out_dir: Run folder.
        encoder_path: ``encoder.safetensors`` (query encoder weights, encoder-relative keys).
        last_checkpoint: ``checkpoints/last.ckpt`` (full state, for resuming).
        best_checkpoint: Best checkpoint by epoch loss (``None`` if none was monitored yet).
        queue_size: Queue size used (after capping).
        global_step: Optimizer steps done in total (including resumed ones).
        metrics: Last logged metrics (``train_loss_epoch``, ...).
        module: The trained module.
        drop_summary: Unreadable images skipped: the last epoch's counts over every process and
            every skipped path with its reason (this process's).
        unet_path: ``unet.safetensors`` of a DenseCL run at the decoder level (encoder and decoder
            weights, keys ``encoder.*`` / ``decoder.*`` as in the heatmap model), else ``None``.
    """

    out_dir: Path
    encoder_path: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    queue_size: int
    global_step: int
    metrics: dict[str, float]
    module: MoCoPretrainModule
    drop_summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    unet_path: Path | None = None


def _pretrain_strategy(run: TrainerConfig) -> Any:
    """``"ddp"`` without per-step buffer broadcast: the queue is identical on every rank already.

    torch 2.14 renamed DDP's ``broadcast_buffers`` to ``forward_sync_buffers`` (which still
    synchronises buffers once, when DDP wraps the model: harmless, they are identical); the name
    the installed torch knows is used.
    """
    if run.strategy == "ddp":
        import inspect

        from pytorch_lightning.strategies import DDPStrategy
        from torch.nn.parallel import DistributedDataParallel

        known = inspect.signature(DistributedDataParallel.__init__).parameters
        option = "forward_sync_buffers" if "forward_sync_buffers" in known else "broadcast_buffers"
        kwargs: dict[str, Any] = {option: False}
        return DDPStrategy(**kwargs)
    return run.strategy


def run_pretraining(
    config: PretrainConfig,
    images: str | PathLike[str] | Sequence[str | PathLike[str]] | None = None,
    sequences: str | PathLike[str] | Sequence[Sequence[str | PathLike[str]]] | None = None,
    out_dir: str | PathLike[str] = "pretrain",
    init_from: str | PathLike[str] | None = None,
    *,
    trainer: TrainerConfig | None = None,
    resume: bool = True,
    max_steps: int | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Pre-train an encoder with MoCo v2 (stage 1 on ``images``, stage 2 on ``sequences``).

    With ``config.dense_weight > 0`` the loss is DenseCL's (:class:`~sslkeypoint.ssl.DenseCL`):
    MoCo v2 plus a dense loss on the encoder's deepest map or on a U-Net decoder's output
    (``config.dense_level``), in both stages.

    Under DDP the queue is gathered from every process (identical on all of them) and the loss is
    averaged over processes; process 0 writes ``encoder.safetensors``.

    Args:
        config: What to learn (:meth:`PretrainConfig.stage1` / :meth:`PretrainConfig.stage2`).
        images: Stage 1: an image folder (searched recursively) or a list of files.
        sequences: Stage 2: a folder with one sub-folder per sequence, or a list of frame lists
            (each in temporal order) — typically the sequences kept by
            :func:`sslkeypoint.ssl.selection.screen_sequences`.
        out_dir: Run folder: ``run.json``, ``config.json``, ``checkpoints/``, ``logs/`` (CSV),
            ``encoder.safetensors`` (and ``unet.safetensors`` with ``dense_level="decoder"``:
            encoder and decoder for ``FinetuneConfig(init_encoder=..., init_decoder=True)``). Use
            one folder per stage; a folder that holds a run with
            other settings (``max_epochs`` may change) or other data is refused.
        init_from: Stage-1 result to start from: its ``.ckpt`` or its ``encoder.safetensors``.
            Ignored when the run resumes.
        trainer: Where to run; default :class:`~sslkeypoint.configs.TrainerConfig`'s defaults.
        resume: Continue from ``out_dir/checkpoints/last.ckpt`` when it exists; ``False`` starts
            the folder over (the files a run writes are removed first, nothing else).
        max_steps: Stop after this many optimizer steps in total (``None``: ``max_epochs``).
        progress: Show the progress bar.

    Returns:
        A :class:`PretrainResult`.

    Raises:
        ValueError: Wrong data for the stage, too few items for a batch, or ``last.ckpt`` from the
            other stage.
        sslkeypoint.runs.RunFolderError: If ``out_dir`` holds a run with other settings or data.
        sslkeypoint.runs.RunInterrupted: On ``SIGTERM`` or ``SIGINT`` (status 143 or 130), after
            saying which checkpoint the run resumes from.
    """
    run = trainer or TrainerConfig()
    if (images is None) == (sequences is None):
        raise ValueError("give exactly one of images (stage 1) or sequences (stage 2)")
    if config.stage == 1 and images is None:
        raise ValueError("stage 1 trains on images; got sequences")
    if config.stage == 2 and sequences is None:
        raise ValueError("stage 2 trains on sequences of frames; got images")
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    resume_path = last if resume and last.exists() else None
    if resume_path is not None:
        saved = read_weight_file(resume_path).get("sslkeypoint", {})
        if saved.get("stage", config.stage) != config.stage:
            raise ValueError(
                f"{resume_path} is a stage-{saved['stage']} run; this is stage {config.stage}: use "
                "another out_dir, or pass it as init_from"
            )

    pl.seed_everything(config.seed, workers=True, verbose=False)
    common: dict[str, Any] = {"image_size": config.image_size, "in_chans": config.in_chans,
                              "batch_size": config.batch_size, "num_workers": run.num_workers}
    if images is not None:
        paths = list_images(Path(images)) if isinstance(images, str | PathLike) else [Path(p) for p in images]
        if not paths:
            raise ValueError(f"no image files under {images}")
        data = PretrainDataModule(images=paths, **common)
        fingerprint = data_fingerprint(paths)
    else:
        assert sequences is not None
        seqs = (
            list_sequences(sequences)
            if isinstance(sequences, str | PathLike)
            else [[Path(p) for p in s] for s in sequences]
        )
        data = PretrainDataModule(sequences=seqs, delta=config.delta, seed=config.seed, **common)
        fingerprint = data_fingerprint(seqs)

    checkpoint = RunCheckpoint(
        dirpath=ckpt_dir, filename="best-{epoch:03d}", monitor="train_loss_epoch", mode="min", save_top_k=1,
    )
    # ``last.ckpt`` after every epoch: with a monitor, Lightning refreshes its ``save_last`` file only
    # when the monitored loss improves, and a stopped run would resume from an older epoch.
    latest = RunCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, enable_version_counter=False)
    fit = pl.Trainer(
        **{**run.trainer_kwargs(), "strategy": _pretrain_strategy(run)},
        max_epochs=config.max_epochs,
        max_steps=-1 if max_steps is None else max_steps,
        logger=CSVLogger(out, name="logs"),
        callbacks=[checkpoint, latest, DropReport(verbose=progress)],
        enable_progress_bar=progress,
        enable_model_summary=False,
        default_root_dir=out,
    )
    global_batch = config.batch_size * fit.num_devices * fit.num_nodes
    if len(data) < global_batch:
        raise ValueError(
            f"{len(data)} training items are fewer than one global batch of {global_batch} "
            f"({config.batch_size} per device × {fit.num_devices} devices × {fit.num_nodes} nodes)"
        )
    settings = {**config.to_dict(), "init_from": _weights_identity(init_from)}
    folder = _open(out, "pretrain", settings, fingerprint, config.to_dict(), resume, fit)
    if folder.fresh:
        resume_path = None
    if fit.is_global_zero:
        _write_json(out / "config.json", config.to_dict())
    queue = cap_queue_size(config.queue_size, len(data), global_batch) if config.cap_queue else config.queue_size
    module = MoCoPretrainModule(config, queue_size=queue, data_fingerprint=fingerprint)
    if init_from is not None and resume_path is None:
        module.load_initial_weights(init_from)
    with _stops_on_signal(fit, out, lambda: [line for line in (_saved_checkpoint(last),) if line], lambda _: None):
        fit.fit(module, datamodule=data, ckpt_path=resume_path, weights_only=True)
    # ModelCheckpoint saves at epoch ends; a run stopped by max_steps mid-epoch (or after the last
    # epoch-end save) must still leave its final state in last.ckpt for resuming.
    fit.save_checkpoint(last, weights_only=False)  # the full state: resumable

    encoder_path = out / "encoder.safetensors"
    model = module.model
    unet_path = out / "unet.safetensors" if isinstance(model, DenseCL) and model.decoder is not None else None
    if fit.is_global_zero:
        metadata = {
            "sslkeypoint_version": __version__,
            "stage": str(config.stage),
            "encoder": config.encoder,
            "encoder_kwargs": json.dumps(config.encoder_kwargs),
            "in_chans": str(config.in_chans),
            "data_fingerprint": fingerprint,
            "global_step": str(fit.global_step),
        }
        save_state_dict(model.export_encoder(), encoder_path, metadata=metadata)
        if unet_path is not None and isinstance(model, DenseCL):
            # Encoder and decoder named as in the heatmap model: FinetuneConfig(init_encoder=unet_path,
            # init_decoder=True) loads both.
            save_state_dict(model.export_unet(), unet_path,
                            metadata={**metadata, "heatmap_stride": str(config.dense_decoder_stride)})
    # Every process returns only once encoder.safetensors is written: a next stage started on any
    # process (fine-tuning from it, stage 2) reads it.
    fit.strategy.barrier("run_pretraining")
    best = checkpoint.best_model_path
    return PretrainResult(
        out_dir=out,
        encoder_path=encoder_path,
        last_checkpoint=last if last.exists() else None,
        best_checkpoint=Path(best) if best else None,
        queue_size=module.model.queue_size,
        global_step=fit.global_step,
        metrics={k: float(v) for k, v in fit.callback_metrics.items()},
        module=module,
        drop_summary={"last_epoch": module.drop_history[-1] if module.drop_history else None,
                      "dropped": module.drops.examples},
        unet_path=unet_path,
    )
