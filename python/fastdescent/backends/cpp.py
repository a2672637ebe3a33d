"""The compiled backend: fused C++ kernels from ``fastdescent._core``.

Same function names, arguments and argument order as :mod:`fastdescent.backends.numpy`.
Importing this module raises ImportError when the extension is not built.
"""

from __future__ import annotations

from fastdescent._core import (  # noqa: F401  (re-exported kernel interface)
    adagrad_step,
    adam_step,
    first_nonfinite,
    get_num_threads,
    rmsprop_step,
    set_num_threads,
    sgd_step,
    simd_level,
)

NAME = "cpp"
