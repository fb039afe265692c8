"""The planned length of a training run, for schedules chosen from it."""

from __future__ import annotations

import pytorch_lightning as pl

__all__ = ["planned_steps"]


def planned_steps(module: pl.LightningModule) -> int:
    """Optimiser steps the attached Trainer plans for the whole run (at least 1).

    Lightning's ``estimated_stepping_batches``: epochs times batches per epoch (per process, after
    gradient accumulation), or ``max_steps``; an early stop ends the run sooner. Without a Trainer
    the run counts as one step long.

    Examples:
        >>> import torch
        >>> planned_steps(pl.LightningModule())  # no Trainer attached
        1
    """
    try:
        trainer = module.trainer
    except RuntimeError:  # LightningModule.trainer raises while no Trainer is attached
        return 1
    if trainer is None:
        return 1
    return max(1, int(min(trainer.estimated_stepping_batches, 2**62)))
