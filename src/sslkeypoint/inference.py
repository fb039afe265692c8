"""Inference: images of any size in, landmarks in original pixels (and named measures) out.

:class:`KeypointPredictor` wraps a heatmap network and its :class:`~sslkeypoint.heatmaps.KeypointCodec`:

1. every image (path, PIL image, numpy array or tensor, any size) is decoded with
   :func:`~sslkeypoint.data.read_image` to a float ``(C, H, W)`` tensor in ``[0, 1]`` with the
   network's channel count and resized to the codec's input size exactly as
   :class:`~sslkeypoint.data.KeypointDataset` does (bilinear, ``align_corners=False``, antialias);
2. the resized images are batched through the network and the codec decodes the heatmaps to
   input pixels (:class:`KeypointDecoder`, the part :mod:`sslkeypoint.export` writes to ONNX or
   TorchScript);
3. the codec maps the keypoints back to each image's original pixels and the named measures
   (:mod:`sslkeypoint.measures`, e.g. the Angle of Progression) are computed from them.

Checkpoints: :meth:`KeypointPredictor.from_checkpoint` reads a fine-tuning Lightning checkpoint
(``.ckpt``) with ``torch.load(weights_only=True)`` — the fine-tuning module stores its description
(:func:`predictor_spec`: model, codec, landmark names, measures) as plain dicts, lists and numbers,
so no arbitrary object is ever unpickled — or a folder written by :meth:`KeypointPredictor.save`
(``model.safetensors`` + ``predictor.json``). The codec is rebuilt exactly as it was trained.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sslkeypoint._predictor_files import (
    SPEC_KEY,
    SPEC_VERSION,
    checkpoint_contents,
    not_a_predictor_folder,
    predictor_spec,
    spec_parts,
)
from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.data.image_values import _check_float_tensor
from sslkeypoint.data.images import read_image, resize_image
from sslkeypoint.heatmaps import KeypointCodec
from sslkeypoint.measures import (
    Measure,
    compute_measures,
    measure_unit,
    measures_to_dict,
    pixel_size_tensor,
    validate_measures,
)
from sslkeypoint.models import HeatmapEnsemble, build_heatmap_model
from sslkeypoint.prediction import KeypointPrediction as KeypointPrediction  # its home before 0.9
from sslkeypoint.weights import (
    WeightFileError,
    load_state_dict_file,
    read_weight_file,
    save_state_dict,
)

__all__ = [
    "SPEC_KEY",
    "SPEC_VERSION",
    "KeypointDecoder",
    "KeypointPredictor",
    "predictor_spec",
]

class KeypointDecoder(nn.Module):
    """A heatmap network followed by its codec's decode: images in, input-pixel keypoints out.

    This is the part of :class:`KeypointPredictor` that :mod:`sslkeypoint.export` exports.

    Args:
        model: Network mapping ``(B, C, H, W)`` to heatmaps ``(B, K, h, w)``.
        codec: The codec the network was trained with.

    Examples:
        >>> import torch
        >>> from sslkeypoint.heatmaps import HeatmapCodec
        >>> codec = HeatmapCodec((16, 16), (8, 8), sigma=1.0)
        >>> net = torch.nn.Sequential(torch.nn.AvgPool2d(2), torch.nn.Conv2d(1, 2, 1))
        >>> kp, scores = KeypointDecoder(net, codec)(torch.rand(3, 1, 16, 16))
        >>> kp.shape, scores.shape
        (torch.Size([3, 2, 2]), torch.Size([3, 2]))
    """

    def __init__(self, model: nn.Module, codec: KeypointCodec) -> None:
        super().__init__()
        self.model = model
        self.codec = codec

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(keypoints (B, K, 2) input px, scores (B, K))`` for ``images (B, C, H, W)``."""
        return self.codec.decode(self.model(images))


