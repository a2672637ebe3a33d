"""Backends: interchangeable modules that implement the kernel interface.

A backend is a module with the functions ``sgd_step``, ``adagrad_step``, ``rmsprop_step``,
``adam_step``, ``first_nonfinite``, ``simd_level``, ``get_num_threads`` and
``set_num_threads``, with the same arguments in the same order in every backend.

``cpp``
    the compiled C++ kernels (the default);
``numpy``
    the readable reference, always available.

At import the first available of ``cpp``, ``numpy`` is chosen, unless the environment
variable ``FASTDESCENT_BACKEND`` names one; :func:`set_backend` changes the default for
optimizers created afterwards, and each optimizer takes ``backend=`` too.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

NAMES = ("cpp", "numpy")
_PREFERENCE = ("cpp", "numpy")

_loaded: dict[str, ModuleType] = {}
_default: str | None = None


def load(name: str) -> ModuleType:
    """The backend module called ``name``; ValueError for an unknown name, ImportError when
    it cannot be loaded here."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, one of {NAMES}, not {type(name).__name__}")
    if name not in NAMES:
        raise ValueError(f"backend must be one of {NAMES}, got {name!r}")
    if name not in _loaded:
        _loaded[name] = importlib.import_module(f"{__name__}.{name}")
    return _loaded[name]


def available() -> list[str]:
    """Names of the backends that load on this machine, in order of preference."""
    names = []
    for name in _PREFERENCE:
        try:
            load(name)
        except ImportError:
            continue
        names.append(name)
    return names


def _choose_default() -> str:
    requested = os.environ.get("FASTDESCENT_BACKEND", "").strip()
    if requested:
        try:
            load(requested)
        except ValueError:
            raise ValueError(
                f"FASTDESCENT_BACKEND must be one of {NAMES}, got {requested!r}") from None
        return requested
    return available()[0]


def get_backend() -> str:
    """Name of the backend new optimizers use."""
    global _default
    if _default is None:
        _default = _choose_default()
    return _default


def set_backend(name: str) -> None:
    """Make ``name`` the backend of optimizers created from now on."""
    global _default
    load(name)
    _default = name


def resolve(name: str | None) -> ModuleType:
    """The module for ``name``, or the current default when ``name`` is None."""
    return load(get_backend() if name is None else name)
