"""What the linear models share: parameters in scikit-learn's style, input checks, and the
epoch loop (native on the ``cpp`` backend, a NumPy loop calling ``opt.step`` otherwise).

The loss of a batch is the mean of the rows' losses plus ``alpha / 2 * |W|^2`` (the
intercept is not penalized); its gradient is the mean of the rows' gradients plus
``alpha * W``:

* squared error: ``(x.w + b - y)^2`` with gradient ``2 (x.w + b - y) x`` (seed 000's
  ``D_m = -2/n sum x (y - y_hat)``; scikit-learn's ``SGDRegressor`` halves this loss, so its
  learning rate ``eta0`` corresponds to ``lr = eta0 / 2`` here);
* binary log-loss: ``log(1 + e^z) - y z`` with gradient ``(sigmoid(z) - y) x``;
* multinomial log-loss: ``logsumexp(z) - z_y`` with gradient ``(softmax(z) - onehot(y)) x``.

``loss_curve_[e]`` is the mean loss of epoch ``e``'s rows, each taken just before its batch's
update (as scikit-learn's ``MLPRegressor.loss_curve_``), plus the penalty at the epoch's end:
no extra pass over the data.

Threads: the native loop computes each batch on one thread. When ``fd.set_num_threads``
allows two or more and the data has 65,536 rows or more, a second thread draws each epoch's
shuffle (and gathers its targets) while the epoch before trains, and in between asks for
the rows the loop reads next, so that they wait in the caches the two cores share (a
shuffled epoch is bound by memory latency: this takes a 1,000,000 x 32 float64 epoch from
about 70 to about 50 ms on the project's machine); ``fd.set_num_threads(1)`` keeps the
whole fit on one thread. The fit is the same, bit for bit, either way: each epoch's order
is a function of ``(random_state, epoch)`` alone, and the second thread only reads.
"""

from __future__ import annotations

import inspect
import numbers
import sys
import warnings

import numpy as np

from .. import optim
from .._progress import Progress

try:  # the native loop and its shuffle; absent when the extension is not built
    from .._core import fit_linear as _fit_linear
    from .._core import permutation as _native_permutation
except ImportError:  # pragma: no cover - depends on the build
    _fit_linear = None
    _native_permutation = None


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before :meth:`fit` (as scikit-learn's). When scikit-learn
    is loaded the error raised is also a ``sklearn.exceptions.NotFittedError``, so that
    scikit-learn's tools recognize it; it is never imported for this (it is no dependency)."""


_sklearn_not_fitted: dict = {}


def _not_fitted_error(message: str) -> NotFittedError:
    exceptions = sys.modules.get("sklearn.exceptions")
    if exceptions is None:
        return NotFittedError(message)
    if exceptions not in _sklearn_not_fitted:
        _sklearn_not_fitted[exceptions] = type(
            "NotFittedError", (NotFittedError, exceptions.NotFittedError),
            {"__module__": __name__, "__doc__": NotFittedError.__doc__})
    return _sklearn_not_fitted[exceptions](message)


def _column_y_warning() -> type[Warning]:
    """scikit-learn's DataConversionWarning when scikit-learn is loaded, else UserWarning."""
    exceptions = sys.modules.get("sklearn.exceptions")
    return UserWarning if exceptions is None else exceptions.DataConversionWarning


def _check_X(X, name: str = "X", finite: bool = True) -> np.ndarray:
    """X as a C-contiguous float32 or float64 array; ``finite=False`` leaves the scan for
    NaN and infinity to the caller (the fit does it natively, while the first shuffle is
    drawn)."""
    if hasattr(X, "toarray") and not isinstance(X, np.ndarray):
        raise TypeError(f"{name} must be a dense array; sparse matrices are not supported")
    try:
        array = np.asarray(X)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"{name} must be a 2-D array of numbers: {error}") from None
    if array.dtype == object:  # numbers held as Python objects are numbers
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must hold real numbers: {error}") from None
    if np.iscomplexobj(array):
        raise ValueError(f"{name} must hold real numbers: Complex data not supported "
                         f"(dtype {array.dtype})")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {array.shape}"
                         + (" (Reshape your data with X.reshape(-1, 1) for a single feature "
                            "or X.reshape(1, -1) for a single sample)"
                            if array.ndim == 1 else ""))
    if array.shape[1] == 0:
        raise ValueError(f"{name} is empty: 0 feature(s) (shape={array.shape}) while a "
                         "minimum of 1 is required.")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: 0 sample(s) (shape={array.shape}) while a "
                         "minimum of 1 is required.")
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    array = np.ascontiguousarray(array)
    if finite:
        _check_finite_X(array, name)
    return array


def _check_finite_X(array: np.ndarray, name: str = "X") -> None:
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinity")


