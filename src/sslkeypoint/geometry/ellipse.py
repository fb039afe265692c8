"""Ellipses: the :class:`Ellipse` object, its direct least-squares fit and its major axis.

An :class:`Ellipse` is given by its centre, semi-axes and angle in pixels; it is built directly,
from conic coefficients, from an OpenCV rotated box or from a support point, and evaluates its
implicit function, normals and support points. :func:`fit_ellipse` fits one to points in numpy
(float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sslkeypoint.geometry._points import check_points, to_numpy

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["Ellipse", "ellipse_major_axis_endpoints", "fit_ellipse"]


@dataclass(frozen=True)
class Ellipse:
    """An ellipse by its geometric parameters, in pixels.

    The constructor normalises its input: semi-axes are reordered so that ``axes[0]`` is the major
    one (turning ``angle`` by 90° when they are swapped) and ``angle`` is wrapped into ``[0, π)``.

    Attributes:
        center: Centre ``(x, y)`` in pixels.
        axes: Semi-axes ``(major, minor)`` in pixels, ``major >= minor > 0``.
        angle: Direction of the major axis in radians, measured from the ``+x`` axis towards
            ``+y`` (clockwise on screen, where ``y`` points down), in ``[0, π)``.

    Examples:
        >>> e = Ellipse((10.0, 20.0), (2.0, 5.0), 0.0)
        >>> e.axes, round(math.degrees(e.angle), 6)
        ((5.0, 2.0), 90.0)
    """

    center: tuple[float, float]
    axes: tuple[float, float]
    angle: float

    def __post_init__(self) -> None:
        cx, cy = (float(v) for v in self.center)
        a, b = (float(v) for v in self.axes)
        angle = float(self.angle)
        values = (cx, cy, a, b, angle)
        if not all(math.isfinite(v) for v in values) or a <= 0 or b <= 0:
            raise ValueError(
                "Ellipse needs a finite centre, finite positive semi-axes and a finite angle; got "
                f"center={self.center}, axes={self.axes}, angle={self.angle}"
            )
        if b > a:
            a, b = b, a
            angle += math.pi / 2
        angle = math.fmod(angle, math.pi)
        if angle < 0:
            angle += math.pi
        object.__setattr__(self, "center", (cx, cy))
        object.__setattr__(self, "axes", (a, b))
        object.__setattr__(self, "angle", angle)

    @classmethod
    def from_conic(cls, coeffs: Any) -> Ellipse:
        """The ellipse ``A x² + B xy + C y² + D x + E y + F = 0``.

        Args:
            coeffs: The six coefficients ``(A, B, C, D, E, F)`` (any common scale and sign).

        Returns:
            The ellipse.

        Raises:
            ValueError: When the conic is not a real, non-degenerate ellipse.

        Examples:
            >>> Ellipse.from_conic([1 / 9, 0, 1 / 4, 0, 0, -1]).axes
            (3.0, 2.0)
        """
        c = to_numpy(coeffs).ravel()
        if c.shape != (6,):
            raise ValueError(f"conic coefficients must have shape (6,); got {tuple(c.shape)}")
        a_, b_, c_, d_, e_, f_ = (float(v) for v in c)
        if not np.all(np.isfinite(c)) or b_ * b_ - 4 * a_ * c_ >= 0:
            raise ValueError(f"conic {c.tolist()} is not an ellipse (needs B² - 4AC < 0)")
        quad = np.array([[a_, b_ / 2], [b_ / 2, c_]])
        center = np.linalg.solve(2 * quad, [-d_, -e_])
        f0 = f_ + (d_ * center[0] + e_ * center[1]) / 2  # conic value at the centre
        if f0 > 0:  # make the quadratic form positive definite and the centre value negative
            quad, f0 = -quad, -f0
        evals, evecs = np.linalg.eigh(quad)
        if f0 >= 0 or evals[0] <= 0:
            raise ValueError(f"conic {c.tolist()} is an imaginary or degenerate ellipse")
        major = math.sqrt(-f0 / evals[0])
        minor = math.sqrt(-f0 / evals[1])
        direction = evecs[:, 0]
        return cls(
            (float(center[0]), float(center[1])),
            (major, minor),
            math.atan2(float(direction[1]), float(direction[0])),
        )

    @classmethod
    def from_opencv(cls, box: Any) -> Ellipse:
        """The ellipse of an OpenCV rotated box ``((cx, cy), (width, height), angle_deg)``.

        This is what ``cv2.fitEllipse`` returns (and ``cv2.ellipse`` draws): ``width`` is the full
        length of the axis along the direction ``angle_deg`` (degrees from ``+x`` towards ``+y``)
        and ``height`` the full length of the perpendicular axis. Either may be the longer one.

        Args:
            box: ``((cx, cy), (width, height), angle_deg)``.

        Returns:
            The ellipse, with semi-axes (half of ``width``/``height``) sorted major first.

        Examples:
            >>> e = Ellipse.from_opencv(((128.0, 100.0), (60.0, 160.0), 120.0))
            >>> e.axes, round(math.degrees(e.angle), 6)
            ((80.0, 30.0), 30.0)
        """
        (cx, cy), (width, height), angle_deg = box
        return cls((cx, cy), (width / 2, height / 2), math.radians(angle_deg))

    @classmethod
    def from_support_point(
        cls, point: Any, direction: Any, axes: tuple[float, float], angle: float
    ) -> Ellipse:
        """The ellipse of given shape whose farthest point along ``direction`` is ``point``.

        With the shape matrix ``M`` of ``axes`` and ``angle`` (see :meth:`shape_matrix`), the
        centre is ``point − M·n / sqrt(nᵀ·M·n)``: ``point`` lies on the ellipse, the ellipse's
        outward normal there is ``n`` and the whole ellipse lies on the side ``n·x <= n·point``.
        The centre is computed from ``axes`` and ``angle`` as given (before the constructor
        normalises them), so equal arguments always give the bit-identical centre.

        Args:
            point: ``(2,)`` the support point ``(x, y)`` in pixels.
            direction: ``(2,)`` outward normal at ``point`` (any positive length).
            axes: Semi-axes in pixels, the first along ``angle``.
            angle: Direction of the first semi-axis in radians (any value).

        Returns:
            The ellipse.

        Raises:
            ValueError: If ``point`` or ``direction`` is not ``(2,)``, or ``direction`` is zero.

        Examples:
            >>> e = Ellipse.from_support_point([0.0, 10.0], [0.0, 1.0], (4.0, 2.0), 0.0)
            >>> e.center, e.axes
            ((0.0, 8.0), (4.0, 2.0))
        """
        p = to_numpy(point)
        n = to_numpy(direction)
        if p.shape != (2,) or n.shape != (2,):
            raise ValueError(
                "point and direction must have shape (2,) (x, y); got shapes "
                f"{tuple(p.shape)} and {tuple(n.shape)}"
            )
        if not np.any(n):
            raise ValueError("direction must be a non-zero vector; got (0, 0)")
        m = _shape_matrix(float(axes[0]), float(axes[1]), float(angle))
        c = p - m @ n / math.sqrt(float(n @ m @ n))
        return cls((float(c[0]), float(c[1])), axes, angle)

    def conic(self) -> NDArray[np.float64]:
        """Coefficients ``(A, B, C, D, E, F)`` of ``A x² + B xy + C y² + D x + E y + F = 0``.

        Scaled so that the conic is ``-1`` at the centre, negative inside and positive outside;
        its gradient ``(2Ax + By + D, Bx + 2Cy + E)`` is the outward normal on the ellipse.

        Returns:
            ``(6,)`` float64 array.
        """
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        rot = np.array([[cos, -sin], [sin, cos]])
        quad = rot @ np.diag([self.axes[0] ** -2, self.axes[1] ** -2]) @ rot.T
        c = np.asarray(self.center)
        lin = -2 * quad @ c
        const = float(c @ quad @ c) - 1.0
        return np.array([quad[0, 0], 2 * quad[0, 1], quad[1, 1], lin[0], lin[1], const])

    def points(self, n: int = 360) -> NDArray[np.float64]:
        """``n`` points evenly spaced in the parametric angle along the ellipse, shape ``(n, 2)``."""
        t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        u = self.axes[0] * np.cos(t)
        v = self.axes[1] * np.sin(t)
        return np.stack(
            [self.center[0] + cos * u - sin * v, self.center[1] + sin * u + cos * v], axis=-1
        )

    def perimeter(self) -> float:
        """The length of the ellipse, in pixels (Ramanujan's second approximation).

        ``π·(a + b)·(1 + 3h / (10 + sqrt(4 − 3h)))`` with ``h = ((a − b) / (a + b))²``: exact for
        a circle, within 2·10⁻⁵ relative for every ellipse with ``b ≥ a / 10`` (far below a
        pixel for any head or organ outline).

        Examples:
            >>> round(Ellipse((0.0, 0.0), (1.0, 1.0), 0.0).perimeter() / math.pi, 12)
            2.0
            >>> round(Ellipse((0.0, 0.0), (5.0, 3.0), 0.0).perimeter(), 4)  # 25.5270 exactly
            25.527
        """
        a, b = self.axes
        h = ((a - b) / (a + b)) ** 2
        return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))

    def shape_matrix(self) -> NDArray[np.float64]:
        """The shape matrix ``M = R·diag(a², b²)·Rᵀ`` in px², ``R`` the rotation by ``angle``.

        The ellipse is ``{x : (x − c)ᵀ·M⁻¹·(x − c) = 1}``; its point farthest along a direction
        ``n`` is ``c + M·n / sqrt(nᵀ·M·n)`` (see :meth:`support_point`).

        Returns:
            ``(2, 2)`` float64 symmetric positive-definite matrix with eigenvalues ``a²`` and
            ``b²``.

        Examples:
            >>> Ellipse((0.0, 0.0), (3.0, 2.0), 0.0).shape_matrix().tolist()
            [[9.0, 0.0], [0.0, 4.0]]
        """
        return _shape_matrix(self.axes[0], self.axes[1], self.angle)

    def _local(self, points: Any) -> NDArray[np.float64]:
        """Coordinates ``(..., 2)`` of points along the major and the minor axis, from the centre."""
        p = to_numpy(points)
        check_points("points", p)
        d = p - np.asarray(self.center)
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        return np.stack([d[..., 0] * cos + d[..., 1] * sin, -d[..., 0] * sin + d[..., 1] * cos], -1)

    def implicit(self, points: Any) -> NDArray[np.float64]:
        """The implicit function ``(u/a)² + (v/b)²`` of points, ``(u, v)`` along the axes.

        Args:
            points: ``(..., 2)`` points ``(x, y)`` in pixels (numpy array or tensor).

        Returns:
            ``(...)`` float64: 0 at the centre, below 1 inside, 1 on the ellipse, above 1 outside
            (it grows with the square of the distance in units of the semi-axes).

        Raises:
            ValueError: If ``points`` is not ``(..., 2)``.

        Examples:
            >>> Ellipse((10.0, 20.0), (5.0, 2.0), 0.0).implicit([[15.0, 20.0], [10.0, 21.0]]).tolist()
            [1.0, 0.25]
        """
        uv = self._local(points)
        return (uv[..., 0] / self.axes[0]) ** 2 + (uv[..., 1] / self.axes[1]) ** 2

    def contains(self, points: Any) -> NDArray[np.bool_]:
        """Whether points lie inside the ellipse or on it (:meth:`implicit` ``<= 1``).

        Args:
            points: ``(..., 2)`` points ``(x, y)`` in pixels.

        Returns:
            ``(...)`` bool array.

        Examples:
            >>> Ellipse((0.0, 0.0), (2.0, 1.0), 0.0).contains([[1.0, 0.5], [0.0, 1.5]]).tolist()
            [True, False]
        """
        return self.implicit(points) <= 1.0

    def normal(self, points: Any) -> NDArray[np.float64]:
        """Unit outward normals of the level sets of :meth:`implicit` at points.

        On the ellipse this is its outward normal; elsewhere the normal of the scaled copy of the
        ellipse through the point.

        Args:
            points: ``(..., 2)`` points ``(x, y)`` in pixels, not the centre.

        Returns:
            ``(..., 2)`` float64 unit vectors; NaN at the centre.

        Examples:
            >>> e = Ellipse((0.0, 0.0), (2.0, 1.0), 0.0)
            >>> e.normal([[2.0, 0.0], [0.0, -1.0]]).tolist()
            [[1.0, 0.0], [0.0, -1.0]]
        """
        uv = self._local(points)
        gu, gv = uv[..., 0] / self.axes[0] ** 2, uv[..., 1] / self.axes[1] ** 2
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        g = np.stack([gu * cos - gv * sin, gu * sin + gv * cos], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return g / np.linalg.norm(g, axis=-1, keepdims=True)

    def support_point(self, direction: Any) -> NDArray[np.float64]:
        """The point of the ellipse farthest along a direction: ``c + M·n / sqrt(nᵀ·M·n)``.

        There the outward normal of the ellipse is ``n``: the line through it perpendicular to
        ``n`` touches the ellipse and the whole ellipse lies on its side ``n·x <= n·point``.

        Args:
            direction: ``(..., 2)`` directions ``n`` (any positive length).

        Returns:
            ``(..., 2)`` float64 points on the ellipse; NaN for a zero direction.

        Raises:
            ValueError: If ``direction`` is not ``(..., 2)``.

        Examples:
            >>> Ellipse((1.0, 2.0), (3.0, 2.0), 0.0).support_point([[1.0, 0.0], [0.0, -5.0]]).tolist()
            [[4.0, 2.0], [1.0, 0.0]]
        """
        n = to_numpy(direction)
        check_points("direction", n)
        m = self.shape_matrix()
        mn = n @ m.T
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(self.center) + mn / np.sqrt((n * mn).sum(-1, keepdims=True))


def _shape_matrix(a: float, b: float, angle: float) -> NDArray[np.float64]:
    """``R·diag(a², b²)·Rᵀ`` with ``R`` the rotation by ``angle`` (radians)."""
    cos, sin = math.cos(angle), math.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]], dtype=np.float64)
    return rot @ np.diag([a**2, b**2]) @ rot.T


def fit_ellipse(points: Any) -> Ellipse:
    """Direct least-squares ellipse fit to 2-D points (Fitzgibbon et al., Halir–Flusser form).

    Minimises the algebraic distance ``Σ (A x² + B xy + C y² + D x + E y + F)²`` under the
    ellipse constraint ``4AC - B² = 1``, so the result is always an ellipse. Points are centred
    and scaled before the fit for numerical stability. Pure numpy, float64.

    Args:
        points: ``(N, 2)`` points ``(x, y)`` in pixels, ``N >= 5`` (numpy array or tensor).

    Returns:
        The fitted ellipse.

    Raises:
        ValueError: When ``points`` is not ``(N, 2)`` with ``N >= 5`` finite points, or when the
            points are degenerate (e.g. all on a line) and no ellipse fits.

    Examples:
        >>> e = Ellipse((50.0, 40.0), (20.0, 8.0), 0.5)
        >>> fit = fit_ellipse(e.points(50))
        >>> [round(v, 6) for v in (*fit.center, *fit.axes, fit.angle)]
        [50.0, 40.0, 20.0, 8.0, 0.5]
    """
    pts = to_numpy(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2) (x, y); got shape {tuple(pts.shape)}")
    if pts.shape[0] < 5:
        raise ValueError(f"an ellipse fit needs at least 5 points; got {pts.shape[0]}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points contain NaN or infinite values")
    mean = pts.mean(axis=0)
    scale = float(np.sqrt(((pts - mean) ** 2).sum(axis=1).mean()))
    if scale == 0:
        raise ValueError("all points coincide; no ellipse fits")
    x, y = ((pts - mean) / scale).T
    d1 = np.stack([x * x, x * y, y * y], axis=1)
    d2 = np.stack([x, y, np.ones_like(x)], axis=1)
    s1, s2, s3 = d1.T @ d1, d1.T @ d2, d2.T @ d2
    try:
        t = -np.linalg.solve(s3, s2.T)
    except np.linalg.LinAlgError as err:
        raise ValueError("degenerate points (collinear?); no ellipse fits") from err
    m = s1 + s2 @ t
    # Premultiply by the inverse of the constraint matrix [[0, 0, 2], [0, -1, 0], [2, 0, 0]].
    m = np.stack([m[2] / 2, -m[1], m[0] / 2])
    _, evecs = np.linalg.eig(m)
    evecs = np.real(evecs)
    cond = 4 * evecs[0] * evecs[2] - evecs[1] ** 2
    if not np.any(cond > 0):
        raise ValueError("no elliptic solution for these points (degenerate configuration)")
    a1 = evecs[:, int(np.argmax(cond))]
    conic = np.concatenate([a1, t @ a1])
    try:
        fit = Ellipse.from_conic(conic)
    except (ValueError, np.linalg.LinAlgError) as err:
        raise ValueError("degenerate points; the fitted conic is not a proper ellipse") from err
    return Ellipse(
        (fit.center[0] * scale + mean[0], fit.center[1] * scale + mean[1]),
        (fit.axes[0] * scale, fit.axes[1] * scale),
        fit.angle,
    )


def ellipse_major_axis_endpoints(ellipse: Ellipse) -> NDArray[np.float64]:
    """The two ends of the major axis.

    Args:
        ellipse: The ellipse.

    Returns:
        ``(2, 2)`` float64 array ``[centre + a·u, centre − a·u]`` where ``u`` is the major-axis
        direction (``angle`` in ``[0, π)``, so the first end has the larger ``y``, or the larger
        ``x`` when the axis is horizontal).

    Examples:
        >>> ellipse_major_axis_endpoints(Ellipse((0.0, 0.0), (2.0, 1.0), 0.0)).tolist()
        [[2.0, 0.0], [-2.0, 0.0]]
    """
    u = np.array([math.cos(ellipse.angle), math.sin(ellipse.angle)]) * ellipse.axes[0]
    c = np.asarray(ellipse.center)
    return np.stack([c + u, c - u])
