"""Image decoding by content, the one resize every dataset and the predictor use, and image listing.

Images are decoded by content, never by extension (IUGC names PNG files ``.jpg``), into float
``(C, H, W)`` tensors in ``[0, 1]`` and resized to the network input with :func:`resize_image`
(bilinear, ``align_corners=False``, antialiased) — the resize that
:func:`~sslkeypoint.heatmaps.keypoints_to_input` describes for keypoints.

Image files are read as viewers and labelling tools show them: a photo stored sideways with an
EXIF orientation tag (phones, some scanners) is turned upright (:func:`open_image`), so keypoints
labelled on the displayed image and predicted keypoints are in the same pixels, and every size
used to map keypoints (:func:`read_image_size`) is the displayed size.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from sslkeypoint._utils import size_pair

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "ImageSource",
    "list_images",
    "natural_sort_key",
    "open_image",
    "read_image",
    "read_image_size",
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


def _check_unit_floats(nan: int, inf: int, lo: float, hi: float, name: str) -> None:
    """Refuse a float image with NaN or infinite values or values outside ``[0, 1]``."""
    for count, what in ((nan, "NaN"), (inf, "infinite")):
        if count:
            verb = "values are" if count > 1 else "value is"
            raise ValueError(f"{name}: {count} {verb} {what}; a float image must hold finite values in [0, 1]")
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name}: a float image must hold values in [0, 1] (uint8 images are scaled by 255); "
            f"it holds [{lo:g}, {hi:g}]"
        )


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
        if out.size:
            finite = out[np.isfinite(out)]
            _check_unit_floats(
                int(np.isnan(out).sum()), int(np.isinf(out).sum()),
                float(finite.min()) if finite.size else 0.0, float(finite.max()) if finite.size else 0.0, name,
            )
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
    """A ``(C, H, W)``/``(H, W)`` tensor as float32 in ``[0, 1]`` on the CPU (``uint8``/``uint16`` scaled).

    A float tensor must already hold finite values in ``[0, 1]``: NaN, infinite and out-of-range
    values (a 0–255 image kept as floats) are refused, as for numpy arrays.
    """
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
    t = t.float()
    _check_float_tensor(t, name)
    return t


def _check_float_tensor(t: Tensor, name: str) -> None:
    """Refuse a float image tensor (any shape) with NaN, infinite or out-of-range values."""
    if t.numel() == 0:
        return
    finite = torch.isfinite(t)
    values = t[finite]
    _check_unit_floats(
        int(torch.isnan(t).sum()), int(torch.isinf(t).sum()),
        float(values.min()) if values.numel() else 0.0, float(values.max()) if values.numel() else 0.0, name,
    )


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


_ORIENTATION = 0x0112  # the EXIF orientation tag


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation of a decoded or opened image (1, upright, when it has none or a bad one)."""
    try:
        value = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # an unreadable EXIF block: show the pixels as stored, as viewers do
        return 1
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def _missing_detail(path: str | Path) -> str:
    """``"link to a missing file (→ target)"`` for a link whose target is gone, else ``""``."""
    p = Path(path)
    if p.is_symlink() and not p.exists():
        return f"link to a missing file ({os.readlink(p)})"
    return ""


