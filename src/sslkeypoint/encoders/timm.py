"""Any timm backbone as an encoder, with weights from a local file (or, on request, downloaded by timm).

Weights go through timm's own builder: ``timm.create_model(name, features_only=True,
pretrained=True, pretrained_cfg_overlay={"file": <local file>, ...})`` reads the file, drops the
classifier, adapts the first convolution to ``in_chans`` (timm's ``adapt_input_conv``) and then wraps
the model for features, so every naming scheme of timm's feature wrappers is handled by timm itself.
Two guarantees are added around it:

* nothing is downloaded and nothing is unpickled: the overlay clears every remote source (``url``,
  ``hf_hub_id``), and a torch file (``.pth``, ``.bin``, ...) is first read by
  :func:`~sslkeypoint.weights.load_state_dict_file` (``weights_only=True``) and handed to timm as a
  temporary safetensors file, whatever timm version reads it;
* a file that does not fit never passes silently: a features-only build loads with
  ``strict=False`` (timm drops the classifier), where missing or extra tensors would only be logged.
  The file's names and shapes are therefore checked first against the full model's, built on the
  ``meta`` device (no memory, no initialisation cost); anything missing, extra (other than the
  classifier) or of another shape (other than the first convolution's input channels) raises an
  error naming the file.

``pretrained=True`` is the opt-in exception: timm downloads the model's published weights (ImageNet
for most) from its hub, where the machine can reach it — the baseline initialisation that
self-supervision on the user's own images must beat. Without a network it fails with a message
that says how to save the weights once elsewhere and pass them as ``pretrained_file``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sslkeypoint.encoders.base import Encoder
from sslkeypoint.weights import (
    LoadReport,
    WeightFileError,
    load_state_dict_file,
    read_weight_file,
    save_state_dict,
)

__all__ = ["TimmEncoder", "timm_close_matches"]

Shape = tuple[int, ...]

#: ``timm.create_model`` arguments that only concern the feature wrapper, not the model itself.
_FEATURE_ARGS = ("out_indices", "feature_cls", "feature_cfg", "flatten_sequential")


def timm_close_matches(name: str, n: int = 5) -> list[str]:
    """timm model names closest to ``name`` (``difflib``), for error messages.

    Args:
        name: A model name that timm may not know.
        n: Most names returned.

    Returns:
        Up to ``n`` names of ``timm.list_models()``, closest first.

    Examples:
        >>> timm_close_matches("resnet181", n=1)
        ['resnet18']
    """
    import timm

    return difflib.get_close_matches(name, timm.list_models(), n=n, cutoff=0.6)


def _file_for_timm(path: Path, stack: ExitStack) -> tuple[Path, dict[str, Shape]]:
    """A safetensors file timm can read for ``path``, and the shape of each tensor in it.

    A ``.safetensors`` file is used as it is (only its header is read here); any other file is read
    safely and written to a temporary safetensors file that lives as long as ``stack``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
            return path, shapes
        tensors = load_state_dict_file(path)
    except ValueError:
        raise  # load_state_dict_file's errors (WeightFileError) already name and describe the file
    except Exception as err:
        read_weight_file(path)  # describes what is wrong with the file (WeightFileError)
        raise WeightFileError(path, f"is not readable as safetensors: {type(err).__name__}: {err}") from err
    converted = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "weights.safetensors"
    save_state_dict(tensors, converted)
    return converted, {k: tuple(v.shape) for k, v in tensors.items()}


