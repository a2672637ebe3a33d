"""Benchmarks: fastdescent's optimizers against their peers and against the machine's limit.

Every optimizer runs on a set of workloads (shapes of the list of params) in float32 and
float64, with 1 and 2 threads, as:

``fd-cpp``, ``fd-numba``, ``fd-numpy``
    fastdescent on each backend that loads here (``fd.SGD(...).step(grads)``);
``numpy-seeds``
    NumPy as the seeds write it: a Python loop over the tensors, fresh temporaries for every
    expression (``m = b1*m + (1-b1)*g``), bias-corrected copies;
``numpy-inplace``
    NumPy in place: every ufunc writes with ``out=`` into the state or into one preallocated
    scratch buffer per tensor, still a Python loop over the tensors;
``torch-forloop``, ``torch-foreach``, ``torch-fused``
    torch.optim's three CPU modes (``foreach=False``, ``foreach=True``, ``fused=True``;
    torch has no fused RMSprop), on CPU tensors whose ``.grad`` is set once before timing;
``probe``
    the bandwidth probe of the compiled extension (``_core.stream_probe``): a plain streaming
    loop over one array of the workload's total size per array the optimizer touches,
    reading and writing the same bytes per element as the optimizer (:data:`ACCESS`). It is
    the machine's limit for that access pattern.
``probe-sqrt-div``
    the probe that also takes one square root and makes one division per element (the
    arithmetic Adagrad, RMSprop, Adam and AdamW add to the moves; not SGD, which has none).
    Where a rule is bound by the divider (in cache), this is its limit, not the plain probe.

:func:`run` measures a selection and returns :class:`Row` s (seconds per step, nanoseconds
per element, GB/s); :func:`format_table` prints, for each fastdescent row, the ratio to each
peer (peer time / fastdescent time: above 1, fastdescent is faster) and the fraction of the
probe's speed reached (probe time / fastdescent time), and of the sqrt+div probe's.
``fastdescent bench`` is the command
line, ``benches/`` the pytest-benchmark suite; both build their cases with :func:`build`.

torch and numba are imported only when a run asks for them; without them, their rows are
skipped with a note. Absolute times vary between machines and between minutes on a shared
one: compare the ratios of one run.
"""

from __future__ import annotations

import datetime
import functools
import gc
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------------------ the selection

OPTIMIZERS = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")

#: the options every implementation of an optimizer runs with (torch.optim's names)
SETTINGS: dict[str, dict] = {
    "SGD": {"lr": 1e-3, "momentum": 0.9},
    "Adagrad": {},
    "RMSprop": {},
    "Adam": {},
    "AdamW": {},
}

#: the torch.optim / fastdescent defaults the NumPy implementations need spelled out
_DEFAULTS: dict[str, dict] = {
    "SGD": {"lr": 1e-3, "momentum": 0.0},
    "Adagrad": {"lr": 1e-2, "lr_decay": 0.0, "eps": 1e-10},
    "RMSprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8},
    "Adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
    "AdamW": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2},
}

#: arrays read and arrays written per element by one step (with :data:`SETTINGS`):
#: SGD with momentum reads param, grad, momentum_buffer and writes param, momentum_buffer;
#: Adagrad (sum) and RMSprop (square_avg) likewise; Adam and AdamW read param, grad,
#: exp_avg, exp_avg_sq and write param, exp_avg, exp_avg_sq.
ACCESS: dict[str, tuple[int, int]] = {
    "SGD": (3, 2), "Adagrad": (3, 2), "RMSprop": (3, 2), "Adam": (4, 3), "AdamW": (4, 3),
}

DTYPES = ("float32", "float64")


def bytes_per_element(optimizer: str, dtype) -> int:
    """Bytes a step of ``optimizer`` moves per element: (arrays read + written) x itemsize."""
    reads, writes = ACCESS[optimizer]
    return (reads + writes) * np.dtype(dtype).itemsize


