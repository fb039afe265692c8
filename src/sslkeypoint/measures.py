"""Named measures computed from landmarks: an angle at a vertex, a distance (px or mm).

A landmark task is scored not only by where each landmark lands but by the clinical quantities
computed from them: the Angle of Progression of intrapartum ultrasound (an angle at ``PS1``), the
cephalometric angles SNA / ANB (angles at ``N``), a head's biparietal diameter (a distance). A
*measure* is such a quantity: a small object that maps ``(..., K, 2)`` keypoints to ``(...)`` values
in one unit. Configs, metrics, predictions and overlays take a mapping of named measures, e.g.
``{"aop": AngleMeasure(vertex=0, first=1, second=2)}``; the metric keys follow the names
(``aop_mae_deg``, ``aop_count``, ...).

Any object with the attributes and the call of :class:`Measure` works (duck typing, checked with
``isinstance(obj, Measure)``). Measures are stored in checkpoints and run files as plain dicts
(:func:`measure_to_dict`, :func:`measure_from_dict`): the import path of the class and its
constructor arguments, so a measure class of your own round-trips too.

Degenerate inputs (coincident points for an angle) and missing landmarks (NaN) give NaN, never an
exception inside a batch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from sslkeypoint._utils import dataclass_from_spec, dataclass_to_spec
from sslkeypoint.geometry import angle_between

__all__ = [
    "AngleMeasure",
    "DistanceMeasure",
    "Measure",
    "compute_measures",
    "measure_from_dict",
    "measure_to_dict",
    "measures_from_dict",
    "measures_to_dict",
    "validate_measures",
]


@runtime_checkable
class Measure(Protocol):
    """What a measure is: a function of the landmarks with a unit and the landmarks it reads.

    A measure has three read-only properties — :attr:`unit`, :attr:`landmarks`,
    :attr:`segments` — and is called on ``(..., K, 2)`` keypoints.
    """

    @property
    def unit(self) -> str:
        """Unit of the values, used in metric keys (``"deg"``, ``"px"``, ``"mm"``, ...)."""
        ...

    @property
    def landmarks(self) -> tuple[int, ...]:
        """Indices of the landmarks the value depends on; a sample where one of them is missing
        (invisible) has no value."""
        ...

    @property
    def segments(self) -> tuple[tuple[int, int], ...]:
        """Index pairs ``(i, j)`` of the lines that draw the measure on an image (the arms of an
        angle, the span of a distance)."""
        ...

    def __call__(self, keypoints: Tensor) -> Tensor:
        """``(..., K, 2)`` keypoints in pixels to ``(...)`` values in :attr:`unit`."""
        ...


def _check_keypoints(keypoints: Tensor, landmarks: tuple[int, ...]) -> Tensor:
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (..., K, 2); got {tuple(keypoints.shape)}")
    if keypoints.is_complex():
        raise ValueError(f"keypoints must be real (x, y) coordinates; got a complex tensor ({keypoints.dtype})")
    k = keypoints.shape[-2]
    if any(not -k <= i < k for i in landmarks):
        raise ValueError(f"landmark indices {landmarks} out of range for K={k} keypoints")
    return keypoints if keypoints.is_floating_point() else keypoints.float()


def _index(name: str, value: Any) -> int:
    """A landmark index as an int; a fractional, boolean or non-numeric index is refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise ValueError(f"{name} must be a whole landmark index; got {value!r}")
    return int(float(value))


