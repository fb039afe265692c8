"""Tests of sslkeypoint.export: ONNX and TorchScript parity with the eager network + decode."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sslkeypoint.export import export_onnx, export_torchscript
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.models import build_heatmap_model

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")

INPUT = (32, 32)
CODEC = HeatmapCodec(INPUT, (16, 16), sigma=1.0)
SPEC = {"encoder": "unet", "encoder_kwargs": {"widths": [4, 8], "bottleneck_width": 8}, "in_chans": 1,
        "num_keypoints": 3, "heatmap_stride": 2}


def contrasted_model() -> torch.nn.Module:
    """A seeded network whose heatmaps have contrast, as a trained one gives: at the 0.01 prior of a
    fresh head they are nearly flat, and sub-pixel refinement of a flat map is ill-conditioned in float32."""
    torch.manual_seed(3)
    model = build_heatmap_model(SPEC)
    with torch.no_grad():
        model.head.bias.zero_()
        model.head.weight.mul_(20.0)
    return model


@pytest.fixture(scope="module")
def real_predictor() -> KeypointPredictor:
    return KeypointPredictor(contrasted_model(), CODEC, in_chans=1)


def test_export_onnx_parity(real_predictor: KeypointPredictor, tmp_path) -> None:
    path = export_onnx(real_predictor, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    torch.manual_seed(5)
    x = torch.rand(3, 1, *INPUT)  # another batch size than the export example
    kp, scores = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        eager_kp, eager_scores = real_predictor.decoder(x)
    assert kp.shape == (3, 3, 2)
    assert np.abs(kp - eager_kp.numpy()).max() < 0.01
    assert np.abs(scores - eager_scores.numpy()).max() < 1e-4


def test_export_onnx_torchscript_exporter(real_predictor: KeypointPredictor, tmp_path) -> None:
    path = export_onnx(real_predictor, tmp_path / "legacy.onnx", dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 1, *INPUT)
    kp, _ = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        eager_kp, _ = real_predictor.decoder(x)
    assert np.abs(kp - eager_kp.numpy()).max() < 0.01


def test_export_torchscript_parity(real_predictor: KeypointPredictor, tmp_path) -> None:
    path = export_torchscript(real_predictor, tmp_path / "model.pt")
    scripted = torch.jit.load(str(path))
    x = torch.rand(4, 1, *INPUT)
    with torch.no_grad():
        kp, _ = scripted(x)
        eager_kp, _ = real_predictor.decoder(x)
    assert (kp - eager_kp).abs().max().item() < 0.01


def test_exported_pipeline_matches_predict(real_predictor: KeypointPredictor, tmp_path) -> None:
    """Resize + exported graph + map back reproduces predict() in original pixels."""
    scripted = torch.jit.load(str(export_torchscript(real_predictor, tmp_path / "m.pt")))
    images = [torch.rand(1, 48, 40), torch.rand(1, 20, 70)]
    expected = real_predictor.predict(images).keypoints
    for img, exp in zip(images, expected):
        x, size = real_predictor.preprocess(img)
        with torch.no_grad():
            kp, _ = scripted(x[None])
        got = CODEC.to_original(kp, size)[0]
        assert (got - exp).abs().max().item() < 0.01


def test_original_pixels_export_matches_predict_in_original_pixels(tmp_path) -> None:
    """The graph that resizes inside gives predict()'s keypoints on images of other sizes."""
    from sslkeypoint.export import onnx_metadata
    from sslkeypoint.measures import AngleMeasure

    model = contrasted_model()
    measures = {"aop": AngleMeasure(0, 1, 2)}
    predictor = KeypointPredictor(model, CODEC, in_chans=1, keypoint_names=("PS1", "PS2", "FH1"), measures=measures)
    path = export_onnx(predictor, tmp_path / "model.onnx", original_pixels=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    torch.manual_seed(7)
    for h, w in [(48, 40), (20, 70), (97, 131)]:
        image = torch.rand(1, h, w)
        expected = predictor.predict(image).keypoints[0]
        got, _ = session.run(None, {"image": image[None].numpy()})
        assert got.shape == (1, 3, 2)
        # Antialiased resizes in onnxruntime and torch differ in the last float bits only.
        assert np.abs(got[0] - expected.numpy()).max() < 0.05 * max(h / INPUT[0], w / INPUT[1])
    meta = onnx_metadata(path)
    assert meta["keypoint_space"] == "original" and meta["input_size"] == [32, 32] and meta["in_chans"] == "1"
    assert meta["keypoint_names"] == ["PS1", "PS2", "FH1"]
    assert meta["measures"]["aop"]["class"] == "sslkeypoint.measures.AngleMeasure"
    assert meta["codec"]["class"] == "sslkeypoint.heatmaps.HeatmapCodec"
    plain = onnx_metadata(export_onnx(predictor, tmp_path / "plain.onnx"))
    assert plain["keypoint_space"] == "input" and "(x + 0.5) * W / 32 - 0.5" in plain["keypoints"]
    with pytest.raises(ValueError, match="original_pixels=True needs"):
        export_onnx(predictor, tmp_path / "x.onnx", original_pixels=True, dynamo=False)


def test_the_documented_onnxruntime_snippet_runs_alone(tmp_path) -> None:
    """docs/snippets/deploy_onnx.py, run as a script, gives predict()'s keypoints on a real PNG."""
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    model = contrasted_model()
    predictor = KeypointPredictor(model, CODEC, in_chans=1, keypoint_names=("a", "b", "c"))
    onnx_path = export_onnx(predictor, tmp_path / "model.onnx", original_pixels=True)
    image = tmp_path / "img.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8).repeat(1, axis=2)[..., :1].repeat(3, axis=2)).save(image)
    snippet = Path(__file__).resolve().parents[1] / "docs" / "snippets" / "deploy_onnx.py"
    out = subprocess.run([sys.executable, str(snippet), str(onnx_path), str(image)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "file,a_x,a_y,a_score,b_x,b_y,b_score,c_x,c_y,c_score"
    values = np.array([float(v) for v in out[1].split(",")[1:]]).reshape(3, 3)
    expected = predictor.predict(image).keypoints[0].numpy()
    assert np.abs(values[:, :2] - expected).max() < 0.2  # two decimals printed, antialias float bits
