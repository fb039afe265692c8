"""Invalid samples: markers instead of exceptions, dropped by the collate, counted from the batches.

A labelled data set of hundreds of hand-made records always holds a few bad ones: a missing or
truncated file, a label that does not parse, a keypoint outside the image. A training run should
neither crash on them nor lose them silently. One mechanism handles them everywhere:

1. a dataset returns an :class:`InvalidSample` marker ``(index, path, reason, detail)`` instead of
   raising (:class:`~sslkeypoint.data.KeypointDataset` does);
2. :class:`FilteringCollate` drops the markers and writes what it dropped *into the batch*
   (``batch["dropped"]``, ``batch["num_samples"]``); a batch whose samples were all invalid holds
   only those two entries (:func:`without_drops` returns ``None`` for it);
3. :class:`DropCounts` adds up the drops from the batches it is shown.

Because the information travels inside the batch, the counts are exact with DataLoader worker
processes too, and no state is kept anywhere but in the counter the caller owns (the Lightning
callback :class:`~sslkeypoint.lightning.callbacks.DropReport` also sums it over processes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import default_collate

__all__ = ["DROP_KEYS", "DropCounts", "FilteringCollate", "InvalidSample", "filtering_collate", "without_drops"]

#: Batch entries written by :class:`FilteringCollate`: the dropped samples and the count before dropping.
DROP_KEYS = ("dropped", "num_samples")


@dataclass(frozen=True)
class InvalidSample:
    """Marker returned by a dataset instead of an item that cannot be used.

    Attributes:
        index: Dataset index of the sample.
        path: Its image file.
        reason: Short category, used for counting (e.g. ``"missing file"``; the ``REASON_*``
            constants of :class:`~sslkeypoint.data.KeypointDataset`).
        detail: Specifics (which keypoint, the decoder's message, ...).

    Examples:
        >>> str(InvalidSample(3, "a.jpg", "missing file"))
        'a.jpg (#3): missing file'
    """

    index: int
    path: str
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.path} (#{self.index}): {self.reason}"
        return f"{text} ({self.detail})" if self.detail else text


class FilteringCollate:
    """Collate dict items, dropping :class:`InvalidSample` markers (and ``None``) into the batch.

    The batch is the collated valid items plus ``"dropped"`` — a list of ``(path, reason,
    detail)`` for the samples removed — and ``"num_samples"`` (before dropping). Holds no state
    (picklable for worker processes).

    Args:
        collate_fn: Collates the remaining items; ``torch.utils.data.default_collate`` (stacks
            tensors, turns ints into a tensor and strings into a list).

    Examples:
        >>> import torch
        >>> collate = FilteringCollate()
        >>> good = {"image": torch.zeros(1, 2, 2), "index": 0, "path": "a.png"}
        >>> batch = collate([good, InvalidSample(1, "b.png", "missing file")])
        >>> batch["image"].shape, batch["path"], batch["dropped"], batch["num_samples"]
        (torch.Size([1, 1, 2, 2]), ['a.png'], [('b.png', 'missing file', '')], 2)
        >>> collate([InvalidSample(2, "c.png", "missing file")])
        {'dropped': [('c.png', 'missing file', '')], 'num_samples': 1}
    """

    def __init__(self, collate_fn: Callable[[list[Any]], Any] | None = None) -> None:
        self.collate_fn = collate_fn if collate_fn is not None else default_collate

    def __call__(self, samples: Sequence[Any]) -> dict[str, Any]:
        """Collate the valid items; see the class notes for the extra entries."""
        dropped: list[tuple[str, str, str]] = []
        kept = []
        for sample in samples:
            if isinstance(sample, InvalidSample):
                dropped.append((sample.path, sample.reason, sample.detail))
            elif sample is None:
                dropped.append(("", "empty item", ""))
            else:
                kept.append(sample)
        if not kept:
            return {"dropped": dropped, "num_samples": len(samples)}
        batch = self.collate_fn(kept)
        if not isinstance(batch, Mapping):
            raise ValueError(
                f"FilteringCollate needs dataset items that are dicts (it adds {DROP_KEYS} to the batch); "
                f"the collated batch is a {type(batch).__name__}"
            )
        return {**batch, "dropped": dropped, "num_samples": len(samples)}


def filtering_collate(samples: Sequence[Any]) -> dict[str, Any]:
    """The plain-function form of :class:`FilteringCollate` with the default collate.

    Examples:
        >>> without_drops(filtering_collate([InvalidSample(0, "a.png", "missing file")])) is None
        True
    """
    return FilteringCollate()(samples)


def without_drops(batch: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The batch without :data:`DROP_KEYS`, or ``None`` when nothing valid is left in it.

    Examples:
        >>> without_drops({"image": 1, "dropped": [], "num_samples": 1})
        {'image': 1}
        >>> without_drops({"dropped": [("a.png", "missing file", "")], "num_samples": 1}) is None
        True
    """
    if batch is None:
        return None
    rest = {k: v for k, v in batch.items() if k not in DROP_KEYS}
    return rest or None


@dataclass
class DropCounts:
    """Samples seen and dropped, by reason, added up from batches of :class:`FilteringCollate`.

    Attributes:
        seen: Samples in the batches shown (before dropping).
        dropped: Samples dropped.
        reasons: Drops per reason.
        examples: Dropped file → ``"reason: detail"``, the first ``max_examples`` of them.
        max_examples: How many examples to keep.

    Examples:
        >>> counts = DropCounts()
        >>> counts.update({"dropped": [("b.png", "missing file", "")], "num_samples": 4})
        >>> counts.summary()
        'dropped 1 of 4 samples (missing file: 1)'
    """

    seen: int = 0
    dropped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    max_examples: int = 50

    def update(self, batch: Mapping[str, Any] | None) -> None:
        """Count the drops written into ``batch`` (a batch without them counts nothing)."""
        if not isinstance(batch, Mapping) or "dropped" not in batch:
            return
        self.seen += int(batch.get("num_samples", 0))
        for path, reason, detail in batch["dropped"]:
            self.dropped += 1
            self.reasons[reason] += 1
            if len(self.examples) < self.max_examples:
                self.examples[path] = f"{reason}: {detail}" if detail else reason

    def merge(self, other: DropCounts) -> None:
        """Add another counter's numbers (e.g. from another process)."""
        self.seen += other.seen
        self.dropped += other.dropped
        self.reasons.update(other.reasons)
        for path, why in other.examples.items():
            if len(self.examples) < self.max_examples:
                self.examples.setdefault(path, why)

    def to_dict(self) -> dict[str, Any]:
        """``{"seen", "dropped", "reasons"}`` as plain types."""
        return {"seen": self.seen, "dropped": self.dropped, "reasons": dict(sorted(self.reasons.items()))}

    def summary(self) -> str:
        """One line, e.g. ``dropped 2 of 40 samples (missing file: 2)``."""
        text = f"dropped {self.dropped} of {self.seen} samples"
        if self.reasons:
            text += " (" + ", ".join(f"{r}: {n}" for r, n in sorted(self.reasons.items())) + ")"
        return text
