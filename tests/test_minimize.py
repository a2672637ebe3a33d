"""fd.minimize's contract: stopping (tol, callback, steps), divergence as a result and never
an exception, the path and history, dtypes, bad input; and the OptimizeResult type."""

from __future__ import annotations

import functools
import math
import pickle

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import problems as P

QUADRATIC = P.Quadratic([2.0])
ILL = P.Quadratic([0.1, 2.0], start=[-5.0, -2.0])


def test_early_stop_on_the_gradient_norm(backend):
    r = fd.minimize(ILL.fun_grad, ILL.start, fd.SGD, 1000, lr=0.4, tol=1e-4, backend=backend)
    assert r.success and r.status == "converged" and "converged" in r.message
    assert 0 < r.nit < 1000
    assert np.linalg.norm(r.jac) <= 1e-4
    # the step before did not meet it: the run stopped at the first point that did
    assert np.linalg.norm(ILL.gradient(r.path[-2])) > 1e-4


def test_tol_met_at_the_start_takes_no_step(backend):
    r = fd.minimize(QUADRATIC.fun_grad, [0.0], fd.Adam, 10, tol=0.0, backend=backend)
    assert r.success and r.nit == 0 and r.path.shape == (1, 1) and r.history.tolist() == [0.0]


def test_all_steps_without_tol_is_a_success_with_tol_not_reached_a_failure(backend):
    r = fd.minimize(ILL.fun_grad, ILL.start, fd.SGD, 5, lr=0.1, backend=backend)
    assert r.success and r.status == "completed" and r.nit == 5
    assert r.message == "completed 5 steps"
    r = fd.minimize(ILL.fun_grad, ILL.start, fd.SGD, 5, lr=0.1, tol=1e-9, backend=backend)
    assert not r.success and r.status == "max_steps" and r.nit == 5
    assert "still above tol" in r.message


def test_the_callback_sees_every_step_and_can_stop_the_run(backend):
    seen = []

    def callback(step, x, value):
        seen.append((step, x, value))
        return step == 3

    r = fd.minimize(ILL.fun_grad, ILL.start, fd.SGD, 100, lr=0.1, callback=callback,
                    backend=backend)
    assert r.success and r.status == "callback" and r.nit == 3
    assert [s for s, _, _ in seen] == [1, 2, 3]
    for step, x, value in seen:
        np.testing.assert_array_equal(x, r.path[step])   # copies: later steps do not move them
        assert value == r.history[step] == ILL.value(x)
        assert not x.flags.writeable


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_divergence_is_a_result_not_an_exception(backend, dtype):
    x0 = np.array([1.0], dtype=dtype)
    with np.errstate(all="raise"):  # even with NumPy set to raise
        r = fd.minimize(QUADRATIC.fun_grad, x0, fd.SGD, 100_000, lr=1.0, backend=backend)
    assert not r.success and r.status == "diverged"
    assert r.message.startswith(f"diverged at step {r.nit}")
    assert r.nit < 100_000 and not math.isfinite(r.fun)
    assert r.history.shape == (r.nit + 1,) and r.path.shape == (r.nit + 1, 1)
    assert np.all(np.isfinite(r.history[:-1]))   # finite until the last
    assert r.x.dtype == dtype


def test_divergence_of_the_point_itself(backend):
    def fun_grad(x):  # the loss stays finite, the gradient is huge: the point overflows
        return 0.0, np.full_like(x, 1e308)

    r = fd.minimize(fun_grad, [0.0, 0.0], fd.SGD, 10, lr=1e10, backend=backend)
    assert not r.success and r.status == "diverged" and "the point is not finite" in r.message
    assert r.nit == 1 and math.isnan(r.fun) and np.all(np.isnan(r.jac))
    assert r.path.shape == (2, 2) and not np.all(np.isfinite(r.path[-1]))


