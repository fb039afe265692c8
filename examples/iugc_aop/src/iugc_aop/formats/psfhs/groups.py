"""Similarity groups of PSFHS cases: near-identical frames of one acquisition joined by correlation.

Many PSFHS cases are near-identical frames of one acquisition; :func:`similarity_groups` joins them
into groups, so that a split by group (:func:`~iugc_aop.formats.psfhs.read_psfhs`) never trains on a
near-duplicate of an evaluation image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["GROUP_SIZE", "GROUP_THRESHOLD", "similarity_groups"]

#: Two cases whose images correlate above this (normalised correlation) are in one group.
GROUP_THRESHOLD = 0.85

#: Side (px) of the nearest-neighbour thumbnails the similarity groups compare.
GROUP_SIZE = 64

_BLOCK = 512  # rows of the correlation matrix computed at once


def _thumbnail(image: Any, size: int, index: int) -> NDArray[np.float64]:
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"image {index} must have shape (H, W); got shape {tuple(arr.shape)}")
    h, w = arr.shape
    rows = (np.arange(size) * h) // size
    cols = (np.arange(size) * w) // size
    return arr[np.ix_(rows, cols)].astype(np.float64).ravel()


def similarity_groups(
    images: Sequence[Any], threshold: float = GROUP_THRESHOLD, size: int = GROUP_SIZE
) -> list[int]:
    """Group near-identical images: single linkage on the normalised correlation of thumbnails.

    Every image is sampled to ``size × size`` by nearest neighbour (row ``floor(i·H/size)``,
    column ``floor(j·W/size)``: every fourth pixel of a 256 px image for 64 px, as OpenCV's
    ``INTER_NEAREST``); two images whose thumbnails have a normalised (Pearson) correlation
    above ``threshold`` are in one group, and so are chains of such pairs. All pairs are compared,
    not only neighbours in the input order. A constant image correlates with nothing.

    On the 1,058 PSFHS cases of the project (``images/`` in id order) this reproduces the
    partition of ``cases.csv`` exactly: 336 groups.

    Args:
        images: ``(H, W)`` images (numpy arrays or tensors, any numeric dtype; sizes may differ),
            or one ``(N, H, W)`` array.
        threshold: Correlation above which two images join (strictly greater).
        size: Side of the thumbnails in pixels.

    Returns:
        One group number per image; groups are numbered ``0, 1, ...`` in order of their first
        image.

    Raises:
        ValueError: For an image that is not 2-D or a ``size`` below 1.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.random((32, 32)), rng.random((32, 32))
        >>> similarity_groups([a, b, a + 0.01 * rng.random((32, 32)), b.T, b], size=16)
        [0, 1, 0, 2, 1]
    """
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer; got {size!r}")
    n = len(images)
    if n == 0:
        return []
    x = np.stack([_thumbnail(im, int(size), i) for i, im in enumerate(images)])
    x -= x.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for start in range(0, n, _BLOCK):
        corr = x[start : start + _BLOCK] @ x.T
        for i, j in np.argwhere(corr > threshold).tolist():
            a, b = find(start + i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    numbers: dict[int, int] = {}
    return [numbers.setdefault(find(i), len(numbers)) for i in range(n)]
