"""Tests of the synthetic IUGC-format generator: exact labels, layout, distributions, determinism."""

from __future__ import annotations

import ast
import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import iugc_aop
from iugc_aop.cli import main
from iugc_aop.formats import load_truth, parse_point, read_iugc
from iugc_aop.plotting import contact_sheet
from iugc_aop.synth import (
    WRITING_NAME,
    SynthConfig,
    SyntheticFolderError,
    check_synthetic_folder,
    render_scene,
    sample_duplicates,
    sample_labels,
    sample_references,
    sample_scene,
    sample_sequences,
    write_synthetic_iugc,
)
from iugc_aop.synth.scene import IUGC_RANGES, PIVOT, DrawnEllipse, Fan, place_head, rigid_transform
from sslkeypoint.geometry import (
    angle_of_progression,
    ellipse_major_axis_endpoints,
    far_tangent_point,
)

TINY = SynthConfig(train=4, validation=2, testing=3, sequences=2, frames=3, references=1,
                   test_duplicates=1, poor_fraction=0.5)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "smoke"
    write_synthetic_iugc(root, SynthConfig.preset("smoke"), seed=3, progress=False)
    contact_sheet(root, root / "contact_sheet.png")
    return root


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _labelled_rows(root: Path) -> list[tuple[str, str, np.ndarray, float]]:
    """(split, filename, (3, 2) landmarks, AOP column) of every labelled row on disk."""
    out = []
    for r in _csv(root / "Training" / "Labeled cases" / "label.csv"):
        kp = np.array([parse_point(r[c]) for c in ("PS1", "PS2", "FH1")])
        out.append(("train", r["Filename"], kp, float(r["AOP"])))
    for split, folder in (("validation", "Validation"), ("testing", "Testing")):
        aops = {r["Filename"]: float(r["AOP"]) for r in _csv(root / folder / "aop_results.csv")}
        for r in _csv(root / folder / "landmarks_data.csv"):
            kp = np.array([parse_point(r[c]) for c in ("PS1", "PS2", "AOP Tangency")])
            out.append((split, r["Filename"], kp, aops[r["Filename"]]))
    return out


def test_written_aop_equals_aop_of_written_landmarks(smoke: Path) -> None:
    rows = _labelled_rows(smoke)
    assert len(rows) == 24 + 8 + 12 + 1
    for _, _, kp, aop in rows:
        assert float(angle_of_progression(kp[0], kp[1], kp[2])) == pytest.approx(aop, abs=1e-6)


def test_fh1_is_the_far_tangent_point_of_the_drawn_skull(smoke: Path) -> None:
    truth = load_truth(smoke)
    assert truth is not None
    written = {(s, n): kp for s, n, kp, _ in _labelled_rows(smoke)}
    entries = [(s, e) for s in ("train", "validation", "testing") for e in truth["labelled"][s]]
    for split, e in entries:
        if e["duplicate_of"] is not None:
            continue  # a second reading with moved landmarks
        kp = written[(split, e["filename"])]
        ps1, ps2, fh1 = kp
        head = DrawnEllipse.from_dict(e["head"]).ellipse
        # FH1 on the ellipse: |rho - 1| * b bounds the distance to it (px).
        rho = math.sqrt(float(head.implicit(fh1)))
        assert abs(rho - 1.0) * head.axes[1] < 0.01
        # Tangent: the ellipse normal at FH1 is perpendicular to PS1->FH1.
        u = (fh1 - ps1) / np.linalg.norm(fh1 - ps1)
        assert abs(float(head.normal(fh1) @ u)) < 1e-4
        # Far side: no head point makes a larger angle; and the closed form agrees.
        q = head.points(4000)
        ang = angle_of_progression(np.broadcast_to(ps1, q.shape), np.broadcast_to(ps2, q.shape), q)
        assert ang.max() <= e["aop"] + 1e-3
        np.testing.assert_allclose(far_tangent_point(head, ps1, ps2), fh1, atol=0.01)
        # PS1 and PS2 are the ends of the drawn symphysis' major axis, PS1 first along its angle.
        sym = DrawnEllipse.from_dict(e["symphysis"])
        ends = sym.centre + np.array([[1.0], [-1.0]]) * sym.a * np.array(
            [math.cos(sym.angle), math.sin(sym.angle)])
        np.testing.assert_allclose(ends, kp[:2], atol=1e-3)
        lib_ends = ellipse_major_axis_endpoints(sym.ellipse)
        np.testing.assert_allclose(lib_ends[np.argsort(-lib_ends[:, 0])], kp[:2], atol=1e-3)
        assert ps1[0] > ps2[0]


