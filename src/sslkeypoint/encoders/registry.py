"""Encoders by name: ``"unet"`` and ``"timm:<model name>"``."""

from __future__ import annotations

import difflib
import fnmatch
from typing import Any

from torch import nn

from sslkeypoint.encoders.timm import TimmEncoder, timm_close_matches
from sslkeypoint.encoders.unet import UNetEncoder

__all__ = ["create_encoder", "list_encoders"]

_FAMILIES = ("timm:<name>", "unet")


def list_encoders(pattern: str | None = None) -> list[str]:
    """Names accepted by :func:`create_encoder`.

    Without ``pattern`` the families are listed: ``["timm:<name>", "unet"]``, where ``<name>`` is any
    name ``timm.list_models()`` knows. With a shell-style ``pattern`` the concrete names matching it
    are listed, timm names included (``"timm:resnet1*"``).

    Args:
        pattern: Optional ``fnmatch`` pattern.

    Returns:
        Sorted names.

    Examples:
        >>> list_encoders()
        ['timm:<name>', 'unet']
        >>> list_encoders("timm:resnet18*")[:2]
        ['timm:resnet18', 'timm:resnet18d']
    """
    if pattern is None:
        return list(_FAMILIES)
    names = ["unet"]
    if pattern.startswith("timm:") or "*" in pattern.split(":", 1)[0]:
        import timm

        names += [f"timm:{n}" for n in timm.list_models()]
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def create_encoder(name: str, **kwargs: Any) -> nn.Module:
    """Build an encoder by name.

    Args:
        name: ``"unet"`` (:class:`~sslkeypoint.encoders.UNetEncoder`) or ``"timm:<model name>"``
            (:class:`~sslkeypoint.encoders.TimmEncoder`, e.g. ``"timm:resnet18"``).
        **kwargs: Arguments of the encoder class (``in_chans``, ``widths``, ``pretrained_file``, ...).

    Returns:
        The encoder.

    Raises:
        ValueError: If the name is unknown; the message lists the valid choices (and close timm
            names).

    Examples:
        >>> enc = create_encoder("unet", in_chans=1, widths=(8, 16), bottleneck_width=32)
        >>> enc.channels, enc.reductions
        ([8, 16, 32], [1, 2, 4])
        >>> create_encoder("timm:resnet18").reductions
        [2, 4, 8, 16, 32]
        >>> create_encoder("unett")
        Traceback (most recent call last):
        ...
        ValueError: unknown encoder 'unett'; valid choices: timm:<name>, unet (did you mean: unet?)
    """
    if name == "unet":
        return UNetEncoder(**kwargs)
    if name.startswith("timm:"):
        model = name[len("timm:") :]
        import timm

        if not timm.is_model(model):
            close = [f"timm:{n}" for n in timm_close_matches(model)]
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            raise ValueError(
                f"unknown encoder {name!r}: timm has no model {model!r}{hint}; "
                "list_encoders('timm:<pattern>') lists the timm names"
            )
        return TimmEncoder(model, **kwargs)
    close = difflib.get_close_matches(name, ["unet"], n=1)
    if not close and ":" not in name:
        import timm

        if timm.is_model(name):
            close = [f"timm:{name}"]
    hint = f" (did you mean: {', '.join(close)}?)" if close else ""
    raise ValueError(f"unknown encoder {name!r}; valid choices: {', '.join(_FAMILIES)}{hint}")
