"""Checks to run before a long training run: can the model fit one batch at all?"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from sslkeypoint.configs import FinetuneConfig
from sslkeypoint.data.invalid import without_drops
from sslkeypoint.lightning.finetune import HeatmapFinetuneModule

__all__ = ["overfit_one_batch"]


class _OneBatch(Dataset[dict[str, Any]]):
    """A dataset of one item: the given, already collated batch."""

    def __init__(self, batch: dict[str, Any]) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.batch


class _LossHistory(pl.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        self.losses.append(float(loss))


def overfit_one_batch(
    module_or_config: HeatmapFinetuneModule | FinetuneConfig | Mapping[str, Any],
    batch: Mapping[str, Any],
    steps: int = 200,
    lr: float = 1e-3,
    *,
    threshold: float = 0.05,
    progress: bool = False,
) -> dict[str, Any]:
    """Train on a single batch with ``Trainer(overfit_batches=1)`` and check the loss goes (almost) to zero.

    A model that cannot memorise one batch has a bug between the data and the loss (targets in the
    wrong place, a broken decoder, a frozen layer, a wrong learning rate): on small medical data
    sets such a mistake otherwise looks like "training does not work". Augmentation is not used.

    The criterion compares against the loss of an all-zero prediction (what a network learns
    first, since most heatmap pixels are 0): the check **passes when the final loss is below
    ``threshold`` (default 5 %) of that all-zero loss**, i.e. the Gaussians themselves were
    fitted, not just the background. The decoded error on the batch is reported too.

    Args:
        module_or_config: A :class:`~sslkeypoint.lightning.HeatmapFinetuneModule` (trained in
            place; its config and augmentation are restored afterwards), or a config to build one
            from.
        batch: A collated batch dict (``image``, ``keypoints`` in input px, ``visible``).
        steps: Optimiser steps.
        lr: Adam learning rate (larger than the fine-tuning one: we want speed, not generalisation).
        threshold: Pass threshold on ``final_loss / zero_prediction_loss``.
        progress: Show a progress bar.

    Returns:
        Dict with ``loss`` (history), ``initial_loss``, ``final_loss``,
        ``zero_prediction_loss``, ``ratio`` (final / zero-prediction), ``threshold``,
        ``passed``, ``mre_input_px`` (mean error of the decoded keypoints on the batch, input px).
    """
    if isinstance(module_or_config, HeatmapFinetuneModule):
        module = module_or_config
    else:
        module = HeatmapFinetuneModule(module_or_config)
    data = without_drops(batch)
    if data is None or "image" not in data or "keypoints" not in data:
        raise ValueError("overfit_one_batch needs a batch with 'image', 'keypoints' (and 'visible')")
    saved = module.config, module.augmentation, module.schedule_lr
    module.config = dataclasses.replace(saved[0], lr=lr, augment=False)
    module.augmentation, module.schedule_lr = None, False
    history = _LossHistory()
    trainer = pl.Trainer(
        max_steps=int(steps),
        overfit_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        accelerator="cpu" if not torch.cuda.is_available() else "auto",
        devices=1,
        callbacks=[history],
    )
    loader = DataLoader(_OneBatch(dict(data)), batch_size=None)
    try:
        trainer.fit(module, train_dataloaders=loader)
    finally:
        module.config, module.augmentation, module.schedule_lr = saved
    images, keypoints, visible = module.unpack(data)
    device = next(module.model.parameters()).device
    images, keypoints, visible = images.to(device), keypoints.to(device), visible.to(device)
    target = module.codec.encode(keypoints, visible)
    module.model.eval()
    with torch.no_grad():
        pred = module.model(images)
        final = float(module.loss_fn(pred, target, visible))
        zero_loss = float(module.loss_fn(torch.zeros_like(target), target, visible))
        kp, _ = module.codec.decode(pred.float())
        err = (kp - keypoints).norm(dim=-1)[visible]
    ratio = final / zero_loss if zero_loss > 0 else math.inf
    losses = history.losses
    return {
        "loss": losses,
        "initial_loss": losses[0] if losses else final,
        "final_loss": final,
        "zero_prediction_loss": zero_loss,
        "ratio": ratio,
        "threshold": threshold,
        "passed": bool(ratio < threshold),
        "mre_input_px": float(err.mean()) if err.numel() else math.nan,
    }
