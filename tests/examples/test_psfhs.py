"""Tests of the PSFHS reader: the real folder, its original .mha files, and tiny synthetic folders."""

from __future__ import annotations

import csv
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from iugc_aop.formats import (
    IUGCFormatError,
    IUGCLayoutError,
    PSFHSFormatError,
    PSFHSLayoutError,
    is_psfhs,
    read_mha,
    read_psfhs,
    read_psfhs_cases,
    similarity_groups,
)
from sslkeypoint.data import read_image
from sslkeypoint.geometry import angle_of_progression
from sslkeypoint.masks import landmarks_from_masks

# The real data live in the project's shared data folder beside the repository (override with
# SSLKEYPOINT_PSFHS). In CI they must be there, and SimpleITK too: missing ones fail there.
PSFHS = Path(os.environ.get("SSLKEYPOINT_PSFHS",
                            Path(__file__).resolve().parents[3] / "shared" / "data" / "psfhs"))
MHA = PSFHS / "original_mha_sample"
CI = bool(os.environ.get("CI"))
needs_psfhs = pytest.mark.skipif(not (PSFHS / "masks").is_dir() and not CI,
                                 reason=f"real PSFHS data not found at {PSFHS}")
try:
    import SimpleITK as sitk
except ImportError:
    sitk = None
needs_sitk = pytest.mark.skipif(sitk is None and not CI,
                                reason='SimpleITK not installed (pip install "iugc-aop[mha]")')

SIZE = 64
YY, XX = np.mgrid[:SIZE, :SIZE]


def _label_map(ps: bool = True, fh: bool = True, dx: float = 0.0) -> np.ndarray:
    """PS: ellipse centre (32 + dx, 10), semi-axes 12 × 3; FH: circle centre (32, 40), radius 14."""
    m = np.zeros((SIZE, SIZE), np.uint8)
    if ps:
        m[((XX - 32 - dx) / 12.0) ** 2 + ((YY - 10) / 3.0) ** 2 <= 1] = 1
    if fh:
        m[((XX - 32) / 14.0) ** 2 + ((YY - 40) / 14.0) ** 2 <= 1] = 2
    return m


def _frame(group: int, case: int) -> np.ndarray:
    """A frame of one acquisition: the group's pattern plus a little per-case noise."""
    base = np.random.default_rng(1000 + group).integers(20, 235, (SIZE, SIZE))
    noise = np.random.default_rng(case).integers(-8, 9, (SIZE, SIZE))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def _psfhs(root: Path, groups: list[int], with_csv: bool = True) -> Path:
    """A PNG-layout folder: case ``k`` (id ``0000k``-style) in group ``groups[k]``."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = [["case", "group"]]
    for k, g in enumerate(groups):
        case = f"{k + 1:05d}"
        Image.fromarray(_frame(g, k)).save(root / "images" / f"{case}.png")
        Image.fromarray(_label_map(dx=k % 3)).save(root / "masks" / f"{case}.png")
        rows.append([case, str(g)])
    if with_csv:
        _write_csv(root / "cases.csv", rows)
    return root


def _same_partition(a: list[int], b: list[int]) -> bool:
    a_, b_ = np.asarray(a), np.asarray(b)
    return bool(np.array_equal(a_[:, None] == a_[None], b_[:, None] == b_[None]))


@pytest.fixture(scope="module")
def real_cases():
    if not (PSFHS / "masks").is_dir() and not CI:
        pytest.skip(f"real PSFHS data not found at {PSFHS}")
    return read_psfhs_cases(PSFHS)


# --- similarity groups ---------------------------------------------------------------------


def test_similarity_groups_single_linkage_golden() -> None:
    """Correlations built by hand: A–B and B–C at cos 30° = 0.866 > 0.85, A–C at cos 60° = 0.5:
    single linkage joins the chain; D (orthogonal) stays alone; numbering by first appearance."""
    rng = np.random.default_rng(0)
    m = rng.standard_normal((64, 3))
    m -= m.mean(axis=0)  # zero-mean columns: their orthonormal basis is zero-mean too
    u, v, w = np.linalg.qr(m)[0].T
    assert abs(u.sum()) < 1e-9 and abs(v @ w) < 1e-9
    t = math.radians(30)
    a, b, c = u, math.cos(t) * u + math.sin(t) * v, math.cos(2 * t) * u + math.sin(2 * t) * v
    img = [x.reshape(8, 8) for x in (w, a, c, b)]
    assert similarity_groups(img, size=8) == [0, 1, 1, 1]
    assert similarity_groups(img, threshold=0.87, size=8) == [0, 1, 2, 3]  # 0.866 < 0.87
    assert similarity_groups([w.reshape(8, 8) * 7 + 3, w.reshape(8, 8)], size=8) == [0, 0]  # affine
    assert similarity_groups([np.full((8, 8), 5.0), np.full((8, 8), 5.0)], size=8) == [0, 1]
    assert similarity_groups([]) == []


def test_similarity_groups_sample_every_fourth_pixel_from_zero() -> None:
    """256 → 64 px keeps pixels (4i, 4j) only: changing every other pixel changes nothing."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (256, 256)).astype(np.uint8)
    b = rng.integers(0, 256, (256, 256)).astype(np.uint8)
    b[::4, ::4] = a[::4, ::4]
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.2  # unrelated at full resolution
    assert similarity_groups([a, b]) == [0, 0]
    c = a.copy()
    c[::4, ::4] = rng.integers(0, 256, (64, 64))  # only the sampled pixels differ
    assert similarity_groups([a, c]) == [0, 1]