def _check_y(y, n: int, dtype, *, numeric: bool = True, owner: str = "the model") -> np.ndarray:
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None")
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected: y of shape "
                      f"{array.shape} is read as shape ({array.shape[0]},); use y.ravel()",
                      _column_y_warning(), stacklevel=4)
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"y must be 1-D (one target per sample), got shape {array.shape}")
    if array.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {array.shape[0]}")
    if numeric:
        if array.dtype == object:  # numbers held as Python objects are numbers
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError) as error:
                raise TypeError(f"y must hold real numbers: {error}") from None
        if not (np.issubdtype(array.dtype, np.number)
                                         or array.dtype == bool) or np.iscomplexobj(array):
            raise TypeError(f"y must hold real numbers, got dtype {array.dtype}")
        array = np.ascontiguousarray(array, dtype=dtype)
        if not np.isfinite(array).all():
            raise ValueError("y holds NaN or infinity")
    return array


def _check_int(value, name: str, low: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}"
                         + (" or None" if allow_none else "") + f", got {value!r}")
    return int(value)


class LinearModel:
    """Base of :class:`LinearRegression` and :class:`LogisticRegression`."""

    _loss = "squared"

    def __init__(self, *, optimizer=optim.SGD, lr=0.01, epochs=10, batch_size=32,
                 shuffle=True, random_state=None, alpha=0.0, verbose=False,
                 optimizer_options=None, backend=None):
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.alpha = alpha
        self.verbose = verbose
        self.optimizer_options = optimizer_options
        self.backend = backend

    # ------------------------------------------------------------------ scikit-learn style

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name, p in signature.parameters.items()
                if name != "self" and p.kind == p.KEYWORD_ONLY]

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor parameters (checked at the next :meth:`fit`); returns self."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags (scikit-learn >= 1.6; imported only when asked, as
        scikit-learn is not a dependency): dense 2-D float input, no NaN, fitted before use."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=True),
                    input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False))

    # A fitted model pickles with its optimizer as a snapshot (class, backend, state_dict):
    # the optimizer itself holds its backend module and native plan.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        opt = state.pop("optimizer_", None)
        if opt is not None:
            state["_optimizer_snapshot"] = (type(opt), opt.backend, opt.state_dict())
        return state

    def __setstate__(self, state: dict) -> None:
        snapshot = state.pop("_optimizer_snapshot", None)
        self.__dict__.update(state)
        if snapshot is not None:
            cls, backend, saved = snapshot
            from .. import backends

            # Unpickled read-only (a memory map): the optimizer gets copies to own.
            params = [a if a.flags.writeable else a.copy() for a in (self._W, self._b)]
            opt = cls(params, lr=saved["param_groups"][0]["lr"],
                      backend=backend if backend in backends.available() else None)
            opt.load_state_dict(saved)
            self.optimizer_ = opt

    def __repr__(self) -> str:
        defaults = {name: p.default for name, p in
                    inspect.signature(type(self).__init__).parameters.items()}
        changed = []
        for name, value in self.get_params().items():
            default = defaults.get(name)
            same = value is default or (isinstance(value, (int, float, str, bool))
                                        and type(value) is type(default) and value == default)
            if not same:
                shown = value.__name__ if isinstance(value, type) else repr(value)
                changed.append(f"{name}={shown}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise _not_fitted_error(f"this {type(self).__name__} is not fitted yet: call "
                                    "fit(X, y) first")

    def _check_predict_X(self, X) -> np.ndarray:
        self._check_fitted()
        X = _check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input (it was "
                             "fitted with that many)")
        return X

    def _decision(self, X: np.ndarray) -> np.ndarray:
        """z = X W^T + b, shape (n, k)."""
        return X @ self._W.T.astype(X.dtype, copy=False) + self._b.astype(X.dtype, copy=False)

    # ------------------------------------------------------------------------ the fit

    def _checked_settings(self):
        optimizer = self.optimizer
        if not (isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer)):
            raise TypeError("optimizer must be a fastdescent optimizer class (fd.SGD, "
                            f"fd.Adam, ...), got {optimizer!r}")
        lr = self.lr
        if not callable(lr):
            if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (
                    0 <= lr < float("inf")):
                raise ValueError(f"lr must be a number >= 0 or a schedule (step -> lr), "
                                 f"got {lr!r}")
        epochs = _check_int(self.epochs, "epochs", 1)
        batch_size = _check_int(self.batch_size, "batch_size", 1, allow_none=True)
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False, got {self.shuffle!r}")
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (
                0 <= alpha < float("inf")):
            raise ValueError(f"alpha must be a number >= 0, got {alpha!r}")
        options = self.optimizer_options or {}
        if not isinstance(options, dict):
            raise TypeError(f"optimizer_options must be a dict, got {type(options).__name__}")
        if "lr" in options or "params" in options:
            raise ValueError("optimizer_options must not hold 'lr' or 'params' (lr is a "
                             "parameter of the model)")
        seed = self.random_state
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (1 << 63))
        else:
            seed = _check_int(seed, "random_state", 0)
        return optimizer, lr, epochs, batch_size, bool(self.shuffle), float(alpha), options, seed

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, k: int):
        """Train W (k, f) and b (k,) from zero; sets coef-independent fitted attributes.
        Raises ValueError before training if X holds NaN or infinity (``_check_X(X,
        finite=False)`` leaves that to here)."""
        optimizer, lr, epochs, batch_size, shuffle, alpha, options, seed = \
            self._checked_settings()
        n, f = X.shape
        batch = n if batch_size is None else min(batch_size, n)
        W = np.zeros((k, f), dtype=X.dtype)
        b = np.zeros(k, dtype=X.dtype)
        opt = optimizer([W, b], lr=lr, backend=self.backend, **options)
        native = _fit_linear is not None and opt.backend == "cpp"
        batches = -(-n // batch)
        losses = []
        progress = Progress(epochs, unit="epoch") if self.verbose else None
        # One native call for the whole fit, or one per epoch to report progress.
        chunk = 1 if self.verbose else epochs
        if not native:
            _check_finite_X(X)
        for first in range(0, epochs, chunk):
            count = min(chunk, epochs - first)
            if native:
                losses.extend(self._native_epochs(opt, X, y, W, b, k, alpha, batch, count,
                                                  first, shuffle, seed, lr, batches,
                                                  check_finite=first == 0))
            else:
                for e in range(first, first + count):
                    losses.append(_python_epoch(self._loss, opt, X, y, W, b, alpha, batch,
                                                _order(n, seed, e) if shuffle else None))
            if progress is not None:
                progress.update(first + count, f"loss {losses[-1]:.6g}")
        self._W, self._b = W, b
        self.loss_curve_ = [float(v) for v in losses]
        self.n_iter_ = epochs
        self.t_ = epochs * batches
        self.n_features_in_ = f
        self.optimizer_ = opt
        self.native_ = native
        return self

    def _native_epochs(self, opt, X, y, W, b, k, alpha, batch, count, first, shuffle, seed,
                       lr, batches, check_finite=False):
        kind, options, columns, steps = opt._native_binding()
        lrs = None
        if callable(lr):
            start = opt.step_count + 1
            lrs = np.array([float(lr(t)) for t in range(start, start + count * batches)],
                           dtype=np.float64)
            if not (np.isfinite(lrs).all() and (lrs >= 0).all()):
                raise ValueError("the lr schedule returned a negative or non-finite value")
            options = dict(options, lr=0.0)
        columns = [None if all(a is None for a in c) else c for c in columns]
        try:
            losses = _fit_linear(kind, X, y, [W, b], columns, steps, options, self._loss, k,
                                 alpha, batch, count, first, shuffle, seed, 1, lrs,
                                 check_finite)
        finally:
            opt._native_stepped(int(steps[0]) - opt.step_count)
        return losses.tolist()


def _order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of epoch ``epoch``'s rows: the native loop's own shuffle when the extension
    is built (so every backend sees the same batches), else NumPy's."""
    if _native_permutation is not None and n < 2 ** 32:
        return _native_permutation(n, seed, epoch).astype(np.intp)
    return np.random.default_rng([seed, epoch]).permutation(n)


def _python_epoch(loss: str, opt, X, y, W, b, alpha, batch, order) -> float:
    """One epoch in NumPy, stepping ``opt`` after each batch (the numpy / numba backends)."""
    n = X.shape[0]
    total = 0.0
    dtype = X.dtype.type
    for start in range(0, n, batch):
        rows = slice(start, start + batch) if order is None else order[start:start + batch]
        Xb, yb = X[rows], y[rows]
        z = Xb @ W.T + b
        if loss == "squared":
            residual = z[:, 0] - yb
            total += float(residual.astype(np.float64) @ residual)
            d = (2 * residual)[:, None]
        elif loss == "logistic":
            zz = z[:, 0]
            e = np.exp(-np.abs(zz))
            total += float(np.sum(np.maximum(zz, 0) - yb * zz + np.log1p(e), dtype=np.float64))
            sigmoid = np.where(zz >= 0, 1 / (1 + e), e / (1 + e))
            d = (sigmoid - yb)[:, None]
        else:
            labels = yb.astype(np.intp)
            top = z.max(axis=1, keepdims=True)
            ez = np.exp(z - top)
            s = ez.sum(axis=1, keepdims=True)
            total += float(np.sum(np.log(s[:, 0]) - np.log(ez[np.arange(len(labels)), labels]),
                                  dtype=np.float64))
            d = ez / s
            d[np.arange(len(labels)), labels] -= 1
        scale = dtype(1.0 / Xb.shape[0])
        gW = np.ascontiguousarray((d.T @ Xb) * scale + dtype(alpha) * W, dtype=X.dtype)
        gb = np.ascontiguousarray(d.sum(axis=0) * scale, dtype=X.dtype)
        opt.step([gW, gb])
    return total / n + (0.5 * alpha * float(np.sum(W.astype(np.float64) ** 2)) if alpha else 0.0)