def _names(cfg: Mapping[str, Any], field: str) -> tuple[str, ...]:
    """A ``pretrained_cfg`` entry that may be a name, a tuple of names or ``None``, as a tuple."""
    value = cfg.get(field)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _check_fit(
    name: str, path: Path, source: Mapping[str, Shape], kwargs: Mapping[str, Any]
) -> LoadReport:
    """Compare a weight file's names and shapes with the full timm model's; raise if it does not fit.

    Args:
        name: timm model name.
        path: The user's weight file (for messages).
        source: ``{name: shape}`` of the file's tensors.
        kwargs: Model arguments (``in_chans`` included), without the feature-wrapper ones.

    Returns:
        The report of what timm will load (names of the full model).
    """
    import timm
    from timm.models import clean_state_dict

    try:
        with torch.device("meta"):
            reference: nn.Module = timm.create_model(name, pretrained=False, **kwargs)
    except Exception:  # a model whose constructor needs real tensors: build it on the CPU
        reference = timm.create_model(name, pretrained=False, **kwargs)
    target = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    cfg: Mapping[str, Any] = getattr(reference, "pretrained_cfg", None) or {}
    # timm strips wrapper prefixes (``module.``, ``_orig_mod.``) from every file it reads
    source = clean_state_dict(dict(source))
    classifiers = _names(cfg, "classifier")
    first_convs = {f"{c}.weight" for c in _names(cfg, "first_conv")}

    def is_classifier(key: str) -> bool:
        return any(key.startswith(f"{c}.") for c in classifiers)

    report = LoadReport()
    for key, shape in source.items():
        if is_classifier(key):
            report.unexpected.append(key)  # timm drops the classifier of a features-only model
        elif key not in target:
            report.unexpected.append(key)
        elif shape == target[key]:
            report.loaded.append(key)
        elif (
            key in first_convs
            and len(shape) == len(target[key]) == 4
            and shape[:1] + shape[2:] == target[key][:1] + target[key][2:]
        ):
            report.loaded.append(key)
            report.adapted[key] = (shape, target[key])
        else:
            report.mismatched[key] = (shape, target[key])
    report.missing = [k for k in target if k not in source and not is_classifier(k)]
    extra = [k for k in report.unexpected if not is_classifier(k)]
    if report.missing or report.mismatched or extra:
        problems = dataclasses.replace(report, unexpected=extra)  # the classifier is no problem
        raise ValueError(
            f"{path}: the weights do not fit timm model {name!r} "
            f"(in_chans={kwargs.get('in_chans', 3)}); the file must hold the full model's state "
            f"dict in timm's naming, as `timm.create_model({name!r}).state_dict()` or timm's own "
            f"weight files (names of the full model):\n{problems}"
        )
    return report


