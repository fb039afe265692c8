"""Lightning recipes: self-supervised pre-training (stages 1 and 2) and heatmap fine-tuning."""

from __future__ import annotations

from sslkeypoint.tasks.finetune import (
    FinetuneConfig,
    FinetuneResult,
    HeatmapFinetuneModule,
    overfit_one_batch,
    read_records,
    run_finetuning,
)
from sslkeypoint.tasks.pretrain import (
    MoCoPretrainModule,
    PretrainConfig,
    PretrainResult,
    run_pretraining,
)

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "HeatmapFinetuneModule",
    "MoCoPretrainModule",
    "PretrainConfig",
    "PretrainResult",
    "overfit_one_batch",
    "read_records",
    "run_finetuning",
    "run_pretraining",
]
