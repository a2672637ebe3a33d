r"""``fd.newton``: Newton's method, plain (seed 004) or damped for non-convex problems."""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_range
from .result import (OptimizeResult, Trace, as_gradient, as_loss, check_callable, check_steps,
                     check_tol, converged, start_point, step_limit_reached)

__all__ = ["newton"]

DAMPINGS = (None, "line_search", "levenberg_marquardt")
#: Armijo's sufficient-decrease constant for the line search
_ARMIJO = 1e-4


def _evaluate(fun_grad_hess, x):
    """``(loss, gradient, hessian, None)``, or ``(nan, None, None, reason)`` when the function
    overflowed (floating-point warnings are silenced: non-finite values are reported)."""
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = fun_grad_hess(x)
    except (OverflowError, FloatingPointError) as error:
        return math.nan, None, None, f"fun_grad_hess raised {type(error).__name__}: {error}"
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise TypeError(f"fun_grad_hess must return a triple (loss, gradient, hessian), got "
                        f"{type(out).__name__}")
    value = as_loss(out[0], "fun_grad_hess")
    grad = as_gradient(out[1], x, "fun_grad_hess")
    n = x.size
    hess = np.asarray(out[2])
    if hess.dtype.kind not in "iuf":
        raise TypeError(f"fun_grad_hess must return a real Hessian, got dtype {hess.dtype}")
    if hess.shape != (n, n):
        if n == 1 and hess.size == 1:
            hess = hess.reshape(1, 1)
        else:
            raise ValueError(f"fun_grad_hess returned a Hessian of shape {hess.shape}, "
                             f"expected ({n}, {n})")
    hess = np.array(hess, dtype=np.float64)
    problem = None
    if not math.isfinite(value):
        problem = f"the loss is {value}"
    elif not np.all(np.isfinite(grad)):
        problem = "the gradient is not finite"
    elif not np.all(np.isfinite(hess)):
        problem = "the Hessian is not finite"
    return value, grad, hess, problem


def _smallest_eigenvalue(hess) -> float:
    return float(np.linalg.eigvalsh(0.5 * (hess + hess.T))[0])