class TimmEncoder(Encoder):
    """A timm model built with ``features_only=True`` as an encoder.

    Downloads nothing unless ``pretrained=True``. Pretrained weights (ImageNet or other) come from a local file
    (``.safetensors``, ``.pth``, ``.bin``) holding the full model's state dict in timm's naming, as
    saved by ``timm.create_model(name).state_dict()`` or found in timm's Hugging Face repositories
    (wrapper prefixes ``module.`` and ``_orig_mod.`` and the containers read by
    :func:`~sslkeypoint.weights.load_state_dict_file` are fine). timm's builder loads it: the
    classifier is dropped and the first convolution is adapted to ``in_chans`` (to one channel the
    RGB filters are summed, so a gray image gives the response the RGB model gives to that image on
    three channels). The file is checked first: missing tensors, tensors the model does not have
    (other than the classifier) and shape mismatches (other than the first convolution's input
    channels) raise an error naming the file. Torch files are read with ``weights_only=True``.

    Args:
        name: timm model name (any of ``timm.list_models()``).
        in_chans: Input image channels.
        pretrained_file: Optional local weight file.
        pretrained: Let timm download the model's published weights (needs a network; with
            ``pretrained_file`` it is an error to ask for both).
        out_indices: Which feature levels to return (timm's ``out_indices``); default timm's.
        **kwargs: Further arguments of ``timm.create_model`` (e.g. ``drop_path_rate``).

    Attributes:
        name: The timm model name.
        model: The timm feature extractor.
        channels: Channels per feature, finest first (from ``feature_info``).
        reductions: Reduction per feature, finest first (from ``feature_info``).
        in_chans: Input channels.
        load_report: What the ``pretrained_file`` gave, in the full model's names (``loaded``, the
            dropped classifier tensors as ``unexpected``, the first convolution in ``adapted`` when
            its input channels were adapted), or ``None`` without a file.

    Raises:
        ValueError: If ``name`` is unknown to timm (close matches are listed), both
            ``pretrained=True`` and ``pretrained_file`` are given, the download fails, or
            ``pretrained_file`` is unreadable, unsafe or does not fit the model.
        FileNotFoundError: If ``pretrained_file`` does not exist.

    Examples:
        >>> import tempfile, timm, torch
        >>> from pathlib import Path
        >>> from sslkeypoint.weights import save_state_dict
        >>> enc = TimmEncoder("resnet18", in_chans=1)
        >>> enc.reductions, enc.channels
        ([2, 4, 8, 16, 32], [64, 64, 128, 256, 512])
        >>> [f.shape[-1] for f in enc(torch.zeros(1, 1, 64, 64))]
        [32, 16, 8, 4, 2]
        >>> full = timm.create_model("resnet18")  # e.g. ImageNet weights saved once, offline
        >>> path = save_state_dict(full, Path(tempfile.mkdtemp()) / "resnet18.safetensors")
        >>> enc = TimmEncoder("resnet18", in_chans=1, pretrained_file=path)
        >>> torch.allclose(enc.model.conv1.weight, full.conv1.weight.sum(1, keepdim=True))
        True
        >>> enc.load_report.adapted
        {'conv1.weight': ((64, 3, 7, 7), (64, 1, 7, 7))}
    """

    def __init__(
        self,
        name: str,
        in_chans: int = 3,
        pretrained_file: str | os.PathLike[str] | None = None,
        out_indices: Sequence[int] | None = None,
        pretrained: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        import timm

        if pretrained and pretrained_file is not None:
            raise ValueError(
                "give pretrained_file=<local weight file> or pretrained=True (a download by timm), not both"
            )
        kwargs.pop("features_only", None)
        if not timm.is_model(name):
            close = timm_close_matches(name)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ValueError(
                f"unknown timm model {name!r}{hint} (timm.list_models() lists every name)"
            )
        self.name = name
        self.in_chans = int(in_chans)
        kwargs["in_chans"] = self.in_chans
        model_kwargs = {k: v for k, v in kwargs.items() if k not in _FEATURE_ARGS}
        if out_indices is not None:
            kwargs["out_indices"] = tuple(int(i) for i in out_indices)
        self.load_report: LoadReport | None = None
        if pretrained:
            self.model = self._download(name, kwargs)
        elif pretrained_file is None:
            self.model = timm.create_model(name, features_only=True, pretrained=False, **kwargs)
        else:
            self.model = self._build_from_file(name, Path(pretrained_file), kwargs, model_kwargs)
        info: Any = self.model.feature_info
        self.channels = [int(c) for c in info.channels()]
        self.reductions = [int(r) for r in info.reduction()]

    def _download(self, name: str, kwargs: dict[str, Any]) -> nn.Module:
        """timm's own download of the published weights, with an error that says what to do offline."""
        import timm

        try:
            model: nn.Module = timm.create_model(name, features_only=True, pretrained=True, **kwargs)
        except Exception as err:
            raise ValueError(
                f"timm could not download the weights of {name!r} ({type(err).__name__}: {err}). Where this "
                f"machine cannot download, save them once elsewhere — save_state_dict(timm.create_model({name!r}, "
                "pretrained=True), 'weights.safetensors') — and pass pretrained_file='weights.safetensors'"
            ) from err
        return model

    def _build_from_file(
        self, name: str, path: Path, kwargs: dict[str, Any], model_kwargs: dict[str, Any]
    ) -> nn.Module:
        """Check ``path`` against the model, then let timm's builder load it (see the class doc)."""
        import timm

        with ExitStack() as stack:
            timm_file, shapes = _file_for_timm(path, stack)
            self.load_report = _check_fit(name, path, shapes, model_kwargs)
            overlay = {
                **dict(kwargs.pop("pretrained_cfg_overlay", None) or {}),
                # the local file is the only weight source: no URL, hub id or in-memory state dict
                "file": str(timm_file),
                "url": None,
                "hf_hub_id": None,
                "hf_hub_filename": None,
                "state_dict": None,
                "source": None,
                "custom_load": False,
            }
            try:
                model: nn.Module = timm.create_model(
                    name,
                    features_only=True,
                    pretrained=True,
                    pretrained_cfg_overlay=overlay,
                    **kwargs,
                )
            except Exception as err:
                raise ValueError(
                    f"{path}: timm could not load these weights into {name!r} "
                    f"(in_chans={self.in_chans}): {type(err).__name__}: {err}"
                ) from err
        cfg = getattr(model, "pretrained_cfg", None)
        if isinstance(cfg, dict):
            cfg["file"] = str(path)  # the user's file, not the temporary copy timm read
        return model

    def forward(self, x: Tensor) -> list[Tensor]:
        """Compute the feature maps.

        Args:
            x: ``(B, in_chans, H, W)`` images.

        Returns:
            One ``(B, channels[i], H / reductions[i], W / reductions[i])`` tensor per level, finest
            first.
        """
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"TimmEncoder({self.name!r}) expects images of shape (B, {self.in_chans}, H, W); "
                f"got {tuple(x.shape)}"
            )
        return list(self.model(x))
