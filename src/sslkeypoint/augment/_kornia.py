"""The one kornia convention this package reads beyond kornia's documented signatures.

kornia's ``forward_parameters`` records which samples an augmentation's probability gate selected
under the key ``"batch_prob"`` (1 applied, 0 skipped). kornia documents no accessor for it, and
keypoint identities must be swapped exactly for the samples a horizontal flip mirrored, so the key
is read here and nowhere else; ``tests/test_augment.py`` checks it against the installed kornia.
"""

from __future__ import annotations

from collections.abc import Mapping

import kornia
from torch import Tensor

GATE_KEY = "batch_prob"


def applied_samples(params: Mapping[str, Tensor]) -> Tensor:
    """``(B,)`` bool: the samples a kornia augmentation applied to, from its drawn ``params``.

    Args:
        params: The parameters one kornia augmentation drew (its ``forward_parameters`` result, or
            the ``data`` of its item in an ``AugmentationSequential`` parameter list).

    Raises:
        RuntimeError: When the installed kornia records its gate under another key.
    """
    if GATE_KEY not in params:
        raise RuntimeError(
            f"kornia {kornia.__version__} no longer records an augmentation's per-sample gate as "
            f"{GATE_KEY!r} (keys: {sorted(params)}); sslkeypoint.augment._kornia must be updated"
        )
    return params[GATE_KEY] > 0.5
