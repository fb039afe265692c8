"""The three landmarks of the IUGC 2025 Angle of Progression task, and the AoP as a measure.

``PS1`` is the right end of the pubic symphysis (``PS1.x > PS2.x`` in every labelled IUGC image),
``PS2`` its left end and ``FH1`` the far-side tangent point on the fetal head. Every record,
CSV row, heatmap channel and plot of the example uses this order.

The Angle of Progression (IUGC 2025 definition) is the angle at ``PS1`` between ``PS1→PS2`` and
``PS1→FH1``: the library's :class:`~sslkeypoint.measures.AngleMeasure` with its vertex at ``PS1``
(:data:`AOP`). :data:`MEASURES` is what the example hands to configs, metrics, predictors and
overlays; its name ``"aop"`` gives the metric keys ``aop_mae_deg``, ``aop_count``, ...
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sslkeypoint.geometry import angle_of_progression
from sslkeypoint.measures import AngleMeasure, Measure

__all__ = ["AOP", "LANDMARK_NAMES", "MEASURES", "aop_degrees"]

#: Landmark order of every record: the vertex ``PS1``, the other symphysis end ``PS2``, ``FH1``.
LANDMARK_NAMES: tuple[str, str, str] = ("PS1", "PS2", "FH1")

#: The Angle of Progression: the angle at ``PS1`` between the directions to ``PS2`` and ``FH1``.
AOP = AngleMeasure(vertex=LANDMARK_NAMES.index("PS1"), first=LANDMARK_NAMES.index("PS2"),
                   second=LANDMARK_NAMES.index("FH1"))

#: The named measures of the task: ``{"aop": AOP}``.
MEASURES: dict[str, Measure] = {"aop": AOP}


def aop_degrees(keypoints: Any) -> float:
    """Angle of Progression of one image's landmarks (IUGC 2025 definition), in degrees.

    Args:
        keypoints: ``(3, 2)`` landmarks ``PS1, PS2, FH1`` as ``(x, y)`` in pixels.

    Returns:
        The angle at ``PS1`` between ``PS1→PS2`` and ``PS1→FH1`` (NaN when a point coincides
        with ``PS1``).

    Raises:
        ValueError: If ``keypoints`` is not ``(3, 2)``.

    Examples:
        >>> aop_degrees([[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]])
        90.0
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape != (3, 2):
        raise ValueError(f"keypoints must have shape (3, 2) (PS1, PS2, FH1); got {kp.shape}")
    return float(angle_of_progression(kp[0], kp[1], kp[2]))
