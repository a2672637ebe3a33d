"""The result of an iterative run (:func:`fastdescent.minimize`, :func:`fastdescent.newton`)
and the bookkeeping both share: checking the start point and the run's arguments, calling
the user's function safely, recording the path and the loss history."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from ._validation import check_range

__all__ = ["OptimizeResult"]

#: the order in which the repr shows the fields it knows
_ORDER = ("message", "success", "status", "fun", "x", "nit", "nfev", "jac", "history", "path")


def _format_value(value) -> str:
    if isinstance(value, np.ndarray):
        if value.ndim <= 1 and value.size <= 8:
            return np.array2string(value, precision=6, separator=", ")
        return f"<{value.dtype} array of shape {value.shape}>"
    if isinstance(value, float):
        return repr(float(f"{value:.6g}"))  # 6 digits, and 2.0 rather than 2
    return str(value)


class OptimizeResult(dict):
    """The outcome of a run, in the style of ``scipy.optimize.OptimizeResult``: a dict
    whose keys are also attributes.

    Its fields:

    - ``x``: the final point (an array shaped like ``x0``)
    - ``fun``: the loss at ``x``
    - ``jac``: the gradient at ``x``
    - ``nit``: the number of steps taken
    - ``nfev``: the number of calls of the user's function
    - ``success``: whether the run ended as asked (see ``status``)
    - ``status``: ``"converged"`` (gradient norm <= tol), ``"completed"`` (every step, no
      tol), ``"callback"`` (the callback asked to stop): success; ``"max_steps"`` (tol not
      reached), ``"diverged"`` (a non-finite loss, gradient or point) and, for Newton,
      ``"singular"``, ``"no_descent"``, ``"not_minimum"``: failure
    - ``message``: what happened, in words
    - ``history``: the loss at every point of ``path``, float64, shape ``(nit + 1,)``:
      ``history[0]`` is the loss at the start, ``history[k]`` after step ``k``
    - ``path``: the start and the point after every step, shape ``(nit + 1, *x.shape)``

    Examples
    --------
    >>> import fastdescent as fd
    >>> r = fd.OptimizeResult(x=[1.0], fun=2.0, success=True)
    >>> r.fun, r["success"]
    (2.0, True)
    >>> r
     success: True
         fun: 2.0
           x: [1.0]
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.keys()))

    def __repr__(self) -> str:
        if not self:
            return f"{type(self).__name__}()"
        keys = [k for k in _ORDER if k in self] + [k for k in self if k not in _ORDER]
        width = max(len(str(k)) for k in keys) + 1
        lines = []
        for k in keys:
            text = _format_value(self[k]).replace("\n", "\n" + " " * (width + 2))
            lines.append(f"{str(k):>{width}}: {text}")
        return "\n".join(lines)


# --------------------------------------------------------------------- shared bookkeeping


def start_point(x0, dtype) -> np.ndarray:
    """A fresh, writable, C-contiguous copy of ``x0`` to iterate on: float64, or float32
    when ``x0`` is a float32 array, unless ``dtype`` says which; a scalar becomes shape
    (1,)."""
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    x = np.asarray(x0)
    if x.dtype.kind not in "iuf":
        raise TypeError(f"x0 must be an array of real numbers, got dtype {x.dtype}")
    if dtype is None:
        dtype = np.float32 if x.dtype == np.float32 else np.float64
    x = np.array(np.atleast_1d(x), dtype=dtype, order="C", copy=True)
    if x.size == 0:
        raise ValueError("x0 is empty: there is nothing to optimize")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 must be finite")
    return x


def check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps must be an integer, got {type(steps).__name__}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    return int(steps)


def check_tol(tol) -> float | None:
    return None if tol is None else check_range(tol, "tol", 0)


def check_callable(value, name: str, allow_none: bool = False) -> Callable | None:
    if value is None and allow_none:
        return None
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


def as_loss(value, where: str) -> float:
    """The loss a user function returned, as a float (a 1-element array is accepted)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where} must return a real loss, got a bool")
    if isinstance(value, numbers.Real):
        return float(value)
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise TypeError(f"{where} must return a real number as the loss, got "
                        f"{type(value).__name__}" + (f" of shape {array.shape}"
                                                     if array.ndim else ""))
    return float(array.reshape(()))


def as_gradient(grad, x: np.ndarray, where: str) -> np.ndarray:
    """The gradient a user function returned, as an array of ``x``'s shape and dtype that
    shares no memory with ``x``."""
    g = np.asarray(grad)
    if g.dtype.kind not in "iuf":
        raise TypeError(f"{where} must return a real gradient, got dtype {g.dtype}")
    if g.shape != x.shape:
        if g.ndim == 0 and x.size == 1:
            g = g.reshape(x.shape)
        else:
            raise ValueError(f"{where} returned a gradient of shape {g.shape}, "
                             f"expected {x.shape} (the shape of x)")
    g = np.ascontiguousarray(g, dtype=x.dtype)
    if np.shares_memory(g, x):
        g = g.copy()
    return g


def step_limit_reached(steps: int, tol: float | None, gradient_norm: float) -> tuple[str, str]:
    """(status, message) of a run that used all its steps: "completed" without a
    tolerance, else "max_steps" (the gradient norm is still above ``tol``)."""
    if tol is None:
        return "completed", f"completed {steps} steps"
    return "max_steps", (f"gradient norm {gradient_norm:.3g} still above tol {tol:g} after "
                         f"{steps} steps")


def converged(tol: float, gradient_norm: float, steps: int) -> tuple[str, str]:
    """(status, message) of a run stopped by the gradient-norm tolerance."""
    return "converged", (f"converged: gradient norm {gradient_norm:.3g} <= tol {tol:g} "
                         f"after {steps} steps")


class Trace:
    """The path and the loss history of a run, and the result built from them."""

    def __init__(self):
        self.path: list[np.ndarray] = []
        self.history: list[float] = []

    def add(self, x: np.ndarray, value: float) -> np.ndarray:
        """Record a point (copied; the copy is returned read-only) and its loss."""
        point = x.copy()
        point.flags.writeable = False
        self.path.append(point)
        self.history.append(value)
        return point

    def result(self, x, fun, jac, *, nit, nfev, status, message) -> OptimizeResult:
        success = status in ("converged", "completed", "callback")
        path = np.array(self.path, dtype=x.dtype)
        return OptimizeResult(message=message, success=success, status=status, fun=fun,
                              x=x.copy(), nit=nit, nfev=nfev, jac=jac,
                              history=np.array(self.history, dtype=np.float64), path=path)
