"""Typed configurations: what a run learns (method, model, loss, optimiser, schedule) and where it runs.

* :class:`PretrainConfig` — a pre-training stage (defaults: the paper's stage 1, MoCo v2;
  :meth:`PretrainConfig.stage2` for stage 2);
* :class:`FinetuneConfig` — heatmap fine-tuning (defaults: the paper's stage 3, supervised);
* :class:`TrainerConfig` — the machine: accelerator, devices, strategy, precision, workers,
  logging. It changes how fast a run goes, not what it learns (within floating-point noise).

How a stage learns is its ``method``, an object of :mod:`sslkeypoint.methods`
(``PretrainConfig(method=DenseCLMethod())``, ``FinetuneConfig(method=MeanTeacherMethod())``), not a
set of flags. Configs are plain dataclasses: derive variants with :func:`dataclasses.replace`,
store them with ``to_dict()`` (plain JSON-ready types) and rebuild them with ``from_dict()``, which
rejects unknown fields by name and reads the configs stored by earlier versions
(:mod:`~sslkeypoint.configs.legacy`). :mod:`~sslkeypoint.configs.profiles` names starting points
(``cpu``, ``paper``). The command line (``python -m sslkeypoint pretrain|finetune --help``) is
generated from their fields.
"""

from __future__ import annotations

from sslkeypoint.configs.finetune import FinetuneConfig
from sslkeypoint.configs.pretrain import STAGE2_AUGMENT, PretrainConfig
from sslkeypoint.configs.profiles import PROFILES, profile_defaults
from sslkeypoint.configs.trainer import TrainerConfig

__all__ = ["PROFILES", "STAGE2_AUGMENT", "FinetuneConfig", "PretrainConfig", "TrainerConfig", "profile_defaults"]