def test_similarity_groups_bad_input() -> None:
    with pytest.raises(ValueError, match=r"image 1 must have shape \(H, W\); got shape \(2, 4, 4\)"):
        similarity_groups([np.zeros((4, 4)), np.zeros((2, 4, 4))])
    with pytest.raises(ValueError, match="size"):
        similarity_groups([np.zeros((4, 4))], size=0)


def test_similarity_groups_reproduce_cases_csv_on_real_images(real_cases) -> None:
    """The rule recomputed from the 1,058 real images gives exactly the partition of cases.csv."""
    cases = real_cases
    images = [read_image(p, channels=1)[0].numpy() for p in cases.images]
    computed = similarity_groups(images)
    assert len(set(computed)) == len(set(cases.groups)) == 336
    assert _same_partition(computed, cases.groups)
    # The first 60 cases alone (12 groups) give the same partition as their cases.csv rows.
    assert _same_partition(similarity_groups(images[:60]), cases.groups[:60])


def test_synthetic_groups_computed_without_cases_csv(tmp_path: Path) -> None:
    groups = [0, 0, 1, 2, 2, 2, 1, 3]
    with_csv = read_psfhs_cases(_psfhs(tmp_path / "a", groups))
    without = read_psfhs_cases(_psfhs(tmp_path / "b", groups, with_csv=False))
    assert with_csv.group_source == "cases.csv" and without.group_source == "computed"
    assert with_csv.rows == list(range(1, 9)) and without.rows == [None] * 8
    assert without.groups == [0, 0, 1, 2, 2, 2, 1, 3]
    np.testing.assert_array_equal(with_csv.landmarks, without.landmarks)


# --- the real folder -----------------------------------------------------------------------


def test_real_cases_all_measured(real_cases) -> None:
    c = real_cases
    assert is_psfhs(PSFHS) and c.layout == "psfhs-png" and c.group_source == "cases.csv"
    assert len(c) == 1058 and not c.skipped and not c.problems and c.measured.all()
    assert c.landmarks.shape == (1058, 3, 2) and c.landmarks.dtype == np.float64
    assert (c.landmarks[:, 0, 0] > c.landmarks[:, 1, 0]).all()  # PS1 is the right end
    aop = angle_of_progression(c.landmarks[:, 0], c.landmarks[:, 1], c.landmarks[:, 2])
    # The figures of the data set's README (OpenCV fit of the challenge evaluator).
    assert aop.mean() == pytest.approx(107.7, abs=0.05)
    assert aop.std() == pytest.approx(23.3, abs=0.05)
    assert np.median(aop) == pytest.approx(104.1, abs=0.05)
    assert 57 <= aop.min() < 58 and 179 < aop.max() <= 180
    i = c.cases.index("03744")
    np.testing.assert_array_equal(
        c.landmarks[i],
        landmarks_from_masks(np.asarray(Image.open(PSFHS / "masks" / "03744.png")), method="challenge"))


