"""fastdescent: fused native gradient-descent optimizers for NumPy arrays.

>>> import numpy as np, fastdescent as fd
>>> w = np.zeros(3, dtype=np.float32)
>>> opt = fd.Adam([w], lr=1e-3)
>>> opt.step([np.ones(3, dtype=np.float32)])     # w and the optimizer state change in place
"""

from importlib import metadata as _metadata

try:  # the version is the git tag's, written into the installed metadata at build time
    __version__ = _metadata.version("fastdescent")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

from .backends import BackendWarning, get_backend, set_backend
from .checkpoint import load, save
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .runtime import backend_info, get_num_threads, set_num_threads
from .accumulate import GradientAccumulator, accumulate, row_mean
from .transforms import (EMA, Chain, ClipByGlobalNorm, ClipByValue, SkipNonFinite, chain,
                         clip_by_global_norm, clip_by_value, global_norm, skip_nonfinite)
from . import models, plot
from . import problems, schedules
from .minimize import minimize
from .newton import newton
from .result import OptimizeResult

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Optimizer",
    "get_backend", "set_backend", "BackendWarning", "backend_info", "set_num_threads",
    "get_num_threads", "save", "load", "__version__",
    "accumulate", "row_mean", "GradientAccumulator", "global_norm", "clip_by_global_norm",
    "clip_by_value", "ClipByGlobalNorm", "ClipByValue", "SkipNonFinite", "skip_nonfinite", "EMA",
    "Chain", "chain",
    "schedules", "problems", "minimize", "newton", "OptimizeResult", "models", "plot",
]


def __getattr__(name):
    # fd.distributed is imported on first use: it is the one part that needs mpi4py (the
    # `mpi` extra), and it never imports mpi4py itself until a wrapper is built.
    if name == "distributed":
        import importlib
        return importlib.import_module(".distributed", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
