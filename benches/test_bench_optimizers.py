"""pytest-benchmark suite: one optimizer step, every optimizer x workload x dtype x
implementation x threads, grouped by (optimizer, workload, dtype, threads) so that
pytest-benchmark's table puts the implementations of one case side by side.

The cases come from :mod:`fastdescent.bench` (the same builders as ``fastdescent bench``).

    python -m pytest benches                                    # full size (minutes)
    FASTDESCENT_BENCH_SCALE=0.01 python -m pytest benches       # smaller tensors
    FASTDESCENT_BENCH_SCALE=0.001 python -m pytest benches --benchmark-disable -q   # CI

Environment: ``FASTDESCENT_BENCH_SCALE`` (default 1.0) shrinks the 10M tensor and the number
of tensors of the many-tensor workloads; ``FASTDESCENT_BENCH_ROUNDS`` (default 10) is the
number of timed rounds. Selecting with ``-k`` works on the ids, e.g. ``-k "Adam and 1x10M"``.
Combinations that do not exist (torch's fused mode for an optimizer torch has no fused
kernel for, such as RMSprop) are not generated; implementations that cannot run on this
machine (torch not installed, a backend that does not load) are skipped with the reason.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

from fastdescent import bench

SCALE = float(os.environ.get("FASTDESCENT_BENCH_SCALE", "1.0"))
ROUNDS = int(os.environ.get("FASTDESCENT_BENCH_ROUNDS", "10"))
THREADS = (1, 2)
#: each timed round lasts about this long (small steps are repeated within a round)
ROUND_SECONDS = 2e-3


def _exists(optimizer: str, implementation: str) -> bool:
    """False for torch's fused mode of an optimizer torch has no fused kernel for, and for
    the sqrt+div probe of SGD (which takes no square root)."""
    if implementation == "probe-sqrt-div":
        return optimizer != "SGD"
    if implementation != "torch-fused":
        return True
    try:
        import inspect

        import torch
    except ImportError:
        return True  # skipped at run time, with the reason
    return "fused" in inspect.signature(getattr(torch.optim, optimizer)).parameters


CASES = [
    pytest.param(workload, dtype, optimizer, implementation, threads,
                 id=f"{optimizer}-{workload}-{dtype}-{implementation}-t{threads}")
    for workload in bench.WORKLOADS
    for dtype in bench.DTYPES
    for optimizer in bench.OPTIMIZERS
    for implementation in bench.implementations()
    if _exists(optimizer, implementation)
    for threads in THREADS
]

_data_cache: dict = {}


def _data(workload: str, dtype: str):
    """The (params, grads) of a workload; only the last one asked for is kept (the 10M
    tensors are large)."""
    key = (workload, dtype, SCALE)
    if key not in _data_cache:
        _data_cache.clear()
        _data_cache[key] = bench.make_data(workload, dtype, SCALE)
    return _data_cache[key]


@pytest.mark.parametrize("workload,dtype,optimizer,implementation,threads", CASES)
def test_step(benchmark, workload, dtype, optimizer, implementation, threads):
    params, grads = _data(workload, dtype)
    try:
        case = bench.build(implementation, optimizer, params, grads)
    except bench.Unavailable as why:
        pytest.skip(str(why))
    elements = sum(p.size for p in params)
    benchmark.group = f"{optimizer} {workload} {dtype} threads={threads}"
    benchmark.extra_info.update(
        elements=elements, tensors=len(params), scale=SCALE,
        bytes_per_element=bench.bytes_per_element(optimizer, dtype))
    with bench.with_threads(threads):
        case.step()  # first call: lazy state, numba compilation
        start = time.perf_counter()
        case.step()
        once = time.perf_counter() - start
        iterations = min(10_000, max(1, math.ceil(ROUND_SECONDS / max(once, 1e-9))))
        benchmark.pedantic(case.step, rounds=ROUNDS, warmup_rounds=1, iterations=iterations)
    assert np.isfinite(case.params()[0][:64]).all()
