"""Tests of sslkeypoint.lightning.datamodules: loaders, sharding from the trainer, stage 1 and 2 items."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sslkeypoint.data import (
    DropCounts,
    KeypointRecord,
    read_image,
    resize_image,
    without_drops,
)
from sslkeypoint.lightning import KeypointDataModule, PretrainDataModule
from tests.data._images import _gray, _save


def _records(tmp_path: Path, n: int) -> list[KeypointRecord]:
    return [KeypointRecord(_save(_gray(16, 16, i), tmp_path / f"{i}.png"), np.array([[3.0, 4.0]])) for i in range(n)]


def test_keypoint_datamodule_shards_validation_without_repeats(tmp_path: Path) -> None:
    recs = _records(tmp_path, 7)
    dm = KeypointDataModule(recs[:2], recs[2:], input_size=(8, 8), num_keypoints=1, batch_size=2)
    single = [i for b in dm.val_dataloader() for i in without_drops(b)["index"].tolist()]  # type: ignore[index]
    assert single == [0, 1, 2, 3, 4]
    seen = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)  # type: ignore[assignment]
        seen += [i for b in dm.val_dataloader() for i in without_drops(b)["index"].tolist()]  # type: ignore[index]
        assert len(dm.train_dataloader().sampler) == 1  # type: ignore[arg-type]
    assert sorted(seen) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="validation split is empty"):
        KeypointDataModule(recs, [], input_size=(8, 8), num_keypoints=1)


def test_pretrain_datamodule_items(tmp_path: Path) -> None:
    paths = [r.path for r in _records(tmp_path, 4)]
    stage1 = PretrainDataModule(images=paths, image_size=(8, 8), batch_size=3)
    batch = next(iter(stage1.train_dataloader()))
    assert sorted(batch) == ["dropped", "image", "index", "num_samples"]
    images, index = batch["image"], batch["index"]
    assert images.shape == (3, 1, 8, 8) and sorted(index.tolist()) == sorted(set(index.tolist()))
    assert batch["dropped"] == [] and batch["num_samples"] == 3
    for image, i in zip(images, index.tolist()):  # image k of the batch is file index[k]
        assert torch.equal(image, resize_image(read_image(paths[i]), (8, 8)))
    assert len(list(stage1.train_dataloader())) == 1  # the last incomplete batch is dropped
    stage2 = PretrainDataModule(sequences=[paths[:2], paths[2:]], image_size=(8, 8), batch_size=2, delta=(1, 1))
    batch = next(iter(stage2.train_dataloader()))
    a, b, seq = batch["image"], batch["partner"], batch["sequence"]
    assert a.shape == b.shape == (2, 1, 8, 8) and set(seq.tolist()) <= {0, 1} and stage2.stage == 2
    with pytest.raises(ValueError, match="exactly one"):
        PretrainDataModule(image_size=(8, 8))


def test_pretrain_datamodule_drops_and_names_unreadable_files(tmp_path: Path) -> None:
    paths = [r.path for r in _records(tmp_path, 4)]
    broken = Path(paths[1])
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated PNG
    gone = tmp_path / "gone.png"
    dm = PretrainDataModule(images=[*paths, gone], image_size=(8, 8), batch_size=5)
    (batch,) = list(dm.train_dataloader())
    assert batch["num_samples"] == 5 and batch["image"].shape == (3, 1, 8, 8)
    assert sorted(batch["index"].tolist()) == [0, 2, 3]
    dropped = {Path(p).name: (reason, detail) for p, reason, detail in batch["dropped"]}
    assert dropped["gone.png"] == ("missing file", "")
    assert dropped["1.png"][0] == "unreadable image" and "1.png" in dropped["1.png"][1]
    counts = DropCounts()
    counts.update(batch)
    assert counts.summary() == "dropped 2 of 5 samples (missing file: 1, unreadable image: 1)"
