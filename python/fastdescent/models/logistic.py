"""Logistic regression (binary and multinomial) fitted by gradient descent."""

from __future__ import annotations

import numpy as np

from ._base import LinearModel, _check_X, _check_y


class LogisticRegression(LinearModel):
    """Logistic regression fitted by batch, stochastic or mini-batch gradient descent with any
    fastdescent optimizer, the epoch loop running natively on the ``cpp`` backend.

    Two classes: the binary log-loss ``log(1 + e^z) - y z`` on ``z = X w + b`` (``y`` = 1 for
    ``classes_[1]``); more: the multinomial log-loss ``logsumexp(z) - z_y`` with one row of
    weights per class (softmax). The parameters are :class:`LinearRegression`'s.

    Fitted attributes: ``classes_``, ``coef_`` (1, n_features) for two classes or
    (n_classes, n_features), ``intercept_`` (1,) or (n_classes,), ``loss_curve_``,
    ``n_iter_``, ``t_``, ``n_features_in_``, ``optimizer_``, ``native_``.
    """

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags(multi_class=True)
        return tags

    def fit(self, X, y):
        """Fit from zero weights; returns self."""
        X = _check_X(X, finite=False)  # scanned by _fit_arrays
        labels = _check_y(y, X.shape[0], None, numeric=False, owner=type(self).__name__)
        if labels.dtype.kind == "f":
            if not np.isfinite(labels).all():
                raise ValueError("y holds NaN or infinity")
            if not np.array_equal(labels, np.round(labels)):
                raise ValueError("Unknown label type: continuous (y holds non-integer "
                                 "numbers; a classifier needs class labels)")
        if labels.dtype == object:
            try:
                classes, encoded = np.unique(labels, return_inverse=True)
            except TypeError as error:
                raise TypeError(f"Unknown label type: y mixes labels that cannot be "
                                f"ordered: {error}") from None
        else:
            classes, encoded = np.unique(labels, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y must hold at least two classes, got {classes.size} "
                             f"class{'es' if classes.size != 1 else ''}")
        target = np.ascontiguousarray(encoded.reshape(-1), dtype=X.dtype)
        self._loss = "logistic" if classes.size == 2 else "softmax"
        self._fit_arrays(X, target, 1 if classes.size == 2 else classes.size)
        self.classes_ = classes
        self.coef_ = self._W
        self.intercept_ = self._b
        return self

    def decision_function(self, X) -> np.ndarray:
        """``z = X coef_^T + intercept_``: (n,) for two classes, else (n, n_classes)."""
        X = self._check_predict_X(X)
        z = self._decision(X)
        return z[:, 0] if self.classes_.size == 2 else z

    def predict_proba(self, X) -> np.ndarray:
        """The probability of each class, (n, n_classes), columns in ``classes_`` order."""
        z = self.decision_function(X)
        if self.classes_.size == 2:
            e = np.exp(-np.abs(z))
            p1 = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
            return np.column_stack([1 - p1, p1])
        ez = np.exp(z - z.max(axis=1, keepdims=True))
        return ez / ez.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        z = self.decision_function(X)
        index = (z > 0).astype(np.intp) if self.classes_.size == 2 else z.argmax(axis=1)
        return self.classes_[index]

    def score(self, X, y) -> float:
        """Accuracy: the fraction of rows predicted right."""
        prediction = self.predict(X)
        y = _check_y(y, prediction.shape[0], None, numeric=False)
        return float(np.mean(prediction == y))
