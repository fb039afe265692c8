"""Tests of sslkeypoint.inference: input handling, original-pixel mapping, measures, checkpoints."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from sslkeypoint.data import read_image, resize_image
from sslkeypoint.geometry import angle_of_progression
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.inference import SPEC_KEY, KeypointDecoder, KeypointPredictor, predictor_spec
from sslkeypoint.measures import AngleMeasure
from sslkeypoint.models import build_heatmap_model
from sslkeypoint.weights import WeightFileError, save_state_dict

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")

INPUT = (32, 32)
CODEC = HeatmapCodec(INPUT, (16, 16), sigma=1.0)
# PS1, PS2, FH1 in input pixels. PS1->PS2 = (-15, 4), PS1->FH1 = (4, 19).
KP_INPUT = torch.tensor([[20.0, 6.0], [5.0, 10.0], [24.0, 25.0]])
AOP = {"aop": AngleMeasure(vertex=0, first=1, second=2)}


class FixedHeatmaps(nn.Module):
    """Stand-in network: emits the exact target heatmaps of fixed input-space keypoints."""

    def __init__(self, codec: HeatmapCodec, keypoints: Tensor) -> None:
        super().__init__()
        self.codec = codec
        self.register_buffer("keypoints", keypoints)
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the module a device
        self.in_chans = 1

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != tuple(self.codec.input_size):
            raise AssertionError(f"network got {tuple(x.shape)}; the predictor must resize first")
        kp = self.keypoints.expand(x.shape[0], -1, -1)
        return self.codec.encode(kp) + 0 * self.anchor


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads on a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_spec(k: int = 3) -> dict:
    return {
        "encoder": "unet",
        "encoder_kwargs": {"widths": [4, 8], "bottleneck_width": 8},
        "in_chans": 1,
        "num_keypoints": k,
        "heatmap_stride": 2,
    }


@pytest.fixture
def predictor() -> KeypointPredictor:
    return KeypointPredictor(
        FixedHeatmaps(CODEC, KP_INPUT), CODEC, in_chans=1, batch_size=2, measures=AOP
    )


def test_original_pixels_for_images_of_different_sizes(predictor: KeypointPredictor) -> None:
    sizes = [(64, 48), (100, 30), (32, 32), (17, 129), (512, 512)]
    images = [torch.rand(1, h, w) for h, w in sizes]
    out = predictor.predict(images)
    assert out.keypoints.shape == (5, 3, 2) and out.scores.shape == (5, 3)
    for i, (h, w) in enumerate(sizes):
        # Hand-derived: x = (x_in + 0.5) * W / 32 - 0.5, likewise y.
        expected = torch.stack(
            [(KP_INPUT[:, 0] + 0.5) * w / 32 - 0.5, (KP_INPUT[:, 1] + 0.5) * h / 32 - 0.5], dim=-1
        )
        torch.testing.assert_close(out.keypoints[i], expected, atol=2e-3, rtol=0)
    assert out.original_sizes.tolist() == [list(s) for s in sizes]
    # Scores are the heatmap peaks: exp(-d^2 / 2) for centres d off the pixel grid (sigma 1).
    peaks = CODEC.encode(KP_INPUT[None])[0].amax(dim=(-2, -1))
    torch.testing.assert_close(out.scores, peaks.expand(5, -1), atol=1e-6, rtol=0)


def test_aop_in_original_pixels(predictor: KeypointPredictor) -> None:
    square, wide = torch.rand(1, 64, 64), torch.rand(1, 32, 96)
    out = predictor.predict([square, wide])
    assert list(out.measures) == ["aop"]
    # A uniform resize keeps the input-space angle: atan2(|u x v|, u . v) with u = (-15, 4),
    # v = (4, 19): cross = -301, dot = 16.
    assert out.measures["aop"][0].item() == pytest.approx(math.degrees(math.atan2(301, 16)), abs=1e-3)
    # 32x96 stretches x by 3: u' = (-45, 4), v' = (12, 19): cross = -903, dot = -464.
    assert out.measures["aop"][1].item() == pytest.approx(math.degrees(math.atan2(903, -464)), abs=1e-3)
    kp = out.keypoints[1]
    assert out.measures["aop"][1].item() == pytest.approx(float(angle_of_progression(kp[0], kp[1], kp[2])), abs=1e-6)


def test_single_image_and_batch_tensor(predictor: KeypointPredictor) -> None:
    assert predictor.predict(torch.rand(1, 40, 40)).keypoints.shape == (1, 3, 2)
    assert predictor.predict(torch.rand(4, 1, 40, 40)).keypoints.shape == (4, 3, 2)
    assert predictor.predict([]).keypoints.shape[0] == 0


def test_input_kinds_agree(tmp_path) -> None:
    """Paths (PNG named .jpg, RGB with equal channels), PIL, numpy and tensors give the same answer."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(1, 3, 3, padding=1), nn.Sigmoid())
    pred = KeypointPredictor(net, CODEC, in_chans=1)
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(45, 70), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    png_as_jpg = tmp_path / "frame.jpg"
    Image.fromarray(rgb).save(png_as_jpg, format="PNG")
    inputs = [
        png_as_jpg,
        str(png_as_jpg),
        Image.fromarray(gray),
        Image.fromarray(rgb),
        gray,
        rgb,
        gray.astype(np.float32) / 255.0,
        torch.from_numpy(gray)[None],
        torch.from_numpy(gray).float()[None] / 255.0,
        torch.from_numpy(rgb).permute(2, 0, 1),
    ]
    out = pred.predict(inputs)
    for i in range(1, len(inputs)):
        torch.testing.assert_close(out.keypoints[i], out.keypoints[0], atol=1e-5, rtol=0)
    assert out.original_sizes[0].tolist() == [45, 70]


