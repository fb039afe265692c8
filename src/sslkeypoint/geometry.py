"""Geometry of landmarks: angles (the AoP), ellipses, their fit and their tangents.

All points are ``(..., 2)`` arrays in ``(x, y)`` order, in pixels; integer coordinates are pixel
centres (pixel at row ``i``, column ``j`` has its centre at ``(x=j, y=i)``). The angle functions
accept torch tensors or numpy arrays and return the same kind they were given.

Ellipses are :class:`Ellipse` objects (centre, semi-axes, angle) produced by :func:`fit_ellipse`
(a direct least-squares conic fit in numpy) or read from OpenCV; :mod:`sslkeypoint.masks` uses them
to derive the AoP landmarks from segmentation masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import Tensor

ArrayT = TypeVar("ArrayT", Tensor, np.ndarray)

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "Ellipse",
    "angle_between",
    "angle_of_progression",
    "contour_tangent_point",
    "ellipse_major_axis_endpoints",
    "ellipse_tangent_points",
    "far_tangent_point",
    "fit_ellipse",
]


def _is_complex(p: Any) -> bool:
    return bool(p.is_complex()) if isinstance(p, Tensor) else bool(np.iscomplexobj(p))


def _check_points(name: str, p: Tensor | np.ndarray) -> None:
    if p.ndim < 1 or p.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., 2) (x, y); got shape {tuple(p.shape)}")
    if _is_complex(p):
        raise ValueError(f"{name} must be real (x, y) coordinates; got complex values ({p.dtype})")


def _one_point(name: str, p: Any) -> NDArray[np.float64]:
    """``p`` as one real ``(2,)`` float64 point (a ``(1, 2)`` array is taken as one point)."""
    q = _to_numpy(p)
    if q.size != 2:
        raise ValueError(f"{name} must be one point (x, y) of shape (2,); got shape {tuple(q.shape)}")
    return q.ravel()


def _check_same_shape(**points: Tensor | np.ndarray) -> None:
    """Points of one call must have one shape ``(..., 2)``; a single ``(2,)`` point serves every row.

    Anything else (e.g. ``(3, 1, 2)`` with ``(4, 2)``, which broadcasting would silently pair into
    a ``(3, 4)`` table) is refused.
    """
    shapes = {name: tuple(p.shape) for name, p in points.items()}
    batched = {shape for shape in shapes.values() if shape != (2,)}
    if len(batched) > 1:
        given = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(
            f"{', '.join(shapes)} must have the same shape (..., 2), or be one (x, y) pair (2,) used "
            f"for every row; got {given}"
        )


def angle_between(u: ArrayT, v: ArrayT) -> ArrayT:
    """Unsigned angle between two vectors, in degrees.

    Args:
        u: Vectors of shape ``(..., 2)``.
        v: Vectors of the same shape as ``u``; either may instead be one vector ``(2,)`` used for
            every row of the other. No other broadcasting: ``(3, 1, 2)`` against ``(4, 2)`` is
            refused rather than paired into a ``(3, 4)`` table.

    Returns:
        Angles in degrees in ``[0, 180]``, shape ``(...)``. A zero-length vector gives NaN, and so
        does a vector with a NaN or infinite component (no exception inside a batch).

    Raises:
        ValueError: If ``u`` or ``v`` is not ``(..., 2)``, their shapes differ (other than a
            single ``(2,)`` vector), or they are complex.

    Examples:
        >>> import torch
        >>> angle_between(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
        tensor(90.)
        >>> angle_between(torch.tensor([1.0, 0.0]), torch.tensor([[0.0, 2.0], [1.0, 1.0]]))
        tensor([90., 45.])
    """
    _check_points("u", u)
    _check_points("v", v)
    _check_same_shape(u=u, v=v)
    if isinstance(u, Tensor) or isinstance(v, Tensor):
        ut = torch.as_tensor(u)
        vt = torch.as_tensor(v)
        if not ut.is_floating_point():
            ut = ut.float()
        vt = vt.to(ut)
        # atan2(|u x v|, u . v) is accurate at every angle, unlike acos near 0 and 180.
        cross = ut[..., 0] * vt[..., 1] - ut[..., 1] * vt[..., 0]
        dot = (ut * vt).sum(-1)
        ang = torch.rad2deg(torch.atan2(cross.abs(), dot))
        degenerate = (ut.norm(dim=-1) == 0) | (vt.norm(dim=-1) == 0)
        degenerate = degenerate | ~torch.isfinite(ut).all(-1) | ~torch.isfinite(vt).all(-1)
        return torch.where(degenerate, torch.full_like(ang, math.nan), ang)
    un = np.asarray(u, dtype=np.float64)
    vn = np.asarray(v, dtype=np.float64)
    cross_n = un[..., 0] * vn[..., 1] - un[..., 1] * vn[..., 0]
    dot_n = (un * vn).sum(-1)
    ang_n = np.degrees(np.arctan2(np.abs(cross_n), dot_n))
    degenerate_n = (np.linalg.norm(un, axis=-1) == 0) | (np.linalg.norm(vn, axis=-1) == 0)
    degenerate_n |= ~np.isfinite(un).all(-1) | ~np.isfinite(vn).all(-1)
    return np.where(degenerate_n, np.nan, ang_n)


def angle_of_progression(ps1: ArrayT, ps2: ArrayT, fh1: ArrayT) -> ArrayT:
    """Angle of Progression (IUGC 2025 definition), in degrees.

    The angle at the vertex ``PS1`` between ``PS1→PS2`` and ``PS1→FH1``:
    ``acos((PS2−PS1)·(FH1−PS1) / (|PS2−PS1|·|FH1−PS1|))``, unsigned, in ``[0, 180]``.

    Args:
        ps1: Right end of the pubic symphysis (the vertex), shape ``(..., 2)``, pixels.
        ps2: Left end of the pubic symphysis, shape ``(..., 2)``.
        fh1: Tangent point on the fetal head, shape ``(..., 2)``.

    The three must have the same shape; any of them may instead be a single point ``(2,)`` used
    for every row of the others (e.g. one ``PS1``/``PS2`` pair against ``(N, 2)`` candidate
    ``FH1`` points). No other broadcasting is done: ``(3, 1, 2)`` against ``(4, 2)`` is refused,
    not paired into a ``(3, 4)`` table.

    Returns:
        AoP in degrees, shape ``(...)``; the same kind (tensor or ndarray) as the input.
        Degenerate configurations (``FH1`` or ``PS2`` coinciding with ``PS1``) and missing
        points (NaN, or an infinite coordinate) give NaN rather than raising, so one bad sample
        never breaks a batch.

    Raises:
        ValueError: If a point array is not ``(..., 2)``, the shapes differ (other than single
            ``(2,)`` points), or the coordinates are complex. The message names every shape.

    Examples:
        >>> import torch
        >>> ps1, ps2, fh1 = torch.tensor([300.0, 80.0]), torch.tensor([200.0, 80.0]), torch.tensor([300.0, 200.0])
        >>> angle_of_progression(ps1, ps2, fh1)
        tensor(90.)
        >>> import numpy as np
        >>> float(angle_of_progression(np.array([0, 0]), np.array([-1, 0]), np.array([1, 1])))
        135.0
        >>> angle_of_progression(torch.zeros(3, 1, 2), torch.ones(4, 2), torch.ones(4, 2))
        Traceback (most recent call last):
        ...
        ValueError: ps1, ps2, fh1 must have the same shape (..., 2), or be one (x, y) pair (2,) used for every row; got ps1 (3, 1, 2), ps2 (4, 2), fh1 (4, 2)
    """
    _check_points("ps1", ps1)
    _check_points("ps2", ps2)
    _check_points("fh1", fh1)
    _check_same_shape(ps1=ps1, ps2=ps2, fh1=fh1)
    return angle_between(ps2 - ps1, fh1 - ps1)


# ---------------------------------------------------------------------------------------------
# Ellipses
# ---------------------------------------------------------------------------------------------

def _to_numpy(x: Any, dtype: Any = np.float64) -> NDArray[Any]:
    """``x`` (tensor, array or sequence) as a numpy array of ``dtype`` on the CPU."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    if np.iscomplexobj(x):
        raise ValueError(f"expected real (x, y) coordinates; got complex values {np.asarray(x).tolist()!r}"[:200])
    return np.asarray(x, dtype=dtype)


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
        c = _to_numpy(coeffs).ravel()
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
        p = _to_numpy(point)
        n = _to_numpy(direction)
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
        p = _to_numpy(points)
        _check_points("points", p)
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
        n = _to_numpy(direction)
        _check_points("direction", n)
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
    pts = _to_numpy(points)
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


def ellipse_tangent_points(ellipse: Ellipse, point: Any) -> NDArray[np.float64]:
    """The two points where lines through an external point touch the ellipse (closed form).

    The point is mapped into the frame where the ellipse is the unit circle; there the tangent
    points of ``p`` are ``(p ± sqrt(|p|² − 1)·p⊥) / |p|²``, and the affine map back preserves
    tangency.

    Args:
        ellipse: The ellipse.
        point: ``(2,)`` external point ``(x, y)``.

    Returns:
        ``(2, 2)`` float64 array of the two tangent points. All NaN when the point lies strictly
        inside the ellipse (no tangent exists); both rows equal the point when it lies on it.

    Examples:
        >>> ellipse_tangent_points(Ellipse((0.0, 0.0), (1.0, 1.0), 0.0), [2.0, 0.0]).round(6).tolist()
        [[0.5, 0.866025], [0.5, -0.866025]]
    """
    p = _to_numpy(point).ravel()
    if p.shape != (2,):
        raise ValueError(f"point must have shape (2,) (x, y); got shape {tuple(p.shape)}")
    cos, sin = math.cos(ellipse.angle), math.sin(ellipse.angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    axes = np.asarray(ellipse.axes)
    c = np.asarray(ellipse.center)
    u = (rot.T @ (p - c)) / axes
    r2 = float(u @ u)
    if not math.isfinite(r2) or r2 < 1.0:
        return np.full((2, 2), np.nan)
    perp = np.array([-u[1], u[0]])
    h = math.sqrt(max(r2 - 1.0, 0.0))
    unit = np.stack([(u + h * perp) / r2, (u - h * perp) / r2])
    return c + (unit * axes) @ rot.T


def far_tangent_point(ellipse: Ellipse, vertex: Any, reference: Any) -> NDArray[np.float64]:
    """The tangent point from ``vertex`` that makes the larger angle with ``vertex→reference``.

    Of the two tangent points ``t`` of :func:`ellipse_tangent_points`, the one maximising the
    unsigned angle ``reference–vertex–t``; for a vertex outside the ellipse this is the ellipse
    point maximising that angle (unless the ellipse straddles the ray opposite to ``reference``).
    With ``vertex = PS1`` and ``reference = PS2`` on the head ellipse this is FH1.

    Args:
        ellipse: The ellipse.
        vertex: ``(2,)`` the point the tangents start from (outside the ellipse).
        reference: ``(2,)`` the point giving the reference direction.

    Returns:
        ``(2,)`` float64 tangent point; NaN when ``vertex`` is inside the ellipse or coincides
        with ``reference``.

    Raises:
        ValueError: If ``vertex`` or ``reference`` is not one real point ``(2,)``.

    Examples:
        >>> far_tangent_point(Ellipse((0.0, 0.0), (1.0, 1.0), 0.0), [2.0, 0.0], [2.0, 5.0]).round(6).tolist()
        [0.5, -0.866025]
    """
    v = _one_point("vertex", vertex)
    r = _one_point("reference", reference)
    tangents = ellipse_tangent_points(ellipse, v)
    angles = angle_between(np.broadcast_to(r - v, (2, 2)), tangents - v)
    if not np.all(np.isfinite(angles)):
        return np.full(2, np.nan)
    return tangents[int(np.argmax(angles))]


def contour_tangent_point(points: ArrayT, vertex: ArrayT, reference: ArrayT) -> ArrayT:
    """The point of a contour (or any point set) maximising the angle ``reference–vertex–q``.

    The discrete counterpart of :func:`far_tangent_point`: for a convex contour seen from an
    outside ``vertex`` it is the far-side tangent point, up to the contour's sampling.

    Args:
        points: ``(N, 2)`` candidate points ``q``.
        vertex: ``(2,)`` vertex of the angle.
        reference: ``(2,)`` point giving the reference direction ``vertex→reference``.

    Returns:
        ``(2,)`` the maximising point, the same kind (tensor or ndarray) as ``points``. NaN when
        no point gives a defined angle (no points, or all coincide with ``vertex``).

    Raises:
        ValueError: If ``points`` is not ``(N, 2)``, ``vertex`` or ``reference`` is not one point
            ``(2,)``, or any of them is complex.

    Examples:
        >>> import torch
        >>> pts = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.5]])
        >>> contour_tangent_point(pts, torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
        tensor([-1.0000,  0.5000])
    """
    _check_points("points", points)
    if points.ndim != 2:
        raise ValueError(f"points must have shape (N, 2); got shape {tuple(points.shape)}")
    _one_point("vertex", vertex)
    _one_point("reference", reference)
    if isinstance(points, Tensor):
        pts = points if points.is_floating_point() else points.float()
        v = torch.as_tensor(vertex).to(pts)
        r = torch.as_tensor(reference).to(pts)
        ang = angle_between((r - v).expand_as(pts), pts - v)
        ang = torch.nan_to_num(ang, nan=-1.0)
        if pts.shape[0] == 0 or bool((ang < 0).all()):
            return torch.full((2,), math.nan, dtype=pts.dtype, device=pts.device)
        return pts[int(torch.argmax(ang))]
    pts_n = np.asarray(points, dtype=np.float64)
    v_n = _to_numpy(vertex)
    r_n = _to_numpy(reference)
    ang_n = np.nan_to_num(angle_between(np.broadcast_to(r_n - v_n, pts_n.shape), pts_n - v_n), nan=-1.0)
    if pts_n.shape[0] == 0 or bool((ang_n < 0).all()):
        return np.full(2, np.nan)
    return pts_n[int(np.argmax(ang_n))]
