"""Bad inputs to the IUGC example and the data pipeline under it: folders that are not ours,
unreadable images, malformed label files, odd image modes given to the submission.

Every case is small: hand-made folders of a few 64-px images, or a synthetic data set of seven
images; command-line cases call :func:`iugc_aop.cli.main` in this process.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from iugc_aop.cli import main
from iugc_aop.formats import IUGCFormatError, read_iugc
from iugc_aop.submission import export_submission, load_submission, submission_template
from iugc_aop.submission.export import SubmissionFolderError
from iugc_aop.synth import SynthConfig, SyntheticFolderError, labels, write_synthetic_iugc
from iugc_aop.synth.write import WRITING_NAME
from sslkeypoint.data import KeypointDataset, read_image
from sslkeypoint.lightning import PretrainDataModule
from tests.bad_inputs.cases import Case, ids, run_case

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")

#: Seven 512-px images (all JPEG), the smallest data set in the full layout.
TINY: dict[str, Any] = {"train": 2, "validation": 1, "testing": 1, "sequences": 1, "frames": 3,
                        "references": 1, "test_duplicates": 0, "png_fraction": 0.0}
FRAME = Path("Training") / "Unlabeled cases" / "video_1" / "frame_2.jpg"


# ------------------------------------------------------------------------------------------------
# Small builders
# ------------------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``python -m iugc_aop ARGV`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def _synthetic(root: Path, seed: int = 5) -> Path:
    write_synthetic_iugc(root, SynthConfig(**TINY), seed=seed, progress=False)
    return root


def _real_copy(tmp: Path) -> Path:
    """A folder in the IUGC layout that the generator did not write (no synthetic_truth.json)."""
    root = _synthetic(tmp / "real")
    (root / "synthetic_truth.json").unlink()
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _gray(value: int, size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(value + rng.integers(-20, 21, size=(size, size)), 0, 255).astype(np.uint8)


def _labelled(tmp: Path, header: list[str] | None = None, rows: list[list[str]] | None = None,
              *, bom: bool = False, newline: str = "\n") -> Path:
    """``Training/Labeled cases`` with 1.jpg (JPEG) and 2.jpg (PNG inside) and their label.csv."""
    root = tmp / "iugc"
    folder = root / "Training" / "Labeled cases"
    folder.mkdir(parents=True)
    Image.fromarray(_gray(90)).convert("RGB").save(folder / "1.jpg", "JPEG")
    Image.fromarray(_gray(120, seed=1)).convert("RGB").save(folder / "2.jpg", "PNG")
    header = header or ["Filename", "PS1", "PS2", "FH1", "AOP"]
    rows = rows or [["1.jpg", "(40.0, 10.0)", "(20.0, 14.0)", "(45.0, 40.0)", "87.7"],
                    ["2.jpg", "(42.5, 12.0)", "(18.0, 15.5)", "(50.0, 36.0)", "73.1"]]
    text = io.StringIO()
    csv.writer(text, lineterminator=newline).writerows([header, *rows])
    (folder / "label.csv").write_bytes(("\ufeff" if bom else "").encode() + text.getvalue().encode())
    return root


def _read_train(root: Path) -> Any:
    return read_iugc(root, parts=("train",), progress=False)


@functools.cache
def _checkpoint() -> Path:
    """A tiny fine-tuning checkpoint (64-px input, PS1/PS2/FH1), written once per session."""
    from tests.examples.test_submission import _config, _write_checkpoint

    return _write_checkpoint(Path(tempfile.mkdtemp()) / "tiny.ckpt", _config())


class _MeanNet(torch.nn.Module):
    """Landmarks that move with the image's mean brightness: ``(x, y) = 64 * mean * (1, 2, 3)``."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = images.mean(dim=(1, 2, 3))[:, None, None]
        steps = torch.arange(1.0, 4.0)[None, :, None].expand(1, 3, 2)
        return 64.0 * mean * steps, torch.ones(images.shape[0], 3)


