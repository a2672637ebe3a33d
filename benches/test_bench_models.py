"""pytest-benchmark suite: linear regression on 1,000,000 x 32 float64 (times
``FASTDESCENT_BENCH_SCALE`` rows), 5 epochs, plain SGD, mini-batch 256 reshuffled every
epoch, against scikit-learn's ``SGDRegressor`` (one update per sample, 5 epochs) and a
NumPy mini-batch loop written the seeds' way (gather the rows, compute the gradient, step).

    python -m pytest benches/test_bench_models.py                         # full size
    FASTDESCENT_BENCH_SCALE=0.001 python -m pytest benches --benchmark-disable -q   # CI

Every implementation's final MSE is checked against the least-squares optimum (within 2%
at full size; looser at small scale, where 5 epochs are few steps) and stored in
``benchmark.extra_info``. Logistic regression against ``SGDClassifier(loss="log_loss")`` is
in the same style (accuracy and mean log-loss in ``extra_info``). Each group's rows are
timed side by side in one run: compare within a group.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastdescent as fd

SCALE = float(os.environ.get("FASTDESCENT_BENCH_SCALE", "1.0"))
ROUNDS = int(os.environ.get("FASTDESCENT_BENCH_ROUNDS", "3"))
N = max(2000, int(1_000_000 * SCALE))
F, EPOCHS, BATCH, LR = 32, 5, 256, 0.01
NOISE = 0.1  # the optimum MSE is NOISE**2 = 0.01

_cache: dict = {}


def regression_data():
    if "reg" not in _cache:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((N, F))
        w = rng.standard_normal(F)
        y = X @ w + 0.5 + NOISE * rng.standard_normal(N)
        design = np.column_stack([X, np.ones(N)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        optimum = float(np.mean((design @ coef - y) ** 2))
        _cache["reg"] = (X, y, optimum)
    return _cache["reg"]


def classification_data():
    if "clf" not in _cache:
        rng = np.random.default_rng(1)
        X = rng.standard_normal((N, F))
        w = rng.standard_normal(F)
        y = (X @ w + rng.logistic(size=N) > 0).astype(np.float64)
        _cache["clf"] = (X, y)
    return _cache["clf"]


def numpy_loop(X, y, seed=0):
    """The seeds' mini-batch loop: reshuffle, gather each batch, gradient of the MSE, step."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    w = np.zeros(X.shape[1])
    b = 0.0
    for _ in range(EPOCHS):
        order = rng.permutation(n)
        for start in range(0, n, BATCH):
            rows = order[start:start + BATCH]
            Xb, yb = X[rows], y[rows]
            residual = Xb @ w + b - yb
            w -= LR * (2.0 / len(rows)) * (Xb.T @ residual)
            b -= LR * (2.0 / len(rows)) * residual.sum()
    return w, b


def fit_regression(implementation, X, y):
    if implementation == "fastdescent":
        model = fd.models.LinearRegression(optimizer=fd.SGD, lr=LR, epochs=EPOCHS,
                                           batch_size=BATCH, random_state=0).fit(X, y)
        return model.coef_, model.intercept_
    if implementation == "numpy-loop":
        return numpy_loop(X, y)
    sklearn = pytest.importorskip("sklearn.linear_model")
    import warnings

    # eta0 = 2 lr: its squared loss is half ours. Constant rate, 5 epochs, no early stop.
    model = sklearn.SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant",
                                 eta0=0.002, max_iter=EPOCHS, tol=None, shuffle=True,
                                 random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return model.coef_, float(model.intercept_[0])


@pytest.mark.parametrize("implementation", ["fastdescent", "numpy-loop", "sklearn-SGDRegressor"])
def test_linear_regression(benchmark, implementation):
    X, y, optimum = regression_data()
    benchmark.group = f"linear regression {N}x{F} float64, {EPOCHS} epochs"
    coef, intercept = benchmark.pedantic(fit_regression, args=(implementation, X, y),
                                         rounds=ROUNDS, iterations=1)
    mse = float(np.mean((X @ coef + intercept - y) ** 2))
    benchmark.extra_info.update(mse=mse, optimum=optimum, ratio=mse / optimum)
    if implementation.startswith("sklearn"):
        assert np.isfinite(mse)  # one update per sample: its noise floor is its own
    elif N >= 100_000:
        assert mse <= optimum * 1.02
    else:  # 5 epochs of a few thousand rows are too few steps to converge
        assert mse < np.var(y)


def fit_classifier(implementation, X, y):
    if implementation == "fastdescent":
        return fd.models.LogisticRegression(optimizer=fd.SGD, lr=0.1, epochs=EPOCHS,
                                            batch_size=BATCH, random_state=0).fit(X, y)
    sklearn = pytest.importorskip("sklearn.linear_model")
    import warnings

    model = sklearn.SGDClassifier(loss="log_loss", penalty=None, learning_rate="constant",
                                  eta0=0.001, max_iter=EPOCHS, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return model


def mean_log_loss(model, X, y) -> float:
    p = np.clip(model.predict_proba(X)[:, 1], 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


@pytest.mark.parametrize("implementation", ["fastdescent", "sklearn-SGDClassifier"])
def test_logistic_regression(benchmark, implementation):
    X, y = classification_data()
    benchmark.group = f"logistic regression {N}x{F} float64, {EPOCHS} epochs"
    model = benchmark.pedantic(fit_classifier, args=(implementation, X, y),
                               rounds=ROUNDS, iterations=1)
    accuracy = float(model.score(X, y))
    log_loss = mean_log_loss(model, X, y)
    benchmark.extra_info.update(accuracy=accuracy, log_loss=log_loss)
    assert accuracy > 0.8 and log_loss < 0.6
