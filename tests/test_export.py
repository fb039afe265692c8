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


@pytest.fixture(scope="module")
def real_predictor() -> KeypointPredictor:
    torch.manual_seed(3)
    model = build_heatmap_model(SPEC)
    # Heatmaps with contrast, as a trained network gives: at the 0.01 prior of a fresh head they are
    # nearly flat, and sub-pixel refinement of a flat map is ill-conditioned in float32.
    with torch.no_grad():
        model.head.bias.zero_()
        model.head.weight.mul_(20.0)
    return KeypointPredictor(model, CODEC, in_chans=1)


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
