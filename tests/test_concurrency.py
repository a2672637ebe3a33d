"""Threads: kernels release the GIL, optimizers of their own step in parallel with the
results of a serial run, and threads sharing one optimizer never interleave its steps.

Nothing here asserts a duration; the thread speedup is measured by
``tools/thread_speedup.py``.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import fastdescent as fd
from conftest import assert_same
from fastdescent.backends.plan import make_plan

THREADS = 4


def run_threads(target, count=THREADS):
    """Start ``count`` threads running ``target(k)`` at once; re-raise the first error."""
    errors = []
    barrier = threading.Barrier(count)

    def body(k):
        try:
            barrier.wait()
            target(k)
        except BaseException as error:  # noqa: BLE001 (handed to the main thread)
            errors.append(error)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def grads_of(seed, params, steps):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(p.shape).astype(p.dtype) for p in params]
            for _ in range(steps)]


def adam(backend, seed, n=20_000):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(np.float32), rng.standard_normal((30, 7))]
    return fd.Adam(params, lr=0.01, amsgrad=True, weight_decay=0.01, backend=backend)


# ------------------------------------------------------------------ optimizers of their own


def test_threads_stepping_their_own_optimizers_match_a_serial_run(backend):
    steps = 30
    threaded = [adam(backend, seed) for seed in range(THREADS)]
    serial = [adam(backend, seed) for seed in range(THREADS)]
    grads = [grads_of(100 + seed, serial[seed].params, steps) for seed in range(THREADS)]
    for opt, gs in zip(serial, grads):
        for g in gs:
            opt.step(g)

    def train(k):
        for g in grads[k]:
            threaded[k].step(g)

    run_threads(train)
    for a, b in zip(threaded, serial):
        assert_same(a, b)


def test_a_step_releases_the_gil(backend):
    """While one thread is inside a step over a large array, another thread runs Python:
    its loop leaves a timestamp inside the step's middle half. (Holding the GIL, the step
    would let no bytecode run between its start and end.) An ordering, not a duration."""
    w = np.zeros(4_000_000, np.float32)
    g = np.ones_like(w)
    opt = fd.SGD([w], lr=1e-3, backend=backend)
    opt.step([g])  # compiled (numba) and bound before anything is watched
    stop = threading.Event()
    stamps = []

    def watch():
        while not stop.is_set():
            stamps.append(time.perf_counter())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        inside = 0
        for _ in range(50):
            t0 = time.perf_counter()
            opt.step([g])
            t1 = time.perf_counter()
            quarter = (t1 - t0) / 4
            inside += sum(t0 + quarter < s < t1 - quarter for s in stamps[-100_000:])
            if inside:
                break
    finally:
        stop.set()
        watcher.join()
    assert inside > 0


# --------------------------------------------------------------------- one shared optimizer


# A schedule makes every step the full path (Python, then the plan); a constant lr makes
# every step after the first one call (plan.step_ready, taking the lock in the plan). 70_000
# elements release the GIL in the kernel, 100 keep it.
@pytest.mark.parametrize("name", ["SGD", "Adam"])
@pytest.mark.parametrize("lr", ["schedule", "constant"])
@pytest.mark.parametrize("size", [70_000, 100])
def test_threads_sharing_an_optimizer_take_turns(backend, name, lr, size):
    """Every step of every thread happens once, whole: with gradients of small integers
    and lr 1 the arithmetic is exact, so SGD's param is minus the sum of all gradients in
    any order; the step count, the state's counts and the schedule's calls agree."""
    per_thread = 50
    w = np.zeros(size, np.float64)
    calls = []

    def schedule(t):
        calls.append(t)
        return 1.0

    rate = schedule if lr == "schedule" else 1.0
    if name == "SGD":
        opt = fd.SGD([w], lr=rate, backend=backend)
    else:
        opt = fd.Adam([w], lr=rate, backend=backend)
    grads = [np.full_like(w, k + 1) for k in range(THREADS)]

    def train(k):
        for _ in range(per_thread):
            opt.step([grads[k]])

    run_threads(train)
    total = THREADS * per_thread
    assert opt.step_count == total
    if lr == "schedule":
        assert sorted(calls) == list(range(1, total + 1)), "each step number was used once"
    if name == "SGD":
        assert (w == -per_thread * sum(range(1, THREADS + 1))).all()
    else:
        assert opt.state[0]["step"] == total


@pytest.mark.parametrize("kind", ["optimizer's", "python"])
def test_the_optimizer_lock_is_reentrant_and_held_by_one_thread(kind):
    """The lock a step takes (in C++ on the compiled backend, else the Python one) is
    reentrant, as a schedule calling into its optimizer needs, and keeps every other thread
    out until released."""
    from fastdescent.optim.step_lock import PythonStepLock

    # The compiled plans bind the compiled lock only: the Python lock with a Python plan.
    opt = fd.SGD([np.zeros(3)], lr=0.1, backend="numpy" if kind == "python" else None)
    if kind == "python":
        opt._lock = PythonStepLock()
    lock = opt._lock
    entered = threading.Event()
    with lock:
        with lock:
            waiter = threading.Thread(target=lambda: (lock.__enter__(), entered.set(),
                                                      lock.__exit__(None, None, None)))
            waiter.start()
            assert not entered.wait(0.2), "another thread entered a held lock"
        assert not entered.wait(0.1), "released once of twice, the lock is still held"
    assert entered.wait(10)
    waiter.join()
    opt.step([np.ones(3)])
    assert opt.step_count == 1


def test_a_state_dict_taken_during_steps_is_one_moment(backend):
    """SGD with momentum 1 and gradient 1: after n steps the buffer is n everywhere. A
    snapshot taken by another thread never holds a buffer half way between two steps or a
    count that disagrees with it."""
    w = np.zeros(300_000, np.float64)
    opt = fd.SGD([w], lr=1.0, momentum=1.0, backend=backend)
    g = np.ones_like(w)
    opt.step([g])
    done = threading.Event()
    snapshots = []

    def train(k):
        if k == 0:
            for _ in range(40):
                opt.step([g])
            done.set()
        else:
            while not done.is_set():
                snapshots.append(opt.state_dict())

    run_threads(train, 2)
    assert snapshots
    for state in snapshots:
        buffer = state["state"][0]["momentum_buffer"]
        assert (buffer == state["step_count"]).all()


def test_load_state_dict_during_steps_leaves_a_consistent_optimizer(backend):
    source = adam(backend, 0)
    source.step(grads_of(1, source.params, 1)[0])
    saved = source.state_dict()
    opt = adam(backend, 0)
    grads = grads_of(2, opt.params, 1)[0]

    def work(k):
        for _ in range(20):
            if k == 0:
                opt.step(grads)
            else:
                opt.load_state_dict(saved)

    run_threads(work, 2)
    # Whatever the order, the counts agree with each other and a further step works.
    assert all(s["step"] == opt.step_count for s in opt.state.values())
    opt.step(grads)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_a_plan_refuses_a_concurrent_step_and_never_interleaves(backend, kind):
    """Below the optimizer's lock, a plan called from several threads at once runs one
    step and refuses the others (RuntimeError); no step is lost or doubled: with lr 1, no
    momentum and gradient 1, the param is minus the number of completed steps."""
    from fastdescent import backends

    w = np.zeros(1_000_000, np.float64)
    steps = np.zeros(1, np.int64)
    module = backends.load(backend)
    if kind == "sgd":
        plan = make_plan(module, "sgd", [w], [None], [0], steps, 1)
        plan.set_group(0, lr=1.0, momentum=0.0, dampening=0.0, weight_decay=0.0,
                       nesterov=False, maximize=False)
    else:
        state = [[np.zeros_like(w)], [np.zeros_like(w)], None]
        plan = make_plan(module, "adam", [w], state, [0], steps, 1)
        plan.set_group(0, lr=1.0, beta1=0.0, beta2=0.0, eps=1e-8, weight_decay=0.0,
                       amsgrad=False, maximize=False, decoupled_weight_decay=False)
    g = np.ones_like(w)
    plan.step([g])
    completed = [0] * THREADS
    refused = [0] * THREADS

    def hammer(k):
        for _ in range(30):
            try:
                plan.step([g])
                completed[k] += 1
            except RuntimeError as error:
                assert "already running" in str(error)
                refused[k] += 1

    run_threads(hammer)
    assert int(steps[0]) == 1 + sum(completed)
    assert sum(completed) > 0
    if kind == "sgd":
        assert (w == -(1 + sum(completed))).all()
    else:  # beta1 = beta2 = 0: every step moves each element by lr * 1 / (1 + eps)
        assert np.allclose(w, -(1 + sum(completed)), rtol=1e-6)


def test_the_thread_count_holds_in_every_thread(restore_threads):
    """fd.set_num_threads(1) in one thread limits the kernels that other threads run (an
    OpenMP setting alone belongs to the thread that made it: a worker thread's kernels
    would use every core, and two of them would oversubscribe the machine)."""
    fd.set_num_threads(1)
    seen = []
    run_threads(lambda k: seen.append(fd.get_num_threads()), 2)
    assert seen == [1, 1]