def _per_image_sizes(pixel_size: Any, n: int) -> Tensor:
    """``(n, 2)`` float32 pixel sizes from one size for all images or one per image (None: NaN)."""
    if isinstance(pixel_size, int | float) or (
        isinstance(pixel_size, tuple) and len(pixel_size) == 2 and n != 2
        and all(isinstance(v, int | float) for v in pixel_size)
    ):
        return pixel_size_tensor(torch.as_tensor(pixel_size, dtype=torch.float32), (n,), torch.zeros((), dtype=torch.float32))
    values = [math.nan if v is None else v for v in (pixel_size.tolist() if isinstance(pixel_size, Tensor) else pixel_size)]
    if len(values) != n:
        raise ValueError(f"pixel_size: expected one size for all images or one per image ({n}); got {len(values)}")
    rows = [[v, v] if isinstance(v, int | float) else list(v) for v in values]
    return pixel_size_tensor(torch.tensor(rows, dtype=torch.float32), (n,), torch.zeros((), dtype=torch.float32))


def _check_batch(images: Tensor, original_sizes: Tensor) -> None:
    """Refuse a resized batch that :meth:`KeypointPredictor.predict_batch` cannot read right."""
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"predict_batch: images must be a (B, C, H, W) tensor; got {shape}")
    if not images.is_floating_point():
        raise ValueError(
            f"predict_batch: images must be floats in [0, 1], as preprocess() returns them; got {images.dtype}"
        )
    b = images.shape[0]
    sizes = torch.as_tensor(original_sizes)
    if tuple(sizes.shape) != (b, 2):
        raise ValueError(f"predict_batch: original_sizes must have shape (B, 2) = ({b}, 2); got {tuple(sizes.shape)}")
    if b and not bool((sizes > 0).all()):
        raise ValueError(f"predict_batch: original_sizes must be positive (H, W); got {sizes.tolist()}"[:300])
    if b == 0 or images.numel() == 0:
        return
    flat = images.detach().flatten(1)
    odd = ~torch.isfinite(flat) | (flat < 0) | (flat > 1)
    bad = odd.any(dim=1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        _check_float_tensor(images[i].detach().float().cpu(), f"predict_batch: image {i}")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_single(images: Any) -> bool:
    if isinstance(images, str | Path):
        return True
    if isinstance(images, Tensor):
        return images.ndim in (2, 3)
    if isinstance(images, np.ndarray):
        return True
    from PIL import Image

    return isinstance(images, Image.Image)


class KeypointPredictor:
    """Predict landmarks (and named measures) for images of any size, in their original pixels.

    Args:
        model: Heatmap network ``(B, C, H, W) -> (B, K, h, w)`` with ``(H, W) ==
            codec.input_size`` and ``(h, w) == codec.heatmap_size``.
        codec: The codec the network was trained with.
        measures: Name → :class:`~sslkeypoint.measures.Measure` to compute on every prediction.
        keypoint_names: Optional ``K`` landmark names.
        in_chans: Channels the network takes; by default ``model.encoder.in_chans`` (or
            ``model.in_chans``), else 1.
        device: Device to run on.
        batch_size: Images per forward pass.

    Examples:
        >>> import torch
        >>> from sslkeypoint.measures import AngleMeasure
        >>> from sslkeypoint.heatmaps import HeatmapCodec
        >>> codec = HeatmapCodec((32, 32), (8, 8), sigma=1.0)
        >>> net = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(1, 3, 1), torch.nn.Sigmoid())
        >>> pred = KeypointPredictor(net, codec, measures={"aop": AngleMeasure(0, 1, 2)}, in_chans=1)
        >>> out = pred.predict([torch.rand(1, 64, 48), torch.rand(1, 20, 20)])
        >>> out.keypoints.shape, out.measures["aop"].shape
        (torch.Size([2, 3, 2]), torch.Size([2]))
    """

    def __init__(
        self,
        model: nn.Module,
        codec: KeypointCodec,
        *,
        measures: Mapping[str, Measure] | None = None,
        keypoint_names: Sequence[str] | None = None,
        in_chans: int | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if not isinstance(codec, KeypointCodec):
            raise ValueError(f"codec must implement KeypointCodec (encode, decode, to_original); got {type(codec).__name__}")
        if in_chans is None:
            encoder = getattr(model, "encoder", None)
            in_chans = int(getattr(encoder, "in_chans", getattr(model, "in_chans", 1)))
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.codec = codec
        self.measures = validate_measures(measures)
        self.in_chans = int(in_chans)
        self.batch_size = int(batch_size)
        self.keypoint_names = tuple(keypoint_names) if keypoint_names is not None else None
        self.decoder = KeypointDecoder(self.model, codec).eval()

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
        return predictor_spec(model_spec, self.codec, self.keypoint_names, self.measures)

    @classmethod
    def from_spec(
        cls,
        spec: Mapping[str, Any],
        state_dict: Mapping[str, Tensor] | None = None,
        *,
        refine: str | None = None,
        **overrides: Any,
    ) -> KeypointPredictor:
        """Build a predictor from a :meth:`spec` dict and (optionally) the network's weights.

        Args:
            spec: As returned by :meth:`spec` or :func:`predictor_spec` (or stored in a fine-tuning
                checkpoint).
            state_dict: Weights of the network (keys as in ``model.state_dict()``); loaded
                strictly.
            refine: Decode with another sub-pixel refinement than the stored codec's (for codecs
                with a ``refine`` field, such as :class:`~sslkeypoint.heatmaps.HeatmapCodec`).
            **overrides: Constructor arguments to override (``device``, ``batch_size``,
                ``codec``, ``measures``, ...).

        Returns:
            The predictor.
        """
        model = build_heatmap_model(spec["model"])
        if state_dict is not None:
            model.load_state_dict(dict(state_dict), strict=True)
        return cls._assemble(spec, model, refine, overrides)

    @classmethod
    def _assemble(
        cls, spec: Mapping[str, Any], model: nn.Module, refine: str | None, overrides: Mapping[str, Any]
    ) -> KeypointPredictor:
        """The predictor of a built ``model`` and the codec, measures and names of ``spec``."""
        codec, measures = spec_parts(spec)
        if refine is not None:
            if not dataclasses.is_dataclass(codec) or "refine" not in {f.name for f in dataclasses.fields(codec)}:
                raise ValueError(f"{type(codec).__name__} has no 'refine' setting to override")
            codec = dataclasses.replace(codec, refine=refine)  # type: ignore[type-var]
        kwargs: dict[str, Any] = {
            "codec": codec,
            "measures": measures,
            "in_chans": int(spec["model"]["in_chans"]),
            "keypoint_names": spec.get("keypoint_names"),
        }
        kwargs.update(overrides)
        return cls(model, **kwargs)

    @classmethod
    def ensemble(cls, predictors: Sequence[KeypointPredictor], **overrides: Any) -> KeypointPredictor:
        """One predictor whose network is the :class:`~sslkeypoint.models.HeatmapEnsemble` of several.

        The members' heatmaps are averaged and decoded once, with the codec, measures and landmark
        names they share; a prediction costs one forward pass per member. Members that were built
        by :func:`~sslkeypoint.models.build_heatmap_model` or loaded from checkpoints keep their
        descriptions, so the ensemble saves (:meth:`save`) and loads back (:meth:`from_checkpoint`)
        as one predictor folder.

        Args:
            predictors: The predictors to combine (at least one), e.g. the
                :meth:`from_checkpoint` of several fine-tuning runs.
            **overrides: Constructor arguments to override (``device``, ``batch_size``); by
                default the first predictor's.

        Returns:
            The ensemble's predictor.

        Raises:
            ValueError: With no predictor, or predictors whose codecs, measures, landmark names or
                input channels differ (the message names the first that differs).

        Examples:
            >>> import torch
            >>> from sslkeypoint.heatmaps import HeatmapCodec
            >>> codec = HeatmapCodec((32, 32), (8, 8), sigma=1.0)
            >>> nets = [torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(1, 3, 1)) for _ in range(2)]
            >>> both = KeypointPredictor.ensemble([KeypointPredictor(n, codec, in_chans=1) for n in nets])
            >>> type(both.model).__name__, both.predict(torch.rand(1, 40, 40)).keypoints.shape
            ('HeatmapEnsemble', torch.Size([1, 3, 2]))
        """
        members = list(predictors)
        if not members:
            raise ValueError("an ensemble needs at least one predictor")
        first = members[0]

        def task(p: KeypointPredictor) -> dict[str, Any]:
            """What predictors must share to be averaged."""
            return {
                "codec": p.codec,
                "measures": measures_to_dict(p.measures),
                "keypoint names": p.keypoint_names,
                "input channels": p.in_chans,
            }

        reference = task(first)
        for i, other in enumerate(members[1:], start=1):
            theirs = task(other)
            for what, value in reference.items():
                if theirs[what] != value:
                    raise ValueError(
                        f"predictor {i} of the ensemble has other {what} than predictor 0 "
                        f"({theirs[what]!r} vs {value!r}); only predictors of one task and codec can be averaged"
                    )
        kwargs: dict[str, Any] = {
            "codec": first.codec,
            "measures": first.measures,
            "keypoint_names": first.keypoint_names,
            "in_chans": first.in_chans,
            "device": first.device,
            "batch_size": first.batch_size,
        }
        kwargs.update(overrides)
        return cls(HeatmapEnsemble([p.model for p in members]), **kwargs)

    @classmethod
    def from_checkpoint(cls, path: str | Path, **overrides: Any) -> KeypointPredictor:
        """Rebuild a predictor from a fine-tuning checkpoint, with no other argument needed.

        Accepts a Lightning checkpoint written by :func:`~sslkeypoint.recipes.run_finetuning`
        (read with :func:`~sslkeypoint.weights.read_weight_file`, ``weights_only=True``: only
        tensors and plain containers), or a folder (or its ``model.safetensors``) written by
        :meth:`save`. Any other file is refused with a message that says what it is: a
        pre-training checkpoint or an encoder weight file (which initialise fine-tuning through
        :attr:`~sslkeypoint.configs.FinetuneConfig.init_encoder` and cannot predict keypoints),
        a checkpoint of another program, or a file that is not a usable checkpoint at all.

        Args:
            path: ``.ckpt`` file, folder, or ``model.safetensors`` next to ``predictor.json``.
            **overrides: As in :meth:`from_spec` (``refine``, ``device``, ``batch_size``, ...).

        Returns:
            The predictor in eval mode.

        Raises:
            FileNotFoundError: If ``path`` does not exist, or a predictor folder lacks
                ``model.safetensors``.
            WeightFileError: If ``path`` holds no fine-tuned sslkeypoint model (a pre-training
                checkpoint, bare weights, another program's checkpoint, a folder without
                ``predictor.json``), is not a weight file, is truncated or damaged, or its weights
                do not fit the model it describes; the message names the file and what it holds.
            UnsafeCheckpointError: If the file needs arbitrary objects unpickled.

        Examples:
            >>> import tempfile, torch
            >>> from pathlib import Path
            >>> f = Path(tempfile.mkdtemp()) / "weights.pth"
            >>> torch.save({"conv.weight": torch.ones(1, 1, 3, 3)}, f)
            >>> KeypointPredictor.from_checkpoint(f)
            Traceback (most recent call last):
            ...
            sslkeypoint.weights.files.WeightFileError: ...weights.pth: holds weights only (1 tensor) and no model description: it was not written by sslkeypoint fine-tuning ...
        """
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"checkpoint not found: {p}")
        if p.is_dir() or p.suffix == ".safetensors":
            folder = p if p.is_dir() else p.parent
            spec_file = folder / "predictor.json"
            weights = folder / "model.safetensors" if p.is_dir() else p
            if not spec_file.is_file():
                raise WeightFileError(p, not_a_predictor_folder(p, folder, load_state_dict_file))
            if not weights.is_file():
                raise FileNotFoundError(f"{weights} not found: the predictor folder {folder} is incomplete")
            try:
                spec = json.loads(spec_file.read_text())
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise WeightFileError(spec_file, f"is not valid JSON ({err}): the predictor folder is damaged") from None
            return cls._build(p, spec, load_state_dict_file(weights), overrides)
        ckpt = read_weight_file(p, map_location="cpu")
        spec = ckpt.get(SPEC_KEY) if isinstance(ckpt, Mapping) else None
        if not isinstance(spec, Mapping) or "model" not in spec or not isinstance(ckpt.get("state_dict"), Mapping):
            raise WeightFileError(p, checkpoint_contents(p, ckpt))
        state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
        return cls._build(p, spec, state, overrides)

    @classmethod
    def _build(
        cls, path: Path, spec: Mapping[str, Any], state: Mapping[str, Tensor], overrides: Mapping[str, Any]
    ) -> KeypointPredictor:
        """:meth:`from_spec`, with weights that do not fit the described model reported against ``path``."""
        model = build_heatmap_model(spec["model"])
        try:
            model.load_state_dict(dict(state), strict=True)
        except RuntimeError as err:
            detail = " ".join(line.strip() for line in str(err).splitlines()[:3])
            raise WeightFileError(path, f"its weights do not fit the model its description builds: {detail}") from None
        rest = dict(overrides)
        return cls._assemble(spec, model, rest.pop("refine", None), rest)

    def save(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` and ``predictor.json`` to ``folder`` (created).

        The pair is the lightweight deployment format: :meth:`from_checkpoint` reads it back.

        Returns:
            The folder.
        """
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        spec = self.spec()
        save_state_dict(self.model, out / "model.safetensors")
        write_text_atomic(out / "predictor.json", json.dumps(spec, indent=2))
        return out

    # ------------------------------------------------------------------ prediction
    def preprocess(self, image: Any) -> tuple[Tensor, tuple[int, int]]:
        """Load one image and resize it to the input size.

        Returns:
            ``(image (C, H_in, W_in), (H, W) original size)``.
        """
        t = read_image(image, channels=self.in_chans)
        size = (int(t.shape[-2]), int(t.shape[-1]))
        return resize_image(t, self.input_size), size

    @torch.inference_mode()
    def predict_batch(
        self, images: Tensor, original_sizes: Tensor, *, return_heatmaps: bool = False, pixel_size: Any = None
    ) -> KeypointPrediction:
        """Predict for an already resized batch ``(B, C, H_in, W_in)`` with its ``(B, 2)`` sizes.

        ``images`` must be float values in ``[0, 1]``, as :meth:`preprocess` returns them; NaN,
        infinite and out-of-range values (a 0–255 batch) are refused, naming the first such image.
        ``original_sizes`` are the ``(H, W)`` of the original images, positive. ``pixel_size``:
        optional per-image pixel sizes in mm (``(B,)`` or ``(B, 2)``, NaN where unknown; see
        :func:`~sslkeypoint.measures.pixel_size_tensor`): lengths are then in mm.

        Raises:
            ValueError: A batch of another shape or dtype, values outside ``[0, 1]``, or
                ``original_sizes`` that are not ``(B, 2)`` positive sizes.
        """
        _check_batch(images, original_sizes)
        heatmaps = self.model(images.to(self.device))
        kp, scores = self.codec.decode(heatmaps)
        kp = self.codec.to_original(kp.float().cpu(), original_sizes.to(torch.float32))
        sizes = None if pixel_size is None else pixel_size_tensor(pixel_size, (kp.shape[0],), kp)
        return KeypointPrediction(
            kp,
            scores.float().cpu(),
            original_sizes,
            self.keypoint_names,
            compute_measures(self.measures, kp, sizes),
            heatmaps.float().cpu() if return_heatmaps else None,
            sizes,
            {name: measure_unit(m, sizes is not None) for name, m in self.measures.items()},
        )

    def predict(
        self, images: Any, *, progress: bool = False, return_heatmaps: bool = False, pixel_size: Any = None
    ) -> KeypointPrediction:
        """Predict landmarks for one image or a list of images of any sizes.

        Args:
            images: One image or a sequence of images: paths, PIL images, numpy arrays
                (``(H, W)``/``(H, W, C)``) or tensors (``(C, H, W)``); a ``(B, C, H, W)`` tensor
                is taken as ``B`` images.
            progress: Show a progress bar over batches.
            return_heatmaps: Also return the network's heatmaps (e.g. to score them against
                targets).
            pixel_size: Optional pixel size in mm: one for every image (a number or ``(sx, sy)``)
                or one per image (a sequence, NaN or ``None`` where unknown). Lengths among the
                measures are then in mm (:attr:`KeypointPrediction.units`).

        Every image is read with :func:`~sslkeypoint.data.read_image`: a file as it is shown
        (an EXIF orientation applied, so the keypoints are in the displayed image's pixels), a
        PIL image, array or tensor as given; float arrays and tensors must hold finite values in
        ``[0, 1]`` (``uint8`` data is scaled by 255). An empty sequence (or a ``(0, C, H, W)``
        tensor) gives an empty prediction.

        Returns:
            A :class:`KeypointPrediction` with ``N`` rows (``N = 1`` for a single image), in the
            original pixels of each image.

        Raises:
            ValueError: An image that cannot be used (NaN or infinite values, floats outside
                ``[0, 1]``, no pixels, an unsupported shape or dtype), named by its position:
                ``image 3: ...``.
            FileNotFoundError: A path that does not exist (or a link to a missing file).
            ImageReadError: A file that cannot be decoded.
        """
        if _is_single(images):
            items: Sequence[Any] = [images]
        elif isinstance(images, Tensor):
            items = list(images.unbind(0))
        else:
            items = list(images) if not isinstance(images, Sequence) else images
        if len(items) == 0:
            return KeypointPrediction(
                torch.zeros(0, 0, 2),
                torch.zeros(0, 0),
                torch.zeros(0, 2, dtype=torch.long),
                self.keypoint_names,
                {name: torch.zeros(0) for name in self.measures},
                units={name: measure_unit(m, pixel_size is not None) for name, m in self.measures.items()},
            )
        sizes = None if pixel_size is None else _per_image_sizes(pixel_size, len(items))
        batches: Iterable[Sequence[Any]] = _chunks(items, self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=math.ceil(len(items) / self.batch_size), desc="predict", unit="batch")
        parts: list[KeypointPrediction] = []
        start = 0
        for chunk in batches:
            prepared = []
            for j, image in enumerate(chunk):
                try:
                    prepared.append(self.preprocess(image))
                except ValueError as err:
                    raise ValueError(f"image {start + j}: {err}") from None
            x = torch.stack([t for t, _ in prepared])
            shapes = torch.tensor([s for _, s in prepared], dtype=torch.long)
            chunk_sizes = None if sizes is None else sizes[start : start + len(chunk)]
            start += len(chunk)
            parts.append(self.predict_batch(x, shapes, return_heatmaps=return_heatmaps, pixel_size=chunk_sizes))
        return KeypointPrediction(
            keypoints=torch.cat([p.keypoints for p in parts]),
            scores=torch.cat([p.scores for p in parts]),
            original_sizes=torch.cat([p.original_sizes for p in parts]),
            keypoint_names=self.keypoint_names,
            measures={name: torch.cat([p.measures[name] for p in parts]) for name in self.measures},
            heatmaps=torch.cat([p.heatmaps for p in parts if p.heatmaps is not None]) if return_heatmaps else None,
            pixel_sizes=sizes,
            units=parts[0].units,
        )
