"""Any timm backbone as an encoder, with weights from a local file only."""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from torch import Tensor

from sslkeypoint.encoders.base import Encoder
from sslkeypoint.weights import LoadReport, load_partial_state_dict, load_state_dict_file

__all__ = ["TimmEncoder", "remap_timm_state_dict", "timm_close_matches"]


def timm_close_matches(name: str, n: int = 5) -> list[str]:
    """timm model names closest to ``name`` (``difflib``), for error messages.

    Examples:
        >>> timm_close_matches("resnet181", n=1)
        ['resnet18']
    """
    import timm

    return difflib.get_close_matches(name, timm.list_models(), n=n, cutoff=0.6)


def _candidates(key: str) -> Iterator[str]:
    """Names a features-only timm key may have had in the full model's state dict.

    timm's feature wrappers keep module names, except that ``FeatureGetterNet`` nests the model
    under ``model.`` and ``flatten_sequential`` renames ``stem.0`` to ``stem_0``.
    """
    yield key
    for prefix in ("model.", "body."):
        if key.startswith(prefix):
            yield key[len(prefix) :]
    head, _, rest = key.partition(".")
    for i, ch in enumerate(head):
        if ch == "_":
            yield f"{head[:i]}.{head[i + 1 :]}" + (f".{rest}" if rest else "")


def remap_timm_state_dict(
    state_dict: Mapping[str, Tensor], target_keys: Collection[str]
) -> dict[str, Tensor]:
    """Rename a full timm model's state dict to a features-only model's names.

    Each target key takes the first of its candidate source names (itself, without ``model.``, or
    with a flattened ``a_b`` read as ``a.b``) that the source has; source keys left over (the
    classifier, a dropped head) keep their names and so show up as unexpected when loading.

    Args:
        state_dict: Weights of the full model (as saved by ``timm.create_model(...).state_dict()``).
        target_keys: Keys of the features-only model's state dict.

    Returns:
        The renamed state dict.

    Examples:
        >>> import torch
        >>> sd = {"stem.0.weight": torch.zeros(1), "head.fc.weight": torch.zeros(1)}
        >>> sorted(remap_timm_state_dict(sd, ["stem_0.weight"]))
        ['head.fc.weight', 'stem_0.weight']
    """
    out: dict[str, Tensor] = {}
    used: set[str] = set()
    for key in target_keys:
        for cand in _candidates(key):
            if cand in state_dict and cand not in used:
                out[key] = state_dict[cand]
                used.add(cand)
                break
    for key, value in state_dict.items():
        if key not in used:
            out.setdefault(key, value)
    return out


class TimmEncoder(Encoder):
    """A timm model built with ``features_only=True`` as an encoder.

    Never downloads: the model is created with ``pretrained=False`` and pretrained weights (ImageNet
    or other) come from a local file (``.safetensors``, ``.pth``, ``.bin``) in timm's naming, as
    saved by ``timm.create_model(name).state_dict()`` or found in timm's Hugging Face repositories.
    The file is read with :func:`~sslkeypoint.weights.load_state_dict_file` (no arbitrary
    unpickling), its names are mapped to the features-only model, the classifier keys are reported
    as unexpected and the first convolution is adapted when ``in_chans`` differs (3 → 1 sums the RGB
    filters). The :class:`~sslkeypoint.weights.LoadReport` is kept in ``load_report``.

    Args:
        name: timm model name (any of ``timm.list_models()``).
        in_chans: Input image channels.
        pretrained_file: Optional local weight file.
        out_indices: Which feature levels to return (timm's ``out_indices``); default timm's.
        **kwargs: Further arguments of ``timm.create_model`` (e.g. ``drop_path_rate``).

    Attributes:
        model: The timm feature extractor.
        channels: Channels per feature, finest first (from ``feature_info``).
        reductions: Reduction per feature, finest first (from ``feature_info``).
        in_chans: Input channels.
        load_report: Report of the ``pretrained_file`` load, or ``None``.

    Raises:
        ValueError: If ``name`` is unknown to timm (close matches are listed) or
            ``pretrained=True`` is passed.

    Examples:
        >>> import torch
        >>> enc = TimmEncoder("resnet18", in_chans=1)
        >>> enc.reductions, enc.channels
        ([2, 4, 8, 16, 32], [64, 64, 128, 256, 512])
        >>> [f.shape[-1] for f in enc(torch.zeros(1, 1, 64, 64))]
        [32, 16, 8, 4, 2]
    """

    def __init__(
        self,
        name: str,
        in_chans: int = 3,
        pretrained_file: str | os.PathLike[str] | None = None,
        out_indices: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        import timm

        if kwargs.pop("pretrained", False):
            raise ValueError(
                "TimmEncoder never downloads weights: pass pretrained_file=<local weight file> "
                "instead of pretrained=True"
            )
        kwargs.pop("features_only", None)
        if not timm.is_model(name):
            close = timm_close_matches(name)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ValueError(
                f"unknown timm model {name!r}{hint} (timm.list_models() lists every name)"
            )
        if out_indices is not None:
            kwargs["out_indices"] = tuple(int(i) for i in out_indices)
        self.name = name
        self.in_chans = int(in_chans)
        self.model = timm.create_model(
            name, features_only=True, pretrained=False, in_chans=self.in_chans, **kwargs
        )
        info: Any = self.model.feature_info
        self.channels = [int(c) for c in info.channels()]
        self.reductions = [int(r) for r in info.reduction()]
        self.load_report: LoadReport | None = None
        if pretrained_file is not None:
            self.load_report = self.load_pretrained(pretrained_file)

    def load_pretrained(
        self,
        source: str | os.PathLike[str] | Mapping[str, Tensor],
        *,
        strip_prefix: str | Sequence[str] = (),
        strict_shapes: bool = True,
    ) -> LoadReport:
        """Load a full timm model's weights (file or state dict) into this encoder.

        Args:
            source: Weight file or ``{name: tensor}`` mapping in timm's naming.
            strip_prefix: Prefixes to strip from the source names first (e.g. ``"module."``).
            strict_shapes: Raise on shape mismatches (see
                :func:`~sslkeypoint.weights.load_partial_state_dict`).

        Returns:
            The load report (classifier keys appear as unexpected).
        """
        sd = dict(source) if isinstance(source, Mapping) else load_state_dict_file(source)
        prefixes = (strip_prefix,) if isinstance(strip_prefix, str) else tuple(strip_prefix)
        for prefix in prefixes:
            sd = {k[len(prefix) :] if prefix and k.startswith(prefix) else k: v for k, v in sd.items()}
        sd = remap_timm_state_dict(sd, list(self.model.state_dict()))
        return load_partial_state_dict(self.model, sd, strict_shapes=strict_shapes)

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
