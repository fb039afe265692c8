"""``synthetic_truth.json``: the ground truth a synthetic data set keeps beside the IUGC layout.

The released layout has no place for what a synthetic data set knows exactly (the drawn
ellipses, the landmarks of every video frame, which videos are good standard-plane sequences),
so :func:`iugc_aop.synth.write_synthetic_iugc` writes it to this file at the data set's root,
last: its presence marks a complete synthetic data set. Real data has no such file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from sslkeypoint.atomic import write_text_atomic

__all__ = ["TRUTH_NAME", "load_truth", "screening_scores", "write_truth"]

#: File name of the truth file at a synthetic data set's root.
TRUTH_NAME = "synthetic_truth.json"


def write_truth(root: str | os.PathLike[str], truth: dict[str, Any]) -> Path:
    """Write the truth file of a synthetic data set (indented JSON, one trailing newline).

    Args:
        root: The data set's root folder (must exist).
        truth: JSON-friendly record.

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> write_truth(root, {"seed": 0}).name
        'synthetic_truth.json'
        >>> load_truth(root)
        {'seed': 0}
    """
    path = Path(root) / TRUTH_NAME
    write_text_atomic(path, json.dumps(truth, indent=1) + "\n")
    return path


def load_truth(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The truth file of a synthetic data set, or ``None`` where there is none (real data).

    Examples:
        >>> import tempfile
        >>> load_truth(tempfile.mkdtemp()) is None
        True
    """
    path = Path(root) / TRUTH_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def screening_scores(truth: dict[str, Any], screened: list[str], kept: list[str]) -> dict[str, float]:
    """How well a screening picked the good standard-plane videos of a synthetic data set.

    Args:
        truth: The truth file (:func:`load_truth`).
        screened: Names of the videos that were screened.
        kept: Names of the videos that were kept.

    Returns:
        ``{"precision": share of kept videos that are good, "recall": share of good screened videos
        kept}`` (NaN where undefined), and the sorted names of the good videos under ``"good"``.

    Examples:
        >>> truth = {"sequences": {"v1": {"good": True}, "v2": {"good": False}, "v3": {"good": True}}}
        >>> s = screening_scores(truth, ["v1", "v2", "v3"], ["v1", "v2"])
        >>> s["precision"], s["recall"]
        (0.5, 0.5)
    """
    good = {n for n, s in truth.get("sequences", {}).items() if s.get("good")}
    hits = sum(n in good for n in kept)
    candidates = good & set(screened)
    return {
        "precision": hits / len(kept) if kept else math.nan,
        "recall": hits / len(candidates) if candidates else math.nan,
        "good": sorted(good),  # type: ignore[dict-item]
    }
