"""Export a predictor's network and heatmap decode to ONNX or TorchScript.

What is exported is :class:`~sslkeypoint.inference.KeypointDecoder`: the network followed by its
codec's decode. The graph takes ``images`` ``(B, C, H_in, W_in)`` (dynamic ``B``) in ``[0, 1]`` and
returns ``keypoints`` ``(B, K, 2)`` in *input* pixels and ``scores`` ``(B, K)``. Resize an image
to the input size before it and map the keypoints back to the original image after it (the codec's
``to_original``), as :meth:`KeypointPredictor.predict <sslkeypoint.inference.KeypointPredictor.predict>`
does.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sslkeypoint.inference import KeypointDecoder, KeypointPredictor

__all__ = ["export_onnx", "export_torchscript"]


def _example_input(predictor: KeypointPredictor, batch_size: int) -> Tensor:
    h, w = predictor.input_size
    return torch.rand(max(batch_size, 2), predictor.in_chans, h, w, device=predictor.device)


def export_onnx(
    predictor: KeypointPredictor,
    path: str | Path,
    *,
    batch_size: int = 1,
    opset_version: int = 18,
    dynamo: bool | None = None,
) -> Path:
    """Export network + heatmap decode to ONNX (one file, weights inside).

    The ``torch.export``-based exporter is tried first; if it fails the TorchScript-based one
    is used (``dynamo=False``). Pass ``dynamo=True``/``False`` to force one.

    Args:
        predictor: The predictor whose network and codec are exported.
        path: Output ``.onnx`` file.
        batch_size: Batch size of the example input used for tracing.
        opset_version: ONNX opset.
        dynamo: Exporter choice; ``None`` tries both.

    Returns:
        The written path.

    Raises:
        RuntimeError: Listing why every exporter failed.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    decoder = KeypointDecoder(predictor.model, predictor.codec).eval()
    x = _example_input(predictor, batch_size)
    errors: list[str] = []
    for use_dynamo in [True, False] if dynamo is None else [dynamo]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                options: dict[str, Any] = {
                    "input_names": ["images"],
                    "output_names": ["keypoints", "scores"],
                    "opset_version": opset_version,
                    "dynamo": use_dynamo,
                }
                if use_dynamo:
                    batch = torch.export.Dim("batch", min=1, max=4096)
                    options.update(external_data=False, verbose=False, dynamic_shapes=({0: batch},))
                else:
                    options["dynamic_axes"] = {name: {0: "batch"} for name in ("images", "keypoints", "scores")}
                torch.onnx.export(decoder, (x,), str(out), **options)
            return out
        except Exception as err:  # try the next exporter, report all failures at the end
            errors.append(f"{'dynamo' if use_dynamo else 'torchscript'} exporter: {type(err).__name__}: {err}")
    raise RuntimeError("ONNX export failed:\n" + "\n".join(errors))


def export_torchscript(predictor: KeypointPredictor, path: str | Path, *, batch_size: int = 1) -> Path:
    """Export network + heatmap decode as a traced TorchScript file (``torch.jit.load(path)``).

    The trace works for any batch size.

    Args:
        predictor: The predictor whose network and codec are exported.
        path: Output ``.pt`` file.
        batch_size: Batch size of the example input used for tracing.

    Returns:
        The written path.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    decoder = KeypointDecoder(predictor.model, predictor.codec).eval()
    x = _example_input(predictor, batch_size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(decoder, (x,), check_trace=False)
        traced.save(str(out))
    return out