@functools.cache
def _brightness_submission() -> Any:
    """A submission folder around :class:`_MeanNet` (any wrong intensity scaling shows), loaded."""
    folder = Path(tempfile.mkdtemp())
    torch.jit.trace(_MeanNet(), (torch.rand(1, 1, 64, 64),)).save(str(folder / "model.pt"))
    (folder / "model.py").write_text(submission_template())
    (folder / "metadata.json").write_text(json.dumps({"input_size": [64, 64], "in_chans": 1}))
    return load_submission(folder)


_L_IMAGE = Image.fromarray(_gray(100, size=64, seed=3))


def _submission_on(image: Image.Image) -> np.ndarray:
    return np.asarray(_brightness_submission().predict(image))


def _same_as_8_bit(make: Callable[[Image.Image], Image.Image]) -> Callable[[Path], Any]:
    return lambda tmp: (_submission_on(make(_L_IMAGE)), _submission_on(_L_IMAGE))


def _equal(pair: tuple[np.ndarray, np.ndarray], tmp: Path) -> None:
    got, expected = pair
    assert np.allclose(got, expected, atol=1e-4), (got, expected)


# ------------------------------------------------------------------------------------------------
# Synthetic data folders
# ------------------------------------------------------------------------------------------------


def select_on_real_copy(tmp: Path) -> dict[str, Any]:
    real = _real_copy(tmp)
    before = _files(real)
    with pytest.MonkeyPatch.context() as mp:  # "smoke" as small as TINY, should anything be written
        mp.setitem(labels.PRESETS, "smoke", {k: v for k, v in TINY.items() if k != "png_fraction"})
        status, _, err = _cli(["select", "--synthetic-dir", str(real), "--synthetic-size", "smoke",
                               "--work", str(tmp / "W"), "--no-progress"])
    return {"status": status, "err": err, "root": real, "before": before, "after": _files(real)}


def refused_untouched(result: dict[str, Any], tmp: Path) -> None:
    assert result["status"] == 2, result["err"]
    assert result["after"] == result["before"]  # label.csv, 1.jpg, ... byte for byte; nothing added
    assert str(result["root"]) in result["err"] and "no synthetic_truth.json" in result["err"]


def synth_into_user_folder(tmp: Path) -> dict[str, Any]:
    root = tmp / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("my notes")
    (root / "label.csv").write_text("Filename,PS1\n")
    before = _files(root)
    status, _, err = _cli(["synth", "--out", str(root), "--size", "smoke", "--train", "1", "--val", "1",
                           "--test", "1", "--sequences", "1", "--frames", "2", "--references", "1",
                           "--duplicates", "0", "--no-contact-sheet", "--no-progress"])
    return {"status": status, "err": err, "root": root, "before": before, "after": _files(root)}


def write_into_non_empty(tmp: Path) -> None:
    (tmp / "notes.txt").write_text("x")
    write_synthetic_iugc(tmp, SynthConfig(**TINY), progress=False)


def write_into_a_file(tmp: Path) -> None:
    (tmp / "data").write_text("x")
    write_synthetic_iugc(tmp / "data", SynthConfig(**TINY), progress=False)


def write_into_empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return _synthetic(tmp / "empty")


def complete_synthetic(root: Path, tmp: Path) -> None:
    assert (root / "synthetic_truth.json").is_file() and not (root / WRITING_NAME).exists()
    assert len(_read_train(root).train) == TINY["train"]


def rewrite_interrupted(tmp: Path) -> Path:
    root = _synthetic(tmp / "syn")
    # A run stopped half-way: the truth file was removed first, the writing marker is still there.
    (root / "synthetic_truth.json").unlink()
    (root / WRITING_NAME).write_text("{}")
    return _synthetic(root, seed=6)


def rewrite_other_seed(tmp: Path) -> Path:
    root = _synthetic(tmp / "syn", seed=5)
    _synthetic(root, seed=7)
    assert json.loads((root / "synthetic_truth.json").read_text())["seed"] == 7
    return root


# ------------------------------------------------------------------------------------------------
# Submission folders
# ------------------------------------------------------------------------------------------------


