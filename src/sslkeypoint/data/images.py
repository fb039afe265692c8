"""Image decoding by content, the one resize every dataset and the predictor use, and image listing.

Images are decoded by content, never by extension (IUGC names PNG files ``.jpg``), into float
``(C, H, W)`` tensors in ``[0, 1]`` and resized to the network input with :func:`resize_image`
(bilinear, ``align_corners=False``, antialiased) — the resize that
:func:`~sslkeypoint.heatmaps.keypoints_to_input` describes for keypoints.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from sslkeypoint._utils import size_pair

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "ImageSource",
    "list_images",
    "natural_sort_key",
    "read_image",
    "resize_image",
]

ImageSource = str | Path | bytes | bytearray | Image.Image | np.ndarray | Tensor
"""What :func:`read_image` accepts: a path, encoded bytes, a PIL image, an ``(H, W[, C])`` array or a
``(C, H, W)`` / ``(H, W)`` tensor."""

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".pgm",
    ".ppm",
)
"""File-name endings :func:`list_images` picks up (case-insensitive). Decoding ignores them."""

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion and torchvision.


class ImageReadError(OSError):
    """An image that exists but cannot be decoded; the message names the file."""


def _describe(source: object) -> str:
    """A short name of an image source for error messages."""
    if isinstance(source, str | Path):
        return str(source)
    if isinstance(source, bytes | bytearray):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image mode={source.mode} size={source.size}>"
    if isinstance(source, np.ndarray):
        return f"<array shape={source.shape} dtype={source.dtype}>"
    if isinstance(source, Tensor):
        return f"<tensor shape={tuple(source.shape)} dtype={source.dtype}>"
    return f"<{type(source).__name__}>"


def _array_to_unit(arr: np.ndarray, name: str) -> np.ndarray:
    """An ``(H, W)`` or ``(H, W, C)`` array as float32 in ``[0, 1]`` with alpha dropped."""
    if arr.ndim == 3 and arr.shape[-1] in (1, 2, 3, 4):
        c = arr.shape[-1]
        arr = arr[..., :1] if c in (1, 2) else arr[..., :3]
    elif arr.ndim != 2:
        raise ValueError(f"{name}: expected an image array of shape (H, W) or (H, W, C) with C in 1..4; got {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    elif arr.dtype == np.bool_:
        out = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        finite = out[np.isfinite(out)]
        if finite.size != out.size or (finite.size and (finite.min() < 0.0 or finite.max() > 1.0)):
            raise ValueError(f"{name}: a float image must hold finite values in [0, 1]")
    else:
        raise ValueError(f"{name}: unsupported image dtype {arr.dtype} (expected uint8, uint16, bool or float)")
    return out


def _float_image_to_unit(arr: np.ndarray, name: str) -> np.ndarray:
    """A PIL mode-``"F"`` image's values to ``[0, 1]``, read by their range.

    PIL's own float images hold 8-bit values (``convert("F")`` of an ``"L"`` image gives 0–255), while
    arrays saved as mode ``"F"`` usually hold 0–1: values within ``[0, 1]`` are kept, values within
    ``[0, 255]`` divided by 255, anything else (negative, above 255, NaN, infinite) refused.
    """
    out = arr.astype(np.float32)
    if out.size == 0:
        return out
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: a float (mode F) image must hold finite values; it holds NaN or infinity")
    lo, hi = float(out.min()), float(out.max())
    if lo >= 0.0 and hi <= 1.0:
        return out
    if lo >= 0.0 and hi <= 255.0:
        return out / np.float32(255.0)
    raise ValueError(
        f"{name}: a float (mode F) image must hold values in [0, 1] or [0, 255]; it holds [{lo:g}, {hi:g}]"
    )


def _pil_to_unit(img: Image.Image, name: str) -> np.ndarray:
    """A decoded PIL image as an ``(H, W)`` or ``(H, W, 3)`` float32 array in ``[0, 1]``."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.float32) / 65535.0
    if mode == "I":
        # 32-bit integer mode: 16-bit grayscale PNGs in some Pillow versions.
        arr = np.asarray(img, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"{name}: 32-bit integer images outside 0..65535 are not supported")
        return arr.astype(np.float32) / 65535.0
    if mode == "F":
        return _float_image_to_unit(np.asarray(img, dtype=np.float32), name)
    if mode in ("L", "RGB"):
        return np.asarray(img).astype(np.float32) / 255.0
    if mode in ("1", "LA", "La"):
        return np.asarray(img.convert("L")).astype(np.float32) / 255.0
    # RGBA, RGBa, RGBX, P, PA, CMYK, YCbCr, LAB, HSV: to RGB, dropping alpha.
    return np.asarray(img.convert("RGB")).astype(np.float32) / 255.0


