"""Inference: images of any size in, landmarks in original pixels (and the AoP) out; export.

:class:`KeypointPredictor` wraps a heatmap network and its :class:`~sslkeypoint.heatmaps.HeatmapCodec`:

1. every image (path, PIL image, numpy array or tensor, any size) is converted to a float
   ``(C, H, W)`` tensor in ``[0, 1]`` with the network's channel count and resized to the codec's
   input size exactly as :class:`~sslkeypoint.data.KeypointDataset` does (bilinear,
   ``align_corners=False``, antialias);
2. the resized images are batched through the network; the heatmaps are decoded to input pixels
   (:meth:`HeatmapCodec.decode`, DARK refinement by default);
3. the keypoints are mapped back to each image's original pixels with
   :func:`~sslkeypoint.heatmaps.keypoints_to_original`, and the Angle of Progression is computed
   when the landmarks are ``PS1, PS2, FH1`` (``aop_indices``).

Export (:meth:`KeypointPredictor.export_onnx`, :meth:`KeypointPredictor.export_torchscript`)
covers step 2 — network plus heatmap decode — as :class:`KeypointDecoder`, whose output is
keypoints in *input* pixels; the resize and the map back stay in Python.

Checkpoints: :meth:`KeypointPredictor.from_checkpoint` reads a fine-tuning Lightning checkpoint
(``.ckpt``) with ``torch.load(weights_only=True)`` — the fine-tuning module stores its
configuration as plain dicts, lists and numbers, so no arbitrary object is ever unpickled — or a
folder written by :meth:`KeypointPredictor.save` (``model.safetensors`` + ``predictor.json``).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sslkeypoint.data import read_image, resize_image
from sslkeypoint.geometry import angle_of_progression
from sslkeypoint.heatmaps import HeatmapCodec, keypoints_to_original

__all__ = [
    "KeypointDecoder",
    "KeypointPrediction",
    "KeypointPredictor",
    "build_heatmap_model",
    "load_image",
]

#: Format version of the ``sslkeypoint`` entry in checkpoints and of ``predictor.json``.
SPEC_VERSION = 1
_SPEC_KEY = "sslkeypoint"
# ITU-R BT.601 luma, as PIL's "L" conversion (equal channels give the channel itself).
_LUMA = (0.299, 0.587, 0.114)


def build_heatmap_model(spec: Mapping[str, Any]) -> nn.Module:
    """Build a :class:`~sslkeypoint.models.HeatmapUNet` from a plain model description.

    Args:
        spec: Mapping with ``encoder`` (a :func:`~sslkeypoint.encoders.create_encoder` name),
            optional ``encoder_kwargs`` (dict), ``in_chans`` (int), ``num_keypoints`` (int) and
            optional ``heatmap_stride`` (int, default 4).

    Returns:
        The (randomly initialised) model; ``spec`` is kept as its ``sslkeypoint_spec`` attribute.

    Raises:
        ValueError: If a required key is missing.
    """
    from sslkeypoint.encoders import create_encoder
    from sslkeypoint.models import HeatmapUNet

    for key in ("encoder", "in_chans", "num_keypoints"):
        if key not in spec:
            raise ValueError(f"model spec needs the key {key!r}; got keys {sorted(spec)}")
    kwargs = dict(spec.get("encoder_kwargs") or {})
    kwargs["in_chans"] = int(spec["in_chans"])
    encoder = create_encoder(str(spec["encoder"]), **kwargs)
    model = HeatmapUNet(encoder, int(spec["num_keypoints"]), heatmap_stride=int(spec.get("heatmap_stride", 4)))
    # Kept on the module so a predictor can write the description back (KeypointPredictor.save).
    model.sslkeypoint_spec = dict(spec)  # type: ignore[assignment]
    return model


def _tensor_to_unit(t: Tensor) -> Tensor:
    """A ``(C, H, W)``/``(H, W)`` tensor as float32 in ``[0, 1]``."""
    t = t.detach().cpu()
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"image tensors must be (C, H, W) or (H, W); got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if t.dtype == torch.uint16:
        return t.float() / 65535.0
    if not t.is_floating_point():
        raise ValueError(f"integer image tensors must be uint8 or uint16; got {t.dtype}")
    return t.float()


def _match_channels(t: Tensor, in_chans: int) -> Tensor:
    """Channel conversion with :func:`~sslkeypoint.data.read_image`'s rules."""
    c = t.shape[0]
    if c == 4:  # drop alpha
        t, c = t[:3], 3
    if c == in_chans:
        return t
    if c == 3 and in_chans == 1:
        if torch.equal(t[0], t[1]) and torch.equal(t[0], t[2]):
            return t[:1].clone()
        w = torch.tensor(_LUMA, dtype=t.dtype).view(3, 1, 1)
        return (t * w).sum(0, keepdim=True).clamp_(0.0, 1.0)
    if c == 1:
        return t.repeat(in_chans, 1, 1)
    raise ValueError(f"cannot convert an image with {c} channels to the network's {in_chans}")