def _export_cli(out: Path, *extra: str) -> tuple[int, str, str]:
    return _cli(["export-submission", "--checkpoint", str(_checkpoint()), "--out", str(out), "--no-check",
                 *extra])


def export_over_user_model(tmp: Path) -> dict[str, Any]:
    out = tmp / "mine"
    out.mkdir()
    (out / "model.py").write_text("# my own model\n")
    (out / "notes.txt").write_text("x")
    before = _files(out)
    status, _, err = _export_cli(out)
    return {"status": status, "err": err, "before": before, "after": _files(out)}


def refused_user_model(result: dict[str, Any], tmp: Path) -> None:
    assert result["status"] == 2
    assert result["after"] == result["before"]
    assert "not a submission folder" in result["err"] and "--force" in result["err"]
    assert "model.py" in result["err"]


def export_twice(tmp: Path) -> tuple[int, str]:
    assert _export_cli(tmp / "sub")[0] == 0
    status, out, _ = _export_cli(tmp / "sub")
    return status, out


def export_force_among_other_files(tmp: Path) -> tuple[int, str]:
    out = tmp / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    (out / "model.py").write_text("# old\n")
    status, text, _ = _export_cli(out, "--force")
    return status, text


def lists_only_submission_files(result: tuple[int, str], tmp: Path) -> None:
    status, text = result
    assert status == 0
    assert "(metadata.json, model.pt, model.py)" in text and "notes.txt" not in text
    folder = next(p.parent for p in tmp.rglob("metadata.json"))
    meta = json.loads((folder / "metadata.json").read_text())
    assert sorted(meta["files"]) == ["model.pt", "model.py"]
    if (folder / "notes.txt").exists():
        assert (folder / "notes.txt").read_text() == "keep me"


def export_after_editing_model_py(tmp: Path) -> None:
    sub = export_submission(_checkpoint(), tmp / "sub", check=False)
    (sub / "model.py").write_text(submission_template() + "\n# tuned threshold\n")
    export_submission(_checkpoint(), sub, check=False)


# ------------------------------------------------------------------------------------------------
# Unreadable frames: inspect --strict and pre-training
# ------------------------------------------------------------------------------------------------


def inspect_strict(damage: Callable[[Path], Any]) -> Callable[[Path], tuple[int, str]]:
    def run(tmp: Path) -> tuple[int, str]:
        root = _synthetic(tmp / "d")
        damage(root / FRAME)
        status, out, _ = _cli(["inspect", str(root), "--strict", "--no-progress"])
        return status, out

    return run


def reports_frame(reason: str) -> Callable[[tuple[int, str], Path], None]:
    def check(result: tuple[int, str], tmp: Path) -> None:
        status, out = result
        assert status == 1
        line = next(ln for ln in out.splitlines() if "unreadable_image" in ln)
        assert "frame_2.jpg" in line and reason in line, line

    return check