@dataclass(frozen=True)
class AngleMeasure:
    """The unsigned angle at ``vertex`` between the directions to ``first`` and ``second``.

    ``acos((p_first − p_vertex)·(p_second − p_vertex) / (|…|·|…|))`` in degrees, in ``[0, 180]``
    (computed with ``atan2`` for accuracy near 0° and 180°). The Angle of Progression of the IUGC
    task is ``AngleMeasure(vertex=PS1, first=PS2, second=FH1)``.

    Args:
        vertex: Index of the vertex landmark.
        first: Index of the landmark at the end of the first arm.
        second: Index of the landmark at the end of the second arm.

    Raises:
        ValueError: If the indices are not three different whole numbers (``0.5`` is refused,
            never truncated). Calling it raises ValueError on keypoints that are not
            ``(..., K, 2)``, are complex, or have too few landmarks for the indices.

    Examples:
        >>> import torch
        >>> aop = AngleMeasure(vertex=0, first=1, second=2)
        >>> aop(torch.tensor([[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]]))
        tensor(90.)
        >>> aop.unit, aop.landmarks, aop.segments
        ('deg', (0, 1, 2), ((0, 1), (0, 2)))
    """

    vertex: int
    first: int
    second: int

    def __post_init__(self) -> None:
        idx = tuple(_index(name, getattr(self, name)) for name in ("vertex", "first", "second"))
        if len(set(idx)) != 3:
            raise ValueError(f"vertex, first and second must be three different landmarks; got {idx}")
        for name, value in zip(("vertex", "first", "second"), idx):
            object.__setattr__(self, name, value)

    @property
    def unit(self) -> str:
        """Degrees."""
        return "deg"

    @property
    def landmarks(self) -> tuple[int, ...]:
        """``(vertex, first, second)``."""
        return (self.vertex, self.first, self.second)

    @property
    def segments(self) -> tuple[tuple[int, int], ...]:
        """The two arms, from the vertex."""
        return ((self.vertex, self.first), (self.vertex, self.second))

    def __call__(self, keypoints: Tensor) -> Tensor:
        """``(..., K, 2)`` keypoints to ``(...)`` angles in degrees (NaN when degenerate)."""
        kp = _check_keypoints(keypoints, self.landmarks)
        v = kp[..., self.vertex, :]
        return angle_between(kp[..., self.first, :] - v, kp[..., self.second, :] - v)


@dataclass(frozen=True)
class DistanceMeasure:
    """The distance between two landmarks, in pixels or, with a pixel spacing, in millimetres.

    Args:
        first: Index of one landmark.
        second: Index of the other.
        pixel_spacing: Optional size of a pixel in mm, a float or ``(sx, sy)``; the distance is
            then ``sqrt((sx·dx)² + (sy·dy)²)`` mm.

    Raises:
        ValueError: If the indices are not two different whole numbers or the pixel spacing is
            not positive. Calling it raises ValueError on keypoints that are not ``(..., K, 2)``,
            are complex, or have too few landmarks for the indices.

    Examples:
        >>> import torch
        >>> kp = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
        >>> DistanceMeasure(0, 1)(kp), DistanceMeasure(0, 1).unit
        (tensor(5.), 'px')
        >>> DistanceMeasure(0, 1, pixel_spacing=0.5)(kp), DistanceMeasure(0, 1, pixel_spacing=0.5).unit
        (tensor(2.5000), 'mm')
    """

    first: int
    second: int
    pixel_spacing: float | tuple[float, float] | None = None

    def __post_init__(self) -> None:
        first, second = _index("first", self.first), _index("second", self.second)
        if first == second:
            raise ValueError(f"first and second must be two different landmarks; got {self.first}")
        object.__setattr__(self, "first", first)
        object.__setattr__(self, "second", second)
        s = self.pixel_spacing
        if s is not None:
            values = (float(s), float(s)) if isinstance(s, int | float) else tuple(float(v) for v in s)
            if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"pixel_spacing must be a positive float or (sx, sy); got {s!r}")
            object.__setattr__(self, "pixel_spacing", values[0] if isinstance(s, int | float) else values)

    @property
    def unit(self) -> str:
        """``"mm"`` with a pixel spacing, else ``"px"``."""
        return "px" if self.pixel_spacing is None else "mm"

    @property
    def landmarks(self) -> tuple[int, ...]:
        """``(first, second)``."""
        return (self.first, self.second)

    @property
    def segments(self) -> tuple[tuple[int, int], ...]:
        """The span between the two landmarks."""
        return ((self.first, self.second),)

    def __call__(self, keypoints: Tensor) -> Tensor:
        """``(..., K, 2)`` keypoints to ``(...)`` distances."""
        kp = _check_keypoints(keypoints, self.landmarks)
        d = kp[..., self.second, :] - kp[..., self.first, :]
        if self.pixel_spacing is not None:
            d = d * torch.as_tensor(self.pixel_spacing, dtype=d.dtype, device=d.device)
        return d.square().sum(-1).sqrt()