def _tensor_to_unit(t: Tensor, name: str) -> Tensor:
    """A ``(C, H, W)``/``(H, W)`` tensor as float32 in ``[0, 1]`` on the CPU (``uint8``/``uint16`` scaled)."""
    t = t.detach().cpu()
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"{name}: image tensors must be (C, H, W) or (H, W); got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if t.dtype == torch.uint16:
        return t.float() / 65535.0
    if not t.is_floating_point():
        raise ValueError(f"{name}: integer image tensors must be uint8 or uint16; got {t.dtype}")
    return t.float()


def _convert_channels(image: Tensor, channels: int | None, name: str) -> Tensor:
    """Convert ``(C, H, W)`` to ``channels``: alpha dropped, colour to one channel (an exact copy of
    equal channels, else BT.601 luma), one channel repeated."""
    c = image.shape[0]
    if c == 4:  # drop alpha
        image, c = image[:3], 3
    if channels is None or channels == c:
        return image
    if channels == 1 and c == 3:
        if torch.equal(image[0], image[1]) and torch.equal(image[0], image[2]):
            return image[:1].clone()
        weights = torch.tensor(_LUMA, dtype=image.dtype).view(3, 1, 1)
        return (image * weights).sum(dim=0, keepdim=True).clamp_(0.0, 1.0)
    if c == 1:
        return image.repeat(channels, 1, 1)
    raise ValueError(f"{name}: cannot convert an image with {c} channels to {channels}")


def read_image(source: ImageSource, channels: int | None = None) -> Tensor:
    """Decode an image into a float ``(C, H, W)`` tensor in ``[0, 1]``.

    The format is sniffed from the content (PIL ``Image.open``), never from the file name: a PNG
    named ``.jpg`` decodes as a PNG. 8-bit data is divided by 255 and 16-bit data (PIL modes
    ``"I;16"`` and ``"I"``, which must hold 0–65535) by 65535; alpha is dropped (``"LA"`` → one
    channel, ``"RGBA"`` → three); palette, CMYK and other modes become RGB. A float PIL image (mode
    ``"F"``) is read by its range: values in ``[0, 1]`` as they are, values in ``[0, 255]`` (what
    PIL's ``convert("F")`` gives) divided by 255; float numpy arrays must already be in ``[0, 1]``.

    Args:
        source: A path, the encoded file's bytes, a PIL image, or an ``(H, W)`` / ``(H, W, C)``
            numpy array (``uint8``, ``uint16``, ``bool``, or float already in ``[0, 1]``).
        channels: ``None`` keeps the decoded channels (grayscale → 1, colour → 3, even when the three
            channels are equal); ``1`` converts colour to one channel — an exact copy when the three
            channels are equal, else ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``; ``3`` repeats
            grayscale.

    Returns:
        ``(C, H, W)`` float32 tensor in ``[0, 1]``.

    Raises:
        FileNotFoundError: The path does not exist (the message names it).
        ImageReadError: The file exists but cannot be decoded (the message names it).
        ValueError: Unsupported array shape, dtype or value range, or an invalid ``channels``.
        TypeError: An unsupported source type.

    Examples:
        >>> import numpy as np, torch
        >>> rgb = np.stack([np.full((2, 3), 128, np.uint8)] * 3, axis=-1)
        >>> read_image(rgb).shape, read_image(rgb, channels=1).shape
        (torch.Size([3, 2, 3]), torch.Size([1, 2, 3]))
        >>> torch.equal(read_image(rgb, channels=1)[0], read_image(rgb)[1])  # equal channels: exact
        True
        >>> from PIL import Image
        >>> gray = Image.fromarray(np.full((2, 2), 51, np.uint8))
        >>> torch.equal(read_image(gray.convert("F")), read_image(gray))  # 0-255 floats as 8-bit
        True
    """
    if channels is not None and (not isinstance(channels, int) or channels < 1 or channels == 2):
        raise ValueError(f"channels must be None, 1, 3 or more; got {channels}")
    name = _describe(source)
    if isinstance(source, Tensor):
        return _convert_channels(_tensor_to_unit(source, name), channels, name)
    if isinstance(source, np.ndarray):
        arr = _array_to_unit(source, name)
    elif isinstance(source, Image.Image):
        arr = _pil_to_unit(source, name)
    elif isinstance(source, bytes | bytearray | str | Path):
        if isinstance(source, str | Path):
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(errno.ENOENT, "image file not found", str(path))
            opener: Any = path
        else:
            opener = BytesIO(bytes(source))
        try:
            with Image.open(opener) as img:
                img.load()
                arr = _pil_to_unit(img, name)
        except Exception as exc:
            raise ImageReadError(f"cannot decode image {name}: {exc}") from exc
    else:
        raise TypeError(f"read_image expects a path, bytes, a PIL image or a numpy array; got {name}")
    tensor = torch.from_numpy(np.ascontiguousarray(arr))
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
    return _convert_channels(tensor, channels, name)