def newton(fun_grad_hess, x0, steps, *, lr=1.0, damping=None, tol=1e-10, callback=None,
           dtype=None, max_trials=60) -> OptimizeResult:
    r"""Newton's method from ``x0``, at most ``steps`` steps.

    Plain (``damping=None``), seed 004's ``newton(eta)``:

    .. math::

        x_{k+1} = x_k - \eta\, H(x_k)^{-1} \nabla f(x_k)

    Near a minimum with a positive definite Hessian it converges quadratically (the error
    is about squared each step); it needs no learning rate there. But it heads for the
    nearest stationary point, whatever its kind: where :math:`H` is not positive definite
    the step can go uphill, toward a maximum or far away (seed 004: Newton "may fail ... if
    the Hessian is ... not positive definite"), and a singular :math:`H` has no step.

    Damped, for non-convex problems:

    * ``"line_search"``: the Hessian is made positive definite by taking the absolute value
      of its eigenvalues (floored at :math:`10^{-8} \max(1, \max_i |\lambda_i|)`),
      :math:`d = -|H|^{-1} \nabla f`, a descent direction; then a backtracking line search
      halves the step :math:`t` from :math:`\eta` until Armijo's sufficient decrease
      :math:`f(x + t d) \le f(x) + 10^{-4}\, t\, \nabla f^\top d` holds.
    * ``"levenberg_marquardt"``: :math:`d = -(H + \mu I)^{-1} \nabla f` with :math:`\mu \ge 0`
      raised tenfold (from :math:`10^{-4} \max(1, \max_i |H_{ii}|)`) until
      :math:`H + \mu I` is positive definite and the step :math:`x + \eta d` lowers the
      loss, and lowered tenfold after each accepted step: Newton near a minimum, short
      gradient steps where the curvature misleads.

    A damped step that finds no decrease in ``max_trials`` trials ends the run
    (``status "no_descent"``). A damped run also stops, converged, when the Hessian is
    positive definite and Newton's decrement :math:`\tfrac12 \nabla f^\top H^{-1} \nabla f`
    (what the step would gain on the quadratic model) is below the rounding of the loss:
    no step can lower it measurably any more.

    Seed 004's other fix, a smaller learning rate (plain Newton with ``lr=0.5``), also
    works on the non-convex example below, more slowly.

    The run stops when the gradient norm is at most ``tol``; if the Hessian there has a
    negative eigenvalue, the point is a saddle point or a maximum and the result says so
    (``status "not_minimum"``, ``success=False``). A singular Hessian in a plain step
    (``"singular"``) and non-finite values (``"diverged"``) end the run with
    ``success=False``, never with an exception.

    Parameters
    ----------
    fun_grad_hess : callable ``x -> (loss, gradient, hessian)`` with the Hessian of shape
        ``(n, n)`` (for example a problem's ``fun_grad_hess``)
    x0 : array-like of shape (n,) (a scalar is taken as shape (1,)); it is not modified
    steps : int >= 0
    lr : float > 0, default 1, :math:`\eta` (the first trial step of the line search)
    damping : None, "line_search" or "levenberg_marquardt"
    tol : float >= 0 or None, default 1e-10, the gradient-norm tolerance
    callback : callable ``(step, x, loss) -> bool`` or None; True stops the run
    dtype : float32, float64 or None (as in :func:`fastdescent.minimize`); the linear
        algebra runs in float64
    max_trials : int >= 1, default 60, the most trial steps of a damped step

    Returns
    -------
    OptimizeResult, as :func:`fastdescent.minimize` (``nfev`` counts the trial points too).

    Examples
    --------
    Seed 004's example, :math:`\cosh(x/2)` from :math:`x = 10`:

    >>> import numpy as np, fastdescent as fd
    >>> f = fd.problems.Cosh(0.5)
    >>> result = fd.newton(f.fun_grad_hess, f.start, steps=20)
    >>> result.status, result.nit
    ('converged', 8)
    >>> result.path.ravel()[3:]            # far away steps of 2, then the error is cubed
    array([4.01139823e+00, 2.08254218e+00, 5.25763159e-01, 1.17855785e-02,
           1.36416038e-07, 1.85288457e-22])

    On the non-convex :math:`x \cos(0.15 \pi x)` plain Newton jumps from 5 to 25 and climbs
    to a maximum; the damped variants reach a minimum:

    >>> g = fd.problems.XCos(0.15 * np.pi)
    >>> plain = fd.newton(g.fun_grad_hess, [10.0], steps=50)
    >>> plain.status, plain.x.round(4)
    ('not_minimum', array([26.8341]))
    >>> damped = fd.newton(g.fun_grad_hess, [10.0], steps=50, damping="line_search")
    >>> damped.status, damped.x.round(4), round(damped.fun, 4)
    ('converged', array([7.2694]), -6.9781)
    """
    fun_grad_hess = check_callable(fun_grad_hess, "fun_grad_hess")
    callback = check_callable(callback, "callback", allow_none=True)
    steps = check_steps(steps)
    tol = check_tol(tol)
    lr = check_range(lr, "lr", 0, low_open=True)
    if damping not in DAMPINGS:
        raise ValueError(f"damping must be one of {DAMPINGS}, got {damping!r}")
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise ValueError(f"max_trials must be an integer >= 1, got {max_trials!r}")
    x = start_point(x0, dtype)
    if x.ndim != 1:
        raise ValueError(f"x0 must be a vector (shape (n,)), got shape {x.shape}")
    n = x.size
    identity = np.eye(n)

    trace = Trace()
    value, grad, hess, problem = _evaluate(fun_grad_hess, x)
    nfev = 1
    trace.add(x, value)
    nit = 0
    mu = 0.0  # Levenberg-Marquardt's shift, kept from step to step
    while True:
        if problem is not None:
            status, message = "diverged", (f"diverged at step {nit}: {problem}" if nit
                                           else f"the start is not usable: {problem}")
            break
        g = grad.astype(np.float64)
        gnorm = float(np.linalg.norm(g))
        if tol is not None and gnorm <= tol:
            lowest = _smallest_eigenvalue(hess)
            scale = max(1.0, float(np.max(np.abs(np.diag(hess)))))
            if lowest < -1e-8 * scale:
                status = "not_minimum"
                message = (f"gradient norm {gnorm:.3g} <= tol {tol:g} after {nit} steps, but "
                           f"the Hessian has a negative eigenvalue ({lowest:.3g}): a "
                           f"saddle point or a maximum, not a minimum")
            else:
                status, message = converged(tol, gnorm, nit)
            break
        if nit == steps:
            status, message = step_limit_reached(steps, tol, gnorm)
            break

        # One step: the new point and its evaluation, or a reason to stop.
        if damping is None:
            try:
                singular = np.linalg.cond(hess) > 1.0 / np.finfo(np.float64).eps
                d = None if singular else np.linalg.solve(hess, -g)
            except np.linalg.LinAlgError:
                d = None
            if d is None or not np.all(np.isfinite(d)):
                status = "singular"
                message = (f"singular Hessian at step {nit + 1} (condition number "
                           f"{np.linalg.cond(hess):.3g}): Newton's step is undefined; try "
                           f"damping='line_search' or 'levenberg_marquardt'")
                break
            with np.errstate(over="ignore", invalid="ignore"):
                x += (lr * d).astype(x.dtype)
            trial = _evaluate(fun_grad_hess, x) if np.all(np.isfinite(x)) else None
            nfev += trial is not None
        else:
            w, v = np.linalg.eigh(0.5 * (hess + hess.T))
            if w[0] > 0:
                # Newton's decrement: f - min of the quadratic model is g H^-1 g / 2. Below
                # the rounding of f no step can lower the loss measurably: done.
                decrement = 0.5 * float(np.sum((v.T @ g) ** 2 / w))
                if decrement <= 4 * np.finfo(x.dtype).eps * max(1.0, abs(value)):
                    status = "converged"
                    message = (f"converged to rounding: the Newton decrement {decrement:.3g} "
                               f"is below the precision of the loss (gradient norm "
                               f"{gnorm:.3g}) after {nit} steps")
                    break
        if damping == "line_search":
            floor = 1e-8 * max(1.0, float(np.max(np.abs(w))))
            d = -v @ ((v.T @ g) / np.maximum(np.abs(w), floor))
            slope = float(g @ d)
            t, trial, start = lr, None, x.copy()
            for _ in range(max_trials):
                candidate = (start + t * d).astype(x.dtype)
                if np.all(np.isfinite(candidate)):
                    out = _evaluate(fun_grad_hess, candidate)
                    nfev += 1
                    if out[3] is None and out[0] <= value + _ARMIJO * t * slope:
                        x[...] = candidate
                        trial = out
                        break
                t *= 0.5
        elif damping == "levenberg_marquardt":
            base = 1e-4 * max(1.0, float(np.max(np.abs(np.diag(hess)))))
            trial, start = None, x.copy()
            for _ in range(max_trials):
                try:
                    factor = np.linalg.cholesky(hess + mu * identity)
                except np.linalg.LinAlgError:
                    mu = max(10.0 * mu, base)
                    continue
                d = -np.linalg.solve(factor.T, np.linalg.solve(factor, g))
                candidate = (start + lr * d).astype(x.dtype)
                if np.all(np.isfinite(candidate)):
                    out = _evaluate(fun_grad_hess, candidate)
                    nfev += 1
                    if out[3] is None and out[0] < value:
                        x[...] = candidate
                        trial = out
                        mu = mu / 10.0 if mu / 10.0 >= base else 0.0
                        break
                mu = max(10.0 * mu, base)
        if damping is not None and trial is None:
            status = "no_descent"
            message = (f"no step lowering the loss found in {max_trials} trials at step "
                       f"{nit + 1} (gradient norm {gnorm:.3g})")
            break
        nit += 1
        if trial is None:  # a plain step to a non-finite point
            trace.add(x, math.nan)
            value, grad = math.nan, np.full_like(x, math.nan)
            status, message = "diverged", f"diverged at step {nit}: the point is not finite"
            break
        value, grad, hess, problem = trial
        point = trace.add(x, value)
        if problem is None and callback is not None and callback(nit, point, value):
            status, message = "callback", f"stopped by the callback after step {nit}"
            break
    if grad is None:
        grad = np.full_like(x, math.nan)
    return trace.result(x, value, grad, nit=nit, nfev=nfev, status=status, message=message)
