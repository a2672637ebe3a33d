"""fd.problems: values, gradients and Hessians against finite differences, the known
stationary points, shapes, dtypes and bad input."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import problems as P

CATALOG = P.catalog()
EXTRA = {
    "x_cos_1": P.XCos(1.0),
    "cosh_2": P.Cosh(2.0),
    "rosenbrock_2_10": P.Rosenbrock(a=2.0, b=10.0),
    "quadratic_mixed": P.Quadratic([1.0, -0.5, 3.0]),
    "quadratic_concave": P.Quadratic([-1.0, -2.0]),
}
ALL = {**CATALOG, **EXTRA}


def sample_points(problem, count=6, seed=0):
    """The start, points drawn in the bounds, and the known stationary points."""
    rng = np.random.default_rng(seed)
    low, high = problem.bounds[:, 0], problem.bounds[:, 1]
    drawn = low + (high - low) * rng.random((count, problem.dim))
    return [problem.start, *drawn, *problem.minima, *problem.saddle_points, *problem.maxima]


def central_gradient(fun, x, h):
    """Central differences of a scalar function, one coordinate at a time."""
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h[i]
        g[i] = (fun(x + e) - fun(x - e)) / (2 * h[i])
    return g


def central_jacobian(fun, x, h):
    rows = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h[i]
        rows.append((fun(x + e) - fun(x - e)) / (2 * h[i]))
    return np.array(rows).T


def step_sizes(x):
    # cube root of the machine epsilon: the best step for central differences
    return 6e-6 * np.maximum(1.0, np.abs(x))


@pytest.mark.parametrize("name", ALL)
def test_gradient_matches_central_differences(name):
    problem = ALL[name]
    for x in sample_points(problem):
        x = np.array(x, dtype=np.float64)
        g = problem.gradient(x)
        numeric = central_gradient(problem.value, x, step_sizes(x))
        scale = max(1.0, float(np.max(np.abs(g))), abs(problem.value(x)))
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-7 * scale,
                                   err_msg=f"{name} at {x}")


@pytest.mark.parametrize("name", ALL)
def test_hessian_matches_central_differences_of_the_gradient(name):
    problem = ALL[name]
    for x in sample_points(problem):
        x = np.array(x, dtype=np.float64)
        h = problem.hessian(x)
        assert h.shape == (problem.dim, problem.dim)
        np.testing.assert_array_equal(h, h.T)
        numeric = central_jacobian(problem.gradient, x, step_sizes(x))
        scale = max(1.0, float(np.max(np.abs(h))), float(np.max(np.abs(problem.gradient(x)))))
        np.testing.assert_allclose(h, numeric, rtol=1e-6, atol=1e-7 * scale,
                                   err_msg=f"{name} at {x}")


@pytest.mark.parametrize("name", ALL)
def test_fun_grad_and_fun_grad_hess_agree_with_the_parts(name):
    problem = ALL[name]
    x = problem.start
    value, grad = problem.fun_grad(x)
    value3, grad3, hess3 = problem.fun_grad_hess(x)
    assert type(value) is float and value == value3 == problem.value(x)
    np.testing.assert_array_equal(grad, problem.gradient(x))
    np.testing.assert_array_equal(grad3, grad)
    np.testing.assert_array_equal(hess3, problem.hessian(x))
    assert grad.shape == (problem.dim,)


def eigenvalues(problem, x):
    return np.linalg.eigvalsh(problem.hessian(x))


@pytest.mark.parametrize("name", ALL)
def test_known_stationary_points_are_stationary_and_of_their_kind(name):
    problem = ALL[name]
    for kind, points in [("min", problem.minima), ("saddle", problem.saddle_points),
                         ("max", problem.maxima)]:
        assert points.ndim == 2 and points.shape[1] == problem.dim
        for x in points:
            scale = max(1.0, float(np.max(np.abs(problem.hessian(x)))))
            assert np.linalg.norm(problem.gradient(x)) <= 1e-9 * scale, (name, kind, x)
            w = eigenvalues(problem, x)
            if kind == "min":
                assert w.min() >= -1e-12 * scale, (name, x, w)  # positive semi-definite
            elif kind == "max":
                assert w.max() < 0, (name, x, w)
            else:
                assert w.min() < 0 < w.max(), (name, x, w)


@pytest.mark.parametrize("name", ALL)
def test_start_and_known_points_lie_in_the_bounds(name):
    problem = ALL[name]
    low, high = problem.bounds[:, 0], problem.bounds[:, 1]
    assert problem.bounds.shape == (problem.dim, 2) and np.all(low < high)
    assert np.all((low <= problem.start) & (problem.start <= high))
    for x in [*problem.minima, *problem.saddle_points, *problem.maxima]:
        if name != "quadratic_mixed":
            assert np.all((low <= x) & (x <= high)), (name, x)


def test_global_minimum_is_the_lowest_known_minimum():
    f = P.XCos()  # seed 004: x cos(pi x) on [-1, 2], a local and a global minimum
    assert f.bounds.tolist() == [[-1.0, 2.0]]
    assert f.minima.shape == (2, 1)
    local, best = f.minima[:, 0]
    assert local == pytest.approx(-0.2738526868, abs=1e-9)
    assert best == pytest.approx(1.0904082219, abs=1e-9)
    assert f.global_minimum[0] == best
    assert f.value(f.global_minimum) == pytest.approx(-1.0467211247, abs=1e-9)
    assert f.value(f.minima[0]) > f.value(f.global_minimum) + 0.8
    assert P.Tanh().global_minimum is None and P.Saddle().global_minimum is None
    assert all(P.Himmelblau().value(m) < 1e-20 for m in P.Himmelblau().minima)


def test_the_seeds_numbers():
    # seed 004: f'(4) = 1 - tanh^2(4) = 0.0013 for tanh
    assert P.Tanh().gradient(np.array([4.0]))[0] == pytest.approx(0.0013, abs=5e-5)
    cosh = P.Cosh(0.5)  # seed 004's Newton example starts at x = 10 with c = 0.5
    assert cosh.start.tolist() == [10.0] and cosh.value(np.zeros(1)) == 1.0
    nonconvex = P.XCos(0.15 * math.pi)
    assert nonconvex.start[0] == pytest.approx(10.0)
    assert CATALOG["ill_conditioned"].value(np.array([1.0, 1.0])) == pytest.approx(2.1)
    assert CATALOG["two_x_squared"].value(np.array([3.0])) == 18.0
    saddle = P.Saddle()
    assert saddle.value(np.array([2.0, 1.0])) == 3.0
    assert saddle.saddle_points.tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize("name", ALL)
def test_value_takes_a_grid_of_points(name):
    problem = ALL[name]
    low, high = problem.bounds[:, 0], problem.bounds[:, 1]
    axes = [np.linspace(lo, hi, 5) for lo, hi in zip(low, high)]
    grid = np.array(np.meshgrid(*axes, indexing="ij"))  # shape (n, 5, ..., 5)
    values = problem.value(grid)
    assert values.shape == grid.shape[1:]
    for index in np.ndindex(*values.shape):
        point = grid[(slice(None), *index)]
        assert values[index] == pytest.approx(problem.value(point), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_float32_stays_float32(name):
    problem = ALL[name]
    x = problem.start.astype(np.float32)
    assert problem.gradient(x).dtype == np.float32
    assert problem.hessian(x).dtype == np.float32
    np.testing.assert_allclose(problem.gradient(x), problem.gradient(problem.start),
                               rtol=1e-4, atol=1e-4)


def test_integer_points_are_taken_as_float64():
    f = P.Rosenbrock()
    assert f.gradient([1, 1]).dtype == np.float64
    assert f.value([1, 1]) == 0.0


def test_arrays_are_read_only_and_problems_pickle():
    f = P.Himmelblau()
    with pytest.raises(ValueError):
        f.minima[0, 0] = 1.0
    with pytest.raises(ValueError):
        f.start[0] = 1.0
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(g.minima, f.minima)
    assert repr(P.XCos(2.0)) == "XCos(c=2.0)" and repr(P.Saddle()) == "Saddle()"
    assert repr(P.Quadratic([0.1, 2.0])) == "Quadratic([0.1, 2.0])"


def test_start_and_bounds_can_be_given():
    f = P.Rosenbrock(start=[0.0, 0.0], bounds=[[-1, 1], [-1, 1]])
    assert f.start.tolist() == [0.0, 0.0] and f.bounds.tolist() == [[-1, 1], [-1, 1]]
    g = P.XCos(bounds=[[-1.0, 0.0]])  # stationary points of the domain asked for
    assert g.minima.shape == (1, 1) and g.minima[0, 0] < 0


@pytest.mark.parametrize("call, exc, match", [
    (lambda: P.Rosenbrock().gradient(np.zeros(3)), ValueError, r"x must have shape \(2,\)"),
    (lambda: P.Tanh().hessian(np.float64(4.0)), ValueError, r"x must have shape \(1,\)"),
    (lambda: P.Tanh().value(np.zeros(2)), ValueError, "x must have shape"),
    (lambda: P.Beale().value(np.array(["a", "b"])), TypeError, "x must be an array of real"),
    (lambda: P.XCos(c=0.0), ValueError, "c must be in"),
    (lambda: P.Cosh(c="1"), TypeError, "c must be a real number"),
    (lambda: P.Rosenbrock(b=-1.0), ValueError, "b must be in"),
    (lambda: P.Quadratic([]), ValueError, "coefficients must be a non-empty"),
    (lambda: P.Quadratic([1.0, float("nan")]), ValueError, r"coefficients\[1\] must be finite"),
    (lambda: P.Himmelblau(start=[0.0]), ValueError, r"start must have shape \(2,\)"),
    (lambda: P.Himmelblau(bounds=[[0, 1]]), ValueError, r"bounds must have shape \(2, 2\)"),
    (lambda: P.Himmelblau(bounds=[[1, 0], [0, 1]]), ValueError, "low < high"),
])
def test_bad_input_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_problems_are_exported():
    assert fd.problems is P
    assert set(P.__all__) <= set(dir(P))
