"""Worked example of sslkeypoint: the Angle of Progression of IUGC 2025 transperineal ultrasound.

* :mod:`iugc_aop.reader` reads the IUGC 2025 layout into :class:`~sslkeypoint.data.KeypointRecord`
  lists, unlabelled videos and reference frames, and reports what is odd.
* :mod:`iugc_aop.synth` writes synthetic data in exactly that layout, with exact labels.
* :mod:`iugc_aop.plotting` draws contact sheets.
* :mod:`iugc_aop.cli` is the command line, ``python -m iugc_aop <command>``.
"""

from __future__ import annotations

from iugc_aop.plotting import contact_sheet
from iugc_aop.reader import (
    DuplicateGroup,
    IUGCDataset,
    IUGCFormatError,
    IUGCLayoutError,
    Problem,
    parse_point,
    read_iugc,
)
from iugc_aop.synth import (
    AoPDistribution,
    Scene,
    SynthConfig,
    SynthResult,
    load_truth,
    render_scene,
    sample_labels,
    sample_sequences,
    write_synthetic_iugc,
)

__all__ = [
    "AoPDistribution",
    "DuplicateGroup",
    "IUGCDataset",
    "IUGCFormatError",
    "IUGCLayoutError",
    "Problem",
    "Scene",
    "SynthConfig",
    "SynthResult",
    "contact_sheet",
    "load_truth",
    "parse_point",
    "read_iugc",
    "render_scene",
    "sample_labels",
    "sample_sequences",
    "write_synthetic_iugc",
]
