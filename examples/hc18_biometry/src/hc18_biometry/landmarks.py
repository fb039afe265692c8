"""Landmarks of the head: named points on the outline of the head ellipse.

The points are :func:`sslkeypoint.geometry.ellipse_outline_points` of the sonographer's ellipse:
``count`` points at equal steps of the parametric angle, the first the end of the long
(occipito-frontal) axis **on the right of the image** (``towards=(1, 0)``), the others turning
clockwise on screen. With the default eight points, ``OFD1`` and ``OFD2`` are the ends of the
occipito-frontal diameter, ``BPD1`` (below the long axis) and ``BPD2`` the ends of the biparietal
diameter, and ``Q1``–``Q4`` lie half-way between them.

Why "on the right": the rule's cut (a head whose long axis is vertical, where the two ends swap
names) must lie where few heads do. In HC18 the long axis is within 20° of horizontal in 79 % of
the images and within 10° of vertical in 2 %; the rule of
:func:`sslkeypoint.geometry.ellipse_major_axis_endpoints` (the lower end first) cuts at the
horizontal, through most heads. :data:`WRONG_RULE` is that rule, kept to measure what it costs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sslkeypoint.data import KeypointRecord
from sslkeypoint.geometry import Ellipse, ellipse_outline_points

from hc18_biometry.data import HeadCase

__all__ = ["RIGHT_RULE", "WRONG_RULE", "head_landmarks", "head_records", "landmark_names"]

#: The direction that names the ends of the long axis: the end on the right comes first.
RIGHT_RULE: tuple[float, float] = (1.0, 0.0)
#: A rule that cuts through most HC18 heads: the lower end first (compared with in the docs).
WRONG_RULE: tuple[float, float] = (0.0, 1.0)


def landmark_names(count: int = 8) -> tuple[str, ...]:
    """Names of the ``count`` outline points (a multiple of 4).

    Examples:
        >>> landmark_names(4)
        ('OFD1', 'BPD1', 'OFD2', 'BPD2')
        >>> landmark_names(8)
        ('OFD1', 'Q1', 'BPD1', 'Q2', 'OFD2', 'Q3', 'BPD2', 'Q4')
    """
    if count < 4 or count % 4:
        raise ValueError(f"the number of outline points must be a multiple of 4 (the ends of both axes); got {count}")
    ends = ("OFD1", "BPD1", "OFD2", "BPD2")
    step = count // 4
    names, q = [], 0
    for k in range(count):
        if k % step == 0:
            names.append(ends[k // step])
        else:
            q += 1
            names.append(f"Q{q}")
    return tuple(names)


def head_landmarks(ellipse: Ellipse, count: int = 8, towards: Sequence[float] = RIGHT_RULE) -> np.ndarray:
    """The ``(count, 2)`` named outline points of a head ellipse (see the module notes)."""
    landmark_names(count)
    return ellipse_outline_points(ellipse, count, towards)


def head_records(cases: Sequence[HeadCase], count: int = 8,
                 towards: Sequence[float] = RIGHT_RULE) -> list[KeypointRecord]:
    """One :class:`~sslkeypoint.data.KeypointRecord` per case: its landmarks, subject (the group)
    and pixel size; ``meta`` keeps the data set's HC."""
    return [KeypointRecord(c.image, head_landmarks(c.ellipse, count, towards), group=c.subject,
                           pixel_size=c.pixel_size, meta={"hc_mm": c.hc_mm})
            for c in cases]
