"""Reading HC18: labelled head images with their ellipse, pixel size and head circumference.

Two layouts are read (:func:`read_cases` tells them apart):

* the project's copy (``../shared/data/hc18``): ``images/NNN_HC.png``, ``masks/<same name>`` (1
  inside the head ellipse), ``labels.csv`` (``filename,subject,pixel_size_mm,hc_mm``), and
  ``unlabelled/*.png`` with ``unlabelled/pixel_size.csv`` (``filename,pixel_size_mm``);
* the challenge's own (Zenodo): ``training_set/NNN_HC.png`` with ``NNN_HC_Annotation.png`` (the
  sonographer's ellipse drawn as an outline), ``training_set_pixel_size_and_HC.csv``
  (``filename,pixel size(mm),head circumference (mm)``), ``test_set/`` and
  ``test_set_pixel_size.csv`` (the unlabelled images).

The head ellipse is fitted to the mask's outer boundary or to the drawn outline's pixels
(:func:`sslkeypoint.geometry.fit_ellipse`); the subject is the number before the first ``_`` of
the file name (``012_2HC.png`` is subject ``012``): images of one subject must stay on one side
of every split.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sslkeypoint.data import open_image, read_text
from sslkeypoint.geometry import Ellipse, fit_ellipse
from sslkeypoint.masks import mask_ellipse

__all__ = ["HeadCase", "UnlabelledImages", "read_cases", "read_unlabelled", "subject_of"]


@dataclass(frozen=True)
class HeadCase:
    """One labelled image.

    Attributes:
        image: The image file.
        subject: The subject (examination) it belongs to.
        pixel_size: Size of a pixel in mm.
        hc_mm: The head circumference given with the data set, in mm (``None`` where not given).
        ellipse: The head ellipse in the image's pixels.
    """

    image: Path
    subject: str
    pixel_size: float
    hc_mm: float | None
    ellipse: Ellipse


@dataclass(frozen=True)
class UnlabelledImages:
    """Images without labels, with their pixel sizes (mm; NaN where none is given)."""

    images: list[Path]
    pixel_sizes: list[float]


def subject_of(name: str) -> str:
    """The subject of an HC18 file name: the part before the first ``_``.

    Examples:
        >>> subject_of("012_2HC.png"), subject_of("012_HC.png")
        ('012', '012')
    """
    return Path(name).name.split("_", 1)[0]


def _table(path: Path, columns: dict[str, tuple[str, ...]]) -> list[dict[str, str]]:
    """The rows of a CSV as dicts of the wanted columns (each found by any of its header names)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    where = {}
    for key, names in columns.items():
        found = [i for i, h in enumerate(header) if h in names]
        if not found:
            raise ValueError(f"{path}: no column {names[0]!r} in the header {header}")
        where[key] = found[0]
    rows = []
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise ValueError(f"{path} row {number}: expected {len(header)} columns {header}; got {row}")
        rows.append({key: row[i].strip() for key, i in where.items()} | {"_row": str(number)})
    return rows


def _number(row: dict[str, str], key: str, path: Path, positive: bool = True) -> float:
    text = row[key]
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path} row {row['_row']}: {key} must be a number; got {text!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{path} row {row['_row']}: {key} must be a positive number; got {text!r}")
    return value


def _label_map(path: Path) -> np.ndarray:
    with open_image(path) as img:
        return np.asarray(img.convert("L"))


def ellipse_of_mask(path: Path) -> Ellipse:
    """The head ellipse fitted to the outer boundary of a filled mask's largest region
    (:func:`sslkeypoint.masks.mask_ellipse`)."""
    ellipse = mask_ellipse((_label_map(path) > 0).astype(np.uint8), 1)
    if ellipse is None:
        raise ValueError(f"{path}: the mask holds no head an ellipse fits (fewer than 5 boundary pixels?)")
    return ellipse


def ellipse_of_outline(path: Path) -> Ellipse:
    """The head ellipse fitted to the pixels of a drawn outline (the challenge's annotation)."""
    rows, cols = np.nonzero(_label_map(path) > 0)
    if rows.size < 5:
        raise ValueError(f"{path}: the annotation holds no outline (fewer than 5 drawn pixels)")
    return fit_ellipse(np.stack([cols, rows], axis=1).astype(np.float64))


def _checked_ellipse(read, path: Path) -> Ellipse:  # type: ignore[no-untyped-def]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (the head annotation of an image in the table)")
    return read(path)


def read_cases(root: str | Path) -> list[HeadCase]:
    """Every labelled image of an HC18 folder, in either layout (see the module notes).

    Raises:
        FileNotFoundError: If ``root`` is not an HC18 folder, or an image or its mask is missing.
        ValueError: A malformed table row (file and row named) or an empty mask.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder" if not root.exists() else f"{root}: is a file, not an HC18 folder")
    if (root / "labels.csv").is_file():
        table = root / "labels.csv"
        rows = _table(table, {"filename": ("filename",), "pixel_size_mm": ("pixel_size_mm",), "hc_mm": ("hc_mm",)})
        images, annotation, read = root / "images", lambda name: root / "masks" / name, ellipse_of_mask
    elif (root / "training_set_pixel_size_and_HC.csv").is_file():
        table = root / "training_set_pixel_size_and_HC.csv"
        rows = _table(table, {"filename": ("filename",), "pixel_size_mm": ("pixel size(mm)", "pixel_size_mm"),
                              "hc_mm": ("head circumference (mm)", "head circumference(mm)", "hc_mm")})
        images = root / "training_set"
        annotation, read = (lambda name: images / name.replace(".png", "_Annotation.png")), ellipse_of_outline
    else:
        raise FileNotFoundError(
            f"{root}: not an HC18 folder: expected labels.csv (with images/ and masks/) or the challenge's "
            "training_set_pixel_size_and_HC.csv (with training_set/)")
    cases = []
    for row in rows:
        name = row["filename"]
        image = images / name
        if not image.is_file():
            raise FileNotFoundError(f"{table} row {row['_row']}: {image}: no such image")
        cases.append(HeadCase(image, subject_of(name), _number(row, "pixel_size_mm", table),
                              _number(row, "hc_mm", table), _checked_ellipse(read, annotation(name))))
    if not cases:
        raise ValueError(f"{table}: no labelled images")
    return cases


def read_unlabelled(root: str | Path) -> UnlabelledImages:
    """The unlabelled images of an HC18 folder (``unlabelled/`` or the challenge's ``test_set/``),
    with their pixel sizes; empty when the folder has none."""
    root = Path(root)
    for folder, table in ((root / "unlabelled", root / "unlabelled" / "pixel_size.csv"),
                          (root / "test_set", root / "test_set_pixel_size.csv")):
        if folder.is_dir():
            sizes = {}
            if table.is_file():
                rows = _table(table, {"filename": ("filename",),
                                      "pixel_size_mm": ("pixel_size_mm", "pixel size(mm)")})
                sizes = {row["filename"]: _number(row, "pixel_size_mm", table) for row in rows}
            images = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and "_Annotation" not in p.name)
            return UnlabelledImages(images, [sizes.get(p.name, math.nan) for p in images])
    return UnlabelledImages([], [])
