"""Scene geometry of a synthetic transperineal frame: ellipses, the fan and exact landmarks.

Everything here is plain numpy in ``(x, y)`` pixels of the 512×512 image (y pointing down, integer
values at pixel centres). Angles of directions are image angles ``atan2(dy, dx)`` in radians
unless a name ends in ``_deg``.

The fetal-head tangent point is built, not searched: given the tangent direction ``u`` from
``PS1`` and the distance ``t`` along it, the head ellipse is placed so that its support point in
the direction of the outward normal ``n`` is exactly ``FH1 = PS1 + t·u``. For an ellipse with
centre ``c`` and shape matrix ``M = R·diag(a², b²)·Rᵀ`` the support point in direction ``n`` is
``c + M·n / sqrt(nᵀ·M·n)``, hence ``c = FH1 − M·n / sqrt(nᵀ·M·n)``: ``FH1`` lies on the ellipse and
the line ``PS1→FH1`` is tangent to it, in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "IUGC_RANGES",
    "CoordinateRanges",
    "Ellipse",
    "Fan",
    "far_tangent_point",
    "place_head",
]


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in image pixels.

    Attributes:
        cx: Centre x (px).
        cy: Centre y (px).
        a: Semi-axis along ``angle`` (px).
        b: Semi-axis across ``angle`` (px).
        angle: Direction of the ``a`` axis, image angle in radians.

    Examples:
        >>> e = Ellipse(10.0, 20.0, 5.0, 2.0, 0.0)
        >>> float(e.implicit(np.array([15.0, 20.0])))
        1.0
    """

    cx: float
    cy: float
    a: float
    b: float
    angle: float

    @property
    def centre(self) -> np.ndarray:
        """Centre ``(2,)`` in px."""
        return np.array([self.cx, self.cy], dtype=np.float64)

    def rotation(self) -> np.ndarray:
        """``(2, 2)`` rotation whose columns are the unit ``a`` and ``b`` axes."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.array([[c, -s], [s, c]], dtype=np.float64)

    def shape_matrix(self) -> np.ndarray:
        """``M = R·diag(a², b²)·Rᵀ`` (px²); the ellipse is ``{c + M^½·v : |v| = 1}``."""
        r = self.rotation()
        return r @ np.diag([self.a**2, self.b**2]) @ r.T

    def local(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates along and across the ``a`` axis of points ``(..., 2)`` (px)."""
        d = np.asarray(pts, dtype=np.float64) - self.centre
        c, s = math.cos(self.angle), math.sin(self.angle)
        return d[..., 0] * c + d[..., 1] * s, -d[..., 0] * s + d[..., 1] * c

    def implicit(self, pts: np.ndarray) -> np.ndarray:
        """``(p/a)² + (q/b)²`` of points ``(..., 2)``: 1 on the ellipse, < 1 inside."""
        p, q = self.local(pts)
        return (p / self.a) ** 2 + (q / self.b) ** 2

    def normal(self, pts: np.ndarray) -> np.ndarray:
        """Unit outward normals ``(..., 2)`` of the level sets of :meth:`implicit` at ``pts``."""
        p, q = self.local(pts)
        gp, gq = p / self.a**2, q / self.b**2
        c, s = math.cos(self.angle), math.sin(self.angle)
        g = np.stack([gp * c - gq * s, gp * s + gq * c], axis=-1)
        return g / np.linalg.norm(g, axis=-1, keepdims=True)

    def points(self, n: int = 720) -> np.ndarray:
        """``(n, 2)`` points evenly spaced in the parametric angle."""
        s = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
        v = np.stack([self.a * np.cos(s), self.b * np.sin(s)], axis=-1)
        return self.centre + v @ self.rotation().T

    def transformed(self, rotation: float, pivot: np.ndarray, shift: np.ndarray) -> Ellipse:
        """The ellipse after the rigid motion ``x ↦ R(rotation)·(x − pivot) + pivot + shift``."""
        c = rigid_transform(self.centre, rotation, pivot, shift)
        return Ellipse(float(c[0]), float(c[1]), self.a, self.b, self.angle + rotation)

    def as_dict(self) -> dict[str, float]:
        """JSON-friendly form (the angle in degrees)."""
        return {
            "cx": self.cx,
            "cy": self.cy,
            "a": self.a,
            "b": self.b,
            "angle_deg": math.degrees(self.angle),
        }

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> Ellipse:
        """Inverse of :meth:`as_dict`."""
        return cls(d["cx"], d["cy"], d["a"], d["b"], math.radians(d["angle_deg"]))


