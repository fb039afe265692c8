"""LightningModules and DataModules of the recipes, their callbacks, and checks to run before training.

The LightningModules take a built training method (:mod:`sslkeypoint.methods` →
:mod:`sslkeypoint.ssl`): :class:`PretrainModule` any pre-training objective,
:class:`HeatmapFinetuneModule` any fine-tuning objective. The DataModules
(:mod:`~sslkeypoint.lightning.datamodules`) serve them labelled records, unlabelled images and
videos. Checkpoints are written by :class:`AtomicCheckpointIO`: whole or not at all.
"""

from __future__ import annotations

from sslkeypoint.lightning.callbacks import CollapseWarning, DropReport
from sslkeypoint.lightning.checkpoint import RunCheckpoint
from sslkeypoint.lightning.checkpoint_io import (
    AtomicCheckpointIO,
    CheckpointWriteError,
    describe_checkpoint,
)
from sslkeypoint.lightning.checks import overfit_one_batch
from sslkeypoint.lightning.datamodules import KeypointDataModule, PretrainDataModule
from sslkeypoint.lightning.finetune import HeatmapFinetuneModule
from sslkeypoint.lightning.pretrain import MoCoPretrainModule, PretrainModule

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointWriteError",
    "CollapseWarning",
    "DropReport",
    "HeatmapFinetuneModule",
    "KeypointDataModule",
    "MoCoPretrainModule",
    "PretrainDataModule",
    "PretrainModule",
    "RunCheckpoint",
    "describe_checkpoint",
    "overfit_one_batch",
]
