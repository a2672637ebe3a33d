"""Backends: interchangeable modules that implement the kernel interface.

A backend is a module with the functions ``sgd_step``, ``adagrad_step``, ``rmsprop_step``,
``adam_step``, ``first_nonfinite``, ``simd_level``, ``get_num_threads`` and
``set_num_threads``, and the gradient accumulation and transformation kernels
``accumulate``, ``row_mean``, ``sum_of_squares``, ``scale_``, ``clip_`` and ``ema_update``
(which check their own arguments: see :mod:`fastdescent.backends.lists`), with the same
arguments in the same order in every backend.

``cpp``
    the compiled C++ kernels (the default);
``numba``
    the same kernels compiled at run time by numba (``pip install fastdescent[numba]``):
    the fallback when the extension was not built;
``numpy``
    the readable reference, always available.

At import the first available of ``cpp``, ``numba``, ``numpy`` is chosen, unless the
environment variable ``FASTDESCENT_BACKEND`` names one; :func:`set_backend` changes the
default for optimizers created afterwards, and each optimizer takes ``backend=`` too. A
backend module is imported only when it is chosen or asked for (numba is never imported
while the extension works). When the default falls back from ``cpp``, the first optimizer
created warns once (:class:`BackendWarning`), saying which backend runs and how to get the
fast one; choosing a backend explicitly (either way above, or ``backend=``) does not warn.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from types import FrameType, ModuleType

NAMES = ("cpp", "numba", "numpy")
_PREFERENCE = ("cpp", "numba", "numpy")

_loaded: dict[str, ModuleType] = {}
_errors: dict[str, str] = {}  # why a backend did not load, for the fallback warning
_default: str | None = None
_explicit = False  # the default was named by the user (FASTDESCENT_BACKEND, set_backend)
_warned = False
_num_threads: int | None = None  # the last set_num_threads, for backends loaded later


class BackendWarning(UserWarning):
    """The default backend is a fallback: the compiled extension did not load."""


def load(name: str) -> ModuleType:
    """The backend module called ``name``; ValueError for an unknown name, ImportError when
    it cannot be loaded here."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, one of {NAMES}, not {type(name).__name__}")
    if name not in NAMES:
        raise ValueError(f"backend must be one of {NAMES}, got {name!r}")
    if name not in _loaded:
        # Backends may share a threading runtime (OpenMP): loading one must not change the
        # threads of those already loaded.
        threads = {other: module.get_num_threads() for other, module in _loaded.items()}
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:
            _errors[name] = str(exc) or type(exc).__name__
            raise
        for other, n in threads.items():
            if _loaded[other].get_num_threads() != n:
                _loaded[other].set_num_threads(n)
        if _num_threads is not None:
            module.set_num_threads(_num_threads)
        _loaded[name] = module
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
    global _explicit
    requested = os.environ.get("FASTDESCENT_BACKEND", "").strip()
    if requested:
        try:
            load(requested)
        except ValueError:
            raise ValueError(
                f"FASTDESCENT_BACKEND must be one of {NAMES}, got {requested!r}") from None
        _explicit = True
        return requested
    # The first that loads; later ones are not imported.
    for name in _PREFERENCE:
        try:
            load(name)
        except ImportError:
            continue
        return name
    raise ImportError("no fastdescent backend loads, not even numpy")  # pragma: no cover


def get_backend() -> str:
    """Name of the backend new optimizers use."""
    global _default
    if _default is None:
        _default = _choose_default()
    return _default


def set_backend(name: str) -> None:
    """Make ``name`` the backend of optimizers created from now on."""
    global _default, _explicit
    load(name)
    _default = name
    _explicit = True


def resolve(name: str | None) -> ModuleType:
    """The module for ``name``, or the current default when ``name`` is None (the first
    time a fallback default is resolved this way, it warns: see :class:`BackendWarning`)."""
    if name is not None:
        return load(name)
    module = load(get_backend())
    if not _explicit and module.NAME != _PREFERENCE[0]:
        _warn_fallback(module.NAME)
    return module


def set_num_threads(n: int) -> None:
    """Set the threads of every loaded backend, and of those loaded later (loading none)."""
    global _num_threads
    load(get_backend()).set_num_threads(n)  # the default's check of n (ValueError) first
    for module in _loaded.values():
        module.set_num_threads(n)
    _num_threads = n


def _fallback_message(name: str) -> str:
    why = _errors.get("cpp", "it did not load")
    message = (f"fastdescent's compiled extension (fastdescent._core) is not available "
               f"({why}); optimizers run on the {name} backend, ")
    if name == "numba":
        message += ("which compiles its kernels on first use (cached on disk afterwards). "
                    "For the C++ kernels, install a C++17 compiler and reinstall fastdescent "
                    "(pip install --force-reinstall --no-binary fastdescent fastdescent).")
    else:
        message += ("the slow NumPy reference. For fast kernels, install a C++17 compiler "
                    "and reinstall fastdescent (pip install --force-reinstall --no-binary "
                    "fastdescent fastdescent), or install numba: "
                    "pip install 'fastdescent[numba]'")
        if "numba" in _errors:
            message += f" (numba did not load: {_errors['numba']})"
        message += "."
    return message + (f" Choose a backend explicitly (FASTDESCENT_BACKEND={name} or "
                      f"fastdescent.set_backend({name!r})) to silence this warning.")


def _warn_fallback(name: str) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(_fallback_message(name), BackendWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside fastdescent."""
    package = __name__.split(".")[0]
    frame: FrameType | None = sys._getframe(2)  # the caller of _warn_fallback's caller
    level = 2
    while frame is not None and (frame.f_globals.get("__name__", "") + ".").startswith(
            package + "."):
        frame, level = frame.f_back, level + 1
    return level
