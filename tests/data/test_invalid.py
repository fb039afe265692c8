"""Tests of sslkeypoint.data.invalid: markers dropped by the collate, drops carried in the batch, counted."""

from __future__ import annotations

import pickle
from collections import Counter

import torch
from torch.utils.data import DataLoader

from sslkeypoint.data import (
    DropCounts,
    FilteringCollate,
    InvalidSample,
    KeypointDataset,
    filtering_collate,
    without_drops,
)


def _count(loader: DataLoader) -> tuple[DropCounts, list[int]]:
    counts, kept = DropCounts(), []
    for batch in loader:
        counts.update(batch)
        data = without_drops(batch)
        if data is not None:
            kept += data["index"].tolist()
    return counts, kept


def test_validate_and_collate_agree(messy: tuple[KeypointDataset, dict[int, str]]) -> None:
    ds, expected = messy
    invalid = ds.validate(progress=False)
    assert {s.index: s.reason for s in invalid} == expected
    loader = DataLoader(ds, batch_size=5, shuffle=False, collate_fn=FilteringCollate())
    counts, kept = _count(loader)
    assert kept == [i for i in range(len(ds)) if i not in expected]
    first = without_drops(next(iter(loader)))
    assert first is not None and first["image"].shape == (2, 1, 16, 16)
    assert first["keypoints"].shape == (2, 3, 2) and first["visible"].shape == (2, 3)
    assert first["original_size"].shape == (2, 2) and isinstance(first["path"], list)
    assert counts.reasons == Counter(expected.values())
    assert counts.seen == len(ds) and counts.dropped == len(expected)
    assert set(counts.examples) == {str(ds.records[i].path) for i in expected}
    summary = counts.summary()
    assert summary.startswith(f"dropped {len(expected)} of {len(ds)} samples") and "missing file: 1" in summary


def test_counts_are_exact_with_worker_processes(messy: tuple[KeypointDataset, dict[int, str]]) -> None:
    """The drops travel inside the batches, so counting in the main process sees the workers' drops."""
    ds, expected = messy
    collate = pickle.loads(pickle.dumps(FilteringCollate()))
    assert pickle.loads(pickle.dumps(filtering_collate)) is filtering_collate
    counts, kept = _count(DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate))
    assert sorted(kept) == [i for i in range(len(ds)) if i not in expected]
    assert counts.reasons == Counter(expected.values()) and counts.seen == len(ds)


def test_all_invalid_batch_and_plain_function(messy: tuple[KeypointDataset, dict[int, str]]) -> None:
    ds, _ = messy
    batch = filtering_collate([ds[i] for i in (2, 3, 4)])
    assert without_drops(batch) is None and batch["num_samples"] == 3 and len(batch["dropped"]) == 3
    batch = filtering_collate([ds[0], ds[7]])
    assert batch["index"].tolist() == [0]
    assert batch["dropped"] == [(str(ds.records[7].path), KeypointDataset.REASON_WRONG_COUNT, "expected 3, got 2")]
    good = {"image": torch.zeros(1, 2, 2), "path": "a.png"}
    assert filtering_collate([good, None])["dropped"] == [("", "empty item", "")]


def test_counts_merge_and_bound_examples() -> None:
    a, b = DropCounts(max_examples=2), DropCounts()
    a.update({"dropped": [("x.png", "missing file", "")], "num_samples": 3})
    b.update({"dropped": [("y.png", "unreadable image", "bad header"), ("z.png", "missing file", "")], "num_samples": 5})
    a.update({"image": torch.zeros(1)})  # a batch without drop entries counts nothing
    a.merge(b)
    assert a.to_dict() == {"seen": 8, "dropped": 3, "reasons": {"missing file": 2, "unreadable image": 1}}
    assert a.examples == {"x.png": "missing file", "y.png": "unreadable image: bad header"}
    assert str(InvalidSample(3, "a.jpg", "missing file", "gone")) == "a.jpg (#3): missing file (gone)"