def test_an_overflow_error_raised_by_the_function_is_a_divergence(backend):
    def fun_grad(x):
        return math.exp(x[0]), np.array([-math.exp(x[0])])  # ascends exp: math.exp overflows

    r = fd.minimize(fun_grad, [0.0], fd.SGD, 1000, lr=10.0, backend=backend)
    assert not r.success and r.status == "diverged" and "OverflowError" in r.message


def test_a_non_finite_start_loss_is_reported():
    r = fd.minimize(lambda x: (math.nan, x * 0), [1.0], fd.SGD, 10)
    assert not r.success and r.nit == 0 and r.message.startswith("the start is not usable")


def test_path_and_history(backend):
    x0 = np.array([-5.0, -2.0])
    r = fd.minimize(ILL.fun_grad, x0, fd.SGD, 7, lr=0.1, backend=backend)
    assert r.path.shape == (8, 2) and r.history.shape == (8,) and r.history.dtype == np.float64
    np.testing.assert_array_equal(r.path[0], x0)
    np.testing.assert_array_equal(r.path[-1], r.x)
    assert r.history[0] == ILL.value(x0) and r.fun == r.history[-1]
    for point, value in zip(r.path, r.history):
        assert value == ILL.value(point)
    np.testing.assert_array_equal(r.jac, ILL.gradient(r.x))
    # gradient descent: x_k = (1 - 2 lr a)^k x_0
    np.testing.assert_allclose(r.path[3], x0 * (1 - 0.2 * np.array([0.1, 2.0])) ** 3)
    assert r.nfev == 8
    assert x0.tolist() == [-5.0, -2.0]  # x0 is copied, not modified


def test_float32_is_kept_and_dtype_can_be_asked_for(backend):
    x0 = np.array([-5.0, -2.0], dtype=np.float32)
    r = fd.minimize(ILL.fun_grad, x0, fd.Adam, 5, lr=0.1, backend=backend)
    assert r.x.dtype == r.path.dtype == r.jac.dtype == np.float32
    r = fd.minimize(ILL.fun_grad, [-5.0, -2.0], fd.Adam, 5, lr=0.1, dtype=np.float32,
                    backend=backend)
    assert r.x.dtype == np.float32
    r = fd.minimize(ILL.fun_grad, [-5, -2], fd.Adam, 5, lr=0.1, backend=backend)
    assert r.x.dtype == np.float64  # integers become float64


def test_backends_agree(backend):
    r = fd.minimize(ILL.fun_grad, ILL.start, fd.Adam, 50, lr=0.1, backend=backend)
    reference = fd.minimize(ILL.fun_grad, ILL.start, fd.Adam, 50, lr=0.1, backend="numpy")
    np.testing.assert_allclose(r.path, reference.path, rtol=1e-12, atol=1e-14)


def test_optimizer_options_and_factories_are_passed_on(backend):
    mom = fd.minimize(ILL.fun_grad, ILL.start, fd.SGD, 3, lr=0.1, momentum=0.9, backend=backend)
    partial = fd.minimize(ILL.fun_grad, ILL.start, functools.partial(fd.SGD, momentum=0.9),
                          3, lr=0.1, backend=backend)
    plain = fd.minimize(ILL.fun_grad, ILL.start, fd.SGD, 3, lr=0.1, backend=backend)
    np.testing.assert_array_equal(mom.path, partial.path)
    assert not np.array_equal(mom.path, plain.path)


def test_a_scalar_start_and_a_gradient_that_is_x_itself():
    # f = x^2 / 2 has gradient x: returning x itself must not alias the optimizer's param
    r = fd.minimize(lambda x: (0.5 * float(x @ x), x), 3.0, fd.SGD, 2, lr=0.5)
    assert r.path[:, 0].tolist() == [3.0, 1.5, 0.75]


