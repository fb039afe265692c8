"""Tests for sslkeypoint.encoders: the interface, the U-Net encoder, timm encoders and the registry."""

from __future__ import annotations

import itertools

import pytest
import timm
import torch

from sslkeypoint.encoders import (
    TimmEncoder,
    UNetEncoder,
    create_encoder,
    list_encoders,
    remap_timm_state_dict,
    validate_encoder,
)
from sslkeypoint.weights import save_state_dict

SMALL = {"widths": (4, 8, 16, 32), "bottleneck_width": 64}


def _check_interface(encoder, x):
    validate_encoder(encoder)
    feats = encoder(x)
    assert isinstance(feats, list) and len(feats) == len(encoder.channels) == len(encoder.reductions)
    for f, c, r in zip(feats, encoder.channels, encoder.reductions):
        assert f.shape == (x.shape[0], c, x.shape[2] // r, x.shape[3] // r)
    return feats


# ------------------------------------------------------------------------------------------ U-Net


@pytest.mark.parametrize("size", [(32, 32), (64, 48), (96, 160)])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_unet_shapes(size, in_chans):
    enc = UNetEncoder(in_chans, **SMALL)
    assert enc.reductions == [1, 2, 4, 8, 16]
    assert enc.channels == [4, 8, 16, 32, 64]
    assert enc.in_chans == in_chans
    _check_interface(enc, torch.rand(2, in_chans, *size))


def test_unet_paper_defaults_and_parameter_names():
    enc = UNetEncoder()
    assert enc.channels == [64, 128, 256, 512, 1024] and enc.in_chans == 3
    names = set(enc.state_dict())
    for name in [
        "blocks.0.conv1.weight",
        "blocks.0.bn1.running_mean",
        "blocks.3.conv2.weight",
        "bottleneck.conv1.weight",
        "bottleneck.bn2.bias",
    ]:
        assert name in names
    assert enc.state_dict()["blocks.0.conv1.weight"].shape == (64, 3, 3, 3)
    assert enc.state_dict()["bottleneck.conv2.weight"].shape == (1024, 1024, 3, 3)
    # two 3x3 convs + BN per block, no conv bias: (c_in*9 + c_out*9 + 4) * c_out each
    widths = [3, 64, 128, 256, 512, 1024]
    expected = sum(
        ci * co * 9 + co * co * 9 + 4 * co for ci, co in itertools.pairwise(widths)
    )
    assert sum(p.numel() for p in enc.parameters()) == expected


def test_unet_other_depth():
    enc = UNetEncoder(1, widths=(4, 8), bottleneck_width=8)
    assert enc.reductions == [1, 2, 4]
    _check_interface(enc, torch.rand(1, 1, 16, 16))


def test_unet_gradients_reach_every_parameter():
    enc = UNetEncoder(1, **SMALL)
    feats = enc(torch.rand(2, 1, 32, 32))
    sum(f.square().mean() for f in feats).backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_unet_bad_arguments_and_input():
    with pytest.raises(ValueError, match="widths"):
        UNetEncoder(widths=())
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\); got \(2, 3, 32, 32\)"):
        UNetEncoder(1, **SMALL)(torch.rand(2, 3, 32, 32))


# ------------------------------------------------------------------------------------------- timm


@pytest.mark.parametrize(
    ("name", "in_chans"),
    [("resnet18", 1), ("resnet18", 3), ("mobilenetv3_small_050", 1), ("convnext_atto", 1)],
)
def test_timm_shapes(name, in_chans):
    enc = TimmEncoder(name, in_chans=in_chans)
    info = timm.create_model(name, features_only=True).feature_info
    assert enc.channels == info.channels() and enc.reductions == info.reduction()
    assert enc.in_chans == in_chans
    for size in [(64, 64), (96, 64)]:
        _check_interface(enc, torch.rand(1, in_chans, *size))


def test_timm_out_indices():
    enc = TimmEncoder("resnet18", out_indices=(1, 2, 3))
    assert enc.reductions == [4, 8, 16] and enc.channels == [64, 128, 256]
    _check_interface(enc, torch.rand(1, 3, 64, 64))


def test_timm_refuses_download_and_unknown_names():
    with pytest.raises(ValueError, match="never downloads"):
        TimmEncoder("resnet18", pretrained=True)
    with pytest.raises(ValueError, match=r"close matches: .*resnet18"):
        TimmEncoder("resnet188")


def test_timm_weight_file_into_one_channel_encoder(tmp_path):
    full = timm.create_model("resnet18", pretrained=False).eval()
    path = save_state_dict(full, tmp_path / "resnet18.safetensors")
    enc = TimmEncoder("resnet18", in_chans=1, pretrained_file=path).eval()
    report = enc.load_report
    assert report is not None
    assert report.complete
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    assert report.adapted == {"conv1.weight": ((64, 3, 7, 7), (64, 1, 7, 7))}
    torch.testing.assert_close(
        enc.model.conv1.weight, full.conv1.weight.sum(1, keepdim=True)
    )
    assert torch.equal(enc.model.layer4[1].bn2.running_var, full.layer4[1].bn2.running_var)
    # gray image through the 1-channel encoder == the same image on 3 channels through the original
    gray = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        deepest = enc(gray)[-1]
        reference = full.forward_features(gray.expand(-1, 3, -1, -1))
    torch.testing.assert_close(deepest, reference, rtol=1e-4, atol=1e-4)


def test_timm_torch_file_with_flattened_names(tmp_path):
    # convnext's features-only model renames stem.0 -> stem_0 (flatten_sequential)
    full = timm.create_model("convnext_atto", pretrained=False)
    torch.save({"state_dict": full.state_dict(), "epoch": 1}, tmp_path / "convnext.pth")
    enc = TimmEncoder("convnext_atto", in_chans=3, pretrained_file=tmp_path / "convnext.pth")
    report = enc.load_report
    assert report is not None and report.complete
    assert all(k.startswith("head.") for k in report.unexpected)
    assert torch.equal(enc.model.stem_0.weight, full.stem[0].weight)


def test_remap_keeps_exact_names_and_unused_keys():
    sd = {"a.weight": torch.zeros(1), "b.0.w": torch.ones(1), "fc.w": torch.ones(2)}
    out = remap_timm_state_dict(sd, ["a.weight", "b_0.w"])
    assert sorted(out) == ["a.weight", "b_0.w", "fc.w"]
    assert torch.equal(out["b_0.w"], torch.ones(1))


# --------------------------------------------------------------------------------------- registry


def test_create_encoder_by_name():
    unet = create_encoder("unet", in_chans=1, **SMALL)
    assert isinstance(unet, UNetEncoder) and unet.in_chans == 1
    res = create_encoder("timm:resnet18", in_chans=1)
    assert isinstance(res, TimmEncoder) and res.name == "resnet18"


def test_list_encoders():
    assert list_encoders() == ["timm:<name>", "unet"]
    assert list_encoders("unet") == ["unet"]
    found = list_encoders("timm:resnet1*")
    assert "timm:resnet18" in found and all(n.startswith("timm:resnet1") for n in found)
    assert len(list_encoders("timm:*")) == len(timm.list_models())


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("unett", r"valid choices: timm:<name>, unet \(did you mean: unet\?\)"),
        ("resnet18", r"did you mean: timm:resnet18\?"),
        ("timm:resnet188", r"timm has no model 'resnet188' \(did you mean: .*timm:resnet18"),
        ("vgg:16", r"valid choices: timm:<name>, unet$"),
    ],
)
def test_unknown_encoder_names(name, pattern):
    with pytest.raises(ValueError, match=pattern):
        create_encoder(name)
