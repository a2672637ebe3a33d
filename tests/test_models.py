"""fd.models: LinearRegression and LogisticRegression, every fitting mode, the native loop
against the NumPy loop, scikit-learn conventions, bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import fastdescent as fd
from fastdescent.models import LinearRegression, LogisticRegression, NotFittedError

TRUE_W = np.array([1.5, -2.0, 0.5])
TRUE_B = 0.7


def linear_data(n=600, noise=0.0, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(dtype)
    y = (X.astype(np.float64) @ TRUE_W + TRUE_B + noise * rng.normal(size=n)).astype(dtype)
    return X, y


MODES = {  # batch_size, lr, epochs: batch, stochastic and mini-batch descent
    "batch": (None, 0.2, 300),
    "stochastic": (1, 0.01, 15),
    "mini-batch": (16, 0.05, 40),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_recovers_coefficients(backend, mode, dtype):
    batch_size, lr, epochs = MODES[mode]
    X, y = linear_data(dtype=dtype)
    model = LinearRegression(lr=lr, epochs=epochs, batch_size=batch_size, random_state=0,
                             backend=backend).fit(X, y)
    tol = 1e-3 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(model.coef_, TRUE_W, atol=tol)
    assert model.intercept_ == pytest.approx(TRUE_B, abs=tol)
    assert model.coef_.dtype == dtype
    assert model.native_ == (backend == "cpp")
    assert len(model.loss_curve_) == epochs
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert model.score(X, y) > 0.9999


@pytest.mark.parametrize("optimizer,options,lr", [
    (fd.SGD, {"momentum": 0.9, "nesterov": True}, 0.01),
    (fd.Adagrad, {}, 0.5),
    (fd.RMSprop, {"centered": True}, 0.01),
    (fd.Adam, {}, 0.05),
    (fd.AdamW, {"weight_decay": 0.0}, 0.05),
])
def test_linear_with_every_optimizer(backend, optimizer, options, lr):
    X, y = linear_data(noise=0.1)
    model = LinearRegression(optimizer=optimizer, optimizer_options=options, lr=lr,
                             epochs=30, batch_size=32, random_state=1, backend=backend).fit(X, y)
    np.testing.assert_allclose(model.coef_, TRUE_W, atol=0.05)
    assert model.optimizer_.step_count == model.t_ == 30 * 19


def test_predict_is_the_hand_computation():
    X, y = linear_data()
    model = LinearRegression(epochs=2, random_state=0).fit(X, y)
    X_new = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]])
    expected = [sum(w * x for w, x in zip(model.coef_, row)) + model.intercept_ for row in X_new]
    np.testing.assert_allclose(model.predict(X_new), expected, rtol=1e-12)


def fit_native_and_python(model_class, kwargs, X, y):
    """The same fit by the native loop (cpp) and the Python loop (numpy): equal to 1e-9."""
    native = model_class(backend="cpp", **kwargs).fit(X, y)
    python = model_class(backend="numpy", **kwargs).fit(X, y)
    assert native.native_ and not python.native_
    np.testing.assert_allclose(native.coef_, python.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(native.intercept_, python.intercept_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(native.loss_curve_, python.loss_curve_, rtol=1e-9)
    return native, python


@pytest.mark.parametrize("optimizer,options", [
    (fd.SGD, {}), (fd.SGD, {"momentum": 0.9}), (fd.Adagrad, {"lr_decay": 0.01}),
    (fd.RMSprop, {"momentum": 0.5}), (fd.Adam, {"amsgrad": True}), (fd.AdamW, {}),
])
@pytest.mark.parametrize("model_class,target", [
    (LinearRegression, "linear"), (LogisticRegression, "binary"),
    (LogisticRegression, "multinomial")])
@pytest.mark.parametrize("shuffle", [True, False])
def test_native_loop_matches_the_python_loop(optimizer, options, model_class, target, shuffle):
    X, y = linear_data(n=257, noise=0.3)
    if target == "binary":
        y = (y > 0.5).astype(int)
    elif target == "multinomial":
        y = np.digitize(X[:, 0], [-0.5, 0.5])
    kwargs = dict(optimizer=optimizer, optimizer_options=options, lr=0.01, epochs=4,
                  batch_size=20, shuffle=shuffle, random_state=3, alpha=0.01)
    native, python = fit_native_and_python(model_class, kwargs, X, y)
    for a, b in zip(native.optimizer_.state.values(), python.optimizer_.state.values()):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("model_class,target", [
    (LinearRegression, "linear"), (LogisticRegression, "binary")])
def test_native_loop_with_orders_drawn_ahead_matches_the_python_loop(model_class, target,
                                                                   threads, capsys,
                                                                   restore_threads):
    # From 65,536 rows, with two threads allowed, a second thread draws each epoch's shuffle
    # (and gathers its targets) while the epoch before trains; with one, the loop draws them
    # itself. Either way the batches must be the Python loop's.
    pytest.importorskip("fastdescent._core")
    fd.set_num_threads(threads)
    X, y = linear_data(n=70_001, noise=0.3)
    if target == "binary":
        y = (y > 0.5).astype(int)
    kwargs = dict(optimizer=fd.SGD, optimizer_options={"momentum": 0.9}, lr=0.01, epochs=3,
                  batch_size=256, random_state=11)
    native, python = fit_native_and_python(model_class, kwargs, X, y)
    # One native call per epoch (verbose) draws each order alone: the same fit, bit for bit.
    per_epoch = model_class(backend="cpp", verbose=True, **kwargs).fit(X, y)
    assert capsys.readouterr().err.count("epoch") == 3
    np.testing.assert_array_equal(per_epoch.coef_, native.coef_)
    assert per_epoch.loss_curve_ == native.loss_curve_


@pytest.mark.parametrize("features", [37, 60, 600])
@pytest.mark.parametrize("model_class,target", [
    (LinearRegression, "linear"), (LogisticRegression, "binary"),
    (LogisticRegression, "multinomial")])
def test_native_loop_matches_the_python_loop_on_wide_rows(model_class, target, features):
    # The native loop copies shuffled rows into a buffer of 16 KiB at a time (here 55 or 34
    # rows of 37 or 60 features, so a batch of 100 rows spans two or three copies) and reads
    # rows of 4 KiB or more (600 float64 features) in place; gW is summed a block of columns
    # at a time (float64 at avx2: 37 = 32 + 5 left over, 60 = 32 + 16 + 8 + 4 left over).
    rng = np.random.default_rng(features)
    X = rng.normal(size=(301, features))
    y = X @ rng.normal(size=features) / np.sqrt(features) + 0.3 * rng.normal(size=301)
    if target == "binary":
        y = (y > 0).astype(int)
    elif target == "multinomial":
        y = np.digitize(X[:, 0], [-0.5, 0.5])
    kwargs = dict(optimizer=fd.Adam, lr=0.01, epochs=3, batch_size=100, random_state=5,
                  alpha=0.01)
    fit_native_and_python(model_class, kwargs, X, y)


def _simd_levels():
    try:
        from fastdescent import _core
    except ImportError:
        return []
    return _core.supported_simd_levels()


@pytest.mark.parametrize("level", _simd_levels())
def test_native_loop_matches_the_python_loop_at_every_simd_level(level):
    # The batch gradient is compiled once per SIMD level (its column blocks are as wide as
    # that level's registers): each level this CPU runs must give the Python loop's fit.
    from fastdescent import _core

    before = _core.simd_level()
    _core.set_simd_level(level)
    try:
        assert _core.simd_level() == level
        rng = np.random.default_rng(1)
        X = rng.normal(size=(203, 61))
        y = np.digitize(X[:, 0], [-0.5, 0.5])
        kwargs = dict(optimizer=fd.SGD, optimizer_options={"momentum": 0.9}, lr=0.01,
                      epochs=2, batch_size=64, random_state=2)
        fit_native_and_python(LogisticRegression, kwargs, X, y)
        fit_native_and_python(LinearRegression, kwargs, X, X[:, 1] - X[:, 2])
    finally:
        _core.set_simd_level(before)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_X_is_refused_before_the_fit_changes_anything(backend, threads, shuffle,
                                                                bad, restore_threads):
    # The native loop scans X while a second thread draws the first epoch's order (from
    # 65,536 rows with two threads allowed); the Python loop scans it first. Either way the
    # fit raises before training, and a fitted model keeps what it had.
    fd.set_num_threads(threads)
    X, y = linear_data(n=70_001)
    model = LinearRegression(epochs=1, batch_size=256, shuffle=shuffle, random_state=0,
                             backend=backend).fit(X, y)
    coef, intercept, curve = model.coef_.copy(), model.intercept_, list(model.loss_curve_)
    X_bad = X.copy()
    X_bad[-1, -1] = bad
    with pytest.raises(ValueError, match="X holds NaN or infinity"):
        model.fit(X_bad, y)
    np.testing.assert_array_equal(model.coef_, coef)
    assert model.intercept_ == intercept and model.loss_curve_ == curve
    with pytest.raises(ValueError, match="X holds NaN or infinity"):
        LogisticRegression(epochs=1, shuffle=shuffle, backend=backend).fit(X_bad, y > 0.7)


def test_native_shuffle_is_a_uniform_seeded_permutation():
    core = pytest.importorskip("fastdescent._core")
    order = core.permutation(100_003, 7, 2)
    np.testing.assert_array_equal(np.sort(order), np.arange(100_003))
    np.testing.assert_array_equal(order, core.permutation(100_003, 7, 2))
    assert not np.array_equal(order, core.permutation(100_003, 7, 3))
    assert not np.array_equal(order, core.permutation(100_003, 8, 2))
    # Each of the 24 orders of 4 rows equally likely: a chi-square test over 4,800 draws
    # (23 degrees of freedom; 49.7 is its 0.999 quantile). A shuffle that never leaves a
    # row in place (Sattolo's) or favours the identity fails it by far.
    counts: dict = {}
    for seed in range(200):
        for epoch in range(24):
            key = tuple(core.permutation(4, seed, epoch))
            counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 24
    expected = 4800 / 24
    chi_square = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi_square < 49.7


def test_schedule_lr_matches_python_loop():
    X, y = linear_data(n=100)
    schedule = fd.schedules.ExponentialDecay(0.05, 0.01) if hasattr(
        fd, "schedules") else (lambda t: 0.05 * np.exp(-0.01 * t))
    kwargs = dict(lr=schedule, epochs=3, batch_size=10, random_state=0)
    native = LinearRegression(backend="cpp", **kwargs).fit(X, y)
    python = LinearRegression(backend="numpy", **kwargs).fit(X, y)
    np.testing.assert_allclose(native.coef_, python.coef_, rtol=1e-10)


def test_verbose_prints_a_progress_bar(capsys):
    X, y = linear_data(n=50)
    model = LinearRegression(epochs=3, verbose=True, random_state=0).fit(X, y)
    captured = capsys.readouterr()
    assert captured.out == ""
    # Not a terminal: one line per epoch, the bar filling up, the epoch's loss, the time.
    lines = captured.err.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, 1):
        filled = 30 * epoch // 3
        assert line.startswith("[" + "#" * filled + "-" * (30 - filled) + f"] epoch {epoch}/3")
        assert f"loss {model.loss_curve_[epoch - 1]:.6g}" in line
        assert line.endswith(" s")
    quiet = LinearRegression(epochs=3, random_state=0).fit(X, y)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(quiet.coef_, model.coef_)  # per-epoch calls, same fit


def test_progress_bar_redraws_one_line_on_a_terminal():
    import io

    from fastdescent._progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = Progress(2, stream=stream, unit="epoch")
    progress.update(1, "loss 0.5")
    progress.update(2, "loss 0.25")
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.startswith("\r[" + "#" * 15 + "-" * 15 + "] epoch 1/2  loss 0.5")
    assert "\r[" + "#" * 30 + "] epoch 2/2  loss 0.25" in text


def test_random_state_makes_fits_repeatable_and_shuffle_matters():
    X, y = linear_data(n=200, noise=0.5)
    a = LinearRegression(epochs=2, random_state=5).fit(X, y).coef_
    b = LinearRegression(epochs=2, random_state=5).fit(X, y).coef_
    c = LinearRegression(epochs=2, random_state=6).fit(X, y).coef_
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_alpha_shrinks_the_weights():
    X, y = linear_data()
    plain = LinearRegression(lr=0.1, epochs=50, batch_size=None).fit(X, y)
    ridge = LinearRegression(lr=0.1, epochs=50, batch_size=None, alpha=1.0).fit(X, y)
    assert np.linalg.norm(ridge.coef_) < np.linalg.norm(plain.coef_)
    # Gradient descent on mean loss + alpha/2 |w|^2 converges to the ridge solution.
    Xc = np.column_stack([X, np.ones(len(X))])
    A = 2 * Xc.T @ Xc / len(X) + np.diag([1.0, 1.0, 1.0, 0.0])
    expected = np.linalg.solve(A, 2 * Xc.T @ y / len(X))
    ridge = LinearRegression(lr=0.2, epochs=500, batch_size=None, alpha=1.0).fit(X, y)
    np.testing.assert_allclose(np.append(ridge.coef_, ridge.intercept_), expected, atol=1e-8)


@pytest.mark.parametrize("mode", MODES)
def test_logistic_binary(backend, mode):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(800, 2))
    labels = np.where(X @ [2.0, -1.0] + 0.5 > 0, "yes", "no")
    batch_size, _, epochs = MODES[mode]
    model = LogisticRegression(lr=0.5 if batch_size is None else 0.1, epochs=epochs,
                               batch_size=batch_size, random_state=0, backend=backend)
    model.fit(X, labels)
    assert list(model.classes_) == ["no", "yes"]
    assert model.coef_.shape == (1, 2) and model.intercept_.shape == (1,)
    assert model.score(X, labels) > 0.97
    # The direction of the separating line is recovered.
    direction = model.coef_[0] / np.linalg.norm(model.coef_[0])
    np.testing.assert_allclose(direction, np.array([2.0, -1.0]) / np.sqrt(5), atol=0.05)
    proba = model.predict_proba(X[:5])
    z = X[:5] @ model.coef_[0] + model.intercept_[0]
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.predict(X[:5])) == list(np.where(z > 0, "yes", "no"))


def test_logistic_multinomial(backend):
    rng = np.random.default_rng(2)
    centers = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = rng.integers(0, 3, 900)
    X = centers[y] + rng.normal(size=(900, 2))
    model = LogisticRegression(optimizer=fd.Adam, lr=0.05, epochs=20, batch_size=32,
                               random_state=0, backend=backend).fit(X, y + 10)
    assert list(model.classes_) == [10, 11, 12]
    assert model.coef_.shape == (3, 2) and model.intercept_.shape == (3,)
    assert model.score(X, y + 10) > 0.97
    z = X[:4] @ model.coef_.T + model.intercept_
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X[:4]), expected, rtol=1e-10)
    np.testing.assert_array_equal(model.predict(X[:4]), 10 + z.argmax(axis=1))


def test_float32_data_trains_in_float32():
    X, y = linear_data(dtype=np.float32)
    model = LogisticRegression(epochs=2).fit(X, y > 0)
    assert model.coef_.dtype == np.float32
    assert model.predict_proba(X).dtype == np.float32


def test_get_and_set_params_follow_sklearn():
    model = LinearRegression(lr=0.1, epochs=3)
    params = model.get_params()
    assert params["lr"] == 0.1 and params["epochs"] == 3 and params["optimizer"] is fd.SGD
    assert set(params) >= {"optimizer", "lr", "epochs", "batch_size", "shuffle",
                           "random_state", "alpha", "verbose"}
    assert model.set_params(epochs=5) is model and model.epochs == 5
    with pytest.raises(ValueError, match="invalid parameter 'epoch'"):
        model.set_params(epoch=5)
    assert type(model)(**model.get_params()).get_params() == model.get_params()
    assert repr(model) == "LinearRegression(lr=0.1, epochs=5)"


@pytest.mark.parametrize("X,y,error,match", [
    (np.ones(5), np.ones(5), ValueError, "2-D"),
    (np.ones((5, 2)), np.ones(4), ValueError, "5 samples but y has 4"),
    (np.ones((0, 2)), np.ones(0), ValueError, "empty"),
    (np.array([[1.0, np.nan]]), np.ones(1), ValueError, "NaN"),
    (np.ones((2, 2)), np.array([1.0, np.inf]), ValueError, "NaN or infinity"),
    (np.array([["a", "b"]]), np.ones(1), TypeError, "real numbers"),
    (np.array([[1.0, {}]], dtype=object), np.ones(1), TypeError, "real numbers"),
    (np.ones((2, 2), dtype=complex), np.ones(2), ValueError, "Complex data not supported"),
    (np.ones((3, 0)), np.ones(3), ValueError, r"0 feature\(s\)"),
    (np.ones((3, 2)), None, ValueError, "requires y to be passed"),
    (np.ones((3, 2)), np.ones((3, 2)), ValueError, "1-D"),
])
def test_bad_data_raises(X, y, error, match):
    with pytest.raises(error, match=match):
        LinearRegression().fit(X, y)


@pytest.mark.parametrize("params,match", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": -1}, "lr"),
    ({"alpha": -0.1}, "alpha"), ({"optimizer": "SGD"}, "optimizer"),
    ({"optimizer_options": {"lr": 1}}, "optimizer_options"), ({"random_state": -1},
                                                               "random_state"),
    ({"optimizer_options": {"momentum": -1}}, "momentum"),
])
def test_bad_parameters_raise(params, match):
    X, y = linear_data(n=10)
    with pytest.raises((ValueError, TypeError), match=match):
        LinearRegression(**params).fit(X, y)


def test_unfitted_and_mismatched_predict():
    with pytest.raises(NotFittedError, match="not fitted"):
        LinearRegression().predict(np.ones((2, 3)))
    X, y = linear_data(n=20)
    model = LinearRegression(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="2 features, but LinearRegression is expecting 3"):
        model.predict(np.ones((2, 2)))
    with pytest.raises(ValueError, match="two classes"):
        LogisticRegression().fit(X, np.zeros(20))


# ---------------------------------------------------------------- scikit-learn conventions

def test_sklearn_check_estimator_passes_every_check():
    """scikit-learn's own estimator checks (fit/predict contracts, clone, pickling, input
    validation messages, tags). Checks that need pandas or the array API are reported as
    skipped by scikit-learn itself; none may fail."""
    from sklearn.utils.estimator_checks import check_estimator

    for model in (LinearRegression(epochs=5, random_state=0),
                  LogisticRegression(epochs=5, random_state=0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = check_estimator(model, on_fail=None)
        failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
                  if r["status"] == "failed"]
        assert failed == []
        assert sum(r["status"] == "passed" for r in results) >= 45


def test_sklearn_tags_clone_and_params():
    from sklearn.base import clone, is_classifier, is_regressor
    from sklearn.utils import get_tags

    regressor = LinearRegression(lr=0.05, epochs=3, optimizer=fd.Adam,
                                 optimizer_options={"amsgrad": True})
    assert is_regressor(regressor) and not is_classifier(regressor)
    assert is_classifier(LogisticRegression())
    assert get_tags(regressor).input_tags.allow_nan is False
    copy = clone(regressor)
    assert copy is not regressor and copy.get_params() == regressor.get_params()
    assert copy.optimizer_options is not regressor.optimizer_options  # deep-copied
    X, y = linear_data(n=100)
    fitted = clone(regressor.set_params(epochs=4)).fit(X, y)
    assert fitted.n_iter_ == 4 and not hasattr(clone(fitted), "coef_")


def test_sklearn_grid_search_selects_by_score():
    from sklearn.model_selection import GridSearchCV

    X, y = linear_data(n=300, noise=0.1)
    search = GridSearchCV(LinearRegression(epochs=10, random_state=0),
                          {"lr": [1e-5, 0.05]}, cv=3).fit(X, y)
    assert search.best_params_ == {"lr": 0.05}
    assert search.best_estimator_.score(X, y) > 0.99


def test_pickle_round_trip_keeps_predictions_and_optimizer_state():
    X, y = linear_data(n=200, noise=0.1)
    model = LinearRegression(optimizer=fd.Adam, lr=0.05, epochs=3, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert again.optimizer_.step_count == model.optimizer_.step_count
    for a, b in zip(again.optimizer_.state.values(), model.optimizer_.state.values()):
        np.testing.assert_array_equal(a["exp_avg_sq"], b["exp_avg_sq"])


def test_not_fitted_error_is_sklearns_when_sklearn_is_loaded():
    import sklearn.exceptions

    with pytest.raises(sklearn.exceptions.NotFittedError):
        LinearRegression().predict(np.ones((2, 3)))
    with pytest.raises(NotFittedError):
        LogisticRegression().predict_proba(np.ones((2, 3)))


def test_column_y_is_read_as_1d_with_a_warning():
    X, y = linear_data(n=50)
    with pytest.warns(UserWarning, match="column-vector y"):
        column = LinearRegression(epochs=2, random_state=0).fit(X, y[:, None])
    flat = LinearRegression(epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(column.coef_, flat.coef_)


def test_classifier_rejects_continuous_targets():
    X, y = linear_data(n=30)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        LogisticRegression().fit(X, y)
    # Whole numbers stored as floats are labels.
    model = LogisticRegression(epochs=2).fit(X, (y > 0).astype(np.float64))
    assert list(model.classes_) == [0.0, 1.0]
