"""fastdescent: fused native gradient-descent optimizers for NumPy arrays.

>>> import numpy as np, fastdescent as fd
>>> w = np.zeros(3, dtype=np.float32)
>>> opt = fd.Adam([w], lr=1e-3)
>>> opt.step([np.ones(3, dtype=np.float32)])     # w and the optimizer state change in place
"""

__version__ = "0.1.0"

from .backends import BackendWarning, get_backend, set_backend
from .checkpoint import load, save
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .runtime import backend_info, get_num_threads, set_num_threads
from . import models, plot
from . import problems, schedules
from .minimize import minimize
from .newton import newton
from .result import OptimizeResult

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Optimizer",
    "get_backend", "set_backend", "BackendWarning", "backend_info", "set_num_threads",
    "get_num_threads", "save", "load", "__version__",
    "schedules", "problems", "minimize", "newton", "OptimizeResult",
]