def load_image(image: Any, in_chans: int) -> Tensor:
    """Load or convert one image to a float ``(in_chans, H, W)`` tensor in ``[0, 1]``.

    Paths, encoded bytes, PIL images and numpy arrays go through
    :func:`~sslkeypoint.data.read_image` (decoded by content, whatever the extension), exactly as
    in the datasets; tensors follow the same rules.

    Args:
        image: A path, a PIL image, a numpy array ``(H, W)``/``(H, W, C)`` (``uint8``,
            ``uint16`` or float in ``[0, 1]``) or a tensor ``(C, H, W)``/``(H, W)`` (float in
            ``[0, 1]``, ``uint8`` or ``uint16``).
        in_chans: Channels the network expects. Colour becomes one channel (an exact copy when
            the three channels are equal, else ITU-R BT.601 luma), grey is repeated, alpha is
            dropped.

    Returns:
        ``(in_chans, H, W)`` float32 tensor at the image's original size.

    Raises:
        ValueError: On an unsupported shape, dtype or channel count.
        TypeError: On an unsupported type.
        FileNotFoundError: If a path does not exist.

    Examples:
        >>> import numpy as np
        >>> load_image(np.full((4, 6, 3), 255, dtype=np.uint8), in_chans=1).shape
        torch.Size([1, 4, 6])
    """
    from PIL import Image

    if isinstance(image, Tensor):
        return _match_channels(_tensor_to_unit(image), in_chans)
    if isinstance(image, (str, Path, bytes, bytearray, np.ndarray, Image.Image)):
        return _match_channels(read_image(image), in_chans)
    raise TypeError(f"images must be paths, PIL images, numpy arrays or tensors; got {type(image).__name__}")


