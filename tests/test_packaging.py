"""What the installed package carries: the version of its metadata (made from the git tag),
``py.typed``, and a stub of the compiled module that names exactly what the module has (so a
binding added or renamed without its stub fails here)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.resources
import inspect

import fastdescent as fd
from fastdescent import _core


def package_file(name):
    return importlib.resources.files("fastdescent").joinpath(name)


def stub_names():
    """The public top-level names of ``_core.pyi``, each class with its methods (inherited
    from a stub base class included); None for functions and attributes."""
    tree = ast.parse(package_file("_core.pyi").read_text())
    methods, names = {}, {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            own = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
            inherited = set().union(*(methods[base.id] for base in node.bases))
            methods[node.name] = own | inherited
            names[node.name] = methods[node.name]
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = None
    return {name: members for name, members in names.items() if not name.startswith("_")}


def module_names():
    """The same, read from the compiled module."""
    names = {}
    for name, value in vars(_core).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(value):
            names[name] = {member for member in vars(value)
                           if callable(getattr(value, member))
                           and (not member.startswith("_")
                               or member in ("__init__", "__len__", "__enter__", "__exit__"))}
        else:
            names[name] = None
    return names


def test_the_version_is_the_installed_metadata():
    assert fd.__version__ == importlib.metadata.version("fastdescent")
    assert fd.__version__ not in ("", "0+unknown")


def test_the_package_is_marked_typed():
    assert package_file("py.typed").is_file()


def test_the_stub_names_what_the_compiled_module_has():
    assert stub_names() == module_names()

