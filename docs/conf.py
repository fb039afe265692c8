"""Sphinx configuration for the sslkeypoint documentation."""

from __future__ import annotations

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
