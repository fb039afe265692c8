"""Labelled records: what a labelled image is, and reading records files (CSV or JSON).

A :class:`KeypointRecord` names an image file and its ``(K, 2)`` keypoints in the original image's
pixels. :func:`read_records` reads them from a CSV or JSON file with errors that name the file, the
row and the column; :func:`parse_point` / :func:`format_point` are the text form of one point.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PARTIAL_LABELS", "KeypointRecord", "format_point", "parse_point", "read_records"]

#: ``KeypointRecord.meta`` key: when true, the record's missing (NaN) keypoints are unknown, not
#: absent — a pseudo-label whose landmark was dropped. Fine-tuning adds no loss for them, where a
#: missing keypoint of an ordinary record is taught as "no landmark here" (an all-zero heatmap).
PARTIAL_LABELS = "partial_labels"


@dataclass(frozen=True)
class KeypointRecord:
    """One labelled image: where it is and where its keypoints are.

    Attributes:
        path: Image file. Decoded by content, whatever its extension says.
        keypoints: ``(K, 2)`` float array of ``(x, y)`` in the original image's pixels, or
            ``None`` for an unlabelled image. NaN marks a missing keypoint.
        visible: Optional ``(K,)`` bool array; ``None`` means every finite keypoint is visible.
        meta: Free-form information carried along (split, case id, AoP label, ...);
            ``meta[PARTIAL_LABELS]`` marks partial labels (see :data:`PARTIAL_LABELS`).

    Raises:
        ValueError: If a coordinate is infinite (NaN, not infinity, marks a missing keypoint) or
            complex, naming the record and the keypoint. Other malformed keypoints (text, a wrong
            shape or count) are accepted here and reported by
            :class:`~sslkeypoint.data.KeypointDataset` as an invalid sample.

    Examples:
        >>> import numpy as np
        >>> r = KeypointRecord("a.png", np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> r.num_keypoints
        2
        >>> KeypointRecord("b.png", np.array([[1.0, 2.0], [np.inf, 4.0]]))
        Traceback (most recent call last):
        ...
        ValueError: KeypointRecord 'b.png': keypoint 1 is (inf, 4.0): coordinates must be finite (NaN marks a missing keypoint)
    """

    path: Path | str
    keypoints: np.ndarray | None = None
    visible: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.keypoints is None:
            return
        try:
            kp = np.asarray(self.keypoints)
            if kp.dtype == object:  # Python numbers of mixed kinds: let numpy infer their type
                kp = np.asarray(kp.tolist())
        except (TypeError, ValueError):
            return  # ragged or otherwise unusable: the dataset reports it
        name = f"KeypointRecord {str(self.path)!r}"
        if np.iscomplexobj(kp):
            raise ValueError(f"{name}: keypoints must be real (x, y) coordinates; got complex values {kp.tolist()!r}"[:300])
        if kp.dtype.kind != "f" or not np.isinf(kp).any():
            return
        first = tuple(int(i) for i in np.argwhere(np.isinf(kp))[0])
        if kp.ndim == 2 and kp.shape[1] == 2:
            what = f"keypoint {first[0]} is ({kp[first[0], 0]}, {kp[first[0], 1]})"
        else:
            what = f"keypoints{list(first)} is {kp[first]}"
        raise ValueError(f"{name}: {what}: coordinates must be finite (NaN marks a missing keypoint)")

    @property
    def num_keypoints(self) -> int:
        """Number of keypoints ``K`` (0 for an unlabelled record)."""
        return 0 if self.keypoints is None else int(np.asarray(self.keypoints).shape[0])




_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|NAN"


_BRACKETS = "()[]{}<>\"' "
_SEPARATORS = re.compile(r"[,;\s]+")


def parse_point(text: str, *, where: str = "") -> tuple[float, float]:
    """Parse a point written as text, such as ``"(301.5, 72.25)"``.

    Brackets (``()``, ``[]``, ``{}``), quotes, spaces and the separator (comma, semicolon or
    whitespace) are handled leniently; the content must be exactly two finite numbers, ``x`` first.

    Args:
        text: The cell.
        where: Location prefix for the error message (file, row, column).

    Returns:
        ``(x, y)`` in pixels.

    Raises:
        ValueError: Naming ``where``, what was expected and what came.

    Examples:
        >>> parse_point("(301.5, 72.25)")
        (301.5, 72.25)
        >>> parse_point(" [ 3 ; 4e1 ] ")
        (3.0, 40.0)
        >>> parse_point("(1, 2, 3)", where="label.csv row 1, column 'PS1'")
        Traceback (most recent call last):
        ...
        ValueError: label.csv row 1, column 'PS1': expected a point '(x, y)' of two finite numbers, got '(1, 2, 3)' (3 values)
    """
    prefix = f"{where}: " if where else ""
    body = str(text).strip().strip(_BRACKETS)
    parts = [p for p in _SEPARATORS.split(body) if p]
    if len(parts) != 2:
        raise ValueError(
            f"{prefix}expected a point '(x, y)' of two finite numbers, got {text!r} ({len(parts)} values)"
        )
    try:
        x, y = (float(p.strip(_BRACKETS)) for p in parts)
    except ValueError:
        raise ValueError(
            f"{prefix}expected a point '(x, y)' of two finite numbers, got {text!r} (not a number)"
        ) from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{prefix}expected a point '(x, y)' of two finite numbers, got {text!r} (not finite)")
    return x, y


def format_point(x: float, y: float, digits: int = 4) -> str:
    """A point as text, ``"(x, y)"`` with ``digits`` decimals: what :func:`parse_point` reads.

    Examples:
        >>> format_point(301.5, 72.25)
        '(301.5000, 72.2500)'
        >>> parse_point(format_point(1 / 3, 2.0))
        (0.3333, 2.0)
    """
    return f"({x:.{digits}f}, {y:.{digits}f})"


def _parse_float(text: str, where: str) -> float:
    t = text.strip()
    if t == "":
        return math.nan
    try:
        value = float(t)
    except ValueError:
        raise ValueError(f"{where}: expected a number; got {text!r}") from None
    if math.isinf(value):
        raise ValueError(
            f"{where}: expected a finite number (an empty cell or nan marks a missing keypoint); got {text!r}"
        )
    return value


def _json_coordinate(value: Any) -> float:
    """One JSON coordinate: a finite number, or ``None``/NaN for a missing keypoint."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected numbers, got {value!r}")
    number = float(value)
    if math.isinf(number):
        raise ValueError(f"expected finite numbers (null or NaN marks a missing keypoint), got {value!r}")
    return number


