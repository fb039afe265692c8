"""sslkeypoint: self-supervised pre-training and heatmap keypoint detection on PyTorch.

The names most users need are re-exported here; every module is documented in the API reference.
"""

from __future__ import annotations

from sslkeypoint._version import __version__
from sslkeypoint.augment import (
    KeypointAugmentation,
    MoCoV2Augmentation,
    keypoint_augmentation,
    keypoints_in_frame,
    moco_v2_augmentation,
)
from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig
from sslkeypoint.data import (
    DropCounts,
    FilteringCollate,
    ImageFolderDataset,
    ImageReadError,
    InvalidSample,
    KeypointDataset,
    KeypointRecord,
    TemporalPairDataset,
    filtering_collate,
    list_images,
    read_image,
    read_records,
    split_records,
)
from sslkeypoint.encoders import TimmEncoder, UNetEncoder, create_encoder, list_encoders
from sslkeypoint.export import export_onnx, export_torchscript
from sslkeypoint.geometry import Ellipse, angle_of_progression, fit_ellipse
from sslkeypoint.heatmaps import (
    HeatmapCodec,
    KeypointCodec,
    decode_heatmaps,
    keypoints_to_input,
    keypoints_to_original,
    render_gaussian_heatmaps,
    rescale_keypoints,
)
from sslkeypoint.inference import KeypointPrediction, KeypointPredictor
from sslkeypoint.lightning import (
    HeatmapFinetuneModule,
    KeypointDataModule,
    MoCoPretrainModule,
    PretrainDataModule,
    PretrainModule,
    overfit_one_batch,
)
from sslkeypoint.losses import (
    HeatmapMSELoss,
    MaskedHeatmapMSELoss,
    heatmap_mse_loss,
    masked_heatmap_mse_loss,
)
from sslkeypoint.masks import aop_from_masks, landmarks_from_masks
from sslkeypoint.measures import AngleMeasure, DistanceMeasure, Measure
from sslkeypoint.methods import (
    DenseCLMethod,
    MeanTeacherMethod,
    MoCoV2Method,
    PseudoLabelMethod,
    ReconstructionMethod,
    SupervisedMethod,
)
from sslkeypoint.metrics import (
    KeypointMetrics,
    aop_absolute_error,
    mean_radial_error,
    measure_error,
    radial_error,
    success_detection_rate,
)
from sslkeypoint.models import HeatmapEnsemble, HeatmapUNet, build_heatmap_model
from sslkeypoint.recipes import FinetuneResult, PretrainResult, run_finetuning, run_pretraining
from sslkeypoint.runs import RunFolderError, RunInterrupted
from sslkeypoint.ssl import (
    DenseCL,
    MaskedReconstruction,
    MoCoV2,
    ScreeningResult,
    cap_queue_size,
    reference_similarity,
    screen_sequences,
)
from sslkeypoint.visualize import draw_predictions, render_keypoint_grid
from sslkeypoint.weights import (
    LoadReport,
    UnsafeCheckpointError,
    WeightFileError,
    adapt_input_conv,
    load_partial_state_dict,
    load_state_dict_file,
    save_state_dict,
)

__all__ = [
    "AngleMeasure",
    "DenseCL",
    "DenseCLMethod",
    "DistanceMeasure",
    "DropCounts",
    "Ellipse",
    "FilteringCollate",
    "FinetuneConfig",
    "FinetuneResult",
    "HeatmapCodec",
    "HeatmapEnsemble",
    "HeatmapFinetuneModule",
    "HeatmapMSELoss",
    "HeatmapUNet",
    "ImageFolderDataset",
    "ImageReadError",
    "InvalidSample",
    "KeypointAugmentation",
    "KeypointCodec",
    "KeypointDataModule",
    "KeypointDataset",
    "KeypointMetrics",
    "KeypointPrediction",
    "KeypointPredictor",
    "KeypointRecord",
    "LoadReport",
    "MaskedHeatmapMSELoss",
    "MaskedReconstruction",
    "MeanTeacherMethod",
    "Measure",
    "MoCoPretrainModule",
    "MoCoV2",
    "MoCoV2Augmentation",
    "MoCoV2Method",
    "PretrainConfig",
    "PretrainDataModule",
    "PretrainModule",
    "PretrainResult",
    "PseudoLabelMethod",
    "ReconstructionMethod",
    "RunFolderError",
    "RunInterrupted",
    "ScreeningResult",
    "SupervisedMethod",
    "TemporalPairDataset",
    "TimmEncoder",
    "TrainerConfig",
    "UNetEncoder",
    "UnsafeCheckpointError",
    "WeightFileError",
    "__version__",
    "adapt_input_conv",
    "angle_of_progression",
    "aop_absolute_error",
    "aop_from_masks",
    "build_heatmap_model",
    "cap_queue_size",
    "create_encoder",
    "decode_heatmaps",
    "draw_predictions",
    "export_onnx",
    "export_torchscript",
    "filtering_collate",
    "fit_ellipse",
    "heatmap_mse_loss",
    "keypoint_augmentation",
    "keypoints_in_frame",
    "keypoints_to_input",
    "keypoints_to_original",
    "landmarks_from_masks",
    "list_encoders",
    "list_images",
    "load_partial_state_dict",
    "load_state_dict_file",
    "masked_heatmap_mse_loss",
    "mean_radial_error",
    "measure_error",
    "moco_v2_augmentation",
    "overfit_one_batch",
    "radial_error",
    "read_image",
    "read_records",
    "reference_similarity",
    "render_gaussian_heatmaps",
    "render_keypoint_grid",
    "rescale_keypoints",
    "run_finetuning",
    "run_pretraining",
    "save_state_dict",
    "screen_sequences",
    "split_records",
    "success_detection_rate",
]
