"""fd.newton's contract: plain and damped steps, singular Hessians and divergence as results,
stopping, the path and history, bad input. (The seeds' Newton experiments are in
test_seeds.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import problems as P

DAMPINGS = [None, "line_search", "levenberg_marquardt"]


def along_a_line(x):
    """f = (x + y)^2: the Hessian [[2, 2], [2, 2]] is singular everywhere."""
    s = x[0] + x[1]
    return s * s, np.array([2 * s, 2 * s]), np.full((2, 2), 2.0)


@pytest.mark.parametrize("damping", DAMPINGS)
def test_a_quadratic_is_solved_in_one_step(damping):
    f = P.Quadratic([0.1, 2.0], start=[-5.0, -2.0])
    r = fd.newton(f.fun_grad_hess, f.start, 10, damping=damping)
    assert r.success and r.status == "converged" and r.nit == 1
    np.testing.assert_allclose(r.x, 0.0, atol=1e-15)


def test_plain_newton_with_a_learning_rate_is_the_seeds_update():
    f = P.Cosh(0.5)
    r = fd.newton(f.fun_grad_hess, [10.0], 3, lr=0.5, tol=None)
    x = 10.0
    for k in range(1, 4):  # seed 004: x <- x - eta f'(x) / f''(x)
        x = x - 0.5 * (0.5 * math.sinh(0.5 * x)) / (0.25 * math.cosh(0.5 * x))
        assert r.path[k, 0] == pytest.approx(x, rel=1e-14)
    assert r.status == "completed" and r.success


def test_a_singular_hessian_ends_a_plain_run_without_an_exception():
    r = fd.newton(along_a_line, [1.0, 0.0], 10)
    assert not r.success and r.status == "singular" and r.nit == 0
    assert "singular Hessian at step 1" in r.message and "damping=" in r.message
    r = fd.newton(lambda x: (float(x[0]), np.ones(1), np.zeros((1, 1))), [1.0], 10)
    assert r.status == "singular"


@pytest.mark.parametrize("damping", ["line_search", "levenberg_marquardt"])
def test_damped_runs_get_past_a_singular_hessian(damping):
    r = fd.newton(along_a_line, [1.0, 0.0], 20, damping=damping)
    assert r.success and abs(r.x.sum()) < 1e-8


def test_a_saddle_point_is_not_a_minimum():
    r = fd.newton(P.Saddle().fun_grad_hess, [1.0, 0.0], 10)
    assert not r.success and r.status == "not_minimum" and r.nit == 1
    assert "negative eigenvalue" in r.message and r.x.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("damping", ["line_search", "levenberg_marquardt"])
def test_no_descent_is_reported(damping):
    def wrong_gradient(x):  # the gradient of x^2 with the wrong sign: every step goes uphill
        return float(x @ x), -2 * x, 2 * np.eye(1)

    r = fd.newton(wrong_gradient, [1.0], 10, damping=damping, max_trials=8)
    assert not r.success and r.status == "no_descent" and r.nit == 0
    assert "in 8 trials" in r.message and r.nfev == 9


def test_divergence_is_a_result():
    def blows_up(x):
        value = math.inf if x[0] > 5 else -x[0]
        return value, np.array([-1.0]), np.array([[0.5]])  # plain steps of +2 to the right

    r = fd.newton(blows_up, [0.0], 10)
    assert not r.success and r.status == "diverged" and r.nit == 3
    assert r.message == "diverged at step 3: the loss is inf"
    # a Hessian so small that the step overflows
    r = fd.newton(lambda x: (0.0, np.array([1.0]), np.array([[1e-320]])), [0.0], 10)
    assert r.status == "singular" and not r.success


def test_callback_path_history_and_dtype():
    f = P.Rosenbrock()
    steps = []
    r = fd.newton(f.fun_grad_hess, np.array([-1.2, 1.0], dtype=np.float32), 50,
                  damping="line_search", callback=lambda k, x, v: steps.append(k) or k == 4)
    assert r.status == "callback" and r.nit == 4 and steps == [1, 2, 3, 4] and r.success
    assert r.x.dtype == r.path.dtype == np.float32
    assert r.path.shape == (5, 2) and r.history.shape == (5,)
    assert all(v == pytest.approx(f.value(p), rel=1e-6) for p, v in zip(r.path, r.history))
    assert r.history[-1] < r.history[0]


@pytest.mark.parametrize("damping", DAMPINGS)
def test_every_variant_solves_rosenbrock(damping):
    f = P.Rosenbrock()
    r = fd.newton(f.fun_grad_hess, f.start, 100, damping=damping)
    assert r.success, r.message
    np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-8)
    if damping is not None:  # damped steps never raise the loss
        assert np.all(np.diff(r.history) <= 0)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: fd.newton(P.Cosh().fun_grad_hess, [1.0], 5, damping="lm"), ValueError,
     "damping must be one of"),
    (lambda: fd.newton(P.Cosh().fun_grad_hess, [1.0], 5, lr=0), ValueError, "lr must be in"),
    (lambda: fd.newton(P.Cosh().fun_grad_hess, [1.0], 5, max_trials=0), ValueError,
     "max_trials must be"),
    (lambda: fd.newton(P.Cosh().fun_grad_hess, [[1.0]], 5), ValueError, "x0 must be a vector"),
    (lambda: fd.newton(P.Cosh().fun_grad, [1.0], 5), TypeError, "must return a triple"),
    (lambda: fd.newton(lambda x: (0.0, x, np.eye(3)), [1.0, 2.0], 5), ValueError,
     r"Hessian of shape \(3, 3\), expected \(2, 2\)"),
    (lambda: fd.newton(P.Cosh().fun_grad_hess, [1.0], -1), ValueError, "steps must be >= 0"),
])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
