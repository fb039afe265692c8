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
"""

from __future__ import annotations

import math
import os
import pickle
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "LoadReport",
    "UnsafeCheckpointError",
    "adapt_input_conv",
    "load_partial_state_dict",
    "load_state_dict_file",
    "save_state_dict",
]

PathLike = str | os.PathLike[str]
Shape = tuple[int, ...]

#: Keys whose value is unwrapped when a checkpoint is a container around a state dict, in order.
CONTAINER_KEYS: tuple[str, ...] = ("state_dict", "model_state_dict", "model", "module")


class UnsafeCheckpointError(ValueError):
    """A checkpoint that could only be read by unpickling arbitrary Python objects."""


# --------------------------------------------------------------------------------------------------
# Reading and writing files
# --------------------------------------------------------------------------------------------------


def _is_safetensors(path: Path) -> bool:
    """Whether ``path`` looks like a safetensors file (by extension, else by its header)."""
    if path.suffix == ".safetensors":
        return True
    with path.open("rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n < 100_000_000 and head[8:9] == b"{"


def _unwrap(obj: object, path: Path) -> dict[str, Tensor]:
    """Descend through checkpoint containers to the state dict and keep its tensors."""
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}"
        )
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise ValueError(
            f"{path}: no tensors found; top-level keys are {sorted(map(str, obj))[:10]} "
            f"(containers tried: {', '.join(CONTAINER_KEYS)})"
        )
    return tensors


def load_state_dict_file(path: PathLike, map_location: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Read a state dict from a safetensors or torch file without unpickling arbitrary objects.

    ``.safetensors`` files (recognised by extension or header) are read with safetensors; anything
    else with ``torch.load(..., weights_only=True)``. Common containers are unwrapped: the values of
    ``state_dict`` (Lightning checkpoints), ``model_state_dict``, ``model`` and ``module``, repeatedly.
    Entries that are not tensors (epoch counters, hyper-parameters) are dropped.

    Args:
        path: The weight file.
        map_location: Device the tensors are loaded onto.

    Returns:
        A flat ``{name: tensor}`` dict.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        UnsafeCheckpointError: If the file needs arbitrary unpickling (refused for safety).
        ValueError: If the file holds no tensors.

    Examples:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> f = Path(tempfile.mkdtemp()) / "ckpt.pth"
        >>> torch.save({"epoch": 3, "state_dict": {"w": torch.ones(2)}}, f)
        >>> load_state_dict_file(f)
        {'w': tensor([1., 1.])}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    if _is_safetensors(path):
        from safetensors.torch import load_file

        device = str(map_location) if isinstance(map_location, torch.device) else map_location
        return _unwrap(load_file(str(path), device=device), path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"{path}: refused for safety: this checkpoint holds Python objects that only arbitrary "
            "unpickling could rebuild, and unpickling can run code. If you trust the file, convert "
            "it once: `sd = torch.load(path, weights_only=False)` (take its state dict, e.g. "
            "`sd['state_dict']`), then `sslkeypoint.weights.save_state_dict(sd, 'weights.safetensors')` "
            f"and load the safetensors file instead. Details: {str(err).splitlines()[0]}"
        ) from err
    return _unwrap(obj, path)


def save_state_dict(
    state_dict: Mapping[str, Tensor] | nn.Module,
    path: PathLike,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a state dict (or a module's) to a safetensors file.

    Tensors are detached, moved to the CPU and saved as contiguous clones, so views and tensors that
    share storage (tied weights) are written as independent tensors. Parent folders are created.

    Args:
        state_dict: A ``{name: tensor}`` mapping or a module whose ``state_dict()`` is saved.
        path: Destination file (conventionally ``*.safetensors``).
        metadata: Optional string-to-string metadata stored in the header.

    Returns:
        The path written.

    Raises:
        TypeError: If a value is not a tensor or a metadata entry is not a string.

    Examples:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> f = save_state_dict(torch.nn.Linear(2, 1), Path(tempfile.mkdtemp()) / "lin.safetensors")
        >>> sorted(load_state_dict_file(f))
        ['bias', 'weight']
    """
    from safetensors.torch import save_file

    sd = state_dict.state_dict() if isinstance(state_dict, nn.Module) else state_dict
    tensors: dict[str, Tensor] = {}
    for name, value in sd.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"state dict entry {name!r} is a {type(value).__name__}, not a tensor")
        tensors[str(name)] = value.detach().to("cpu").contiguous().clone()
    meta: dict[str, str] | None = None
    if metadata is not None:
        meta = {}
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must map str to str; got {k!r}: {type(v).__name__}")
            meta[k] = v
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


# --------------------------------------------------------------------------------------------------
# Input-channel adaptation
# --------------------------------------------------------------------------------------------------


