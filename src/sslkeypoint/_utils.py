"""Small helpers shared by the primitive modules (not part of the public API)."""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np
from torch import Tensor

# Kept here for the modules that import it from here (inference, data.formats.coco).


def size_pair(size: int | Sequence[int] | Tensor, name: str = "size") -> tuple[int, int]:
    """Return ``size`` (one whole number, or two ``(H, W)``) as a tuple of two positive ints.

    Nothing is truncated: whole numbers given as floats (``64.0``, e.g. ``256 / 4``) are taken;
    anything else that is not a positive whole number (``64.5``, ``0``, ``True``, ``"64"``, NaN)
    is refused.

    Raises:
        ValueError: naming ``name`` and the value received.

    Examples:
        >>> size_pair(256 / 4, "heatmap_size")
        (64, 64)
        >>> size_pair((64.5, 64), "heatmap_size")
        Traceback (most recent call last):
        ...
        ValueError: heatmap_size must be positive whole numbers of pixels (H, W); got (64.5, 64)
    """
    values = size.tolist() if hasattr(size, "tolist") else size  # tensors and numpy arrays
    if isinstance(values, Sequence) and not isinstance(values, str | bytes):
        items: list[Any] = list(values)
    else:
        items = [values, values]
    if len(items) != 2:
        raise ValueError(f"{name} must be a whole number or (H, W); got {size!r} ({len(items)} values)")
    pair = []
    for value in items:
        whole = (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and float(value).is_integer()
            and float(value) >= 1
        )
        if not whole:
            raise ValueError(f"{name} must be positive whole numbers of pixels (H, W); got {size!r}")
        pair.append(int(value))
    return (pair[0], pair[1])


def plain(obj: Any) -> Any:
    """``obj`` with tuples as lists, paths as strings and numpy scalars as Python numbers, recursively.

    The result is JSON-ready and loads with ``torch.load(weights_only=True)``.

    Examples:
        >>> plain({"size": (2, 3), "nested": [(1, 2)]})
        {'size': [2, 3], 'nested': [[1, 2]]}
    """
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def dataclass_to_spec(obj: Any) -> dict[str, Any]:
    """A dataclass instance as ``{"class": "module.Qualname", "kwargs": {field: value}}`` (plain types).

    The stored form of codecs and measures: it names the class by its import path, so a class of
    the user's own round-trips as well as the library's.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise ValueError(f"{type(obj).__name__} is stored by its dataclass fields, but it is not a dataclass")
    kwargs = {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    cls = type(obj)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "kwargs": kwargs}


def dataclass_from_spec(spec: Mapping[str, Any], what: str) -> Any:
    """Rebuild an object written by :func:`dataclass_to_spec`; lists become tuples.

    Raises:
        ValueError: Naming ``what`` when the spec is malformed or its class cannot be imported or built.
    """
    if not isinstance(spec, Mapping) or "class" not in spec:
        raise ValueError(f"a stored {what} needs a 'class' entry; got {spec!r}")
    path = str(spec["class"])
    module_name, _, qualname = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"cannot import the {what} class {path!r}: {err}") from None
    if not isinstance(obj, type) or not dataclasses.is_dataclass(obj):
        raise ValueError(f"the {what} class {path!r} is not a dataclass")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(spec.get("kwargs") or {}).items()}
    try:
        return obj(**kwargs)
    except TypeError as err:
        raise ValueError(f"cannot build the {what} {path} from {kwargs}: {err}") from None
