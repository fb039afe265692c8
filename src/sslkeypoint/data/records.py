"""Labelled records: what a labelled image is, and the text form of a point.

A :class:`KeypointRecord` names an image file, its ``(K, 2)`` keypoints in the original image's
pixels, and optionally its group (video, subject) and its pixel size in mm.
:func:`parse_point` / :func:`format_point` are the text form of one point. Records files of every
format are read by :func:`sslkeypoint.data.read_records` (:mod:`sslkeypoint.data.formats`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PARTIAL_LABELS",
    "KeypointRecord",
    "PixelSize",
    "check_pixel_size",
    "format_point",
    "is_decimal_comma",
    "parse_point",
    "parse_visible",
]

#: ``KeypointRecord.meta`` key: when true, the record's missing (NaN) keypoints are unknown, not
#: absent — a pseudo-label whose landmark was dropped. Fine-tuning adds no loss for them, where a
#: missing keypoint of an ordinary record is taught as "no landmark here" (an all-zero heatmap).
PARTIAL_LABELS = "partial_labels"

#: A pixel size in mm: one number (square pixels) or ``(sx, sy)``.
PixelSize = float | tuple[float, float]


def check_pixel_size(value: Any, where: str = "pixel size") -> PixelSize | None:
    """``value`` as a :data:`PixelSize` (``None`` stays ``None``), or a ValueError naming ``where``.

    Examples:
        >>> check_pixel_size(0.25), check_pixel_size([0.1, 0.2]), check_pixel_size(None)
        (0.25, (0.1, 0.2), None)
        >>> check_pixel_size(-1, "row 3, column 'pixel_size_mm'")
        Traceback (most recent call last):
        ...
        ValueError: row 3, column 'pixel_size_mm': expected a positive, finite size in mm per pixel (a number or (sx, sy)); got -1
    """
    if value is None:
        return None
    values = [value] if isinstance(value, int | float) and not isinstance(value, bool) else value
    try:
        numbers = [float(v) for v in values if not isinstance(v, bool)]
    except (TypeError, ValueError):
        numbers = []
    if not numbers or len(numbers) != len(list(values)) or len(numbers) > 2 or not all(
        math.isfinite(v) and v > 0 for v in numbers
    ):
        raise ValueError(
            f"{where}: expected a positive, finite size in mm per pixel (a number or (sx, sy)); got {value!r}"
        )
    return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])


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
        group: Optional group of near-duplicate images (one video, one subject): validation
            splits keep a group on one side.
        pixel_size: Optional size of a pixel of this image in mm (a number, or ``(sx, sy)``):
            errors and distance measures of this image are given in mm with it.

    Raises:
        ValueError: If a coordinate is infinite (NaN, not infinity, marks a missing keypoint) or
            complex, naming the record and the keypoint, or if the pixel size is not positive. Other malformed keypoints (text, a wrong
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
    group: str | None = None
    pixel_size: PixelSize | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "pixel_size", check_pixel_size(self.pixel_size, f"KeypointRecord {str(self.path)!r}: pixel_size")
        )
        if self.group is not None:
            object.__setattr__(self, "group", str(self.group))
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




_BRACKETS = "()[]{}<>\"' "
_SEPARATORS = re.compile(r"[,;\s]+")
#: A cell that is two digit groups joined by one comma, nothing else (no bracket, space or decimal
#: point), optionally with dots as thousands separators: ``12,5``, ``-3,75``, ``1.234,5``.
_COMMA_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+")


def is_decimal_comma(text: str) -> bool:
    """Whether a cell reads as one number written with a decimal comma (``12,5``, ``1.234,5``).

    Such a cell is never read as numbers: it may be ``12.5`` with a decimal comma (a European
    spreadsheet) or the point ``(12, 5)`` written without brackets or a space, and guessing wrong
    gives silently wrong coordinates. A point needs brackets or a space: ``(12, 5)`` or ``12, 5``.

    Examples:
        >>> is_decimal_comma("12,5"), is_decimal_comma(" -1.234,5 "), is_decimal_comma("(12,5)")
        (True, True, False)
        >>> is_decimal_comma("12, 5"), is_decimal_comma("12.5,7.25"), is_decimal_comma("12.5")
        (False, False, False)
    """
    return _COMMA_NUMBER.fullmatch(str(text).strip()) is not None


def _comma_message(text: str, point: bool) -> str:
    """Why a decimal-comma cell is refused, with the reading the user meant."""
    cell = str(text).strip()
    dotted = cell.replace(".", "").replace(",", ".")
    if point:
        head, _, tail = cell.partition(",")
        return (
            f"{cell!r} may be the number {dotted} written with a decimal comma or the point ({head}, {tail}) "
            f"written without brackets; decimal commas are not read (write numbers with a dot, {dotted}, and "
            f"points as '({head}, {tail})')"
        )
    return f"{cell!r} is a number with a decimal comma; decimal commas are not read (write {dotted}, with a dot)"


def parse_point(text: str, *, where: str = "") -> tuple[float, float]:
    """Parse a point written as text, such as ``"(301.5, 72.25)"``.

    Brackets (``()``, ``[]``, ``{}``), quotes, spaces and the separator (comma, semicolon or
    whitespace) are handled leniently; the content must be exactly two finite numbers, ``x`` first.
    A cell such as ``12,5`` — two digit groups joined by a comma, without brackets, space or decimal
    point — is refused (:func:`is_decimal_comma`): it may be the number 12.5 with a decimal comma.

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
        >>> parse_point("12,5")
        Traceback (most recent call last):
        ...
        ValueError: '12,5' may be the number 12.5 written with a decimal comma or the point (12, 5) written without brackets; decimal commas are not read (write numbers with a dot, 12.5, and points as '(12, 5)')
    """
    prefix = f"{where}: " if where else ""
    if is_decimal_comma(text):
        raise ValueError(prefix + _comma_message(text, point=True))
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
    if is_decimal_comma(t):
        raise ValueError(f"{where}: {_comma_message(t, point=False)}")
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
    if isinstance(value, str) and is_decimal_comma(value):
        raise ValueError(_comma_message(value, point=False))
    number = float(value)
    if math.isinf(number):
        raise ValueError(f"expected finite numbers (null or NaN marks a missing keypoint), got {value!r}")
    return number


_VISIBLE_WORDS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def parse_visible(values: Any, k: int, where: str = "visible") -> np.ndarray:
    """``K`` visibility values as a ``(K,)`` bool array, or a ValueError naming ``where``.

    Each value must be a boolean, the number 0 or 1, or one of the strings ``true``/``false``,
    ``yes``/``no``, ``1``/``0`` (any case, spaces around ignored). Anything else — another number,
    another word, ``None``, a list — is refused: ``bool("no")`` is ``True``, so reading such values
    leniently would mark a landmark visible that the file says is not.

    Args:
        values: A sequence (or 1-D array) of ``k`` values.
        k: The number of keypoints.
        where: Location prefix for the error message (file, record, field).

    Returns:
        ``(K,)`` bool array.

    Raises:
        ValueError: Naming ``where``, the keypoint and the value found.

    Examples:
        >>> parse_visible(["Yes", "no", 0, True], 4).tolist()
        [True, False, False, True]
        >>> parse_visible(["maybe"], 1, "labels.json, record 0, field 'visible'")
        Traceback (most recent call last):
        ...
        ValueError: labels.json, record 0, field 'visible': keypoint 0 is 'maybe'; expected true/false, 1/0 or yes/no
    """
    expected = "expected true/false, 1/0 or yes/no"
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if isinstance(values, str | bytes) or not isinstance(values, list | tuple):
        raise ValueError(f"{where}: expected a list of {k} visibility values ({expected}); got {values!r}"[:300])
    if len(values) != k:
        raise ValueError(f"{where}: expected {k} visibility values, one per keypoint; got {len(values)}: {list(values)!r}"[:300])
    out = np.zeros(k, dtype=bool)
    for i, value in enumerate(values):
        if isinstance(value, bool | np.bool_):
            out[i] = bool(value)
        elif isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
            out[i] = bool(value)
        elif isinstance(value, str) and value.strip().lower() in _VISIBLE_WORDS:
            out[i] = _VISIBLE_WORDS[value.strip().lower()]
        else:
            raise ValueError(f"{where}: keypoint {i} is {value!r}; {expected}"[:300])
    return out


def _resolve(base: Path, value: str) -> Path:
    q = Path(value)
    return q if q.is_absolute() else base / q


