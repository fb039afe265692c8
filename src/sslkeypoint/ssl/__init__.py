"""Self-supervised pre-training parts: MoCo v2 on lightly, and reference-similarity screening."""

from __future__ import annotations

from sslkeypoint.ssl.moco import MoCoV2, cap_queue_size
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
    "MoCoV2",
    "ScreeningResult",
    "cap_queue_size",
    "embed_images",
    "frame_cut",
    "plot_scores",
    "reference_similarity",
    "screen_sequences",
    "select_frames",
    "select_sequences",
]