@dataclass(frozen=True)
class Workload:
    """A list of ``tensors`` params of ``size`` elements each. ``scales`` says what a scale
    below 1 shrinks: the number of tensors (many small tensors stay small), the size of the
    one tensor, or nothing (in-cache and per-step-overhead workloads keep their size)."""

    name: str
    tensors: int
    size: int
    scales: str  # "tensors", "size" or "none"
    about: str

    def shape(self, scale: float = 1.0) -> tuple[int, int]:
        """(tensors, size) at ``scale``."""
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if self.scales == "tensors":
            return max(1, round(self.tensors * scale)), self.size
        if self.scales == "size":
            return self.tensors, max(1, round(self.size * scale))
        return self.tensors, self.size


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("1x10M", 1, 10_000_000, "size", "one 10M tensor: memory bandwidth"),
    Workload("1000x1000", 1000, 1000, "tensors", "1000 tensors of 1000: per-tensor cost"),
    Workload("10000x100", 10000, 100, "tensors", "10000 tensors of 100: per-tensor cost"),
    Workload("1x16K", 1, 16384, "none", "one 16K tensor in cache: vector throughput"),
    Workload("1x1K", 1, 1000, "none", "one tensor of 1000: per-step overhead"),
)}

FD_PREFIX = "fd-"
PEERS = ("numpy-seeds", "numpy-inplace", "torch-forloop", "torch-foreach", "torch-fused",
         "probe", "probe-sqrt-div")
#: the peers that are limits rather than implementations: "of ..." columns, not "vs ..."
PROBES = {"probe": "of probe", "probe-sqrt-div": "of sqrt+div"}
TORCH_MODES = {"torch-forloop": {"foreach": False}, "torch-foreach": {"foreach": True},
               "torch-fused": {"fused": True}}


def fd_backends() -> tuple[str, ...]:
    """Names of fastdescent's backends (whether or not they load here)."""
    from .backends import NAMES

    return tuple(NAMES)


def implementations(backends: Iterable[str] | None = None,
                    peers: Iterable[str] | None = None) -> list[str]:
    """Implementation names, fastdescent's first: ``fd-<backend>`` then the peers."""
    backends = fd_backends() if backends is None else tuple(backends)
    peers = PEERS if peers is None else tuple(peers)
    for name in backends:
        if name not in fd_backends():
            raise ValueError(f"unknown backend {name!r}: choose from {', '.join(fd_backends())}")
    for name in peers:
        if name not in PEERS:
            raise ValueError(f"unknown peer {name!r}: choose from {', '.join(PEERS)}")
    return [FD_PREFIX + b for b in backends] + list(peers)


# ------------------------------------------------------------------------------------ data

def make_data(workload: Workload | str, dtype, scale: float = 1.0, seed: int = 0):
    """(params, grads): two lists of separately allocated 1-D arrays, standard normal.

    Builders copy the params; the grads are shared (no implementation writes them)."""
    if isinstance(workload, str):
        workload = WORKLOADS[workload]
    tensors, size = workload.shape(scale)
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    lists = []
    for _ in range(2):
        flat = rng.standard_normal(tensors * size, dtype=dtype)
        lists.append([flat] if tensors == 1 else
                     [flat[i * size:(i + 1) * size].copy() for i in range(tensors)])
        del flat
    return lists[0], lists[1]


# -------------------------------------------------------------------------------- builders

class Unavailable(Exception):
    """An implementation cannot run here (missing package, unsupported mode); the message
    says why. ``everywhere``: for no optimizer at all (else only for the one asked)."""

    def __init__(self, message: str, everywhere: bool = True):
        super().__init__(message)
        self.everywhere = everywhere


@dataclass
class Case:
    """One implementation ready to step: ``step()`` runs one optimizer step over the whole
    workload, ``params()`` returns the current params as NumPy arrays (views where
    possible)."""

    implementation: str
    step: Callable[[], object]
    params: Callable[[], list[np.ndarray]]
    keep: object = None  # whatever must stay alive while stepping


