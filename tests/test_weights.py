"""Tests for sslkeypoint.weights: safe files, partial loading and input-channel adaptation."""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from safetensors import safe_open
from torch import nn

from sslkeypoint.encoders import UNetEncoder
from sslkeypoint.models import HeatmapUNet
from sslkeypoint.weights import (
    LoadReport,
    UnsafeCheckpointError,
    adapt_input_conv,
    load_partial_state_dict,
    load_state_dict_file,
    save_state_dict,
)


class _Custom:
    """A class that torch.load(weights_only=True) must refuse to rebuild."""

    def __init__(self) -> None:
        self.value = 3


def _small_net(in_chans: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chans, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1)
    )


def _small_model(in_chans: int = 1) -> HeatmapUNet:
    return HeatmapUNet(UNetEncoder(in_chans, widths=(4, 8), bottleneck_width=8), 3, heatmap_stride=2)


# ------------------------------------------------------------------------------------------ files


def test_safetensors_round_trip_is_bit_exact(tmp_path):
    sd = {
        "a": torch.randn(3, 4),
        "b": torch.randint(-5, 5, (7,), dtype=torch.int64),
        "c": torch.randn(2, 2, dtype=torch.float64),
        "h": torch.randn(5).half(),
    }
    path = save_state_dict(sd, tmp_path / "w.safetensors", metadata={"epoch": "3"})
    back = load_state_dict_file(path)
    assert sorted(back) == sorted(sd)
    for k, v in sd.items():
        assert back[k].dtype == v.dtype
        assert torch.equal(back[k], v)
    with safe_open(str(path), framework="pt") as fh:
        assert fh.metadata() == {"epoch": "3"}


def test_save_handles_shared_and_non_contiguous_tensors(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    sd = {"w": base, "tied": base, "view": base.t(), "slice": base[1]}
    back = load_state_dict_file(save_state_dict(sd, tmp_path / "sub" / "shared.safetensors"))
    assert torch.equal(back["tied"], base)
    assert torch.equal(back["view"], base.t())
    assert torch.equal(back["slice"], base[1])


def test_save_module_and_reload_into_fresh_module(tmp_path):
    src = _small_model()
    path = save_state_dict(src, tmp_path / "m.safetensors")
    dst = _small_model()
    report = load_partial_state_dict(dst, path)
    assert report.complete and not report.unexpected
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)


def test_save_rejects_non_tensor_and_bad_metadata(tmp_path):
    with pytest.raises(TypeError, match="'epoch'"):
        save_state_dict({"epoch": 3}, tmp_path / "x.safetensors")  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="metadata"):
        save_state_dict({"w": torch.ones(1)}, tmp_path / "x.safetensors", metadata={"e": 3})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd, "epoch": 4, "global_step": 10, "hyper_parameters": {"lr": 0.1}},
        lambda sd: {"model_state_dict": sd, "optimizer_state_dict": {}, "epoch": 99, "loss": 0.5},
        lambda sd: {"model": sd, "args": "x"},
        lambda sd: {"module": sd},
        lambda sd: {"model": {"state_dict": sd}},
    ],
    ids=["flat", "lightning", "paper", "model", "module", "nested"],
)
def test_containers_are_unwrapped(tmp_path, wrap):
    sd = collections.OrderedDict(w=torch.randn(2, 3), b=torch.randn(2))
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(sd), path)
    back = load_state_dict_file(path)
    assert sorted(back) == ["b", "w"]
    assert torch.equal(back["w"], sd["w"])


def test_non_tensor_entries_are_dropped(tmp_path):
    torch.save({"w": torch.ones(2), "epoch": 5, "name": "x"}, tmp_path / "c.pt")
    assert list(load_state_dict_file(tmp_path / "c.pt")) == ["w"]


def test_safetensors_recognised_by_content(tmp_path):
    path = save_state_dict({"w": torch.ones(2)}, tmp_path / "weights.bin")
    assert torch.equal(load_state_dict_file(path)["w"], torch.ones(2))


