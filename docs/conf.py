"""Sphinx configuration: the docstrings are reStructuredText (math, cross-references) in the
NumPy style, so autodoc + napoleon render them; the narrative pages are Markdown (MyST)."""

from __future__ import annotations

import fastdescent

project = "fastdescent"
author = "the fastdescent authors"
release = fastdescent.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

# The API reference documents what `import fastdescent as fd` exposes, members in source order.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autoclass_content = "both"
napoleon_numpy_docstring = True
napoleon_google_docstring = False

myst_enable_extensions = ["dollarmath"]

myst_heading_anchors = 3

html_theme = "furo"
html_title = f"fastdescent {release}"
