"""The pure-torch parts of the training methods, and reference-similarity screening.

Pre-training objectives (:class:`PretrainObjective`): :class:`MoCoV2` and :class:`DenseCL` on
lightly's parts, :class:`MaskedReconstruction` of the whole U-Net. Fine-tuning objectives
(:class:`FinetuneObjective`): the :class:`MeanTeacher`. Pseudo-label self-training's parts:
:func:`predict_pseudo_labels`, :class:`ShapeModel` and :func:`filter_pseudo_labels`. The methods
of :mod:`sslkeypoint.methods` build them; :mod:`~sslkeypoint.ssl.screening` picks the sequences
of the paper's stage 2.
"""

from __future__ import annotations

from sslkeypoint.ssl.base import FinetuneObjective, PretrainObjective
from sslkeypoint.ssl.densecl import DENSE_LEVELS, DenseCL, DenseCLLosses
from sslkeypoint.ssl.mean_teacher import (
    EMA_DECAY_RANGE,
    EMATeacher,
    MeanTeacher,
    auto_ema_decay,
    confidence_mask,
    mean_teacher_loss,
    sigmoid_rampup,
)
from sslkeypoint.ssl.moco import MoCoV2, auto_momentum, cap_queue_size
from sslkeypoint.ssl.pseudo_labels import (
    DROP_REASONS,
    PseudoLabels,
    PseudoLabelStats,
    filter_pseudo_labels,
    measure_ranges,
    predict_pseudo_labels,
)
from sslkeypoint.ssl.reconstruction import MaskedReconstruction, patch_mask
from sslkeypoint.ssl.screening import (
    ScreeningResult,
    embed_images,
    frame_cut,
    plot_scores,
    reference_similarity,
    screen_sequences,
    select_frames,
    select_sequences,
)
from sslkeypoint.ssl.shape_model import ALIGNMENTS, ShapeModel, chi2_quantile

__all__ = [
    "ALIGNMENTS",
    "DENSE_LEVELS",
    "DROP_REASONS",
    "EMA_DECAY_RANGE",
    "DenseCL",
    "DenseCLLosses",
    "EMATeacher",
    "FinetuneObjective",
    "MaskedReconstruction",
    "MeanTeacher",
    "MoCoV2",
    "PretrainObjective",
    "PseudoLabelStats",
    "PseudoLabels",
    "ScreeningResult",
    "ShapeModel",
    "auto_ema_decay",
    "auto_momentum",
    "cap_queue_size",
    "chi2_quantile",
    "confidence_mask",
    "embed_images",
    "filter_pseudo_labels",
    "frame_cut",
    "mean_teacher_loss",
    "measure_ranges",
    "patch_mask",
    "plot_scores",
    "predict_pseudo_labels",
    "reference_similarity",
    "screen_sequences",
    "select_frames",
    "select_sequences",
    "sigmoid_rampup",
]