def test_written_dataset_reads_back(smoke: Path) -> None:
    ds = read_iugc(smoke, progress=False)
    assert [len(ds.train), len(ds.validation), len(ds.testing)] == [24, 8, 13]
    assert len(ds.sequences) == 4 and all(len(v) == 6 for v in ds.sequences.values())
    assert [p.name for p in ds.sequences["video_1"]][:3] == ["frame_1.jpg", "frame_2.jpg", "frame_3.jpg"]
    assert [p.name for p in ds.references] == ["Example1.jpg", "Example2.jpg"]
    assert ds.report["sizes"] == {"512x512": 24 + 8 + 13 + 2}
    assert ds.report["rgb_with_unequal_channels"] == 0
    assert ds.report["aop_mismatches"] == 0
    serious = [p for p in ds.problems if p.severity != "info"]
    assert [p.kind for p in serious] == ["duplicate"]
    assert len(ds.duplicates) == 1 and ds.duplicates[0].disagree
    truth = load_truth(smoke)
    assert truth is not None
    for rec, e in zip(ds.train, truth["labelled"]["train"]):
        np.testing.assert_allclose(rec.keypoints, [e["ps1"], e["ps2"], e["fh1"]], atol=1e-9)
    assert (smoke / "contact_sheet.png").stat().st_size > 10_000


def test_about_a_fifth_are_png_inside(smoke: Path) -> None:
    files = sorted(smoke.rglob("*.jpg"))
    formats = []
    for p in files:
        with Image.open(p) as im:
            formats.append(im.format)
    share = formats.count("PNG") / len(files)
    assert set(formats) == {"PNG", "JPEG"} and 0.15 <= share <= 0.25


def test_frames_are_fan_shaped_grayscale(smoke: Path) -> None:
    with Image.open(smoke / "Training" / "Labeled cases" / "1.jpg") as im:
        arr = np.asarray(im.convert("RGB")).astype(int)
    assert arr.shape == (512, 512, 3)
    assert np.abs(arr[..., 0] - arr[..., 1]).max() <= 1 and np.abs(arr[..., 0] - arr[..., 2]).max() <= 1
    g = arr[..., 0]
    assert g[:20, :20].max() <= 8 and g[:20, -20:].max() <= 8  # outside the fan: black
    assert g[200:300, 200:300].mean() > 20  # inside: tissue


def test_skull_is_bright_with_a_shadow_beneath() -> None:
    scene = sample_scene(np.random.default_rng(5), SynthConfig().train_aop)
    img = render_scene(scene).astype(float)
    head = scene.head
    assert head is not None
    yy, xx = np.mgrid[0:512, 0:512]
    pts = np.stack([xx, yy], axis=-1).astype(float)
    rho = np.sqrt(head.ellipse.implicit(pts))
    fan = Fan().contains(pts, margin=3.0)
    upper = fan & (yy < head.cy)
    rim = upper & (rho < 1.0) & (rho > 1.0 - 0.5 * scene.skull_thickness / head.a)
    ring = upper & (rho > 1.1) & (rho < 1.3)
    if scene.symphysis is not None:
        ring &= scene.symphysis.ellipse.implicit(pts) > 1.5
    inside = fan & (rho < 0.6)
    assert img[rim].mean() > 1.3 * img[ring].mean()
    below = fan & (xx > head.cx - 20) & (xx < head.cx + 20)
    assert img[below & (rho < 0.6)].mean() < 0.8 * img[ring].mean()
    assert img[inside].mean() < img[ring].mean()


