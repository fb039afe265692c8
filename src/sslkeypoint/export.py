"""Export a predictor's network and heatmap decode to ONNX or TorchScript.

Two graphs can be exported:

* ``original_pixels=True`` (:class:`OriginalPixelsDecoder`; ONNX): the graph takes ``image``
  ``(B, C, H, W)`` float32 in ``[0, 1]`` at the image's *own* size (any ``H``, ``W``), resizes it
  to the network input inside (bilinear, ``align_corners=False``, antialiased, as
  :func:`~sslkeypoint.data.resize_image`), and returns ``keypoints`` ``(B, K, 2)`` ``(x, y)`` in
  the image's own pixels and ``scores`` ``(B, K)``. A deployment then needs only an image decoder:
  no resize to re-implement, no coordinates to map back.
* the default (:class:`~sslkeypoint.inference.KeypointDecoder`): ``images`` ``(B, C, H_in, W_in)``
  already resized to the input size; ``keypoints`` in *input* pixels (map them back with
  :func:`~sslkeypoint.heatmaps.keypoints_to_original`: ``x' = (x + 0.5)·W/W_in − 0.5``, not a plain
  scale).

Every ONNX file carries its description as metadata (:func:`onnx_metadata` reads it with
onnxruntime alone): input size, channels, the pixel range and resize, which pixels the keypoints
are in, landmark names, the codec and the measures.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslkeypoint._version import __version__
from sslkeypoint.atomic import atomic_path
from sslkeypoint.heatmaps import KeypointCodec, codec_to_dict
from sslkeypoint.inference import KeypointDecoder, KeypointPredictor
from sslkeypoint.measures import measures_to_dict

__all__ = ["OriginalPixelsDecoder", "export_onnx", "export_torchscript", "onnx_metadata"]


class OriginalPixelsDecoder(nn.Module):
    """Resize, network, decode and map back: images at their own size in, keypoints in their pixels out.

    Args:
        model: The heatmap network.
        codec: Its codec (``input_size`` is the network input).

    Examples:
        >>> import torch
        >>> from sslkeypoint import HeatmapCodec
        >>> codec = HeatmapCodec((32, 32), (16, 16), sigma=1.0)
        >>> class Fixed(torch.nn.Module):  # emits the heatmaps of one input-space point
        ...     def forward(self, x):
        ...         return codec.encode(torch.tensor([[[15.5, 7.5]]]).expand(x.shape[0], 1, 2))
        >>> keypoints, _ = OriginalPixelsDecoder(Fixed(), codec)(torch.rand(1, 1, 64, 128))
        >>> keypoints.round(decimals=2).tolist()  # x = (15.5 + 0.5) * 128/32 - 0.5
        [[[63.5, 15.5]]]
    """

    def __init__(self, model: nn.Module, codec: KeypointCodec) -> None:
        super().__init__()
        self.model = model
        self.codec = codec
        self.input_size = tuple(int(v) for v in codec.input_size)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, C, H, W)`` in ``[0, 1]`` → ``(keypoints (B, K, 2) in the image's pixels, scores (B, K))``."""
        h_in, w_in = self.input_size
        x = F.interpolate(image, size=(h_in, w_in), mode="bilinear", align_corners=False, antialias=True)
        keypoints, scores = self.codec.decode(self.model(x))
        ones = torch.ones((), dtype=keypoints.dtype, device=keypoints.device)
        scale = torch.stack([ones * image.shape[-1] / w_in, ones * image.shape[-2] / h_in])
        return (keypoints + 0.5) * scale - 0.5, scores