def test_preprocess_matches_dataset_resize(tmp_path) -> None:
    pred = KeypointPredictor(FixedHeatmaps(CODEC, KP_INPUT), CODEC, in_chans=1)
    f = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 61), dtype=np.uint8)).save(f)
    x, size = pred.preprocess(f)
    assert size == (50, 61)
    assert torch.equal(x, resize_image(read_image(f, channels=1), INPUT))


def test_constructor_validation() -> None:
    net = FixedHeatmaps(CODEC, KP_INPUT)
    with pytest.raises(ValueError, match="batch_size"):
        KeypointPredictor(net, CODEC, batch_size=0)
    with pytest.raises(ValueError, match="Measure interface"):
        KeypointPredictor(net, CODEC, measures={"aop": (0, 1, 2)})
    with pytest.raises(ValueError, match="KeypointCodec"):
        KeypointPredictor(net, object())  # type: ignore[arg-type]


def test_default_in_chans_from_encoder() -> None:
    model = build_heatmap_model(tiny_spec())
    assert KeypointPredictor(model, CODEC).in_chans == 1


def test_save_and_reload_folder(tmp_path) -> None:
    model = build_heatmap_model(tiny_spec())
    pred = KeypointPredictor(model, CODEC, keypoint_names=["PS1", "PS2", "FH1"], measures=AOP)
    pred.save(tmp_path / "export")
    again = KeypointPredictor.from_checkpoint(tmp_path / "export")
    x = [torch.rand(1, 40, 50), torch.rand(1, 32, 32)]
    a, b = pred.predict(x), again.predict(x)
    assert torch.equal(a.keypoints, b.keypoints) and again.keypoint_names == ("PS1", "PS2", "FH1")
    assert again.measures == AOP and again.codec == CODEC
    assert a.to_records()[0]["aop"] == pytest.approx(float(a.measures["aop"][0]), nan_ok=True)
    with pytest.raises(ValueError, match="sslkeypoint_spec"):
        KeypointPredictor(nn.Conv2d(1, 3, 1), CODEC).save(tmp_path / "x")


def test_from_checkpoint_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        KeypointPredictor.from_checkpoint(tmp_path / "nope.ckpt")
    f = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1)}}, f)
    with pytest.raises(ValueError, match="not written by sslkeypoint"):
        KeypointPredictor.from_checkpoint(f)


