"""The seeds' experiments (seed 004, "Optimizers from scratch", and the learning-rate
discussion of seed 000), each reproducing the seed's result. Where an optimizer runs, on
every backend. The numbers quoted in comments are those of a float64 run."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import problems as P


# ------------------------------------------------------------------ local minima (seed 004)


def test_gradient_descent_is_trapped_in_the_local_minimum_of_x_cos_pi_x(backend):
    f = P.XCos(math.pi)                      # on [-1, 2]: minima at -0.2739 and 1.0904
    local, best = f.minima[:, 0]
    trapped = fd.minimize(f.fun_grad, [0.0], fd.SGD, 1000, lr=0.05, tol=1e-8, backend=backend)
    # from x = 0 the slope (f'(0) = 1) leads left, into the local minimum (50 steps)
    assert trapped.success and trapped.x[0] == pytest.approx(local, abs=1e-7)
    assert trapped.fun == pytest.approx(-0.17860, abs=1e-5)
    assert trapped.fun > f.value(f.global_minimum) + 0.8      # the global one is at -1.0467
    # from x = 0.5 the same descent finds the global minimum (26 steps): the start decides
    found = fd.minimize(f.fun_grad, [0.5], fd.SGD, 1000, lr=0.05, tol=1e-8, backend=backend)
    assert found.x[0] == pytest.approx(best, abs=1e-7)
    assert found.fun == pytest.approx(-1.04672, abs=1e-5)


# ------------------------------------------------------------------ saddle point (seed 004)


def test_gradient_descent_stalls_at_the_saddle_of_x2_minus_y2(backend):
    f = P.Saddle()
    r = fd.minimize(f.fun_grad, [1.0, 0.0], fd.SGD, 1000, lr=0.1, tol=1e-6, backend=backend)
    # y = 0 exactly all along (its gradient -2y is 0): x shrinks by 0.8 a step, and after
    # 66 steps the gradient is below tol, at the saddle point, with a loss of ~1e-13
    assert r.success and r.status == "converged" and r.nit == 66
    assert np.all(r.path[:, 1] == 0.0)
    np.testing.assert_allclose(r.x, f.saddle_points[0], atol=1e-6)
    w = np.linalg.eigvalsh(f.hessian(r.x))
    assert w.min() < 0 < w.max()             # a saddle, not a minimum: f is unbounded below
    assert abs(r.fun) < 1e-12


@pytest.mark.parametrize("offset, escape_step", [(1e-8, 102), (1e-4, 51)])
def test_a_tiny_offset_escapes_the_saddle_after_a_long_stall(backend, offset, escape_step):
    f = P.Saddle()
    r = fd.minimize(f.fun_grad, [1.0, offset], fd.SGD, 200, lr=0.1, backend=backend)
    y = r.path[:, 1]
    np.testing.assert_allclose(y, offset * 1.2 ** np.arange(201), rtol=1e-12)  # y *= 1 + 2 lr
    # the stall: |y| stays below 1 for log(1/offset) / log(1.2) steps, near the saddle ...
    assert int(np.argmax(np.abs(y) > 1)) == escape_step
    assert abs(r.history[escape_step // 2]) < 1e-3
    # ... then the descent leaves it for good: f = x^2 - y^2 plunges
    assert r.success and r.fun < -1e6 and abs(r.x[0]) < 1e-15


# ------------------------------------------------------------- vanishing gradient (seed 004)


def test_gradient_descent_barely_moves_on_tanh_from_4(backend):
    f = P.Tanh()
    assert f.gradient(f.start)[0] == pytest.approx(0.00134, abs=1e-5)   # the seed's 0.0013
    stuck = fd.minimize(f.fun_grad, [4.0], fd.SGD, 100, lr=0.1, backend=backend)
    # 100 steps move x by 0.0136 (to 3.9864); the loss falls by 2e-5
    assert 4.0 - stuck.x[0] == pytest.approx(0.0136, abs=5e-4)
    assert stuck.history[0] - stuck.fun < 3e-5
    # the same descent from x = 0.5, where the gradient is 0.79, travels to x = -2.11
    free = fd.minimize(f.fun_grad, [0.5], fd.SGD, 100, lr=0.1, backend=backend)
    assert free.x[0] < -2.0
    # the seed's mitigation, an adaptive method: Adam's steps do not shrink with the
    # gradient, and it gets off the plateau (to x = -3.0) in the same 100 steps
    adam = fd.minimize(f.fun_grad, [4.0], fd.Adam, 100, lr=0.1, backend=backend)
    assert adam.x[0] < -2.5


# ------------------------------------------------------- learning rates (seeds 000 and 004)


def test_learning_rate_too_small_right_and_too_large_on_2x2(backend):
    f = P.Quadratic([2.0])       # x <- (1 - 4 lr) x

    def run(lr, steps=2000):
        return fd.minimize(f.fun_grad, [1.0], fd.SGD, steps, lr=lr, tol=1e-6, backend=backend)

    slow, right, exact, edge, large = run(0.01), run(0.1), run(0.25), run(0.5, 100), run(0.6)
    assert slow.success and slow.nit == 373      # 0.96 per step: slow
    assert right.success and right.nit == 30     # 0.6 per step
    assert exact.success and exact.nit == 1      # 1 - 4 lr = 0: one step to the minimum
    assert not edge.success and edge.status == "max_steps"   # |1 - 4 lr| = 1: bounces forever
    assert np.all(np.abs(edge.path[:, 0]) == 1.0)
    assert not large.success and large.status == "diverged"   # -1.4 per step: overflow
    assert large.nit == 1054 and "the loss is inf" in large.message
    assert np.all(np.abs(np.diff(np.abs(large.path[:-1, 0]))) > 0)


# --------------------------------------------------- momentum on an ill-conditioned valley


ILL = P.Quadratic([0.1, 2.0], start=[-5.0, -2.0])   # condition number 20
TOL = 1e-6


def test_momentum_beats_plain_gradient_descent_on_an_ill_conditioned_quadratic(backend):
    plain = fd.minimize(ILL.fun_grad, ILL.start, fd.SGD, 2000, lr=0.4, tol=TOL,
                        backend=backend)
    momentum = fd.minimize(ILL.fun_grad, ILL.start, fd.SGD, 2000, lr=0.6, momentum=0.5,
                           tol=TOL, backend=backend)
    # plain GD at lr 0.4: x1 shrinks by 0.92 a step (166 steps); lr 0.6 would diverge in x2
    # (factor -1.4). Momentum with lr 0.6 (46 steps): the flat direction accelerates and
    # the steep one's oscillation is damped.
    assert plain.success and momentum.success
    assert plain.nit == 166 and momentum.nit == 46
    too_fast = fd.minimize(ILL.fun_grad, ILL.start, fd.SGD, 2000, lr=0.6, tol=TOL,
                           backend=backend)
    assert too_fast.status == "diverged"


@pytest.mark.parametrize("optimizer, options, steps", [
    (fd.Adagrad, dict(lr=0.4), 630),
    (fd.RMSprop, dict(lr=0.1, alpha=0.9), 88),
    (fd.Adam, dict(lr=0.1), 284),
])
def test_adaptive_methods_reach_the_minimum_of_the_ill_conditioned_quadratic(
        backend, optimizer, options, steps):
    r = fd.minimize(ILL.fun_grad, ILL.start, optimizer, 5000, tol=TOL, backend=backend,
                    **options)
    assert r.success and r.status == "converged"
    assert r.nit == pytest.approx(steps, abs=2)
    np.testing.assert_allclose(r.x, 0.0, atol=1e-5)
    assert r.fun < 1e-10


# ------------------------------------------------------------ Newton's method (seed 004)


def test_newton_converges_fast_on_cosh():
    f = P.Cosh(0.5)                                    # the seed's newton(eta=1), x = 10
    r = fd.newton(f.fun_grad_hess, f.start, 20)
    assert r.success and r.nit == 8
    errors = np.abs(r.path[:, 0])                      # the minimum is 0
    # far out, tanh(cx) ~ 1 and each step moves by about 1/c = 2 ...
    np.testing.assert_allclose(np.diff(r.path[:4, 0]), -2.0, atol=0.01)
    # ... then the error is (at least) squared each step: 0.53, 0.012, 1.4e-7, 1.9e-22.
    # (cosh is even, f'''(0) = 0, so here it is even cubed: e' ~ (c^2 / 3) e^3.)
    tail = errors[5:]
    assert np.all(tail[1:] <= tail[:-1] ** 2)
    np.testing.assert_allclose(tail[1:], 0.25 / 3 * tail[:-1] ** 3, rtol=0.15)
    # gradient descent to the same tolerance: far slower (and lr = 1 diverges from x = 10)
    gd = fd.minimize(f.fun_grad, f.start, fd.SGD, 5000, lr=0.2, tol=1e-10)
    assert gd.success and gd.nit > 50 * r.nit
    assert fd.minimize(f.fun_grad, f.start, fd.SGD, 100, lr=1.0).status == "diverged"


def test_newton_error_squares_each_step_near_a_minimum():
    f = P.XCos(0.15 * math.pi)
    r = fd.newton(f.fun_grad_hess, [7.5], 20)
    x_star = r.x[0]
    errors = np.abs(r.path[:-1, 0] - x_star)          # 0.23, 0.0049, 2.8e-6
    errors = errors[errors > 1e-12]
    ratio = errors[1:] / errors[:-1] ** 2
    # e' = C e^2 with C = |f'''(x*) / (2 f''(x*))| = 0.1175
    h = 1e-4
    third = (f.hessian([x_star + h])[0, 0] - f.hessian([x_star - h])[0, 0]) / (2 * h)
    c = abs(third / (2 * f.hessian([x_star])[0, 0]))
    assert c == pytest.approx(0.1175, abs=1e-3)
    assert len(ratio) >= 2 and ratio[-1] == pytest.approx(c, rel=0.05)


def test_plain_newton_fails_on_the_non_convex_case_and_damping_fixes_it():
    # x cos(0.15 pi x) from x = 10: seed 004 says Newton may fail where the Hessian is not
    # positive definite; this is the example of the text its Newton code follows (d2l 12.3)
    f = P.XCos(0.15 * math.pi)
    start_loss = f.value(f.start)
    plain = fd.newton(f.fun_grad_hess, f.start, 50)
    # 10 -> 5 -> 24.995 (f'' < 0 there: the step goes uphill) -> ... a maximum at 26.834
    assert not plain.success and plain.status == "not_minimum"
    assert plain.path[1, 0] == pytest.approx(5.0) and plain.path[2, 0] > 20
    assert plain.x[0] == pytest.approx(26.8341, abs=1e-4)
    assert plain.fun > start_loss + 20                # 26.75, from about 0
    assert f.hessian(plain.x)[0, 0] < 0
    local = 7.269388
    for damping in ["line_search", "levenberg_marquardt"]:
        damped = fd.newton(f.fun_grad_hess, f.start, 50, damping=damping)
        assert damped.success and damped.nit <= 6, damping
        assert damped.x[0] == pytest.approx(local, abs=1e-6)
        assert damped.fun == pytest.approx(-6.97814, abs=1e-5)
        assert np.all(np.diff(damped.history) <= 0)    # the loss never rises
        assert f.hessian(damped.x)[0, 0] > 0
    # the seed's own fix, a smaller learning rate, works too, more slowly (34 steps)
    slower = fd.newton(f.fun_grad_hess, f.start, 100, lr=0.5)
    assert slower.success and slower.x[0] == pytest.approx(local, abs=1e-6)
    assert slower.nit > 5 * 6