def rigid_transform(
    pts: np.ndarray, rotation: float, pivot: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """Apply ``x ↦ R(rotation)·(x − pivot) + pivot + shift`` to points ``(..., 2)`` (px, radians)."""
    c, s = math.cos(rotation), math.sin(rotation)
    d = np.asarray(pts, dtype=np.float64) - pivot
    x = c * d[..., 0] - s * d[..., 1]
    y = s * d[..., 0] + c * d[..., 1]
    return np.stack([x, y], axis=-1) + pivot + shift


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
    """Boxes ``(x_min, x_max, y_min, y_max)`` (px) that each landmark must fall in."""

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
        >>> fh1.round(6).tolist(), round(head.cx, 6), round(head.cy, 6)
        ([0.0, 10.0], -4.0, 10.0)
    """
    theta_f = theta_s - math.radians(aop_deg)
    u = np.array([math.cos(theta_f), math.sin(theta_f)])
    fh1 = np.asarray(ps1, dtype=np.float64) + distance * u
    n = np.array([math.sin(theta_f), -math.cos(theta_f)])  # outward normal, away from PS2's side
    m = Ellipse(0.0, 0.0, a, b, phi).shape_matrix()
    c = fh1 - m @ n / math.sqrt(float(n @ m @ n))
    return fh1, Ellipse(float(c[0]), float(c[1]), a, b, phi)


def far_tangent_point(ps1: np.ndarray, ps2: np.ndarray, head: Ellipse) -> np.ndarray:
    """The head point ``q`` maximising the angle ∠PS2–PS1–q, in closed form.

    The two tangent points from an outside point ``P`` to the ellipse ``{x : (x−c)ᵀM⁻¹(x−c) = 1}``
    are ``c + M·n / sqrt(nᵀMn)`` for the unit normals ``n`` with ``nᵀ(x − P) = 0``, i.e.
    ``n·(c − P) = −sqrt(nᵀMn)``; this solves that quadratic and keeps the tangent point making
    the larger angle with ``PS1→PS2``.

    Args:
        ps1: Vertex ``(2,)`` (px), outside the ellipse.
        ps2: Other end of the symphysis ``(2,)`` (px).
        head: The head ellipse.

    Returns:
        ``(2,)`` tangent point (px).

    Raises:
        ValueError: If ``ps1`` is not outside the ellipse.

    Examples:
        >>> head = Ellipse(0.0, 10.0, 4.0, 4.0, 0.0)
        >>> far_tangent_point(np.array([0.0, 0.0]), np.array([-5.0, 0.0]), head).round(4).tolist()
        [3.6661, 8.4]
    """
    p = np.asarray(ps1, dtype=np.float64)
    if float(head.implicit(p)) <= 1.0:
        raise ValueError(f"PS1 {p.tolist()} must lie outside the head ellipse")
    m = head.shape_matrix()
    d = head.centre - p
    # n = (cos w, sin w); (n·d)² = nᵀMn with n·d < 0, a quadratic form in (cos w, sin w):
    # nᵀ(d dᵀ − M)n = 0.
    q = np.outer(d, d) - m
    # Solve q00 c² + 2 q01 c s + q11 s² = 0 for the direction (c, s).
    candidates = []
    if abs(q[1, 1]) > 1e-12:
        disc = max(q[0, 1] ** 2 - q[0, 0] * q[1, 1], 0.0)
        for sign in (1.0, -1.0):
            s_over_c = (-q[0, 1] + sign * math.sqrt(disc)) / q[1, 1]
            candidates.append(np.array([1.0, s_over_c]))
    else:
        candidates.append(np.array([0.0, 1.0]))
        candidates.append(np.array([2.0 * q[0, 1], -q[0, 0]]))
    v = np.asarray(ps2, dtype=np.float64) - p
    best, best_angle = None, -1.0
    for n in candidates:
        n = n / np.linalg.norm(n)
        if n @ d > 0:
            n = -n
        t = head.centre + m @ n / math.sqrt(float(n @ m @ n))
        w = t - p
        ang = math.atan2(abs(v[0] * w[1] - v[1] * w[0]), float(v @ w))
        if ang > best_angle:
            best, best_angle = t, ang
    assert best is not None
    return best
