"""Every loss of the library: heatmap regression, contrastive, consistency and reconstruction.

Each is a plain batched function plus a module whose ``forward`` is one call to it:

* :mod:`~sslkeypoint.losses.heatmap` — the heatmap losses of fine-tuning (one signature
  ``(pred, target, visible) -> scalar``);
* :mod:`~sslkeypoint.losses.infonce` — :func:`info_nce_loss`, the queue :class:`GroupMemoryBank` (a
  subclass of lightly's ``MemoryBankModule`` with a group id per entry) and :class:`InfoNCELoss`,
  which combines the two for MoCo;
* :mod:`~sslkeypoint.losses.dense` — DenseCL's per-location InfoNCE;
* :mod:`~sslkeypoint.losses.consistency` — the mean teacher's consistency loss on unlabelled images;
* :mod:`~sslkeypoint.losses.reconstruction` — masked-image reconstruction.
"""

from __future__ import annotations

from sslkeypoint.losses.consistency import ConsistencyLoss, consistency_loss
from sslkeypoint.losses.dense import dense_info_nce_loss
from sslkeypoint.losses.heatmap import (
    HeatmapMSELoss,
    MaskedHeatmapMSELoss,
    heatmap_mse_loss,
    masked_heatmap_mse_loss,
)
from sslkeypoint.losses.infonce import GroupMemoryBank, InfoNCELoss, info_nce_loss
from sslkeypoint.losses.reconstruction import MaskedReconstructionLoss, masked_reconstruction_loss

__all__ = [
    "ConsistencyLoss",
    "GroupMemoryBank",
    "HeatmapMSELoss",
    "InfoNCELoss",
    "MaskedHeatmapMSELoss",
    "MaskedReconstructionLoss",
    "consistency_loss",
    "dense_info_nce_loss",
    "heatmap_mse_loss",
    "info_nce_loss",
    "masked_heatmap_mse_loss",
    "masked_reconstruction_loss",
]
