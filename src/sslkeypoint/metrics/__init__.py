"""Keypoint metrics: plain batched functions, and the landmark report as a ``torchmetrics.Metric``.

:mod:`sslkeypoint.metrics.functional` holds the functions (radial error, measure errors, heatmap
errors, success detection rate); :mod:`sslkeypoint.metrics.landmarks` holds
:class:`KeypointMetrics`, which accumulates them over an evaluation set and synchronises across
processes; :mod:`sslkeypoint.metrics.label_saving` turns errors into a label-saving factor against a
curve of training from scratch; :mod:`sslkeypoint.metrics.evaluate` scores a predictor on labelled
records (:func:`evaluate`).
"""

from __future__ import annotations

from sslkeypoint.metrics.evaluate import Evaluation, evaluate
from sslkeypoint.metrics.functional import (
    aop_absolute_error,
    heatmap_mae,
    heatmap_mse,
    mean_radial_error,
    measure_error,
    prediction_spread,
    radial_error,
    success_detection_rate,
)
from sslkeypoint.metrics.label_saving import LabelSaving, label_saving_factor, labels_needed
from sslkeypoint.metrics.landmarks import KeypointMetrics

__all__ = [
    "Evaluation",
    "KeypointMetrics",
    "LabelSaving",
    "aop_absolute_error",
    "evaluate",
    "heatmap_mae",
    "heatmap_mse",
    "label_saving_factor",
    "labels_needed",
    "mean_radial_error",
    "measure_error",
    "prediction_spread",
    "radial_error",
    "success_detection_rate",
]
