"""The recipes: one call each for pre-training and fine-tuning, on a ``pytorch_lightning.Trainer``.

:func:`run_pretraining` (any pre-training method, stage 1 on images or stage 2 on videos) and
:func:`run_finetuning` (heatmap fine-tuning with any fine-tuning method) are thin: they build the
DataModule (:mod:`sslkeypoint.lightning.datamodules`), the LightningModule (:mod:`sslkeypoint.lightning`), the
callbacks and the Trainer from the configs (:mod:`sslkeypoint.configs`), run ``fit`` and gather
the result. Lightning does the rest: devices and DDP over processes or nodes, mixed precision,
checkpoints, resuming, early stopping, logging. Run files (``config.json``, ``summary.json``,
``encoder.safetensors``, ``encoder_init.txt``) are written by process 0 only.

The package holds one module per recipe, :mod:`~sslkeypoint.recipes.finetune` and
:mod:`~sslkeypoint.recipes.pretrain`; one fine-tuning run on a given split
(:mod:`~sslkeypoint.recipes.fit`); the rounds of pseudo-label self-training
(:mod:`~sslkeypoint.recipes.self_training`); and what they share (run files, the run-folder check,
stopping on a signal) in a private module.
"""

from __future__ import annotations

from sslkeypoint.recipes.finetune import FinetuneResult, run_finetuning
from sslkeypoint.recipes.pretrain import PretrainResult, run_pretraining

__all__ = ["FinetuneResult", "PretrainResult", "run_finetuning", "run_pretraining"]
