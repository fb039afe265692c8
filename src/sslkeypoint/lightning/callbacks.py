"""Lightning callbacks of the recipes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from sslkeypoint.data.invalid import DropCounts

__all__ = ["CollapseWarning", "DropReport", "format_drop_summary"]


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


class CollapseWarning(pl.Callback):
    """Warn when a landmark is predicted at nearly the same place on every validation image.

    Reads the ``val/<name>_spread_ratio`` figures that
    :class:`~sslkeypoint.lightning.HeatmapFinetuneModule` logs (the
    :class:`~sslkeypoint.metrics.KeypointMetrics` ``spread_ratio``: the median distance of the
    predictions from their median position over the same figure for the labels). A ratio below
    ``threshold`` means the network has stopped looking at the image for that landmark — for
    example a heatmap channel stuck on one pixel — while the other landmarks may look fine.

    Early in training every landmark is predicted at one place (nothing is learnt yet), so the
    check is made when training ends, on the last validation: process 0 warns once per collapsed
    landmark, and :attr:`collapsed` holds them.

    Args:
        threshold: Ratio below which a landmark counts as collapsed.

    Attributes:
        collapsed: Name → spread ratio at the last validation, for collapsed landmarks.

    Examples:
        >>> guard = CollapseWarning(threshold=0.1)
        >>> guard.check({"val/PS1_spread_ratio": 0.01, "val/PS2_spread_ratio": 0.93})
        {'PS1': 0.01}
    """

    def __init__(self, threshold: float = 0.1) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1); got {threshold}")
        self.threshold = threshold
        self.collapsed: dict[str, float] = {}

    def check(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Landmark name → spread ratio for every ``<prefix><name>_spread_ratio`` below the threshold."""
        found: dict[str, float] = {}
        for key, value in metrics.items():
            if not key.endswith("_spread_ratio"):
                continue
            ratio = float(value)
            if math.isfinite(ratio) and ratio < self.threshold:
                found[key.rsplit("/", 1)[-1][: -len("_spread_ratio")]] = ratio
        return found

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.collapsed = self.check({k: float(v) for k, v in trainer.callback_metrics.items()})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for name, ratio in self.collapsed.items():
            rank_zero_warn(
                f"landmark {name} is predicted at nearly the same place on every validation image "
                f"(its predictions spread {ratio:.3f} times as much as its labels at the last "
                f"validation, epoch {trainer.current_epoch}): the network has collapsed this "
                "landmark. Look at its heatmaps; a lower learning rate, other initial weights, more "
                "epochs or augmentation that keeps the landmark's identity may help"
            )
