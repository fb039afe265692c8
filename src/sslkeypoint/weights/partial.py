"""Partial loading of weights into a module, with a report, and input-channel adaptation."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from sslkeypoint.weights.files import PathLike, load_state_dict_file

Shape = tuple[int, ...]

__all__ = ["LoadReport", "adapt_input_conv", "load_partial_state_dict"]

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