def validate_measures(measures: Mapping[str, Any] | None, num_keypoints: int | None = None) -> dict[str, Measure]:
    """Check a mapping of named measures and return it as a plain dict.

    Args:
        measures: Name → measure (``None`` for none).
        num_keypoints: When given, every landmark index must be valid for ``K`` keypoints.

    Returns:
        The measures, in the given order.

    Raises:
        ValueError: On a name that is not a non-empty identifier-like string, an object that is
            not a :class:`Measure`, or an index out of range.

    Examples:
        >>> list(validate_measures({"aop": AngleMeasure(0, 1, 2)}, num_keypoints=3))
        ['aop']
        >>> validate_measures({"aop": AngleMeasure(0, 1, 3)}, num_keypoints=3)
        Traceback (most recent call last):
        ...
        ValueError: measure 'aop' uses landmarks (0, 1, 3); valid indices for 3 keypoints are 0..2
    """
    out: dict[str, Measure] = {}
    for name, measure in (measures or {}).items():
        if not isinstance(name, str) or not name or not name.replace("_", "a").isalnum():
            raise ValueError(f"measure names must be non-empty words (letters, digits, _); got {name!r}")
        if not isinstance(measure, Measure):
            raise ValueError(
                f"measure {name!r} is a {type(measure).__name__}, which lacks the Measure interface "
                "(unit, landmarks, segments and a call on (..., K, 2) keypoints)"
            )
        if num_keypoints is not None and any(not 0 <= int(i) < num_keypoints for i in measure.landmarks):
            raise ValueError(
                f"measure {name!r} uses landmarks {tuple(measure.landmarks)}; valid indices for "
                f"{num_keypoints} keypoints are 0..{num_keypoints - 1}"
            )
        out[name] = measure
    return out


def compute_measures(measures: Mapping[str, Measure], keypoints: Tensor) -> dict[str, Tensor]:
    """Every measure of ``(..., K, 2)`` keypoints: name → ``(...)`` values.

    Examples:
        >>> import torch
        >>> kp = torch.tensor([[[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]]])
        >>> compute_measures({"aop": AngleMeasure(0, 1, 2), "ps": DistanceMeasure(0, 1)}, kp)
        {'aop': tensor([90.]), 'ps': tensor([100.])}
    """
    return {name: measure(keypoints) for name, measure in measures.items()}


# ------------------------------------------------------------------------------------------
# Plain-dict form (checkpoints, JSON run files)
# ------------------------------------------------------------------------------------------


def measure_to_dict(measure: Measure) -> dict[str, Any]:
    """A measure as ``{"class": "module.Qualname", "kwargs": {...}}`` (JSON- and torch.load-safe).

    The measure must be a dataclass (its fields are its constructor arguments).

    Examples:
        >>> measure_to_dict(AngleMeasure(0, 1, 2))
        {'class': 'sslkeypoint.measures.AngleMeasure', 'kwargs': {'vertex': 0, 'first': 1, 'second': 2}}
    """
    return dataclass_to_spec(measure)


def measure_from_dict(data: Mapping[str, Any]) -> Measure:
    """Rebuild a measure written by :func:`measure_to_dict` (its class is imported by path).

    Raises:
        ValueError: If the dict is malformed, the class cannot be imported or is not a measure.

    Examples:
        >>> measure_from_dict(measure_to_dict(DistanceMeasure(0, 1, pixel_spacing=(0.2, 0.3))))
        DistanceMeasure(first=0, second=1, pixel_spacing=(0.2, 0.3))
    """
    measure = dataclass_from_spec(data, "measure")
    if not isinstance(measure, Measure):
        raise ValueError(f"{data['class']} does not build a Measure (unit, landmarks, segments, call)")
    return measure


def measures_to_dict(measures: Mapping[str, Measure]) -> dict[str, dict[str, Any]]:
    """Name → :func:`measure_to_dict` form, in order."""
    return {name: measure_to_dict(m) for name, m in measures.items()}


def measures_from_dict(data: Mapping[str, Any] | None) -> dict[str, Measure]:
    """Inverse of :func:`measures_to_dict`; measure objects are passed through unchanged.

    Examples:
        >>> m = {"aop": AngleMeasure(0, 1, 2)}
        >>> measures_from_dict(measures_to_dict(m)) == m
        True
    """
    return {
        name: value if isinstance(value, Measure) else measure_from_dict(value)
        for name, value in (data or {}).items()
    }