def test_a_schedule_as_lr_and_reduce_on_plateau_observing_the_loss(backend):
    schedule = fd.schedules.StepDecay(0.4, step_size=2, gamma=0.5)
    r = fd.minimize(QUADRATIC.fun_grad, [1.0], fd.SGD, 4, lr=schedule, backend=backend)
    factors = [1 - 4 * schedule(t) for t in range(1, 5)]
    np.testing.assert_allclose(r.path[:, 0], np.cumprod([1.0] + factors))
    # a plateau: f = |x| has a gradient of constant size, so x oscillates around 0 and the
    # loss stops improving: ReduceOnPlateau, fed by minimize, cuts the step
    plateau = fd.schedules.ReduceOnPlateau(0.3, factor=0.5, patience=1)
    r = fd.minimize(lambda x: (abs(float(x[0])), np.sign(x)), [0.1], fd.SGD, 30, lr=plateau,
                    backend=backend)
    assert plateau.current_lr < 0.3 and abs(r.x[0]) < 0.05


@pytest.mark.parametrize("call, exc, match", [
    (lambda: fd.minimize(QUADRATIC.fun_grad, [1.0], int, 5), TypeError, "optimizer must be a"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [1.0], "SGD", 5), TypeError,
     "optimizer must be callable"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [1.0], lambda p, backend: p, 5), TypeError,
     "optimizer must build a fastdescent Optimizer"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [1.0], fd.SGD, -1), ValueError, "steps must be >= 0"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [1.0], fd.SGD, 2.0), TypeError,
     "steps must be an int"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [1.0], fd.SGD, 5, tol=-1), ValueError, "tol must be"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [1.0], fd.SGD, 5, callback=1), TypeError,
     "callback must be callable"),
    (lambda: fd.minimize(None, [1.0], fd.SGD, 5), TypeError, "fun_grad must be callable"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [1.0], fd.SGD, 5, dtype=np.float16), TypeError,
     "dtype must be float32 or float64"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [math.inf], fd.SGD, 5), ValueError,
     "x0 must be finite"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, ["a"], fd.SGD, 5), TypeError, "x0 must be an array"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [], fd.SGD, 5), ValueError, "x0 is empty"),
    (lambda: fd.minimize(QUADRATIC.fun_grad, [1.0], fd.SGD, 5, lr=-1), ValueError, "lr"),
    (lambda: fd.minimize(lambda x: 1.0, [1.0], fd.SGD, 5), TypeError, "must return a pair"),
    (lambda: fd.minimize(lambda x: (x, x), [1.0, 2.0], fd.SGD, 5), TypeError,
     "must return a real number as the loss"),
    (lambda: fd.minimize(lambda x: (1.0, np.ones(3)), [1.0, 2.0], fd.SGD, 5), ValueError,
     r"gradient of shape \(3,\), expected \(2,\)"),
])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------------ OptimizeResult


def test_optimize_result_is_a_dict_with_attributes():
    r = fd.minimize(QUADRATIC.fun_grad, [1.0], fd.SGD, 3, lr=0.1)
    assert isinstance(r, fd.OptimizeResult) and isinstance(r, dict)
    assert r.x is r["x"] and {"x", "fun", "jac", "nit", "nfev", "success", "status", "message",
                              "history", "path"} <= set(r)
    assert "history" in dir(r)
    with pytest.raises(AttributeError):
        r.missing
    r.extra = 1
    assert r["extra"] == 1
    del r.extra
    assert "extra" not in r
    copy = pickle.loads(pickle.dumps(r))
    assert copy.nit == 3 and np.array_equal(copy.path, r.path)
    text = repr(r)
    lines = text.splitlines()
    assert lines[0] == " message: completed 3 steps" and lines[1] == " success: True"
    assert "history: [2.      , 0.72    , 0.2592  , 0.093312]" in text  # short: in full
    assert "path: <float64 array of shape (4, 1)>" in text             # long: the shape
    assert repr(fd.OptimizeResult()) == "OptimizeResult()"
