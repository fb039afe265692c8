"""Former import path of the IUGC reader; the reader is :mod:`iugc_aop.formats.reader`.

Kept only until every import uses :mod:`iugc_aop.formats` (and :mod:`iugc_aop.landmarks`,
:func:`sslkeypoint.data.natural_sort_key`, :data:`sslkeypoint.data.IMAGE_EXTENSIONS`).
"""

from __future__ import annotations

from iugc_aop.formats.iugc import LAYOUT, IUGCFormatError, IUGCLayoutError, parse_point
from iugc_aop.formats.reader import (
    AOP_TOLERANCE_DEG,
    PARTS,
    DuplicateGroup,
    IUGCDataset,
    Problem,
    read_iugc,
)
from iugc_aop.landmarks import LANDMARK_NAMES
from sslkeypoint.data import IMAGE_EXTENSIONS
from sslkeypoint.data import natural_sort_key as natural_key

IMAGE_SUFFIXES = frozenset(IMAGE_EXTENSIONS)

__all__ = [
    "AOP_TOLERANCE_DEG",
    "IMAGE_SUFFIXES",
    "LANDMARK_NAMES",
    "LAYOUT",
    "PARTS",
    "DuplicateGroup",
    "IUGCDataset",
    "IUGCFormatError",
    "IUGCLayoutError",
    "Problem",
    "natural_key",
    "parse_point",
    "read_iugc",
]