@needs_psfhs
def test_real_split_by_group() -> None:
    ds = read_psfhs(PSFHS, seed=3)
    parts = {s: ds.split(s) for s in ("train", "validation", "testing")}
    groups = {s: {r.meta["group"] for r in recs} for s, recs in parts.items()}
    assert not groups["train"] & groups["validation"]
    assert not groups["train"] & groups["testing"] and not groups["validation"] & groups["testing"]
    assert sum(len(v) for v in parts.values()) == 1058
    assert len(groups["testing"]) == round(0.2 * 336)
    assert len(groups["validation"]) == round(0.2 * (336 - len(groups["testing"])))
    assert ds.unlabelled == [r.path for r in parts["train"]]
    assert ds.report["layout"] == "psfhs-png" and ds.report["groups"] == 336
    assert "unordered images" in ds.summary() and "PSFHS data" in ds.summary()


# --- the original .mha files ---------------------------------------------------------------


@needs_sitk
@needs_psfhs
def test_mha_and_png_give_the_same_cases(real_cases, tmp_path: Path) -> None:
    mha = read_psfhs_cases(MHA)
    assert mha.layout == "psfhs-mha" and is_psfhs(MHA) and len(mha) == 12 and not mha.skipped
    idx = [real_cases.cases.index(c) for c in mha.cases]
    np.testing.assert_allclose(mha.landmarks, real_cases.landmarks[idx], rtol=0, atol=1e-9)
    assert mha.group_source == "computed"
    assert _same_partition(mha.groups, [real_cases.groups[i] for i in idx])
    image = read_mha(MHA / "image_mha" / "03744.mha")
    assert image.shape == (256, 256) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, np.asarray(Image.open(PSFHS / "images" / "03744.png")))

    ds = read_psfhs(MHA, cache_dir=tmp_path / "png", seed=0)
    recs = ds.train + ds.validation + ds.testing
    assert len(recs) == 12 and ds.report["layout"] == "psfhs-mha"
    for r in recs:  # the training code reads the cached PNG exactly as the PNG layout's image
        assert Path(r.path).parent == tmp_path / "png" and r.meta["filename"].endswith(".mha")
        assert np.array_equal(read_image(r.path).numpy(),
                              read_image(PSFHS / "images" / f"{r.meta['case']}.png").numpy())


def _mha_copy(tmp_path: Path, n: int = 4) -> Path:
    root = tmp_path / "mha"
    for sub in ("image_mha", "label_mha"):
        (root / sub).mkdir(parents=True)
        for p in sorted((MHA / sub).glob("*.mha"))[:n]:
            shutil.copy2(p, root / sub / p.name)
    return root


@needs_sitk
@needs_psfhs
def test_mha_cache_is_reused_and_refreshed(tmp_path: Path) -> None:
    root, cache = _mha_copy(tmp_path), tmp_path / "cache"
    read_psfhs(root, cache_dir=cache, test_fraction=0, val_fraction=0)
    png = cache / "03744.png"
    before = png.stat().st_mtime_ns
    read_psfhs(root, cache_dir=cache, test_fraction=0, val_fraction=0)
    assert png.stat().st_mtime_ns == before  # up to date: not rewritten
    src = root / "image_mha" / "03744.mha"
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    read_psfhs(root, cache_dir=cache, test_fraction=0, val_fraction=0)
    assert png.stat().st_mtime_ns != before  # the source changed: rewritten
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary left
    with pytest.raises(ValueError, match="cache_dir"):
        read_psfhs(root)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    Image.new("L", (4, 4)).save(foreign / "03745.png")
    with pytest.raises(PSFHSLayoutError, match=r"03745\.png exists and was not written by read_psfhs"):
        read_psfhs(root, cache_dir=foreign)
    assert Image.open(foreign / "03745.png").size == (4, 4)  # left alone


