"""Tests of sslkeypoint.data: decoding, keypoint datasets, invalid-sample filtering, splits, pairs."""

from __future__ import annotations

import io
import pickle
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from sslkeypoint.data import (
    DropLog,
    FilteringCollate,
    ImageFolderDataset,
    ImageReadError,
    InvalidSample,
    KeypointDataset,
    KeypointRecord,
    TemporalPairDataset,
    default_drop_log,
    filtering_collate,
    list_images,
    natural_sort_key,
    read_image,
    resize_image,
    split_records,
)
from sslkeypoint.heatmaps import keypoints_to_original

NAN = np.nan


def _gray(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _save(arr: np.ndarray, path: Path, fmt: str = "PNG", mode: str | None = None) -> Path:
    img = Image.fromarray(arr, mode) if mode else Image.fromarray(arr)
    img.save(path, fmt)
    return path


# ----------------------------------------------------------------------------------------------
# read_image


def test_png_named_jpg_decodes_exactly(tmp_path: Path) -> None:
    arr = _gray(7, 9)
    path = _save(arr, tmp_path / "frame.jpg", "PNG")  # PNG content, .jpg name
    img = read_image(path)
    assert img.shape == (1, 7, 9) and img.dtype == torch.float32
    assert torch.equal(img[0], torch.from_numpy(arr).float() / 255.0)  # lossless: it was read as PNG


def test_16_bit_png(tmp_path: Path) -> None:
    arr = np.array([[0, 1, 65535], [256, 32768, 1000]], dtype=np.uint16)
    path = _save(arr, tmp_path / "deep.png")
    img = read_image(path)
    assert img.shape == (1, 2, 3)
    assert torch.equal(img[0], torch.from_numpy(arr.astype(np.float32)) / 65535.0)
    assert float(img.max()) == 1.0


def test_rgba_drops_alpha(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    path = _save(rgba, tmp_path / "a.png", mode="RGBA")
    img = read_image(path)
    assert img.shape == (3, 5, 6)
    assert torch.equal(img, torch.from_numpy(rgba[..., :3]).permute(2, 0, 1).float() / 255.0)


def test_gray_jpeg(tmp_path: Path) -> None:
    arr = np.full((16, 16), 100, dtype=np.uint8)
    path = _save(arr, tmp_path / "g.jpeg", "JPEG")
    img = read_image(path)
    assert img.shape == (1, 16, 16)
    assert torch.allclose(img, torch.full_like(img, 100 / 255.0), atol=2 / 255.0)
    assert read_image(path, channels=3).shape == (3, 16, 16)


def test_equal_channel_rgb_becomes_one_channel_exactly(tmp_path: Path) -> None:
    arr = _gray(6, 5, seed=2)
    path = _save(np.stack([arr] * 3, axis=-1), tmp_path / "rgb.jpg", "PNG")
    kept = read_image(path)
    assert kept.shape == (3, 6, 5)  # None keeps the channels
    one = read_image(path, channels=1)
    assert one.shape == (1, 6, 5)
    assert torch.equal(one[0], torch.from_numpy(arr).float() / 255.0)


def test_colour_rgb_to_luma_golden() -> None:
    rgb = np.zeros((1, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 255)
    one = read_image(rgb, channels=1)
    assert torch.allclose(one[0, 0], torch.tensor([0.299, 0.587 + 0.114]), atol=1e-6)


def test_other_sources_and_gray_to_rgb(tmp_path: Path) -> None:
    arr = _gray(4, 4, seed=3)
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, "PNG")
    expected = torch.from_numpy(arr).float()[None] / 255.0
    assert torch.equal(read_image(buffer.getvalue()), expected)
    assert torch.equal(read_image(Image.fromarray(arr)), expected)
    assert torch.equal(read_image(arr), expected)
    three = read_image(arr, channels=3)
    assert three.shape == (3, 4, 4) and torch.equal(three[2], expected[0])
    assert torch.equal(read_image(np.array([[0, 65535]], dtype=np.uint16)), torch.tensor([[[0.0, 1.0]]]))
    assert torch.equal(read_image(np.array([[0.25]], dtype=np.float64)), torch.tensor([[[0.25]]]))


def test_read_image_errors_name_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"this is not an image at all")
    with pytest.raises(ImageReadError, match=r"broken\.jpg"):
        read_image(corrupt)
    buffer = io.BytesIO()
    Image.fromarray(_gray(64, 64)).save(buffer, "PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageReadError, match=r"truncated\.png"):
        read_image(truncated)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.png"):
        read_image(tmp_path / "nowhere.png")
    with pytest.raises(ValueError, match="channels"):
        read_image(_gray(2, 2), channels=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        read_image(np.array([[1.5]]))
    with pytest.raises(TypeError):
        read_image(42)  # type: ignore[arg-type]


def test_resize_image_matches_torch_antialiased() -> None:
    x = torch.rand(1, 20, 30)
    expected = F.interpolate(x[None], size=(10, 12), mode="bilinear", align_corners=False, antialias=True)[0]
    assert torch.equal(resize_image(x, (10, 12)), expected)
    assert resize_image(x, (20, 30)) is x
    assert torch.allclose(resize_image(torch.full((1, 9, 9), 0.3), 4), torch.full((1, 4, 4), 0.3))


# ----------------------------------------------------------------------------------------------
# KeypointDataset


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


def test_validate_and_collate_agree(messy: tuple[KeypointDataset, dict[int, str]]) -> None:
    ds, expected = messy
    invalid = ds.validate(progress=False)
    assert {s.index: s.reason for s in invalid} == expected
    collate = FilteringCollate()
    loader = DataLoader(ds, batch_size=5, shuffle=False, collate_fn=collate)
    batches = [b for b in loader if b is not None]
    seen = torch.cat([b["index"] for b in batches]).tolist()
    assert seen == [i for i in range(len(ds)) if i not in expected]
    first = batches[0]
    assert first["image"].shape == (2, 1, 16, 16)
    assert first["keypoints"].shape == (2, 3, 2) and first["visible"].shape == (2, 3)
    assert first["original_size"].shape == (2, 2) and isinstance(first["path"], list)
    assert collate.log.counts == Counter(expected.values())
    assert collate.log.kept == len(ds) - len(expected)
    assert {p for p, _ in collate.log.dropped} == {str(ds.records[i].path) for i in expected}
    summary = collate.log.summary()
    assert summary.startswith(f"dropped {len(expected)} of {len(ds)} samples") and "missing file" in summary
    collate.log.reset()
    assert collate.log.num_dropped == 0 and collate.log.summary() == "dropped 0 of 0 samples"


def test_empty_batch_is_none_and_default_log(messy: tuple[KeypointDataset, dict[int, str]]) -> None:
    ds, _ = messy
    log = default_drop_log()
    log.reset()
    assert filtering_collate([ds[i] for i in (2, 3, 4)]) is None
    assert log.num_dropped == 3 and log.kept == 0
    batch = filtering_collate([ds[0], ds[7]])
    assert batch["index"].tolist() == [0]
    assert log.counts[KeypointDataset.REASON_WRONG_COUNT] == 1
    log.reset()


def test_collate_is_picklable_and_works_in_workers(messy: tuple[KeypointDataset, dict[int, str]]) -> None:
    ds, expected = messy
    collate = pickle.loads(pickle.dumps(FilteringCollate(DropLog())))
    assert pickle.loads(pickle.dumps(filtering_collate)) is filtering_collate
    loader = DataLoader(ds, batch_size=4, num_workers=1, collate_fn=collate)
    got = sorted(i for b in loader if b is not None for i in b["index"].tolist())
    assert got == [i for i in range(len(ds)) if i not in expected]
    # worker-side counts stay in the worker: the exact report is validate()'s
    assert collate.log.num_dropped == 0


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


# ----------------------------------------------------------------------------------------------
# split_records


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


# ----------------------------------------------------------------------------------------------
# unlabelled images, listing


def test_list_images_natural_order(tmp_path: Path) -> None:
    for name in ["f10.png", "f2.jpg", "f1.PNG", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f0.png").write_bytes(b"x")
    names = [p.name for p in list_images(tmp_path, recursive=False)]
    assert names == ["f1.PNG", "f2.jpg", "f10.png"]
    assert len(list_images(tmp_path)) == 4
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "f1.PNG")


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


# ----------------------------------------------------------------------------------------------
# temporal pairs


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
