"""Synthetic transperineal ultrasound in the IUGC 2025 on-disk layout, with exact labels.

* :mod:`iugc_aop.synth.scene`: scene geometry — the probe's fan, the drawn ellipses, the head
  placed in closed form for a target Angle of Progression, landmark coordinate ranges.
* :mod:`iugc_aop.synth.labels`: AoP distributions, data set sizes (:class:`SynthConfig`), scenes
  and their sampling (labelled images, videos, references, test-set duplicates), no pixels.
* :mod:`iugc_aop.synth.render`: one 512×512 frame of a scene.
* :mod:`iugc_aop.synth.write`: a whole data set in the real layout (see :mod:`iugc_aop.formats`),
  so the real reader is what runs on it, plus ``synthetic_truth.json`` (:func:`load_truth`).
"""

from __future__ import annotations

from iugc_aop.formats.truth import load_truth
from iugc_aop.synth.labels import (
    PRESETS,
    SEQUENCE_KINDS,
    TESTING_AOP,
    TRAIN_AOP,
    VALIDATION_AOP,
    AoPDistribution,
    Scene,
    SequenceSpec,
    SynthConfig,
    sample_duplicates,
    sample_labels,
    sample_references,
    sample_scene,
    sample_sequences,
)
from iugc_aop.synth.render import render_scene
from iugc_aop.synth.scene import (
    IMAGE_SIZE,
    IUGC_RANGES,
    CoordinateRanges,
    DrawnEllipse,
    Fan,
    place_head,
    rigid_transform,
)
from iugc_aop.synth.write import (
    WRITING_NAME,
    SyntheticFolderError,
    SynthResult,
    check_synthetic_folder,
    holds_synthetic_iugc,
    write_synthetic_iugc,
)

__all__ = [
    "IMAGE_SIZE",
    "IUGC_RANGES",
    "PRESETS",
    "SEQUENCE_KINDS",
    "TESTING_AOP",
    "TRAIN_AOP",
    "VALIDATION_AOP",
    "WRITING_NAME",
    "AoPDistribution",
    "CoordinateRanges",
    "DrawnEllipse",
    "Fan",
    "Scene",
    "SequenceSpec",
    "SynthConfig",
    "SynthResult",
    "SyntheticFolderError",
    "check_synthetic_folder",
    "holds_synthetic_iugc",
    "load_truth",
    "place_head",
    "render_scene",
    "rigid_transform",
    "sample_duplicates",
    "sample_labels",
    "sample_references",
    "sample_scene",
    "sample_sequences",
    "write_synthetic_iugc",
]
