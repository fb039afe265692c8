"""Tests for sslkeypoint.weights: safe files, partial loading and input-channel adaptation."""

from __future__ import annotations

import argparse
import collections
import io
import os
import pickle
import re

import numpy as np
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
    WeightFileError,
    adapt_input_conv,
    load_partial_state_dict,
    load_state_dict_file,
    read_weight_file,
    save_state_dict,
)
from sslkeypoint.weights.files import _pickle_globals


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


# ------------------------------------------------------------------------ unusable weight files


class _RunsCommand:
    """Unpickling it would run a shell command."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _sd() -> dict:
    return {"w": torch.ones(2, 3)}


def _truncate(path, keep: int):
    path.write_bytes(path.read_bytes()[:keep])
    return path


def _cut_torch_file(path, keep: int, legacy: bool = False) -> None:
    torch.save(_sd(), path, _use_new_zipfile_serialization=not legacy)
    _truncate(path, keep)


def _cut_safetensors(path, keep_from_end: int | None = None, keep: int = 0) -> None:
    save_state_dict(_sd(), path)
    _truncate(path, path.stat().st_size - keep_from_end if keep_from_end is not None else keep)


def test_weight_file_error_names_the_file_and_survives_pickling(tmp_path) -> None:
    err = WeightFileError(tmp_path / "w.pth", "is empty (0 bytes)")
    assert isinstance(err, ValueError) and str(err) == f"{tmp_path / 'w.pth'}: is empty (0 bytes)"
    back = pickle.loads(pickle.dumps(err))  # errors cross process boundaries (DataLoader workers, DDP)
    assert str(back) == str(err) and back.path == err.path
    unsafe = UnsafeCheckpointError("m.pth", "refused")
    unsafe.names = ("posix.system",)
    assert isinstance(unsafe, WeightFileError) and pickle.loads(pickle.dumps(unsafe)).names == ("posix.system",)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p.write_text("lr: 0.1\nepochs: 3\n"), "is not a weight file: it holds text (it starts with 'lr: 0.1"),
        (lambda p: p.write_bytes(b"\x00\x01\x02\x03" * 8), "no known weight format (its first bytes are 00 01 02 03"),
        (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 32), "an HDF5 file"),
        (lambda p: np.save(open(p, "wb"), np.ones(3)), "a numpy .npy array"),
        (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
        (lambda p: p.mkdir(), "is a folder, not a weight file"),
        (lambda p: np.savez(open(p, "wb"), a=np.ones(3)), "is a zip archive but not a torch checkpoint (no data.pkl inside; it holds a.npy)"),
        (lambda p: _cut_torch_file(p, 100), "is a truncated or damaged torch checkpoint: the zip archive's directory"),
        (lambda p: _cut_torch_file(p, 60, legacy=True), "is a truncated or damaged torch checkpoint (the format before zip archives)"),
        (lambda p: p.write_bytes(pickle.dumps({"w": [1.0, 2.0]})), "is a plain Python pickle (pickle.dump)"),
        (lambda p: _cut_safetensors(p, keep=20), "is a truncated safetensors file: its header alone needs"),
        (lambda p: _cut_safetensors(p, keep_from_end=1), "is a truncated safetensors file: its 1 tensors need"),
    ],
    ids=["text", "binary", "hdf5", "npy", "empty", "folder", "npz", "cut-zip", "cut-legacy", "plain-pickle", "cut-header", "cut-data"],
)
def test_unusable_files_are_named_and_described(tmp_path, make, fragment) -> None:
    path = tmp_path / "weights.pth"
    make(path)
    with pytest.raises(WeightFileError, match=re.escape(fragment)) as info:
        read_weight_file(path)
    assert str(info.value).startswith(f"{path}: ") and "weights_only=False" not in str(info.value)
    assert not isinstance(info.value, UnsafeCheckpointError)
    with pytest.raises(WeightFileError, match=re.escape(fragment)):
        load_partial_state_dict(nn.Linear(3, 2), path)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_archive_is_recognised(tmp_path) -> None:
    path = tmp_path / "model.pt"
    torch.jit.trace(nn.Linear(3, 2), torch.zeros(1, 3)).save(str(path))
    with pytest.raises(WeightFileError, match=r"model\.pt: is a TorchScript program \(torch\.jit\.save"):
        load_state_dict_file(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_pickle_that_runs_a_command_is_refused_and_named(tmp_path, legacy) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(1), "x": _RunsCommand(marker)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(UnsafeCheckpointError, match=r"would call (posix|nt)\.system, which runs commands") as info:
        load_state_dict_file(path)
    assert info.value.names == (f"{os.system.__module__}.system",) and not marker.exists()
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(_RunsCommand(marker), protocol=4))
    with pytest.raises(UnsafeCheckpointError, match=r"would call (posix|nt)\.system"):
        load_state_dict_file(plain)
    assert not marker.exists()


def test_custom_objects_are_named_with_a_safe_way_to_convert(tmp_path) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "extra": _Custom(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_state_dict_file(path)
    assert info.value.names == ("argparse.Namespace", "tests.test_weights._Custom")
    message = str(info.value)
    assert "(argparse.Namespace, tests.test_weights._Custom)" in message
    assert "torch.serialization.safe_globals" in message and "weights_only=False" not in message


@pytest.mark.parametrize("protocol", range(6))
def test_static_pickle_scan_lists_globals_without_running_them(protocol) -> None:
    data = pickle.dumps([_Custom, _Custom, os.path.join, {"k": "posix"}], protocol=protocol)
    names = _pickle_globals(io.BytesIO(data))
    assert set(names) == {"tests.test_weights._Custom", f"{os.path.join.__module__}.join"}
    with pytest.raises(ValueError):
        _pickle_globals(io.BytesIO(data[: len(data) // 2]))


def test_legacy_and_misnamed_torch_files_still_load(tmp_path) -> None:
    legacy = tmp_path / "old.pth"
    torch.save({"state_dict": _sd()}, legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(load_state_dict_file(legacy)["w"], torch.ones(2, 3))
    misnamed = tmp_path / "w.safetensors"  # a torch checkpoint under a safetensors name
    torch.save(_sd(), misnamed)
    assert torch.equal(load_state_dict_file(misnamed)["w"], torch.ones(2, 3))


def test_text_files_named_like_weights_say_what_they_are(tmp_path) -> None:
    path = tmp_path / "encoder.safetensors"
    path.write_text("encoder weights go here\n")
    with pytest.raises(WeightFileError, match=r"is named \.safetensors but is not one: it holds text \(it starts with 'encoder weights"):
        load_state_dict_file(path)
    lfs = "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1234\n"
    for name in ("encoder.safetensors", "resnet18.pth"):
        (tmp_path / name).write_text(lfs)
        with pytest.raises(WeightFileError, match=r"a Git LFS pointer, not the file itself \(fetch it with `git lfs pull`\)"):
            load_state_dict_file(tmp_path / name)


def test_read_weight_file_returns_the_whole_checkpoint(tmp_path) -> None:
    path = tmp_path / "c.ckpt"
    torch.save({"epoch": 2, "state_dict": _sd(), "sslkeypoint": {"stage": 1}}, path)
    ckpt = read_weight_file(path)
    assert ckpt["epoch"] == 2 and ckpt["sslkeypoint"] == {"stage": 1}
    st_file = save_state_dict(_sd(), tmp_path / "w.safetensors")
    assert list(read_weight_file(st_file)) == ["w"]
