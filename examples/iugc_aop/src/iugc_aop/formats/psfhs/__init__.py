"""Reader of the PSFHS data set: real transperineal frames with pubic-symphysis / fetal-head masks.

PSFHS (Chen et al., Scientific Data 11, 436, 2024) holds intrapartum transperineal ultrasound
frames with expert segmentations of the pubic symphysis (PS, label 1) and the fetal head (FH,
label 2). Two layouts are read:

* ``"psfhs-png"`` — ``images/NNNNN.png`` (8-bit grayscale) and ``masks/NNNNN.png`` (label maps),
  with an optional ``cases.csv`` (``case,group``) naming a similarity group per case;
* ``"psfhs-mha"`` — the original distribution: ``image_mha/NNNNN.mha`` (three identical channels)
  and ``label_mha/NNNNN.mha``; reading it needs SimpleITK (``pip install "iugc-aop[mha]"``).

The landmarks PS1, PS2, FH1 of every case come from its mask by the 2023 PS/FH challenge rule
(:func:`sslkeypoint.masks.landmarks_from_masks` with ``method="challenge"``, which needs OpenCV):
they are derived from expert masks, not placed by experts as points. A case whose mask is missing,
unreadable or cannot be measured is skipped, with its reason, never silently.

Many cases are near-identical frames of one acquisition;
:func:`~iugc_aop.formats.psfhs.similarity_groups` joins them into groups, and
:func:`~iugc_aop.formats.psfhs.read_psfhs` splits by group, never by case, so no near-duplicate of
an evaluation image is trained on.

The modules, bottom to top:

* :mod:`iugc_aop.formats.psfhs.layout` — the on-disk layout
  (:data:`~iugc_aop.formats.psfhs.layout.LAYOUT`,
  :data:`~iugc_aop.formats.psfhs.layout.CASES_CSV`), :func:`~iugc_aop.formats.psfhs.is_psfhs`
  and the errors :class:`~iugc_aop.formats.psfhs.PSFHSLayoutError` and
  :class:`~iugc_aop.formats.psfhs.PSFHSFormatError`;
* :mod:`iugc_aop.formats.psfhs.groups` — :func:`~iugc_aop.formats.psfhs.similarity_groups`;
* :mod:`iugc_aop.formats.psfhs.mha` — :func:`~iugc_aop.formats.psfhs.read_mha` and the cached
  PNG copies of ``.mha`` frames;
* :mod:`iugc_aop.formats.psfhs.cases` — :func:`~iugc_aop.formats.psfhs.read_psfhs_cases` into
  :class:`~iugc_aop.formats.psfhs.PSFHSCases`: ``cases.csv``, landmarks measured from the masks,
  skipped cases;
* :mod:`iugc_aop.formats.psfhs.reader` — :func:`~iugc_aop.formats.psfhs.read_psfhs`: group
  splits, the label budget and the :class:`~iugc_aop.formats.dataset.IUGCDataset`.
"""

from __future__ import annotations

from iugc_aop.formats.psfhs.cases import PSFHSCases, read_psfhs_cases
from iugc_aop.formats.psfhs.groups import GROUP_SIZE, GROUP_THRESHOLD, similarity_groups
from iugc_aop.formats.psfhs.layout import (
    CASES_CSV,
    LAYOUT,
    PSFHSFormatError,
    PSFHSLayoutError,
    is_psfhs,
)
from iugc_aop.formats.psfhs.mha import read_mha
from iugc_aop.formats.psfhs.reader import read_psfhs

__all__ = [
    "CASES_CSV",
    "GROUP_SIZE",
    "GROUP_THRESHOLD",
    "LAYOUT",
    "PSFHSCases",
    "PSFHSFormatError",
    "PSFHSLayoutError",
    "is_psfhs",
    "read_mha",
    "read_psfhs",
    "read_psfhs_cases",
    "similarity_groups",
]
