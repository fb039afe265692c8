"""Records files of every supported format, recognised by their content.

:func:`read_records` reads:

* the project's own CSV (:mod:`~sslkeypoint.data.formats.table`) and JSON
  (:mod:`~sslkeypoint.data.formats.records_json`) layouts;
* COCO keypoints (:mod:`~sslkeypoint.data.formats.coco`; :func:`write_coco` writes it);
* DeepLabCut's ``CollectedData_*.csv`` (:mod:`~sslkeypoint.data.formats.deeplabcut`);
* LabelMe-style per-image JSON, one file or a folder of them (:mod:`~sslkeypoint.data.formats.labelme`);
* with the optional ``formats`` extra, everything `sleap-io <https://io.sleap.ai>`_ reads (SLEAP
  ``.slp``, NWB, Label Studio exports, ...; :mod:`~sslkeypoint.data.formats.sleap`).
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sslkeypoint.data.formats.coco import is_coco, records_from_coco, write_coco
from sslkeypoint.data.formats.deeplabcut import is_deeplabcut, read_deeplabcut
from sslkeypoint.data.formats.labelme import is_labelme, read_labelme
from sslkeypoint.data.formats.records_json import is_records_json, records_from_json
from sslkeypoint.data.formats.sleap import load_sleap, records_from_sleap
from sslkeypoint.data.formats.table import (
    GROUP_COLUMNS,
    PIXEL_SIZE_COLUMNS,
    read_table,
    table_delimiter,
)
from sslkeypoint.data.records import KeypointRecord
from sslkeypoint.data.text import _is_binary, decode_text, parse_json

__all__ = ["FORMATS", "GROUP_COLUMNS", "PIXEL_SIZE_COLUMNS", "read_records", "records_from_sleap", "write_coco"]

#: The formats :func:`read_records` accepts (its ``format`` argument), each with what marks it.
FORMATS: dict[str, str] = {
    "csv": "the project's CSV: a header, the image path, then x/y columns or '(x, y)' cells",
    "json": "the project's JSON: [{'path': ..., 'keypoints': [[x, y], ...]}, ...] or {'records': [...]}",
    "coco": "COCO keypoints JSON: 'images', 'annotations', 'categories' with 'keypoints'",
    "deeplabcut": "DeepLabCut CollectedData CSV: header rows 'scorer', 'bodyparts', 'coords'",
    "labelme": "LabelMe JSON with 'imagePath' and point 'shapes', one file or a folder of them",
    "sleap": "anything sleap-io reads (.slp, .nwb, Label Studio, ...; pip install 'sslkeypoint[formats]')",
}

_SLEAP_SUFFIXES = (".slp", ".nwb", ".h5", ".pkg.slp")


def _accepted() -> str:
    return "; ".join(f"{name}: {what}" for name, what in FORMATS.items())


def _describe(data: object) -> str:
    if isinstance(data, dict):
        return f"a JSON object with keys {sorted(data)[:8]}"
    if isinstance(data, list):
        first = data[0] if data else None
        return f"a JSON list of {len(data)} items" + (f", the first with keys {sorted(first)[:8]}" if isinstance(first, dict) else "")
    return f"a JSON {type(data).__name__}"


def _is_label_studio(data: object) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and (
        "annotations" in data[0] or "completions" in data[0]
    )


def read_records(
    path: str | os.PathLike[str], *, format: str | None = None, category: str | int | None = None
) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    """Read labelled records from a file (or a folder of LabelMe files), recognising its format.

    The format is told from the content, not the name (``format`` forces one of :data:`FORMATS`):
    a JSON object with ``images`` and ``annotations`` is COCO, one with ``shapes`` LabelMe, a list
    of objects with ``path`` (or an object with ``records``) the project's JSON; a CSV whose first
    cell is ``scorer`` is DeepLabCut's, any other CSV the project's; ``.slp`` / ``.nwb`` files and
    Label Studio exports go through sleap-io. A folder is read as LabelMe files (``*.json``).

    **The project's CSV** (header row required; relative image paths are relative to the CSV's
    folder; cells separated by commas, or by semicolons or tabs when the header holds no comma, as
    spreadsheets save it where the comma is the decimal mark). The first column is the image path; a column named ``group`` (or ``subject``,
    ``video``, ``sequence``) gives the image's group and one named ``pixel_size_mm`` (or
    ``pixel_size``, ``pixel_spacing``) its pixel size in mm; every other column is a label, in
    one of two layouts:

    * one column per coordinate: ``path,x1,y1,x2,y2,...`` (an even number of numeric columns;
      ``PS1_x,PS1_y`` style headers name the landmarks);
    * one column per landmark holding a point ``"(x, y)"`` (brackets and spaces optional,
      exactly two numbers): ``Filename,PS1,PS2,FH1`` — the header names the landmarks.

    Coordinate columns are paired **by their header names** when every one of them names its
    landmark and axis — ``<name>_x`` / ``<name>_y`` (also ``<name>.x``, ``<name> x``, ``<name>x``)
    or ``x<n>`` / ``y<n>`` — and each landmark has exactly one x and one y column: then
    ``image,PS1_y,PS1_x,PS2_x,PS2_y`` reads PS1 as ``(PS1_x, PS1_y)``, in any column order, and
    the landmarks come in the order of their first column. Columns whose names carry no x/y ending
    are paired in file order, x first; a file-order pair whose names contradict it (``PS2_y``
    then ``top``) is refused rather than read swapped.

    Coordinates are ``(x, y)`` in the original image's pixels, integers at pixel centres. An empty
    cell (or ``nan``) marks a missing landmark (it becomes NaN and is excluded from the loss mask
    and the metrics); an infinite coordinate (``inf``, ``1e999``) is an error, not a missing
    landmark.

    **Decimal commas are not read.** A cell that is two digit groups joined by one comma and
    nothing else — no bracket, no space, no decimal point, such as ``"12,5"`` (or ``"1.234,5"``
    with a thousands dot) — is refused wherever it is, naming the file, row and column: in a
    coordinate column it is a number written with a decimal comma; in a point column it may be the
    number 12.5 or the point (12, 5) written without brackets, and no rule tells them apart. Write
    numbers with a dot (``12.5``) and points with brackets or a space (``(12, 5)``, ``12, 5``);
    ``"12.5,7.25"`` (decimal points) and ``"(12,5)"`` (brackets) are points.

    **The project's JSON**: a list of objects ``{"path": ..., "keypoints": [[x, y], ...],
    "visible": [...], "group": ..., "pixel_size_mm": ..., "meta": {...}}`` (all but ``path`` and
    ``keypoints`` optional), or an object ``{"keypoint_names": [...], "records": [...]}``.
    ``visible`` holds one value per keypoint, each a boolean, 0 or 1, or one of the strings
    ``true``/``false``, ``yes``/``no`` (any case); anything else is refused
    (:func:`~sslkeypoint.data.records.parse_visible`).

    **Every format**: text files must be UTF-8 (a byte-order mark is dropped); a file saved as
    UTF-16 ("Unicode text") or Latin-1 is refused with the first byte that is not UTF-8 and a
    guess at its encoding (:func:`~sslkeypoint.data.text.read_text`), and a JSON syntax error names
    the file, line and column. One image must have one record: two records whose paths resolve to
    the same file are refused, naming both rows (records, annotations, files); two paths that
    differ only in letter case (``A.png``, ``a.png``: one file on macOS and Windows) give a
    ``UserWarning`` naming both.

    Args:
        path: The file, or a folder of LabelMe files.
        format: Force a format (a key of :data:`FORMATS`) instead of recognising it.
        category: COCO only: the keypoint category (name or id) when the file has several.

    Returns:
        ``(records, keypoint_names)``; names are ``None`` when the file does not give them.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: On a file of no supported format (naming what was found and the formats
            accepted), a file that is not UTF-8 text, a malformed one, or one image labelled twice;
            the message names the file and the row and column (or record and field).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> f = Path(tempfile.mkdtemp()) / "labels.csv"
        >>> _ = f.write_text('Filename,PS1,PS2,FH1\\na.png,"(300, 80)","(200, 80)",(300 200)\\n')
        >>> records, names = read_records(f)
        >>> names, records[0].keypoints.tolist()
        (('PS1', 'PS2', 'FH1'), [[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]])
    """
    p = Path(path)
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}; got {format!r}")
    records, names, kind = _read(p, format, category)
    _one_row_per_image(records, p, kind)
    return records, names


#: How a record is located in its file, per kind: the ``meta`` key its reader sets (``None``: the
#: position in the list) and how two places are written.
_PLACES: dict[str, tuple[str | None, str]] = {
    "row": ("row", "rows {} and {}"),
    "annotation": ("annotation", "annotations[{}] and annotations[{}]"),
    "file": ("file", "files {} and {}"),
    "labelled frame": ("frame", "labelled frames {} and {}"),
    "record": (None, "records {} and {}"),
}


def _read(
    p: Path, format: str | None, category: str | int | None
) -> tuple[list[KeypointRecord], tuple[str, ...] | None, str]:
    """``(records, names, how a record is located)`` of a records file of any format."""
    if p.is_dir():
        files = sorted(p.rglob("*.json"))
        if not files:
            raise ValueError(f"{p}: a folder of records must hold LabelMe JSON files; found none")
        return (*read_labelme(files, root=p), "file")
    if not p.is_file():
        raise FileNotFoundError(f"records file not found: {p}")
    suffix = "".join(p.suffixes[-2:]).lower() if p.name.lower().endswith(".pkg.slp") else p.suffix.lower()
    if format == "sleap" or (format is None and suffix in _SLEAP_SUFFIXES):
        return (*records_from_sleap(load_sleap(p), where=str(p)), "labelled frame")
    data = p.read_bytes()
    if format is None and _is_binary(data):
        raise ValueError(
            f"{p}: not a records file of a format read here (first bytes {data[:40]!r}). Accepted: {_accepted()}"
        )
    text = decode_text(data, p)
    text_start = text.lstrip(" \t\r\n")[:1]
    if format in ("json", "coco", "labelme") or (format is None and text_start in ("{", "[")):
        parsed = parse_json(text, p)
        if format == "coco" or (format is None and is_coco(parsed)):
            if not is_coco(parsed):
                raise ValueError(f"{p}: not a COCO keypoints file: found {_describe(parsed)}")
            return (*records_from_coco(p, parsed, category=category), "annotation")  # type: ignore[arg-type]
        if format == "labelme" or (format is None and is_labelme(parsed)):
            return (*read_labelme([p]), "file")
        if is_records_json(parsed):
            return (*records_from_json(p, parsed), "record")
        if format is None and _is_label_studio(parsed):
            return (*records_from_sleap(load_sleap(p, "labelstudio"), where=str(p)), "labelled frame")
        raise ValueError(f"{p}: found {_describe(parsed)}, which is no records format read here. Accepted: {_accepted()}")
    if format in ("csv", "deeplabcut") or format is None:
        first_line = text.splitlines()[:1]
        first = next(csv.reader(first_line), [])
        if format == "deeplabcut" or (format is None and is_deeplabcut(first)):
            return (*read_deeplabcut(p, text), "row")
        if format == "csv" or table_delimiter(first_line[0] if first_line else ""):
            return (*read_table(p, text), "row")
    raise ValueError(f"{p}: not a records file of a format read here (first bytes {data[:40]!r}). Accepted: {_accepted()}")


def _place(record: KeypointRecord, index: int, kind: str) -> Any:
    key = _PLACES[kind][0]
    value = record.meta.get(key) if key is not None else None
    return index if value is None else value


def _identity(path: str) -> tuple[Any, ...]:
    """What makes two paths one image: the file itself (device and inode, so a case-insensitive
    file system or a hard link is seen through) when it exists, else the resolved path."""
    try:
        st = os.stat(path)
    except OSError:
        return ("path", path)
    return ("file", st.st_dev, st.st_ino)


def _one_row_per_image(records: Sequence[KeypointRecord], source: str | os.PathLike[str], kind: str = "record") -> None:
    """Refuse two records of one image; warn of paths that differ only in letter case.

    Two records whose paths resolve to the same file (``a.png`` and ``./sub/../a.png``, two links
    to one file, ``A.png`` and ``a.png`` on a file system that ignores case) are an error: the
    image would be trained on (and scored) twice, with labels that may disagree. Paths that differ only in letter case (``A.png``, ``a.png``) are two files on
    Linux but one on macOS and Windows: a ``UserWarning`` names them. :func:`read_records` applies
    this to the records of every format.

    Args:
        records: The records read from ``source``.
        source: The records file, for the messages.
        kind: How a record is located in ``source``: a key of :data:`_PLACES` (``"row"`` names
            ``meta["row"]``, ``"record"`` the position in ``records``).

    Raises:
        ValueError: Naming the file, both places and the image.

    Examples:
        >>> rows = [KeypointRecord("a.png", None, meta={"row": 3}), KeypointRecord("a.png", None, meta={"row": 7})]
        >>> _one_row_per_image(rows, "labels.csv", "row")
        Traceback (most recent call last):
        ...
        ValueError: labels.csv: rows 3 and 7 both label a.png; one image, one row
    """
    two = _PLACES[kind][1]
    seen: dict[tuple[Any, ...], int] = {}
    folded: dict[str, int] = {}
    clashes: list[str] = []
    for i, record in enumerate(records):
        resolved = str(Path(record.path).resolve())
        j = seen.setdefault(_identity(resolved), i)
        if j != i:
            where = two.format(_place(records[j], j, kind), _place(record, i, kind))
            raise ValueError(f"{source}: {where} both label {Path(str(records[j].path)).name}; one image, one {kind}")
        j = folded.setdefault(resolved.casefold(), i)
        if j != i:
            where = two.format(_place(records[j], j, kind), _place(record, i, kind))
            clashes.append(f"{where} name {str(records[j].path)!r} and {str(record.path)!r}")
    if clashes:
        more = f" (and {len(clashes) - 3} more)" if len(clashes) > 3 else ""
        warnings.warn(
            f"{source}: {'; '.join(clashes[:3])}{more}, which differ only in letter case: one file on macOS and "
            "Windows, two on Linux; rename one so that the labels mean the same everywhere",
            UserWarning,
            stacklevel=3,
        )
