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
import json
import os
from pathlib import Path

from sslkeypoint.data.formats.coco import is_coco, records_from_coco, write_coco
from sslkeypoint.data.formats.deeplabcut import is_deeplabcut, read_deeplabcut
from sslkeypoint.data.formats.labelme import is_labelme, read_labelme
from sslkeypoint.data.formats.records_json import is_records_json, records_from_json
from sslkeypoint.data.formats.sleap import load_sleap, records_from_sleap
from sslkeypoint.data.formats.table import GROUP_COLUMNS, PIXEL_SIZE_COLUMNS, read_table
from sslkeypoint.data.records import KeypointRecord

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


def _json(p: Path) -> object:
    try:
        return json.loads(p.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not UTF-8 text; records files must be UTF-8 (save it as UTF-8)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{p}: not valid JSON: {err}") from None


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
    folder). The first column is the image path; a column named ``group`` (or ``subject``,
    ``video``, ``sequence``) gives the image's group and one named ``pixel_size_mm`` (or
    ``pixel_size``, ``pixel_spacing``) its pixel size in mm; every other column is a label, in
    one of two layouts:

    * one column per coordinate: ``path,x1,y1,x2,y2,...`` (an even number of numeric columns;
      ``PS1_x,PS1_y`` style headers name the landmarks);
    * one column per landmark holding a point ``"(x, y)"`` (brackets and spaces optional,
      exactly two numbers): ``Filename,PS1,PS2,FH1`` — the header names the landmarks.

    Coordinates are ``(x, y)`` in the original image's pixels, integers at pixel centres. An empty
    cell (or ``nan``) marks a missing landmark (it becomes NaN and is excluded from the loss mask
    and the metrics); an infinite coordinate (``inf``, ``1e999``) is an error, not a missing
    landmark.

    **The project's JSON**: a list of objects ``{"path": ..., "keypoints": [[x, y], ...],
    "visible": [...], "group": ..., "pixel_size_mm": ..., "meta": {...}}`` (all but ``path`` and
    ``keypoints`` optional), or an object ``{"keypoint_names": [...], "records": [...]}``.

    Args:
        path: The file, or a folder of LabelMe files.
        format: Force a format (a key of :data:`FORMATS`) instead of recognising it.
        category: COCO only: the keypoint category (name or id) when the file has several.

    Returns:
        ``(records, keypoint_names)``; names are ``None`` when the file does not give them.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: On a file of no supported format (naming what was found and the formats
            accepted), or a malformed one; the message names the file and the row and column (or
            record and field).

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
    if p.is_dir():
        files = sorted(p.rglob("*.json"))
        if not files:
            raise ValueError(f"{p}: a folder of records must hold LabelMe JSON files; found none")
        return read_labelme(files, root=p)
    if not p.is_file():
        raise FileNotFoundError(f"records file not found: {p}")
    suffix = "".join(p.suffixes[-2:]).lower() if p.name.lower().endswith(".pkg.slp") else p.suffix.lower()
    if format == "sleap" or (format is None and suffix in _SLEAP_SUFFIXES):
        return records_from_sleap(load_sleap(p), where=str(p))
    head = p.read_bytes()[:4096]
    text_start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if format in ("json", "coco", "labelme") or (format is None and text_start in (b"{", b"[")):
        data = _json(p)
        if format == "coco" or (format is None and is_coco(data)):
            if not is_coco(data):
                raise ValueError(f"{p}: not a COCO keypoints file: found {_describe(data)}")
            return records_from_coco(p, data, category=category)  # type: ignore[arg-type]
        if format == "labelme" or (format is None and is_labelme(data)):
            return read_labelme([p])
        if is_records_json(data):
            return records_from_json(p, data)
        if format is None and _is_label_studio(data):
            return records_from_sleap(load_sleap(p, "labelstudio"), where=str(p))
        raise ValueError(f"{p}: found {_describe(data)}, which is no records format read here. Accepted: {_accepted()}")
    if format in ("csv", "deeplabcut") or format is None:
        try:
            first_line = head.decode("utf-8-sig").splitlines()[:1]
        except UnicodeDecodeError:
            raise ValueError(f"{p}: not UTF-8 text; records files must be UTF-8 (save it as UTF-8)") from None
        first = next(csv.reader(first_line), [])
        if format == "deeplabcut" or (format is None and is_deeplabcut(first)):
            return read_deeplabcut(p)
        if format == "csv" or "," in (first_line[0] if first_line else ""):
            return read_table(p)
    raise ValueError(f"{p}: not a records file of a format read here (first bytes {head[:40]!r}). Accepted: {_accepted()}")