def build(implementation: str, optimizer: str, params: Sequence[np.ndarray],
          grads: Sequence[np.ndarray]) -> Case:
    """A :class:`Case` running ``optimizer`` with :data:`SETTINGS` as ``implementation``,
    over copies of ``params`` with the gradients ``grads`` (not copied, never written).
    Raises :class:`Unavailable` when it cannot run here."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}: choose from {', '.join(OPTIMIZERS)}")
    params = [np.array(p, copy=True) for p in params]
    grads = list(grads)
    if implementation.startswith(FD_PREFIX):
        return _build_fd(implementation, implementation[len(FD_PREFIX):], optimizer, params,
                         grads)
    if implementation == "numpy-seeds":
        step = _SEEDS[optimizer](params, grads, **{**_DEFAULTS[optimizer],
                                                   **SETTINGS[optimizer]})
        return Case(implementation, step, lambda: params)
    if implementation == "numpy-inplace":
        step = _INPLACE[optimizer](params, grads, **{**_DEFAULTS[optimizer],
                                                     **SETTINGS[optimizer]})
        return Case(implementation, step, lambda: params)
    if implementation in TORCH_MODES:
        return _build_torch(implementation, optimizer, params, grads)
    if implementation in PROBES:
        return _build_probe(optimizer, params, sqrt_div=implementation == "probe-sqrt-div")
    raise ValueError(f"unknown implementation {implementation!r}")


def _build_fd(implementation, backend, optimizer, params, grads) -> Case:
    import fastdescent as fd
    from . import backends

    try:
        backends.load(backend)
    except ImportError as error:
        raise Unavailable(f"fastdescent backend {backend!r} does not load: {error}") from None
    except Exception as error:  # a backend module broken mid-edit is not a benchmark crash
        raise Unavailable(f"fastdescent backend {backend!r} failed to load: "
                          f"{type(error).__name__}: {error}") from None
    opt = getattr(fd, optimizer)(params, backend=backend, **SETTINGS[optimizer])
    return Case(implementation, functools.partial(opt.step, grads), lambda: params, opt)


def import_torch():
    """torch, or :class:`Unavailable` saying it is not installed."""
    try:
        import torch
    except ImportError as error:
        raise Unavailable(f"torch is not installed ({error}): torch peers skipped") from None
    return torch


def _build_torch(implementation, optimizer, params, grads) -> Case:
    torch = import_torch()
    tensors = [torch.from_numpy(p).requires_grad_() for p in params]
    for tensor, grad in zip(tensors, grads):
        tensor.grad = torch.from_numpy(grad)
    try:
        opt = getattr(torch.optim, optimizer)(tensors, **SETTINGS[optimizer],
                                              **TORCH_MODES[implementation])
    except (TypeError, RuntimeError, ValueError) as error:
        raise Unavailable(f"torch {torch.__version__} {optimizer} has no "
                          f"{implementation[len('torch-'):]} mode on CPU ({error})",
                          everywhere=False) from None
    # The tensors share memory with ``params``: torch updates them in place.
    return Case(implementation, opt.step, lambda: params, (opt, tensors))


def _build_probe(optimizer, params, sqrt_div=False) -> Case:
    try:
        from . import _core
    except ImportError as error:
        raise Unavailable(f"the compiled extension is missing ({error}): no probe") from None
    if sqrt_div and optimizer == "SGD":
        raise Unavailable("SGD takes no square root and makes no division: no sqrt+div probe",
                          everywhere=False)
    total = sum(p.size for p in params)
    reads, writes = ACCESS[optimizer]
    dtype = params[0].dtype
    rng = np.random.default_rng(0)
    arrays = [rng.random(total, dtype=dtype) for _ in range(reads)]
    name = "probe-sqrt-div" if sqrt_div else "probe"
    return Case(name, functools.partial(_core.stream_probe, arrays, writes, sqrt_div),
                lambda: arrays[:1], arrays)


# --- NumPy as the seeds write it: fresh temporaries, a Python loop over the tensors. ---

def _seeds_sgd(params, grads, lr, momentum):
    bufs = [np.zeros_like(p) for p in params]

    def step():
        for i, (p, g) in enumerate(zip(params, grads)):
            bufs[i] = momentum * bufs[i] + g
            p -= lr * bufs[i]
    return step


def _seeds_adagrad(params, grads, lr, lr_decay, eps):
    sums = [np.zeros_like(p) for p in params]
    t = 0

    def step():
        nonlocal t
        t += 1
        clr = lr / (1 + (t - 1) * lr_decay)
        for i, (p, g) in enumerate(zip(params, grads)):
            sums[i] = sums[i] + g ** 2
            p -= clr * g / (np.sqrt(sums[i]) + eps)
    return step


def _seeds_rmsprop(params, grads, lr, alpha, eps):
    avgs = [np.zeros_like(p) for p in params]

    def step():
        for i, (p, g) in enumerate(zip(params, grads)):
            avgs[i] = alpha * avgs[i] + (1 - alpha) * g ** 2
            p -= lr * g / (np.sqrt(avgs[i]) + eps)
    return step


def _seeds_adam(params, grads, lr, betas, eps, weight_decay, decoupled=False):
    beta1, beta2 = betas
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    t = 0

    def step():
        nonlocal t
        t += 1
        for i, (p, g) in enumerate(zip(params, grads)):
            if decoupled and weight_decay:
                p -= lr * weight_decay * p
            ms[i] = beta1 * ms[i] + (1 - beta1) * g
            vs[i] = beta2 * vs[i] + (1 - beta2) * g ** 2
            m_hat = ms[i] / (1 - beta1 ** t)
            v_hat = vs[i] / (1 - beta2 ** t)
            p -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return step


_SEEDS: dict[str, Callable[..., Callable[[], None]]] = {
    "SGD": _seeds_sgd, "Adagrad": _seeds_adagrad, "RMSprop": _seeds_rmsprop,
    "Adam": _seeds_adam, "AdamW": functools.partial(_seeds_adam, decoupled=True)}


# --- NumPy in place: out= everywhere, one preallocated scratch buffer per tensor. ---

def _inplace_sgd(params, grads, lr, momentum):
    bufs = [np.zeros_like(p) for p in params]
    scratch = [np.empty_like(p) for p in params]

    def step():
        for p, g, buf, s in zip(params, grads, bufs, scratch):
            np.multiply(buf, momentum, out=buf)
            np.add(buf, g, out=buf)
            np.multiply(buf, lr, out=s)
            np.subtract(p, s, out=p)
    return step


def _inplace_adagrad(params, grads, lr, lr_decay, eps):
    sums = [np.zeros_like(p) for p in params]
    scratch = [np.empty_like(p) for p in params]
    t = 0

    def step():
        nonlocal t
        t += 1
        clr = lr / (1 + (t - 1) * lr_decay)
        for p, g, acc, s in zip(params, grads, sums, scratch):
            np.multiply(g, g, out=s)
            np.add(acc, s, out=acc)
            np.sqrt(acc, out=s)
            np.add(s, eps, out=s)
            np.divide(g, s, out=s)
            np.multiply(s, clr, out=s)
            np.subtract(p, s, out=p)
    return step


def _inplace_rmsprop(params, grads, lr, alpha, eps):
    avgs = [np.zeros_like(p) for p in params]
    scratch = [np.empty_like(p) for p in params]

    def step():
        for p, g, avg, s in zip(params, grads, avgs, scratch):
            np.multiply(avg, alpha, out=avg)
            np.multiply(g, g, out=s)
            np.multiply(s, 1 - alpha, out=s)
            np.add(avg, s, out=avg)
            np.sqrt(avg, out=s)
            np.add(s, eps, out=s)
            np.divide(g, s, out=s)
            np.multiply(s, lr, out=s)
            np.subtract(p, s, out=p)
    return step


def _inplace_adam(params, grads, lr, betas, eps, weight_decay, decoupled=False):
    beta1, beta2 = betas
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    scratch = [np.empty_like(p) for p in params]
    t = 0

    def step():
        nonlocal t
        t += 1
        step_size = lr / (1 - beta1 ** t)
        inv_root_bc2 = 1 / math.sqrt(1 - beta2 ** t)
        for p, g, m, v, s in zip(params, grads, ms, vs, scratch):
            if decoupled and weight_decay:
                np.multiply(p, 1 - lr * weight_decay, out=p)
            np.multiply(m, beta1, out=m)
            np.multiply(g, 1 - beta1, out=s)
            np.add(m, s, out=m)
            np.multiply(v, beta2, out=v)
            np.multiply(g, g, out=s)
            np.multiply(s, 1 - beta2, out=s)
            np.add(v, s, out=v)
            np.sqrt(v, out=s)
            np.multiply(s, inv_root_bc2, out=s)
            np.add(s, eps, out=s)
            np.divide(m, s, out=s)
            np.multiply(s, step_size, out=s)
            np.subtract(p, s, out=p)
    return step


_INPLACE: dict[str, Callable[..., Callable[[], None]]] = {
    "SGD": _inplace_sgd, "Adagrad": _inplace_adagrad, "RMSprop": _inplace_rmsprop,
    "Adam": _inplace_adam, "AdamW": functools.partial(_inplace_adam, decoupled=True)}


# ---------------------------------------------------------------------------------- timing

@dataclass(frozen=True)
class Timing:
    median: float  # seconds per step
    min: float
    samples: int
    calls_per_sample: int


@dataclass(frozen=True)
class Budget:
    """How long to measure one implementation: ``warmup`` steps first, then samples of
    ``calls`` steps each, ``calls`` chosen so a sample lasts at least ``min_sample`` seconds;
    at most ``repeat`` samples, and no more once ``max_time`` seconds have gone, but never
    fewer than ``min_repeat``, unless the whole measurement has taken ``hard_limit``
    seconds (a step of seconds: torch's for-loop over 10000 tensors on a loaded machine),
    which stops the warm-up and the sampling after at least one sample."""

    warmup: int = 3
    repeat: int = 25
    min_repeat: int = 5
    min_sample: float = 2e-3
    max_time: float = 0.5
    hard_limit: float = 5.0


FULL = Budget()
QUICK = Budget(warmup=1, repeat=5, min_repeat=3, min_sample=2e-4, max_time=0.01, hard_limit=0.2)
QUICK_SCALE = 0.01


def measure(step: Callable[[], object], budget: Budget = FULL) -> Timing:
    """Seconds per call of ``step``: median and min over samples (garbage collection off)."""
    enabled = gc.isenabled()
    gc.disable()
    clock = time.perf_counter
    began = clock()
    try:
        for _ in range(budget.warmup):
            step()
            if clock() - began > budget.hard_limit:
                break
        calls = 1
        while True:  # calibrate the calls per sample, as timeit.autorange does
            start = clock()
            for _ in range(calls):
                step()
            elapsed = clock() - start
            if elapsed >= budget.min_sample:
                break
            guess = calls * budget.min_sample / max(elapsed, 1e-9) * 1.1
            calls = int(min(max(guess, calls * 2), calls * 1000))
        samples = [elapsed / calls]
        sampling = clock()
        while len(samples) < budget.repeat:
            now = clock()
            if now - began > budget.hard_limit:
                break
            if len(samples) >= budget.min_repeat and now - sampling > budget.max_time:
                break
            start = clock()
            for _ in range(calls):
                step()
            samples.append((clock() - start) / calls)
    finally:
        if enabled:
            gc.enable()
    return Timing(statistics.median(samples), min(samples), len(samples), calls)


# ------------------------------------------------------------------------------------ threads

class with_threads:
    """Context manager: fastdescent (every backend loaded, and the probe) and torch (when
    imported) run with ``n`` threads inside; the previous settings come back on exit."""

    def __init__(self, n: int):
        self.n = int(n)

    @staticmethod
    def _fd():
        """(get, set) for fastdescent's threads; the compiled extension's when the default
        backend does not load (a broken build must not stop the peers' measurements)."""
        import fastdescent as fd

        try:
            fd.get_num_threads()
            return fd.get_num_threads, fd.set_num_threads
        except Exception:  # noqa: BLE001
            try:
                from . import _core
            except ImportError:
                return None
            return _core.get_num_threads, _core.set_num_threads

    def __enter__(self):
        import sys

        self._setter = self._fd()
        if self._setter is not None:
            get, set_ = self._setter
            self._fd_threads = get()
            set_(self.n)
        self._torch = sys.modules.get("torch")
        if self._torch is not None:
            self._torch_threads = self._torch.get_num_threads()
            self._torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self._setter is not None:
            self._setter[1](self._fd_threads)
        if self._torch is not None:
            self._torch.set_num_threads(self._torch_threads)
        return False


# ------------------------------------------------------------------------------------ runs

@dataclass(frozen=True)
class Row:
    optimizer: str
    workload: str
    dtype: str
    threads: int
    implementation: str
    seconds: float  # median per step
    min_seconds: float
    elements: int
    tensors: int
    bytes_per_element: int
    samples: int = 0

    @property
    def ns_per_element(self) -> float:
        return self.seconds / self.elements * 1e9

    @property
    def gb_per_s(self) -> float:
        return self.bytes_per_element * self.elements / self.seconds / 1e9

    @property
    def cell(self) -> tuple[str, str, str, int]:
        return self.optimizer, self.workload, self.dtype, self.threads

    def as_dict(self) -> dict:
        return {"optimizer": self.optimizer, "workload": self.workload, "dtype": self.dtype,
                "threads": self.threads, "implementation": self.implementation,
                "seconds": self.seconds, "min_seconds": self.min_seconds,
                "ns_per_element": self.ns_per_element, "gb_per_s": self.gb_per_s,
                "elements": self.elements, "tensors": self.tensors,
                "bytes_per_element": self.bytes_per_element, "samples": self.samples}


class Rows(list):
    """The rows of a run, with ``notes`` (what was skipped and why) and ``settings``."""

    def __init__(self, rows=(), notes=(), settings=None):
        super().__init__(rows)
        self.notes: list[str] = list(notes)
        self.settings: dict = dict(settings or {})


@dataclass
class Progress:
    """Called after each measurement with (done, total, row or None, message)."""

    callback: Callable[[int, int, Row | None, str], None] | None = None
    total: int = 0
    done: int = 0

    def __call__(self, row, message):
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total, row, message)


def run(optimizers: Sequence[str] = OPTIMIZERS, workloads: Sequence[str] = tuple(WORKLOADS),
        dtypes: Sequence[str] = DTYPES, threads: Sequence[int] = (1, 2),
        backends: Sequence[str] | None = None, peers: Sequence[str] | None = None,
        scale: float = 1.0, budget: Budget = FULL, seed: int = 0,
        progress: Callable[[int, int, Row | None, str], None] | None = None,
        rounds: int = 1) -> Rows:
    """Measure every (optimizer, workload, dtype, threads, implementation) of the selection.

    ``backends``: fastdescent backends (default: all; those that do not load are skipped
    with a note); ``peers``: names from :data:`PEERS` (default: all). Each implementation is
    built once per (optimizer, workload, dtype) and measured at each thread count in turn.

    ``rounds``: measure every implementation of one (optimizer, workload, dtype) that many
    times, taking turns, and report the median of the rounds' medians (and the least
    minimum). On a shared machine a slow spell then falls on every implementation alike
    instead of on whichever was being measured, which steadies the ratios.

    Returns :class:`Rows` (a list of :class:`Row`, with ``notes`` on what was skipped).
    """
    if int(rounds) < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    for name in optimizers:
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}: choose from {', '.join(OPTIMIZERS)}")
    for name in workloads:
        if name not in WORKLOADS:
            raise ValueError(f"unknown workload {name!r}: choose from {', '.join(WORKLOADS)}")
    for name in dtypes:
        if name not in DTYPES:
            raise ValueError(f"unknown dtype {name!r}: choose from {', '.join(DTYPES)}")
    for n in threads:
        if int(n) < 1:
            raise ValueError(f"threads must be >= 1, got {n}")
    impls = implementations(backends, peers)
    rows = Rows(settings={"scale": scale, "budget": budget, "seed": seed})
    skipped: dict[str, str] = {}  # implementation (or impl + optimizer) -> why
    counter = Progress(progress, len(optimizers) * len(workloads) * len(dtypes)
                       * len(impls) * len(threads) * rounds)

    def skip(key, why):
        if key not in skipped:
            skipped[key] = why
            rows.notes.append(why)
        for _ in range(len(threads) * rounds):
            counter(None, f"skipped: {why}")

    for workload_name in workloads:
        workload = WORKLOADS[workload_name]
        tensors, size = workload.shape(scale)
        for dtype in dtypes:
            base_params, grads = make_data(workload, dtype, scale, seed)
            for optimizer in optimizers:
                cases = {}
                for impl in impls:
                    key = impl if impl in skipped else (impl, optimizer)
                    if key in skipped:
                        skip(key, skipped[key])
                        continue
                    try:
                        cases[impl] = build(impl, optimizer, base_params, grads)
                    except Unavailable as why:
                        skip(impl if why.everywhere else (impl, optimizer), str(why))
                    if rounds == 1 and impl in cases:  # measured now: one case in memory
                        _measure_rounds(rows, counter, {impl: cases.pop(impl)}, 1, threads,
                                        budget, (optimizer, workload_name, dtype), tensors,
                                        size)
                if cases:
                    _measure_rounds(rows, counter, cases, rounds, threads, budget,
                                    (optimizer, workload_name, dtype), tensors, size)
                del cases
            del base_params, grads
    return rows


