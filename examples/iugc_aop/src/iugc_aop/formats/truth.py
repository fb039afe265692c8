"""``synthetic_truth.json``: the ground truth a synthetic data set keeps beside the IUGC layout.

The released layout has no place for what a synthetic data set knows exactly (the drawn
ellipses, the landmarks of every video frame, which videos are good standard-plane sequences),
so :func:`iugc_aop.synth.write_synthetic_iugc` writes it to this file at the data set's root,
last: its presence marks a complete synthetic data set. Real data has no such file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["TRUTH_NAME", "load_truth", "write_truth"]

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
    path.write_text(json.dumps(truth, indent=1) + "\n")
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
