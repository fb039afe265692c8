"""Tests of the IUGC starter codec re-implementation (truncation, argmax, x/W scaling).

The codec implements the library's KeypointCodec interface: it round-trips through
codec_to_dict / codec_from_dict, trains through HeatmapFinetuneModule and comes back from a
checkpoint with the starter's map to the original image.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from iugc_aop.landmarks import LANDMARK_NAMES, MEASURES
from iugc_aop.starter_codec import StarterCodec
from sslkeypoint.configs import FinetuneConfig
from sslkeypoint.heatmaps import HeatmapCodec, KeypointCodec, codec_from_dict, codec_to_dict
from sslkeypoint.inference import KeypointDecoder, KeypointPredictor
from sslkeypoint.lightning import HeatmapFinetuneModule


def _peak(hm: torch.Tensor) -> tuple[int, int]:
    """(row, col) of the maximum of one (h, w) map."""
    idx = int(hm.flatten().argmax())
    return divmod(idx, hm.shape[-1])


def test_golden_truncation_and_decode() -> None:
    codec = StarterCodec((256, 256), (64, 64), sigma=2.0)
    # x = 10.9 -> 10.9 * 64 / 256 = 2.725 -> int() = 2; y = 100 -> 25.0 -> 25.
    hm = codec.encode(torch.tensor([[[10.9, 100.0]]]))
    assert hm.shape == (1, 1, 64, 64)
    assert _peak(hm[0, 0]) == (25, 2)
    assert hm[0, 0, 25, 2].item() == 1.0
    # Neighbour one column over: exp(-1 / (2 sigma^2)) = exp(-1/8).
    assert hm[0, 0, 25, 3].item() == pytest.approx(math.exp(-1 / 8), rel=1e-6)
    assert hm[0, 0, 27, 4].item() == pytest.approx(math.exp(-8 / 8), rel=1e-6)
    kp, scores = codec.decode(hm)
    # Column 2 -> 2 / 64 * 256 = 8.0; row 25 -> 100.0.
    assert kp.tolist() == [[[8.0, 100.0]]]
    assert scores.tolist() == [[1.0]]


def test_non_square_sizes_scale_each_axis() -> None:
    codec = StarterCodec((128, 256), (32, 64), sigma=1.5)  # (H, W), (h, w)
    # x: 255.9 * 64 / 256 = 63.975 -> 63; y: 7.99 * 32 / 128 = 1.9975 -> 1.
    hm = codec.encode(torch.tensor([[255.9, 7.99]]))  # (K=1, 2), no batch dim
    assert hm.shape == (1, 32, 64)
    assert _peak(hm[0]) == (1, 63)
    kp, _ = codec.decode(hm[None])
    assert kp.tolist() == [[[252.0, 4.0]]]
    assert codec.stride == (4.0, 4.0)


def test_truncation_is_towards_zero() -> None:
    codec = StarterCodec((256, 256), (64, 64))
    # int(-3.9 / 4) = int(-0.975) = 0 (not floor = -1).
    assert codec.to_heatmap_coords(torch.tensor([[-3.9, 3.99]])).tolist() == [[0.0, 0.0]]
    assert codec.to_heatmap_coords(torch.tensor([[-4.0, 4.0]])).tolist() == [[-1.0, 1.0]]


def test_invisible_and_nan_give_zero_maps() -> None:
    codec = StarterCodec((64, 64), (16, 16))
    kp = torch.tensor([[[10.0, 10.0], [float("nan"), 3.0], [30.0, 40.0]]])
    hm = codec.encode(kp, visible=torch.tensor([[True, True, False]]))
    assert hm[0, 0].max().item() == 1.0
    assert hm[0, 1].abs().sum().item() == 0.0
    assert hm[0, 2].abs().sum().item() == 0.0
    assert torch.isfinite(hm).all()


def test_batched_dtype_and_first_argmax() -> None:
    codec = StarterCodec((64, 64), (16, 16))
    kp = torch.rand(4, 3, 2, dtype=torch.float64) * 63
    hm = codec.encode(kp)
    assert hm.shape == (4, 3, 16, 16) and hm.dtype == torch.float64
    dec, scores = codec.decode(hm)
    assert dec.shape == (4, 3, 2) and scores.shape == (4, 3) and dec.dtype == torch.float64
    # Ties: the first maximum in row-major order wins.
    flat = torch.zeros(1, 1, 16, 16)
    flat[0, 0, 5, 9] = 1.0
    flat[0, 0, 7, 2] = 1.0
    assert codec.decode(flat)[0].tolist() == [[[36.0, 20.0]]]


def test_errors() -> None:
    codec = StarterCodec((64, 64), (16, 16))
    with pytest.raises(ValueError, match=r"\(B, K, 2\)"):
        codec.encode(torch.zeros(3))
    with pytest.raises(ValueError, match=r"visible must have shape \(1, 2\)"):
        codec.encode(torch.zeros(1, 2, 2), visible=torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, K, 16, 16\); got \(1, 1, 8, 8\)"):
        codec.decode(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="sigma"):
        StarterCodec((64, 64), (16, 16), sigma=0.0)
    with pytest.raises(ValueError, match="input_size"):
        StarterCodec((64,), (16, 16))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"at least \(3, 3\)"):
        StarterCodec((64, 64), (2, 2))
    with pytest.raises(ValueError, match="sigma"):
        StarterCodec((64, 64), (16, 16), sigma=float("nan"))
    with pytest.raises(ValueError, match=r"original_size must be \(H, W\)"):
        codec.to_original(torch.zeros(1, 3, 2), (1, 2, 3))
    with pytest.raises(ValueError, match=r"\(B, 2\) need keypoints of shape \(B, K, 2\)"):
        codec.to_original(torch.zeros(2, 3, 2), torch.tensor([[64, 64], [32, 32], [16, 16]]))
    with pytest.raises(ValueError, match=r"\(B, K, 2\)"):
        codec.to_original(torch.zeros(3), (64, 64))


@settings(max_examples=50, deadline=None)
@given(
    x=st.floats(0.0, 255.99, allow_nan=False),
    y=st.floats(0.0, 255.99, allow_nan=False),
)
def test_round_trip_is_floor_to_the_stride_grid(x: float, y: float) -> None:
    """decode(encode(p)) = s * floor(p / s): always at or below p, by less than one stride."""
    codec = StarterCodec((256, 256), (64, 64))
    kp = torch.tensor([[[x, y]]], dtype=torch.float64)
    dec, _ = codec.decode(codec.encode(kp))
    expected = torch.tensor([[[4.0 * math.floor(x / 4.0), 4.0 * math.floor(y / 4.0)]]], dtype=torch.float64)
    assert torch.equal(dec, expected)
    err = dec - kp
    assert bool((err <= 0).all()) and bool((err > -4).all())


def test_systematic_bias_on_integer_pixels() -> None:
    """Integer coordinates at stride 4 come back (s - 1) / 2 = 1.5 px low on average."""
    codec = StarterCodec((256, 256), (64, 64))
    xs = torch.arange(256, dtype=torch.float32)
    kp = torch.stack([xs, xs.flip(0)], dim=-1)[None]  # (1, 256, 2)
    dec, _ = codec.decode(codec.encode(kp))
    bias = (dec - kp).mean(dim=1)[0]
    assert bias.tolist() == [-1.5, -1.5]
    # The exact codec's argmax alone is unbiased on the same points.
    exact = HeatmapCodec((256, 256), (64, 64))
    dec_exact, _ = exact.decode(exact.encode(kp), refine="none")
    assert (dec_exact - kp).mean(dim=1)[0].abs().max().item() < 1e-5


def test_round_trip_error_larger_than_heatmap_codec() -> None:
    """On perfect heatmaps the starter loses ~2 px (at stride 4) where the exact codec loses ~0."""
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(64, 3, 2, generator=g) * 255
    starter = StarterCodec((256, 256), (64, 64))
    exact = HeatmapCodec((256, 256), (64, 64))
    err_starter = (starter.decode(starter.encode(kp))[0] - kp).norm(dim=-1).mean().item()
    err_none = (exact.decode(exact.encode(kp), refine="none")[0] - kp).norm(dim=-1).mean().item()
    err_dark = (exact.decode(exact.encode(kp), refine="dark")[0] - kp).norm(dim=-1).mean().item()
    # Offsets uniform in [0, 4)^2, measured from a corner: mean distance
    # 4 * (sqrt(2) + asinh(1)) / 3 = 3.06 px; nearest-pixel rounding (from the centre of the
    # cell) half that, 1.53 px; DARK exact.
    assert 2.6 < err_starter < 3.5
    assert 1.2 < err_none < 1.9
    assert err_dark < 1e-2
    assert err_starter > 1.3 * err_none > err_dark


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_plugs_into_keypoint_decoder_and_traces() -> None:
    """The codec plugs into KeypointDecoder (the part the exporters write) and traces."""
    codec = StarterCodec((32, 32), (8, 8))
    net = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(1, 3, 1), torch.nn.Sigmoid())
    decoder = KeypointDecoder(net, codec).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        kp, scores = decoder(x)
        traced = torch.jit.trace(decoder, (x,), check_trace=False)
        x2 = torch.rand(5, 1, 32, 32)
        assert torch.equal(traced(x2)[0], decoder(x2)[0])
    assert kp.shape == (2, 3, 2) and scores.shape == (2, 3)
    # Every decoded coordinate lies on the stride grid.
    assert torch.equal(kp, (kp / 4).round() * 4)


def test_implements_the_codec_interface_on_its_own() -> None:
    codec = StarterCodec(64, 16, sigma=1)  # type: ignore[arg-type]  # ints are accepted and normalised
    assert isinstance(codec, KeypointCodec)
    assert not isinstance(codec, HeatmapCodec)
    assert codec.input_size == (64, 64) and codec.heatmap_size == (16, 16)
    assert codec.sigma == 1.0 and isinstance(codec.sigma, float)
    with pytest.raises(AttributeError):
        codec.sigma = 2.0  # type: ignore[misc]  # frozen


def test_codec_dict_round_trip() -> None:
    codec = StarterCodec((128, 256), (32, 64), sigma=1.5)
    data = codec_to_dict(codec)
    assert data == {
        "class": "iugc_aop.starter_codec.StarterCodec",
        "kwargs": {"input_size": [128, 256], "heatmap_size": [32, 64], "sigma": 1.5},
    }
    back = codec_from_dict(data)
    assert type(back) is StarterCodec and back == codec
    # The stored form is plain JSON.
    assert json.loads(json.dumps(data)) == data


def test_to_original_is_the_starters_scaling_golden() -> None:
    """x * W_o / W_in, y * H_o / H_in: no half-pixel terms, unlike HeatmapCodec.to_original."""
    codec = StarterCodec((64, 64), (16, 16))
    kp = torch.tensor([[[8.0, 4.0], [0.0, 60.0]]])
    # 400x300 image: x * 6.25, y * 4.6875.
    assert codec.to_original(kp, (300, 400)).tolist() == [[[50.0, 18.75], [0.0, 281.25]]]
    # The pixel-centre map of the exact codec differs by 0.5 * (r - 1) px per axis.
    exact = HeatmapCodec((64, 64), (16, 16)).to_original(kp, (300, 400))
    r = torch.tensor([6.25, 4.6875])
    assert torch.allclose(exact - codec.to_original(kp, (300, 400)), 0.5 * (r - 1))
    # Per-sample sizes (B, 2) of (H, W), as the predictor passes them.
    batch = torch.tensor([[[8.0, 4.0]], [[8.0, 4.0]]])
    sizes = torch.tensor([[300.0, 400.0], [64.0, 128.0]])
    assert codec.to_original(batch, sizes).tolist() == [[[50.0, 18.75]], [[16.0, 4.0]]]
    # At the network's own size nothing moves; float64 stays float64.
    kp64 = kp.double()
    out = codec.to_original(kp64, (64, 64))
    assert out.dtype == torch.float64 and torch.equal(out, kp64)


def _tiny_config() -> FinetuneConfig:
    return FinetuneConfig(
        input_size=(64, 64),
        heatmap_size=(16, 16),
        num_keypoints=3,
        keypoint_names=LANDMARK_NAMES,
        measures=MEASURES,
        encoder_kwargs={"widths": (4, 8), "bottleneck_width": 8},
        seed=0,
    )


def test_finetune_module_refuses_a_codec_of_other_sizes() -> None:
    with pytest.raises(ValueError, match="must be the config's"):
        HeatmapFinetuneModule(_tiny_config(), codec=StarterCodec((128, 128), (32, 32)))


def test_checkpoint_rebuilds_the_starter_codec_and_its_map_back(tmp_path: Path) -> None:
    """A model trained with the starter codec predicts with argmax, x = j * W / w and x * W_o / W_in."""
    codec = StarterCodec((64, 64), (16, 16), sigma=1.5)
    module = HeatmapFinetuneModule(_tiny_config(), codec=codec)
    assert module.codec is codec
    # The training targets are the starter's.
    kp = torch.tensor([[[10.9, 30.0], [33.0, 7.5], [50.2, 61.9]]])
    assert torch.equal(module.codec.encode(kp), codec.encode(kp))
    assert module.hparams["codec"] == codec_to_dict(codec)
    # The entries Lightning writes: the state dict plus what the module adds on save.
    ckpt: dict[str, object] = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    path = tmp_path / "starter.ckpt"
    torch.save(ckpt, path)

    predictor = KeypointPredictor.from_checkpoint(path)
    assert type(predictor.codec) is StarterCodec and predictor.codec == codec
    assert predictor.keypoint_names == LANDMARK_NAMES and set(predictor.measures) == {"aop"}
    image = torch.rand(1, 300, 400, generator=torch.Generator().manual_seed(3))  # H=300, W=400
    pred = predictor.predict(image)

    # The same chain by hand: resize, network, first argmax (j, i), x = 4 j, then x * 400 / 64.
    resized, size = predictor.preprocess(image)
    assert size == (300, 400)
    with torch.no_grad():
        heatmaps = predictor.model(resized[None])[0]  # (3, 16, 16)
    idx = heatmaps.flatten(1).argmax(dim=1)
    cols, rows = (idx % 16).double(), (idx // 16).double()
    expected = torch.stack([cols * 4 * 400 / 64, rows * 4 * 300 / 64], dim=-1)
    assert torch.allclose(pred.keypoints[0].double(), expected, atol=1e-4)
    # AoP from the prediction's measures, at PS1.
    assert pred.measures["aop"].shape == (1,)
    assert float(pred.measures["aop"][0]) == pytest.approx(float(MEASURES["aop"](expected)), abs=1e-3, nan_ok=True)

    # The stored codec has no refinement to override.
    with pytest.raises(ValueError, match="StarterCodec has no 'refine'"):
        KeypointPredictor.from_checkpoint(path, refine="dark")