def test_pickled_custom_object_is_refused(tmp_path):
    path = tmp_path / "unsafe.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "extra": _Custom()}, path)
    with pytest.raises(UnsafeCheckpointError, match="refused for safety") as info:
        load_state_dict_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "save_state_dict" in message  # says how to convert it


def test_missing_file_and_empty_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        load_state_dict_file(tmp_path / "nope.pth")
    torch.save({"epoch": 1, "lr": 0.1}, tmp_path / "empty.pth")
    with pytest.raises(ValueError, match="no tensors found"):
        load_state_dict_file(tmp_path / "empty.pth")


# ------------------------------------------------------------------------------ partial loading


def test_ssl_checkpoint_with_prefixes_into_heatmap_unet_encoder(tmp_path):
    model = _small_model()
    pretrained = UNetEncoder(1, widths=(4, 8), bottleneck_width=8)
    ckpt = {f"module.backbone.{k}": v for k, v in pretrained.state_dict().items()}
    ckpt["module.projection_head.layers.0.weight"] = torch.randn(16, 8)
    ckpt["module.backbone_momentum.blocks.0.conv1.weight"] = torch.randn(4, 1, 3, 3)
    torch.save({"state_dict": ckpt, "epoch": 7}, tmp_path / "moco.ckpt")

    report = load_partial_state_dict(
        model.encoder, tmp_path / "moco.ckpt", strip_prefix=("module.", "backbone.", "encoder.")
    )
    assert report.complete
    assert sorted(report.unexpected) == [
        "backbone_momentum.blocks.0.conv1.weight",
        "projection_head.layers.0.weight",
    ]
    assert report.loaded == list(model.encoder.state_dict())
    for k, v in pretrained.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[k], v)


def test_add_prefix_loads_encoder_checkpoint_into_whole_model():
    model = _small_model()
    enc = UNetEncoder(1, widths=(4, 8), bottleneck_width=8)
    report = load_partial_state_dict(model, enc.state_dict(), add_prefix="encoder.")
    assert len(report.loaded) == len(enc.state_dict())
    assert all(k.startswith(("decoder.", "head.")) for k in report.missing)
    assert report.missing and not report.unexpected and not report.mismatched


def test_crafted_report_mismatch_extra_and_missing():
    net = _small_net()
    target = net.state_dict()
    src = {k: torch.full_like(v, 0.5) for k, v in target.items() if k != "1.running_var"}
    src["3.weight"] = torch.randn(5, 4, 1, 1)  # head with another number of outputs
    src["extra.bias"] = torch.randn(3)
    before_head = net[3].weight.clone()

    with pytest.raises(ValueError, match=r"3\.weight \(source \(5, 4, 1, 1\), target \(2, 4, 1, 1\)\)"):
        load_partial_state_dict(net, src)
    assert torch.equal(net[0].weight, target["0.weight"])  # untouched after the error

    report = load_partial_state_dict(net, src, strict_shapes=False)
    assert report.mismatched == {"3.weight": ((5, 4, 1, 1), (2, 4, 1, 1))}
    assert report.missing == ["1.running_var"]
    assert report.unexpected == ["extra.bias"]
    assert set(report.loaded) == set(target) - {"1.running_var", "3.weight"}
    assert report.num_target == len(target)
    assert not report.complete
    assert torch.equal(net[3].weight, before_head)
    assert torch.all(net[0].weight == 0.5) and torch.all(net[3].bias == 0.5)
    text = str(report)
    assert "loaded 7/9" in text and "missing (1): 1.running_var" in text
    assert "3.weight source (5, 4, 1, 1) vs target (2, 4, 1, 1)" in text