def resize_image(image: Tensor, size: int | Sequence[int]) -> Tensor:
    """Resize ``(C, H, W)`` or ``(B, C, H, W)`` images to ``size`` as every dataset here does.

    Bilinear, ``align_corners=False``, antialiased (which only matters when shrinking), so keypoints
    follow with :func:`~sslkeypoint.heatmaps.keypoints_to_input`. An image already at ``size`` is
    returned unchanged.

    Args:
        image: Float image tensor ``(C, H, W)`` or ``(B, C, H, W)``.
        size: Target ``(H, W)`` (or an int) in px.

    Returns:
        The resized tensor with the same number of dimensions.

    Examples:
        >>> import torch
        >>> resize_image(torch.ones(1, 10, 20), (5, 5)).shape
        torch.Size([1, 5, 5])
    """
    h, w = size_pair(size)
    if image.ndim not in (3, 4):
        raise ValueError(f"image must have shape (C, H, W) or (B, C, H, W); got {tuple(image.shape)}")
    if tuple(image.shape[-2:]) == (h, w):
        return image
    batched = image if image.ndim == 4 else image[None]
    out = F.interpolate(batched, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return out if image.ndim == 4 else out[0]


def _load_resized(path: str | Path, size: tuple[int, int], in_chans: int) -> Tensor:
    return resize_image(read_image(path, channels=in_chans), size)


def natural_sort_key(path: str | Path) -> list[Any]:
    """Sort key that orders embedded numbers numerically: ``frame2 < frame10``.

    Examples:
        >>> sorted(["f10.png", "f2.png", "F1.png"], key=natural_sort_key)
        ['F1.png', 'f2.png', 'f10.png']
    """
    parts = re.split(r"(\d+)", str(path))
    return [int(p) if p.isdigit() else p.lower() for p in parts]


def list_images(
    folder: str | Path, recursive: bool = True, extensions: Sequence[str] = IMAGE_EXTENSIONS
) -> list[Path]:
    """Image files in a folder, in natural order (``frame2`` before ``frame10``).

    Files are picked by name ending (case-insensitive, :data:`IMAGE_EXTENSIONS` by default); they
    are still decoded by content.

    Args:
        folder: The folder.
        recursive: Include sub-folders.
        extensions: Accepted endings, with the dot.

    Returns:
        The file paths.

    Raises:
        NotADirectoryError: If ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    wanted = {e.lower() for e in extensions}
    pattern = "**/*" if recursive else "*"
    files = [p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in wanted]
    return sorted(files, key=natural_sort_key)
