"""Tests for sslkeypoint.visualize: prediction overlays and the target-heatmap grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sslkeypoint.data import KeypointDataset, KeypointRecord
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.measures import AngleMeasure, DistanceMeasure
from sslkeypoint.visualize import PALETTE, draw_predictions, render_keypoint_grid, to_pil_image

KP = [[40.0, 10.0], [10.0, 10.0], [40.0, 50.0]]
AOP = {"AoP": AngleMeasure(vertex=0, first=1, second=2)}


def test_to_pil_image_kinds(tmp_path) -> None:
    f = tmp_path / "a.jpg"
    Image.fromarray(np.full((4, 6), 200, np.uint8)).save(f, format="PNG")  # PNG named .jpg
    for image in (f, torch.ones(3, 4, 6), torch.ones(4, 6), np.ones((4, 6, 1), np.float32), np.zeros((4, 6, 4), np.uint8)):
        out = to_pil_image(image)
        assert out.mode == "RGB" and out.size == (6, 4)
    assert to_pil_image(torch.full((1, 2, 2), 0.5)).getpixel((0, 0)) == (128, 128, 128)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        to_pil_image(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        to_pil_image(np.zeros((4, 4, 2)))


def test_draw_predictions_markers_lines_and_gt() -> None:
    image = torch.zeros(1, 64, 64)
    out = draw_predictions(image, KP, gt=[[44.0, 14.0], [10.0, 10.0], [40.0, 50.0]], measures=AOP, radius=2)
    assert out.size == (64, 64)
    # Predicted markers in their landmark colours (drawn last, on top).
    assert out.getpixel((40, 10)) == PALETTE[0]
    assert out.getpixel((10, 10)) == PALETTE[1]
    assert out.getpixel((40, 50)) == PALETTE[2]
    # The AoP construction: PS1->PS2 is the horizontal line y = 10, PS1->FH1 the vertical x = 40.
    assert out.getpixel((25, 10)) == (255, 255, 255)
    assert out.getpixel((40, 30)) == (255, 255, 255)
    # Ground-truth ring (green) around (44, 14), off the prediction.
    ring = np.asarray(out)[11:18, 41:48]
    assert ((ring == (0, 230, 0)).all(-1)).any()
    # The input is untouched.
    assert float(image.abs().sum()) == 0.0


def test_draw_predictions_skips_missing_and_validates() -> None:
    kp = [[40.0, 10.0], [float("nan"), float("nan")], [40.0, 50.0]]
    out = draw_predictions(np.zeros((64, 64), np.uint8), kp, names=["PS1", "PS2", "FH1"], measures=AOP)
    assert out.getpixel((25, 10)) == (0, 0, 0)  # no PS1->PS2 line without PS2
    flat = draw_predictions(np.zeros((64, 64), np.uint8), [40.0, 10.0, 10.0, 10.0])
    assert flat.getpixel((10, 10)) == PALETTE[1]
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        draw_predictions(np.zeros((8, 8)), [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="gt must have the same shape"):
        draw_predictions(np.zeros((8, 8)), KP, gt=KP[:2])
    with pytest.raises(ValueError, match="names"):
        draw_predictions(np.zeros((8, 8)), KP, names=["a"])
    with pytest.raises(ValueError, match="measure 'far' uses landmarks"):
        draw_predictions(np.zeros((8, 8)), KP, measures={"far": DistanceMeasure(0, 5)})


def test_draw_a_distance_measure() -> None:
    out = draw_predictions(np.zeros((64, 64), np.uint8), KP, measures={"span": DistanceMeasure(1, 2)}, radius=2)
    # The span PS2 (10, 10) -> FH1 (40, 50): its midpoint (25, 30) is on the white line.
    assert out.getpixel((25, 30)) == (255, 255, 255)
    assert out.getpixel((40, 30)) == (0, 0, 0)  # no angle arms


def test_render_grid_from_batch(tmp_path) -> None:
    codec = HeatmapCodec((32, 32), (16, 16), sigma=1.0)
    batch = {
        "image": torch.rand(5, 1, 32, 32),
        "keypoints": torch.tensor([[[8.0, 20.0], [25.0, 5.0]]]).repeat(5, 1, 1),
        "visible": torch.tensor([[True, False]]).repeat(5, 1),
        "path": [f"im{i}.png" for i in range(5)],
    }
    out = render_keypoint_grid(batch, codec, tmp_path / "sub" / "grid.png", n=3, keypoint_names=["A", "B"], ncols=2)
    with Image.open(out) as im:
        # 2 columns x 2 rows of 3-inch panels at 100 dpi.
        assert im.size == (600, 600)


def test_render_grid_from_dataset_skips_invalid(tmp_path) -> None:
    yy, xx = np.mgrid[0:40, 0:40]
    img = (255 * np.exp(-((xx - 30) ** 2 + (yy - 8) ** 2) / 8.0)).astype(np.uint8)
    good = tmp_path / "good.png"
    Image.fromarray(img).save(good)
    records = [
        KeypointRecord(tmp_path / "missing.png", np.array([[30.0, 8.0]])),
        KeypointRecord(good, np.array([[30.0, 8.0]])),
    ]
    ds = KeypointDataset(records, input_size=(32, 32))
    codec = HeatmapCodec((32, 32), (8, 8), sigma=1.0)
    out = render_keypoint_grid(ds, codec, tmp_path / "grid.png", n=4, ncols=4)
    with Image.open(out) as im:
        assert im.size == (300, 300)  # one valid sample -> one panel


def test_render_grid_errors(tmp_path) -> None:
    codec = HeatmapCodec((32, 32), (8, 8), sigma=1.0)
    with pytest.raises(ValueError, match="no valid labelled samples"):
        render_keypoint_grid([], codec, tmp_path / "x.png")
    batch = {"image": torch.rand(1, 1, 16, 16), "keypoints": torch.zeros(1, 1, 2)}
    with pytest.raises(ValueError, match=r"\(C, 32, 32\)"):
        render_keypoint_grid(batch, codec, tmp_path / "x.png")
