"""The IUGC 2025 on-disk format: folder and file names, CSV columns, how cells are written and read.

This module is the single definition of the format; :func:`iugc_aop.formats.read_iugc` reads it
and :func:`iugc_aop.synth.write_synthetic_iugc` writes it::

    ROOT/Training/Labeled cases/label.csv          Filename, PS1, PS2, FH1, AOP
    ROOT/Training/Labeled cases/<images>
    ROOT/Training/Unlabeled cases/ExampleN.jpg     standard-plane reference images
    ROOT/Training/Unlabeled cases/<video>/<frames> one folder of frames per video (any depth)
    ROOT/Validation/landmarks_data.csv             Filename, PS1, PS2, AOP Tangency (= FH1)
    ROOT/Validation/aop_results.csv                Filename, AOP
    ROOT/Validation/<images>                       next to the CSV files or in images/
    ROOT/Testing/...                               as Validation

Each name below is a tuple whose first item is the spelling of the released data (what the
writer uses) followed by other spellings the reader accepts; names are compared ignoring case,
spaces and punctuation, and ``Labelled`` equals ``Labeled``.

Points are written as ``"(x, y)"`` with :data:`POINT_DECIMALS` decimals in original pixels
(``x`` first) and read leniently about brackets, separators and spaces but strictly about the
content (:func:`parse_point`); an AoP is written with :data:`AOP_DECIMALS` decimals.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iugc_aop.landmarks import LANDMARK_NAMES
from sslkeypoint.atomic import atomic_open
from sslkeypoint.data import format_point as library_format_point
from sslkeypoint.data import parse_point as library_parse_point
from sslkeypoint.data import read_text

__all__ = [
    "AOP_COLUMNS",
    "AOP_CSV",
    "AOP_DECIMALS",
    "COLUMN_ALIASES",
    "EVAL_SPLIT_DIRS",
    "LABELLED_DIR",
    "LANDMARKS_COLUMNS",
    "LANDMARKS_CSV",
    "LAYOUT",
    "POINT_DECIMALS",
    "SPLITS",
    "TESTING_DIR",
    "TRAINING_DIR",
    "TRAIN_COLUMNS",
    "TRAIN_CSV",
    "UNLABELLED_DIR",
    "VALIDATION_DIR",
    "CsvRow",
    "IUGCFormatError",
    "IUGCLayoutError",
    "format_aop",
    "format_point",
    "is_reference_name",
    "normalise_name",
    "parse_number",
    "parse_point",
    "read_label_csv",
    "reference_filename",
    "split_dir",
    "unlabelled_dir",
    "write_csv",
    "write_split_labels",
]

#: The labelled splits, in the order the data set lists them.
SPLITS = ("train", "validation", "testing")

#: ``Training/`` at the root.
TRAINING_DIR = ("Training", "Train")
#: ``Labeled cases/`` inside ``Training/``: the labelled training images and :data:`TRAIN_CSV`.
LABELLED_DIR = ("Labeled cases", "Labeled")
#: ``Unlabeled cases/`` inside ``Training/``: videos and reference images.
UNLABELLED_DIR = ("Unlabeled cases", "Unlabeled")
#: ``Validation/`` at the root.
VALIDATION_DIR = ("Validation", "Val")
#: ``Testing/`` at the root.
TESTING_DIR = ("Testing", "Test")
#: Folder of each evaluation split.
EVAL_SPLIT_DIRS = {"validation": VALIDATION_DIR, "testing": TESTING_DIR}

#: Labels of the training images (in ``Labeled cases/``).
TRAIN_CSV = ("label.csv", "labels.csv")
#: Landmarks of an evaluation split.
LANDMARKS_CSV = "landmarks_data.csv"
#: AoP labels of an evaluation split.
AOP_CSV = "aop_results.csv"

#: Header of :data:`TRAIN_CSV`.
TRAIN_COLUMNS = ("Filename", "PS1", "PS2", "FH1", "AOP")
#: Header of :data:`LANDMARKS_CSV` (``AOP Tangency`` is ``FH1``).
LANDMARKS_COLUMNS = ("Filename", "PS1", "PS2", "AOP Tangency")
#: Header of :data:`AOP_CSV`.
AOP_COLUMNS = ("Filename", "AOP")

#: Canonical column → header spellings accepted (after :func:`normalise_name`).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "filename": ("filename", "file", "image", "imagename", "name"),
    "PS1": ("ps1",),
    "PS2": ("ps2",),
    "FH1": ("fh1", "aoptangency", "tangency", "fh"),
    "AOP": ("aop", "aopdeg", "aopdegree", "aopdegrees", "angleofprogression", "angle"),
}

#: Decimals of a written point coordinate (px).
POINT_DECIMALS = 4
#: Decimals of a written AoP (degrees).
AOP_DECIMALS = 6

_TRAIN_PATH = f"{TRAINING_DIR[0]}/{LABELLED_DIR[0]}"

#: The expected layout, as error messages show it.
LAYOUT = f"""\
  ROOT/{_TRAIN_PATH}/{TRAIN_CSV[0]}   ({", ".join(TRAIN_COLUMNS)}) + images
  ROOT/{TRAINING_DIR[0]}/{UNLABELLED_DIR[0]}/          (one folder of frames per video, ExampleN.jpg)
  ROOT/{VALIDATION_DIR[0]}/{LANDMARKS_CSV}      ({", ".join(LANDMARKS_COLUMNS)}) + images
  ROOT/{VALIDATION_DIR[0]}/{AOP_CSV}         ({", ".join(AOP_COLUMNS)})
  ROOT/{TESTING_DIR[0]}/{LANDMARKS_CSV}, {AOP_CSV} + images"""


class IUGCLayoutError(FileNotFoundError):
    """A folder or file of the IUGC layout is missing; the message lists all that is missing."""


class IUGCFormatError(ValueError):
    """A CSV file does not have the expected columns or a cell cannot be parsed."""


# --------------------------------------------------------------------------------------------
# Names and paths
# --------------------------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """A folder, file or column name as compared: lower case, letters and digits only.

    Examples:
        >>> normalise_name("Labelled Cases"), normalise_name("AOP Tangency")
        ('labeledcases', 'aoptangency')
    """
    return re.sub(r"[^a-z0-9]", "", name.lower()).replace("labelled", "labeled")


def split_dir(root: str | os.PathLike[str], split: str) -> Path:
    """The folder of a labelled split as released: ``Training/Labeled cases``, ``Validation``, ...

    Examples:
        >>> split_dir("data", "train").as_posix()
        'data/Training/Labeled cases'
    """
    if split == "train":
        return Path(root) / TRAINING_DIR[0] / LABELLED_DIR[0]
    if split in EVAL_SPLIT_DIRS:
        return Path(root) / EVAL_SPLIT_DIRS[split][0]
    raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")


def unlabelled_dir(root: str | os.PathLike[str]) -> Path:
    """``Training/Unlabeled cases`` of a root, as released.

    Examples:
        >>> unlabelled_dir("data").as_posix()
        'data/Training/Unlabeled cases'
    """
    return Path(root) / TRAINING_DIR[0] / UNLABELLED_DIR[0]


_REFERENCE = re.compile(r"^example[\s_-]*\d*$", re.IGNORECASE)


def reference_filename(number: int) -> str:
    """File name of the ``number``-th (1-based) standard-plane reference image.

    Examples:
        >>> reference_filename(3)
        'Example3.jpg'
    """
    return f"Example{number}.jpg"


def is_reference_name(stem: str) -> bool:
    """Whether a file name stem at the top of ``Unlabeled cases`` names a reference image.

    Examples:
        >>> is_reference_name("Example12"), is_reference_name("example_1"), is_reference_name("frame_1")
        (True, True, False)
    """
    return _REFERENCE.match(stem) is not None


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------

def parse_point(text: str, *, where: str = "") -> tuple[float, float]:
    """Parse a point cell: :func:`sslkeypoint.data.parse_point` raising :class:`IUGCFormatError`.

    Examples:
        >>> parse_point(" [ 301.5 ; 72.25 ] ")
        (301.5, 72.25)
        >>> parse_point("(1, 2, 3)", where="label.csv row 1, column 'PS1'")
        Traceback (most recent call last):
        ...
        iugc_aop.formats.iugc.IUGCFormatError: label.csv row 1, column 'PS1': expected a point '(x, y)' of two finite numbers, got '(1, 2, 3)' (3 values)
    """
    try:
        return library_parse_point(text, where=where)
    except ValueError as err:
        raise IUGCFormatError(str(err)) from None


def parse_number(text: str, where: str) -> float:
    """Parse a finite number cell (an AoP in degrees).

    Args:
        text: The cell.
        where: Location prefix for the error message.

    Returns:
        The number.

    Raises:
        IUGCFormatError: If the cell is not a finite number.

    Examples:
        >>> parse_number(" 92.5 ", where="aop_results.csv row 1")
        92.5
    """
    try:
        v = float(str(text).strip())
    except ValueError:
        raise IUGCFormatError(f"{where}: expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise IUGCFormatError(f"{where}: expected a finite number, got {text!r}")
    return v


def format_point(point: Any) -> str:
    """A point ``(x, y)`` as written in the label files (:data:`POINT_DECIMALS` decimals).

    Examples:
        >>> format_point([301.5, 72.25])
        '(301.5000, 72.2500)'
        >>> parse_point(format_point([1.23456, -7.0]))
        (1.2346, -7.0)
    """
    return library_format_point(float(point[0]), float(point[1]), POINT_DECIMALS)


def format_aop(aop: float) -> str:
    """An AoP as written in the label files (:data:`AOP_DECIMALS` decimals).

    Examples:
        >>> format_aop(92.0)
        '92.000000'
    """
    return f"{aop:.{AOP_DECIMALS}f}"


# --------------------------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvRow:
    """One data row of a label file, with where it came from.

    Attributes:
        path: The CSV file.
        row: 1-based data row (the header excluded).
        line: Line of the file where the row ends.
        cells: Canonical column (a key of :data:`COLUMN_ALIASES`) → cell text.
        headers: Canonical column → the header's own spelling.
    """

    path: Path
    row: int
    line: int
    cells: dict[str, str]
    headers: dict[str, str]

    def where(self, column: str) -> str:
        """``"<file>: data row R (line L), column '<header>'"`` for error messages."""
        return (f"{self.path}: data row {self.row} (line {self.line}), "
                f"column {self.headers.get(column, column)!r}")

    def landmarks(self) -> np.ndarray:
        """The ``(3, 2)`` float64 points of the columns ``PS1, PS2, FH1`` (px).

        Raises:
            IUGCFormatError: Naming the file, row, line and column of a bad cell.
        """
        return np.array(
            [parse_point(self.cells[c], where=self.where(c)) for c in LANDMARK_NAMES],
            dtype=np.float64,
        )

    def number(self, column: str) -> float:
        """The finite number in ``column`` (e.g. ``"AOP"``)."""
        return parse_number(self.cells[column], self.where(column))


def read_label_csv(path: str | os.PathLike[str], wanted: Iterable[str]) -> list[CsvRow]:
    """The data rows of a label file, keyed by canonical column names.

    Header cells are matched to canonical columns through :data:`COLUMN_ALIASES` (the first
    matching header wins); blank rows are skipped and short rows padded with empty cells.

    Args:
        path: The CSV file (UTF-8, an optional byte-order mark; another encoding, such as Excel's
            UTF-16 "Unicode text", is an :class:`IUGCFormatError` naming the file).
        wanted: Canonical columns that must exist, e.g. ``("filename", "PS1", "PS2", "FH1")``.

    Returns:
        One :class:`CsvRow` per non-blank data row.

    Raises:
        IUGCFormatError: If the file is not UTF-8 text, is empty, or a wanted column is missing
            (the header found is shown).
    """
    path = Path(path)
    wanted = list(wanted)
    try:
        text = read_text(path)
    except ValueError as err:  # not UTF-8: the message names the file and the likely encoding
        raise IUGCFormatError(str(err)) from None
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise IUGCFormatError(f"{path}: the file is empty; expected a header row") from None
        normalised = [normalise_name(h) for h in header]
        columns: dict[str, int] = {}
        missing = []
        for canon in wanted:
            idx = next((i for i, h in enumerate(normalised) if h in COLUMN_ALIASES[canon]), None)
            if idx is None:
                missing.append(canon)
            else:
                columns[canon] = idx
        if missing:
            raise IUGCFormatError(
                f"{path}: missing column(s) {missing}; expected columns like "
                f"{[c if c != 'filename' else 'Filename' for c in wanted]}, found {header}"
            )
        headers = {canon: header[i] for canon, i in columns.items()}
        rows: list[CsvRow] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) < len(header):
                cells = cells + [""] * (len(header) - len(cells))
            rows.append(CsvRow(path, len(rows) + 1, reader.line_num,
                               {canon: cells[i] for canon, i in columns.items()}, headers))
        return rows


def write_csv(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[str]]
) -> Path:
    """Write a CSV file as the label files are written (``\\n`` line ends, minimal quoting).

    Examples:
        >>> import tempfile
        >>> p = write_csv(Path(tempfile.mkdtemp()) / "x.csv", AOP_COLUMNS, [["1.jpg", "90.000000"]])
        >>> p.read_text()
        'Filename,AOP\\n1.jpg,90.000000\\n'
    """
    path = Path(path)
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def write_split_labels(
    root: str | os.PathLike[str], split: str, rows: Iterable[tuple[str, Any, float]]
) -> list[Path]:
    """Write the label files of one split in the released layout.

    ``"train"`` gets :data:`TRAIN_CSV` (points and AoP in one file); ``"validation"`` and
    ``"testing"`` get :data:`LANDMARKS_CSV` and :data:`AOP_CSV`. The split's folder must exist.

    Args:
        root: The data set's root folder.
        split: ``"train"``, ``"validation"`` or ``"testing"``.
        rows: ``(filename, (3, 2) landmarks PS1, PS2, FH1 in px, AoP in degrees)`` per image.

    Returns:
        The files written.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp()); split_dir(root, "testing").mkdir()
        >>> kp = [[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]]
        >>> [p.name for p in write_split_labels(root, "testing", [("1.jpg", kp, 90.0)])]
        ['landmarks_data.csv', 'aop_results.csv']
        >>> (root / "Testing" / "landmarks_data.csv").read_text().splitlines()[1]
        '1.jpg,"(300.0000, 80.0000)","(200.0000, 80.0000)","(300.0000, 200.0000)"'
    """
    folder = split_dir(root, split)
    rows = list(rows)
    if split == "train":
        return [write_csv(folder / TRAIN_CSV[0], TRAIN_COLUMNS,
                          [[n, *(format_point(p) for p in kp[:3]), format_aop(a)]
                           for n, kp, a in rows])]
    return [
        write_csv(folder / LANDMARKS_CSV, LANDMARKS_COLUMNS,
                  [[n, *(format_point(p) for p in kp[:3])] for n, kp, _ in rows]),
        write_csv(folder / AOP_CSV, AOP_COLUMNS, [[n, format_aop(a)] for n, _, a in rows]),
    ]
