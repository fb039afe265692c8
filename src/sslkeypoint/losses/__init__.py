"""Losses: heatmap regression, and InfoNCE against a group-aware MoCo queue.

:mod:`sslkeypoint.losses.heatmap` holds the heatmap losses of fine-tuning (plain functions and
``nn.Module`` wrappers, one signature ``(pred, target, visible) -> scalar``);
:mod:`sslkeypoint.losses.infonce` holds :func:`info_nce_loss`, the queue :class:`GroupMemoryBank`
(a subclass of lightly's ``MemoryBankModule`` with a group id per entry) and :class:`InfoNCELoss`,
which combines the two for MoCo.
"""

from __future__ import annotations

from sslkeypoint.losses.heatmap import (
    HeatmapMSELoss,
    MaskedHeatmapMSELoss,
    heatmap_mse_loss,
    masked_heatmap_mse_loss,
)
from sslkeypoint.losses.infonce import GroupMemoryBank, InfoNCELoss, info_nce_loss

__all__ = [
    "GroupMemoryBank",
    "HeatmapMSELoss",
    "InfoNCELoss",
    "MaskedHeatmapMSELoss",
    "heatmap_mse_loss",
    "info_nce_loss",
    "masked_heatmap_mse_loss",
]
