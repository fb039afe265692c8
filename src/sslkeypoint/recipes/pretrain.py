"""The pre-training recipe: :func:`run_pretraining` and its :class:`PretrainResult`."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from sslkeypoint._version import __version__
from sslkeypoint.configs import PretrainConfig, TrainerConfig
from sslkeypoint.configs.legacy import upgrade_pretrain_settings
from sslkeypoint.data import (
    data_fingerprint,
    list_images,
    list_sequences,
)
from sslkeypoint.lightning.callbacks import DropReport
from sslkeypoint.lightning.checkpoint import RunCheckpoint
from sslkeypoint.lightning.checkpoint_io import AtomicCheckpointIO
from sslkeypoint.lightning.datamodules import PretrainDataModule
from sslkeypoint.lightning.pretrain import PretrainModule
from sslkeypoint.locks import folder_lock
from sslkeypoint.recipes._run import (
    _open,
    _saved_checkpoint,
    _stops_on_signal,
    _weights_identity,
    _write_json,
    quiet_lightning,
)
from sslkeypoint.weights import read_weight_file, save_state_dict

__all__ = ["PretrainResult", "run_pretraining"]


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
        unet_path: ``unet.safetensors`` of a method that trains a decoder too (DenseCL at the
            decoder level, masked reconstruction): encoder and decoder weights, keys
            ``encoder.*`` / ``decoder.*`` as in the heatmap model; else ``None``.
    """

    out_dir: Path
    encoder_path: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    queue_size: int
    global_step: int
    metrics: dict[str, float]
    module: PretrainModule
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
    progress: bool | None = None,
) -> PretrainResult:
    """Pre-train an encoder (or a whole U-Net) with the config's method: stage 1 on ``images``,
    stage 2 on ``sequences``.

    The method (``config.method``, :mod:`sslkeypoint.methods`) is MoCo v2 by default; DenseCL adds
    a dense loss on the encoder's deepest map or on a U-Net decoder's output; masked-image
    reconstruction trains encoder and decoder together. Sizes a method chooses from the data (MoCo's
    capped queue) are fixed before training.

    Under DDP a contrastive method's queue is gathered from every process (identical on all of
    them) and the loss is averaged over processes; process 0 writes ``encoder.safetensors``.

    Args:
        config: What to learn (:meth:`PretrainConfig.stage1` / :meth:`PretrainConfig.stage2`).
        images: Stage 1: an image folder (searched recursively) or a list of files.
        sequences: Stage 2: a folder with one sub-folder per sequence, or a list of frame lists
            (each in temporal order) — typically the sequences kept by
            :func:`sslkeypoint.ssl.screening.screen_sequences`.
        out_dir: Run folder: ``run.json``, ``config.json``, ``checkpoints/``, ``logs/`` (CSV),
            ``encoder.safetensors`` (and ``unet.safetensors`` for a method that trains a decoder:
            encoder and decoder for ``FinetuneConfig(init_encoder=..., init_decoder=True)``). Use
            one folder per stage; a folder that holds a run with
            other settings (``max_epochs`` may change) or other data is refused.
        init_from: Stage-1 result to start from: its ``.ckpt`` or its ``encoder.safetensors``.
            Ignored when the run resumes.
        trainer: Where to run; default :class:`~sslkeypoint.configs.TrainerConfig`'s defaults.
        resume: Continue from ``out_dir/checkpoints/last.ckpt`` when it exists; ``False`` starts
            the folder over (the files a run writes are removed first, nothing else).
        max_steps: Stop after this many optimizer steps in total (``None``: ``max_epochs``).
        progress: Show the progress bar; ``None`` (default): only when standard error is a terminal.

    Returns:
        A :class:`PretrainResult`.

    Raises:
        ValueError: Wrong data for the stage, too few items for a batch, or ``last.ckpt`` from the
            other stage.
        sslkeypoint.runs.RunFolderError: If ``out_dir`` holds a run with other settings or data, or
            another process holds it (:class:`~sslkeypoint.locks.FolderBusyError`).
        sslkeypoint.lightning.CheckpointWriteError: If a checkpoint cannot be written for want of
            room (an ``OSError``); the checkpoints saved before are whole.
        sslkeypoint.runs.RunInterrupted: On ``SIGTERM`` or ``SIGINT`` (status 143 or 130), after
            saying which checkpoint the run resumes from.
    """
    progress = sys.stderr.isatty() if progress is None else progress
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
    quiet_lightning()
    fit = pl.Trainer(
        **{**run.trainer_kwargs(), "strategy": _pretrain_strategy(run)},
        plugins=[AtomicCheckpointIO()],  # checkpoints whole or not at all, beside their target
        max_epochs=config.max_epochs,
        max_steps=-1 if max_steps is None else max_steps,
        logger=run.loggers(out),
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
    # One run per folder, held from the first look into it to the end (by process 0: the other
    # DDP processes run this code too).
    with folder_lock(out, "pre-training run", hold=fit.is_global_zero):
        folder = _open(out, "pretrain", settings, fingerprint, config.to_dict(), resume, fit,
                       upgrade=upgrade_pretrain_settings)
        if folder.fresh:
            resume_path = None
        if fit.is_global_zero:
            _write_json(out / "config.json", config.to_dict())
        # Sizes the method chooses from the data (a capped MoCo queue) are fixed in the module's config.
        used = dataclasses.replace(config, method=config.method.resolved(len(data), global_batch))
        module = PretrainModule(used, data_fingerprint=fingerprint)
        if init_from is not None and resume_path is None:
            module.load_initial_weights(init_from)
        with _stops_on_signal(fit, out, lambda: [line for line in (_saved_checkpoint(last),) if line], lambda _: None):
            fit.fit(module, datamodule=data, ckpt_path=resume_path, weights_only=True)
        # ModelCheckpoint saves at epoch ends; a run stopped by max_steps mid-epoch (or after the last
        # epoch-end save) must still leave its final state in last.ckpt for resuming.
        fit.save_checkpoint(last, weights_only=False)  # the full state: resumable

        encoder_path = out / "encoder.safetensors"
        model = module.model
        unet_path = out / "unet.safetensors" if model.trains_decoder else None
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
            if unet_path is not None:
                # Encoder and decoder named as in the heatmap model: FinetuneConfig(init_encoder=unet_path,
                # init_decoder=True) loads both.
                save_state_dict(model.export_unet(), unet_path,
                                metadata={**metadata, "heatmap_stride": str(getattr(config.method, "decoder_stride", ""))})
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
