"""pytest-benchmark suite: gradient accumulation (``fd.accumulate``, ``fd.row_mean``) and
clipping by global norm (``fd.clip_by_global_norm``), every fastdescent backend against the
same work written plainly in NumPy and, when installed, torch; grouped by (operation,
workload, dtype, threads) so that pytest-benchmark's table puts the implementations of one
case side by side.

    python -m pytest benches/test_bench_transforms.py                          # full size
    FASTDESCENT_BENCH_SCALE=0.001 python -m pytest benches --benchmark-disable -q   # CI

The list workloads are :data:`fastdescent.bench.WORKLOADS` (one 10M tensor, 1000 tensors of
1000, one 16K tensor in cache); ``row_mean`` runs on a (256, 40K) matrix of per-sample
gradients (10M elements) and a (64, 1K) one in cache. ``FASTDESCENT_BENCH_SCALE`` shrinks
the large ones as in ``test_bench_optimizers.py``; ``FASTDESCENT_BENCH_ROUNDS`` sets the
timed rounds. Implementations that cannot run here (torch not installed, a backend that does
not load) are skipped with the reason.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import bench

SCALE = float(os.environ.get("FASTDESCENT_BENCH_SCALE", "1.0"))
ROUNDS = int(os.environ.get("FASTDESCENT_BENCH_ROUNDS", "10"))
THREADS = (1, 2)
ROUND_SECONDS = 2e-3
DTYPES = ("float32", "float64")
LIST_WORKLOADS = ("1x10M", "1000x1000", "1x16K")
#: (rows, columns, whether the scale shrinks the columns)
MATRICES = {"256x40K": (256, 40_000, True), "64x1K": (64, 1_000, False)}
IMPLEMENTATIONS = tuple(bench.FD_PREFIX + b for b in bench.fd_backends()) + ("numpy", "torch")
SCALE_BY = 0.5
MAX_NORM = 1.0


def _matrix(name: str, dtype: str) -> np.ndarray:
    rows, cols, scales = MATRICES[name]
    if scales:
        cols = max(1, round(cols * SCALE))
    return np.random.default_rng(0).standard_normal((rows, cols), dtype=np.dtype(dtype))


def _backend(implementation: str) -> str:
    backend = implementation[len(bench.FD_PREFIX):]
    try:
        fd.backends.load(backend)
    except ImportError as error:
        pytest.skip(f"backend {backend} does not load here: {error}")
    return backend


def _torch():
    try:
        return bench.import_torch()
    except bench.Unavailable as why:
        pytest.skip(str(why))


# Each builder returns a callable doing one operation (in place where it writes).

def _accumulate(implementation, accs, grads):
    if implementation == "numpy":
        def plain():
            for acc, grad in zip(accs, grads):
                acc += SCALE_BY * grad
        return plain
    if implementation == "torch":
        torch = _torch()
        ta, tg = [torch.from_numpy(a) for a in accs], [torch.from_numpy(g) for g in grads]
        return lambda: torch._foreach_add_(ta, tg, alpha=SCALE_BY)
    backend = _backend(implementation)
    return lambda: fd.accumulate(accs, grads, SCALE_BY, backend=backend)


def _clip(implementation, grads):
    if implementation == "numpy":
        def plain():
            norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
            if norm > MAX_NORM:
                for g in grads:
                    g *= MAX_NORM / (norm + 1e-6)
            return norm
        return plain
    if implementation == "torch":
        torch = _torch()
        tensors = []
        for g in grads:
            grad = torch.from_numpy(g)
            t = torch.zeros_like(grad).requires_grad_()
            t.grad = grad
            tensors.append(t)
        return lambda: torch.nn.utils.clip_grad_norm_(tensors, MAX_NORM)
    backend = _backend(implementation)
    return lambda: fd.clip_by_global_norm(grads, MAX_NORM, backend=backend)


def _row_mean(implementation, matrix):
    out = np.empty(matrix.shape[1], matrix.dtype)
    if implementation == "numpy":
        return lambda: matrix.mean(axis=0)
    if implementation == "torch":
        torch = _torch()
        tensor, target = torch.from_numpy(matrix), torch.from_numpy(out)
        return lambda: torch.mean(tensor, dim=0, out=target)
    backend = _backend(implementation)
    return lambda: fd.row_mean(matrix, out, backend=backend)


def _run(benchmark, operation, threads):
    with bench.with_threads(threads):
        operation()  # first call: numba compilation, torch's lazy setup
        start = time.perf_counter()
        operation()
        once = time.perf_counter() - start
        iterations = min(10_000, max(1, math.ceil(ROUND_SECONDS / max(once, 1e-9))))
        benchmark.pedantic(operation, rounds=ROUNDS, warmup_rounds=1, iterations=iterations)


LIST_CASES = [
    pytest.param(op, workload, dtype, implementation, threads,
                 id=f"{op}-{workload}-{dtype}-{implementation}-t{threads}")
    for op in ("accumulate", "clip_by_global_norm")
    for workload in LIST_WORKLOADS
    for dtype in DTYPES
    for implementation in IMPLEMENTATIONS
    for threads in THREADS
]


@pytest.mark.parametrize("op,workload,dtype,implementation,threads", LIST_CASES)
def test_list_operation(benchmark, op, workload, dtype, implementation, threads):
    accs, grads = bench.make_data(workload, dtype, SCALE)
    benchmark.group = f"{op} {workload} {dtype} threads={threads}"
    benchmark.extra_info.update(elements=sum(g.size for g in grads), tensors=len(grads),
                                scale=SCALE)
    if op == "accumulate":
        operation = _accumulate(implementation, accs, grads)
    else:
        operation = _clip(implementation, grads)
    _run(benchmark, operation, threads)
    assert np.isfinite(accs[0][:64]).all() and np.isfinite(grads[0][:64]).all()


MATRIX_CASES = [
    pytest.param(name, dtype, implementation, threads,
                 id=f"row_mean-{name}-{dtype}-{implementation}-t{threads}")
    for name in MATRICES
    for dtype in DTYPES
    for implementation in IMPLEMENTATIONS
    for threads in THREADS
]


@pytest.mark.parametrize("name,dtype,implementation,threads", MATRIX_CASES)
def test_row_mean(benchmark, name, dtype, implementation, threads):
    matrix = _matrix(name, dtype)
    benchmark.group = f"row_mean {name} {dtype} threads={threads}"
    benchmark.extra_info.update(rows=matrix.shape[0], columns=matrix.shape[1], scale=SCALE)
    operation = _row_mean(implementation, matrix)
    _run(benchmark, operation, threads)
    result = fd.row_mean(matrix, backend="numpy")
    np.testing.assert_allclose(fd.row_mean(matrix), result, rtol=1e-5, atol=1e-6)
