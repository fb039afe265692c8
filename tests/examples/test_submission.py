"""Tests of the challenge submission (export, the challenge interface, evaluation) and the CLI.

A tiny HeatmapUNet (64-px input) is saved in the fine-tuning checkpoint format (with the
library's exact codec, or with the starter codec); no training is needed to check that the
exported folder reproduces the library predictor.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from iugc_aop.cli import main
from iugc_aop.formats.iugc import parse_point
from iugc_aop.landmarks import LANDMARK_NAMES, MEASURES
from iugc_aop.predict import predict_images
from iugc_aop.starter_codec import StarterCodec
from iugc_aop.submission import (
    METADATA_VERSION,
    evaluate_submission,
    export_submission,
    load_submission,
    submission_template,
)
from iugc_aop.submission.export import SubmissionFolderError, check_submission_folder
from sslkeypoint.configs import FinetuneConfig
from sslkeypoint.data import KeypointRecord, list_images
from sslkeypoint.geometry import angle_of_progression
from sslkeypoint.heatmaps import KeypointCodec, codec_to_dict
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.lightning import HeatmapFinetuneModule
from sslkeypoint.metrics import KeypointMetrics

pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::torch.jit.TracerWarning"
)

NAMES = LANDMARK_NAMES


def _config(num_keypoints: int = 3, names: tuple[str, ...] | None = NAMES) -> FinetuneConfig:
    return FinetuneConfig(
        input_size=(64, 64),
        heatmap_size=(16, 16),
        num_keypoints=num_keypoints,
        keypoint_names=names,
        measures=MEASURES if num_keypoints >= 3 else {},
        encoder_kwargs={"widths": (4, 8), "bottleneck_width": 8},
        seed=0,
    )


def _write_checkpoint(
    path: Path, config: FinetuneConfig, seed: int = 0, codec: KeypointCodec | None = None
) -> Path:
    """A checkpoint in the layout run_finetuning writes (``sslkeypoint`` spec + ``state_dict``)."""
    torch.manual_seed(seed)
    module = HeatmapFinetuneModule(config, codec=codec)
    ckpt: dict[str, object] = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)  # what Lightning calls when it saves
    torch.save(ckpt, path)
    return path


def _grey_rgb(h: int, w: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 80 * np.sin(xx / 23.0) * np.cos(yy / 17.0) + rng.normal(0, 10, (h, w))
    grey = np.clip(base, 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("submission")
    ckpt = _write_checkpoint(root / "tiny.ckpt", _config())
    sub = export_submission(ckpt, root / "sub", metadata={"variant": "ssl_unet"})
    # The same weights trained with the starter's codec.
    starter_ckpt = _write_checkpoint(root / "starter.ckpt", _config(), codec=StarterCodec((64, 64), (16, 16)))
    images = root / "images"
    images.mkdir()
    big = _grey_rgb(512, 512, 1)
    big.save(images / "a_512.png")
    big.resize((400, 300), Image.Resampling.BILINEAR).save(images / "b_400x300.png")
    # A colour image (unequal channels: the luma path) and a PNG named .jpg (decode by content).
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (200, 260, 3), dtype=np.uint8)).save(images / "c_colour.png")
    _grey_rgb(512, 512, 3).save(images / "d_png_inside.jpg", format="PNG")
    return {"root": root, "ckpt": ckpt, "sub": sub, "images": images, "starter_ckpt": starter_ckpt}


def test_folder_contents_and_metadata(exported: dict[str, Path]) -> None:
    sub = exported["sub"]
    assert sorted(p.name for p in sub.iterdir()) == ["metadata.json", "model.pt", "model.py"]
    meta = json.loads((sub / "metadata.json").read_text())
    assert meta["input_size"] == [64, 64] and meta["heatmap_size"] == [16, 16]
    assert meta["in_chans"] == 1
    assert meta["keypoint_names"] == list(NAMES) and meta["output_indices"] == [0, 1, 2]
    assert meta["format"] == METADATA_VERSION
    assert meta["refine"] == "dark" and meta["map_back"] == "pixel_centre"
    predictor = KeypointPredictor.from_checkpoint(exported["ckpt"])
    assert meta["codec"] == codec_to_dict(predictor.codec)
    assert meta["codec"]["class"] == "sslkeypoint.heatmaps.HeatmapCodec"
    assert meta["library"] == "sslkeypoint" and meta["library_version"]
    digest = hashlib.sha256(exported["ckpt"].read_bytes()).hexdigest()
    assert meta["source_checkpoint_sha256"] == digest
    assert meta["extra"] == {"variant": "ssl_unet"}
    assert (sub / "model.py").read_text() == submission_template()
    assert meta["files"] == {name: hashlib.sha256((sub / name).read_bytes()).hexdigest()
                             for name in ("model.py", "model.pt")}


def test_model_py_imports_only_torch_numpy_pil_and_stdlib(exported: dict[str, Path]) -> None:
    tree = ast.parse((exported["sub"] / "model.py").read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "model.py must not use relative imports"
            roots.add((node.module or "").split(".")[0])
    third_party = roots - set(sys.stdlib_module_names)
    assert third_party == {"torch", "numpy", "PIL"}
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert "model" in classes


_CHILD = textwrap.dedent(
    """
    import importlib.util, json, sys
    from PIL import Image, ImageOps
    folder, *images = sys.argv[1:]
    spec = importlib.util.spec_from_file_location("model", folder + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    m = module.model()
    m.load(folder)
    out = {}
    for path in images:
        if path.startswith("upright:"):  # as a viewer shows the file: EXIF orientation applied
            pred = m.predict(ImageOps.exif_transpose(Image.open(path[8:])).convert("RGB"))
        else:  # as the challenge gives it
            pred = m.predict(Image.open(path).convert("RGB"))
        out[path] = {"shape": list(pred.shape), "dtype": str(pred.dtype), "values": pred.tolist()}
    assert "sslkeypoint" not in sys.modules, "the submission imported sslkeypoint"
    assert "iugc_aop" not in sys.modules, "the submission imported iugc_aop"
    print(json.dumps(out))
    """
)


def _rotated_photo(path: Path, orientation: int = 6) -> Path:
    """A colour JPEG stored turned, with the EXIF orientation tag that shows it upright (a phone photo)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    _grey_rgb(240, 320, 7).transpose(Image.Transpose.ROTATE_90).save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


def test_fresh_process_matches_library_predictor(exported: dict[str, Path], tmp_path: Path) -> None:
    """The submission and the library read images alike: a PIL image as given (the challenge's
    interface, EXIF tag or not), and a file upright — the library reading the file agrees with the
    submission given the upright image (``ImageOps.exif_transpose``)."""
    rotated = str(_rotated_photo(tmp_path / "e_rotated_exif6.jpg"))
    images = [*sorted(str(p) for p in exported["images"].iterdir()), rotated]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(exported["sub"]), *images, "upright:" + rotated],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=exported["root"],
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    predictor = KeypointPredictor.from_checkpoint(exported["ckpt"])
    for path in images:
        entry = got[path]
        assert entry["shape"] == [6] and entry["dtype"] == "float64"
        values = np.asarray(entry["values"])
        assert np.isfinite(values).all()
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        ref = predictor.predict(rgb).keypoints[0].double().numpy().reshape(-1)
        # Within 0.5 px is the requirement; the same preprocessing and network give ~exact.
        assert np.abs(values - ref).max() < 1e-3, (path, values, ref)
        # Landmarks are in the input image's pixels: inside (or just around) its frame.
        w, h = rgb.size
        assert (values[0::2] > -1).all() and (values[0::2] < w).all()
        assert (values[1::2] > -1).all() and (values[1::2] < h).all()
    # The file as the library reads it (upright, 320 x 240 as shown) = the submission on the upright image.
    upright = np.asarray(got["upright:" + rotated]["values"])
    from_file = predictor.predict(rotated)
    assert from_file.original_sizes[0].tolist() == [240, 320]
    assert np.abs(upright - from_file.keypoints[0].double().numpy().reshape(-1)).max() < 1e-3
    assert np.abs(upright - np.asarray(got[rotated]["values"])).max() > 1.0  # the orientation matters


