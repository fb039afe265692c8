"""Image files as viewers show them: opening by content with the EXIF orientation applied, sizes, listing.

A photo stored sideways with an EXIF orientation tag (phones, some scanners) is turned upright
(:func:`open_image`), so keypoints labelled on the displayed image and predicted keypoints are in
the same pixels, and every size used to map keypoints (:func:`read_image_size`) is the displayed
size. Folders are listed in natural order (:func:`list_images`); a link to a missing file is kept
in the listing (and warned about), so that reading it fails like a missing file and is counted.
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
from PIL import Image, ImageOps
from torch import Tensor

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "list_images",
    "natural_sort_key",
    "open_image",
    "read_image_size",
]

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