def test_version_1_checkpoint_description_is_still_read() -> None:
    """Descriptions written before codecs and measures were stored by class (format version 1)."""
    model = build_heatmap_model(tiny_spec())
    spec = {"version": 1, "model": tiny_spec(), "codec": {"input_size": [32, 32], "heatmap_size": [16, 16], "sigma": 1.0},
            "keypoint_names": ["PS1", "PS2", "FH1"], "aop_indices": [0, 1, 2], "refine": "quarter"}
    pred = KeypointPredictor.from_spec(spec, model.state_dict())
    assert pred.codec == HeatmapCodec(INPUT, (16, 16), 1.0, refine="quarter") and pred.measures == AOP
    assert KeypointPredictor.from_spec(spec, refine="none").codec.refine == "none"  # type: ignore[attr-defined]


def test_keypoint_decoder_matches_codec() -> None:
    net = FixedHeatmaps(CODEC, KP_INPUT)
    kp, _ = KeypointDecoder(net, CODEC)(torch.rand(2, 1, *INPUT))
    torch.testing.assert_close(kp, KP_INPUT.expand(2, -1, -1), atol=1e-3, rtol=0)


# ------------------------------------------------------------------------ unusable checkpoints


def _finetune_like(path, spec: dict | None = None, state: dict | None = None) -> None:
    """A checkpoint in the layout the fine-tuning module writes (weights under ``model.``)."""
    model = build_heatmap_model(tiny_spec())
    sd = state if state is not None else {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": sd, "pytorch-lightning_version": "2.6.0",
                SPEC_KEY: spec if spec is not None else predictor_spec(tiny_spec(), CODEC, ["PS1", "PS2", "FH1"], AOP)}, path)


def test_from_checkpoint_of_a_finetune_like_checkpoint(tmp_path) -> None:
    _finetune_like(tmp_path / "ok.ckpt")
    pred = KeypointPredictor.from_checkpoint(tmp_path / "ok.ckpt", refine="quarter", batch_size=3)
    assert pred.codec == HeatmapCodec(INPUT, (16, 16), 1.0, refine="quarter") and pred.batch_size == 3
    assert pred.keypoint_names == ("PS1", "PS2", "FH1") and pred.measures == AOP


@pytest.mark.parametrize("stage", [1, 2])
def test_pretraining_checkpoint_says_what_it_is_and_how_to_use_it(tmp_path, stage) -> None:
    f = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"model.encoder.w": torch.ones(2)}, "pytorch-lightning_version": "2.6.0",
                SPEC_KEY: {"version": "0.1", "stage": stage, "config": {}}}, f)
    with pytest.raises(WeightFileError, match=rf"last\.ckpt: is a pre-training checkpoint \(MoCo, stage {stage}\)") as info:
        KeypointPredictor.from_checkpoint(f)
    assert "FinetuneConfig(init_encoder=" in str(info.value) and "no heatmap head" in str(info.value)


def test_bare_weights_and_encoder_files_point_to_init_encoder(tmp_path) -> None:
    torch.save({"conv.weight": torch.ones(1, 1, 3, 3), "conv.bias": torch.ones(1)}, tmp_path / "w.pth")
    with pytest.raises(WeightFileError, match=r"w\.pth: holds weights only \(2 tensors\) and no model description"):
        KeypointPredictor.from_checkpoint(tmp_path / "w.pth")
    save_state_dict({"conv.weight": torch.ones(1)}, tmp_path / "encoder.safetensors")
    with pytest.raises(WeightFileError, match=r"encoder\.safetensors: holds weights only \(1 tensor\) and no predictor\.json") as info:
        KeypointPredictor.from_checkpoint(tmp_path / "encoder.safetensors")
    assert f"FinetuneConfig(init_encoder='{tmp_path / 'encoder.safetensors'}')" in str(info.value)
    torch.save(torch.ones(3), tmp_path / "t.pth")
    with pytest.raises(WeightFileError, match=r"t\.pth: holds a Tensor, not a checkpoint"):
        KeypointPredictor.from_checkpoint(tmp_path / "t.pth")