class _ConstantKeypoints(torch.nn.Module):
    """Stand-in network: fixed input-pixel landmarks, whatever the image (checks the map back)."""

    keypoints: torch.Tensor

    def __init__(self, keypoints: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("keypoints", keypoints)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = images.shape[0]
        return self.keypoints.expand(b, -1, -1) + 0 * images.mean(), torch.ones(b, 3)


def test_map_back_to_input_pixels_golden(tmp_path: Path) -> None:
    """x = (x_in + 0.5) * W / W_in - 0.5 with hand-computed values; output order follows metadata."""
    kp_in = torch.tensor([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]])  # network order FH1, PS1, PS2
    traced = torch.jit.trace(_ConstantKeypoints(kp_in), (torch.rand(1, 1, 64, 64),))
    traced.save(str(tmp_path / "model.pt"))
    (tmp_path / "model.py").write_text(submission_template())
    meta = {"input_size": [64, 64], "in_chans": 1, "output_indices": [1, 2, 0]}
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    sub = load_submission(tmp_path)
    out = sub.predict(_grey_rgb(300, 400, 0))  # H=300, W=400
    # PS1 = (30, 40): x = 30.5 * 6.25 - 0.5 = 190.125, y = 40.5 * 4.6875 - 0.5 = 189.34375;
    # PS2 = (50, 60): 315.125, 283.09375; FH1 = (10, 20): 65.125, 95.59375.
    expected = [190.125, 189.34375, 315.125, 283.09375, 65.125, 95.59375]
    assert out.shape == (6,) and out.dtype == np.float64
    assert np.allclose(out, expected, atol=1e-4)
    # At the network's own size the landmarks come back unchanged.
    assert np.allclose(sub.predict(_grey_rgb(64, 64, 0)), [30, 40, 50, 60, 10, 20], atol=1e-5)