def _opener(source: str | Path | bytes | bytearray, name: str) -> Any:
    """What ``Image.open`` is given for a file or its bytes, after the checks that name the problem."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            detail = _missing_detail(path)
            raise FileNotFoundError(errno.ENOENT, f"image file not found: {detail}" if detail else "image file not found",
                                    str(path))
        if path.stat().st_size == 0:
            raise ImageReadError(f"cannot decode image {name}: the file is empty (0 bytes)")
        return path
    if isinstance(source, bytes | bytearray):
        if not source:
            raise ImageReadError("cannot decode image: no bytes were given (an empty file?)")
        return BytesIO(bytes(source))
    raise TypeError(f"expected an image file (a path) or its bytes; got {_describe(source)}")


@contextlib.contextmanager
def _upright(source: str | Path | bytes | bytearray, name: str) -> Iterator[Image.Image]:
    """The decoded image of a file or bytes, turned as its EXIF orientation says (valid in the block)."""
    opener = _opener(source, name)
    try:
        with Image.open(opener) as img:
            img.load()
            yield ImageOps.exif_transpose(img) if _orientation(img) != 1 else img
    except (FileNotFoundError, ImageReadError):
        raise
    except Exception as exc:
        raise ImageReadError(f"cannot decode image {name}: {exc}") from exc


def open_image(source: str | Path | bytes | bytearray) -> Image.Image:
    """Decode an image file (or its bytes) into a PIL image, as viewers and labelling tools show it.

    The format is sniffed from the content, never from the file name. A photo stored sideways
    with an EXIF orientation tag (``Orientation`` 2–8: phones, some scanners and ultrasound
    exports) is turned (``PIL.ImageOps.exif_transpose``), so that the image's pixels are those
    of the displayed picture, the pixels keypoints are labelled in. :func:`read_image` reads files
    this way; use this function where a PIL image of a file is needed (overlays, thumbnails,
    interfaces that take PIL images).

    Args:
        source: A path, or the encoded file's bytes.

    Returns:
        The decoded (loaded) image, upright.

    Raises:
        FileNotFoundError: The path does not exist, or is a link to a missing file (the message
            names it and says so).
        ImageReadError: The file is empty or cannot be decoded (the message names it).

    Examples:
        >>> import io
        >>> from PIL import Image
        >>> exif = Image.Exif()
        >>> exif[0x0112] = 6  # stored turned: shown turned 90 degrees clockwise
        >>> buf = io.BytesIO()
        >>> Image.new("L", (40, 30)).save(buf, "JPEG", exif=exif.tobytes())
        >>> open_image(buf.getvalue()).size  # (W, H) as shown
        (30, 40)
    """
    name = _describe(source)
    with _upright(source, name) as img:
        return img.copy()


def read_image_size(source: str | Path | bytes | bytearray) -> tuple[int, int]:
    """``(H, W)`` of an image file as it is shown (EXIF orientation applied), from its header.

    The size of the image :func:`read_image` and :func:`open_image` return, without decoding the
    pixels: the size to map keypoints to and from the original image's pixels with.

    Args:
        source: A path, or the encoded file's bytes.

    Returns:
        ``(H, W)`` in px.

    Raises:
        FileNotFoundError: The path does not exist, or is a link to a missing file.
        ImageReadError: The file is empty or is no image (the message names it).

    Examples:
        >>> import io
        >>> from PIL import Image
        >>> exif = Image.Exif()
        >>> exif[0x0112] = 8  # shown turned 90 degrees counter-clockwise
        >>> buf = io.BytesIO()
        >>> Image.new("RGB", (40, 30)).save(buf, "JPEG", exif=exif.tobytes())
        >>> read_image_size(buf.getvalue())
        (40, 30)
    """
    name = _describe(source)
    opener = _opener(source, name)
    try:
        with Image.open(opener) as img:
            w, h = img.size
            if _orientation(img) >= 5:  # 5-8 swap width and height
                w, h = h, w
    except Exception as exc:
        raise ImageReadError(f"cannot decode image {name}: {exc}") from exc
    return h, w


def _check_size(image: Tensor, name: str) -> Tensor:
    """Refuse a ``(C, H, W)`` image without channels or pixels."""
    c, h, w = image.shape
    if c == 0:
        raise ValueError(f"{name}: an image with no channels; expected (C, H, W) with C >= 1")
    if h == 0 or w == 0:
        raise ValueError(f"{name}: an empty image (H={h}, W={w} pixels); an image needs at least one pixel")
    return image


def read_image(source: ImageSource, channels: int | None = None) -> Tensor:
    """Decode an image into a float ``(C, H, W)`` tensor in ``[0, 1]``.

    The format is sniffed from the content (PIL ``Image.open``), never from the file name: a PNG
    named ``.jpg`` decodes as a PNG. **Orientation**: a file (or its bytes) is read as viewers and
    labelling tools show it — an EXIF orientation tag is applied (:func:`open_image`), so a phone
    photo stored sideways comes out upright, its ``(H, W)`` is the displayed size, and keypoints
    (labelled or predicted) are in the displayed image's pixels. A PIL image, array or tensor
    passed in is taken as given: its pixels as they are in memory, with no EXIF tag applied
    (apply ``PIL.ImageOps.exif_transpose`` first to have it upright). 8-bit data is divided by 255 and 16-bit data (PIL modes
    ``"I;16"`` and ``"I"``, which must hold 0–65535) by 65535; alpha is dropped (``"LA"`` → one
    channel, ``"RGBA"`` → three); palette, CMYK and other modes become RGB. A float PIL image (mode
    ``"F"``) is read by its range: values in ``[0, 1]`` as they are, values in ``[0, 255]`` (what
    PIL's ``convert("F")`` gives) divided by 255; float numpy arrays and tensors must already hold
    finite values in ``[0, 1]`` (NaN, infinite values and 0–255 floats are refused: only ``uint8``
    data is scaled by 255). An image without pixels (``H`` or ``W`` 0) or channels, and an empty
    file, are refused.

    Args:
        source: A path, the encoded file's bytes, a PIL image, an ``(H, W)`` / ``(H, W, C)``
            numpy array (``uint8``, ``uint16``, ``bool``, or float already in ``[0, 1]``), or a
            ``(C, H, W)`` / ``(H, W)`` tensor (``uint8``, ``uint16`` or float in ``[0, 1]``).
        channels: ``None`` keeps the decoded channels (grayscale → 1, colour → 3, even when the three
            channels are equal); ``1`` converts colour to one channel — an exact copy when the three
            channels are equal, else ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``; ``3`` repeats
            grayscale.

    Returns:
        ``(C, H, W)`` float32 tensor in ``[0, 1]``.

    Raises:
        FileNotFoundError: The path does not exist, or is a link to a missing file (the message
            names it).
        ImageReadError: The file exists but is empty or cannot be decoded (the message names it).
        ValueError: Unsupported array shape, dtype or value range (NaN, infinite, outside
            ``[0, 1]`` for floats), an image without pixels or channels, or an invalid
            ``channels``.
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
        return _convert_channels(_check_size(_tensor_to_unit(source, name), name), channels, name)
    if isinstance(source, np.ndarray):
        arr = _array_to_unit(source, name)
    elif isinstance(source, Image.Image):
        arr = _pil_to_unit(source, name)
    elif isinstance(source, bytes | bytearray | str | Path):
        with _upright(source, name) as img:
            arr = _pil_to_unit(img, name)
    else:
        raise TypeError(f"read_image expects a path, bytes, a PIL image, a numpy array or a tensor; got {name}")
    tensor = torch.from_numpy(np.ascontiguousarray(arr))
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
    return _convert_channels(_check_size(tensor, name), channels, name)


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
    are still decoded by content. A link (symlink) to a missing file is listed too, with a
    ``UserWarning`` naming such links: left out, it would vanish from every count; listed, reading
    it fails like a missing file (``FileNotFoundError`` saying "link to a missing file"), which
    training and prediction count and list as a skipped ``missing file``.

    Args:
        folder: The folder.
        recursive: Include sub-folders.
        extensions: Accepted endings, with the dot.

    Returns:
        The file paths (links to missing files included).

    Raises:
        NotADirectoryError: If ``folder`` is not a folder.

    Examples:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> for name in ("frame10.png", "frame2.png", "notes.txt"):
        ...     Path(folder, name).touch()
        >>> [p.name for p in list_images(folder)]
        ['frame2.png', 'frame10.png']
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    wanted = {e.lower() for e in extensions}
    pattern = "**/*" if recursive else "*"
    files: list[Path] = []
    dangling: list[Path] = []
    for p in root.glob(pattern):
        if p.suffix.lower() not in wanted:
            continue
        if p.is_file():
            files.append(p)
        elif p.is_symlink() and not p.exists():
            dangling.append(p)
    if dangling:
        dangling.sort(key=natural_sort_key)
        n = len(dangling)
        names = ", ".join(p.relative_to(root).as_posix() for p in dangling[:5]) + (f" (and {n - 5} more)" if n > 5 else "")
        links, point = ("links", "point") if n > 1 else ("link", "points")
        warnings.warn(
            f"{n} image {links} in {root}/ {point} to missing files: {names}; listed, so that reading "
            f"{'them fails' if n > 1 else 'it fails'} as for a missing file (a counted skip in training)",
            UserWarning,
            stacklevel=2,
        )
    return sorted(files + dangling, key=natural_sort_key)
