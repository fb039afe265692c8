"""Lightning callbacks of the recipes."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_info

from sslkeypoint.data.invalid import DropCounts

__all__ = ["DropReport", "format_drop_summary"]


def _gather(trainer: pl.Trainer, counts: DropCounts) -> DropCounts:
    """The counts of every process added up (the same result on every process)."""
    if trainer.world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        return counts
    parts: list[Any] = [None] * trainer.world_size
    dist.all_gather_object(parts, counts)
    total = DropCounts(max_examples=counts.max_examples)
    for part in parts:
        total.merge(part)
    return total


def format_drop_summary(entry: dict[str, Any]) -> str:
    """One line per epoch, e.g. ``epoch 3: dropped invalid samples: train 2/40 (missing file: 2), val 0/10``.

    Examples:
        >>> format_drop_summary({"epoch": 3, "train": {"seen": 40, "dropped": 2, "reasons": {"missing file": 2}},
        ...                      "val": {"seen": 10, "dropped": 0, "reasons": {}}})
        'epoch 3: dropped invalid samples: train 2/40 (missing file: 2), val 0/10'
    """
    parts = []
    for split in ("train", "val"):
        c = entry.get(split) or {}
        text = f"{split} {c.get('dropped', 0)}/{c.get('seen', 0)}"
        if c.get("reasons"):
            text += " (" + ", ".join(f"{r}: {n}" for r, n in sorted(c["reasons"].items())) + ")"
        parts.append(text)
    return f"epoch {entry.get('epoch', '?')}: dropped invalid samples: " + ", ".join(parts)


class DropReport(pl.Callback):
    """Count the invalid samples dropped per epoch, over every process; report and keep the counts.

    The counts come from the batches themselves (:class:`~sslkeypoint.data.FilteringCollate`
    writes what it dropped into each batch), so they are exact with DataLoader workers, and they
    are added up over DDP processes at the end of each training epoch. The module's
    ``drop_history`` list (if it has one) gets one entry per epoch: ``{"epoch", "train": {"seen",
    "dropped", "reasons"}, "val": {...}, "examples": {path: reason}}``; process 0 prints a line.

    Args:
        verbose: Print the summary line once per epoch.
        max_examples: How many dropped paths to keep per epoch.
    """

    def __init__(self, verbose: bool = True, max_examples: int = 50) -> None:
        self.verbose = verbose
        self.max_examples = max_examples
        self._reset()

    def _reset(self) -> None:
        self.counts = {split: DropCounts(max_examples=self.max_examples) for split in ("train", "val")}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the epoch's counts."""
        self._reset()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        """Count the training batch's drops."""
        self.counts["train"].update(batch)

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Count the validation batch's drops (not during the sanity check)."""
        if not trainer.sanity_checking:
            self.counts["val"].update(batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Add up over processes, record in ``pl_module.drop_history`` and print on process 0."""
        train = _gather(trainer, self.counts["train"])
        val = _gather(trainer, self.counts["val"])
        examples = dict(train.examples)
        for path, why in val.examples.items():
            examples.setdefault(path, why)
        entry = {"epoch": int(trainer.current_epoch), "train": train.to_dict(), "val": val.to_dict(), "examples": examples}
        history = getattr(pl_module, "drop_history", None)
        if isinstance(history, list):
            history.append(entry)
        if self.verbose:
            rank_zero_info(format_drop_summary(entry))
