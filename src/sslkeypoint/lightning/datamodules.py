"""LightningDataModules: labelled records for fine-tuning, unlabelled images or videos for pre-training.

The recipes (:func:`~sslkeypoint.run_finetuning`, :func:`~sslkeypoint.run_pretraining`) build these,
and they work with any ``pytorch_lightning.Trainer`` too. :class:`KeypointDataModule` shards its
data itself (seeded per-epoch shuffling for training, unrepeated shards for validation, see
:mod:`sslkeypoint.data.samplers`), so run its trainer with ``use_distributed_sampler=False``: then
validation metrics gathered over processes are exactly those of the whole validation set.

Both drop what cannot be read through the one mechanism of :mod:`sslkeypoint.data.invalid`: their
datasets return :class:`~sslkeypoint.data.InvalidSample` markers, their loaders collate with
:class:`~sslkeypoint.data.FilteringCollate`, so every batch is a dict that also says what was
dropped from it (``"dropped"``, ``"num_samples"``).

Given a pool of unlabelled images, :class:`KeypointDataModule`'s training batches also carry
``"unlabelled"`` images for semi-supervised training (fine-tuning methods that take them batch by batch, such as the mean teacher), drawn
by a :class:`~sslkeypoint.data.samplers.PairedBatchSampler`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from sslkeypoint.data.datasets import (
    ImageFolderDataset,
    IndexedDataset,
    KeypointDataset,
    TemporalPairDataset,
)
from sslkeypoint.data.invalid import FilteringCollate, InvalidSample
from sslkeypoint.data.records import KeypointRecord
from sslkeypoint.data.samplers import (
    LABELLED,
    EpochShuffleSampler,
    PairedBatchSampler,
    ShardSampler,
)

__all__ = ["KeypointDataModule", "PretrainDataModule"]


class _NamedCollate:
    """Collate tuple items with ``default_collate`` and name the parts: ``(a, b)`` → ``{"x": A, "y": B}``."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)

    def __call__(self, items: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.keys, default_collate(list(items)), strict=True))


class _PairedDataset(Dataset):
    """Items ``(source, item)`` of a labelled and an unlabelled dataset, indexed by ``(source, index)``."""

    def __init__(self, labelled: Dataset[Any], unlabelled: Dataset[Any]) -> None:
        self.parts = (labelled, unlabelled)

    def __len__(self) -> int:
        return len(self.parts[0]) + len(self.parts[1])  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, Any]:
        source, index = key
        return source, self.parts[source][index]


class _PairedCollate:
    """Labelled items as :class:`FilteringCollate` does; unlabelled images stacked as ``"unlabelled"``.

    Unreadable unlabelled images are dropped into the same ``"dropped"`` list and counted in
    ``"num_samples"``; a batch whose unlabelled images were all dropped has no ``"unlabelled"``.
    """

    def __call__(self, items: Sequence[tuple[int, Any]]) -> dict[str, Any]:
        labelled = [item for source, item in items if source == LABELLED]
        unlabelled = [item for source, item in items if source != LABELLED]
        batch = FilteringCollate()(labelled)
        good = [x for x in unlabelled if not isinstance(x, InvalidSample)]
        batch["dropped"] = batch["dropped"] + [
            (x.path, x.reason, x.detail) for x in unlabelled if isinstance(x, InvalidSample)
        ]
        batch["num_samples"] = batch["num_samples"] + len(unlabelled)
        if good:
            batch["unlabelled"] = torch.stack(good)
        return batch


