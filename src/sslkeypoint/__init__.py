"""sslkeypoint: self-supervised pre-training and heatmap keypoint detection on PyTorch.

The public API is re-exported here; see the API reference for every name.
"""

from __future__ import annotations

from sslkeypoint._version import __version__
from sslkeypoint.geometry import angle_of_progression

__all__ = [
    "__version__",
    "angle_of_progression",
]
