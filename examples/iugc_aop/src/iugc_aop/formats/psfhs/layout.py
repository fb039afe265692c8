"""The PSFHS on-disk layout: its folders, how cases are listed, and the errors naming what is wrong.

Two layouts are read:

* ``"psfhs-png"`` — ``images/NNNNN.png`` (8-bit grayscale) and ``masks/NNNNN.png`` (label maps),
  with an optional ``cases.csv`` (``case,group``) naming a similarity group per case;
* ``"psfhs-mha"`` — the original distribution: ``image_mha/NNNNN.mha`` (three identical channels)
  and ``label_mha/NNNNN.mha``; reading it needs SimpleITK (``pip install "iugc-aop[mha]"``).

Folder names are matched ignoring case, ``_`` and ``-``; a folder that also holds the IUGC folders
is not PSFHS data (:func:`is_psfhs`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from iugc_aop.formats.iugc import (
    EVAL_SPLIT_DIRS,
    TRAINING_DIR,
    IUGCFormatError,
    IUGCLayoutError,
    normalise_name,
)
from sslkeypoint.data import natural_sort_key

__all__ = ["CASES_CSV", "LAYOUT", "PSFHSFormatError", "PSFHSLayoutError", "is_psfhs"]

#: The optional file naming a similarity group per case (columns ``case,group``).
CASES_CSV = "cases.csv"

#: The layouts :func:`~iugc_aop.formats.psfhs.read_psfhs` reads, as shown in its error messages.
LAYOUT = """\
  <root>/images/NNNNN.png      8-bit grayscale frames
  <root>/masks/NNNNN.png       label maps of the same size: 0 background, 1 PS, 2 FH
  <root>/cases.csv             optional: case,group (similarity groups; computed when absent)
or the original distribution (needs SimpleITK):
  <root>/image_mha/NNNNN.mha   frames (three identical channels)
  <root>/label_mha/NNNNN.mha   label maps: 0 background, 1 PS, 2 FH"""

_PNG_DIRS = ("images", "masks")
_MHA_DIRS = ("image_mha", "label_mha")
_IUGC_DIRS = (*TRAINING_DIR, *(n for names in EVAL_SPLIT_DIRS.values() for n in names))
_MHA_SUFFIXES = (".mha", ".mhd")
_MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".pgm")  # lossless formats only

Layout = Literal["psfhs-png", "psfhs-mha"]


class PSFHSLayoutError(IUGCLayoutError):
    """A folder of the PSFHS layout is missing or does not match; the message names it."""


class PSFHSFormatError(IUGCFormatError):
    """``cases.csv`` is malformed or does not match the images; the message names file and row."""


def _child(parent: Path, name: str) -> Path | None:
    """The sub-folder of ``parent`` called ``name`` (case, ``_`` and ``-`` ignored)."""
    wanted = normalise_name(name)
    for p in sorted(parent.iterdir()):
        if p.is_dir() and normalise_name(p.name) == wanted:
            return p
    return None


def _folders(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    return {name: p for name in (*_PNG_DIRS, *_MHA_DIRS) if (p := _child(root, name)) is not None}


def is_psfhs(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` is laid out as PSFHS data (to be read with :func:`.read_psfhs`).

    True when ``root`` holds one of the PSFHS folders ``images/``, ``masks/``, ``image_mha/``
    or ``label_mha/`` and none of the IUGC folders ``Training/``, ``Validation/``,
    ``Testing/``. One folder suffices: a half-complete layout is then read by
    :func:`~iugc_aop.formats.psfhs.read_psfhs`, whose error names what is missing.

    Args:
        root: A data folder.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> is_psfhs(root)
        False
        >>> (root / "images").mkdir(); (root / "masks").mkdir()
        >>> is_psfhs(root), is_psfhs(root / "images")
        (True, False)
    """
    root = Path(root)
    if not _folders(root):
        return False
    return all(_child(root, name) is None for name in _IUGC_DIRS)


def _find_layout(root: Path) -> tuple[Layout, Path, Path]:
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "not found"
        raise PSFHSLayoutError(f"PSFHS data folder {what}: {root}\nExpected:\n{LAYOUT}")
    found = _folders(root)
    if "images" in found and "masks" in found:
        return "psfhs-png", found["images"], found["masks"]
    if "image_mha" in found and "label_mha" in found:
        return "psfhs-mha", found["image_mha"], found["label_mha"]
    if "images" in found or "masks" in found:
        missing = "masks" if "images" in found else "images"
        what = ("label maps NNNNN.png (0 background, 1 PS, 2 FH), one per image"
                if missing == "masks" else "8-bit grayscale frames NNNNN.png, one per mask")
    elif found:
        missing = "label_mha" if "image_mha" in found else "image_mha"
        what = ("label maps NNNNN.mha, one per image" if missing == "label_mha"
                else "frames NNNNN.mha, one per label map")
    else:
        raise PSFHSLayoutError(
            f"{root} holds no PSFHS folder (images/ and masks/, or image_mha/ and label_mha/)."
            f"\nExpected:\n{LAYOUT}"
        )
    raise PSFHSLayoutError(
        f"PSFHS data at {root} is incomplete; missing {root / missing}/ (folder of {what})."
        f"\nExpected:\n{LAYOUT}"
    )


def _list(folder: Path, suffixes: Sequence[str], what: str) -> dict[str, Path]:
    """Case id (file stem) → file, in natural order; two files of one case are an error."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir(), key=lambda q: natural_sort_key(q.name)):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in suffixes:
            continue
        if p.stem in found:
            raise PSFHSLayoutError(
                f"{folder}: two {what} files for case {p.stem!r}: {found[p.stem].name} and "
                f"{p.name}; expected one file per case"
            )
        found[p.stem] = p
    if not found:
        raise PSFHSLayoutError(
            f"{folder}/ holds no {what} files (expected NNNNN{suffixes[0]}, one per case)"
            f"\nExpected:\n{LAYOUT}"
        )
    return found

