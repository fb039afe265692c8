"""Tests of the IUGC 2025 layout reader on small fixtures written in the real layout."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from iugc_aop.cli import main
from iugc_aop.formats import (
    IUGCFormatError,
    IUGCLayoutError,
    format_point,
    parse_point,
    read_iugc,
    write_split_labels,
)
from iugc_aop.formats.iugc import read_label_csv, split_dir
from sslkeypoint.data import natural_sort_key
from sslkeypoint.geometry import angle_of_progression

SIZE = 64


def _image(path: Path, value: int, fmt: str = "JPEG") -> None:
    rng = np.random.default_rng(value)
    arr = np.clip(value + rng.integers(-3, 4, size=(SIZE, SIZE)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.repeat(arr[:, :, None], 3, axis=2)).save(path, format=fmt)


def _pt(p: tuple[float, float]) -> str:
    return f"({p[0]}, {p[1]})"


def _aop(ps1: tuple[float, float], ps2: tuple[float, float], fh1: tuple[float, float]) -> float:
    return float(angle_of_progression(np.array(ps1), np.array(ps2), np.array(fh1)))


def _write(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


# Landmarks in a 64 px image: PS1 right end, PS2 left end, FH1 below right.
TRAIN = [
    ("1.jpg", (40.0, 10.0), (20.0, 14.0), (45.0, 40.0)),
    ("2.jpg", (42.5, 12.0), (18.0, 15.5), (50.0, 36.0)),
    ("3.jpg", (38.0, 8.0), (15.0, 12.0), (40.0, 44.0)),
]
EVAL = [
    ("a.jpg", (41.0, 11.0), (19.0, 13.0), (47.0, 39.0)),
    ("b.jpg", (39.0, 9.0), (17.0, 16.0), (52.0, 30.0)),
]


@pytest.fixture
def iugc(tmp_path: Path) -> Path:
    """A tiny data set in the IUGC 2025 layout; ``2.jpg`` of training is a PNG inside."""
    root = tmp_path / "IUGC2025"
    lab = root / "Training" / "Labeled cases"
    rows = [["Filename", "PS1", "PS2", "FH1", "AOP"]]
    for k, (name, ps1, ps2, fh1) in enumerate(TRAIN):
        _image(lab / name, 30 + 10 * k, "PNG" if name == "2.jpg" else "JPEG")
        rows.append([name, _pt(ps1), _pt(ps2), _pt(fh1), f"{_aop(ps1, ps2, fh1):.6f}"])
    _write(lab / "label.csv", rows)
    unl = root / "Training" / "Unlabeled cases"
    for f in (1, 2, 10):
        _image(unl / "video_b" / f"frame_{f}.jpg", 100 + f)
    for f in (3, 1):
        _image(unl / "patient_7" / "clip_1" / f"{f}.jpg", 120 + f)
    for k in (1, 2):
        _image(unl / f"Example{k}.jpg", 150 + k)
    for s, split in enumerate(("Validation", "Testing")):
        folder = root / split
        lm = [["Filename", "PS1", "PS2", "AOP Tangency"]]
        aop = [["Filename", "AOP"]]
        for k, (name, ps1, ps2, fh1) in enumerate(EVAL):
            _image(folder / name, 180 + 20 * s + k)
            lm.append([name, _pt(ps1), _pt(ps2), _pt(fh1)])
            aop.append([name, f"{_aop(ps1, ps2, fh1):.6f}"])
        _write(folder / "landmarks_data.csv", lm)
        _write(folder / "aop_results.csv", aop)
    return root


def test_reads_layout(iugc: Path) -> None:
    ds = read_iugc(iugc, progress=False)
    assert [len(ds.train), len(ds.validation), len(ds.testing)] == [3, 2, 2]
    rec = ds.train[1]
    assert rec.keypoints is not None and rec.keypoints.shape == (3, 2)
    assert rec.keypoints.dtype == np.float64
    np.testing.assert_array_equal(rec.keypoints, np.array(TRAIN[1][1:]))
    assert rec.meta["split"] == "train" and rec.meta["filename"] == "2.jpg"
    assert rec.meta["aop"] == pytest.approx(_aop(*TRAIN[1][1:]), abs=1e-6)
    assert Path(ds.testing[1].path) == iugc / "Testing" / "b.jpg"
    assert ds.testing[0].meta["aop"] == pytest.approx(_aop(*EVAL[0][1:]), abs=1e-6)
    # Sequences at any depth, frames in natural order, references at the top level.
    assert list(ds.sequences) == ["patient_7/clip_1", "video_b"]
    assert [p.name for p in ds.sequences["video_b"]] == ["frame_1.jpg", "frame_2.jpg", "frame_10.jpg"]
    assert [p.name for p in ds.sequences["patient_7/clip_1"]] == ["1.jpg", "3.jpg"]
    assert [p.name for p in ds.references] == ["Example1.jpg", "Example2.jpg"]
    assert not [p for p in ds.problems if p.severity != "info"]
    assert "3 labelled images" in ds.summary()


def test_png_named_jpg_is_decoded_by_content(iugc: Path) -> None:
    ds = read_iugc(iugc, progress=False)
    assert ds.report["formats"] == {"JPEG": 8, "PNG": 1}
    assert ds.report["format_differs_from_extension"] == 1
    assert ds.report["sizes"] == {f"{SIZE}x{SIZE}": 9}
    assert any(p.kind == "format_mismatch" for p in ds.problems)


def test_malformed_point_names_file_row_line_and_column(iugc: Path) -> None:
    path = iugc / "Training" / "Labeled cases" / "label.csv"
    rows = list(csv.reader(path.open()))
    rows[2][2] = "(18.0; )"  # data row 2, column PS2: one value
    _write(path, rows)
    with pytest.raises(IUGCFormatError) as err:
        read_iugc(iugc, progress=False)
    msg = str(err.value)
    assert "label.csv" in msg and "data row 2" in msg and "line 3" in msg and "'PS2'" in msg
    assert "(18.0; )" in msg


def test_non_finite_aop_and_point_rejected(iugc: Path) -> None:
    path = iugc / "Testing" / "landmarks_data.csv"
    rows = list(csv.reader(path.open()))
    rows[1][3] = "(nan, 4)"
    _write(path, rows)
    with pytest.raises(IUGCFormatError, match=r"landmarks_data\.csv.*data row 1.*'AOP Tangency'"):
        read_iugc(iugc, progress=False)


def test_aop_disagreement_is_reported(iugc: Path) -> None:
    path = iugc / "Validation" / "aop_results.csv"
    rows = list(csv.reader(path.open()))
    rows[2][1] = f"{float(rows[2][1]) + 0.5:.6f}"  # b.jpg
    _write(path, rows)
    ds = read_iugc(iugc, progress=False)
    bad = [p for p in ds.problems if p.kind == "aop_mismatch"]
    assert len(bad) == 1 and "'b.jpg'" in bad[0].message and "validation" in bad[0].message
    assert ds.report["aop_mismatches"] == 1
    assert len(ds.validation) == 2  # reported, not dropped


def test_duplicate_images_are_reported_with_label_disagreement(iugc: Path) -> None:
    folder = iugc / "Testing"
    shutil.copy(folder / "a.jpg", folder / "c.jpg")
    ps1, ps2, fh1 = (41.0, 11.0), (19.0, 13.0), (50.0, 35.0)  # FH1 moved by 5 px
    with (folder / "landmarks_data.csv").open("a", newline="") as f:
        csv.writer(f).writerow(["c.jpg", _pt(ps1), _pt(ps2), _pt(fh1)])
    with (folder / "aop_results.csv").open("a", newline="") as f:
        csv.writer(f).writerow(["c.jpg", f"{_aop(ps1, ps2, fh1):.6f}"])
    ds = read_iugc(iugc, progress=False)
    assert len(ds.duplicates) == 1
    group = ds.duplicates[0]
    assert sorted(group.members) == [("testing", "a.jpg"), ("testing", "c.jpg")]
    assert group.disagree and group.max_landmark_px == pytest.approx(5.0)
    assert group.max_aop_deg == pytest.approx(abs(_aop(ps1, ps2, fh1) - _aop(*EVAL[0][1:])), abs=1e-5)
    assert any(p.kind == "duplicate" and "disagreeing" in p.message for p in ds.problems)


def test_missing_folder_is_one_clear_error(iugc: Path) -> None:
    shutil.rmtree(iugc / "Validation")
    (iugc / "Testing" / "aop_results.csv").unlink()
    with pytest.raises(IUGCLayoutError) as err:
        read_iugc(iugc, progress=False)
    msg = str(err.value)
    assert "Validation" in msg and "aop_results.csv" in msg and "Expected layout" in msg
    # Only the requested parts are required.
    ds = read_iugc(iugc, parts=("train", "unlabeled"), progress=False)
    assert len(ds.train) == 3 and not ds.testing


def test_missing_root_and_missing_column(tmp_path: Path, iugc: Path) -> None:
    with pytest.raises(IUGCLayoutError, match="not found"):
        read_iugc(tmp_path / "nowhere", progress=False)
    path = iugc / "Training" / "Labeled cases" / "label.csv"
    rows = [r[:4] for r in csv.reader(path.open())]  # drop the AoP column
    _write(path, rows)
    with pytest.raises(IUGCFormatError, match=r"missing column\(s\) \['AOP'\]"):
        read_iugc(iugc, progress=False)


def test_images_subfolder_missing_image_and_unlabelled_image(iugc: Path) -> None:
    folder = iugc / "Testing"
    (folder / "images").mkdir()
    shutil.move(folder / "a.jpg", folder / "images" / "a.jpg")
    (folder / "b.jpg").unlink()
    _image(folder / "images" / "z.jpg", 7)
    ds = read_iugc(iugc, progress=False)
    assert [r.meta["filename"] for r in ds.testing] == ["a.jpg"]
    assert Path(ds.testing[0].path) == folder / "images" / "a.jpg"
    kinds = {p.kind: p for p in ds.problems}
    assert kinds["missing_image"].severity == "error" and "'b.jpg'" in kinds["missing_image"].message
    assert "z.jpg" in kinds["unlabelled_image"].message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(1.5, 2)", (1.5, 2.0)),
        ("1.5,2", (1.5, 2.0)),
        ("[ 3 , -4e1 ]", (3.0, -40.0)),
        ("  (  7 8 )  ", (7.0, 8.0)),
        ('"(0.25; .5)"', (0.25, 0.5)),
    ],
)
def test_parse_point_lenient_about_form(text: str, expected: tuple[float, float]) -> None:
    assert parse_point(text) == expected


@pytest.mark.parametrize("text", ["(1)", "(1, 2, 3)", "", "(a, 2)", "(nan, 1)", "(1, inf)", "()"])
def test_parse_point_strict_about_content(text: str) -> None:
    with pytest.raises(IUGCFormatError, match="two finite numbers"):
        parse_point(text, where="x.csv row 1")


def test_natural_sort_key_orders_numbers_by_value() -> None:
    names = ["frame_10.jpg", "frame_9.jpg", "frame_1.jpg", "Frame_2.jpg"]
    assert sorted(names, key=natural_sort_key) == [
        "frame_1.jpg", "Frame_2.jpg", "frame_9.jpg", "frame_10.jpg"]


@given(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4))
def test_written_points_parse_back_to_4_decimals(x: float, y: float) -> None:
    px, py = parse_point(format_point((x, y)))
    assert abs(px - x) <= 5e-5 + 1e-12 * abs(x) and abs(py - y) <= 5e-5 + 1e-12 * abs(y)
    assert format_point((px, py)) == format_point((x, y))  # writing what was read changes nothing


def test_written_label_files_read_back(tmp_path: Path) -> None:
    kp = np.array([[300.25, 80.0], [200.0, 90.5], [310.0, 205.125]])
    rows = [("1.jpg", kp, 91.25), ("2.jpg", kp + 1.0, 92.5)]
    for split in ("train", "validation", "testing"):
        split_dir(tmp_path, split).mkdir(parents=True)
        written = write_split_labels(tmp_path, split, rows)
        assert [p.parent for p in written] == [split_dir(tmp_path, split)] * len(written)
    train = read_label_csv(tmp_path / "Training" / "Labeled cases" / "label.csv",
                           ("filename", "PS1", "PS2", "FH1", "AOP"))
    assert [r.cells["filename"] for r in train] == ["1.jpg", "2.jpg"]
    np.testing.assert_array_equal(train[1].landmarks(), kp + 1.0)
    assert train[0].number("AOP") == 91.25
    lm = read_label_csv(tmp_path / "Testing" / "landmarks_data.csv", ("filename", "PS1", "PS2", "FH1"))
    assert lm[0].headers["FH1"] == "AOP Tangency"
    np.testing.assert_array_equal(lm[0].landmarks(), kp)
    with pytest.raises(ValueError, match="unknown split"):
        split_dir(tmp_path, "train2")


def test_header_spellings_are_matched_leniently(tmp_path: Path) -> None:
    path = tmp_path / "label.csv"
    _write(path, [["Image Name", "ps1", "PS 2", "fh1", "AoP (degrees)"],
                  ["1.jpg", "(1, 2)", "(3, 4)", "(5, 6)", "90"], [], ["2.jpg", "(1, 2)"]])
    rows = read_label_csv(path, ("filename", "PS1", "PS2", "FH1", "AOP"))
    assert [r.row for r in rows] == [1, 2] and [r.line for r in rows] == [2, 4]
    assert rows[0].number("AOP") == 90.0 and rows[1].cells["FH1"] == ""
    with pytest.raises(IUGCFormatError, match=r"data row 2 \(line 4\), column 'PS 2'"):
        rows[1].landmarks()


def test_cli_inspect(iugc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(iugc), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "train       3 labelled images" in out and "2 sequences, 5 frames" in out
    assert main(["check-data", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert "not found" in capsys.readouterr().err


def test_frames_are_decoded_completely_when_asked(iugc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unl = iugc / "Training" / "Unlabeled cases"
    cut = unl / "video_b" / "frame_2.jpg"
    cut.write_bytes(cut.read_bytes()[:-200])  # the JPEG header is intact: sniffing the start sees nothing
    (unl / "patient_7" / "clip_1" / "1.jpg").write_bytes(b"")
    assert not [p for p in read_iugc(iugc, progress=False).problems if p.severity == "error"]
    ds = read_iugc(iugc, progress=False, check_frames=True)
    bad = [p for p in ds.problems if p.kind == "unreadable_image"]
    assert [p.path for p in bad] == [unl / "patient_7" / "clip_1" / "1.jpg", unl / "video_b" / "frame_2.jpg"]
    assert all(p.severity == "error" and str(p.path) in p.message for p in bad)
    assert "the file is empty (0 bytes)" in bad[0].message and "truncated" in bad[1].message.lower()
    assert ds.report["unreadable_frames"] == 2 and ds.num_frames == 5  # listed, reported, not hidden
    # inspect: only --strict (or --decode-frames) decodes every frame, and then exits with 1.
    assert main(["inspect", str(iugc), "--no-progress"]) == 0
    assert "unreadable_image" not in capsys.readouterr().out
    assert main(["inspect", str(iugc), "--no-progress", "--decode-frames"]) == 0
    assert capsys.readouterr().out.count("unreadable_image") == 2
    assert main(["inspect", str(iugc), "--no-progress", "--strict"]) == 1
    out = capsys.readouterr().out
    assert "2 errors" in out and "frame_2.jpg" in out and "clip_1" in out
