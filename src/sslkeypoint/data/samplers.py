"""Samplers that make a run repeatable and exact across processes.

* :class:`EpochShuffleSampler` — a permutation per epoch drawn from ``(seed, epoch)`` alone, so an
  interrupted and resumed run sees the same order as an uninterrupted one; with several processes
  each takes its share of the same permutation (padded to equal lengths, as DDP needs for
  training).
* :class:`ShardSampler` — evaluation shards without padding: every sample is seen exactly once over
  all processes, so metrics gathered across processes equal those over the whole set (the
  ``DistributedSampler`` that Lightning inserts pads with repeated samples).

* :class:`PairedBatchSampler` — batches of labelled indices (an :class:`EpochShuffleSampler`),
  each with a fixed number of indices into a pool of unlabelled images, drawn from ``(seed,
  epoch)`` alone and sharded by process: for semi-supervised training.

All take ``rank`` and ``world_size``; :class:`~sslkeypoint.data.KeypointDataModule` fills them
from its trainer (and the recipes run Lightning with ``use_distributed_sampler=False``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["LABELLED", "UNLABELLED", "EpochShuffleSampler", "PairedBatchSampler", "ShardSampler"]

#: Source tag of labelled and unlabelled indices in the batches of :class:`PairedBatchSampler`.
LABELLED, UNLABELLED = 0, 1


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size; got rank={rank}, world_size={world_size}")


class EpochShuffleSampler(Sampler[int]):
    """A random permutation per epoch from ``(seed, epoch)`` alone, split over processes.

    Lightning calls :meth:`set_epoch` at the start of every epoch, so the order of epoch ``e`` is
    the same in an uninterrupted run and in a run resumed from a checkpoint — unlike a sampler
    that draws from the global random state. With ``world_size > 1`` the permutation is padded
    at its end with its first indices up to a multiple of ``world_size`` and process ``rank`` takes
    every ``world_size``-th index from ``rank`` on, so every process has the same number of samples.

    Args:
        num_samples: Dataset length.
        seed: Base seed.
        rank: This process's rank.
        world_size: Number of processes.

    Examples:
        >>> s = EpochShuffleSampler(5, seed=1)
        >>> s.set_epoch(3); a = list(s); s.set_epoch(3); a == list(s)
        True
        >>> sorted(a)
        [0, 1, 2, 3, 4]
        >>> shards = [EpochShuffleSampler(5, seed=1, rank=r, world_size=2) for r in (0, 1)]
        >>> for shard in shards: shard.set_epoch(3)
        >>> [len(shard) for shard in shards], sorted(set(list(shards[0]) + list(shards[1]))) == sorted(a)
        ([3, 3], True)
    """

    def __init__(self, num_samples: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        _check_rank(rank, world_size)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.num_samples, generator=g).tolist()
        if self.world_size == 1:
            return iter(order)
        total = len(self) * self.world_size
        padded = (order * math.ceil(total / max(len(order), 1)))[:total] if order else []
        return iter(padded[self.rank :: self.world_size])

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.world_size)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` in order: every sample exactly once over all processes.

    For evaluation: shards may differ in length by one, and nothing is repeated.

    Args:
        num_samples: Dataset length.
        rank: This process's rank.
        world_size: Number of processes.

    Examples:
        >>> [list(ShardSampler(5, rank=r, world_size=2)) for r in (0, 1)]
        [[0, 2, 4], [1, 3]]
    """

    def __init__(self, num_samples: int, rank: int = 0, world_size: int = 1) -> None:
        _check_rank(rank, world_size)
        self.num_samples = int(num_samples)
        self.rank = int(rank)
        self.world_size = int(world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.num_samples, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.num_samples, self.world_size))


class PairedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Labelled batches, each paired with ``unlabelled_batch_size`` images of an unlabelled pool.

    The labelled part is exactly ``BatchSampler(EpochShuffleSampler(...), batch_size)``: this
    process's share of the epoch's permutation, in batches (the last one may be smaller). The
    unlabelled part of every batch has ``unlabelled_batch_size`` indices: this process's share
    (padded like :class:`EpochShuffleSampler`'s) of a permutation of the pool drawn from ``(seed,
    epoch, round)``, taken in order and followed by the next round's when one is used up. Every
    index depends only on the seed, the epoch, the batch position and the rank, so a resumed run
    repeats an uninterrupted one, and processes see different unlabelled images.

    Batches are lists of ``(source, index)``: ``(LABELLED, i)`` (source 0) and
    ``(UNLABELLED, j)`` (source 1). Lightning calls ``set_epoch`` of :attr:`sampler` (the
    DataLoader's ``batch_sampler.sampler``) at the start of every epoch; :meth:`set_epoch` does the
    same.

    Args:
        num_labelled: Labelled dataset length.
        batch_size: Labelled samples per batch.
        num_unlabelled: Unlabelled pool size (>= 1).
        unlabelled_batch_size: Unlabelled samples per batch.
        seed: Base seed.
        rank: This process's rank.
        world_size: Number of processes.

    Attributes:
        sampler: The labelled :class:`EpochShuffleSampler` (it holds the epoch).

    Examples:
        >>> s = PairedBatchSampler(5, 2, num_unlabelled=3, unlabelled_batch_size=2, seed=0)
        >>> batches = list(s)
        >>> len(batches), [len(b) for b in batches]
        (3, [4, 4, 3])
        >>> sorted(i for b in batches for src, i in b if src == LABELLED)
        [0, 1, 2, 3, 4]
        >>> s.set_epoch(1); batches != list(s)
        True
    """

    def __init__(
        self,
        num_labelled: int,
        batch_size: int,
        num_unlabelled: int,
        unlabelled_batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        _check_rank(rank, world_size)
        if batch_size < 1 or unlabelled_batch_size < 1 or num_unlabelled < 1:
            raise ValueError(
                "batch_size, unlabelled_batch_size and num_unlabelled must be >= 1; got "
                f"{batch_size}, {unlabelled_batch_size}, {num_unlabelled}"
            )
        self.sampler = EpochShuffleSampler(num_labelled, seed, rank=rank, world_size=world_size)
        self.batch_size = int(batch_size)
        self.num_unlabelled = int(num_unlabelled)
        self.unlabelled_batch_size = int(unlabelled_batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the permutations of ``epoch``."""
        self.sampler.set_epoch(epoch)

    def unlabelled_indices(self, epoch: int, count: int) -> list[int]:
        """The first ``count`` unlabelled indices of this process in ``epoch``."""
        out: list[int] = []
        n, world = self.num_unlabelled, self.world_size
        total = math.ceil(n / world) * world
        round_ = 0
        while len(out) < count:
            order = np.random.default_rng([self.seed, epoch, round_]).permutation(n).tolist()
            padded = (order * math.ceil(total / n))[:total]
            out.extend(padded[self.rank :: world])
            round_ += 1
        return out[:count]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        labelled = list(self.sampler)
        n_batches = len(self)
        unlabelled = self.unlabelled_indices(self.sampler.epoch, n_batches * self.unlabelled_batch_size)
        bs, ubs = self.batch_size, self.unlabelled_batch_size
        for j in range(n_batches):
            yield [(LABELLED, i) for i in labelled[j * bs : (j + 1) * bs]] + [
                (UNLABELLED, u) for u in unlabelled[j * ubs : (j + 1) * ubs]
            ]

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)
