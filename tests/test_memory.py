"""Memory: a long run keeps its footprint, a compiled step allocates nothing, and arrays of
more than 2**31 elements are indexed correctly."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

import fastdescent as fd


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; elsewhere ru_maxrss is a peak, not
    a current size, so the test needs /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="needs Linux /proc")

LONG_RUN = 100_000
TRACED_STEPS = 2_000


@needs_proc
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_hundred_thousand_steps_keep_memory_flat(backend, name):
    """After a warm-up, 100,000 more steps (cpp; 10,000 on the slower backends) grow the
    resident set by less than 1 MiB, and 2,000 more grow Python's traced allocations by
    less than 64 KiB: nothing is retained per step."""
    steps = LONG_RUN if backend == "cpp" else LONG_RUN // 10
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(1000).astype(np.float32), rng.standard_normal((10, 10))]
    grads = [np.full_like(p, 1e-3) for p in params]
    opt = (fd.SGD(params, lr=1e-3, momentum=0.9, backend=backend) if name == "SGD"
           else fd.Adam(params, lr=1e-3, amsgrad=True, backend=backend))
    for _ in range(1000):
        opt.step(grads)
    rss_before = rss_bytes()
    for _ in range(steps):
        opt.step(grads)
    rss_after = rss_bytes()
    tracemalloc.start()  # slows every allocation down: over fewer steps
    try:
        traced_before = tracemalloc.get_traced_memory()[0]
        for _ in range(TRACED_STEPS):
            opt.step(grads)
        traced_after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    print(f"{backend} {name}: RSS {rss_before / 2**20:.2f} -> {rss_after / 2**20:.2f} MiB "
          f"over {steps} steps; traced {traced_before} -> {traced_after} B over "
          f"{TRACED_STEPS} more")
    assert opt.step_count == 1000 + steps + TRACED_STEPS
    assert rss_after - rss_before < 2 ** 20
    assert traced_after - traced_before < 64 * 2 ** 10


def peak_of_steps(backend, n=1_000_000, steps=3):
    """The peak of traced allocations (NumPy reports its array buffers to tracemalloc)
    during ``steps`` Adam steps over ``n`` float32 elements, above what was held before."""
    w = np.zeros(n, np.float32)
    g = np.ones(n, np.float32)
    opt = fd.Adam([w], lr=1e-3, amsgrad=True, backend=backend)
    opt.step([g])  # state created, plan bound, kernels compiled: outside the measurement
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(steps):
            opt.step([g])
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_compiled_step_allocates_no_numpy_temporaries():
    """A cpp step over 4 MB of float32 allocates less than 16 KiB in all (no array of the
    param's size); the NumPy reference, measured the same way, allocates several arrays
    of it: the measurement sees temporaries when there are some."""
    n = 1_000_000
    compiled = peak_of_steps("cpp", n)
    reference = peak_of_steps("numpy", n)
    print(f"peak traced allocation during a step: cpp {compiled} B, numpy {reference} B")
    assert compiled < 16 * 2 ** 10
    assert reference >= 4 * n


# --------------------------------------------------------------------- beyond 2**31 elements

BIG = 2 ** 31 + 8


def available_memory() -> int:
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024


@needs_proc
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_arrays_beyond_2_to_the_31_elements_are_indexed_correctly(backend):
    """SGD (lr 1, no momentum: no state) over a float32 param of 2**31 + 8 elements (8 GiB)
    and a small one. The gradient is np.zeros, written only near both ends and around
    index 2**31, so its untouched pages stay the kernel's shared zero page: the run needs
    about 8 GiB, not 16. Elements on both sides of 2**31 and at both ends move by exactly
    their gradient; the rest stay 0."""
    need = BIG * 4 + 2 ** 30
    if available_memory() < need:
        pytest.fail(f"this test needs {need / 2**30:.1f} GiB of available memory, "
                    f"the machine has {available_memory() / 2**30:.1f}")
    param = np.zeros(BIG, np.float32)
    grad = np.zeros(BIG, np.float32)
    small, small_grad = np.zeros(16, np.float32), np.arange(16, dtype=np.float32)
    marked = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, BIG - 2, BIG - 1]
    for k, i in enumerate(marked):
        grad[i] = k + 1
    opt = fd.SGD([param, small], lr=1.0, backend=backend)
    opt.step([grad, small_grad])
    for k, i in enumerate(marked):
        assert param[i] == -(k + 1), i
    for i in (2, 2 ** 30, 2 ** 31 - 2, 2 ** 31 + 2, BIG - 3):
        assert param[i] == 0, i
    assert (small == -small_grad).all()
