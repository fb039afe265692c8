"""Safe weight files, partial loading with a report, and input-channel adaptation.

Weights are stored as `safetensors <https://huggingface.co/docs/safetensors>`_ and read either from
safetensors or from torch files with ``torch.load(..., weights_only=True)``: a checkpoint that would
need arbitrary objects unpickled is refused. Loading into a module is partial and never silent:
:func:`load_partial_state_dict` copies what matches by name and shape and returns a
:class:`LoadReport` of what was loaded, missing, unexpected, shape-mismatched and adapted; it raises
when nothing matched.

The flows most users need, one call each:

* a self-supervised checkpoint (keys under ``module.``, ``backbone.``, ``encoder.`` ...) into the
  encoder of a :class:`~sslkeypoint.models.HeatmapUNet`::

      report = load_partial_state_dict(
          model.encoder, "moco.ckpt", strip_prefix=("module.", "backbone.", "encoder.")
      )
      print(report)

* a timm weight file into a :class:`~sslkeypoint.encoders.TimmEncoder` (class-head keys are
  reported as unexpected, the first convolution is adapted to ``in_chans``)::

      encoder = TimmEncoder("resnet18", in_chans=1, pretrained_file="resnet18.safetensors")
      print(encoder.load_report)

* a whole-model checkpoint saved as ``{"model_state_dict": ..., "epoch": ...}`` (the containers
  ``state_dict`` -- Lightning checkpoints included --, ``model_state_dict``, ``model`` and
  ``module`` are unwrapped by :func:`load_state_dict_file`)::

      report = load_partial_state_dict(model, "unet_epoch_99.pth", strip_prefix=("model.",))

Missing keys are expected in most of these flows (a fresh decoder, a new head), so nothing is
warned: the report is returned and callers log ``str(report)``.

The metadata of a safetensors file (e.g. the encoder a pre-training run saved, which
:func:`~sslkeypoint.encoders.load_pretrained_encoder` rebuilds from it) is read by
:func:`weight_file_metadata`.

Every file is read by :func:`read_weight_file`, which says what is wrong with an unusable one: a
:class:`WeightFileError` names the file and what it holds instead of weights (a folder, an empty
file, text, an image, a TorchScript program, a truncated or damaged checkpoint).
:class:`UnsafeCheckpointError`, its subclass, refuses a torch file that would need arbitrary
objects unpickled, and names them.
"""

from __future__ import annotations

from sslkeypoint.weights.files import (
    CONTAINER_KEYS,
    UnsafeCheckpointError,
    WeightFileError,
    check_weight_path,
    load_state_dict_file,
    read_weight_file,
    save_state_dict,
)
from sslkeypoint.weights.metadata import weight_file_metadata
from sslkeypoint.weights.partial import LoadReport, adapt_input_conv, load_partial_state_dict

__all__ = [
    "CONTAINER_KEYS",
    "LoadReport",
    "UnsafeCheckpointError",
    "WeightFileError",
    "adapt_input_conv",
    "check_weight_path",
    "load_partial_state_dict",
    "load_state_dict_file",
    "read_weight_file",
    "save_state_dict",
    "weight_file_metadata",
]
