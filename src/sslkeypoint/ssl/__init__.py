"""Self-supervised pre-training parts: MoCo v2 and DenseCL on lightly, and reference-similarity screening."""

from __future__ import annotations

from sslkeypoint.ssl.densecl import DENSE_LEVELS, DenseCL, DenseCLLosses, dense_info_nce_loss
from sslkeypoint.ssl.moco import MoCoV2, auto_momentum, cap_queue_size
from sslkeypoint.ssl.selection import (
    ScreeningResult,
    embed_images,
    frame_cut,
    plot_scores,
    reference_similarity,
    screen_sequences,
    select_frames,
    select_sequences,
)

__all__ = [
    "DENSE_LEVELS",
    "DenseCL",
    "DenseCLLosses",
    "MoCoV2",
    "ScreeningResult",
    "auto_momentum",
    "cap_queue_size",
    "dense_info_nce_loss",
    "embed_images",
    "frame_cut",
    "plot_scores",
    "reference_similarity",
    "screen_sequences",
    "select_frames",
    "select_sequences",
]
