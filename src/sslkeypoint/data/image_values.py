"""Pixel values as the library computes with them: float ``[0, 1]``, checked like files.

8-bit data is divided by 255 and 16-bit data by 65535; float data must already hold finite values
in ``[0, 1]`` (a float PIL image of 0–255 values, what ``convert("F")`` gives, is read as 8-bit);
NaN, infinite and out-of-range values, and images without pixels or channels, are refused with
what was found. Colour becomes one channel the one way every reader here converts it (an exact
copy of equal channels, else ITU-R BT.601 luma). Used by :func:`~sslkeypoint.data.read_image`.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__: list[str] = []

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion and torchvision.


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




def _check_size(image: Tensor, name: str) -> Tensor:
    """Refuse a ``(C, H, W)`` image without channels or pixels."""
    c, h, w = image.shape
    if c == 0:
        raise ValueError(f"{name}: an image with no channels; expected (C, H, W) with C >= 1")
    if h == 0 or w == 0:
        raise ValueError(f"{name}: an empty image (H={h}, W={w} pixels); an image needs at least one pixel")
    return image


