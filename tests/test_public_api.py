"""The public face of the package: sorted, importable, documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import sslkeypoint

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_all_is_sorted_and_unique() -> None:
    assert sslkeypoint.__all__ == sorted(set(sslkeypoint.__all__))


def test_every_exported_name_resolves_and_has_a_docstring() -> None:
    for name in sslkeypoint.__all__:
        obj = getattr(sslkeypoint, name)
        if name == "__version__":
            assert isinstance(obj, str) and obj.count(".") >= 2
            continue
        assert inspect.getdoc(obj), f"sslkeypoint.{name} has no docstring"


def test_every_public_module_is_in_the_api_reference() -> None:
    documented = "\n".join(p.read_text() for p in (DOCS / "api").glob("*.rst"))
    for info in pkgutil.walk_packages(sslkeypoint.__path__, prefix="sslkeypoint."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts):
            continue
        # A package re-exports its submodules' names; the submodules are documented one by one.
        if info.ispkg:
            continue
        importlib.import_module(info.name)
        assert f"automodule:: {info.name}\n" in documented, f"{info.name} is missing from docs/api/"