def test_same_seed_identical_files_other_seed_differs(tmp_path: Path) -> None:
    a = write_synthetic_iugc(tmp_path / "a", TINY, seed=7, progress=False)
    b = write_synthetic_iugc(tmp_path / "b", TINY, seed=7, progress=False, workers=2)
    c = write_synthetic_iugc(tmp_path / "c", TINY, seed=8, progress=False)
    for res in (a, b):  # the contact sheet of the same data is byte-identical too
        contact_sheet(res.root, res.root / "contact_sheet.png")
    files_a = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    # 5 label files, the truth file and the contact sheet besides the images.
    assert files_a == files_b and len(files_a) == a.images + 7
    assert not (c.root / "contact_sheet.png").exists()  # the writer draws nothing
    for rel in files_a:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    first = Path("Training/Labeled cases/1.jpg")
    assert (a.root / first).read_bytes() != (c.root / first).read_bytes()


def test_label_distributions_match_iugc() -> None:
    config = SynthConfig(train=400, validation=150, testing=400)
    labels = sample_labels(config, seed=11)
    stats = {}
    for split, scenes in labels.items():
        kp = np.stack([s.keypoints for s in scenes])
        aop = np.array([s.aop for s in scenes])
        stats[split] = aop
        for k, box in enumerate((IUGC_RANGES.ps1, IUGC_RANGES.ps2, IUGC_RANGES.fh1)):
            assert kp[:, k, 0].min() >= box[0] and kp[:, k, 0].max() <= box[1]
            assert kp[:, k, 1].min() >= box[2] and kp[:, k, 1].max() <= box[3]
        assert (kp[:, 0, 0] > kp[:, 1, 0]).all()
    assert abs(stats["train"].mean() - 92.0) < 2.5
    assert 53.0 <= stats["train"].min() and stats["train"].max() <= 136.0
    assert abs(stats["testing"].mean() - 104.5) < 2.5
    assert 71.0 <= stats["testing"].min() and stats["testing"].max() <= 163.0
    assert stats["train"].mean() < stats["validation"].mean() < stats["testing"].mean()
    # Symphysis length and head size from the PSFH 2023 masks (512 px).
    ps_len = np.array([np.linalg.norm(s.ps1 - s.ps2) for s in labels["train"]])
    assert 79.99 <= ps_len.min() and ps_len.max() <= 158.01 and 105 < ps_len.mean() < 135
    major = np.array([2 * s.head.a for s in labels["train"]])
    assert 198.0 <= major.min() and major.max() <= 340.0


def test_sequences_descend_smoothly_and_poor_share() -> None:
    config = SynthConfig(sequences=10, frames=8, poor_fraction=0.3)
    seqs = sample_sequences(config, seed=2)
    assert sum(not s.good for s in seqs) == 3
    assert {s.kind for s in seqs if not s.good} <= {"no_symphysis", "tissue_only", "noisy"}
    for s in seqs:
        assert len(s.frames) == 8
        if s.kind == "standard":
            aop = np.array([f.aop for f in s.frames])
            assert (np.diff(aop) >= -1e-3).all() and aop[-1] - aop[0] > 3.0
            ps1 = np.stack([f.ps1 for f in s.frames])
            assert np.linalg.norm(np.diff(ps1, axis=0), axis=1).max() < 6.0
        if s.kind == "tissue_only":
            assert all(f.head is None and f.ps1 is None for f in s.frames)
        if s.kind == "no_symphysis":
            assert all(f.symphysis is None and f.head is not None for f in s.frames)


def test_truth_file_records_sequences(smoke: Path) -> None:
    truth = load_truth(smoke)
    assert truth is not None
    seqs = truth["sequences"]
    assert sorted(seqs) == ["video_1", "video_2", "video_3", "video_4"]
    assert sum(not v["good"] for v in seqs.values()) == round(0.3 * 4)
    frame = seqs["video_2"]["frames"][0]
    assert (smoke / frame["file"]).is_file() and "head" in frame and "kind" in frame


@given(
    aop=st.floats(60.0, 150.0),
    dist=st.floats(80.0, 250.0),
    a=st.floats(90.0, 170.0),
    ratio=st.floats(0.7, 1.0),
    phi=st.floats(-1.0, 1.0),
    theta=st.floats(2.6, 3.4),
)
def test_place_head_and_closed_form_far_tangent_agree(
    aop: float, dist: float, a: float, ratio: float, phi: float, theta: float
) -> None:
    ps1 = np.array([280.0, 70.0])
    ps2 = ps1 + 120.0 * np.array([math.cos(theta), math.sin(theta)])
    fh1, head = place_head(ps1, theta, aop, dist, a, a * ratio, phi)
    assert float(head.implicit(fh1)) == pytest.approx(1.0, abs=1e-9)
    assert float(angle_of_progression(ps1, ps2, fh1)) == pytest.approx(aop, abs=1e-6)
    q = head.points(2000)
    ang = angle_of_progression(np.broadcast_to(ps1, q.shape), np.broadcast_to(ps2, q.shape), q)
    if ang.max() <= aop + 1e-6:  # the head stays on the PS2 side of PS1 (as the generator keeps)
        np.testing.assert_allclose(far_tangent_point(head, ps1, ps2), fh1, atol=1e-6)


