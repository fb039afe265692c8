"""Worked example of sslkeypoint: the Angle of Progression of IUGC 2025 transperineal ultrasound.

* :mod:`iugc_aop.landmarks` — the landmarks ``PS1, PS2, FH1`` and the AoP as a library measure.
* :mod:`iugc_aop.formats` — the IUGC 2025 on-disk format (one definition for the reader and the
  synthetic writer), the reader, the synthetic ground-truth file.
* :mod:`iugc_aop.synth` — synthetic data in exactly that layout, with exact labels.
* :mod:`iugc_aop.plotting` — contact sheets.
* :mod:`iugc_aop.starter_codec` — the official starter code's heatmap codec, as a library codec.
* :mod:`iugc_aop.profiles` and :mod:`iugc_aop.variants` — run sizes built from the library's
  configs, and the model variants of the report.
* :mod:`iugc_aop.stages` — the resumable stages (pre-training, screening, temporal pre-training,
  fine-tuning, evaluation); :mod:`iugc_aop.demo` runs them all and :mod:`iugc_aop.report` writes
  the report.
* :mod:`iugc_aop.submission` — exports and evaluates challenge submission folders.
* :mod:`iugc_aop.cli` — the command line, ``python -m iugc_aop <command>``
  (:mod:`iugc_aop.commands`, :mod:`iugc_aop.predict`).
"""

from __future__ import annotations

from iugc_aop.demo import DemoResult, run_demo
from iugc_aop.formats import (
    DuplicateGroup,
    IUGCDataset,
    IUGCFormatError,
    IUGCLayoutError,
    Problem,
    parse_point,
    read_iugc,
)
from iugc_aop.formats.truth import load_truth
from iugc_aop.landmarks import AOP, LANDMARK_NAMES, MEASURES
from iugc_aop.plotting import contact_sheet
from iugc_aop.profiles import PROFILES, Profile, get_profile
from iugc_aop.stages import (
    stage_evaluate,
    stage_finetune,
    stage_pretrain,
    stage_pretrain_temporal,
    stage_select,
)
from iugc_aop.starter_codec import StarterCodec
from iugc_aop.submission import evaluate_submission, export_submission, load_submission
from iugc_aop.synth import (
    AoPDistribution,
    Scene,
    SynthConfig,
    SynthResult,
    render_scene,
    sample_labels,
    sample_sequences,
    write_synthetic_iugc,
)
from iugc_aop.variants import VARIANTS, Variant

__all__ = [
    "AOP",
    "LANDMARK_NAMES",
    "MEASURES",
    "PROFILES",
    "VARIANTS",
    "AoPDistribution",
    "DemoResult",
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
    "Variant",
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
