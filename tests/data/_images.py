"""Small image helpers of the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

NAN = np.nan


def _gray(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _save(arr: np.ndarray, path: Path, fmt: str = "PNG", mode: str | None = None) -> Path:
    img = Image.fromarray(arr, mode) if mode else Image.fromarray(arr)
    img.save(path, fmt)
    return path