@needs_sitk
def test_read_mha_channels(tmp_path: Path) -> None:
    assert sitk is not None
    frame = _frame(0, 0)
    sitk.WriteImage(sitk.GetImageFromArray(np.stack([frame] * 3)), str(tmp_path / "vol.mha"))
    sitk.WriteImage(sitk.GetImageFromArray(np.stack([frame] * 3, axis=-1), isVector=True),
                    str(tmp_path / "vec.mha"))
    sitk.WriteImage(sitk.GetImageFromArray(frame), str(tmp_path / "flat.mha"))
    for name in ("vol", "vec", "flat"):
        np.testing.assert_array_equal(read_mha(tmp_path / f"{name}.mha"), frame)
    rgb = np.stack([frame, frame // 2, np.zeros_like(frame)])
    sitk.WriteImage(sitk.GetImageFromArray(rgb), str(tmp_path / "rgb.mha"))
    luma = np.rint(0.299 * frame + 0.587 * (frame // 2)).astype(np.uint8)
    np.testing.assert_array_equal(read_mha(tmp_path / "rgb.mha"), luma)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 8, 8), np.uint8)), str(tmp_path / "two.mha"))
    with pytest.raises(ValueError, match=r"two\.mha: expected one H×W frame.*\(2, 8, 8\)"):
        read_mha(tmp_path / "two.mha")
    (tmp_path / "junk.mha").write_bytes(b"not a MetaImage")
    with pytest.raises(ValueError, match=r"junk\.mha"):
        read_mha(tmp_path / "junk.mha")


# --- synthetic folders: landmarks, skipped cases, layout and cases.csv errors --------------


def test_landmarks_match_hand_geometry(tmp_path: Path) -> None:
    """PS ellipse (32, 10), semi-axes 12 × 3 → PS1 ≈ (44, 10), PS2 ≈ (20, 10); FH1 is the far
    tangent point from PS1 on the circle (32, 40), r = 14: at angle atan2(30, −12) − asin(14/d)
    from PS1, at distance sqrt(d² − r²), d = |PS1 − C|."""
    root = _psfhs(tmp_path / "p", [0, 1, 2])
    ps1 = np.array([44.0, 10.0])
    d = math.hypot(-12, 30)
    ang = math.atan2(30, -12) - math.asin(14 / d)
    fh1 = ps1 + math.sqrt(d * d - 14 * 14) * np.array([math.cos(ang), math.sin(ang)])
    expected = np.stack([ps1, [20.0, 10.0], fh1])
    cases = read_psfhs_cases(root)
    np.testing.assert_allclose(cases.landmarks[0], expected, atol=0.8)
    ds = read_psfhs(root, test_fraction=0, val_fraction=0)
    rec = ds.train[0]
    assert rec.meta["aop"] == rec.meta["aop_landmarks"] == pytest.approx(
        float(angle_of_progression(rec.keypoints[0], rec.keypoints[1], rec.keypoints[2])))
    assert rec.meta["aop"] == pytest.approx(math.degrees(math.pi - ang), abs=2.0)
    assert rec.meta | {"aop": 0, "aop_landmarks": 0} == {
        "split": "train", "filename": "00001.png", "row": 1, "case": "00001", "group": 0,
        "aop": 0, "aop_landmarks": 0}


