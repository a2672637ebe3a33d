"""The compiled backend: fused C++ kernels from ``fastdescent._core``.

Same function names, arguments and argument order as :mod:`fastdescent.backends.numpy`.
Importing this module raises ImportError when the extension is not built.

The extension carries the kernels compiled for several instruction-set levels (x86-64:
``baseline`` (SSE2), ``avx2`` (AVX2 + FMA), ``avx512``) and runs the highest this CPU
supports. The environment variable ``FASTDESCENT_SIMD`` asks for a lower one (to compare
levels, or to rule one out); :func:`set_simd_level` does the same at run time.
"""

from __future__ import annotations

import os
import warnings

# A from-import, so that an extension from an older build (a name missing) is an ImportError
# and the selection falls back to the next backend.
from fastdescent._core import (  # noqa: F401  (re-exported kernel interface)
    AdagradPlan,
    AdamPlan,
    RMSpropPlan,
    SGDPlan,
    accumulate,
    adagrad_step,
    adam_step,
    clip_,
    ema_update,
    first_nonfinite,
    get_num_threads,
    rmsprop_step,
    row_mean,
    scale_,
    set_num_threads,
    set_simd_level,
    sgd_step,
    simd_level,
    stream_probe,
    sum_of_squares,
    supported_simd_levels,
)

NAME = "cpp"

#: the compiled step plans (see :mod:`fastdescent.backends.plan`)
PLANS = {"sgd": SGDPlan, "adagrad": AdagradPlan, "rmsprop": RMSpropPlan, "adam": AdamPlan}

_requested = os.environ.get("FASTDESCENT_SIMD", "").strip()
if _requested:
    try:
        set_simd_level(_requested)
    except ValueError as error:
        warnings.warn(f"FASTDESCENT_SIMD={_requested!r} ignored: {error}; running "
                      f"{simd_level()} (supported here: {', '.join(supported_simd_levels())})",
                      RuntimeWarning, stacklevel=2)
