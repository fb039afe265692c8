"""Scene geometry of a synthetic transperineal frame: the fan, the drawn ellipses, exact landmarks.

Everything here is plain numpy in ``(x, y)`` pixels of the 512×512 image (y pointing down, integer
values at pixel centres). Angles of directions are image angles ``atan2(dy, dx)`` in radians
unless a name ends in ``_deg``. Ellipse geometry (implicit function, normals, support points,
tangents) is :class:`sslkeypoint.geometry.Ellipse`'s.

The fetal-head tangent point is built, not searched: given the tangent direction ``u`` from
``PS1`` and the distance ``t`` along it, the head ellipse is placed so that its support point in
the direction of the outward normal ``n`` is exactly ``FH1 = PS1 + t·u``
(:meth:`~sslkeypoint.geometry.Ellipse.from_support_point`): ``FH1`` lies on the ellipse and the
line ``PS1→FH1`` is tangent to it, in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sslkeypoint.geometry import Ellipse

__all__ = [
    "IMAGE_SIZE",
    "IUGC_RANGES",
    "PIVOT",
    "CoordinateRanges",
    "DrawnEllipse",
    "Fan",
    "place_head",
    "rigid_transform",
]

#: Side of every synthetic frame (px); the IUGC 2025 images are 512×512.
IMAGE_SIZE = 512
#: Centre of the image ``(x, y)`` (px): the pivot of the probe's rotation in videos.
PIVOT = np.array([IMAGE_SIZE / 2.0, IMAGE_SIZE / 2.0])


def rigid_transform(
    pts: np.ndarray, rotation: float, pivot: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """Apply ``x ↦ R(rotation)·(x − pivot) + pivot + shift`` to points ``(..., 2)`` (px, radians).

    Examples:
        >>> rigid_transform(np.array([2.0, 0.0]), math.pi / 2, np.zeros(2), np.array([1.0, 0.0])).round(9).tolist()
        [1.0, 2.0]
    """
    c, s = math.cos(rotation), math.sin(rotation)
    d = np.asarray(pts, dtype=np.float64) - pivot
    x = c * d[..., 0] - s * d[..., 1]
    y = s * d[..., 0] + c * d[..., 1]
    return np.stack([x, y], axis=-1) + pivot + shift


@dataclass(frozen=True)
class DrawnEllipse:
    """An ellipse of a scene with the parameters it was drawn with.

    The geometry is :attr:`ellipse` (:class:`sslkeypoint.geometry.Ellipse`, which sorts the
    semi-axes major first and wraps the angle into ``[0, π)``). This record keeps the drawn
    parameters as they are: ``angle`` is never wrapped, so the rotation of a video accumulates
    continuously, and the renderer and the truth file see exactly the numbers that were drawn
    (the same seed gives byte-identical files).

    Attributes:
        cx: Centre x (px).
        cy: Centre y (px).
        a: Semi-axis along ``angle`` (px).
        b: Semi-axis across ``angle`` (px).
        angle: Direction of the ``a`` axis, image angle in radians (any value).

    Examples:
        >>> e = DrawnEllipse(10.0, 20.0, 5.0, 2.0, -math.pi / 2)
        >>> round(e.ellipse.angle, 6), float(e.ellipse.implicit([10.0, 25.0]))
        (1.570796, 1.0)
    """

    cx: float
    cy: float
    a: float
    b: float
    angle: float

    @property
    def ellipse(self) -> Ellipse:
        """The same ellipse as a :class:`sslkeypoint.geometry.Ellipse`."""
        return Ellipse((self.cx, self.cy), (self.a, self.b), self.angle)

    @property
    def centre(self) -> np.ndarray:
        """Centre ``(2,)`` in px."""
        return np.array([self.cx, self.cy], dtype=np.float64)

    def transformed(self, rotation: float, pivot: np.ndarray, shift: np.ndarray) -> DrawnEllipse:
        """The ellipse after the rigid motion ``x ↦ R(rotation)·(x − pivot) + pivot + shift``.

        Examples:
            >>> e = DrawnEllipse(2.0, 0.0, 3.0, 1.0, 0.0).transformed(math.pi / 2, np.zeros(2), np.zeros(2))
            >>> round(e.cx, 9), round(e.cy, 9), e.angle == math.pi / 2
            (0.0, 2.0, True)
        """
        c = rigid_transform(self.centre, rotation, pivot, shift)
        return DrawnEllipse(float(c[0]), float(c[1]), self.a, self.b, self.angle + rotation)

    def as_dict(self) -> dict[str, float]:
        """JSON-friendly form (the angle in degrees), as the truth file records it."""
        return {
            "cx": self.cx,
            "cy": self.cy,
            "a": self.a,
            "b": self.b,
            "angle_deg": math.degrees(self.angle),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DrawnEllipse:
        """Inverse of :meth:`as_dict`.

        Examples:
            >>> e = DrawnEllipse(1.0, 2.0, 3.0, 1.5, -0.5)
            >>> DrawnEllipse.from_dict(e.as_dict()).ellipse == e.ellipse
            True
        """
        return cls(d["cx"], d["cy"], d["a"], d["b"], math.radians(d["angle_deg"]))


@dataclass(frozen=True)
class Fan:
    """Field of view of a curvilinear probe: an annular sector opening downward.

    Attributes:
        apex_x: x of the virtual apex (px), usually the image centre.
        apex_y: y of the apex (px); negative, i.e. above the image top.
        r_min: Radius of the top arc (px from the apex).
        r_max: Radius of the bottom arc.
        half_angle_deg: Half opening angle, measured from straight down.

    Examples:
        >>> fan = Fan()
        >>> fan.contains(np.array([[256.0, 200.0], [2.0, 2.0]])).tolist()
        [True, False]
    """

    apex_x: float = 256.0
    apex_y: float = -150.0
    r_min: float = 160.0
    r_max: float = 640.0
    half_angle_deg: float = 52.0

    def polar(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Radius (px) and angle from straight down (radians, positive to the right)."""
        p = np.asarray(pts, dtype=np.float64)
        dx, dy = p[..., 0] - self.apex_x, p[..., 1] - self.apex_y
        return np.hypot(dx, dy), np.arctan2(dx, dy)

    def margin(self, pts: np.ndarray) -> np.ndarray:
        """Distance (px) from points ``(..., 2)`` to the fan border; negative outside."""
        r, th = self.polar(pts)
        half = math.radians(self.half_angle_deg)
        side = r * np.sin(half - np.abs(th))
        return np.minimum(np.minimum(r - self.r_min, self.r_max - r), side)

    def contains(self, pts: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Whether points ``(..., 2)`` lie inside the fan by at least ``margin`` px."""
        return self.margin(pts) >= margin


@dataclass(frozen=True)
class CoordinateRanges:
    """Boxes ``(x_min, x_max, y_min, y_max)`` (px) that each landmark must fall in.

    Examples:
        >>> IUGC_RANGES.check(np.array([300.0, 80.0]), np.array([200.0, 90.0]), np.array([300.0, 200.0]))
        True
    """

    ps1: tuple[float, float, float, float]
    ps2: tuple[float, float, float, float]
    fh1: tuple[float, float, float, float]

    def check(self, ps1: np.ndarray, ps2: np.ndarray, fh1: np.ndarray) -> bool:
        """Whether all three landmarks ``(2,)`` lie in their boxes."""
        for p, (x0, x1, y0, y1) in ((ps1, self.ps1), (ps2, self.ps2), (fh1, self.fh1)):
            if not (x0 <= p[0] <= x1 and y0 <= p[1] <= y1):
                return False
        return True


#: Landmark coordinate ranges of the labelled IUGC 2025 images (512×512 px).
IUGC_RANGES = CoordinateRanges(
    ps1=(192.0, 368.0, 30.0, 115.0),
    ps2=(59.0, 259.0, 44.0, 158.0),
    fh1=(204.0, 425.0, 80.0, 332.0),
)


def place_head(
    ps1: np.ndarray,
    theta_s: float,
    aop_deg: float,
    distance: float,
    a: float,
    b: float,
    phi: float,
) -> tuple[np.ndarray, Ellipse]:
    """Place a head ellipse whose far-side tangent from ``PS1`` makes a given AoP.

    The tangent direction is ``θ_f = θ_s − AoP``, ``FH1 = PS1 + distance·u(θ_f)``, and the head
    is the ellipse of semi-axes ``a`` (along ``phi``) and ``b`` whose support point in the
    direction ``n`` normal to the tangent, pointing away from ``PS2``'s side, is ``FH1``.

    Args:
        ps1: Vertex ``(2,)`` (px).
        theta_s: Image angle of ``PS1→PS2`` (radians).
        aop_deg: Wanted Angle of Progression (degrees).
        distance: ``|FH1 − PS1|`` (px).
        a: Head semi-axis along ``phi`` (px).
        b: Head semi-axis across ``phi`` (px).
        phi: Direction of the ``a`` axis (radians).

    Returns:
        ``(fh1 (2,), head)``: the tangent point and the ellipse, which lies on the ``PS2`` side
        of the tangent line and touches it only at ``fh1``.

    Examples:
        >>> fh1, head = place_head(np.array([0.0, 0.0]), math.pi, 90.0, 10.0, 4.0, 2.0, 0.0)
        >>> fh1.round(6).tolist(), [round(v, 6) for v in head.center]
        ([0.0, 10.0], [-4.0, 10.0])
    """
    theta_f = theta_s - math.radians(aop_deg)
    u = np.array([math.cos(theta_f), math.sin(theta_f)])
    fh1 = np.asarray(ps1, dtype=np.float64) + distance * u
    n = np.array([math.sin(theta_f), -math.cos(theta_f)])  # outward normal, away from PS2's side
    return fh1, Ellipse.from_support_point(fh1, n, (a, b), phi)
