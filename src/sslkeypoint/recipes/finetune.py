"""The fine-tuning recipe: :func:`run_finetuning`, for every fine-tuning method."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from sslkeypoint.configs import FinetuneConfig, TrainerConfig
from sslkeypoint.data import (
    KeypointRecord,
    list_images,
    split_records,
)
from sslkeypoint.heatmaps import KeypointCodec
from sslkeypoint.lightning.finetune import LossFn
from sslkeypoint.methods import PseudoLabelMethod
from sslkeypoint.recipes.fit import FinetuneResult, FitOptions, fit_finetuning

__all__ = ["FOLDER_GROUPS", "FinetuneResult", "run_finetuning"]

Records = Sequence[KeypointRecord] | tuple[Sequence[KeypointRecord], Sequence[KeypointRecord]]

#: Without groups in the records, images in at least this many folders are split by folder.
FOLDER_GROUPS = 3


def _split(records: Records, config: FinetuneConfig) -> tuple[list[KeypointRecord], list[KeypointRecord], str]:
    """The ``(train, val)`` split and how it was made, in words.

    An explicit ``(train, val)`` pair is taken as given. Otherwise the config's seeded
    ``val_fraction`` split keeps groups on one side: the records' own groups where any record has
    one (a record without one is a group of its own), else the images' folders when they lie in
    at least :data:`FOLDER_GROUPS` folders (one folder per video or subject), else image by image.
    """
    if (
        isinstance(records, tuple)
        and len(records) == 2
        and all(isinstance(r, list | tuple) for r in records)
        and not isinstance(records[0], KeypointRecord)
    ):
        pair: tuple[Any, Any] = records
        train, val = list(pair[0]), list(pair[1])
        return train, val, f"given: {len(train)} training and {len(val)} validation images"
    items: list[KeypointRecord] = list(records)  # type: ignore[arg-type]  # not a pair: records
    if any(r.group is not None for r in items):
        def key(r: KeypointRecord) -> str:
            return f"group {r.group}" if r.group is not None else f"image {r.path}"
        source = "the records' groups"
    elif len({Path(r.path).parent for r in items}) >= FOLDER_GROUPS:
        def key(r: KeypointRecord) -> str:
            return str(Path(r.path).parent)
        source = "the images' folders"
    else:
        train, val = split_records(items, val_fraction=config.val_fraction, seed=config.seed)
        return train, val, (
            f"image by image (no groups known): {len(val)} of {len(items)} images for validation; give each "
            "record a group (video, subject) so that near-duplicate images stay on one side"
        )
    train, val = split_records(items, val_fraction=config.val_fraction, seed=config.seed, group=key)
    groups, val_groups = len({key(r) for r in items}), len({key(r) for r in val})
    return train, val, (
        f"by group ({source}): {val_groups} of {groups} groups, {len(val)} of {len(items)} images, for validation"
    )


def _unlabelled_files(config: FinetuneConfig,
                      unlabelled: str | PathLike[str] | Sequence[str | PathLike[str]] | None) -> list[Path] | None:
    """The unlabelled pool as files (a folder is listed), checked against the config's method."""
    method = config.method
    if unlabelled is None:
        if method.uses_unlabelled:
            raise ValueError(
                f"the fine-tuning method {method.name} learns from unlabelled images, but none were given: pass "
                "unlabelled=<folder or list of image files>, or use a method without them (SupervisedMethod)"
            )
        return None
    paths = list_images(Path(unlabelled)) if isinstance(unlabelled, str | PathLike) else [Path(p) for p in unlabelled]
    if not paths:
        raise ValueError(f"no unlabelled image files in {unlabelled}")
    if not method.uses_unlabelled:
        raise ValueError(
            f"{len(paths)} unlabelled images were given but the fine-tuning method {method.name} does not use "
            "them: use a method that does (MeanTeacherMethod, PseudoLabelMethod), or leave unlabelled out"
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
    progress: bool | None = None,
    loss_fn: LossFn | None = None,
    callbacks: Sequence[pl.Callback] = (),
) -> FinetuneResult:
    """Fine-tune a heatmap U-Net on labelled records with Lightning.

    Sets up: the train/validation split (``config.val_fraction`` with ``config.seed`` unless
    ``records`` is a ``(train, val)`` pair; whole groups — the records' groups, else the images'
    folders when there are at least :data:`FOLDER_GROUPS` — go to one side, and
    :attr:`FinetuneResult.split` says how it was made) in a :class:`~sslkeypoint.data.KeypointDataModule`
    (invalid samples dropped and counted per epoch), the encoder initialisation from
    ``config.init_encoder`` (and of the decoder too with ``config.init_decoder``; report printed
    and saved as ``encoder_init.txt``), and a Trainer with
    a progress bar, a CSV logger (``out_dir/logs``), checkpoints (``checkpoints/best-*.ckpt`` on
    ``val/mre_px`` and ``checkpoints/last.ckpt``), early stopping, learning-rate monitoring and
    ``seed_everything(config.seed, workers=True)``, so that a CPU run is repeatable and a resumed
    run ends where an uninterrupted one does. Under DDP every validation figure is computed over
    the whole validation set (see :class:`~sslkeypoint.lightning.HeatmapFinetuneModule`).

    Writes ``run.json`` (:mod:`sslkeypoint.runs`), ``config.json`` and ``summary.json`` (the
    :class:`FinetuneResult`) to ``out_dir``, each replaced atomically; checkpoints are written
    whole or not at all (:class:`~sslkeypoint.lightning.AtomicCheckpointIO`). A folder that holds
    a run with other settings (``max_epochs`` may change) or other records is refused before
    anything is written; a copied or moved run folder resumes from its own checkpoints. The run
    holds ``out_dir`` (:func:`~sslkeypoint.locks.folder_lock`): a second run on the same folder
    is refused while this one works.

    Methods that learn from unlabelled images (``config.method.uses_unlabelled``):

    * the mean teacher (:class:`~sslkeypoint.methods.MeanTeacherMethod`): every training batch
      also holds the method's ``unlabelled_batch_size`` images of ``unlabelled``, read and resized
      as the labelled ones (unreadable ones dropped and counted with the training drops);
    * pseudo-label self-training (:class:`~sslkeypoint.methods.PseudoLabelMethod`): rounds of
      fine-tuning in ``out_dir/round0`` (the teacher), ``out_dir/round1``, ... (the students; see
      :mod:`sslkeypoint.recipes.self_training`); the result is the last round's, with the
      pseudo-label counts of every round.

    The pool is part of a run's data identity, so a folder trained with another pool is refused.
    Pool files that are validation images are left out (counted in
    :attr:`FinetuneResult.unlabelled_left_out`): validation stays a measure on unseen images.

    Args:
        config: What to learn.
        records: Labelled records, or an explicit ``(train_records, val_records)`` pair.
        out_dir: Run folder (created).
        unlabelled: Unlabelled images (a folder, searched recursively, or a list of files); needed
            exactly when the config's method learns from them. Validation images among them are
            left out.
        trainer: Where to run; default ``TrainerConfig(deterministic=True)`` (repeatable on a CPU).
        codec: The heatmap codec; default ``config.codec()``. Stored in every checkpoint.
        resume: Continue from ``out_dir/checkpoints/last.ckpt`` when it exists; ``False`` starts
            the folder over (the files a run writes are removed first, nothing else).
        max_epochs: Override ``config.max_epochs`` (e.g. to extend a finished run).
        max_steps: Optional cap on optimisation steps.
        progress: Show the progress bar and the per-epoch drop summary; ``None`` (default): only
            when standard error is a terminal, so that redirected logs stay readable.
        loss_fn: Optional custom loss ``(pred, target, visible) -> scalar``.
        callbacks: Extra Lightning callbacks.

    Returns:
        A :class:`FinetuneResult` (on every process).

    Raises:
        ValueError: On an empty split, fewer validation records than processes, a method that
            learns from unlabelled images without them, unlabelled images for a method that does
            not use them, or an unlabelled pool made only of validation images. Records
            with another keypoint count than ``config.num_keypoints`` are dropped as invalid
            (and reported), like unreadable files.
        sslkeypoint.runs.RunFolderError: If ``out_dir`` holds a run with other settings or data
            (a ``ValueError``), or files with a run's names that no run wrote, or another process
            holds it (:class:`~sslkeypoint.locks.FolderBusyError`).
        sslkeypoint.lightning.CheckpointWriteError: If a checkpoint cannot be written for want of
            room (an ``OSError``); the checkpoints saved before are whole, and the same call
            resumes once there is space.
        sslkeypoint.runs.RunInterrupted: On ``SIGTERM`` or ``SIGINT`` (a ``SystemExit`` with
            status 143 or 130), after ``summary.json`` recorded the interruption and the message
            said what was saved to resume from.
    """
    progress = sys.stderr.isatty() if progress is None else progress
    run = trainer or TrainerConfig(deterministic=True)
    pool = _unlabelled_files(config, unlabelled)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    train, val, split = _split(records, config)
    if progress:
        print(f"validation split {split}", flush=True)
    pool, left_out = _without_validation(pool, val)
    options = FitOptions(trainer=run, codec=codec, resume=resume, max_epochs=max_epochs, max_steps=max_steps,
                         progress=progress, loss_fn=loss_fn, callbacks=tuple(callbacks))
    if isinstance(config.method, PseudoLabelMethod):
        from sslkeypoint.recipes.self_training import run_self_training

        assert pool is not None
        return run_self_training(config, train, val, pool, Path(out_dir), options, left_out=left_out, split=split)
    return fit_finetuning(config, train, val, Path(out_dir), options, pool=pool, left_out=left_out, split=split)
