"""Geometry of landmarks: angles (the AoP), ellipses, their fit and their tangents.

All points are ``(..., 2)`` arrays in ``(x, y)`` order, in pixels; integer coordinates are pixel
centres (pixel at row ``i``, column ``j`` has its centre at ``(x=j, y=i)``). The angle functions
accept torch tensors or numpy arrays and return the same kind they were given.

Ellipses are :class:`~sslkeypoint.geometry.ellipse.Ellipse` objects (centre, semi-axes, angle)
produced by :func:`~sslkeypoint.geometry.ellipse.fit_ellipse` (a direct least-squares conic fit in
numpy) or read from OpenCV; :mod:`sslkeypoint.masks` uses them to derive the AoP landmarks from
segmentation masks.

Modules:
    :mod:`~sslkeypoint.geometry.angles`: angles between vectors and the Angle of Progression.
    :mod:`~sslkeypoint.geometry.ellipse`: the ellipse object, its fit, perimeter and major axis.
    :mod:`~sslkeypoint.geometry.outline`: named points on an ellipse's outline, and the ellipse
    back from them.
    :mod:`~sslkeypoint.geometry.tangents`: tangent points on an ellipse and on a contour.
"""

from __future__ import annotations

from sslkeypoint.geometry.angles import angle_between, angle_of_progression
from sslkeypoint.geometry.ellipse import Ellipse, ellipse_major_axis_endpoints, fit_ellipse
from sslkeypoint.geometry.outline import (
    angle_to_cut,
    ellipse_outline_points,
    ellipse_points_towards,
    ellipse_through_points,
)
from sslkeypoint.geometry.tangents import (
    contour_tangent_point,
    ellipse_tangent_points,
    far_tangent_point,
)

__all__ = [
    "Ellipse",
    "angle_between",
    "angle_of_progression",
    "angle_to_cut",
    "contour_tangent_point",
    "ellipse_major_axis_endpoints",
    "ellipse_outline_points",
    "ellipse_points_towards",
    "ellipse_tangent_points",
    "ellipse_through_points",
    "far_tangent_point",
    "fit_ellipse",
]
