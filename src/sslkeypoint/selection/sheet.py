"""A contact sheet of the chosen images: look at what is about to be labelled before labelling it.

One thumbnail per choice, in order, captioned with its rank (and group); near-duplicates, blank
frames or another anatomy stand out at a glance. Pillow only.
"""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sslkeypoint.atomic import atomic_path
from sslkeypoint.data import read_image
from sslkeypoint.selection.select import Selection

__all__ = ["contact_sheet"]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def contact_sheet(selection: Selection, out: str | PathLike[str], *, columns: int = 8, thumb: int = 128,
                  limit: int | None = 200) -> Path:
    """Draw the chosen images, in order, as a grid of captioned thumbnails (PNG).

    Args:
        selection: The :class:`~sslkeypoint.selection.Selection`.
        out: The PNG file to write (parent folders are created).
        columns: Thumbnails per row.
        thumb: Side of a thumbnail in px (the image is fitted inside, aspect ratio kept).
        limit: Draw at most this many (``None``: all).

    Returns:
        The file written.

    Raises:
        ValueError: If the selection is empty.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> from sslkeypoint.selection import Choice
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.new("L", (40, 20), 128).save(folder / "a.png")
        >>> sheet = contact_sheet(Selection([Choice(1, folder / "a.png", "why")], "random"), folder / "s.png")
        >>> Image.open(sheet).size
        (128, 146)
    """
    choices = selection.choices[:limit] if limit is not None else selection.choices
    if not choices:
        raise ValueError("the selection is empty: nothing to draw")
    columns = max(1, min(columns, len(choices)))
    caption = 18
    rows = math.ceil(len(choices) / columns)
    sheet = Image.new("RGB", (columns * thumb, rows * (thumb + caption)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font(12)
    for i, choice in enumerate(choices):
        x, y = (i % columns) * thumb, (i // columns) * (thumb + caption)
        try:
            pixels = read_image(choice.path, channels=1)[0].numpy()
            image = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))
            image.thumbnail((thumb, thumb))
            sheet.paste(image.convert("RGB"), (x + (thumb - image.width) // 2, y + (thumb - image.height) // 2))
        except (OSError, ValueError):
            draw.text((x + 4, y + thumb // 2), "unreadable", fill=(200, 0, 0), font=font)
        label = f"#{choice.rank}" + (f" g{choice.group}" if choice.group is not None else "")
        draw.text((x + 3, y + thumb + 2), label, fill=(0, 0, 0), font=font)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sheet.save(tmp)
    return path
