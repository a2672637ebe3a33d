r"""``fd.minimize``: run one of fastdescent's optimizers on a function of one array."""

from __future__ import annotations

import math

import numpy as np

from .optim import Optimizer
from .result import (OptimizeResult, Trace, as_gradient, as_loss, check_callable, check_steps,
                     check_tol, converged, start_point, step_limit_reached)

__all__ = ["minimize"]


def _evaluate(fun_grad, x):
    """``(loss, gradient, None)``, or ``(nan, None, reason)`` when the function overflowed
    (floating-point warnings are silenced: a non-finite result is reported instead)."""
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = fun_grad(x)
    except (OverflowError, FloatingPointError) as error:
        return math.nan, None, f"fun_grad raised {type(error).__name__}: {error}"
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"fun_grad must return a pair (loss, gradient), got "
                        f"{type(out).__name__}")
    value = as_loss(out[0], "fun_grad")
    grad = as_gradient(out[1], x, "fun_grad")
    return value, grad, None


def _non_finite(value, grad) -> str | None:
    if not math.isfinite(value):
        return f"the loss is {value}"
    if not np.all(np.isfinite(grad)):
        return "the gradient is not finite"
    return None


def minimize(fun_grad, x0, optimizer, steps, *, tol=None, callback=None, backend=None,
             dtype=None, **optimizer_kwargs) -> OptimizeResult:
    r"""Minimize :math:`f` from ``x0`` with a fastdescent optimizer, for at most ``steps``
    steps.

    .. math::

        x_0 = \text{x0}, \qquad x_k = \text{optimizer step}(x_{k-1}, \nabla f(x_{k-1})),
        \quad k = 1, \ldots, \text{steps}

    The run copies ``x0`` (float64, or float32 when ``x0`` is a float32 array, unless
    ``dtype`` says otherwise), builds ``optimizer([x], backend=backend,
    **optimizer_kwargs)`` over the copy, and steps it with the gradients of ``fun_grad``.

    It ends

    * when the gradient norm :math:`\|\nabla f(x_k)\|_2 \le` ``tol`` (``status
      "converged"``; checked at the start too, so ``nit`` may be 0);
    * when ``callback(k, x_k, f(x_k))``, called after every step ``k`` with a read-only copy
      of the point, returns True (``"callback"``);
    * after ``steps`` steps: ``"completed"`` when no ``tol`` was given, ``"max_steps"``
      (``success=False``) when it was and was not reached;
    * at a divergence, a loss, gradient or point that is not finite (``"diverged"``,
      ``success=False``): never with an exception. The last row of ``path`` is then the
      non-finite point, and ``fun`` its loss (nan when the point itself is not finite).
      Overflow warnings from NumPy are silenced during the run; an ``OverflowError`` or
      ``FloatingPointError`` raised by ``fun_grad`` counts as a divergence.

    When ``optimizer_kwargs["lr"]`` has an ``observe`` method (a
    :class:`fastdescent.schedules.ReduceOnPlateau`), it is given the loss after every step.

    Parameters
    ----------
    fun_grad : callable ``x -> (loss, gradient)``, the gradient shaped like ``x`` (for
        example a problem's ``fun_grad`` from :mod:`fastdescent.problems`)
    x0 : array-like, the start (a scalar is taken as shape (1,)); it is not modified
    optimizer : an optimizer class such as ``fd.SGD`` (or any callable
        ``(params, backend=...) -> Optimizer``, e.g. a ``functools.partial``)
    steps : int >= 0, the most steps to take
    tol : float >= 0 or None, the gradient-norm tolerance for stopping early
    callback : callable ``(step, x, loss) -> bool`` or None
    backend : the optimizer's backend (None: the default backend)
    dtype : float32, float64 or None
    **optimizer_kwargs : the optimizer's options (``lr``, ``momentum``, ``betas``, ...)

    Returns
    -------
    OptimizeResult
        ``x``, ``fun``, ``jac`` (the gradient at ``x``), ``nit``, ``nfev``, ``success``,
        ``status``, ``message``, ``history`` (the loss at the start and after every step,
        shape ``(nit + 1,)``) and ``path`` (the start and the point after every step,
        shape ``(nit + 1, *x.shape)``).

    Examples
    --------
    Gradient descent on :math:`2x^2` multiplies :math:`x` by :math:`1 - 4\eta` each step:

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Quadratic([2.0])
    >>> result = fd.minimize(f.fun_grad, [1.0], fd.SGD, steps=100, lr=0.1, tol=1e-6)
    >>> result.status, result.nit
    ('converged', 30)
    >>> result.path[:3].ravel()
    array([1.  , 0.6 , 0.36])
    >>> result.history.shape, result.path.shape
    ((31,), (31, 1))

    Too large a learning rate (:math:`|1 - 4\eta| > 1`) diverges; the result says so:

    >>> result = fd.minimize(f.fun_grad, [1.0], fd.SGD, steps=10_000, lr=0.6)
    >>> result.success, result.message
    (False, 'diverged at step 1054: the loss is inf')
    """
    fun_grad = check_callable(fun_grad, "fun_grad")
    callback = check_callable(callback, "callback", allow_none=True)
    steps = check_steps(steps)
    tol = check_tol(tol)
    if isinstance(optimizer, type) and not issubclass(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastdescent optimizer class such as fd.SGD, "
                        f"got {optimizer.__name__}")
    check_callable(optimizer, "optimizer")
    x = start_point(x0, dtype)
    opt = optimizer([x], backend=backend, **optimizer_kwargs)
    if not isinstance(opt, Optimizer):
        raise TypeError(f"optimizer must build a fastdescent Optimizer, got "
                        f"{type(opt).__name__}")
    lr = optimizer_kwargs.get("lr")
    observe = getattr(lr, "observe", None) if callable(lr) else None

    trace = Trace()
    value, grad, problem = _evaluate(fun_grad, x)
    nfev = 1
    trace.add(x, value)
    nit = 0
    while True:
        problem = problem or _non_finite(value, grad)
        if problem is not None:
            status, message = "diverged", (f"diverged at step {nit}: {problem}" if nit
                                           else f"the start is not usable: {problem}")
            break
        with np.errstate(over="ignore"):
            gnorm = float(np.linalg.norm(grad))
        if tol is not None and gnorm <= tol:
            status, message = converged(tol, gnorm, nit)
            break
        if nit == steps:
            status, message = step_limit_reached(steps, tol, gnorm)
            break
        with np.errstate(over="ignore", invalid="ignore"):
            opt.step([grad])
        nit += 1
        if not np.all(np.isfinite(x)):
            trace.add(x, math.nan)
            value, grad = math.nan, np.full_like(x, math.nan)
            status, message = "diverged", f"diverged at step {nit}: the point is not finite"
            break
        value, grad, problem = _evaluate(fun_grad, x)
        nfev += 1
        point = trace.add(x, value)
        if problem is None and _non_finite(value, grad) is None:
            if observe is not None:
                observe(value)
            if callback is not None and callback(nit, point, value):
                status, message = "callback", f"stopped by the callback after step {nit}"
                break
    if grad is None:
        grad = np.full_like(x, math.nan)
    return trace.result(x, value, grad, nit=nit, nfev=nfev, status=status, message=message)