def test_config_validation_and_presets() -> None:
    assert SynthConfig.preset("quick") == SynthConfig()
    assert SynthConfig.preset("full").testing == 501
    with pytest.raises(ValueError, match="unknown size"):
        SynthConfig.preset("huge")
    with pytest.raises(ValueError, match="png_fraction"):
        SynthConfig(png_fraction=1.5)
    with pytest.raises(ValueError, match="test_duplicates"):
        SynthConfig(testing=2, test_duplicates=3)


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = main(["synth", "--out", str(out), "--size", "smoke", "--train", "2", "--val", "1",
               "--test", "2", "--sequences", "1", "--frames", "2", "--references", "1",
               "--duplicates", "0", "--workers", "1", "--no-contact-sheet", "--no-progress"])
    assert rc == 0 and "wrote 8 images" in capsys.readouterr().out
    ds = read_iugc(out, progress=False)
    assert [len(ds.train), len(ds.validation), len(ds.testing), ds.num_frames] == [2, 1, 2, 2]
    assert main(["synth", "--out", str(out), "--test", "1", "--duplicates", "2"]) == 2


def test_resolve_data_root_writes_synthetic_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from iugc_aop.cli import resolve_data_root
    from iugc_aop.synth import labels

    monkeypatch.setitem(labels.PRESETS, "smoke", dict(
        train=2, validation=1, testing=1, sequences=1, frames=2, references=1, test_duplicates=0))
    args = argparse.Namespace(data=None, synthetic_dir=tmp_path / "syn", synthetic_size="smoke",
                              seed=0, no_progress=True)
    root = resolve_data_root(args)
    stamp = (root / "synthetic_truth.json").stat().st_mtime_ns
    assert resolve_data_root(args) == root
    assert (root / "synthetic_truth.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    assert len(read_iugc(root, progress=False).train) == 2
    assert (root / "contact_sheet.png").stat().st_size > 0
    args.data = tmp_path / "real"
    assert resolve_data_root(args) == tmp_path / "real"


def test_only_new_empty_or_own_folders_are_written(tmp_path: Path) -> None:
    assert check_synthetic_folder(tmp_path / "absent") == "new"
    own = write_synthetic_iugc(tmp_path / "own", TINY, seed=1, progress=False).root
    assert check_synthetic_folder(own) == "complete" and not (own / WRITING_NAME).exists()
    # A copy of data without the truth file: refused, nothing touched.
    (own / "synthetic_truth.json").unlink()
    before = {p: p.read_bytes() for p in own.rglob("*") if p.is_file()}
    with pytest.raises(SyntheticFolderError, match=r"holds Testing/, Training/, Validation/ but no synthetic_truth"):
        write_synthetic_iugc(own, TINY, seed=2, progress=False)
    assert {p: p.read_bytes() for p in own.rglob("*") if p.is_file()} == before
    # While the generator writes, its marker is there; a run stopped then is recognised and rewritten.
    (own / WRITING_NAME).write_text("{}")
    assert check_synthetic_folder(own) == "interrupted"
    again = write_synthetic_iugc(own, TINY, seed=2, progress=False)
    truth = load_truth(again.root)
    assert check_synthetic_folder(own) == "complete" and truth is not None and truth["seed"] == 2
    with pytest.raises(SyntheticFolderError, match="is a file"):
        check_synthetic_folder(own / "synthetic_truth.json")


def test_resolve_data_root_refuses_a_folder_of_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from iugc_aop.cli import resolve_data_root

    real = tmp_path / "real"
    (real / "Training" / "Labeled cases").mkdir(parents=True)
    label = real / "Training" / "Labeled cases" / "label.csv"
    label.write_text("Filename,PS1,PS2,FH1,AOP\n1.jpg,\"(1, 2)\",\"(3, 4)\",\"(5, 6)\",90\n")
    args = argparse.Namespace(data=None, synthetic_dir=real, synthetic_size="smoke", seed=0, no_progress=True)
    with pytest.raises(SyntheticFolderError, match="--data on the command line"):
        resolve_data_root(args)
    assert sorted(p.name for p in real.rglob("*")) == ["Labeled cases", "Training", "label.csv"]
    assert "writing synthetic" not in capsys.readouterr().err


def test_drawn_ellipse_keeps_drawn_angle_and_matches_library_geometry() -> None:
    e = DrawnEllipse(300.0, 200.0, 140.0, 110.0, math.radians(-30.0))
    lib = e.ellipse
    assert lib.angle == pytest.approx(math.radians(150.0)) and lib.axes == (140.0, 110.0)
    assert e.as_dict()["angle_deg"] == pytest.approx(-30.0)  # recorded as drawn, not wrapped
    back = DrawnEllipse.from_dict(e.as_dict())
    assert (back.cx, back.cy, back.a, back.b) == (e.cx, e.cy, e.a, e.b)
    assert back.angle == pytest.approx(e.angle, abs=1e-15)
    # The rigid motion of the drawn ellipse moves the library ellipse's points rigidly.
    rot, shift = math.radians(7.0), np.array([3.0, -2.0])
    moved = e.transformed(rot, PIVOT, shift)
    assert moved.angle == pytest.approx(e.angle + rot)
    pts = rigid_transform(lib.points(64), rot, PIVOT, shift)
    np.testing.assert_allclose(moved.ellipse.implicit(pts), 1.0, atol=1e-12)


def test_references_and_duplicates_are_seeded_per_item() -> None:
    config = SynthConfig.preset("smoke")
    refs = sample_references(config, seed=4)
    assert len(refs) == config.references
    more = sample_references(SynthConfig.preset("smoke", references=3), seed=4)
    assert [r.noise_seed for r in more[:2]] == [r.noise_seed for r in refs]
    testing = sample_labels(config, seed=4, splits=("testing",))["testing"]
    dups = sample_duplicates(SynthConfig.preset("smoke", test_duplicates=3), 4, testing)
    assert len({src for src, _ in dups}) == 3
    for src, kp in dups:
        moved = np.abs(kp - testing[src].keypoints)
        assert moved.max() <= 6.0 + 1e-4 and (kp == np.round(kp, 4)).all()
    assert sample_duplicates(SynthConfig.preset("smoke", test_duplicates=0), 4, testing) == []


def _imported_modules(path: Path) -> set[str]:
    """Modules a file imports (absolute imports, anywhere in the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_generator_and_drawing_do_not_import_each_other() -> None:
    pkg = Path(iugc_aop.__file__).parent
    for path in sorted((pkg / "synth").glob("*.py")):
        assert not any(m.startswith("iugc_aop.plotting") for m in _imported_modules(path)), path
    for path in [pkg / "plotting.py", *sorted((pkg / "formats").glob("*.py"))]:
        assert not any(m.startswith("iugc_aop.synth") for m in _imported_modules(path)), path


def test_rewriting_smaller_removes_the_larger_sets_images_and_keeps_other_files(tmp_path: Path) -> None:
    big = SynthConfig(train=3, validation=1, testing=1, sequences=2, frames=2, references=1, test_duplicates=0)
    small = SynthConfig(train=2, validation=1, testing=1, sequences=1, frames=2, references=1, test_duplicates=0)
    write_synthetic_iugc(tmp_path, big, progress=False)
    labelled = tmp_path / "Training" / "Labeled cases"
    (labelled / "notes.txt").write_text("mine")
    sequences_before = read_iugc(tmp_path, check_images=False).sequences
    assert len(sequences_before) == 2 and (labelled / "3.jpg").is_file()
    write_synthetic_iugc(tmp_path, small, progress=False)
    ds = read_iugc(tmp_path, check_images=False)
    assert len(ds.sequences) == 1 and len(ds.train) == 2  # no stale video for pre-training to pick up
    assert not (labelled / "3.jpg").exists() and (labelled / "notes.txt").read_text() == "mine"
