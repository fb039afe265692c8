"""Data formats of the example: the IUGC 2025 layout, the synthetic truth file, the PSFHS data set.

* :mod:`iugc_aop.formats.iugc` defines the IUGC 2025 on-disk format once (folders, file names,
  CSV columns, how points and AoP values are written and parsed); both the reader and the
  synthetic writer use it.
* :mod:`iugc_aop.formats.reader` reads a data set in that layout (:func:`read_iugc`) into an
  :class:`~iugc_aop.formats.dataset.IUGCDataset` (:mod:`iugc_aop.formats.dataset`: records,
  videos and every problem found); :mod:`iugc_aop.formats.checks` checks the image files
  (decoding, formats, sizes, duplicates).
* :mod:`iugc_aop.formats.truth` reads and writes ``synthetic_truth.json``.
* :mod:`iugc_aop.formats.psfhs` reads the PSFHS real-image data set (frames with PS/FH masks,
  PNG or original ``.mha`` layout; :func:`~iugc_aop.formats.psfhs.is_psfhs`,
  :func:`~iugc_aop.formats.psfhs.read_psfhs`) into the same
  :class:`~iugc_aop.formats.dataset.IUGCDataset`, split by similarity group.
"""

from __future__ import annotations

from iugc_aop.formats.dataset import AOP_TOLERANCE_DEG, DuplicateGroup, IUGCDataset, Problem
from iugc_aop.formats.iugc import (
    IUGCFormatError,
    IUGCLayoutError,
    format_aop,
    format_point,
    parse_point,
    write_split_labels,
)
from iugc_aop.formats.psfhs import (
    PSFHSCases,
    PSFHSFormatError,
    PSFHSLayoutError,
    is_psfhs,
    read_mha,
    read_psfhs,
    read_psfhs_cases,
    similarity_groups,
)
from iugc_aop.formats.reader import PARTS, read_iugc
from iugc_aop.formats.truth import TRUTH_NAME, load_truth, write_truth

__all__ = [
    "AOP_TOLERANCE_DEG",
    "PARTS",
    "TRUTH_NAME",
    "DuplicateGroup",
    "IUGCDataset",
    "IUGCFormatError",
    "IUGCLayoutError",
    "PSFHSCases",
    "PSFHSFormatError",
    "PSFHSLayoutError",
    "Problem",
    "format_aop",
    "format_point",
    "is_psfhs",
    "load_truth",
    "parse_point",
    "read_iugc",
    "read_mha",
    "read_psfhs",
    "read_psfhs_cases",
    "similarity_groups",
    "write_split_labels",
    "write_truth",
]
