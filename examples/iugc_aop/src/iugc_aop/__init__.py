"""Worked example of sslkeypoint: the Angle of Progression of IUGC 2025 transperineal ultrasound.

* :mod:`iugc_aop.reader` reads the IUGC 2025 layout into :class:`~sslkeypoint.data.KeypointRecord`
  lists, unlabelled videos and reference frames, and reports what is odd.
* :mod:`iugc_aop.synth` writes synthetic data in exactly that layout, with exact labels.
* :mod:`iugc_aop.plotting` draws contact sheets.
* :mod:`iugc_aop.starter` re-implements the official starter code's heatmap codec (for comparison).
* :mod:`iugc_aop.submission` exports and evaluates challenge submission folders.
* :mod:`iugc_aop.profiles`, :mod:`iugc_aop.pipeline` and :mod:`iugc_aop.report` run the
  three-stage pipeline (pre-training, screening, temporal pre-training, fine-tuning), evaluate it
  and write the report; :mod:`iugc_aop.commands` adds them to the command line.
* :mod:`iugc_aop.cli` is the command line, ``python -m iugc_aop <command>``.
"""

from __future__ import annotations

from iugc_aop.pipeline import (
    VARIANTS,
    run_demo,
    stage_evaluate,
    stage_finetune,
    stage_pretrain,
    stage_pretrain_temporal,
    stage_select,
)
from iugc_aop.plotting import contact_sheet
from iugc_aop.profiles import PROFILES, Profile, get_profile
from iugc_aop.reader import (
    DuplicateGroup,
    IUGCDataset,
    IUGCFormatError,
    IUGCLayoutError,
    Problem,
    parse_point,
    read_iugc,
)
from iugc_aop.starter import StarterCodec
from iugc_aop.submission import evaluate_submission, export_submission, load_submission
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
    "PROFILES",
    "VARIANTS",
    "AoPDistribution",
    "DuplicateGroup",
    "IUGCDataset",
    "IUGCFormatError",
    "IUGCLayoutError",
    "Problem",
    "Profile",
    "Scene",
    "StarterCodec",
    "SynthConfig",
    "SynthResult",
    "contact_sheet",
    "evaluate_submission",
    "export_submission",
    "get_profile",
    "load_submission",
    "load_truth",
    "parse_point",
    "read_iugc",
    "render_scene",
    "run_demo",
    "sample_labels",
    "sample_sequences",
    "stage_evaluate",
    "stage_finetune",
    "stage_pretrain",
    "stage_pretrain_temporal",
    "stage_select",
    "write_synthetic_iugc",
]