def test_evaluate_submission_matches_library_evaluation(exported: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    records = []
    for i in range(3):
        path = tmp_path / f"case_{i}.jpg"
        _grey_rgb(512, 512, 10 + i).save(path, format="PNG" if i == 1 else "JPEG")
        kp = np.array([[300.0, 80.0], [180.0, 100.0], [320.0, 250.0]]) + rng.normal(0, 5, (3, 2))
        records.append(KeypointRecord(path, kp))
    # A photo stored turned with an EXIF orientation: labelled (and read by the library) upright.
    records.append(KeypointRecord(_rotated_photo(tmp_path / "case_3.jpg"), np.array([[250.0, 60.0], [120.0, 80.0],
                                                                                     [260.0, 200.0]])))
    result = evaluate_submission(exported["sub"], records, progress=False)
    for key in ("mre_px", "aop_mae_deg", "per_landmark_px", "count", "predictions", "ms_per_image"):
        assert key in result
    assert len(result["predictions"]) == 4

    predictor = KeypointPredictor.from_checkpoint(exported["ckpt"])
    ev = KeypointMetrics(keypoint_names=NAMES, measures=MEASURES)
    for rec, pred in zip(records, result["predictions"]):
        lib = predictor.predict(rec.path).keypoints[0].double()  # the library reading the file
        assert np.allclose(pred["keypoints"], lib.numpy(), atol=1e-4)
        aop = float(angle_of_progression(lib[0], lib[1], lib[2]))
        assert pred["aop"] == pytest.approx(aop, abs=1e-3)
        ev.update(lib[None], torch.as_tensor(rec.keypoints)[None])
    expected = ev.compute()
    assert result["mre_px"] == pytest.approx(expected["mre_px"], abs=1e-4)
    assert result["aop_mae_deg"] == pytest.approx(expected["aop_mae_deg"], abs=1e-4)


def test_evaluate_submission_rejects_bad_records(exported: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    _grey_rgb(32, 32, 0).save(path)
    with pytest.raises(ValueError, match=r"record 0 .*x\.png.*shape \(3, 2\); got None"):
        evaluate_submission(exported["sub"], [KeypointRecord(path, None)], progress=False)


def test_starter_codec_export(exported: dict[str, Path], tmp_path: Path) -> None:
    """A checkpoint trained with StarterCodec exports its codec and the starter's map back."""
    sub = export_submission(exported["starter_ckpt"], tmp_path / "starter")
    meta = json.loads((sub / "metadata.json").read_text())
    assert meta["codec"]["class"] == "iugc_aop.starter_codec.StarterCodec"
    assert meta["codec"]["kwargs"] == {"input_size": [64, 64], "heatmap_size": [16, 16], "sigma": 2.0}
    assert meta["map_back"] == "scale" and meta["refine"] == "none"
    model = load_submission(sub)
    out = model.predict(_grey_rgb(64, 64, 7)).reshape(3, 2)
    # 64-px image = network input: landmarks on the starter's stride-4 grid (x = 4 j).
    assert np.allclose(out, np.round(out / 4) * 4, atol=1e-4)
    # 400x300 image: the starter's map x = x_in * 400 / 64, y = y_in * 300 / 64, so the answers
    # lie on the grid of 4 * 6.25 = 25 px in x and 4 * 4.6875 = 18.75 px in y.
    big = model.predict(_grey_rgb(300, 400, 7)).reshape(3, 2)
    assert np.allclose(big[:, 0], np.round(big[:, 0] / 25) * 25, atol=1e-3)
    assert np.allclose(big[:, 1], np.round(big[:, 1] / 18.75) * 18.75, atol=1e-3)
    # The library predictor rebuilt from the same checkpoint gives the same answers.
    ref = KeypointPredictor.from_checkpoint(exported["starter_ckpt"]).predict(_grey_rgb(300, 400, 7))
    assert np.allclose(big, ref.keypoints[0].double().numpy(), atol=1e-4)
    # The starter codec has no refinement to override.
    with pytest.raises(ValueError, match="StarterCodec has no 'refine'"):
        export_submission(exported["starter_ckpt"], tmp_path / "bad", refine="dark")


def test_export_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.ckpt"):
        export_submission(tmp_path / "nope.ckpt", tmp_path / "out")
    two = _write_checkpoint(tmp_path / "two.ckpt", _config(2, ("A", "B")))
    with pytest.raises(ValueError, match=r"2 landmarks named \('A', 'B'\)"):
        export_submission(two, tmp_path / "out2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no model\.py"):
        load_submission(tmp_path / "empty")


def test_export_writes_only_where_it_may(exported: dict[str, Path], tmp_path: Path) -> None:
    ckpt = exported["ckpt"]
    # A folder this exporter wrote is refreshed; the user's other files stay and are not listed.
    sub = export_submission(ckpt, tmp_path / "sub", check=False)
    (sub / "README.txt").write_text("how I trained it")
    assert export_submission(ckpt, sub, check=False) == sub
    assert (sub / "README.txt").read_text() == "how I trained it"
    assert sorted(json.loads((sub / "metadata.json").read_text())["files"]) == ["model.pt", "model.py"]
    # An exported model.py edited since: refused, the edit kept; force replaces it.
    edited = submission_template() + "\n# my change\n"
    (sub / "model.py").write_text(edited)
    with pytest.raises(SubmissionFolderError, match=r"model\.py in .* changed after it was exported"):
        export_submission(ckpt, sub, check=False)
    assert (sub / "model.py").read_text() == edited
    export_submission(ckpt, sub, check=False, force=True)
    assert (sub / "model.py").read_text() == submission_template()
    # A folder of format 2 (no "files") is the exporter's when its model.py is the template.
    meta = json.loads((sub / "metadata.json").read_text())
    del meta["files"]
    (sub / "metadata.json").write_text(json.dumps(meta))
    export_submission(ckpt, sub, check=False)
    # A folder it did not write: refused whole, whatever the file names.
    for name in ("model.py", "notes.txt"):
        other = tmp_path / f"other_{name}"
        other.mkdir()
        (other / name).write_text("mine")
        with pytest.raises(SubmissionFolderError, match=f"holds {name} but is not a submission folder"):
            export_submission(ckpt, other, check=False)
        assert [p.name for p in other.iterdir()] == [name] and (other / name).read_text() == "mine"
    check_submission_folder(tmp_path / "new")  # absent: fine
    with pytest.raises(SubmissionFolderError, match="is a file"):
        export_submission(ckpt, exported["ckpt"], check=False)


def test_predict_images_skips_and_lists_unreadable_files(exported: dict[str, Path], tmp_path: Path) -> None:
    good = sorted(exported["images"].iterdir())[:2]
    broken = tmp_path / "broken.png"
    broken.write_bytes(good[0].read_bytes()[:100])
    result = predict_images(exported["ckpt"], [good[0], broken, tmp_path / "gone.jpg", good[1]], tmp_path / "out",
                            overlays=False, batch_size=2, progress=False)
    assert result.predicted == 2 and result.total == 4
    assert [name for name, _ in result.skipped] == ["broken.png", "gone.jpg"]
    assert result.skipped[0][1].startswith("cannot decode: ") and result.skipped[1][1] == "file not found"
    with open(result.csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["Filename"] for r in rows] == [good[0].name, good[1].name]
    predictor = KeypointPredictor.from_checkpoint(exported["ckpt"])
    for row, path in zip(rows, good):  # the same answers as without the bad files in between
        ref = predictor.predict(path).keypoints[0]
        assert np.allclose([parse_point(row[c]) for c in NAMES], ref.numpy(), atol=1e-3)
    with open(result.skipped_path, newline="") as f:
        assert list(csv.reader(f)) == [["Filename", "Reason"], *map(list, result.skipped)]


@pytest.mark.parametrize("command", ["predict", "export-submission"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--checkpoint" in text and "--out" in text


def test_cli_predict_writes_iugc_csv_and_overlays(exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "pred"
    status = main(["predict", "--checkpoint", str(exported["ckpt"]), "--input", str(exported["images"]),
                   "--out", str(out), "--no-progress"])
    assert status == 0
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["Filename", "PS1", "PS2", "FH1", "AOP"]
    names = [p.name for p in list_images(exported["images"])]
    assert [r["Filename"] for r in rows] == names
    predictor = KeypointPredictor.from_checkpoint(exported["ckpt"])
    for row in rows:
        pts = [parse_point(row[c], where=f"row {row['Filename']}, column {c}") for c in NAMES]
        ref = predictor.predict(exported["images"] / row["Filename"]).keypoints[0]
        assert np.allclose(pts, ref.numpy(), atol=1e-3)
        aop = float(angle_of_progression(*(torch.tensor(p, dtype=torch.float64) for p in pts)))
        assert math.isclose(float(row["AOP"]), aop, abs_tol=1e-2)
        assert (out / "overlays" / (Path(row["Filename"]).stem + ".png")).is_file()
    # One image as --input works too.
    status = main(["predict", "--checkpoint", str(exported["ckpt"]), "--input",
                   str(exported["images"] / names[0]), "--out", str(tmp_path / "one"), "--no-progress",
                   "--no-overlays"])
    assert status == 0
    assert len((tmp_path / "one" / "predictions.csv").read_text().strip().splitlines()) == 2


def test_cli_export_submission_and_errors(exported: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-submission", "--checkpoint", str(exported["ckpt"]), "--out",
                 str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "model.pt").is_file()
    assert main(["export-submission", "--checkpoint", str(tmp_path / "missing.ckpt"), "--out",
                 str(tmp_path / "t")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(exported["ckpt"]), "--input",
                 str(tmp_path / "no_such_dir"), "--out", str(tmp_path / "u")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_starter_codec_predict_matches_its_submission(exported: dict[str, Path], tmp_path: Path) -> None:
    """``predict`` and ``export-submission`` on a starter-codec checkpoint give the same landmarks."""
    args = ["--checkpoint", str(exported["starter_ckpt"])]
    assert main(["export-submission", *args, "--out", str(tmp_path / "sub")]) == 0
    assert main(["predict", *args, "--input", str(exported["images"]), "--out", str(tmp_path / "pred"),
                 "--no-progress", "--no-overlays"]) == 0
    model = load_submission(tmp_path / "sub")
    with open(tmp_path / "pred" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        with Image.open(exported["images"] / row["Filename"]) as im:
            expected = model.predict(im.convert("RGB")).reshape(3, 2)
        got = np.array([parse_point(row[c]) for c in NAMES])
        assert np.allclose(got, expected, atol=1e-3), row["Filename"]


def test_cli_refine_for_a_codec_without_refinement_is_an_error(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--checkpoint", str(exported["starter_ckpt"]), "--refine", "dark"]
    assert main(["export-submission", *args, "--out", str(tmp_path / "sub")]) == 2
    assert "no 'refine' setting" in capsys.readouterr().err
    assert main(["predict", *args, "--input", str(exported["images"]), "--out", str(tmp_path / "p"),
                 "--no-progress"]) == 2
    assert "no 'refine' setting" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "export-submission"])
def test_cli_rejects_the_removed_codec_flag(
    command: str, exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The checkpoint knows its codec: ``--codec`` is an unknown option, not silently ignored."""
    args = [command, "--checkpoint", str(exported["ckpt"]), "--codec", "starter", "--out", str(tmp_path / "x")]
    if command == "predict":
        args += ["--input", str(exported["images"])]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "unrecognized arguments: --codec" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_predict_recursive_and_refine(exported: dict[str, Path], tmp_path: Path) -> None:
    """``--recursive`` reads sub-folders (labels relative to --input); ``--refine`` changes the decode."""
    folder = tmp_path / "nested"
    (folder / "sub").mkdir(parents=True)
    _grey_rgb(96, 80, 4).save(folder / "top.png")
    _grey_rgb(70, 90, 5).save(folder / "sub" / "deep.png")
    base = ["predict", "--checkpoint", str(exported["ckpt"]), "--input", str(folder), "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "flat"), "--no-overlays"]) == 0
    assert main([*base, "--out", str(tmp_path / "rec"), "--recursive", "--batch-size", "1"]) == 0
    assert main([*base, "--out", str(tmp_path / "none"), "--recursive", "--refine", "none",
                 "--no-overlays"]) == 0

    def rows(name: str) -> list[dict[str, str]]:
        with open(tmp_path / name / "predictions.csv", newline="") as f:
            return list(csv.DictReader(f))

    assert [r["Filename"] for r in rows("flat")] == ["top.png"]
    assert [r["Filename"] for r in rows("rec")] == [str(Path("sub") / "deep.png"), "top.png"]
    assert sorted(p.name for p in (tmp_path / "rec" / "overlays").iterdir()) == ["sub__deep.png", "top.png"]
    predictor = KeypointPredictor.from_checkpoint(exported["ckpt"], refine="none")
    for row in rows("none"):
        ref = predictor.predict(folder / row["Filename"]).keypoints[0]
        pts = [parse_point(row[c]) for c in NAMES]
        assert np.allclose(pts, ref.numpy(), atol=1e-3)
