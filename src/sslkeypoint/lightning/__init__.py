"""LightningModules of the recipes, their callbacks, and checks to run before training."""

from __future__ import annotations

from sslkeypoint.lightning.callbacks import CollapseWarning, DropReport
from sslkeypoint.lightning.checkpoint import RunCheckpoint
from sslkeypoint.lightning.checks import overfit_one_batch
from sslkeypoint.lightning.finetune import HeatmapFinetuneModule
from sslkeypoint.lightning.pretrain import MoCoPretrainModule

__all__ = ["CollapseWarning", "DropReport", "HeatmapFinetuneModule", "MoCoPretrainModule", "RunCheckpoint", "overfit_one_batch"]
