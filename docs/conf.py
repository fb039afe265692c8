"""Sphinx configuration for the sslkeypoint documentation."""

from __future__ import annotations

import importlib
from typing import Any

import sslkeypoint

project = "sslkeypoint"
author = "sslkeypoint developers"
copyright = "2026, sslkeypoint developers"
release = sslkeypoint.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_mock_imports: list[str] = []
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
nitpicky = False

html_theme = "furo"
html_title = f"sslkeypoint {release}"
html_static_path = ["_static"]
exclude_patterns = ["_build"]


def _resolve_reexport(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``sslkeypoint.pkg.Name`` to where ``Name`` is documented (``sslkeypoint.pkg.module.Name``).

    Packages re-export their modules' names; the API reference documents each name once, in its
    module, so a reference through the package is pointed there.
    """
    if node.get("refdomain") != "py":
        return None
    target = str(node.get("reftarget", ""))
    if not target.startswith(("sslkeypoint.", "iugc_aop.", "hc18_biometry.")):
        return None
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        owner = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if owner is None or qualname is None:
            return None
        real = f"{owner}.{qualname}"
        if real == target:
            return None
        return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"], real, node,
                                                 contnode)
    return None


def setup(app: Any) -> None:
    """Connect the resolver of re-exported names."""
    app.connect("missing-reference", _resolve_reexport)
