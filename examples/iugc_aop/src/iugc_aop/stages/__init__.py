"""The stages of the IUGC pipeline, as plain resumable functions.

Every stage takes the data root (a real IUGC 2025 folder or a synthetic one), a run folder and a
:class:`~iugc_aop.profiles.Profile`, writes its outputs under the run folder, skips work already
done (:class:`~iugc_aop.stages.cache.StageCache`; an interrupted training run resumes from its
``last.ckpt``) and returns a small result dataclass:

* :func:`stage_pretrain` — stage 1, MoCo v2 on unlabelled frames and training images (``RUN/stage1/``);
* :func:`stage_select` — screening of the sequences against the ``ExampleN.jpg`` references (``RUN/select/``);
* :func:`stage_pretrain_temporal` — stage 2, MoCo v2 on adjacent frames of the kept sequences (``RUN/stage2/``);
* :func:`choose_labelled` — which training cases get labels (``RUN/labels/``), by the library's selection;
* :func:`stage_finetune` — stage 3, heatmap fine-tuning of one variant (``RUN/finetune/<variant>/``);
* :func:`stage_evaluate` — Validation and Testing metrics and per-image predictions (``RUN/eval/<variant>/``).

Errors are measured in the original images' pixels (512×512 for IUGC), with each variant's own
codec mapping its predictions back (see :mod:`iugc_aop.variants`).
"""

from __future__ import annotations

from iugc_aop.stages.cache import StageCache
from iugc_aop.stages.common import data_is_real, load_dataset, similarity_group, unlabelled_pool
from iugc_aop.stages.evaluate import (
    EvaluationResult,
    evaluate_records,
    stage_evaluate,
    time_predictor,
)
from iugc_aop.stages.finetune import (
    FinetuneStageResult,
    holdout_split,
    labelled_subset,
    ssl_encoder_path,
    stage_finetune,
)
from iugc_aop.stages.labels import SELECTIONS, LabelChoice, choose_labelled
from iugc_aop.stages.pretrain import PretrainStageResult, stage_pretrain, stage_pretrain_temporal
from iugc_aop.stages.screen import SelectionResult, stage_select

__all__ = [
    "SELECTIONS",
    "EvaluationResult",
    "FinetuneStageResult",
    "LabelChoice",
    "PretrainStageResult",
    "SelectionResult",
    "StageCache",
    "choose_labelled",
    "data_is_real",
    "evaluate_records",
    "holdout_split",
    "labelled_subset",
    "load_dataset",
    "similarity_group",
    "ssl_encoder_path",
    "stage_evaluate",
    "stage_finetune",
    "stage_pretrain",
    "stage_pretrain_temporal",
    "stage_select",
    "time_predictor",
    "unlabelled_pool",
]