def _measure_rounds(rows, counter, cases, rounds, threads, budget, what, tensors, size):
    """Measure each case at each thread count, ``rounds`` times in turn; append a Row per
    (implementation, threads) that never failed."""
    optimizer, workload_name, dtype = what
    timings: dict[tuple[str, int], list[Timing]] = {}
    failed: set[tuple[str, int]] = set()
    for _ in range(rounds):
        for impl, case in cases.items():
            for n in threads:
                if (impl, n) in failed:
                    counter(None, "")
                    continue
                try:
                    with with_threads(n):
                        timing = measure(case.step, budget)
                except Exception as error:  # noqa: BLE001  (one broken case: go on)
                    why = (f"{impl} failed on {optimizer} {workload_name} {dtype} "
                           f"threads={n}: {type(error).__name__}: {error}")
                    rows.notes.append(why)
                    failed.add((impl, n))
                    counter(None, why)
                    continue
                timings.setdefault((impl, n), []).append(timing)
                if len(timings[(impl, n)]) < rounds:
                    counter(None, f"{impl} {optimizer} {workload_name} {dtype} threads={n}: "
                                  f"round {len(timings[(impl, n)])} of {rounds}")
                    continue
                measured = timings[(impl, n)]
                row = Row(optimizer, workload_name, str(np.dtype(dtype)), int(n), impl,
                          statistics.median(t.median for t in measured),
                          min(t.min for t in measured), tensors * size, tensors,
                          bytes_per_element(optimizer, dtype),
                          sum(t.samples for t in measured))
                rows.append(row)
                counter(row, "")


