"""Samplers that make a run repeatable and exact across processes.

* :class:`EpochShuffleSampler` — a permutation per epoch drawn from ``(seed, epoch)`` alone, so an
  interrupted and resumed run sees the same order as an uninterrupted one; with several processes
  each takes its share of the same permutation (padded to equal lengths, as DDP needs for
  training).
* :class:`ShardSampler` — evaluation shards without padding: every sample is seen exactly once over
  all processes, so metrics gathered across processes equal those over the whole set (the
  ``DistributedSampler`` that Lightning inserts pads with repeated samples).

Both take ``rank`` and ``world_size``; :class:`~sslkeypoint.data.KeypointDataModule` fills them
from its trainer (and the recipes run Lightning with ``use_distributed_sampler=False``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochShuffleSampler", "ShardSampler"]


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
