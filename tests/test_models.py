"""Tests for sslkeypoint.models.HeatmapUNet."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from sslkeypoint.encoders import TimmEncoder, UNetEncoder
from sslkeypoint.models import HEAD_PRIOR, DecoderStage, HeatmapUNet

SMALL = {"widths": (4, 8, 16, 32), "bottleneck_width": 64}


class _FixedEncoder(nn.Module):
    """A toy encoder with chosen reductions: average pooling + 1x1 convs."""

    def __init__(self, reductions: list[int], channels: list[int], in_chans: int = 1) -> None:
        super().__init__()
        self.reductions, self.channels, self.in_chans = reductions, channels, in_chans
        self.convs = nn.ModuleList(nn.Conv2d(in_chans, c, 1) for c in channels)

    def forward(self, x: Tensor) -> list[Tensor]:
        return [conv(nn.functional.avg_pool2d(x, r)) for conv, r in zip(self.convs, self.reductions)]


@pytest.mark.parametrize("size", [(64, 64), (128, 96)])
@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_unet_output_shape_and_range(size, stride):
    model = HeatmapUNet(UNetEncoder(1, **SMALL), num_keypoints=3, heatmap_stride=stride)
    out = model(torch.randn(2, 1, *size))
    assert out.shape == (2, 3, size[0] // stride, size[1] // stride)
    assert out.min() >= 0 and out.max() <= 1


def test_paper_configuration_256_to_64():
    model = HeatmapUNet(UNetEncoder(1, widths=(8, 16, 32, 64), bottleneck_width=128), 3)
    # stride 4: decode 16 -> 8 -> 4 using the skips at reductions 8 and 4 only
    assert [(s.factor, s.skip_index) for s in model.decoder] == [(2, 3), (2, 2)]
    assert model.decoder_channels == [64, 32]
    assert model(torch.rand(1, 1, 256, 256)).shape == (1, 3, 64, 64)


def test_paper_widths_decoder_channels():
    model = HeatmapUNet(UNetEncoder(), 3)
    assert model.decoder[0].up.in_channels == 1024 and model.decoder[0].up.out_channels == 512
    assert model.decoder[0].block.conv1.in_channels == 1024  # 512 skip + 512 upsampled
    assert model.decoder_channels == [512, 256]
    assert model.embed_dim == 1024 and model.in_chans == 3


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv3_small_050"])
def test_timm_encoders_just_work(name):
    model = HeatmapUNet(TimmEncoder(name, in_chans=1), num_keypoints=3)
    # finest timm feature is at reduction 2, so the decoder stops at the reduction-4 skip
    assert model.decoder[-1].skip_index == 1
    out = model(torch.rand(1, 1, 64, 96))
    assert out.shape == (1, 3, 16, 24)
    assert model.embed(torch.rand(2, 1, 64, 64)).shape == (2, model.embed_dim)


def test_encoder_coarser_than_heatmap_gets_stages_without_skips():
    enc = _FixedEncoder([16, 16, 32], [4, 6, 8])
    model = HeatmapUNet(enc, 2, heatmap_stride=4)
    plan = [(s.factor, s.skip_index) for s in model.decoder]
    assert plan == [(2, 1), (2, None), (2, None)]  # the deepest of the two reduction-16 features
    assert model.decoder_channels == [6, 16, 16]
    assert model(torch.rand(1, 1, 64, 64)).shape == (1, 2, 16, 16)


def test_non_power_of_two_steps():
    enc = _FixedEncoder([3, 12], [4, 8])
    model = HeatmapUNet(enc, 1, heatmap_stride=1)
    assert [(s.factor, s.skip_index) for s in model.decoder] == [(4, 0), (3, None)]
    assert model(torch.rand(1, 1, 24, 36)).shape == (1, 1, 24, 36)


def test_custom_decoder_channels():
    model = HeatmapUNet(UNetEncoder(1, **SMALL), 2, decoder_channels=(12, 10))
    assert model.head.in_channels == 10
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 2, 8, 8)
    with pytest.raises(ValueError, match=r"must give 2 positive widths .* got \(12,\)"):
        HeatmapUNet(UNetEncoder(1, **SMALL), 2, decoder_channels=(12,))


def test_heatmap_stride_equal_to_deepest_reduction_has_no_decoder():
    model = HeatmapUNet(UNetEncoder(1, **SMALL), 2, heatmap_stride=16)
    assert len(model.decoder) == 0
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 2, 2, 2)


def test_gradients_reach_every_parameter():
    model = HeatmapUNet(UNetEncoder(1, widths=(4, 8), bottleneck_width=8), 3, heatmap_stride=2)
    model(torch.rand(2, 1, 16, 16)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_timm_gradients_reach_every_parameter():
    # timm zero-initialises the last BN of each residual block, which blocks the gradient of the
    # convs before it at initialisation; switch that off to see the wiring.
    model = HeatmapUNet(TimmEncoder("resnet18", in_chans=1, zero_init_last=False), 2)
    model(torch.rand(2, 1, 32, 32)).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_embed_is_pooled_deepest_feature():
    model = HeatmapUNet(UNetEncoder(1, **SMALL), 3).eval()
    x = torch.rand(2, 1, 32, 48)
    with torch.no_grad():
        emb = model.embed(x)
        deepest = model.encoder(x)[-1]
    assert emb.shape == (2, 64) == (2, model.embed_dim)
    torch.testing.assert_close(emb, deepest.mean(dim=(2, 3)))


def test_bad_input_sizes_and_channels():
    model = HeatmapUNet(UNetEncoder(1, **SMALL), 3)
    with pytest.raises(ValueError, match=r"\(H, W\) = \(250, 256\) is not a multiple of 16"):
        model(torch.rand(1, 1, 250, 256))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\); got \(1, 3, 32, 32\)"):
        model(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="not a multiple of 16"):
        model.embed(torch.rand(1, 1, 40, 32))


def test_bad_configuration():
    with pytest.raises(ValueError, match="coarser than the encoder's deepest feature"):
        HeatmapUNet(UNetEncoder(1, **SMALL), 3, heatmap_stride=32)
    with pytest.raises(ValueError, match="cannot be reached"):
        HeatmapUNet(_FixedEncoder([8], [4]), 1, heatmap_stride=3)
    with pytest.raises(ValueError, match="num_keypoints"):
        HeatmapUNet(UNetEncoder(1, **SMALL), 0)
    with pytest.raises(ValueError, match="not an encoder"):
        HeatmapUNet(nn.Conv2d(1, 1, 1), 1)
    with pytest.raises(ValueError, match="non-decreasing"):
        HeatmapUNet(_FixedEncoder([4, 2], [1, 1]), 1)


def test_decoder_stage_skip_size_check():
    stage = DecoderStage(8, 4, 4, skip_index=2)
    with pytest.raises(ValueError, match=r"upsampled to \(8, 8\) but the skip feature 2 is \(9, 9\)"):
        stage(torch.rand(1, 8, 4, 4), torch.rand(1, 4, 9, 9))


def test_state_dict_names_are_readable():
    names = list(HeatmapUNet(UNetEncoder(1, **SMALL), 3).state_dict())
    assert names[0] == "encoder.blocks.0.conv1.weight"
    assert "decoder.0.up.weight" in names and "decoder.1.block.conv2.weight" in names
    assert names[-2:] == ["head.weight", "head.bias"]


def test_heatmaps_start_near_the_head_prior() -> None:
    # Targets are ~0 almost everywhere: a head that starts at 0.5 gets pushed down hard by the
    # first MSE steps, and with Adam a channel can end deep in the sigmoid's flat tail, where the
    # gradient vanishes and its landmark collapses. The head's bias starts at logit(HEAD_PRIOR).
    torch.manual_seed(0)
    model = HeatmapUNet(UNetEncoder(in_chans=1, widths=(4, 8), bottleneck_width=8), num_keypoints=3)
    assert torch.allclose(model.head.bias, torch.full((3,), math.log(HEAD_PRIOR / (1 - HEAD_PRIOR))))
    out = model(torch.rand(2, 1, 32, 32))
    assert HEAD_PRIOR / 3 < float(out.median()) < HEAD_PRIOR * 3
