"""Reading configs stored by sslkeypoint 0.6 and earlier, whose methods were flat fields.

Before methods were objects (:mod:`sslkeypoint.methods`), a :class:`~sslkeypoint.configs.PretrainConfig`
carried MoCo v2's and DenseCL's settings as fields of its own (``queue_size``, ``dense_weight``, ...)
and a :class:`~sslkeypoint.configs.FinetuneConfig` the mean teacher's (``semi``, ``semi_weight``,
``ema_decay``, ...). ``from_dict`` reads such a stored config (``config.json``, a checkpoint's
hyper-parameters, a run folder's ``run.json``) through these functions: the flat fields become the
method they describe, and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "LEGACY_FINETUNE_FIELDS",
    "LEGACY_PRETRAIN_FIELDS",
    "upgrade_finetune_dict",
    "upgrade_finetune_settings",
    "upgrade_pretrain_dict",
    "upgrade_pretrain_settings",
]

#: PretrainConfig field of 0.6 → (method, field of the method).
LEGACY_PRETRAIN_FIELDS: dict[str, tuple[str, str]] = {
    **{name: ("moco", name) for name in ("projection_dim", "hidden_dim", "queue_size", "cap_queue", "temperature",
                                         "momentum", "momentum_end", "split_bn", "mask_same_source")},
    "dense_weight": ("dense", "weight"),
    "dense_level": ("dense", "level"),
    "dense_samples": ("dense", "samples"),
    "dense_decoder_stride": ("dense", "decoder_stride"),
}

#: FinetuneConfig field of 0.6 → field of :class:`~sslkeypoint.methods.MeanTeacherMethod` (``semi`` chose it).
LEGACY_FINETUNE_FIELDS: dict[str, str] = {
    "semi_weight": "weight",
    "semi_rampup_steps": "rampup_steps",
    "ema_decay": "ema_decay",
    "semi_confidence": "confidence",
    "unlabelled_batch_size": "unlabelled_batch_size",
    "semi_eval_teacher": "eval_teacher",
}


def _refuse_both(data: Mapping[str, Any], legacy: list[str], what: str) -> None:
    if "method" in data:
        raise ValueError(
            f"a {what} gives both 'method' and the former method fields {legacy}: give the settings in the method "
            "only (see sslkeypoint.methods)"
        )


def upgrade_pretrain_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored PretrainConfig with 0.6's flat MoCo v2 / DenseCL fields as a ``method``.

    ``dense_weight > 0`` was DenseCL, anything else MoCo v2; fields that were not stored keep the
    method's defaults (which are 0.6's).

    Examples:
        >>> upgrade_pretrain_dict({"stage": 1, "queue_size": 512, "dense_weight": 0.0})["method"]
        {'class': 'sslkeypoint.methods.pretraining.MoCoV2Method', 'kwargs': {'queue_size': 512}}
        >>> upgrade_pretrain_dict({"dense_weight": 0.5, "dense_level": "decoder"})["method"]["kwargs"]
        {'weight': 0.5, 'level': 'decoder'}
    """
    legacy = [k for k in data if k in LEGACY_PRETRAIN_FIELDS]
    if not legacy:
        return dict(data)
    _refuse_both(data, legacy, "PretrainConfig")
    out = {k: v for k, v in data.items() if k not in LEGACY_PRETRAIN_FIELDS}
    dense = float(data.get("dense_weight", 0.0) or 0.0) > 0
    kwargs = {LEGACY_PRETRAIN_FIELDS[k][1]: data[k] for k in legacy
              if dense or LEGACY_PRETRAIN_FIELDS[k][0] == "moco"}
    name = "DenseCLMethod" if dense else "MoCoV2Method"
    out["method"] = {"class": f"sslkeypoint.methods.pretraining.{name}", "kwargs": kwargs}
    return out


def upgrade_finetune_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored FinetuneConfig with 0.6's ``semi`` fields as a ``method``.

    ``semi="mean_teacher"`` becomes a :class:`~sslkeypoint.methods.MeanTeacherMethod` of the
    ``semi_*`` fields; ``semi=None`` (or no ``semi``) a supervised method, whatever the inert
    ``semi_*`` fields held.

    Examples:
        >>> upgrade_finetune_dict({"lr": 1e-3, "semi": "mean_teacher", "semi_weight": 2.0})["method"]
        {'class': 'sslkeypoint.methods.finetuning.MeanTeacherMethod', 'kwargs': {'weight': 2.0}}
        >>> upgrade_finetune_dict({"lr": 1e-3, "semi": None, "ema_decay": 0.99})
        {'lr': 0.001, 'method': {'class': 'sslkeypoint.methods.finetuning.SupervisedMethod', 'kwargs': {}}}
    """
    legacy = [k for k in data if k == "semi" or k in LEGACY_FINETUNE_FIELDS]
    if not legacy:
        return dict(data)
    _refuse_both(data, legacy, "FinetuneConfig")
    semi = data.get("semi")
    if semi not in (None, "mean_teacher"):
        raise ValueError(f"semi must be None or 'mean_teacher'; got {semi!r}")
    out = {k: v for k, v in data.items() if k not in legacy}
    if semi is None:
        out["method"] = {"class": "sslkeypoint.methods.finetuning.SupervisedMethod", "kwargs": {}}
    else:
        kwargs = {LEGACY_FINETUNE_FIELDS[k]: data[k] for k in legacy if k != "semi"}
        out["method"] = {"class": "sslkeypoint.methods.finetuning.MeanTeacherMethod", "kwargs": kwargs}
    return out


def upgrade_finetune_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A fine-tuning run folder's recorded settings (``run.json``) in this version's form.

    As :func:`upgrade_finetune_dict`; a supervised run of 0.5–0.6 recorded no ``semi`` field at
    all, so settings without a method are supervised ones.

    Examples:
        >>> upgrade_finetune_settings({"lr": 0.001})["method"]["class"]
        'sslkeypoint.methods.finetuning.SupervisedMethod'
    """
    out = upgrade_finetune_dict(settings)
    out.setdefault("method", {"class": "sslkeypoint.methods.finetuning.SupervisedMethod", "kwargs": {}})
    from sslkeypoint.methods import FinetuningMethod, method_from_dict

    out["method"] = method_from_dict(out["method"], FinetuningMethod).to_dict()
    return out


def upgrade_pretrain_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A pre-training run folder's recorded settings (``run.json``) in this version's form
    (:func:`upgrade_pretrain_dict`, the method's fields in full as the method stores them)."""
    out = upgrade_pretrain_dict(settings)
    method = out.get("method")
    if isinstance(method, Mapping) and "class" in method and set(settings) & set(LEGACY_PRETRAIN_FIELDS):
        from sslkeypoint.methods import PretrainingMethod, method_from_dict

        out["method"] = method_from_dict(method, PretrainingMethod).to_dict()
    return out