class KeypointDecoder(nn.Module):
    """A heatmap network followed by its heatmap decode: images in, input-pixel keypoints out.

    This is the part of :class:`KeypointPredictor` that is exported.

    Args:
        model: Network mapping ``(B, C, H, W)`` to heatmaps ``(B, K, h, w)``.
        codec: The codec the network was trained with.
        refine: Sub-pixel refinement passed to :meth:`HeatmapCodec.decode`.
        blur_kernel: Optional smoothing kernel for the decode.

    Examples:
        >>> import torch
        >>> from sslkeypoint.heatmaps import HeatmapCodec
        >>> codec = HeatmapCodec((16, 16), (8, 8), sigma=1.0)
        >>> net = torch.nn.Sequential(torch.nn.AvgPool2d(2), torch.nn.Conv2d(1, 2, 1))
        >>> kp, scores = KeypointDecoder(net, codec)(torch.rand(3, 1, 16, 16))
        >>> kp.shape, scores.shape
        (torch.Size([3, 2, 2]), torch.Size([3, 2]))
    """

    def __init__(
        self, model: nn.Module, codec: HeatmapCodec, refine: str = "dark", blur_kernel: int | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.codec = codec
        self.refine = refine
        self.blur_kernel = blur_kernel

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(keypoints (B, K, 2) input px, scores (B, K))`` for ``images (B, C, H, W)``."""
        heatmaps = self.model(images)
        return self.codec.decode(heatmaps, refine=self.refine, blur_kernel=self.blur_kernel)  # type: ignore[arg-type]


@dataclass
class KeypointPrediction:
    """Landmarks predicted for ``N`` images.

    Attributes:
        keypoints: ``(N, K, 2)`` ``(x, y)`` in each image's original pixels.
        scores: ``(N, K)`` heatmap peak values (confidence, ``[0, 1]`` for a sigmoid head).
        aop: ``(N,)`` Angle of Progression in degrees, or ``None`` when the landmarks are not
            ``PS1, PS2, FH1``.
        original_sizes: ``(N, 2)`` original ``(H, W)`` of each image.
        keypoint_names: Landmark names, when known.
    """

    keypoints: Tensor
    scores: Tensor
    aop: Tensor | None
    original_sizes: Tensor
    keypoint_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per image: ``keypoints`` (list of ``[x, y]``), ``scores``, ``aop``."""
        out = []
        for i in range(len(self)):
            rec: dict[str, Any] = {
                "keypoints": self.keypoints[i].tolist(),
                "scores": self.scores[i].tolist(),
                "original_size": self.original_sizes[i].tolist(),
            }
            if self.aop is not None:
                rec["aop"] = float(self.aop[i])
            if self.keypoint_names is not None:
                rec["keypoint_names"] = list(self.keypoint_names)
            out.append(rec)
        return out


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_single(images: Any) -> bool:
    if isinstance(images, (str, Path)):
        return True
    if isinstance(images, Tensor):
        return images.ndim in (2, 3)
    if isinstance(images, np.ndarray):
        return True
    from PIL import Image

    return isinstance(images, Image.Image)


class KeypointPredictor:
    """Predict landmarks (and the AoP) for images of any size, in their original pixels.

    Args:
        model: Heatmap network ``(B, C, H, W) -> (B, K, h, w)`` with ``(H, W) ==
            codec.input_size`` and ``(h, w) == codec.heatmap_size``.
        codec: The codec the network was trained with.
        refine: Sub-pixel refinement (``"dark"``, ``"quarter"`` or ``"none"``).
        blur_kernel: Optional odd smoothing kernel applied to the heatmaps before decoding.
        in_chans: Channels the network takes; by default ``model.encoder.in_chans`` (or
            ``model.in_chans``), else 1.
        device: Device to run on.
        batch_size: Images per forward pass.
        keypoint_names: Optional ``K`` landmark names.
        aop_indices: Indices of ``(PS1, PS2, FH1)`` to compute the AoP, or ``None``.

    Examples:
        >>> import torch
        >>> from sslkeypoint.heatmaps import HeatmapCodec
        >>> codec = HeatmapCodec((32, 32), (8, 8), sigma=1.0)
        >>> net = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(1, 3, 1), torch.nn.Sigmoid())
        >>> pred = KeypointPredictor(net, codec, in_chans=1, aop_indices=(0, 1, 2))
        >>> out = pred.predict([torch.rand(1, 64, 48), torch.rand(1, 20, 20)])
        >>> out.keypoints.shape, out.aop.shape
        (torch.Size([2, 3, 2]), torch.Size([2]))
    """

    def __init__(
        self,
        model: nn.Module,
        codec: HeatmapCodec,
        *,
        refine: str = "dark",
        blur_kernel: int | None = None,
        in_chans: int | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        keypoint_names: Sequence[str] | None = None,
        aop_indices: Sequence[int] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if in_chans is None:
            encoder = getattr(model, "encoder", None)
            in_chans = int(getattr(encoder, "in_chans", getattr(model, "in_chans", 1)))
        if aop_indices is not None:
            aop_indices = tuple(int(i) for i in aop_indices)
            if len(aop_indices) != 3:
                raise ValueError(f"aop_indices must be three indices (PS1, PS2, FH1); got {aop_indices}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.codec = codec
        self.refine = refine
        self.blur_kernel = blur_kernel
        self.in_chans = int(in_chans)
        self.batch_size = int(batch_size)
        self.keypoint_names = tuple(keypoint_names) if keypoint_names is not None else None
        self.aop_indices: tuple[int, ...] | None = aop_indices
        self.decoder = KeypointDecoder(self.model, codec, refine=refine, blur_kernel=blur_kernel).eval()

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(H, W)``."""
        return (int(self.codec.input_size[0]), int(self.codec.input_size[1]))

    # ------------------------------------------------------------------ construction
    def spec(self) -> dict[str, Any]:
        """The plain description :meth:`from_checkpoint` rebuilds the predictor from (no weights)."""
        model_spec = getattr(self.model, "sslkeypoint_spec", None)
        if model_spec is None:
            raise ValueError(
                "this model carries no build description (sslkeypoint_spec); only models built by "
                "build_heatmap_model or loaded from a checkpoint can be saved with save()"
            )
        return {
            "version": SPEC_VERSION,
            "model": dict(model_spec),
            "codec": {
                "input_size": list(self.codec.input_size),
                "heatmap_size": list(self.codec.heatmap_size),
                "sigma": float(self.codec.sigma),
            },
            "keypoint_names": list(self.keypoint_names) if self.keypoint_names is not None else None,
            "aop_indices": list(self.aop_indices) if self.aop_indices is not None else None,
            "refine": self.refine,
        }

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], state_dict: Mapping[str, Tensor] | None = None, **overrides: Any
    ) -> KeypointPredictor:
        """Build a predictor from a :meth:`spec` dict and (optionally) the network's weights.

        Args:
            spec: As returned by :meth:`spec` (or stored in a fine-tuning checkpoint).
            state_dict: Weights of the network (keys as in ``model.state_dict()``); loaded
                strictly.
            **overrides: Constructor arguments to override (``device``, ``batch_size``,
                ``refine``, ...).

        Returns:
            The predictor.
        """
        model = build_heatmap_model(spec["model"])
        if state_dict is not None:
            model.load_state_dict(dict(state_dict), strict=True)
        c = spec["codec"]
        codec = HeatmapCodec(tuple(c["input_size"]), tuple(c["heatmap_size"]), float(c["sigma"]))
        kwargs: dict[str, Any] = {
            "refine": spec.get("refine", "dark"),
            "in_chans": int(spec["model"]["in_chans"]),
            "keypoint_names": spec.get("keypoint_names"),
            "aop_indices": spec.get("aop_indices"),
        }
        kwargs.update(overrides)
        return cls(model, codec, **kwargs)

    @classmethod
    def from_checkpoint(cls, path: str | Path, **overrides: Any) -> KeypointPredictor:
        """Rebuild a predictor from a fine-tuning checkpoint, with no other argument needed.

        Accepts a Lightning checkpoint written by :func:`sslkeypoint.tasks.finetune.run_finetuning`
        (read with ``torch.load(weights_only=True)``: only tensors and plain containers), or a
        folder (or its ``model.safetensors``) written by :meth:`save`.

        Args:
            path: ``.ckpt`` file, folder, or ``model.safetensors`` next to ``predictor.json``.
            **overrides: Constructor arguments to override, e.g. ``device="cuda"``.

        Returns:
            The predictor in eval mode.

        Raises:
            FileNotFoundError: If the file does not exist.
            ValueError: If the checkpoint carries no sslkeypoint model description.
        """
        p = Path(path)
        if p.is_dir() or p.suffix == ".safetensors":
            folder = p if p.is_dir() else p.parent
            spec_file = folder / "predictor.json"
            weights = folder / "model.safetensors" if p.is_dir() else p
            if not spec_file.is_file() or not weights.is_file():
                raise FileNotFoundError(f"{folder} needs predictor.json and model.safetensors")
            from sslkeypoint.weights import load_state_dict_file

            spec = json.loads(spec_file.read_text())
            return cls.from_spec(spec, load_state_dict_file(weights), **overrides)
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint not found: {p}")
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
        spec = ckpt.get(_SPEC_KEY) if isinstance(ckpt, Mapping) else None
        if spec is None:
            raise ValueError(
                f"{p} carries no '{_SPEC_KEY}' entry: it was not written by sslkeypoint fine-tuning"
            )
        state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
        return cls.from_spec(spec, state, **overrides)

    def save(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` and ``predictor.json`` to ``folder`` (created).

        The pair is the lightweight deployment format: :meth:`from_checkpoint` reads it back.

        Returns:
            The folder.
        """
        from sslkeypoint.weights import save_state_dict

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        spec = self.spec()
        save_state_dict(self.model, out / "model.safetensors")
        (out / "predictor.json").write_text(json.dumps(spec, indent=2))
        return out

    # ------------------------------------------------------------------ prediction
    def preprocess(self, image: Any) -> tuple[Tensor, tuple[int, int]]:
        """Load one image and resize it to the input size.

        Returns:
            ``(image (C, H_in, W_in), (H, W) original size)``.
        """
        t = load_image(image, self.in_chans)
        size = (int(t.shape[-2]), int(t.shape[-1]))
        return resize_image(t, self.input_size), size

    @torch.inference_mode()
    def predict_batch(self, images: Tensor, original_sizes: Tensor) -> KeypointPrediction:
        """Predict for an already resized batch ``(B, C, H_in, W_in)`` with its ``(B, 2)`` sizes."""
        kp, scores = self.decoder(images.to(self.device))
        kp = keypoints_to_original(kp.float().cpu(), original_sizes.to(torch.float32), self.input_size)
        return KeypointPrediction(kp, scores.float().cpu(), self._aop(kp), original_sizes, self.keypoint_names)

    def _aop(self, kp: Tensor) -> Tensor | None:
        if self.aop_indices is None:
            return None
        i0, i1, i2 = self.aop_indices
        return angle_of_progression(kp[:, i0], kp[:, i1], kp[:, i2])

    def predict(self, images: Any, *, progress: bool = False) -> KeypointPrediction:
        """Predict landmarks for one image or a list of images of any sizes.

        Args:
            images: One image or a sequence of images: paths, PIL images, numpy arrays
                (``(H, W)``/``(H, W, C)``) or tensors (``(C, H, W)``); a ``(B, C, H, W)`` tensor
                is taken as ``B`` images.
            progress: Show a progress bar over batches.

        Returns:
            A :class:`KeypointPrediction` with ``N`` rows (``N = 1`` for a single image), in the
            original pixels of each image.
        """
        if _is_single(images):
            items: Sequence[Any] = [images]
        elif isinstance(images, Tensor):
            items = list(images.unbind(0))
        else:
            items = list(images) if not isinstance(images, Sequence) else images
        if len(items) == 0:
            k = 0
            return KeypointPrediction(
                torch.zeros(0, k, 2), torch.zeros(0, k), None, torch.zeros(0, 2, dtype=torch.long), self.keypoint_names
            )
        batches: Iterable[Sequence[Any]] = _chunks(items, self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=math.ceil(len(items) / self.batch_size), desc="predict", unit="batch")
        parts: list[KeypointPrediction] = []
        for chunk in batches:
            prepared = [self.preprocess(im) for im in chunk]
            x = torch.stack([t for t, _ in prepared])
            sizes = torch.tensor([s for _, s in prepared], dtype=torch.long)
            parts.append(self.predict_batch(x, sizes))
        aops = [p.aop for p in parts]
        return KeypointPrediction(
            keypoints=torch.cat([p.keypoints for p in parts]),
            scores=torch.cat([p.scores for p in parts]),
            aop=torch.cat([a for a in aops if a is not None]) if self.aop_indices is not None else None,
            original_sizes=torch.cat([p.original_sizes for p in parts]),
            keypoint_names=self.keypoint_names,
        )

    # ------------------------------------------------------------------ export
    def _example_input(self, batch_size: int) -> Tensor:
        h, w = self.input_size
        return torch.rand(batch_size, self.in_chans, h, w, device=self.device)

    def export_onnx(
        self, path: str | Path, *, batch_size: int = 1, opset_version: int = 18, dynamo: bool | None = None
    ) -> Path:
        """Export network + heatmap decode (:class:`KeypointDecoder`) to ONNX.

        The graph takes ``images`` ``(B, C, H_in, W_in)`` (dynamic ``B``) in ``[0, 1]`` and returns
        ``keypoints`` ``(B, K, 2)`` in *input* pixels and ``scores`` ``(B, K)``. Resize the image
        to ``input_size`` before and map the keypoints back (:func:`keypoints_to_original`)
        after, as :meth:`predict` does.

        The ``torch.export``-based exporter is tried first; if it fails the TorchScript-based one
        is used (``dynamo=False``). Pass ``dynamo=True``/``False`` to force one.

        Args:
            path: Output ``.onnx`` file (a single file; weights inside).
            batch_size: Batch size of the example input used for tracing.
            opset_version: ONNX opset.
            dynamo: Exporter choice; ``None`` tries both.

        Returns:
            The written path.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        decoder = KeypointDecoder(self.model, self.codec, self.refine, self.blur_kernel).eval()
        x = self._example_input(max(batch_size, 2))
        errors: list[str] = []
        for use_dynamo in ([True, False] if dynamo is None else [dynamo]):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    common: dict[str, Any] = {
                        "input_names": ["images"],
                        "output_names": ["keypoints", "scores"],
                        "opset_version": opset_version,
                        "dynamo": use_dynamo,
                    }
                    if use_dynamo:
                        batch = torch.export.Dim("batch", min=1, max=4096)
                        common.update(external_data=False, verbose=False, dynamic_shapes=({0: batch},))
                    else:
                        common["dynamic_axes"] = {name: {0: "batch"} for name in ("images", "keypoints", "scores")}
                    torch.onnx.export(decoder, (x,), str(out), **common)
                return out
            except Exception as err:  # try the next exporter, report all failures at the end
                errors.append(f"{'dynamo' if use_dynamo else 'torchscript'} exporter: {type(err).__name__}: {err}")
        raise RuntimeError("ONNX export failed:\n" + "\n".join(errors))

    def export_torchscript(self, path: str | Path, *, batch_size: int = 1) -> Path:
        """Export network + heatmap decode (:class:`KeypointDecoder`) as a traced TorchScript file.

        Inputs and outputs as in :meth:`export_onnx`; load with ``torch.jit.load(path)``. The
        trace works for any batch size.

        Args:
            path: Output ``.pt`` file.
            batch_size: Batch size of the example input used for tracing.

        Returns:
            The written path.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        decoder = KeypointDecoder(self.model, self.codec, self.refine, self.blur_kernel).eval()
        x = self._example_input(max(batch_size, 2))
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(decoder, (x,), check_trace=False)
            traced.save(str(out))
        return out
