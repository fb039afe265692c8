"""Tests of sslkeypoint.data.images: decoding by content, channels, tensors, the resize, listing."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sslkeypoint.data import ImageReadError, list_images, read_image, resize_image
from tests.data._images import _gray, _save


def test_png_named_jpg_decodes_exactly(tmp_path: Path) -> None:
    arr = _gray(7, 9)
    path = _save(arr, tmp_path / "frame.jpg", "PNG")  # PNG content, .jpg name
    img = read_image(path)
    assert img.shape == (1, 7, 9) and img.dtype == torch.float32
    assert torch.equal(img[0], torch.from_numpy(arr).float() / 255.0)  # lossless: it was read as PNG


def test_16_bit_png(tmp_path: Path) -> None:
    arr = np.array([[0, 1, 65535], [256, 32768, 1000]], dtype=np.uint16)
    path = _save(arr, tmp_path / "deep.png")
    img = read_image(path)
    assert img.shape == (1, 2, 3)
    assert torch.equal(img[0], torch.from_numpy(arr.astype(np.float32)) / 65535.0)
    assert float(img.max()) == 1.0


def test_rgba_drops_alpha(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    path = _save(rgba, tmp_path / "a.png", mode="RGBA")
    img = read_image(path)
    assert img.shape == (3, 5, 6)
    assert torch.equal(img, torch.from_numpy(rgba[..., :3]).permute(2, 0, 1).float() / 255.0)


def test_gray_jpeg(tmp_path: Path) -> None:
    arr = np.full((16, 16), 100, dtype=np.uint8)
    path = _save(arr, tmp_path / "g.jpeg", "JPEG")
    img = read_image(path)
    assert img.shape == (1, 16, 16)
    assert torch.allclose(img, torch.full_like(img, 100 / 255.0), atol=2 / 255.0)
    assert read_image(path, channels=3).shape == (3, 16, 16)


def test_equal_channel_rgb_becomes_one_channel_exactly(tmp_path: Path) -> None:
    arr = _gray(6, 5, seed=2)
    path = _save(np.stack([arr] * 3, axis=-1), tmp_path / "rgb.jpg", "PNG")
    kept = read_image(path)
    assert kept.shape == (3, 6, 5)  # None keeps the channels
    one = read_image(path, channels=1)
    assert one.shape == (1, 6, 5)
    assert torch.equal(one[0], torch.from_numpy(arr).float() / 255.0)


def test_colour_rgb_to_luma_golden() -> None:
    rgb = np.zeros((1, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 255)
    one = read_image(rgb, channels=1)
    assert torch.allclose(one[0, 0], torch.tensor([0.299, 0.587 + 0.114]), atol=1e-6)


def test_other_sources_and_gray_to_rgb(tmp_path: Path) -> None:
    arr = _gray(4, 4, seed=3)
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, "PNG")
    expected = torch.from_numpy(arr).float()[None] / 255.0
    assert torch.equal(read_image(buffer.getvalue()), expected)
    assert torch.equal(read_image(Image.fromarray(arr)), expected)
    assert torch.equal(read_image(arr), expected)
    three = read_image(arr, channels=3)
    assert three.shape == (3, 4, 4) and torch.equal(three[2], expected[0])
    assert torch.equal(read_image(np.array([[0, 65535]], dtype=np.uint16)), torch.tensor([[[0.0, 1.0]]]))
    assert torch.equal(read_image(np.array([[0.25]], dtype=np.float64)), torch.tensor([[[0.25]]]))


def test_read_image_errors_name_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"this is not an image at all")
    with pytest.raises(ImageReadError, match=r"broken\.jpg"):
        read_image(corrupt)
    buffer = io.BytesIO()
    Image.fromarray(_gray(64, 64)).save(buffer, "PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageReadError, match=r"truncated\.png"):
        read_image(truncated)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.png"):
        read_image(tmp_path / "nowhere.png")
    with pytest.raises(ValueError, match="channels"):
        read_image(_gray(2, 2), channels=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        read_image(np.array([[1.5]]))
    with pytest.raises(TypeError):
        read_image(42)  # type: ignore[arg-type]


def test_float_pil_image_read_by_its_range(tmp_path: Path) -> None:
    arr = np.array([[0, 51, 255], [1, 128, 254]], dtype=np.uint8)
    eight_bit = read_image(Image.fromarray(arr))
    # PIL's convert("F") holds 0-255: read like the 8-bit image, exactly (x / 255 in float32).
    assert torch.equal(read_image(Image.fromarray(arr).convert("F")), eight_bit)
    # Floats already in [0, 1] are kept: 0.2 stays 0.2.
    unit = Image.fromarray(arr.astype(np.float32) / 255.0, mode="F")
    assert torch.allclose(read_image(unit), eight_bit, atol=1e-7)
    assert float(read_image(Image.fromarray(np.full((1, 1), 0.2, np.float32), mode="F"))) == pytest.approx(0.2)
    # A float TIFF file is the same mode-F image on disk.
    Image.fromarray(arr).convert("F").save(tmp_path / "f.tif")
    assert torch.equal(read_image(tmp_path / "f.tif"), eight_bit)
    for values, shown in (([[-1.0, 3.0]], "[-1, 3]"), ([[0.0, 256.0]], "[0, 256]")):
        with pytest.raises(ValueError, match=re.escape(f"values in [0, 1] or [0, 255]; it holds {shown}")):
            read_image(Image.fromarray(np.array(values, np.float32), mode="F"))
    with pytest.raises(ValueError, match="NaN or infinity"):
        read_image(Image.fromarray(np.array([[np.nan, 1.0]], np.float32), mode="F"))
    with pytest.raises(ImageReadError, match=r"bad\.tif.*\[0, 256\]"):
        Image.fromarray(np.array([[0.0, 256.0]], np.float32), mode="F").save(tmp_path / "bad.tif")
        read_image(tmp_path / "bad.tif")


def test_sixteen_bit_palette_and_alpha_modes_agree_with_eight_bit() -> None:
    arr = _gray(5, 7, seed=4)
    eight_bit = read_image(Image.fromarray(arr))
    assert torch.equal(read_image(Image.fromarray(arr.astype(np.uint16) * 257)), eight_bit)  # I;16
    assert torch.equal(read_image(Image.fromarray(arr.astype(np.int32) * 257, mode="I")), eight_bit)
    assert torch.equal(read_image(Image.fromarray(arr).convert("LA")), eight_bit)
    for mode in ("RGBA", "P"):
        assert torch.equal(read_image(Image.fromarray(arr).convert(mode), channels=1), eight_bit)
    with pytest.raises(ValueError, match=r"outside 0\.\.65535"):
        read_image(Image.fromarray(np.array([[70000]], np.int32), mode="I"))


def test_resize_image_matches_torch_antialiased() -> None:
    x = torch.rand(1, 20, 30)
    expected = F.interpolate(x[None], size=(10, 12), mode="bilinear", align_corners=False, antialias=True)[0]
    assert torch.equal(resize_image(x, (10, 12)), expected)
    assert resize_image(x, (20, 30)) is x
    assert torch.allclose(resize_image(torch.full((1, 9, 9), 0.3), 4), torch.full((1, 4, 4), 0.3))


def test_list_images_natural_order(tmp_path: Path) -> None:
    for name in ["f10.png", "f2.jpg", "f1.PNG", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f0.png").write_bytes(b"x")
    names = [p.name for p in list_images(tmp_path, recursive=False)]
    assert names == ["f1.PNG", "f2.jpg", "f10.png"]
    assert len(list_images(tmp_path)) == 4
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "f1.PNG")


def test_tensor_sources_follow_the_same_rules() -> None:
    gray = torch.rand(1, 5, 6)
    assert torch.equal(read_image(gray), gray) and read_image(gray, channels=3).shape == (3, 5, 6)
    rgba = torch.zeros(4, 4, 4, dtype=torch.uint8)
    assert read_image(rgba, channels=1).shape == (1, 4, 4)  # alpha dropped, equal channels copied
    assert torch.equal(read_image(torch.tensor([[0, 65535]], dtype=torch.uint16)), torch.tensor([[[0.0, 1.0]]]))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        read_image(torch.rand(2, 1, 5, 6))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        read_image(torch.zeros(1, 2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="cannot convert an image with 2 channels"):
        read_image(torch.rand(2, 5, 6), channels=1)