def _looks_like_point(text: str) -> bool:
    return bool(re.search(r"[(\[,;]", text)) or len(re.findall(_NUMBER, text)) == 2


def _pair_name(x: str, y: str, i: int) -> str:
    bx, by = re.sub(r"[\s_.\-]*[xX]$", "", x), re.sub(r"[\s_.\-]*[yY]$", "", y)
    if bx and bx == by and bx != x:
        return bx
    return f"kp{i}"


def read_records(path: str | Path) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    """Read labelled records from a CSV or JSON file.

    **CSV** (header row required; relative image paths are relative to the CSV's folder). The
    first column is the image path; every other column is a label, in one of two layouts:

    * one column per coordinate: ``path,x1,y1,x2,y2,...`` (an even number of numeric columns;
      ``PS1_x,PS1_y`` style headers name the landmarks);
    * one column per landmark holding a point ``"(x, y)"`` (brackets and spaces optional,
      exactly two numbers): ``Filename,PS1,PS2,FH1`` — the header names the landmarks.

    Coordinates are ``(x, y)`` in the original image's pixels. An empty cell (or ``nan``) marks a
    missing landmark (it becomes NaN and is excluded from the loss mask and the metrics); an
    infinite coordinate (``inf``, ``1e999``) is an error, not a missing landmark.

    **JSON**: a list of objects ``{"path": ..., "keypoints": [[x, y], ...], "visible": [...]
    (optional), "meta": {...} (optional)}``, or an object ``{"keypoint_names": [...], "records":
    [...]}``.

    Args:
        path: The ``.csv`` or ``.json`` file.

    Returns:
        ``(records, keypoint_names)``; names are ``None`` when the file does not give them.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: On a malformed file; the message names the file, row and column (or JSON
            record and field): a cell that is not a number or point, an infinite coordinate, a
            JSON coordinate that is not a number (``true``), or JSON records with different
            numbers of keypoints.

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
    if not p.is_file():
        raise FileNotFoundError(f"records file not found: {p}")
    if p.suffix.lower() == ".json":
        return _read_json_records(p)
    return _read_csv_records(p)


def _resolve(base: Path, value: str) -> Path:
    q = Path(value)
    return q if q.is_absolute() else base / q


def _read_csv_records(p: Path) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    with p.open(newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValueError(f"{p}: expected a header row and at least one data row; got {len(rows)} rows")
    header = [h.strip() for h in rows[0]]
    if len(header) < 2:
        raise ValueError(f"{p}: expected an image path column and label columns; header is {header}")
    label_cols = header[1:]
    sample = next((c for r in rows[1:] for c in r[1:] if c.strip() and c.strip().lower() != "nan"), "")
    point_mode = _looks_like_point(sample)
    if not point_mode and len(label_cols) % 2:
        raise ValueError(
            f"{p}: coordinate columns must come in (x, y) pairs after the path column; got "
            f"{len(label_cols)} columns {label_cols}"
        )
    if point_mode:
        names = tuple(label_cols)
    else:
        names = tuple(_pair_name(label_cols[2 * i], label_cols[2 * i + 1], i) for i in range(len(label_cols) // 2))
    named = not all(re.fullmatch(r"kp\d+", n) for n in names)
    records: list[KeypointRecord] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{p}, row {line}: expected {len(header)} columns ({header}); got {len(row)}")
        if not row[0].strip():
            raise ValueError(f"{p}, row {line}, column {header[0]!r}: empty image path")
        if point_mode:
            pts = []
            for col, cell in zip(label_cols, row[1:]):
                where = f"{p}, row {line}, column {col!r}"
                pts.append([math.nan, math.nan] if cell.strip() in ("", "nan", "NaN") else list(parse_point(cell, where=where)))
            kp = np.asarray(pts, dtype=np.float64)
        else:
            vals = [_parse_float(cell, f"{p}, row {line}, column {col!r}") for col, cell in zip(label_cols, row[1:])]
            kp = np.asarray(vals, dtype=np.float64).reshape(-1, 2)
        records.append(KeypointRecord(_resolve(p.parent, row[0].strip()), kp, None, {"row": line}))
    return records, names if named else None


def _read_json_records(p: Path) -> tuple[list[KeypointRecord], tuple[str, ...] | None]:
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{p}: not valid JSON: {err}") from None
    names: tuple[str, ...] | None = None
    if isinstance(data, Mapping):
        if "records" not in data:
            raise ValueError(f"{p}: a JSON object needs a 'records' list; got keys {sorted(data)}")
        names = tuple(str(n) for n in data["keypoint_names"]) if data.get("keypoint_names") else None
        data = data["records"]
    if not isinstance(data, list):
        raise ValueError(f"{p}: expected a list of records; got {type(data).__name__}")
    records: list[KeypointRecord] = []
    for i, item in enumerate(data):
        where = f"{p}, record {i}"
        if not isinstance(item, Mapping) or "path" not in item or "keypoints" not in item:
            raise ValueError(f"{where}: expected an object with 'path' and 'keypoints'; got {item!r}"[:300])
        try:
            kp = np.asarray(
                [[_json_coordinate(v) for v in pt] for pt in item["keypoints"]], dtype=np.float64
            ) if item["keypoints"] and isinstance(item["keypoints"][0], (list, tuple)) else np.asarray(
                [_json_coordinate(v) for v in item["keypoints"]], dtype=np.float64
            ).reshape(-1, 2)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}, field 'keypoints': {err} (expected [[x, y], ...])") from None
        if kp.ndim != 2 or kp.shape[1] != 2:
            raise ValueError(f"{where}, field 'keypoints': expected shape (K, 2); got {kp.shape}")
        vis: Any = item.get("visible")
        visible = None if vis is None else np.asarray(vis, dtype=bool)
        if visible is not None and visible.shape != (kp.shape[0],):
            raise ValueError(f"{where}, field 'visible': expected {kp.shape[0]} booleans; got {list(vis)}")
        first = next((j for j, r in enumerate(records) if r.num_keypoints), None)
        if first is not None and kp.shape[0] and kp.shape[0] != records[first].num_keypoints:
            raise ValueError(
                f"{where}, field 'keypoints': expected K={records[first].num_keypoints} keypoints, as in "
                f"record {first}; got {kp.shape[0]}"
            )
        meta = dict(item.get("meta") or {})
        records.append(KeypointRecord(_resolve(p.parent, str(item["path"])), kp, visible, meta))
    if names is not None and records and records[0].num_keypoints != len(names):
        raise ValueError(f"{p}: {len(names)} keypoint_names but records have {records[0].num_keypoints} keypoints")
    return records, names
