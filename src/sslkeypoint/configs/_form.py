"""The dict form every config shares: ``to_dict`` / ``from_dict`` in plain JSON-ready types."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from sslkeypoint._utils import plain

__all__: list[str] = []

C = TypeVar("C", bound="DictForm")


class DictForm:
    """``to_dict`` / ``from_dict`` of a config dataclass (plain JSON-ready types; unknown keys refused).

    A subclass may override :meth:`upgrade` to read the stored form of an earlier version.
    """

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings, None): JSON- and ``weights_only``-safe."""
        return plain(dataclasses.asdict(self))  # type: ignore[call-overload]

    @classmethod
    def upgrade(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """The stored form of an earlier version in this version's fields (default: unchanged)."""
        return dict(data)

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build from a dict such as :meth:`to_dict`'s; unknown keys raise ``ValueError``."""
        data = cls.upgrade(data)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; valid fields: {sorted(names)}")
        return cls(**dict(data))


def tuple_or_none(value: Any, cast: Any) -> tuple[Any, ...] | None:
    """``None``, or ``value`` as a tuple of ``cast`` items."""
    return None if value is None else tuple(cast(v) for v in value)