def test_nothing_matching_raises_with_keys_of_both_sides():
    net = _small_net()
    src = {f"backbone.{k}": v for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match="no tensor could be loaded") as info:
        load_partial_state_dict(net, src, strip_prefix="module.")
    message = str(info.value)
    assert "backbone.0.weight" in message and "Target keys: 0.weight" in message
    assert "strip_prefix" in message


def test_prefix_collision_is_an_error():
    with pytest.raises(ValueError, match=r"both become '0\.weight'"):
        load_partial_state_dict(
            _small_net(), {"0.weight": torch.ones(1), "module.0.weight": torch.ones(1)}, strip_prefix="module."
        )


def test_first_conv_is_adapted_and_reported():
    src_net, dst_net = _small_net(3), _small_net(1)
    report = load_partial_state_dict(dst_net, src_net.state_dict())
    assert report.adapted == {"0.weight": ((4, 3, 3, 3), (4, 1, 3, 3))}
    assert "0.weight" in report.loaded and report.complete
    torch.testing.assert_close(dst_net[0].weight, src_net[0].weight.sum(1, keepdim=True))
    assert "adapted (1): 0.weight (4, 3, 3, 3) -> (4, 1, 3, 3)" in str(report)
    # switched off, the same tensor is a mismatch
    with pytest.raises(ValueError, match="shapes disagree"):
        load_partial_state_dict(_small_net(1), src_net.state_dict(), adapt_first_conv=False)


def test_only_the_first_conv_is_adapted():
    a = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Conv2d(3, 2, 3))
    b = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Conv2d(1, 2, 3))
    report = load_partial_state_dict(a, b.state_dict(), strict_shapes=False)
    assert report.mismatched == {"1.weight": ((2, 1, 3, 3), (2, 3, 3, 3))}
    assert report.adapted == {}


def test_load_report_str_truncates_long_lists():
    report = LoadReport(loaded=[], missing=[f"k{i}" for i in range(20)])
    assert "missing (20): k0, k1" in str(report) and "(12 more)" in str(report)


# --------------------------------------------------------------------------------- adaptation


def test_three_to_one_gives_same_response_on_gray_image():
    w = torch.randn(8, 3, 3, 3, dtype=torch.float64)
    gray = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    rgb = gray.expand(-1, 3, -1, -1)
    torch.testing.assert_close(F.conv2d(gray, adapt_input_conv(w, 1)), F.conv2d(rgb, w))


def test_one_to_three_gives_same_response_on_replicated_gray_image():
    w = torch.randn(8, 1, 5, 5, dtype=torch.float64)
    gray = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    w3 = adapt_input_conv(w, 3)
    assert w3.shape == (8, 3, 5, 5)
    torch.testing.assert_close(w3, w.expand(-1, 3, -1, -1) / 3)
    torch.testing.assert_close(F.conv2d(gray.expand(-1, 3, -1, -1), w3), F.conv2d(gray, w))


def test_adapt_keeps_dtype_and_identity():
    w = torch.randn(2, 3, 1, 1).half()
    assert adapt_input_conv(w, 1).dtype == torch.float16
    assert adapt_input_conv(w, 3) is w


@given(src=st.integers(1, 5), dst=st.integers(1, 7))
def test_adapt_general_counts_preserve_constant_image_response(src, dst):
    # timm's rule keeps the response to an image equal on every channel (sum over channels kept).
    g = torch.Generator().manual_seed(src * 10 + dst)
    w = torch.randn(4, src, 3, 3, dtype=torch.float64, generator=g)
    out = adapt_input_conv(w, dst)
    assert out.shape == (4, dst, 3, 3)
    if dst == 1 or dst % src == 0:
        torch.testing.assert_close(out.sum(1), w.sum(1))


def test_adapt_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(O, I, kh, kw\); got \(3, 3\)"):
        adapt_input_conv(torch.ones(3, 3), 1)
    with pytest.raises(ValueError, match="in_chans must be >= 1"):
        adapt_input_conv(torch.ones(1, 3, 1, 1), 0)
