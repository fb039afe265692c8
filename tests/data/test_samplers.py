"""Tests of sslkeypoint.data.samplers: resume-exact shuffling, shards over processes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sslkeypoint.data import EpochShuffleSampler, ShardSampler


def test_epoch_sampler_is_a_function_of_seed_and_epoch() -> None:
    a, b = EpochShuffleSampler(20, seed=3), EpochShuffleSampler(20, seed=3)
    a.set_epoch(5)
    b.set_epoch(5)
    assert list(a) == list(b) and sorted(a) == list(range(20))
    b.set_epoch(6)
    assert list(a) != list(b)


@given(n=st.integers(1, 60), world=st.integers(1, 5), epoch=st.integers(0, 9))
def test_epoch_shards_cover_the_permutation_with_equal_lengths(n: int, world: int, epoch: int) -> None:
    full = EpochShuffleSampler(n, seed=1)
    full.set_epoch(epoch)
    shards = [EpochShuffleSampler(n, seed=1, rank=r, world_size=world) for r in range(world)]
    for s in shards:
        s.set_epoch(epoch)
    lists = [list(s) for s in shards]
    assert {len(x) for x in lists} == {len(shards[0])} and len(shards[0]) * world >= n
    # Interleaving the shards gives the single-process order, padded with its first indices.
    merged = [lists[i % world][i // world] for i in range(len(shards[0]) * world)]
    order = list(full)
    assert merged[:n] == order and merged[n:] == (order * world)[: len(merged) - n]


@given(n=st.integers(0, 60), world=st.integers(1, 5))
def test_shards_see_every_sample_exactly_once(n: int, world: int) -> None:
    seen = [i for r in range(world) for i in ShardSampler(n, rank=r, world_size=world)]
    assert sorted(seen) == list(range(n))
    assert sum(len(ShardSampler(n, rank=r, world_size=world)) for r in range(world)) == n


def test_bad_ranks() -> None:
    with pytest.raises(ValueError, match="rank"):
        ShardSampler(4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="rank"):
        EpochShuffleSampler(4, rank=0, world_size=0)