def adapt_input_conv(weight: Tensor, in_chans: int) -> Tensor:
    """Adapt a first-convolution weight ``(O, I, kh, kw)`` to ``in_chans`` input channels.

    timm's rule: to one channel, the ``I`` filters are summed (a gray image then gives the response
    that the ``I``-channel weight gives to the same image repeated on every channel); otherwise the
    filters are repeated and cut to ``in_chans``, scaled by ``I / in_chans`` (1 → 3 repeats and
    divides by 3, keeping the response to a gray image replicated on the three channels).

    Args:
        weight: ``(O, I, kh, kw)`` convolution weight.
        in_chans: Target number of input channels, ``>= 1``.

    Returns:
        ``(O, in_chans, kh, kw)`` weight in ``weight``'s dtype (``weight`` itself when ``I`` already
        equals ``in_chans``).

    Raises:
        ValueError: If ``weight`` is not 4-D or ``in_chans < 1``.

    Examples:
        >>> import torch
        >>> w = torch.arange(6.0).reshape(1, 3, 1, 2)
        >>> adapt_input_conv(w, 1).tolist()
        [[[[6.0, 9.0]]]]
        >>> adapt_input_conv(torch.ones(1, 1, 1, 1), 3).flatten().tolist()
        [0.333..., 0.333..., 0.333...]
    """
    if weight.ndim != 4:
        raise ValueError(f"weight must have shape (O, I, kh, kw); got {tuple(weight.shape)}")
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1; got {in_chans}")
    src_chans = weight.shape[1]
    if src_chans == in_chans:
        return weight
    dtype = weight.dtype
    # Half-precision weights are summed in float32; float32/float64 keep their precision.
    w = weight if dtype in (torch.float32, torch.float64) else weight.float()
    if in_chans == 1:
        w = w.sum(dim=1, keepdim=True)
    else:
        repeat = math.ceil(in_chans / src_chans)
        w = w.repeat(1, repeat, 1, 1)[:, :in_chans] * (src_chans / in_chans)
    return w.to(dtype)


# --------------------------------------------------------------------------------------------------
# Partial loading
# --------------------------------------------------------------------------------------------------


def _shorten(names: Iterable[str], limit: int = 8) -> str:
    names = list(names)
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f", ... ({len(names) - limit} more)"
    return text


def _fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


@dataclass
class LoadReport:
    """What :func:`load_partial_state_dict` did, key by key (names in the target's namespace).

    Attributes:
        loaded: Target keys that received a tensor (adapted ones included).
        missing: Target keys the source did not provide (they keep their values).
        unexpected: Source keys (after prefix handling) with no target of that name.
        mismatched: ``name -> (source shape, target shape)`` for keys skipped because the shapes
            disagree.
        adapted: ``name -> (source shape, target shape)`` for first-convolution weights whose input
            channels were adapted with :func:`adapt_input_conv` (these are also in ``loaded``).

    Examples:
        >>> r = LoadReport(loaded=["a"], missing=["b"], unexpected=[], mismatched={}, adapted={})
        >>> r.num_target
        2
        >>> print(r)
        LoadReport: loaded 1/2 target tensors
          missing (1): b
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: dict[str, tuple[Shape, Shape]] = field(default_factory=dict)
    adapted: dict[str, tuple[Shape, Shape]] = field(default_factory=dict)

    @property
    def num_target(self) -> int:
        """Number of tensors in the target module's state dict."""
        return len(self.loaded) + len(self.missing) + len(self.mismatched)

    @property
    def complete(self) -> bool:
        """True when every target tensor was loaded."""
        return not self.missing and not self.mismatched

    def __str__(self) -> str:
        lines = [f"LoadReport: loaded {len(self.loaded)}/{self.num_target} target tensors"]
        if self.adapted:
            items = [f"{k} {_fmt_shape(s)} -> {_fmt_shape(t)}" for k, (s, t) in self.adapted.items()]
            lines.append(f"  adapted ({len(self.adapted)}): {_shorten(items)}")
        if self.missing:
            lines.append(f"  missing ({len(self.missing)}): {_shorten(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected ({len(self.unexpected)}): {_shorten(self.unexpected)}")
        if self.mismatched:
            items = [
                f"{k} source {_fmt_shape(s)} vs target {_fmt_shape(t)}"
                for k, (s, t) in self.mismatched.items()
            ]
            lines.append(f"  mismatched ({len(self.mismatched)}): {_shorten(items)}")
        return "\n".join(lines)


def _rename(
    source: Mapping[str, Tensor], strip_prefix: Sequence[str], add_prefix: str
) -> dict[str, Tensor]:
    """Strip the prefixes (each tried in order, once) then add ``add_prefix``; refuse collisions."""
    out: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in source.items():
        name = key
        for prefix in strip_prefix:
            if prefix and name.startswith(prefix):
                name = name[len(prefix) :]
        name = add_prefix + name
        if name in out:
            raise ValueError(
                f"source keys {origin[name]!r} and {key!r} both become {name!r} after prefix "
                f"handling (strip_prefix={tuple(strip_prefix)}, add_prefix={add_prefix!r})"
            )
        out[name] = value
        origin[name] = key
    return out