class KeypointDataModule(pl.LightningDataModule):
    """Training and validation loaders of labelled records, with invalid samples dropped and counted.

    Items come from :class:`~sslkeypoint.data.KeypointDataset` and batches from
    :class:`~sslkeypoint.data.FilteringCollate` (drops travel inside the batch). Training order is
    :class:`~sslkeypoint.data.EpochShuffleSampler` (a function of the seed and the epoch, so a
    resumed run repeats an uninterrupted one), validation is sharded without repeats.

    With ``unlabelled`` image files, every training batch also holds ``"unlabelled"``:
    ``(B_u, C, H, W)`` images read and resized as the labelled ones, ``B_u =
    unlabelled_batch_size`` drawn per batch by a
    :class:`~sslkeypoint.data.samplers.PairedBatchSampler` (a function of the seed, the epoch, the
    batch and the process, so each process sees other images and a resumed run repeats an
    uninterrupted one). Unreadable ones are dropped and counted with the labelled drops
    (``"dropped"``, ``"num_samples"``). Validation has no unlabelled images.

    Args:
        train_records: Training records.
        val_records: Validation records.
        input_size: Network input ``(H, W)`` in px.
        num_keypoints: ``K`` every record must have.
        in_chans: Image channels.
        batch_size: Batch size (per process).
        num_workers: DataLoader worker processes.
        seed: Seed of the training order.
        unlabelled: Optional image files of an unlabelled pool (semi-supervised training).
        unlabelled_batch_size: Unlabelled images per training batch; ``None``: ``batch_size``.

    Raises:
        ValueError: If a split is empty, or ``unlabelled`` is given but empty.

    Examples:
        >>> dm = KeypointDataModule([], [], input_size=(32, 32), num_keypoints=2)
        Traceback (most recent call last):
        ...
        ValueError: the training split is empty: give more records or a smaller val_fraction
    """

    def __init__(
        self,
        train_records: Sequence[KeypointRecord],
        val_records: Sequence[KeypointRecord],
        input_size: tuple[int, int],
        num_keypoints: int,
        in_chans: int = 1,
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
        unlabelled: Sequence[str | Path] | None = None,
        unlabelled_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        for name, recs in (("training", train_records), ("validation", val_records)):
            if not recs:
                raise ValueError(f"the {name} split is empty: give more records or a smaller val_fraction")
        kw: dict[str, Any] = {"input_size": input_size, "in_chans": in_chans, "num_keypoints": num_keypoints}
        self.train_dataset = KeypointDataset(list(train_records), **kw)
        self.val_dataset = KeypointDataset(list(val_records), **kw)
        self.unlabelled_dataset: ImageFolderDataset | None = None
        if unlabelled is not None:
            if isinstance(unlabelled, str | Path) or not unlabelled:
                raise ValueError(
                    f"unlabelled must be a non-empty list of image files; got {unlabelled!r} "
                    "(list a folder with sslkeypoint.data.list_images)"
                )
            self.unlabelled_dataset = ImageFolderDataset(
                [Path(p) for p in unlabelled], input_size, in_chans=in_chans, on_error="invalid"
            )
        self.batch_size = int(batch_size)
        self.unlabelled_batch_size = int(unlabelled_batch_size if unlabelled_batch_size is not None else batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, dataset: Dataset[Any], sampler: Any) -> DataLoader[Any]:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=FilteringCollate(),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader[Any]:
        """Seeded per-epoch shuffling, this process's share (with unlabelled images when given)."""
        rank, world = self._rank()
        if self.unlabelled_dataset is not None:
            batches = PairedBatchSampler(
                len(self.train_dataset), self.batch_size, len(self.unlabelled_dataset), self.unlabelled_batch_size,
                seed=self.seed, rank=rank, world_size=world,
            )
            return DataLoader(
                _PairedDataset(self.train_dataset, self.unlabelled_dataset),
                batch_sampler=batches,
                collate_fn=_PairedCollate(),
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
                pin_memory=torch.cuda.is_available(),
            )
        sampler = EpochShuffleSampler(len(self.train_dataset), self.seed, rank=rank, world_size=world)
        return self._loader(self.train_dataset, sampler)

    def val_dataloader(self) -> DataLoader[Any]:
        """In order, this process's unrepeated shard."""
        rank, world = self._rank()
        return self._loader(self.val_dataset, ShardSampler(len(self.val_dataset), rank=rank, world_size=world))


class PretrainDataModule(pl.LightningDataModule):
    """Unlabelled images (stage 1) or pairs of nearby frames of videos (stage 2) for pre-training.

    Stage-1 batches are dicts ``{"image": (B, C, H, W), "index": (B,)}`` (the image index keeps a
    query's own image out of its negatives), stage-2 batches ``{"image": frame t, "partner": frame
    t + Δ, "sequence": (B,)}``. A file that cannot be read (truncated, corrupt, gone) does not stop
    the run: its item is an :class:`~sslkeypoint.data.InvalidSample` that
    :class:`~sslkeypoint.data.FilteringCollate` drops and lists in the batch's ``"dropped"`` (path,
    reason, decoder message), beside ``"num_samples"`` (the batch size before dropping);
    :class:`~sslkeypoint.lightning.MoCoPretrainModule` counts and reports them. The loader
    shuffles and drops the last incomplete batch; under DDP Lightning shards it.

    Args:
        images: Stage 1: image files (exactly one of ``images`` and ``sequences``).
        sequences: Stage 2: per video, its frame files in temporal order.
        image_size: Output ``(H, W)`` of every image in px.
        in_chans: Image channels.
        delta: Stage 2: inclusive range of the frame offset.
        batch_size: Batch size (per process).
        num_workers: DataLoader worker processes.
        seed: Seed of the frame-offset draws.

    Attributes:
        dataset: The stage's dataset (items, or :class:`~sslkeypoint.data.InvalidSample` markers).
        stage: 1 or 2.
        batch_keys: The names of a batch's tensors, besides the drop entries.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> from PIL import Image
        >>> folder = tempfile.mkdtemp()
        >>> good = os.path.join(folder, "a.png")
        >>> Image.fromarray(np.zeros((6, 6), np.uint8)).save(good)
        >>> dm = PretrainDataModule(images=[good, os.path.join(folder, "gone.png")], image_size=(8, 8),
        ...                         batch_size=2)
        >>> len(dm.dataset), dm.stage
        (2, 1)
        >>> batch = next(iter(dm.train_dataloader()))
        >>> batch["image"].shape, [(os.path.basename(p), why) for p, why, _ in batch["dropped"]]
        (torch.Size([1, 1, 8, 8]), [('gone.png', 'missing file')])
    """

    def __init__(
        self,
        images: Sequence[str | Path] | None = None,
        sequences: Sequence[Sequence[str | Path]] | None = None,
        image_size: tuple[int, int] = (256, 256),
        in_chans: int = 1,
        delta: tuple[int, int] = (1, 3),
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if (images is None) == (sequences is None):
            raise ValueError("give exactly one of images (stage 1) or sequences (stage 2)")
        self.dataset: Dataset[Any]
        if images is not None:
            self.stage = 1
            self.dataset = IndexedDataset(
                ImageFolderDataset([Path(p) for p in images], image_size, in_chans=in_chans, on_error="invalid")
            )
            self.batch_keys: tuple[str, ...] = ("image", "index")
        else:
            assert sequences is not None
            self.stage = 2
            self.dataset = TemporalPairDataset(
                [[Path(p) for p in s] for s in sequences], image_size, delta=delta, in_chans=in_chans, seed=seed,
                on_error="invalid",
            )
            self.batch_keys = ("image", "partner", "sequence")
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)

    def __len__(self) -> int:
        """Training items (images, or frame pairs)."""
        return len(self.dataset)  # type: ignore[arg-type]

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled, last incomplete batch dropped."""
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=FilteringCollate(_NamedCollate(self.batch_keys)),
            num_workers=self.num_workers,
            # Stage 2 draws new frame offsets each epoch (set_epoch): workers must be re-created.
            persistent_workers=self.num_workers > 0 and self.stage == 1,
            pin_memory=torch.cuda.is_available(),
        )
