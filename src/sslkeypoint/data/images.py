"""Image decoding by content into float tensors, and the one resize every dataset and the predictor use.

Images are decoded by content, never by extension (IUGC names PNG files ``.jpg``), into float
``(C, H, W)`` tensors in ``[0, 1]`` (:mod:`~sslkeypoint.data.image_values`) and resized to the
network input with :func:`resize_image` (bilinear, ``align_corners=False``, antialiased) — the
resize that :func:`~sslkeypoint.heatmaps.keypoints_to_input` describes for keypoints. Files are
read upright, as viewers show them (:mod:`~sslkeypoint.data.image_files`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from sslkeypoint._utils import size_pair

# Re-exported with ``as``: this module was their home before 0.9.
from sslkeypoint.data.image_files import IMAGE_EXTENSIONS as IMAGE_EXTENSIONS
from sslkeypoint.data.image_files import ImageReadError as ImageReadError
from sslkeypoint.data.image_files import _describe, _upright
from sslkeypoint.data.image_files import list_images as list_images
from sslkeypoint.data.image_files import natural_sort_key as natural_sort_key
from sslkeypoint.data.image_files import open_image as open_image
from sslkeypoint.data.image_files import read_image_size as read_image_size
from sslkeypoint.data.image_values import (
    _array_to_unit,
    _check_size,
    _convert_channels,
    _pil_to_unit,
    _tensor_to_unit,
)

__all__ = ["ImageSource", "read_image", "resize_image"]

ImageSource = str | Path | bytes | bytearray | Image.Image | np.ndarray | Tensor
"""What :func:`read_image` accepts: a path, encoded bytes, a PIL image, an ``(H, W[, C])`` array or a
``(C, H, W)`` / ``(H, W)`` tensor."""


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


