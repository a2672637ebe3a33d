"""pytest-benchmark suite: fastdescent.torch against torch.optim on the same CPU tensors.

One optimizer step over every tensor of a workload (:data:`fastdescent.bench.WORKLOADS`),
each ``.grad`` set once before timing, as :mod:`fastdescent.bench` times torch. Side by
side in one group per (optimizer, workload, dtype, threads):

- ``fd-torch``: ``fastdescent.torch.<Optimizer>`` (the drop-in: reads ``.grad``, updates
  the tensors in place);
- ``fd-cpp``: ``fastdescent.<Optimizer>`` on NumPy views of the same memory (what the
  drop-in adds over it is the cost of its torch layer);
- ``torch-forloop``, ``torch-foreach``, ``torch-fused``: torch.optim's three CPU modes
  (torch has no fused RMSprop: that combination is not generated).

    python -m pytest benches/test_bench_torch.py                        # full size
    FASTDESCENT_BENCH_SCALE=0.001 python -m pytest benches/test_bench_torch.py \\
        --benchmark-disable -q                                           # CI

``FASTDESCENT_BENCH_SCALE`` and ``FASTDESCENT_BENCH_ROUNDS`` as in test_bench_optimizers.py.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

import fastdescent.torch as fdt
from fastdescent import bench
from test_bench_optimizers import ROUND_SECONDS, ROUNDS, SCALE, THREADS, _data, _exists

DROPIN = "fd-torch"
IMPLEMENTATIONS = (DROPIN, "fd-cpp", *bench.TORCH_MODES)

CASES = [
    pytest.param(workload, dtype, optimizer, implementation, threads,
                 id=f"{optimizer}-{workload}-{dtype}-{implementation}-t{threads}")
    for workload in bench.WORKLOADS
    for dtype in bench.DTYPES
    for optimizer in bench.OPTIMIZERS
    for implementation in IMPLEMENTATIONS
    if _exists(optimizer, implementation)
    for threads in THREADS
]


def build_dropin(optimizer, params, grads) -> bench.Case:
    """fastdescent.torch's ``optimizer`` over tensors sharing memory with copies of
    ``params``, their ``.grad`` viewing ``grads``."""
    params = [np.array(p, copy=True) for p in params]
    tensors = [torch.from_numpy(p).requires_grad_() for p in params]
    for tensor, grad in zip(tensors, grads):
        tensor.grad = torch.from_numpy(grad)
    opt = getattr(fdt, optimizer)(tensors, **bench.SETTINGS[optimizer])
    return bench.Case(DROPIN, opt.step, lambda: params, (opt, tensors))


def build(implementation, optimizer, params, grads) -> bench.Case:
    if implementation == DROPIN:
        return build_dropin(optimizer, params, grads)
    return bench.build(implementation, optimizer, params, grads)


@pytest.mark.parametrize("workload,dtype,optimizer,implementation,threads", CASES)
def test_torch_step(benchmark, workload, dtype, optimizer, implementation, threads):
    params, grads = _data(workload, dtype)
    benchmark.group = f"torch {optimizer} {workload} {dtype} threads={threads}"
    time_steps(benchmark, build(implementation, optimizer, params, grads), params, threads)


# float16 (issue 8): fastdescent computes in float32 and stores float16, as torch's fused
# kernel does; one 10M tensor moves 14 bytes per element instead of float32's 28.
FLOAT16_CASES = [
    pytest.param(implementation, threads, id=f"Adam-1x10M-float16-{implementation}-t{threads}")
    for implementation in (DROPIN, "fd-cpp", "torch-fused")
    for threads in THREADS
]


@pytest.mark.parametrize("implementation,threads", FLOAT16_CASES)
def test_float16_adam_step(benchmark, implementation, threads):
    _, size = bench.WORKLOADS["1x10M"].shape(SCALE)
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(size, dtype=np.float32).astype(np.float16)]
    grads = [rng.standard_normal(size, dtype=np.float32).astype(np.float16)]
    benchmark.group = f"torch Adam 1x10M float16 threads={threads}"
    time_steps(benchmark, build(implementation, "Adam", params, grads), params, threads)


def time_steps(benchmark, case: bench.Case, params, threads: int) -> None:
    benchmark.extra_info.update(elements=sum(p.size for p in params), tensors=len(params),
                                scale=SCALE)
    with bench.with_threads(threads):
        case.step()  # first call: lazy state
        start = time.perf_counter()
        case.step()
        once = time.perf_counter() - start
        iterations = min(10_000, max(1, math.ceil(ROUND_SECONDS / max(once, 1e-9))))
        benchmark.pedantic(case.step, rounds=ROUNDS, warmup_rounds=1, iterations=iterations)
    assert np.isfinite(case.params()[0][:64]).all()