def test_unmeasurable_and_missing_masks_are_skipped_and_counted(tmp_path: Path) -> None:
    root = _psfhs(tmp_path / "p", [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    Image.fromarray(_label_map(ps=False)).save(root / "masks" / "00002.png")
    Image.fromarray(_label_map(fh=False)).save(root / "masks" / "00003.png")
    (root / "masks" / "00004.png").unlink()
    (root / "masks" / "00005.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "masks" / "00006.png")
    Image.fromarray(_label_map()).save(root / "masks" / "00099.png")  # no image
    cases = read_psfhs_cases(root)
    reasons = dict(cases.skipped)
    assert list(reasons) == ["00002", "00003", "00004", "00005", "00006"]
    assert reasons["00002"].startswith("no measurable pubic symphysis in 00002.png")
    assert reasons["00003"].startswith("no measurable fetal head in 00003.png")
    assert reasons["00004"] == "no mask (expected masks/00004.png)"
    assert reasons["00005"].startswith("cannot read mask 00005.png")
    assert reasons["00006"].startswith("mask 00006.png has shape (32, 32) but its image is 64×64")
    assert cases.measured.tolist() == [True] + [False] * 5 + [True] * 4
    assert np.isnan(cases.landmarks[1:6]).all() and np.isfinite(cases.landmarks[[0, 6]]).all()
    assert [p.kind for p in cases.problems] == ["mask_without_image"] + ["skipped_case"] * 5
    assert "00099" in cases.problems[0].message and cases.problems[0].severity == "warning"

    ds = read_psfhs(root, test_fraction=0.25, val_fraction=0.25, seed=0)
    assert ds.report["skipped"] == 5 and ds.report["skipped_cases"] == reasons
    assert ds.report["cases"] == 10 and ds.report["measured"] == 5
    recs = ds.train + ds.validation + ds.testing
    assert sorted(r.meta["case"] for r in recs) == ["00001", "00007", "00008", "00009", "00010"]
    assert "5 errors, 1 warnings" in ds.summary()
    # Images of skipped cases feed pre-training when their group trains.
    train_groups = {r.meta["group"] for r in ds.train}
    expected = [root / "images" / f"{k + 1:05d}.png" for k, g in
                enumerate([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]) if g in train_groups]
    assert ds.unlabelled == expected


def test_layout_errors(tmp_path: Path) -> None:
    assert not is_psfhs(tmp_path / "absent") and not is_psfhs(tmp_path)
    with pytest.raises(PSFHSLayoutError, match="not found"):
        read_psfhs(tmp_path / "absent")
    with pytest.raises(PSFHSLayoutError, match="holds no PSFHS folder"):
        read_psfhs(tmp_path)
    root = _psfhs(tmp_path / "p", [0, 1, 2])
    shutil.rmtree(root / "masks")
    assert is_psfhs(root)  # read_psfhs then says what is missing
    with pytest.raises(PSFHSLayoutError) as err:
        read_psfhs(root)
    assert isinstance(err.value, IUGCLayoutError)  # the CLI prints "error: ..." and exits 2
    assert f"missing {root / 'masks'}/ (folder of label maps NNNNN.png" in str(err.value)
    (root / "masks").mkdir()
    with pytest.raises(PSFHSLayoutError, match=r"masks/ holds no mask files \(expected NNNNN\.png"):
        read_psfhs(root)
    Image.fromarray(_label_map()).save(root / "masks" / "00001.png")
    Image.fromarray(_frame(0, 0)).save(root / "images" / "00001.bmp")
    with pytest.raises(PSFHSLayoutError, match=r"two image files for case '00001': 00001\.bmp and 00001\.png"):
        read_psfhs(root)
    (tmp_path / "mha" / "image_mha").mkdir(parents=True)
    with pytest.raises(PSFHSLayoutError, match=r"label_mha/ \(folder of label maps NNNNN\.mha"):
        read_psfhs_cases(tmp_path / "mha")
    iugc = tmp_path / "iugc"
    (iugc / "Training").mkdir(parents=True)
    (iugc / "images").mkdir()
    assert not is_psfhs(iugc)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([["case", "group"], ["00001", "0"], ["00002", "one"], ["00003", "2"]],
         r"cases\.csv: data row 2 \(line 3\): group 'one' of case '00002' is not an integer; "
         r"expected 'case,group'"),
        ([["case", "group"], ["00001", "0"], ["00002"], ["00003", "2"]],
         r"cases\.csv: data row 2 \(line 3\): 1 cell\(s\) \['00002'\], expected 2"),
        ([["case", "group"], ["00001", "0"], ["00002", "1"], ["00003", "2"], ["00007", "2"]],
         r"cases\.csv: data row 4 \(line 5\): case '00007' has no image in .*images/"),
        ([["case", "group"], ["00001", "0"], ["00002", "1"], ["00001", "2"], ["00003", "2"]],
         r"data row 3 \(line 4\): case '00001' is listed again \(first in data row 1\)"),
        ([["case", "group"], ["00001", "0"], ["00003", "2"]],
         r"cases\.csv: no row for 1 image\(s\), e\.g\. \['00002'\]"),
        ([["case", "cluster"], ["00001", "0"]], r"cases\.csv: header \['case', 'cluster'\] lacks column"),
        ([], r"cases\.csv: the file is empty"),
    ],
)
def test_malformed_cases_csv_names_file_and_row(tmp_path: Path, rows, match) -> None:
    root = _psfhs(tmp_path / "p", [0, 1, 2])
    _write_csv(root / "cases.csv", rows)
    with pytest.raises(PSFHSFormatError, match=match) as err:
        read_psfhs(root)
    assert isinstance(err.value, IUGCFormatError)


# --- splits and label budgets --------------------------------------------------------------

GROUPS = [g for g in range(15) for _ in range(1 + g % 4)]  # 15 groups of 1–4 cases, 36 cases


@pytest.fixture(scope="module")
def grouped(tmp_path_factory) -> Path:
    return _psfhs(tmp_path_factory.mktemp("psfhs") / "p", GROUPS)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), test=st.sampled_from([0.0, 0.2, 0.4]),
       val=st.sampled_from([0.0, 0.25, 0.5]))
