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


# ------------------------------------------------------------------------------ EXIF orientation

#: EXIF orientation → what a viewer does to the stored pixels ``a`` (``(H, W)`` numpy), by hand:
#: 2 mirror, 3 turn 180°, 4 flip, 5 transpose, 6 turn 90° clockwise, 7 transverse, 8 turn 90° counter-clockwise.
_SHOWN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.T,
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a[::-1, ::-1].T,
    8: lambda a: np.rot90(a, k=1),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_files_are_read_as_their_exif_orientation_shows_them(tmp_path: Path, orientation: int) -> None:
    from sslkeypoint.data import open_image, read_image_size

    stored = _gray(6, 10, seed=orientation)  # H=6, W=10, every pixel different enough to tell turns apart
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "a.png"  # lossless, so the comparison is exact
    Image.fromarray(stored).save(path, "PNG", exif=exif.tobytes())
    shown = np.ascontiguousarray(_SHOWN[orientation](stored))
    got = read_image(path)
    assert got.shape == (1, *shown.shape)
    assert torch.equal(got[0], torch.from_numpy(shown).float() / 255.0)
    assert torch.equal(read_image(path.read_bytes()), got)
    assert read_image_size(path) == read_image_size(path.read_bytes()) == shown.shape
    assert np.array_equal(np.asarray(open_image(path)), shown)
    # A PIL image given as such is read as given: its pixels in memory, the tag not applied.
    with Image.open(path) as im:
        assert torch.equal(read_image(im)[0], torch.from_numpy(stored).float() / 255.0)


def test_a_jpeg_with_orientation_6_reads_like_the_upright_jpeg(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:48, 0:64]
    upright = Image.fromarray((2 * xx + yy).astype(np.uint8))
    upright.save(tmp_path / "upright.jpg", "JPEG", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "turned.jpg", "JPEG", quality=95, exif=exif.tobytes())
    a, b = read_image(tmp_path / "upright.jpg"), read_image(tmp_path / "turned.jpg")
    assert a.shape == b.shape == (1, 48, 64)
    assert float((a - b).abs().mean()) < 0.01  # JPEG error only


def test_read_image_size_errors_name_the_file(tmp_path: Path) -> None:
    from sslkeypoint.data import read_image_size

    with pytest.raises(FileNotFoundError):
        read_image_size(tmp_path / "gone.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.png: the file is empty \(0 bytes\)"):
        read_image_size(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageReadError, match=r"text\.png"):
        read_image_size(tmp_path / "text.png")


# ------------------------------------------------------------------------------ links, empty images, value checks


def test_list_images_lists_and_warns_of_links_to_missing_files(tmp_path: Path) -> None:
    _save(_gray(4, 4), tmp_path / "good.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "good_link.png").symlink_to(tmp_path / "good.png")
    with pytest.warns(UserWarning, match=r"1 image link in .* points to missing files: sub/gone\.png"):
        files = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["good.png", "good_link.png", "sub/gone.png"]
    with pytest.raises(FileNotFoundError, match=r"link to a missing file \(.*nowhere\.png\)"):
        read_image(tmp_path / "sub" / "gone.png")


def test_images_without_pixels_and_odd_float_values_are_refused() -> None:
    for source, fragment in (
        (np.zeros((0, 4), np.uint8), "an empty image (H=0, W=4 pixels)"),
        (torch.zeros(1, 3, 0), "an empty image (H=3, W=0 pixels)"),
        (Image.new("L", (0, 3)), "an empty image (H=3, W=0 pixels)"),
        (torch.zeros(0, 3, 3), "an image with no channels"),
        (torch.full((1, 2, 2), 2.0), "a float image must hold values in [0, 1] (uint8 images are scaled by 255); "
                                     "it holds [2, 2]"),
        (torch.tensor([[[float("nan"), 0.5]]]), "1 value is NaN"),
        (np.array([[np.inf, -np.inf, 0.2]], np.float32), "2 values are infinite"),
        (np.array([[-0.5, 0.2]], np.float64), "it holds [-0.5, 0.2]"),
    ):
        with pytest.raises(ValueError, match=re.escape(fragment)):
            read_image(source)
    with pytest.raises(ImageReadError, match="no bytes"):
        read_image(b"")
    assert torch.equal(read_image(torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)), torch.tensor([[[0.0, 1.0]]]))