def _metadata(predictor: KeypointPredictor, original_pixels: bool) -> dict[str, str]:
    h, w = predictor.input_size
    return {
        "producer": f"sslkeypoint {__version__}",
        "input": "image" if original_pixels else "images",
        "input_size": json.dumps([h, w]),
        "in_chans": str(predictor.in_chans),
        "pixel_range": "float32 in [0, 1]: 8-bit values / 255; no mean or std normalisation",
        "channels": "1: grayscale (colour images converted; equal channels taken as one)"
        if predictor.in_chans == 1 else f"{predictor.in_chans}: RGB (grayscale repeated)",
        "resize": "inside the graph: any (H, W) in" if original_pixels
        else f"to ({h}, {w}) before the graph: bilinear, align_corners=False, antialiased (torch)",
        "keypoint_space": "original" if original_pixels else "input",
        "keypoints": "(B, K, 2) (x, y); integer coordinates are pixel centres"
        + ("" if original_pixels else f"; original x = (x + 0.5) * W / {w} - 0.5, likewise y with H / {h}"),
        "keypoint_names": json.dumps(list(predictor.keypoint_names) if predictor.keypoint_names else None),
        "codec": json.dumps(codec_to_dict(predictor.codec)),
        "measures": json.dumps(measures_to_dict(predictor.measures)),
    }


def _add_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The description an exported ONNX file carries, read with onnxruntime alone.

    Returns:
        Key → value; JSON values (``input_size``, ``keypoint_names``, ``codec``, ``measures``)
        decoded.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raw = dict(session.get_modelmeta().custom_metadata_map)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value) if key in ("input_size", "keypoint_names", "codec", "measures") else value
        except json.JSONDecodeError:
            out[key] = value
    return out


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
    original_pixels: bool = False,
) -> Path:
    """Export network + heatmap decode to ONNX (one file, weights and description inside).

    The ``torch.export``-based exporter is tried first; if it fails the TorchScript-based one
    is used (``dynamo=False``). Pass ``dynamo=True``/``False`` to force one.

    Args:
        predictor: The predictor whose network and codec are exported.
        path: Output ``.onnx`` file.
        batch_size: Batch size of the example input used for tracing.
        opset_version: ONNX opset (at least 18 with ``original_pixels``: antialiased resize).
        dynamo: Exporter choice; ``None`` tries both.
        original_pixels: Export :class:`OriginalPixelsDecoder`: the image at its own size in,
            keypoints in its pixels out (needs the ``torch.export``-based exporter).

    Returns:
        The written path.

    Raises:
        ValueError: If ``original_pixels`` is asked with ``dynamo=False`` or an opset below 18.
        RuntimeError: Listing why every exporter failed.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if original_pixels and (dynamo is False or opset_version < 18):
        raise ValueError("original_pixels=True needs the torch.export-based exporter (dynamo) and opset >= 18")
    module: nn.Module = (OriginalPixelsDecoder if original_pixels else KeypointDecoder)(predictor.model, predictor.codec)
    module = module.eval()
    x = _example_input(predictor, batch_size)
    if original_pixels:
        h, w = predictor.input_size
        x = torch.rand(x.shape[0], x.shape[1], h + 7, w + 13, device=x.device)  # any size but the input's
    name = "image" if original_pixels else "images"
    errors: list[str] = []
    for use_dynamo in ([True] if original_pixels else [True, False]) if dynamo is None else [dynamo]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                options: dict[str, Any] = {
                    "input_names": [name],
                    "output_names": ["keypoints", "scores"],
                    "opset_version": opset_version,
                    "dynamo": use_dynamo,
                }
                if use_dynamo:
                    axes: dict[int, Any] = {0: torch.export.Dim("batch", min=1, max=4096)}
                    if original_pixels:
                        axes.update({2: torch.export.Dim("height", min=2, max=16384),
                                     3: torch.export.Dim("width", min=2, max=16384)})
                    options.update(external_data=False, verbose=False, dynamic_shapes=(axes,))
                else:
                    options["dynamic_axes"] = {n: {0: "batch"} for n in (name, "keypoints", "scores")}
                # Written beside ``out`` and put in place whole: a failed exporter leaves no partial file.
                with atomic_path(out) as tmp:
                    torch.onnx.export(module, (x,), str(tmp), **options)
                    _add_metadata(tmp, _metadata(predictor, original_pixels))
            return out
        except OSError:  # the file system refused (a folder at ``path``, a full disk): no exporter does better
            raise
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
        with atomic_path(out) as tmp:
            traced.save(str(tmp))
    return out
