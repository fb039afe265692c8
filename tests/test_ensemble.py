"""Tests of heatmap ensembles: HeatmapEnsemble and KeypointPredictor.ensemble."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import Tensor, nn

from sslkeypoint.export import export_onnx
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.measures import AngleMeasure, DistanceMeasure
from sslkeypoint.models import HeatmapEnsemble, build_heatmap_model

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")

INPUT = (32, 32)
CODEC = HeatmapCodec(INPUT, (16, 16), sigma=1.0)
AOP = {"aop": AngleMeasure(vertex=0, first=1, second=2)}
SPEC = {"encoder": "unet", "encoder_kwargs": {"widths": [4, 8], "bottleneck_width": 8}, "in_chans": 1,
        "num_keypoints": 3, "heatmap_stride": 2}


class Emits(nn.Module):
    """Stand-in network: a fixed multiple of the exact target heatmaps of fixed keypoints."""

    def __init__(self, keypoints: Tensor, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("keypoints", keypoints)
        self.scale = scale
        self.in_chans = 1

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * CODEC.encode(self.keypoints.expand(x.shape[0], -1, -1))


def trained_like(seed: int) -> nn.Module:
    """A small real network with peaked heatmaps (a fresh head's are nearly flat)."""
    torch.manual_seed(seed)
    model = build_heatmap_model(SPEC)
    with torch.no_grad():
        model.head.bias.zero_()
        model.head.weight.mul_(20.0)
    return model


def test_the_ensemble_is_the_mean_of_its_members() -> None:
    a, b, c = (trained_like(s).eval() for s in (0, 1, 2))
    x = torch.rand(2, 1, *INPUT)
    with torch.no_grad():
        expected = (a(x) + b(x) + c(x)) / 3
        got = HeatmapEnsemble([a, b, c]).eval()(x)
    assert torch.allclose(got, expected, atol=1e-6)


def test_a_silent_member_halves_the_scores_and_keeps_the_points() -> None:
    """Mean of a Gaussian target and zeros = half the Gaussian: same peak, half its height.

    DARK refinement reads the derivatives of the log-heatmap, which a constant factor does not
    change, so the decoded point is the encoded one exactly; the score (peak value) halves.
    """
    kp = torch.tensor([[[10.3, 7.6], [20.0, 21.5], [5.5, 26.2]]])
    alone = KeypointPredictor(Emits(kp), CODEC, in_chans=1, measures=AOP)
    pair = KeypointPredictor.ensemble([alone, KeypointPredictor(Emits(kp, scale=0.0), CODEC, in_chans=1, measures=AOP)])
    image = torch.rand(1, *INPUT)  # input size: input pixels are original pixels
    one, two = alone.predict(image), pair.predict(image)
    assert torch.allclose(two.keypoints, kp, atol=1e-3)
    assert torch.allclose(two.keypoints, one.keypoints, atol=1e-4)
    assert torch.allclose(two.scores, one.scores / 2, atol=1e-6)
    assert torch.allclose(two.measures["aop"], one.measures["aop"], atol=1e-3)


def test_an_ensemble_of_copies_predicts_as_one_network() -> None:
    net = trained_like(4)
    single = KeypointPredictor(net, CODEC, in_chans=1)
    images = [torch.rand(1, 40, 50), torch.rand(1, 20, 70)]
    copies = KeypointPredictor.ensemble([single, single, single])
    assert torch.allclose(copies.predict(images).keypoints, single.predict(images).keypoints, atol=1e-3)


def test_a_saved_ensemble_loads_back_as_one_predictor(tmp_path) -> None:
    members = [KeypointPredictor(trained_like(s), CODEC, in_chans=1, keypoint_names=["PS1", "PS2", "FH1"],
                                 measures=AOP) for s in (5, 6)]
    ens = KeypointPredictor.ensemble(members, batch_size=3)
    assert ens.batch_size == 3
    folder = ens.save(tmp_path / "ensemble")
    stored = json.loads((folder / "predictor.json").read_text())["model"]
    assert [m["num_keypoints"] for m in stored["members"]] == [3, 3] and stored["in_chans"] == 1
    again = KeypointPredictor.from_checkpoint(folder)
    assert isinstance(again.model, HeatmapEnsemble) and len(again.model.members) == 2
    assert again.keypoint_names == ("PS1", "PS2", "FH1") and again.measures == AOP and again.codec == CODEC
    images = [torch.rand(1, 45, 37), torch.rand(1, 32, 32)]
    a, b = ens.predict(images), again.predict(images)
    assert torch.equal(a.keypoints, b.keypoints) and torch.equal(a.measures["aop"], b.measures["aop"])


def test_an_exported_ensemble_matches_predict(tmp_path) -> None:
    ens = KeypointPredictor.ensemble([KeypointPredictor(trained_like(s), CODEC, in_chans=1) for s in (7, 8)])
    path = export_onnx(ens, tmp_path / "ensemble.onnx")
    x = torch.rand(1, 1, *INPUT)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    kp, _ = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected, _ = ens.decoder(x)
    np.testing.assert_allclose(kp, expected.numpy(), atol=1e-3)


def test_predictors_of_different_tasks_are_refused() -> None:
    net = trained_like(9)
    base = KeypointPredictor(net, CODEC, in_chans=1, measures=AOP)
    with pytest.raises(ValueError, match="at least one"):
        KeypointPredictor.ensemble([])
    other_codec = KeypointPredictor(net, HeatmapCodec(INPUT, (16, 16), sigma=2.0), in_chans=1, measures=AOP)
    with pytest.raises(ValueError, match="predictor 1 of the ensemble has other codec"):
        KeypointPredictor.ensemble([base, other_codec])
    other_measures = KeypointPredictor(net, CODEC, in_chans=1, measures={"d": DistanceMeasure(0, 1)})
    with pytest.raises(ValueError, match="other measures"):
        KeypointPredictor.ensemble([base, base, other_measures])
    named = KeypointPredictor(net, CODEC, in_chans=1, measures=AOP, keypoint_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="other keypoint names"):
        KeypointPredictor.ensemble([base, named])


def test_members_that_do_not_fit_together_are_named() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        HeatmapEnsemble([])
    rgb = build_heatmap_model({**SPEC, "in_chans": 3})
    with pytest.raises(ValueError, match=r"different input channels \[1, 3\]"):
        HeatmapEnsemble([trained_like(0), rgb])
    two = build_heatmap_model({**SPEC, "num_keypoints": 2})
    with pytest.raises(ValueError, match=r"member 1 returns heatmaps of shape \(1, 2, 16, 16\), member 0 \(1, 3, 16, 16\)"):
        HeatmapEnsemble([trained_like(0), two]).eval()(torch.rand(1, 1, *INPUT))
    with pytest.raises(ValueError, match="non-empty list of member specs"):
        build_heatmap_model({"members": []})


def test_an_ensemble_without_descriptions_predicts_but_cannot_be_saved(tmp_path) -> None:
    kp = torch.tensor([[[10.0, 7.0], [20.0, 21.0], [5.0, 26.0]]])
    ens = KeypointPredictor.ensemble([KeypointPredictor(Emits(kp), CODEC, in_chans=1)] * 2)
    assert torch.allclose(ens.predict(torch.rand(1, *INPUT)).keypoints, kp, atol=1e-3)
    with pytest.raises(ValueError, match="sslkeypoint_spec"):
        ens.save(tmp_path / "x")
