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
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from sslkeypoint._utils import dataclass_from_spec, dataclass_to_spec
from sslkeypoint.geometry import angle_between

__all__ = [
    "AngleMeasure",
    "DistanceMeasure",
    "Measure",
    "accepts_pixel_size",
    "compute_measures",
    "measure_from_dict",
    "measure_to_dict",
    "measure_unit",
    "measures_from_dict",
    "measures_to_dict",
    "pixel_size_tensor",
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


def accepts_pixel_size(measure: Any) -> bool:
    """Whether a measure is a length that each image's own pixel size turns into mm.

    Such a measure has a class attribute ``accepts_pixel_size = True`` and is called as
    ``measure(keypoints, pixel_size=...)`` (see :class:`DistanceMeasure`); other measures
    (angles, ratios) do not depend on the pixel size.
    """
    return bool(getattr(measure, "accepts_pixel_size", False))


def pixel_size_tensor(pixel_size: Any, batch_shape: tuple[int, ...], like: Tensor) -> Tensor:
    """Per-image pixel sizes as a ``(*batch_shape, 2)`` tensor ``(sx, sy)`` in mm (NaN: unknown).

    Args:
        pixel_size: A number or ``(sx, sy)`` for every image, or a tensor of shape
            ``batch_shape`` (square pixels) or ``(*batch_shape, 2)``; NaN marks an unknown size.
        batch_shape: The keypoints' batch shape (``keypoints.shape[:-2]``).
        like: Tensor whose dtype and device the result takes.

    Raises:
        ValueError: On another shape, or a size that is not positive (NaN aside).

    Examples:
        >>> import torch
        >>> pixel_size_tensor(torch.tensor([0.5, float("nan")]), (2,), torch.zeros(1)).tolist()
        [[0.5, 0.5], [nan, nan]]
    """
    s = torch.as_tensor(pixel_size, dtype=like.dtype, device=like.device)
    if s.ndim == 0 or (s.shape == (2,) and batch_shape != (2,)):
        s = s.expand(2) if s.ndim == 0 else s
        s = s.expand(*batch_shape, 2)
    elif s.shape == batch_shape:
        s = s[..., None].expand(*batch_shape, 2)
    if s.shape != (*batch_shape, 2):
        raise ValueError(
            f"pixel_size must be a number, (sx, sy), or a tensor of shape {batch_shape} or {(*batch_shape, 2)}; "
            f"got shape {tuple(torch.as_tensor(pixel_size).shape)}"
        )
    if bool((s[torch.isfinite(s)] <= 0).any()) or bool(torch.isinf(s).any()):
        raise ValueError("pixel sizes must be positive and finite (NaN marks an unknown size)")
    return s


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
        pixel_spacing: Optional size of a pixel in mm, a float or ``(sx, sy)``, for images that
            do not bring their own; the distance is then ``sqrt((sx·dx)² + (sy·dy)²)`` mm. An
            image's own pixel size (the call's ``pixel_size``) wins over it.

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
        >>> DistanceMeasure(0, 1)(torch.stack([kp, kp]), pixel_size=torch.tensor([0.1, 2.0]))
        tensor([ 0.5000, 10.0000])
    """

    first: int
    second: int
    pixel_spacing: float | tuple[float, float] | None = None

    #: A length: each image's own pixel size (``pixel_size=``) turns it into mm.
    accepts_pixel_size: ClassVar[bool] = True

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

    def __call__(self, keypoints: Tensor, pixel_size: Any = None) -> Tensor:
        """``(..., K, 2)`` keypoints to ``(...)`` distances.

        Args:
            keypoints: ``(..., K, 2)`` in pixels.
            pixel_size: Optional per-image pixel sizes in mm (see :func:`pixel_size_tensor`);
                where one is NaN, the measure's ``pixel_spacing`` is used, and where that is
                ``None`` too, the distance is NaN (no mm without a pixel size).
        """
        kp = _check_keypoints(keypoints, self.landmarks)
        d = kp[..., self.second, :] - kp[..., self.first, :]
        if pixel_size is not None:
            own = pixel_size_tensor(pixel_size, tuple(kp.shape[:-2]), d)
            if self.pixel_spacing is not None:
                default = torch.as_tensor(self.pixel_spacing, dtype=d.dtype, device=d.device).expand_as(own)
                own = torch.where(torch.isnan(own), default, own)
            d = d * own
        elif self.pixel_spacing is not None:
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


def compute_measures(measures: Mapping[str, Measure], keypoints: Tensor, pixel_size: Any = None) -> dict[str, Tensor]:
    """Every measure of ``(..., K, 2)`` keypoints: name → ``(...)`` values.

    Args:
        measures: Name → measure.
        keypoints: ``(..., K, 2)`` in pixels.
        pixel_size: Optional per-image pixel sizes in mm (see :func:`pixel_size_tensor`): lengths
            (:func:`accepts_pixel_size`) are then in mm; other measures ignore it.

    Examples:
        >>> import torch
        >>> kp = torch.tensor([[[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]]])
        >>> compute_measures({"aop": AngleMeasure(0, 1, 2), "ps": DistanceMeasure(0, 1)}, kp)
        {'aop': tensor([90.]), 'ps': tensor([100.])}
        >>> compute_measures({"ps": DistanceMeasure(0, 1)}, kp, pixel_size=torch.tensor([0.2]))
        {'ps': tensor([20.])}
    """
    return {
        name: measure(keypoints, pixel_size=pixel_size)  # type: ignore[call-arg]
        if pixel_size is not None and accepts_pixel_size(measure) else measure(keypoints)
        for name, measure in measures.items()
    }


def measure_unit(measure: Measure, pixel_size: bool = False) -> str:
    """The unit of a measure's values: ``"mm"`` for a length given per-image pixel sizes, else its own.

    Examples:
        >>> measure_unit(DistanceMeasure(0, 1)), measure_unit(DistanceMeasure(0, 1), pixel_size=True)
        ('px', 'mm')
        >>> measure_unit(AngleMeasure(0, 1, 2), pixel_size=True)
        'deg'
    """
    return "mm" if pixel_size and accepts_pixel_size(measure) else measure.unit


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