def test_group_split_never_straddles(grouped: Path, seed: int, test: float, val: float) -> None:
    ds = read_psfhs(grouped, seed=seed, test_fraction=test, val_fraction=val)
    parts = {s: ds.split(s) for s in ("train", "validation", "testing")}
    groups = {s: {r.meta["group"] for r in recs} for s, recs in parts.items()}
    assert not groups["train"] & groups["validation"] and not groups["train"] & groups["testing"]
    assert not groups["validation"] & groups["testing"]
    assert sorted(r.meta["case"] for recs in parts.values() for r in recs) == \
        [f"{k + 1:05d}" for k in range(len(GROUPS))]
    assert len(groups["testing"]) == (0 if test == 0 else max(1, math.floor(15 * test + 0.5)))
    assert len(groups["validation"]) == (
        0 if val == 0 else max(1, math.floor((15 - len(groups["testing"])) * val + 0.5)))
    for s, recs in parts.items():
        assert all(r.meta["split"] == s for r in recs)
        assert [r.meta["case"] for r in recs] == sorted(r.meta["case"] for r in recs)
    held_out = {str(r.path) for r in parts["validation"] + parts["testing"]}
    assert ds.unlabelled == [r.path for r in parts["train"]]
    assert not held_out & {str(p) for p in ds.unlabelled}
    assert ds.report["groups_per_split"] == {s: len(g) for s, g in groups.items()}


def test_label_budget(grouped: Path) -> None:
    full = read_psfhs(grouped, seed=4)
    cases = {s: [r.meta["case"] for r in full.split(s)] for s in ("train", "validation", "testing")}
    draws = {}
    for seed in (4, 5):
        for n in (3, 6):
            ds = read_psfhs(grouped, labels=n, seed=seed)
            again = read_psfhs(grouped, labels=n, seed=seed)
            got = [r.meta["case"] for r in ds.train]
            assert len(ds.train) == n and got == [r.meta["case"] for r in again.train]
            assert got == sorted(got)
            draws[seed, n] = got
            if seed == 4:
                assert set(got) <= set(cases["train"])
                assert [r.meta["case"] for r in ds.validation] == cases["validation"]
                assert [r.meta["case"] for r in ds.testing] == cases["testing"]
                assert ds.unlabelled == full.unlabelled  # every training group's images
                assert ds.report["train_cases"] == len(cases["train"]) and ds.report["labels"] == n
    assert set(draws[4, 3]) <= set(draws[4, 6])  # a smaller budget is a subset (one seed)
    assert draws[4, 3] != draws[5, 3] and draws[4, 6] != draws[5, 6]
    # The draw is the documented one: the first n of default_rng(seed).permutation(len(train)).
    perm = np.random.default_rng(4).permutation(len(cases["train"]))[:3]
    assert draws[4, 3] == [cases["train"][i] for i in sorted(perm.tolist())]
    with pytest.raises(ValueError, match=r"labels=999 but the training split has only"):
        read_psfhs(grouped, labels=999)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="labels must be a positive integer"):
            read_psfhs(grouped, labels=bad)  # type: ignore[arg-type]


def test_bad_fractions_and_too_few_groups(tmp_path: Path) -> None:
    root = _psfhs(tmp_path / "p", [0, 0, 1])
    for kw in ({"test_fraction": 1.0}, {"val_fraction": -0.1}, {"test_fraction": "0.2"}):
        with pytest.raises(ValueError, match="must be in"):
            read_psfhs(root, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"has 2 group\(s\) of measured cases.*need at least 3"):
        read_psfhs(root)
    ds = read_psfhs(root, val_fraction=0)
    assert len(ds.split("validation")) == 0 and len(ds.train) + len(ds.testing) == 3


def test_mha_without_simpleitk_says_how_to_install(tmp_path: Path, monkeypatch) -> None:
    for sub in ("image_mha", "label_mha"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "00001.mha").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "SimpleITK", None)  # import SimpleITK raises ImportError
    with pytest.raises(ImportError, match=r'pip install "SimpleITK>=2\.3" \(or pip install "iugc-aop\[mha\]"\)'):
        read_psfhs_cases(tmp_path)
    with pytest.raises(ImportError, match="SimpleITK"):
        read_mha(tmp_path / "image_mha" / "00001.mha")
