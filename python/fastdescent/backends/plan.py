"""Step plans: an optimizer's tensors bound once, stepped by one call.

A plan holds the params, the state arrays (one column per state name), the group of each
param and each param's step count (an int64 array the plan increments). Its ``step(grads,
check_finite)`` checks the gradients against the bound tensors and runs the backend's kernel
over every tensor of every group; all or nothing. The compiled backend has its own plans
(``fastdescent._core.AdamPlan`` and the rest: one crossing into C++ per step), and so has the
numba backend (:mod:`fastdescent.backends.numba_plan`: one compiled call per step); this
module's :class:`ListPlan` gives every other backend the same interface on top of its list
kernels.

An optimizer binds its lock to its plan (``bind``) and marks the plan ``ready`` when a step
needs nothing but the plan's call; ``step_ready(grads)`` then takes the lock, steps and
counts the step in one call (the compiled plans without calling back into Python).
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any


from .._validation import MemoryIndex, check_array, check_matches_param

#: per optimizer kind: the state columns (kernel argument order) and the keyword that
#: carries the step number into the kernel, if any
KINDS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "sgd": (("momentum_buffer",), "first_step"),
    "adagrad": (("sum",), "step"),
    "rmsprop": (("square_avg", "grad_avg", "momentum_buffer"), None),
    "adam": (("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), "step"),
}


def make_plan(backend: ModuleType, kind: str, params, state, groups, steps, group_count):
    """The backend's own plan for ``kind`` when it has one, else a :class:`ListPlan`."""
    native = getattr(backend, "PLANS", {}).get(kind)
    if native is not None:
        return native(params, state, groups, steps, group_count)
    return ListPlan(backend, kind, params, state, groups, steps, group_count)


class ListPlan:
    """A plan over a backend's list kernels (``sgd_step``, ``adam_step``, ...): one kernel
    call per group and step count. Checks and messages are those of the compiled plans."""

    def __init__(self, backend: ModuleType, kind: str, params, state, groups, steps,
                 group_count: int):
        self.columns, self._step_argument = KINDS[kind]
        self._kernel = getattr(backend, f"{kind}_step")
        self._first_nonfinite = backend.first_nonfinite
        self._params = list(params)
        self._state = [list(column) if column is not None else [None] * len(self._params)
                       for column in state]
        self._groups = list(groups)
        self._steps = steps
        self._options: list[dict[str, Any]] = [{} for _ in range(group_count)]  # set_group
        written, names = list(self._params), [f"params[{i}]" for i in range(len(params))]
        for column, arrays in zip(self.columns, self._state):
            for i, array in enumerate(arrays):
                if array is not None:
                    written.append(array)
                    names.append(f"state[{i}][{column!r}]")
        self._written = MemoryIndex(written)
        self._written_names = names
        # A lock, not a flag: testing a flag and setting it are two steps another thread
        # can run between.
        self._busy = threading.Lock()
        #: set by the optimizer, holding its lock: whether step_ready may step
        self.ready = False
        self._lock: Any = None

    def bind(self, lock) -> None:
        """Take the optimizer's lock (a StepLock) in :meth:`step_ready`."""
        self._lock = lock

    def step_ready(self, grads) -> bool:
        """Holding the bound lock: if ready, one step and the lock's count incremented
        (True); else False, changing nothing."""
        lock = self._lock
        if lock is None:
            return False
        with lock:
            if not self.ready:
                return False
            self.step(grads, False)
            lock.count += 1
            return True

    def __len__(self) -> int:
        return len(self._params)

    def set_group(self, group: int, **options) -> None:
        self._options[group] = options

    def set_lr(self, group: int, lr: float) -> None:
        self._options[group]["lr"] = lr

    def step(self, grads, check_finite: bool = False) -> None:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("step() is already running on this optimizer in another thread")
        try:
            self._step(grads, check_finite)
        finally:
            self._busy.release()

    def _step(self, grads, check_finite: bool) -> None:
        live = self._checked_live(grads, check_finite)
        self._run(grads, live)

    def _checked_live(self, grads, check_finite: bool) -> list[int]:
        """Every check of a step (raising on the first failure): the indices of the params
        whose gradient is not None."""
        if not isinstance(grads, (list, tuple)):
            raise TypeError("grads must be a list or tuple of arrays aligned with params, "
                            f"got {type(grads).__name__}")
        n = len(self._params)
        if len(grads) != n:
            raise ValueError(f"grads has {len(grads)} entries but the optimizer has {n} params")
        live = []
        for i, (param, grad) in enumerate(zip(self._params, grads)):
            if not param.flags.writeable:
                raise ValueError(f"params[{i}] must be writable (it is updated in place)")
            for column, arrays in zip(self.columns, self._state):
                array = arrays[i]
                if array is not None and not array.flags.writeable:
                    raise ValueError(f"state[{i}][{column!r}] must be writable")
            if grad is None:
                continue
            check_array(grad, f"grads[{i}]", writable=False)
            check_matches_param(grad, f"grads[{i}]", param, i)
            j = self._written.overlapping(grad)
            if j is not None:
                suffix = ": a gradient must be a separate array" if j < n else ""
                raise ValueError(f"grads[{i}] shares memory with {self._written_names[j]}"
                                 + suffix)
            live.append(i)
        if check_finite and live:
            bad = self._first_nonfinite([grads[i] for i in live])
            if bad >= 0:
                raise ValueError(f"grads[{live[bad]}] holds NaN or infinity "
                                 "(check_finite=True); nothing was updated")
        return live

    def _run(self, grads, live: list[int]) -> None:
        # Every check passed: run one kernel call per (group, step number).
        buckets: dict[tuple[int, int], list[int]] = {}
        for i in live:
            buckets.setdefault((self._groups[i], int(self._steps[i]) + 1), []).append(i)
        for (group, step), members in buckets.items():
            options = dict(self._options[group])
            if self._step_argument == "step":
                options["step"] = step
            elif self._step_argument == "first_step":
                options["first_step"] = step == 1
            columns = [None if all(arrays[i] is None for i in members)
                       else [arrays[i] for i in members] for arrays in self._state]
            self._kernel([self._params[i] for i in members], [grads[i] for i in members],
                         *columns, **options)
        for i in live:
            self._steps[i] += 1
