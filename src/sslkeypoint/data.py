"""Image decoding, keypoint datasets, invalid-sample filtering and temporal frame pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KeypointRecord"]


@dataclass(frozen=True)
class KeypointRecord:
    """One labelled image: where it is and where its keypoints are.

    Attributes:
        path: Image file. Decoded by content, whatever its extension says.
        keypoints: ``(K, 2)`` float array of ``(x, y)`` in the original image's pixels, or
            ``None`` for an unlabelled image. NaN marks a missing keypoint.
        visible: Optional ``(K,)`` bool array; ``None`` means every finite keypoint is visible.
        meta: Free-form information carried along (split, case id, AoP label, ...).

    Examples:
        >>> import numpy as np
        >>> r = KeypointRecord("a.png", np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> r.num_keypoints
        2
    """

    path: Path | str
    keypoints: np.ndarray | None = None
    visible: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_keypoints(self) -> int:
        """Number of keypoints ``K`` (0 for an unlabelled record)."""
        return 0 if self.keypoints is None else int(np.asarray(self.keypoints).shape[0])