def corrupt_labelled_image(tmp: Path) -> Any:
    root = _labelled(tmp)
    (root / "Training" / "Labeled cases" / "1.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    return _read_train(root)


def reports_unreadable_labelled(ds: Any, tmp: Path) -> None:
    bad = [p for p in ds.problems if p.kind == "unreadable_image"]
    assert len(bad) == 1 and bad[0].path.name == "1.jpg" and bad[0].severity == "error"


def pretrain_with_truncated_frame(tmp: Path) -> Any:
    from sslkeypoint.configs import PretrainConfig, TrainerConfig
    from sslkeypoint.methods import MoCoV2Method
    from sslkeypoint.recipes import run_pretraining

    folder = tmp / "frames"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(_gray(60 + 30 * i, size=32, seed=i)).save(folder / f"f{i}.jpg", "JPEG")
    _truncate(folder / "f2.jpg")
    config = PretrainConfig.stage1(image_size=(32, 32), encoder_kwargs={"widths": (4, 8), "bottleneck_width": 8},
                                   batch_size=2, method=MoCoV2Method(projection_dim=8, hidden_dim=8, queue_size=2), max_epochs=1)
    with pytest.warns(UserWarning, match=r"pre-training skips .*f2\.jpg: unreadable image"):
        return run_pretraining(config, images=folder, out_dir=tmp / "run", progress=False,
                               trainer=TrainerConfig(accelerator="cpu", devices=1, log_every_n_steps=1))


def counted_frame(result: Any, tmp: Path) -> None:
    drops = result.module.drops
    assert result.global_step == 2  # both batches of 2 trained, the one with f2.jpg filled back up
    assert drops.dropped == 1 and drops.reasons == {"unreadable image": 1}
    (path, why), = drops.examples.items()
    assert path.endswith("f2.jpg") and "truncated" in why.lower()


def stage2_batches_with_truncated_frame(tmp: Path) -> list[dict[str, Any]]:
    frames = []
    for t in range(4):
        frames.append(tmp / f"t{t}.png")
        Image.fromarray(_gray(50 + 40 * t, size=16, seed=t)).save(frames[-1])
    _truncate(frames[3])
    dm = PretrainDataModule(sequences=[frames], image_size=(8, 8), batch_size=3, delta=(1, 1))
    return list(dm.train_dataloader())


def pair_with_bad_frame_dropped(batches: list[dict[str, Any]], tmp: Path) -> None:
    (batch,) = batches
    assert batch["num_samples"] == 3 and batch["image"].shape == batch["partner"].shape == (2, 1, 8, 8)
    ((path, reason, detail),) = batch["dropped"]
    assert path.endswith("t3.png") and reason == "unreadable image" and "t3.png" in detail


# ------------------------------------------------------------------------------------------------
# predict
# ------------------------------------------------------------------------------------------------


def _predict(tmp: Path, bad: dict[str, bytes], good: int = 2) -> tuple[int, str, Path]:
    folder = tmp / "images"
    folder.mkdir()
    for i in range(good):
        Image.fromarray(_gray(80 + 40 * i, size=48, seed=i)).save(folder / f"good{i}.png")
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    status, _, err = _cli(["predict", "--checkpoint", str(_checkpoint()), "--input", str(folder),
                           "--out", str(tmp / "pred"), "--no-progress", "--no-overlays"])
    return status, err, tmp / "pred"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def predicted_and_listed(bad_name: str, reason: str) -> Callable[[tuple[int, str, Path], Path], None]:
    def check(result: tuple[int, str, Path], tmp: Path) -> None:
        status, err, out = result
        assert status == 0
        assert [r["Filename"] for r in _rows(out / "predictions.csv")] == ["good0.png", "good1.png"]
        (skipped,) = _rows(out / "skipped.csv")
        assert skipped["Filename"] == bad_name and reason in skipped["Reason"]
        assert f"{bad_name}: " in err and "skipped 1 of 3" in err

    return check


def nothing_readable(result: tuple[int, str, Path], tmp: Path) -> None:
    status, err, out = result
    assert status == 1 and "none of the 2 image(s) could be read" in err
    assert _rows(out / "predictions.csv") == []
    assert [r["Filename"] for r in _rows(out / "skipped.csv")] == ["a.jpg", "b.png"]


# ------------------------------------------------------------------------------------------------
# Image modes (the submission's model.py runs without the library; read_image is the library's)
# ------------------------------------------------------------------------------------------------


def _float_01(img: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(img, np.float32) / 255.0, mode="F")


def _sixteen_bit(img: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(img, np.uint16) * 257)  # mode I;16, same grey levels


def _thirty_two_bit(img: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(img, np.int32) * 257, mode="I")


def submission_on_negative_floats(tmp: Path) -> None:
    _submission_on(Image.fromarray(np.asarray(_L_IMAGE, np.float32) - 128.0, mode="F"))


def read_image_float_255(tmp: Path) -> tuple[torch.Tensor, torch.Tensor]:
    return read_image(_L_IMAGE.convert("F")), read_image(_L_IMAGE)


def tensors_equal(pair: tuple[torch.Tensor, torch.Tensor], tmp: Path) -> None:
    assert torch.equal(*pair)


def read_image_float_above_255(tmp: Path) -> None:
    read_image(Image.fromarray(np.full((4, 4), 300.0, np.float32), mode="F"))


# ------------------------------------------------------------------------------------------------
# Label files and labelled images
# ------------------------------------------------------------------------------------------------


def reads_two(ds: Any, tmp: Path) -> None:
    assert [r.meta["filename"] for r in ds.train] == ["1.jpg", "2.jpg"]
    assert ds.train[1].keypoints.tolist() == [[42.5, 12.0], [18.0, 15.5], [50.0, 36.0]]


def png_named_jpg(tmp: Path) -> Any:
    return _read_train(_labelled(tmp))


def decoded_by_content(ds: Any, tmp: Path) -> None:
    assert ds.report["formats"] == {"JPEG": 1, "PNG": 1}
    assert not [p for p in ds.problems if p.severity == "error"]


def zero_byte_labelled_image(tmp: Path) -> Any:
    root = _labelled(tmp)
    (root / "Training" / "Labeled cases" / "2.jpg").write_bytes(b"")
    ds = _read_train(root)
    dataset = KeypointDataset(ds.train, input_size=32)
    return ds, [dataset.check(i) for i in range(len(dataset))]


def skipped_and_counted(result: Any, tmp: Path) -> None:
    ds, markers = result
    assert [p.path.name for p in ds.problems if p.kind == "unreadable_image"] == ["2.jpg"]
    assert markers[0] is None and markers[1].reason == "unreadable image"


def missing_labelled_image(tmp: Path) -> Any:
    root = _labelled(tmp)
    (root / "Training" / "Labeled cases" / "1.jpg").unlink()
    return _read_train(root)


def dropped_with_its_row(ds: Any, tmp: Path) -> None:
    assert [r.meta["filename"] for r in ds.train] == ["2.jpg"]
    (problem,) = [p for p in ds.problems if p.kind == "missing_image"]
    assert "'1.jpg' (data row 1)" in problem.message and problem.severity == "error"


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------

CASES: list[Case] = [
    # Folders the project did not create are never written into.
    Case("select --synthetic-dir on a copy of real IUGC data", select_on_real_copy, check=refused_untouched),
    Case("synth --out into a folder of the user's files", synth_into_user_folder, check=refused_untouched),
    Case("synthetic data into a folder holding notes.txt", write_into_non_empty, SyntheticFolderError,
         match="holds notes.txt but no synthetic_truth.json"),
    Case("synthetic data into a path that is a file", write_into_a_file, SyntheticFolderError,
         match="is a file, not a folder"),
    Case("synthetic data into an empty folder", write_into_empty, check=complete_synthetic),
    Case("synthetic data after an interrupted run", rewrite_interrupted, check=complete_synthetic),
    Case("synthetic data again with another seed", rewrite_other_seed, check=complete_synthetic),
    Case("export-submission --out a folder with the user's model.py", export_over_user_model,
         check=refused_user_model),
    Case("export-submission twice into the same folder", export_twice, check=lists_only_submission_files),
    Case("export-submission --force into a folder with other files", export_force_among_other_files,
         check=lists_only_submission_files),
    Case("export again after editing the exported model.py", export_after_editing_model_py,
         SubmissionFolderError, match="model.py in"),
    # Unreadable frames are found by inspect --strict and skipped by pre-training.
    Case("inspect --strict with a truncated unlabelled frame", inspect_strict(_truncate),
         check=reports_frame("truncated")),
    Case("inspect --strict with a zero-byte unlabelled frame", inspect_strict(lambda p: p.write_bytes(b"")),
         check=reports_frame("the file is empty (0 bytes)")),
    Case("inspect a corrupt labelled image", corrupt_labelled_image, check=reports_unreadable_labelled),
    Case("pre-training on images with a truncated frame", pretrain_with_truncated_frame, check=counted_frame),
    Case("stage-2 pairs with a truncated frame", stage2_batches_with_truncated_frame,
         check=pair_with_bad_frame_dropped),
    # predict: good images predicted, bad ones listed.
    Case("predict a folder with one corrupt image", lambda tmp: _predict(tmp, {"bad.jpg": b"\xff\xd8\xffjunk"}),
         check=predicted_and_listed("bad.jpg", "cannot decode")),
    Case("predict a folder with a zero-byte image", lambda tmp: _predict(tmp, {"empty.png": b""}),
         check=predicted_and_listed("empty.png", "the file is empty (0 bytes)")),
    Case("predict a folder where no image can be read",
         lambda tmp: _predict(tmp, {"a.jpg": b"", "b.png": b"\x89PNG broken"}, good=0), check=nothing_readable),
    # Odd image modes through the submission's model.py.
    Case("submission on a mode-F image with 0-255 values", _same_as_8_bit(lambda im: im.convert("F")),
         check=_equal),
    Case("submission on a mode-F image with 0-1 values", _same_as_8_bit(_float_01), check=_equal),
    Case("submission on a mode-F image with negative values", submission_on_negative_floats, ValueError,
         match="values in [0, 1] or [0, 255]; it holds [-"),
    Case("submission on a 16-bit image (I;16)", _same_as_8_bit(_sixteen_bit), check=_equal),
    Case("submission on a 32-bit integer image (I)", _same_as_8_bit(_thirty_two_bit), check=_equal),
    Case("submission on an LA image", _same_as_8_bit(lambda im: im.convert("LA")), check=_equal),
    Case("submission on an RGBA image", _same_as_8_bit(lambda im: im.convert("RGBA")), check=_equal),
    Case("submission on a palette (P) image", _same_as_8_bit(lambda im: im.convert("P")), check=_equal),
    Case("read_image on a mode-F image with 0-255 values", read_image_float_255, check=tensors_equal),
    Case("read_image on a mode-F image above 255", read_image_float_above_255, ValueError,
         match="mode F) image must hold values in [0, 1] or [0, 255]; it holds [300, 300]"),
    # Label files as people save them, and what is wrong with them.
    Case("label.csv with a byte-order mark", lambda tmp: _read_train(_labelled(tmp, bom=True)), check=reads_two),
    Case("label.csv with CRLF line ends", lambda tmp: _read_train(_labelled(tmp, newline="\r\n")),
         check=reads_two),
    Case("label.csv with extra columns",
         lambda tmp: _read_train(_labelled(
             tmp, ["Filename", "PS1", "PS2", "FH1", "AOP", "Notes"],
             [["1.jpg", "(40.0, 10.0)", "(20.0, 14.0)", "(45.0, 40.0)", "87.7", "ok"],
              ["2.jpg", "(42.5, 12.0)", "(18.0, 15.5)", "(50.0, 36.0)", "73.1", "blurry"]])),
         check=reads_two),
    Case("label.csv without the FH1 column",
         lambda tmp: _read_train(_labelled(tmp, ["Filename", "PS1", "PS2", "AOP"],
                                           [["1.jpg", "(40.0, 10.0)", "(20.0, 14.0)", "87.7"]])),
         IUGCFormatError, match="label.csv: missing column(s) ['FH1']"),
    Case("label.csv with a word for a coordinate",
         lambda tmp: _read_train(_labelled(tmp, rows=[
             ["1.jpg", "(40.0, 10.0)", "(20.0, 14.0)", "(45.0, 40.0)", "87.7"],
             ["2.jpg", "(42.5, twelve)", "(18.0, 15.5)", "(50.0, 36.0)", "73.1"]])),
         IUGCFormatError, match="label.csv: data row 2 (line 3), column 'PS1'"),
    Case("a PNG named .jpg among the labelled images", png_named_jpg, check=decoded_by_content),
    Case("a zero-byte labelled image", zero_byte_labelled_image, check=skipped_and_counted),
    Case("a labelled image that is missing", missing_labelled_image, check=dropped_with_its_row),
]


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_case(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