# ---------------------------------------------------------------------------------- tables

def _fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def _fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.3g}x" if ratio < 100 else f"{ratio:.0f}x"


def table(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """(header, lines) of the comparison: one line per fastdescent row."""
    present = {r.implementation for r in rows}
    peer_cols = [p for p in PEERS if p not in PROBES and p in present]
    probe_cols = [p for p in PROBES if p in present]
    torch_cols = [p for p in peer_cols if p in TORCH_MODES]
    header = ["optimizer", "workload", "dtype", "thr", "impl", "time/step", "ns/el", "GB/s"]
    header += [f"vs {p}" for p in peer_cols]
    if len(torch_cols) > 1:
        header.append("vs torch-best")
    header += [PROBES[p] for p in probe_cols]
    by_cell: dict[tuple, dict[str, Row]] = {}
    for row in rows:
        by_cell.setdefault(row.cell, {})[row.implementation] = row
    lines = []
    for cell, impls in by_cell.items():
        for name, row in impls.items():
            if not name.startswith(FD_PREFIX):
                continue
            workload = row.workload
            nominal = WORKLOADS.get(workload)
            if nominal is not None and (row.tensors, row.elements // row.tensors) != (
                    nominal.tensors, nominal.size):
                workload += f" ({row.tensors}x{row.elements // row.tensors})"
            line = [row.optimizer, workload, row.dtype, str(row.threads),
                    name[len(FD_PREFIX):], _fmt_time(row.seconds), f"{row.ns_per_element:.3g}",
                    f"{row.gb_per_s:.3g}"]
            for peer in peer_cols:
                line.append(_fmt_ratio(impls[peer].seconds / row.seconds)
                            if peer in impls else "-")
            if len(torch_cols) > 1:
                best = [impls[p].seconds for p in torch_cols if p in impls]
                line.append(_fmt_ratio(min(best) / row.seconds) if best else "-")
            for probe in probe_cols:
                line.append(f"{impls[probe].seconds / row.seconds:.0%}"
                            if probe in impls else "-")
            lines.append(line)
    return header, lines


def format_table(rows: Sequence[Row], markdown: bool = False) -> str:
    """The comparison table: for each (optimizer, workload, dtype, threads), each fastdescent
    row with its time per step, ns per element, GB/s, the ratio to each peer (peer time /
    fastdescent time: >1 means fastdescent is faster; torch-best is torch's fastest mode)
    and the fraction of the bandwidth probe's speed reached (probe time / fastdescent
    time), and of the sqrt+div probe's, followed by the notes of the run."""
    header, lines = table(rows)
    out = []
    if markdown:
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" if i < 5 else "---:" for i in range(len(header)))
                   + "|")
        out += ["| " + " | ".join(line) + " |" for line in lines]
    else:
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
                  for i, h in enumerate(header)]

        def fmt(cells):
            return "  ".join(c.ljust(w) if i < 5 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        out.append(fmt(header))
        out += [fmt(line) for line in lines]
    if not lines:
        out.append("(no fastdescent rows: nothing to compare)")
    notes = getattr(rows, "notes", [])
    if notes:
        out.append("")
        out += [("- " if markdown else "note: ") + note for note in notes]
    return "\n".join(out)


def format_rows(rows: Sequence[Row], markdown: bool = False) -> str:
    """Every row (peers included): time per step (median and min), ns per element, GB/s and
    the number of timed samples."""
    header = ["optimizer", "workload", "dtype", "thr", "impl", "time/step", "min", "ns/el",
              "GB/s", "samples"]
    lines = [[r.optimizer, r.workload, r.dtype, str(r.threads), r.implementation,
              _fmt_time(r.seconds), _fmt_time(r.min_seconds), f"{r.ns_per_element:.3g}",
              f"{r.gb_per_s:.3g}", str(r.samples)] for r in rows]
    if markdown:
        return "\n".join(["| " + " | ".join(header) + " |",
                          "|" + "|".join("---" if i < 5 else "---:"
                                         for i in range(len(header))) + "|"]
                         + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    return "\n".join("  ".join(c.ljust(w) if i < 5 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
                     for cells in [header] + lines)


def access_legend(optimizers: Sequence[str] = OPTIMIZERS) -> str:
    """One line per optimizer: what a step reads and writes, and bytes per element."""
    lines = []
    for name in optimizers:
        reads, writes = ACCESS[name]
        lines.append(f"{name}: {reads} arrays read, {writes} written per element = "
                     f"{bytes_per_element(name, 'float32')} B (float32), "
                     f"{bytes_per_element(name, 'float64')} B (float64)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- machine

def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _caches() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5,
                             env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    found = []
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("L1d cache", "L2 cache", "L3 cache"):
            found.append(f"{key.strip().split()[0]} {value.strip()}")
    if found:
        return ", ".join(found)
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(base)):
            def read(name, index=index):
                with open(os.path.join(base, index, name)) as f:
                    return f.read().strip()
            kind = read("type")
            if kind == "Instruction":
                continue
            found.append(f"L{read('level')}{'d' if kind == 'Data' else ''} {read('size')}")
    except OSError:
        pass
    return ", ".join(found) if found else "unknown"


def machine_info() -> list[tuple[str, str]]:
    """(key, value) lines describing the machine and the software of a run."""
    import fastdescent as fd

    try:
        info = fd.backend_info()
    except Exception as error:  # noqa: BLE001  (a broken default backend: say so, go on)
        info = {"backend": "?", "simd": f"unknown ({type(error).__name__}: {error})",
                "fastdescent": fd.__version__, "python": platform.python_version(),
                "numpy": np.__version__, "compiled": None}
    simd = f"{info['simd']} (backend {info['backend']})"
    try:
        from . import _core
        simd += f"; compiled levels this CPU runs: {', '.join(_core.supported_simd_levels())}"
    except ImportError:
        pass
    versions = [f"fastdescent {info['fastdescent']}", f"python {info['python']}",
                f"numpy {info['numpy']}"]
    for dist in ("torch", "numba"):
        version = _version(dist)
        versions.append(f"{dist} {version}" if version else f"{dist} not installed")
    compiled = info.get("compiled")
    return [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("cpu", f"{_cpu_model()} ({os.cpu_count()} logical CPUs, {platform.machine()})"),
        ("caches", _caches()),
        ("SIMD", simd),
        ("compiled", "missing" if compiled is None else
         f"compiler {compiled['compiler']}, OpenMP {'on' if compiled['openmp'] else 'off'}"),
        ("versions", ", ".join(versions)),
    ]


def format_machine(markdown: bool = False) -> str:
    lines = machine_info()
    if markdown:
        return "\n".join(f"- **{k}**: {v}" for k, v in lines)
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)
