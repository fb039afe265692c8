"""Shared test configuration: deterministic seeds, a bounded thread count, hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Test models are tiny: intra-op threads only add synchronisation cost (and contention on a busy
# machine), so every test runs single-threaded.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same torch seed."""
    torch.manual_seed(0)


#: The project's shared real data (PSFHS, HC18, ...) beside the repository; override with
#: SSLKEYPOINT_SHARED_DATA. In CI they must be there: a missing folder fails there, skips elsewhere.
SHARED_DATA = Path(os.environ.get("SSLKEYPOINT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real data folder (``hc18/``, ``psfhs/``, ...)."""
    if not (SHARED_DATA / "hc18" / "images").is_dir() and not os.environ.get("CI"):
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA
