"""The optimizer's lock: it serializes steps and the methods that change an optimizer, and
counts the steps it lets through.

The compiled extension's ``StepLock`` is taken by its plans in C++, so that a ready step is
one call from Python (``plan.step_ready``); on a small step, taking a ``threading.RLock``
from Python cost about as much as the step itself. Without the extension,
:class:`PythonStepLock` gives the same interface over a ``threading.RLock``.
"""

from __future__ import annotations

import threading

__all__ = ["PythonStepLock", "StepLock"]


class PythonStepLock:
    """A reentrant lock (``with lock:``) and ``count``, the steps completed."""

    __slots__ = ("_lock", "count")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.count = 0

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info) -> None:
        self._lock.release()


try:
    from .._core import StepLock
except ImportError:  # the compiled extension is missing: the numba and numpy backends
    StepLock = PythonStepLock  # type: ignore[misc,assignment]
