"""Which backend runs, what it was compiled for, and how many threads it may use."""

from __future__ import annotations

import platform
from typing import Any

import numpy as np

from . import backends


def backend_info() -> dict[str, Any]:
    """What runs here: the default backend, its SIMD level and threads, the available
    backends, and versions."""
    from . import __version__

    name = backends.get_backend()
    module = backends.load(name)
    info = {
        "backend": name,
        "simd": module.simd_level(),
        "threads": module.get_num_threads(),
        "available": backends.available(),
        "fastdescent": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    try:
        from . import _core
    except ImportError:
        info["compiled"] = None
    else:
        info["compiled"] = {"simd": _core.simd_level(), "openmp": bool(_core.openmp),
                            "compiler": _core.compiler}
    return info


def set_num_threads(n: int) -> None:
    """Let kernel calls use up to ``n`` threads (large steps only: small ones run on one).

    Applies to every backend loaded so far and to those loaded later."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    backends.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads a large kernel call of the default backend may use."""
    return backends.load(backends.get_backend()).get_num_threads()
