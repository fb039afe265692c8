"""Training methods as typed configs: a method is an object, composed into the stages that train.

Pre-training methods (:mod:`~sslkeypoint.methods.pretraining`) go into
:class:`~sslkeypoint.configs.PretrainConfig` as ``method``; fine-tuning methods
(:mod:`~sslkeypoint.methods.finetuning`) into :class:`~sslkeypoint.configs.FinetuneConfig`. Each
builds the pure-torch parts of the method (:mod:`sslkeypoint.ssl`) that the LightningModules
compose; what every method shares is in :mod:`~sslkeypoint.methods.base`.

Examples:
    >>> from sslkeypoint.configs import FinetuneConfig
    >>> FinetuneConfig(method=MeanTeacherMethod(weight=2.0)).method.describe()
    'mean_teacher(weight=2.0)'
"""

from __future__ import annotations

from sslkeypoint.methods.base import FinetuningMethod, Method, PretrainingMethod, method_from_dict
from sslkeypoint.methods.finetuning import (
    STRONG_AUGMENT,
    VIEW_AUGMENT,
    MeanTeacherMethod,
    PseudoLabelMethod,
    SupervisedMethod,
)
from sslkeypoint.methods.pretraining import DenseCLMethod, MoCoV2Method, ReconstructionMethod

__all__ = [
    "STRONG_AUGMENT",
    "VIEW_AUGMENT",
    "DenseCLMethod",
    "FinetuningMethod",
    "MeanTeacherMethod",
    "Method",
    "MoCoV2Method",
    "PretrainingMethod",
    "PseudoLabelMethod",
    "ReconstructionMethod",
    "SupervisedMethod",
    "method_from_dict",
]
