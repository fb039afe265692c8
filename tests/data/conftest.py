"""Fixtures of the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sslkeypoint.data import KeypointDataset, KeypointRecord
from tests.data._images import NAN, _gray, _save


@pytest.fixture
def messy(tmp_path: Path) -> tuple[KeypointDataset, dict[int, str]]:
    """A tiny dataset with good and bad records, and the expected reason per bad index."""
    good_png = _save(_gray(32, 32, 1), tmp_path / "good.png")
    png_as_jpg = _save(_gray(32, 32, 2), tmp_path / "png_inside.jpg", "PNG")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff garbage")
    kp = np.array([[3.0, 4.0], [10.0, 20.0], [30.0, 30.0]])
    records = [
        KeypointRecord(good_png, kp),  # 0 good
        KeypointRecord(png_as_jpg, kp + 1),  # 1 good
        KeypointRecord(tmp_path / "missing.jpg", kp),  # 2 missing
        KeypointRecord(corrupt, kp),  # 3 corrupt
        KeypointRecord(good_png, np.full((3, 2), NAN)),  # 4 NaN everywhere
        KeypointRecord(good_png, np.array([[3.0, 4.0], [NAN, NAN], [5.0, 5.0]])),  # 5 good, one missing
        KeypointRecord(good_png, np.array([[3.0, 4.0], [40.0, 2.0], [5.0, 5.0]])),  # 6 out of frame
        KeypointRecord(good_png, kp[:2]),  # 7 wrong K
        KeypointRecord(good_png, None),  # 8 unlabelled
        KeypointRecord(good_png, np.array([["a", "b"], ["c", "d"], ["e", "f"]])),  # 9 unparseable
        KeypointRecord(good_png, np.array([[3.0, 4.0], [40.0, 2.0], [5.0, 5.0]]), np.array([1, 0, 1])),  # 10 good
        KeypointRecord(png_as_jpg, kp, np.zeros(3, dtype=bool)),  # 11 nothing visible
    ]
    expected = {
        2: KeypointDataset.REASON_MISSING,
        3: KeypointDataset.REASON_UNREADABLE,
        4: KeypointDataset.REASON_NONE_VISIBLE,
        6: KeypointDataset.REASON_OUT_OF_FRAME,
        7: KeypointDataset.REASON_WRONG_COUNT,
        8: KeypointDataset.REASON_NO_LABELS,
        9: KeypointDataset.REASON_UNPARSEABLE,
        11: KeypointDataset.REASON_NONE_VISIBLE,
    }
    return KeypointDataset(records, input_size=(16, 16)), expected
