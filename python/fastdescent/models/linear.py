"""Linear regression fitted by batch, stochastic or mini-batch gradient descent."""

from __future__ import annotations

import numpy as np

from ._base import LinearModel, _check_X, _check_y


class LinearRegression(LinearModel):
    """Least-squares linear regression ``y = X coef_ + intercept_`` fitted by gradient descent
    with any fastdescent optimizer, the epoch loop running natively on the ``cpp`` backend.

    Every parameter is keyword only (scikit-learn style: ``get_params`` / ``set_params``).

    Parameters
    ----------
    optimizer : fastdescent optimizer class, default :class:`fastdescent.SGD`
    lr : float or callable, default 0.01
        A number or a schedule (``step -> lr``, steps counted over the whole fit from 1).
    epochs : int, default 10
        Passes over the data.
    batch_size : int or None, default 32
        ``None`` for batch descent (one step per epoch over all rows), ``1`` for stochastic
        descent, ``k`` for mini-batches of ``k`` rows (the last may be smaller).
    shuffle : bool, default True
        Reshuffle the rows every epoch (a seeded permutation).
    random_state : int or None, default None
        The seed of the shuffles (``None``: a fresh one each fit).
    alpha : float, default 0.0
        L2 penalty, ``alpha / 2 * |coef_|^2`` added to the mean loss (not the intercept).
    verbose : bool, default False
        A progress bar (stderr) with the loss after each epoch.
    optimizer_options : dict or None, default None
        More keyword arguments for the optimizer (``{"momentum": 0.9}``).
    backend : str or None, default None
        The optimizer's backend (``None``: the fastest available).

    Notes
    -----
    The loss is the mean squared error ``mean((X w + b - y)^2)``, whose gradient
    ``2/B X_b^T (X_b w + b - y_b)`` is seed 000's ``D_m``; see :mod:`fastdescent.models._base`.

    Fitted attributes: ``coef_`` (n_features,), ``intercept_`` (float), ``loss_curve_`` (the
    mean loss of each epoch), ``n_iter_`` (epochs), ``t_`` (optimizer steps),
    ``n_features_in_``, ``optimizer_`` (the optimizer instance, with its state), ``native_``
    (whether the native loop ran).
    """

    _loss = "squared"

    def __sklearn_tags__(self):
        from sklearn.utils import RegressorTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags()
        return tags

    def fit(self, X, y):
        """Fit from zero weights; returns self."""
        X = _check_X(X, finite=False)  # scanned by _fit_arrays
        y = _check_y(y, X.shape[0], X.dtype, owner=type(self).__name__)
        self._fit_arrays(X, y, 1)
        self.coef_ = self._W[0]
        self.intercept_ = float(self._b[0])
        return self

    def predict(self, X) -> np.ndarray:
        """``X coef_ + intercept_``."""
        X = self._check_predict_X(X)
        return self._decision(X)[:, 0]

    def score(self, X, y) -> float:
        """The coefficient of determination R^2 of the predictions."""
        prediction = self.predict(X).astype(np.float64)
        y = _check_y(y, prediction.shape[0], np.float64)
        residual = float(np.sum((y - prediction) ** 2))
        total = float(np.sum((y - y.mean()) ** 2))
        if total == 0:
            return 1.0 if residual == 0 else 0.0
        return 1.0 - residual / total
