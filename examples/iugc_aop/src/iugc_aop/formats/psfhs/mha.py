"""MetaImage (``.mha``) files of the original PSFHS distribution, and their cached PNG copies.

The original PSFHS layout stores frames and label maps as MetaImage; reading them needs SimpleITK
(``pip install "iugc-aop[mha]"``). :func:`read_mha` reads one file as an ``(H, W)`` array. The
training code reads images by path with :func:`sslkeypoint.data.read_image`, which cannot decode
MetaImage, so :func:`~iugc_aop.formats.psfhs.read_psfhs` writes PNG copies of the frames into a
cache folder and rewrites one only when its source changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, PngImagePlugin

from iugc_aop.formats.psfhs.layout import PSFHSLayoutError
from sslkeypoint.atomic import atomic_path

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["read_mha"]

_CACHE_KEYS = ("psfhs-source", "psfhs-source-size", "psfhs-source-mtime-ns")


def _sitk() -> Any:
    try:
        import SimpleITK
    except ImportError as exc:
        raise ImportError(
            'reading PSFHS .mha files needs SimpleITK: pip install "SimpleITK>=2.3" '
            '(or pip install "iugc-aop[mha]")'
        ) from exc
    return SimpleITK


def read_mha(path: str | os.PathLike[str]) -> NDArray[Any]:
    """Read a 2-D MetaImage (``.mha`` / ``.mhd``) frame or label map as an ``(H, W)`` array.

    Three channels (the original PSFHS images store the frame three times, as a ``3 × H × W``
    volume) become one: an exact copy when they are equal, else ITU-R BT.601 luma rounded to the
    input's integer type, as :func:`sslkeypoint.data.read_image` converts colour.

    Args:
        path: The file. Needs SimpleITK (``pip install "iugc-aop[mha]"``).

    Returns:
        ``(H, W)`` array of the file's pixel type (``uint8`` for PSFHS).

    Raises:
        ImportError: Without SimpleITK (the message gives the pip command).
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be read, or holds neither one nor three channels of one
            ``H × W`` frame (the message names the file and the shape found).

    Examples:
        >>> read_mha("no-such-file.mha")
        Traceback (most recent call last):
        ...
        FileNotFoundError: [Errno 2] image file not found: 'no-such-file.mha'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "image file not found", str(path))
    sitk = _sitk()
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot read MetaImage {path}: {first}") from exc
    arr = sitk.GetArrayFromImage(img)
    if img.GetNumberOfComponentsPerPixel() > 1 and arr.ndim == 3:
        arr = np.moveaxis(arr, -1, 0)  # (H, W, C) vector pixels -> (C, H, W)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[0] == 3:
        if (arr[0] == arr[1]).all() and (arr[0] == arr[2]).all():
            arr = arr[0]
        else:
            luma = np.tensordot(np.array([0.299, 0.587, 0.114]), arr.astype(np.float64), axes=1)
            rounded = np.rint(luma) if arr.dtype.kind in "ui" else luma
            arr = rounded.astype(arr.dtype)
    if arr.ndim != 2:
        raise ValueError(
            f"{path}: expected one H×W frame (or three channels of one), got an array of shape "
            f"{tuple(arr.shape)}"
        )
    return np.ascontiguousarray(arr)


def _cached_png(source: Path, cache_dir: Path, case: str) -> Path:
    """The PNG copy of an ``.mha`` frame, rewritten only when the source changed."""
    dest = cache_dir / f"{case}.png"
    st = source.stat()
    stamp = dict(zip(_CACHE_KEYS, (str(source.resolve()), str(st.st_size), str(st.st_mtime_ns)),
                     strict=True))
    if dest.exists():
        try:
            with Image.open(dest) as img:
                text = dict(getattr(img, "text", {}))
        except OSError:
            text = {}
        if _CACHE_KEYS[0] not in text:
            raise PSFHSLayoutError(
                f"{dest} exists and was not written by read_psfhs; expected cache_dir to hold "
                "only PNG copies of .mha frames (use an empty or new folder)"
            )
        if all(text.get(k) == v for k, v in stamp.items()):
            return dest
    arr = read_mha(source)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{source}: pixel type {arr.dtype}; expected 8- or 16-bit unsigned "
                         "integers (PSFHS frames are uint8)")
    info = PngImagePlugin.PngInfo()
    for k, v in stamp.items():
        info.add_text(k, v)
    with atomic_path(dest) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG", pnginfo=info)
    return dest

