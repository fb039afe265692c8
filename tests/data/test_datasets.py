"""Tests of sslkeypoint.data.datasets: labelled items and invalid markers, unlabelled images, frame pairs."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from sslkeypoint.data import (
    ImageFolderDataset,
    ImageReadError,
    IndexedDataset,
    InvalidSample,
    KeypointDataset,
    KeypointRecord,
    TemporalPairDataset,
    list_sequences,
)
from sslkeypoint.heatmaps import keypoints_to_original
from tests.data._images import _gray, _save


def test_keypoint_mapping_golden_and_round_trip(tmp_path: Path) -> None:
    path = _save(_gray(512, 512), tmp_path / "big.jpg", "PNG")
    kp = np.array([[255.5, 255.5], [0.0, 511.0], [100.25, 3.0]])
    ds = KeypointDataset([KeypointRecord(path, kp)], input_size=(256, 256))
    item = ds[0]
    assert item["image"].shape == (1, 256, 256)
    assert item["keypoints"].dtype == torch.float32
    assert item["keypoints"].tolist() == [[127.5, 127.5], [-0.25, 255.25], [49.875, 1.25]]
    assert item["original_size"].tolist() == [512, 512] and item["original_size"].dtype == torch.long
    assert item["visible"].tolist() == [True, True, True] and item["visible"].dtype == torch.bool
    assert item["index"] == 0 and item["path"] == str(path)
    back = keypoints_to_original(item["keypoints"], item["original_size"], (256, 256))
    assert torch.allclose(back.double(), torch.from_numpy(kp), atol=1e-4)


def test_keypoint_mapping_non_square(tmp_path: Path) -> None:
    path = _save(_gray(300, 400), tmp_path / "wide.png")
    ds = KeypointDataset([KeypointRecord(path, np.array([[199.5, 149.5]]))], input_size=(150, 100), in_chans=3)
    item = ds[0]
    # x' = (199.5 + 0.5) * 100 / 400 - 0.5 = 49.5, y' = (149.5 + 0.5) * 150 / 300 - 0.5 = 74.5
    assert item["keypoints"].tolist() == [[49.5, 74.5]]
    assert item["image"].shape == (3, 150, 100)
    assert item["original_size"].tolist() == [300, 400]


def test_invalid_samples_are_markers(messy: tuple[KeypointDataset, dict[int, str]]) -> None:
    ds, expected = messy
    assert ds.num_keypoints == 3  # inferred: most records have 3
    for i in range(len(ds)):
        item = ds[i]
        if i in expected:
            assert isinstance(item, InvalidSample) and item.index == i, i
            assert item.reason == expected[i], (i, item)
        else:
            assert isinstance(item, dict), (i, item)
    six = ds[6]
    assert isinstance(six, InvalidSample) and "keypoint 1 at (40, 2)" in six.detail
    assert isinstance(ds[2], InvalidSample) and ds[2].path.endswith("missing.jpg")
    five = ds[5]
    assert isinstance(five, dict)
    assert five["visible"].tolist() == [True, False, True]
    assert five["keypoints"][1].isnan().all() and torch.isfinite(five["keypoints"][0]).all()
    ten = ds[10]
    assert isinstance(ten, dict) and ten["visible"].tolist() == [True, False, True]


def test_dataset_rejects_bad_configuration(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_keypoints"):
        KeypointDataset([KeypointRecord("a.png", None)], input_size=8)
    with pytest.raises(ValueError, match="in_chans"):
        KeypointDataset([], input_size=8, in_chans=2, num_keypoints=3)
    with pytest.raises(ValueError, match="input_size"):
        KeypointDataset([], input_size=(8, 8, 8), num_keypoints=3)


def test_transform_is_applied(tmp_path: Path) -> None:
    path = _save(_gray(8, 8), tmp_path / "a.png")

    def flip_marker(item: dict) -> dict:
        item["extra"] = torch.tensor(1)
        return item

    ds = KeypointDataset([KeypointRecord(path, np.array([[1.0, 1.0]]))], input_size=8, transform=flip_marker)
    assert ds[0]["extra"].item() == 1


def test_image_folder_dataset(tmp_path: Path) -> None:
    _save(np.full((10, 20, 3), 51, np.uint8), tmp_path / "b2.jpg", "PNG")
    _save(np.full((6, 6), 102, np.uint8), tmp_path / "b10.png")
    ds = ImageFolderDataset(tmp_path, size=(4, 8))
    assert [p.name for p in ds.paths] == ["b2.jpg", "b10.png"]
    assert torch.allclose(ds[0], torch.full((1, 4, 8), 0.2))
    assert torch.allclose(ds[1], torch.full((1, 4, 8), 0.4))
    assert ImageFolderDataset(ds.paths, size=4, in_chans=3)[1].shape == (3, 4, 4)


def test_image_folder_bad_files(tmp_path: Path) -> None:
    good = _save(np.full((6, 6), 102, np.uint8), tmp_path / "good.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(ImageReadError, match=r"bad\.jpg"):
        ImageFolderDataset([bad, good], size=4)[0]
    skipping = ImageFolderDataset([bad, good], size=4, on_error="skip")
    with pytest.warns(UserWarning, match=r"bad\.jpg"):
        first = skipping[0]
    assert torch.equal(first, skipping[1])
    assert skipping.bad_files == [bad]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file only
        skipping[0]
    with pytest.raises(ValueError, match="on_error"):
        ImageFolderDataset([good], size=4, on_error="ignore")


def test_image_folder_invalid_markers(tmp_path: Path) -> None:
    good = _save(np.full((6, 6), 102, np.uint8), tmp_path / "good.png")
    truncated = _save(np.full((6, 6), 7, np.uint8), tmp_path / "cut.jpg", "JPEG")
    truncated.write_bytes(truncated.read_bytes()[:60])
    ds = ImageFolderDataset([truncated, good, tmp_path / "gone.png"], size=4, on_error="invalid")
    first, second, third = ds[0], ds[1], ds[2]
    assert isinstance(first, InvalidSample) and first.index == 0 and first.path == str(truncated)
    assert first.reason == KeypointDataset.REASON_UNREADABLE and "cut.jpg" in first.detail
    assert torch.allclose(second, torch.full((1, 4, 4), 0.4))
    assert isinstance(third, InvalidSample) and third.reason == KeypointDataset.REASON_MISSING
    # IndexedDataset hands a marker on as it is (it already carries its index).
    indexed = IndexedDataset(ds)
    assert indexed[0] == first and indexed[1][1] == 1
    assert ds.bad_files == []  # only on_error="skip" keeps that list


def test_temporal_pairs_invalid_marker_names_the_bad_frame(tmp_path: Path) -> None:
    frames = [_save(np.full((6, 6), 20 * t, np.uint8), tmp_path / f"f{t}.png") for t in range(3)]
    frames[2].write_bytes(b"")
    ds = TemporalPairDataset([frames], size=(3, 3), delta=1, on_error="invalid")
    _, b, seq = ds[0]
    assert seq == 0 and torch.allclose(b, torch.full_like(b, 20 / 255.0))
    marker = ds[1]  # frames 1 and 2: frame 2 is empty
    assert isinstance(marker, InvalidSample) and marker.index == 1 and marker.path == str(frames[2])
    assert marker.reason == "unreadable image"
    with pytest.raises(ImageReadError, match=r"f2\.png"):
        TemporalPairDataset([frames], size=(3, 3), delta=1)[1]
    with pytest.raises(ValueError, match="on_error"):
        TemporalPairDataset([frames], size=3, on_error="skip")


def test_temporal_pairs_within_sequence_and_delta_range() -> None:
    lengths = [5, 1, 2, 0, 12]
    seqs = [[f"s{s}_f{t}" for t in range(n)] for s, n in enumerate(lengths)]
    ds = TemporalPairDataset(seqs, size=8, delta=(2, 4), seed=7)
    assert ds.skipped_sequences == [1, 3]
    assert len(ds) == sum(n - 1 for n in lengths if n >= 2)
    offsets = Counter()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s, t, t2 = ds.pair_indices(i)
            n = lengths[s]
            assert 0 <= t < t2 <= n - 1
            assert t2 - t <= 4
            assert t2 - t >= 2 or t2 == n - 1  # clipped only at the sequence end
            if t + 4 < n:
                offsets[t2 - t] += 1
    assert set(offsets) == {2, 3, 4}


def test_temporal_pairs_are_reproducible_per_epoch() -> None:
    seqs = [[f"f{t}" for t in range(40)]]
    a = TemporalPairDataset(seqs, size=8, seed=3)
    b = TemporalPairDataset(seqs, size=8, seed=3)
    first = [a.pair_indices(i) for i in range(len(a))]
    assert first == [b.pair_indices(i) for i in range(len(b))]
    a.set_epoch(1)
    assert [a.pair_indices(i) for i in range(len(a))] != first
    a.set_epoch(0)
    assert [a.pair_indices(i) for i in range(len(a))] == first
    c = TemporalPairDataset(seqs, size=8, seed=4)
    assert [c.pair_indices(i) for i in range(len(c))] != first
    with pytest.raises(ValueError, match="delta"):
        TemporalPairDataset(seqs, size=8, delta=(0, 2))
    with pytest.raises(ValueError, match="delta"):
        TemporalPairDataset(seqs, size=8, delta=(3, 2))


def test_temporal_pair_items_load_the_right_frames(tmp_path: Path) -> None:
    seqs = []
    for s in range(2):
        frames = []
        for t in range(4):
            value = 10 * (4 * s + t)
            frames.append(_save(np.full((6, 6), value, np.uint8), tmp_path / f"s{s}_{t}.jpg", "PNG"))
        seqs.append(frames)
    ds = TemporalPairDataset(seqs, size=(3, 3), delta=1)
    assert len(ds) == 6
    for i in range(len(ds)):
        a, b, seq = ds[i]
        s, t, t2 = ds.pair_indices(i)
        assert seq == s and t2 == t + 1
        assert a.shape == b.shape == (1, 3, 3)
        assert torch.allclose(a, torch.full_like(a, 10 * (4 * s + t) / 255.0))
        assert torch.allclose(b, torch.full_like(b, 10 * (4 * s + t2) / 255.0))


def test_indexed_dataset_and_sequence_listing(tmp_path: Path) -> None:
    assert IndexedDataset(["a", "b", "c"])[2] == ("c", 2)
    for s, n in (("v10", 3), ("v2", 2), ("single", 1)):
        (tmp_path / s).mkdir()
        for t in range(n):
            _save(_gray(4, 4), tmp_path / s / f"f{t}.png")
    seqs = list_sequences(tmp_path)
    assert [s[0].parent.name for s in seqs] == ["v2", "v10"]  # natural order, single-frame folder skipped
    with pytest.raises(ValueError, match="no sub-folder"):
        list_sequences(tmp_path, min_frames=5)


def test_infinite_or_complex_keypoints_are_unparseable_not_missing(tmp_path: Path) -> None:
    path = _save(_gray(32, 32, 1), tmp_path / "good.png")
    inf_rec = KeypointRecord(path, np.array([[3.0, 4.0], [5.0, 6.0]]))
    # Past the record's own checks (which refuse both), as a record subclass or a mutation could be.
    object.__setattr__(inf_rec, "keypoints", np.array([[3.0, 4.0], [np.inf, 6.0]]))
    cplx_rec = KeypointRecord(path, np.array([[3.0, 4.0], [5.0, 6.0]]))
    object.__setattr__(cplx_rec, "keypoints", np.array([[3.0, 4.0], [5.0 + 1j, 6.0]]))
    ds = KeypointDataset([inf_rec, cplx_rec], input_size=(32, 32), num_keypoints=2)
    for i, fragment in ((0, "infinite"), (1, "complex")):
        item = ds[i]
        assert isinstance(item, InvalidSample) and item.reason == KeypointDataset.REASON_UNPARSEABLE, item
        assert fragment in item.detail


def test_items_carry_the_records_pixel_size(tmp_path) -> None:
    import math

    from PIL import Image

    from sslkeypoint.data import KeypointDataset, KeypointRecord

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    kp = np.array([[1.0, 2.0]])
    ds = KeypointDataset([KeypointRecord(tmp_path / "a.png", kp, pixel_size=0.25),
                          KeypointRecord(tmp_path / "a.png", kp, pixel_size=(0.1, 0.2)),
                          KeypointRecord(tmp_path / "a.png", kp)], input_size=(4, 4))
    assert ds[0]["pixel_size"].tolist() == [0.25, 0.25]
    assert ds[1]["pixel_size"].tolist() == pytest.approx([0.1, 0.2])
    assert all(math.isnan(v) for v in ds[2]["pixel_size"].tolist())
