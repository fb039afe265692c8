"""Landmarks of the head: the ends of the ellipse's axes and points on its outline in fixed directions.

Each head ellipse (the sonographer's, :mod:`hc18_biometry.data`) gives ``4 + directions``
landmarks:

* ``OFD1``, ``BPD1``, ``OFD2``, ``BPD2`` — the ends of the axes, named by
  :func:`sslkeypoint.geometry.ellipse_outline_points` with ``towards=(1, 0)``: ``OFD1`` is the end
  of the long (occipito-frontal) axis **on the right of the image**, ``BPD1`` the end of the short
  (biparietal) axis below the long one, then ``OFD2`` and ``BPD2`` opposite them.
* ``D000``, ``D045``, ... — the outline point in each of ``directions`` fixed image directions
  from the centre (:func:`sslkeypoint.geometry.ellipse_points_towards`; ``D090`` is straight
  down). These names do not depend on the axes at all.

Why "on the right": an ellipse is the same when turned by 180°, so every rule that tells the two
ends of an axis apart has a *cut*, an orientation where the names swap as the head turns. The cut
must lie where few heads do: in HC18 the long axis is within 20° of horizontal in 79 % of the
images and within 10° of vertical in 2 %. "The lower end first"
(:func:`sslkeypoint.geometry.ellipse_major_axis_endpoints`, :data:`WRONG_RULE`) cuts at the
horizontal, through most heads; the docs measure what that costs.

Why the direction points: the axis ends are only as well defined as the axes, and a nearly round
head (short/long axis ratio above 0.87 in 5 % of HC18) has no clear long axis — its axis ends may
lie anywhere on the outline. The head's measures (:mod:`hc18_biometry.measures`) are therefore
taken from the ellipse through the direction points, which are well defined on every head.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hc18_biometry.data import HeadCase
from sslkeypoint.data import KeypointRecord
from sslkeypoint.geometry import Ellipse, ellipse_outline_points, ellipse_points_towards

__all__ = ["AXIS_ENDS", "RIGHT_RULE", "WRONG_RULE", "head_landmarks", "head_records", "landmark_names"]

#: The direction that names the ends of the long axis: the end on the right comes first.
RIGHT_RULE: tuple[float, float] = (1.0, 0.0)
#: A rule whose cut runs through most HC18 heads: the lower end first (compared with in the docs).
WRONG_RULE: tuple[float, float] = (0.0, 1.0)
#: The names of the ends of the axes, the first four landmarks.
AXIS_ENDS: tuple[str, ...] = ("OFD1", "BPD1", "OFD2", "BPD2")


def landmark_names(directions: int = 8) -> tuple[str, ...]:
    """The names of the ``4 + directions`` landmarks.

    Examples:
        >>> landmark_names(4)
        ('OFD1', 'BPD1', 'OFD2', 'BPD2', 'D000', 'D090', 'D180', 'D270')
    """
    if isinstance(directions, bool) or not isinstance(directions, int) or (directions < 5 and directions != 4):
        raise ValueError(f"directions must be 4 or at least 5 (an ellipse goes through them); got {directions!r}")
    return AXIS_ENDS + tuple(f"D{round(360 * k / directions):03d}" for k in range(directions))


def head_landmarks(ellipse: Ellipse, directions: int = 8, towards: Sequence[float] = RIGHT_RULE) -> np.ndarray:
    """The ``(4 + directions, 2)`` landmarks of a head ellipse (see the module notes)."""
    landmark_names(directions)
    return np.concatenate([ellipse_outline_points(ellipse, 4, towards), ellipse_points_towards(ellipse, directions)])


def head_records(cases: Sequence[HeadCase], directions: int = 8,
                 towards: Sequence[float] = RIGHT_RULE) -> list[KeypointRecord]:
    """One :class:`~sslkeypoint.data.KeypointRecord` per case: its landmarks, subject (the group)
    and pixel size; ``meta`` keeps the data set's HC."""
    return [KeypointRecord(c.image, head_landmarks(c.ellipse, directions, towards), group=c.subject,
                           pixel_size=c.pixel_size, meta={"hc_mm": c.hc_mm})
            for c in cases]
