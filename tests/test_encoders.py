"""Tests for sslkeypoint.encoders: the interface, the U-Net encoder, timm encoders and the registry."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import timm
import torch

from sslkeypoint.encoders import (
    TimmEncoder,
    UNetEncoder,
    create_encoder,
    list_encoders,
    validate_encoder,
)
from sslkeypoint.weights import UnsafeCheckpointError, save_state_dict

SMALL: dict[str, Any] = {"widths": (4, 8, 16, 32), "bottleneck_width": 64}


def _check_interface(encoder, x):
    validate_encoder(encoder)
    feats = encoder(x)
    assert isinstance(feats, list) and len(feats) == len(encoder.channels) == len(
        encoder.reductions
    )
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
    expected = sum(ci * co * 9 + co * co * 9 + 4 * co for ci, co in itertools.pairwise(widths))
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
    info: Any = timm.create_model(name, features_only=True).feature_info
    assert enc.channels == info.channels() and enc.reductions == info.reduction()
    assert enc.in_chans == in_chans
    for size in [(64, 64), (96, 64)]:
        _check_interface(enc, torch.rand(1, in_chans, *size))


def test_timm_out_indices():
    enc = TimmEncoder("resnet18", out_indices=(1, 2, 3))
    assert enc.reductions == [4, 8, 16] and enc.channels == [64, 128, 256]
    _check_interface(enc, torch.rand(1, 3, 64, 64))


def test_timm_downloads_only_on_request_and_says_what_to_do_offline(monkeypatch):
    import timm

    calls = []
    real = timm.create_model

    def offline(name, **kwargs):
        calls.append(kwargs.get("pretrained"))
        if kwargs.get("pretrained"):
            raise ConnectionError("no network")
        return real(name, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    TimmEncoder("resnet18")
    assert calls == [False]  # the default downloads nothing
    with pytest.raises(ValueError, match=r"could not download .*ConnectionError.*pass pretrained_file="):
        TimmEncoder("resnet18", pretrained=True)
    assert calls[-1] is True


def test_timm_refuses_unknown_names():
    with pytest.raises(ValueError, match=r"close matches: .*resnet18"):
        TimmEncoder("resnet188")


# ------------------------------------------------------------------- timm: weights from a local file


def _save(model_or_sd, path):
    """Save a state dict as safetensors (by suffix) or as a torch file (``.pth``, ``.bin``)."""
    sd = model_or_sd.state_dict() if isinstance(model_or_sd, torch.nn.Module) else model_or_sd
    if path.suffix == ".safetensors":
        return save_state_dict(sd, path)
    torch.save({"state_dict": sd, "epoch": 1}, path)
    return path


def _full_key(features_key, full_keys):
    """The full model's name of a features-only key: the same, or with timm's flattened
    ``stem_0``-style first segment read as ``stem.0``."""
    head, _, rest = features_key.partition(".")
    candidates = [features_key] + [
        f"{head[:i]}.{head[i + 1 :]}.{rest}" for i, ch in enumerate(head) if ch == "_"
    ]
    found = [c for c in candidates if c in full_keys]
    assert len(found) == 1, (features_key, found)
    return found[0]


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".bin"])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_timm_weight_file_round_trip(tmp_path, suffix, in_chans):
    torch.manual_seed(0)
    full: Any = timm.create_model("resnet18").eval()  # random init: nothing downloaded
    path = _save(full, tmp_path / f"resnet18{suffix}")
    enc = TimmEncoder("resnet18", in_chans=in_chans, pretrained_file=path).eval()
    full_sd, enc_sd = full.state_dict(), enc.model.state_dict()
    assert set(enc_sd) == set(full_sd) - {"fc.weight", "fc.bias"}
    for key, value in enc_sd.items():
        if key == "conv1.weight" and in_chans == 1:
            expected = timm.models.adapt_input_conv(1, full_sd[key])
            assert value.shape == (64, 1, 7, 7)
            assert torch.equal(value, expected)
            torch.testing.assert_close(value, full_sd[key].sum(1, keepdim=True))
        else:
            assert torch.equal(value, full_sd[key]), key
    report = enc.load_report
    assert report is not None and report.complete
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    assert len(report.loaded) == len(enc_sd)
    if in_chans == 1:
        assert report.adapted == {"conv1.weight": ((64, 3, 7, 7), (64, 1, 7, 7))}
    else:
        assert report.adapted == {}
    model: Any = enc.model
    assert model.pretrained_cfg["file"] == str(path)


def test_timm_one_channel_encoder_sees_gray_images_like_the_rgb_model(tmp_path):
    torch.manual_seed(0)
    full: Any = timm.create_model("resnet18").eval()
    path = save_state_dict(full, tmp_path / "resnet18.safetensors")
    enc = TimmEncoder("resnet18", in_chans=1, pretrained_file=path).eval()
    gray = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        deepest = enc(gray)[-1]
        reference = full.forward_features(gray.expand(-1, 3, -1, -1))
    torch.testing.assert_close(deepest, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("name", "in_chans"), [("convnext_atto", 1), ("efficientnet_b0", 3)])
def test_timm_builder_handles_renamed_and_pruned_feature_models(tmp_path, name, in_chans):
    # convnext's feature wrapper renames stem.0 -> stem_0 and stages.0 -> stages_0;
    # efficientnet's feature class drops conv_head/bn2 and the classifier
    torch.manual_seed(0)
    full: Any = timm.create_model(name).eval()
    path = _save(full, tmp_path / f"{name}.pth")
    enc = TimmEncoder(name, in_chans=in_chans, pretrained_file=path).eval()
    full_sd = full.state_dict()
    first_conv = full.pretrained_cfg["first_conv"] + ".weight"
    renamed = 0
    for key, value in enc.model.state_dict().items():
        source = _full_key(key, full_sd)
        renamed += source != key
        expected = full_sd[source]
        if source == first_conv and in_chans != 3:
            expected = timm.models.adapt_input_conv(in_chans, expected)
        assert torch.equal(value, expected), key
    assert renamed > 0 if name == "convnext_atto" else renamed == 0
    x = torch.rand(1, in_chans, 64, 64)
    with torch.no_grad():
        reference = full.forward_intermediates(x.expand(-1, 3, -1, -1), intermediates_only=True)
        features = enc(x)
    assert len(features) == len(reference)
    for feature, expected in zip(features, reference):
        torch.testing.assert_close(feature, expected, rtol=1e-4, atol=1e-4)


def test_timm_file_extras_timm_handles(tmp_path):
    # another classifier size, DDP's "module." prefix: both are timm's business and load fine
    torch.manual_seed(0)
    full: Any = timm.create_model("resnet18", num_classes=10)
    sd = {f"module.{k}": v for k, v in full.state_dict().items()}
    enc = TimmEncoder("resnet18", in_chans=3, pretrained_file=_save(sd, tmp_path / "ddp.pth"))
    model: Any = enc.model
    assert torch.equal(model.layer4[1].conv2.weight, full.layer4[1].conv2.weight)
    assert enc.load_report is not None
    assert sorted(enc.load_report.unexpected) == ["fc.bias", "fc.weight"]


def test_timm_weight_file_never_touches_the_network(tmp_path, monkeypatch):
    import socket

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    path = save_state_dict(timm.create_model("resnet18"), tmp_path / "resnet18.safetensors")
    enc = TimmEncoder("resnet18", in_chans=1, pretrained_file=path)
    assert attempts == []
    model: Any = enc.model
    cfg = model.pretrained_cfg
    assert cfg["file"] == str(path)
    assert not cfg.get("url") and not cfg.get("hf_hub_id")  # no remote source left to fall back on


def test_timm_builder_alone_accepts_a_file_of_another_architecture(tmp_path):
    # Why TimmEncoder checks files itself: a features-only build loads with strict=False (timm
    # drops the classifier), so extra or missing tensors are only logged. If this starts to raise,
    # timm has become strict and the check in TimmEncoder may be dropped.
    path = save_state_dict(timm.create_model("resnet34"), tmp_path / "resnet34.safetensors")
    timm.create_model(
        "resnet18",
        features_only=True,
        pretrained=True,
        pretrained_cfg_overlay={"file": str(path), "url": None, "hf_hub_id": None},
    )


def test_timm_weight_file_of_another_architecture_raises(tmp_path):
    # resnet34 has 3, 4, 6, 3 blocks where resnet18 has 2, 2, 2, 2: 8 extra basic blocks of
    # 12 tensors each (2 convs, 2 BNs of 5 tensors), none with a downsample branch
    path = save_state_dict(timm.create_model("resnet34"), tmp_path / "resnet34.safetensors")
    with pytest.raises(
        ValueError,
        match=r"resnet34\.safetensors: the weights do not fit timm model "
        r"'resnet18'(?s:.*)unexpected \(96\): layer1\.2\.",
    ):
        TimmEncoder("resnet18", pretrained_file=path)
    with pytest.raises(ValueError, match=r"resnet34\.safetensors(?s:.*)mismatched"):
        TimmEncoder("resnet50", pretrained_file=path)


def test_timm_partial_weight_file_raises(tmp_path):
    # the last basic block: conv1, bn1 (5 tensors), conv2, bn2 (5 tensors) = 12 tensors
    sd = {
        k: v for k, v in timm.create_model("resnet18").state_dict().items() if "layer4.1." not in k
    }
    path = _save(sd, tmp_path / "partial.pth")
    with pytest.raises(
        ValueError, match=r"partial\.pth(?s:.*)missing \(12\): layer4\.1\.conv1\.weight"
    ):
        TimmEncoder("resnet18", pretrained_file=path)


def test_timm_first_conv_may_differ_only_in_input_channels(tmp_path):
    sd = timm.create_model("resnet18").state_dict()
    sd["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    path = save_state_dict(sd, tmp_path / "kernel5.safetensors")
    with pytest.raises(
        ValueError, match=r"conv1\.weight source \(64, 3, 5, 5\) vs target \(64, 1, 7, 7\)"
    ):
        TimmEncoder("resnet18", in_chans=1, pretrained_file=path)


_UNPICKLED: list[str] = []


def _mark_unpickled():
    _UNPICKLED.append("code ran while reading a weight file")


class _Payload:
    def __reduce__(self):
        return (_mark_unpickled, ())


def test_timm_bad_weight_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.safetensors"):
        TimmEncoder("resnet18", pretrained_file=tmp_path / "nothing.safetensors")
    for name in ["garbage.pth", "garbage.safetensors"]:
        (tmp_path / name).write_bytes(b"not a weight file at all" * 10)
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            TimmEncoder("resnet18", pretrained_file=tmp_path / name)
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"state_dict": timm.create_model("resnet18").state_dict(), "x": _Payload()}, unsafe)
    with pytest.raises(UnsafeCheckpointError, match=r"unsafe\.pth: refused for safety"):
        TimmEncoder("resnet18", pretrained_file=unsafe)
    assert _UNPICKLED == []
    with pytest.raises(ValueError, match="not both"):
        TimmEncoder("resnet18", pretrained=True, pretrained_file=unsafe)


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