def load_partial_state_dict(
    module: nn.Module,
    source: Mapping[str, Tensor] | PathLike,
    *,
    strip_prefix: str | Sequence[str] = (),
    add_prefix: str = "",
    strict_shapes: bool = True,
    adapt_first_conv: bool = True,
) -> LoadReport:
    """Copy the tensors of ``source`` whose names and shapes match into ``module``.

    Source names are first stripped of the prefixes in ``strip_prefix`` (each tried in order, so
    ``("module.", "backbone.")`` turns ``module.backbone.x`` into ``x``), then ``add_prefix`` is put in
    front. A tensor is copied when the target has that name and the same shape. The one tolerated
    mismatch is the input channels of the target's first 4-D weight (its first convolution): such a
    weight is converted with :func:`adapt_input_conv` (1 ↔ 3 channels, or any count) and reported in
    ``adapted``. Copying is all-or-nothing: on an error the module is untouched.

    Nothing is warned: the returned :class:`LoadReport` says what happened and the caller logs it
    (missing decoder or head keys are normal when fine-tuning from an encoder checkpoint).

    Args:
        module: Target module.
        source: A ``{name: tensor}`` mapping or a weight file (see :func:`load_state_dict_file`).
        strip_prefix: Prefix or prefixes removed from source names, tried in order.
        add_prefix: Prefix added to every source name after stripping, e.g. ``"encoder."`` to load an
            encoder checkpoint into a whole model.
        strict_shapes: If True, raise when any matching name has a shape that disagrees (and cannot
            be adapted); if False, skip those tensors and report them in ``mismatched``.
        adapt_first_conv: Adapt the first convolution's input channels (see above).

    Returns:
        A :class:`LoadReport`.

    Raises:
        ValueError: If no tensor could be loaded (the message shows a few source and target keys to
            reveal a prefix problem), or if ``strict_shapes`` and some shapes disagree.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
        >>> ckpt = {"module.backbone.0.weight": torch.randn(4, 3, 3, 3),
        ...         "module.backbone.0.bias": torch.randn(4),
        ...         "module.head.weight": torch.randn(8, 4)}
        >>> report = load_partial_state_dict(net, ckpt, strip_prefix=("module.", "backbone."))
        >>> print(report)
        LoadReport: loaded 2/4 target tensors
          adapted (1): 0.weight (4, 3, 3, 3) -> (4, 1, 3, 3)
          missing (2): 2.weight, 2.bias
          unexpected (1): head.weight
    """
    if isinstance(source, Mapping):
        src = {str(k): v for k, v in source.items() if isinstance(v, Tensor)}
    else:
        src = load_state_dict_file(source)
    prefixes = (strip_prefix,) if isinstance(strip_prefix, str) else tuple(strip_prefix)
    src = _rename(src, prefixes, add_prefix)

    target = module.state_dict()
    first_conv = next((k for k, v in target.items() if v.ndim == 4), None) if adapt_first_conv else None

    report = LoadReport()
    to_load: dict[str, Tensor] = {}
    for name, value in src.items():
        if name not in target:
            report.unexpected.append(name)
            continue
        want = target[name]
        s_shape, t_shape = tuple(value.shape), tuple(want.shape)
        if s_shape == t_shape:
            to_load[name] = value
        elif (
            name == first_conv
            and value.ndim == 4
            and s_shape[0] == t_shape[0]
            and s_shape[2:] == t_shape[2:]
        ):
            to_load[name] = adapt_input_conv(value, t_shape[1])
            report.adapted[name] = (s_shape, t_shape)
        else:
            report.mismatched[name] = (s_shape, t_shape)
    report.loaded = [k for k in target if k in to_load]
    report.missing = [k for k in target if k not in src]

    if not to_load:
        raise ValueError(
            f"no tensor could be loaded into {type(module).__name__}: "
            f"{len(src)} source keys, {len(target)} target keys, "
            f"{len(report.mismatched)} name matches with other shapes. "
            f"Source keys (after strip_prefix={prefixes}, add_prefix={add_prefix!r}): "
            f"{_shorten(src, 5)}. Target keys: {_shorten(target, 5)}. "
            "Adjust strip_prefix / add_prefix so the names line up."
        )
    if strict_shapes and report.mismatched:
        raise ValueError(
            "shapes disagree for "
            + _shorten(
                [f"{k} (source {_fmt_shape(s)}, target {_fmt_shape(t)})" for k, (s, t) in report.mismatched.items()]
            )
            + "; pass strict_shapes=False to skip these tensors and load the rest"
        )
    result = module.load_state_dict(to_load, strict=False)
    if result.unexpected_keys:  # pragma: no cover - every key was checked against the target
        raise RuntimeError(f"unexpected keys while loading: {result.unexpected_keys}")
    return report

