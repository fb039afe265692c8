"""Tests of sslkeypoint.data.splits: deterministic, disjoint, complete, group-aware."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sslkeypoint.data import natural_sort_key, split_records


@given(
    n=st.integers(2, 120),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**31),
)
def test_split_is_deterministic_disjoint_and_complete(n: int, fraction: float, seed: int) -> None:
    records = [f"r{i}" for i in range(n)]
    train, val = split_records(records, fraction, seed)
    assert (train, val) == split_records(records, fraction, seed)
    assert not set(train) & set(val)
    assert sorted(train + val, key=natural_sort_key) == records
    expected_val = min(max(int(np.floor(n * fraction + 0.5)), 1), n - 1)
    assert len(val) == expected_val
    # input order is kept within each side
    assert train == sorted(train, key=natural_sort_key) and val == sorted(val, key=natural_sort_key)


def test_split_defaults_and_groups() -> None:
    records = list(range(50))
    train, val = split_records(records)
    assert len(train) == 40 and len(val) == 10
    assert split_records(records, seed=1) != (train, val)
    train_g, val_g = split_records(records, 0.2, 0, group=lambda r: r // 5)
    assert len(val_g) == 10 and {r // 5 for r in train_g}.isdisjoint({r // 5 for r in val_g})


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_split_validates_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        split_records(list(range(10)), fraction)


def test_split_needs_two_records() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_records([1], 0.5)
