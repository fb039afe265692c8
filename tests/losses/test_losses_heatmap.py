"""Tests for sslkeypoint.losses.heatmap: golden values, masking, modules, shape errors."""

from __future__ import annotations

import pytest
import torch

from sslkeypoint.losses import (
    HeatmapMSELoss,
    MaskedHeatmapMSELoss,
    heatmap_mse_loss,
    masked_heatmap_mse_loss,
)


def golden_pair() -> tuple[torch.Tensor, torch.Tensor]:
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 0, 0] = 2.0  # squared error 4 in one of the 4 pixels of map 0
    target[0, 1] = 1.0  # squared error 1 in all 4 pixels of map 1
    return pred, target


def test_golden_values() -> None:
    pred, target = golden_pair()
    assert heatmap_mse_loss(pred, target).item() == pytest.approx((4 + 4) / 8)
    # Per-map errors: map 0 = 4/4 = 1, map 1 = 4/4 = 1; only map 0 visible.
    assert masked_heatmap_mse_loss(pred, target, torch.tensor([[True, False]])).item() == pytest.approx(1.0)
    pred[0, 0] = 0.5  # map 0: (1.5² + 3 · 0.5²) / 4 = 3 / 4; map 1 stays 1
    assert masked_heatmap_mse_loss(pred, target, torch.tensor([[True, True]])).item() == pytest.approx(0.875)
    assert masked_heatmap_mse_loss(pred, target, torch.tensor([[True, False]])).item() == pytest.approx(0.75)
    assert heatmap_mse_loss(pred, target).item() == pytest.approx((3 + 4) / 8)


def test_all_visible_equals_plain_mse_and_none_visible_is_zero_with_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 4, 5, 6, generator=g, requires_grad=True)
    target = torch.rand(3, 4, 5, 6, generator=g)
    all_visible = torch.ones(3, 4, dtype=torch.bool)
    torch.testing.assert_close(masked_heatmap_mse_loss(pred, target, all_visible), heatmap_mse_loss(pred, target))
    torch.testing.assert_close(masked_heatmap_mse_loss(pred, target, None), heatmap_mse_loss(pred, target))
    none = masked_heatmap_mse_loss(pred, target, torch.zeros(3, 4, dtype=torch.bool))
    assert none.item() == 0.0
    none.backward()
    assert pred.grad is not None and torch.count_nonzero(pred.grad) == 0


def test_invisible_maps_do_not_change_the_masked_loss() -> None:
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g)
    visible = torch.tensor([[True, False, True], [False, True, True]])
    changed = pred.clone()
    changed[~visible] = 100.0
    torch.testing.assert_close(
        masked_heatmap_mse_loss(changed, target, visible), masked_heatmap_mse_loss(pred, target, visible)
    )


def test_modules_are_the_functions_and_compute_in_float32() -> None:
    g = torch.Generator().manual_seed(2)
    pred, target = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g)
    visible = torch.tensor([[True, False, True], [True, True, False]])
    assert torch.equal(HeatmapMSELoss()(pred, target), heatmap_mse_loss(pred, target))
    assert torch.equal(HeatmapMSELoss()(pred, target, visible), heatmap_mse_loss(pred, target))
    assert torch.equal(MaskedHeatmapMSELoss()(pred, target, visible), masked_heatmap_mse_loss(pred, target, visible))
    assert heatmap_mse_loss(pred.half(), target.half()).dtype == torch.float32
    assert masked_heatmap_mse_loss(pred.bfloat16(), target, visible).dtype == torch.float32


def test_bad_shapes() -> None:
    pred, target = golden_pair()
    with pytest.raises(ValueError, match="same shape"):
        heatmap_mse_loss(pred, target[:, :1])
    with pytest.raises(ValueError, match="same shape"):
        masked_heatmap_mse_loss(pred, target[:, :1], torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, K, h, w\)"):
        heatmap_mse_loss(pred[0], target[0])
    with pytest.raises(ValueError, match=r"visible must have shape \(B, K\) = \(1, 2\); got \(2,\)"):
        masked_heatmap_mse_loss(pred, target, torch.ones(2, dtype=torch.bool))