def test_folders_that_are_not_predictor_folders(tmp_path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    _finetune_like(run / "checkpoints" / "best-epoch=003.ckpt")
    with pytest.raises(WeightFileError, match=r"run: is a folder without predictor\.json.*give one of them, e\.g\. .*best-epoch=003\.ckpt"):
        KeypointPredictor.from_checkpoint(run)
    pred = KeypointPredictor(build_heatmap_model(tiny_spec()), CODEC)
    folder = pred.save(tmp_path / "export")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors not found: the predictor folder .*export is incomplete"):
        KeypointPredictor.from_checkpoint(folder)
    pred.save(folder)
    (folder / "predictor.json").write_text('{"version": 2, "model": ')
    with pytest.raises(WeightFileError, match=r"predictor\.json: is not valid JSON"):
        KeypointPredictor.from_checkpoint(folder)


def test_weights_that_do_not_fit_their_description_name_the_file(tmp_path) -> None:
    f = tmp_path / "x.ckpt"
    _finetune_like(f, state={"model.encoder.blocks.0.conv1.weight": torch.ones(3)})
    with pytest.raises(WeightFileError, match=r"x\.ckpt: its weights do not fit the model its description builds: Error"):
        KeypointPredictor.from_checkpoint(f)


def test_damaged_checkpoints_are_named(tmp_path) -> None:
    f = tmp_path / "last.ckpt"
    _finetune_like(f)
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(WeightFileError, match=r"last\.ckpt: is a truncated or damaged torch checkpoint"):
        KeypointPredictor.from_checkpoint(f)
    (tmp_path / "e.ckpt").write_bytes(b"")
    with pytest.raises(WeightFileError, match=r"e\.ckpt: is empty"):
        KeypointPredictor.from_checkpoint(tmp_path / "e.ckpt")


# ------------------------------------------------------------------------------------- evaluate


def test_evaluate_scores_a_predictor_in_px_and_mm_and_writes_its_files(tmp_path) -> None:
    """Hand-derived: targets 5 px (3, 4) from the predictions; 0.5 mm/px on one image gives 2.5 mm."""
    from sslkeypoint.data import KeypointRecord
    from sslkeypoint.measures import DistanceMeasure
    from sslkeypoint.metrics import evaluate

    measures = {**AOP, "ps": DistanceMeasure(0, 1)}
    pred = KeypointPredictor(FixedHeatmaps(CODEC, KP_INPUT), CODEC, in_chans=1, measures=measures,
                             keypoint_names=("PS1", "PS2", "FH1"))
    files = []
    for i in range(3):
        files.append(tmp_path / f"im{i}.png")
        Image.fromarray(np.full((64, 64), 40 * i, np.uint8)).save(files[-1])
    expected = (KP_INPUT + 0.5) * 2 - 0.5  # original pixels of a 64x64 image
    target = (expected + torch.tensor([3.0, 4.0])).numpy().astype(np.float64)
    missing = target.copy()
    missing[2] = np.nan
    records = [KeypointRecord(files[0], target, pixel_size=0.5), KeypointRecord(files[1], target),
               KeypointRecord(files[2], missing, pixel_size=(0.5, 0.5))]
    result = evaluate(pred, records)
    assert result.metrics["mre_px"] == pytest.approx(5.0, abs=1e-3)
    assert result.metrics["missing"] == 1 and result.metrics["count"] == 3
    assert result.metrics["mre_mm"] == pytest.approx(2.5, abs=1e-3)  # two images with sizes, 5 keypoints
    assert result.metrics["ps_mae_px"] == pytest.approx(0.0, abs=1e-3)  # both ends moved alike
    assert result.units == {"aop": "deg", "ps": "mm"}
    assert "PS1" in str(result) and "mean mm" in str(result)
    header, rows = result.rows()
    assert header[:4] == ["file", "PS1_error_px", "PS2_error_px", "FH1_error_px"] and rows[2][3] == ""
    out = result.save(tmp_path / "eval")
    assert json.loads((out / "metrics.json").read_text())["count"] == 3
    assert (out / "per_image.csv").read_text().count("\n") == 4 and (out / "errors.png").stat().st_size > 1000
    with pytest.raises(ValueError, match=r"record 1 .* has 0 keypoints; expected 3"):
        evaluate(pred, [records[0], KeypointRecord(files[1])])


def test_prediction_csv_has_original_pixels_measures_and_mm(tmp_path) -> None:
    from sslkeypoint.measures import DistanceMeasure

    pred = KeypointPredictor(FixedHeatmaps(CODEC, KP_INPUT), CODEC, in_chans=1,
                             measures={"ps": DistanceMeasure(0, 1)}, keypoint_names=("PS1", "PS2", "FH1"))
    out = pred.predict([torch.rand(1, 64, 64), torch.rand(1, 32, 32)], pixel_size=[0.5, None])
    assert out.units == {"ps": "mm"}
    ps_px = float(torch.linalg.norm(KP_INPUT[0] - KP_INPUT[1]))
    assert float(out.measures["ps"][0]) == pytest.approx(ps_px * 2 * 0.5, rel=1e-4)
    assert math.isnan(float(out.measures["ps"][1]))
    path = out.write_csv(tmp_path / "pred.csv", ["a.png", "b.png"])
    header, first, _ = path.read_text().splitlines()
    assert header.split(",")[:4] == ["file", "PS1_x", "PS1_y", "PS1_score"] and header.endswith("ps_mm,pixel_size_mm")
    assert first.startswith("a.png,") and float(first.split(",")[1]) == pytest.approx(float((KP_INPUT[0, 0] + 0.5) * 2 - 0.5), abs=1e-2)


def test_images_are_checked_like_files_and_named_by_position(predictor: KeypointPredictor) -> None:
    good = torch.rand(1, 40, 40)
    for images, fragment in (
        ([good, good * 255], "image 1: <tensor shape=(1, 40, 40) dtype=torch.float32>: a float image must hold "
                             "values in [0, 1] (uint8 images are scaled by 255)"),
        (torch.stack([good, good, good.clone().fill_(float("nan"))]), "image 2: <tensor shape=(1, 40, 40) "
                                                                       "dtype=torch.float32>: 1600 values are NaN"),
        ([good, np.zeros((0, 3), np.uint8)], "image 1: <array shape=(0, 3) dtype=uint8>: an empty image"),
    ):
        with pytest.raises(ValueError, match=re.escape(fragment)):
            predictor.predict(images)
    # uint8 data is scaled: the same image as floats in [0, 1] gives the same prediction.
    as_bytes = (good * 255).round().to(torch.uint8)
    torch.testing.assert_close(predictor.predict(as_bytes).keypoints, predictor.predict(as_bytes / 255.0).keypoints)


def test_predict_batch_refuses_what_preprocess_never_returns(predictor: KeypointPredictor) -> None:
    x, sizes = torch.rand(2, 1, 32, 32), torch.tensor([[32, 32], [64, 48]])
    assert predictor.predict_batch(x, sizes).keypoints.shape == (2, 3, 2)
    bad = x.clone()
    bad[1, 0, 0, :3] = float("inf")
    for images, original, fragment in (
        (bad, sizes, "predict_batch: image 1: 3 values are infinite"),
        (x * 255, sizes, "predict_batch: image 0: a float image must hold values in [0, 1]"),
        ((x * 255).to(torch.uint8), sizes, "images must be floats in [0, 1], as preprocess() returns them; got torch.uint8"),
        (x[0], sizes, "images must be a (B, C, H, W) tensor; got (1, 32, 32)"),
        (x, sizes[:1], "original_sizes must have shape (B, 2) = (2, 2); got (1, 2)"),
        (x, torch.tensor([[32, 32], [0, 48]]), "original_sizes must be positive (H, W)"),
    ):
        with pytest.raises(ValueError, match=re.escape(fragment)):
            predictor.predict_batch(images, original)
    assert predictor.predict_batch(torch.zeros(0, 1, 32, 32), torch.zeros(0, 2)).keypoints.shape[0] == 0


def test_photos_are_predicted_in_the_pixels_they_are_shown_in(tmp_path) -> None:
    """A file with EXIF orientation 6 is read upright: the same keypoints as the upright file."""
    upright = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 50), dtype=np.uint8))
    upright.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "turned.png", exif=exif.tobytes())
    net = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(1, 3, 1))
    model = KeypointPredictor(net, CODEC, in_chans=1)
    a, b = model.predict([tmp_path / "upright.png", tmp_path / "turned.png"]).keypoints
    assert model.predict(tmp_path / "turned.png").original_sizes.tolist() == [[30, 50]]
    torch.testing.assert_close(a, b)
