"""sslkeypoint: self-supervised pre-training and heatmap keypoint detection on PyTorch.

The names most users need are re-exported here; every module is documented in the API reference.
They are imported on first use, so that ``import sslkeypoint`` and the command line's ``--help``
do not load torch, Lightning and every dependency up front.
"""

from __future__ import annotations

import importlib
from typing import Any

from sslkeypoint._version import __version__ as __version__

#: Public name → the module that defines it (imported when the name is first used).
_EXPORTS: dict[str, str] = {
    "AngleMeasure": "sslkeypoint.measures",
    "DenseCL": "sslkeypoint.ssl",
    "DenseCLMethod": "sslkeypoint.methods",
    "DistanceMeasure": "sslkeypoint.measures",
    "DropCounts": "sslkeypoint.data",
    "Ellipse": "sslkeypoint.geometry",
    "FilteringCollate": "sslkeypoint.data",
    "FinetuneConfig": "sslkeypoint.configs",
    "FinetuneResult": "sslkeypoint.recipes",
    "HeatmapCodec": "sslkeypoint.heatmaps",
    "HeatmapEnsemble": "sslkeypoint.models",
    "HeatmapFinetuneModule": "sslkeypoint.lightning",
    "HeatmapMSELoss": "sslkeypoint.losses",
    "HeatmapUNet": "sslkeypoint.models",
    "ImageFolderDataset": "sslkeypoint.data",
    "ImageReadError": "sslkeypoint.data",
    "InvalidSample": "sslkeypoint.data",
    "KeypointAugmentation": "sslkeypoint.augment",
    "KeypointCodec": "sslkeypoint.heatmaps",
    "KeypointDataModule": "sslkeypoint.lightning",
    "KeypointDataset": "sslkeypoint.data",
    "KeypointMetrics": "sslkeypoint.metrics",
    "KeypointPrediction": "sslkeypoint.prediction",
    "KeypointPredictor": "sslkeypoint.inference",
    "KeypointRecord": "sslkeypoint.data",
    "LoadReport": "sslkeypoint.weights",
    "MaskedHeatmapMSELoss": "sslkeypoint.losses",
    "MaskedReconstruction": "sslkeypoint.ssl",
    "MeanTeacherMethod": "sslkeypoint.methods",
    "Measure": "sslkeypoint.measures",
    "MoCoPretrainModule": "sslkeypoint.lightning",
    "MoCoV2": "sslkeypoint.ssl",
    "MoCoV2Augmentation": "sslkeypoint.augment",
    "MoCoV2Method": "sslkeypoint.methods",
    "PretrainConfig": "sslkeypoint.configs",
    "PretrainDataModule": "sslkeypoint.lightning",
    "PretrainModule": "sslkeypoint.lightning",
    "PretrainResult": "sslkeypoint.recipes",
    "PseudoLabelMethod": "sslkeypoint.methods",
    "ReconstructionMethod": "sslkeypoint.methods",
    "RunFolderError": "sslkeypoint.runs",
    "RunInterrupted": "sslkeypoint.runs",
    "ScreeningResult": "sslkeypoint.ssl",
    "SupervisedMethod": "sslkeypoint.methods",
    "TemporalPairDataset": "sslkeypoint.data",
    "TimmEncoder": "sslkeypoint.encoders",
    "TrainerConfig": "sslkeypoint.configs",
    "UNetEncoder": "sslkeypoint.encoders",
    "UnsafeCheckpointError": "sslkeypoint.weights",
    "WeightFileError": "sslkeypoint.weights",
    "adapt_input_conv": "sslkeypoint.weights",
    "angle_of_progression": "sslkeypoint.geometry",
    "aop_absolute_error": "sslkeypoint.metrics",
    "aop_from_masks": "sslkeypoint.masks",
    "build_heatmap_model": "sslkeypoint.models",
    "cap_queue_size": "sslkeypoint.ssl",
    "create_encoder": "sslkeypoint.encoders",
    "decode_heatmaps": "sslkeypoint.heatmaps",
    "draw_predictions": "sslkeypoint.visualize",
    "export_onnx": "sslkeypoint.export",
    "export_torchscript": "sslkeypoint.export",
    "filtering_collate": "sslkeypoint.data",
    "fit_ellipse": "sslkeypoint.geometry",
    "heatmap_mse_loss": "sslkeypoint.losses",
    "keypoint_augmentation": "sslkeypoint.augment",
    "keypoints_in_frame": "sslkeypoint.augment",
    "keypoints_to_input": "sslkeypoint.heatmaps",
    "keypoints_to_original": "sslkeypoint.heatmaps",
    "landmarks_from_masks": "sslkeypoint.masks",
    "list_encoders": "sslkeypoint.encoders",
    "list_images": "sslkeypoint.data",
    "load_partial_state_dict": "sslkeypoint.weights",
    "load_state_dict_file": "sslkeypoint.weights",
    "masked_heatmap_mse_loss": "sslkeypoint.losses",
    "mean_radial_error": "sslkeypoint.metrics",
    "measure_error": "sslkeypoint.metrics",
    "moco_v2_augmentation": "sslkeypoint.augment",
    "overfit_one_batch": "sslkeypoint.lightning",
    "radial_error": "sslkeypoint.metrics",
    "read_image": "sslkeypoint.data",
    "read_records": "sslkeypoint.data",
    "reference_similarity": "sslkeypoint.ssl",
    "render_gaussian_heatmaps": "sslkeypoint.heatmaps",
    "render_keypoint_grid": "sslkeypoint.visualize",
    "rescale_keypoints": "sslkeypoint.heatmaps",
    "run_finetuning": "sslkeypoint.recipes",
    "run_pretraining": "sslkeypoint.recipes",
    "save_state_dict": "sslkeypoint.weights",
    "screen_sequences": "sslkeypoint.ssl",
    "split_records": "sslkeypoint.data",
    "success_detection_rate": "sslkeypoint.metrics",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sslkeypoint' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
