"""Linear models fitted by gradient descent with fastdescent's optimizers, in
scikit-learn's estimator style; the epoch loop runs natively on the ``cpp`` backend.

>>> import numpy as np, fastdescent as fd
>>> X = np.random.default_rng(0).normal(size=(1000, 3))
>>> y = X @ [1.0, -2.0, 0.5] + 3.0
>>> model = fd.models.LinearRegression(lr=0.05, epochs=20, random_state=0).fit(X, y)
>>> np.round(model.coef_, 3), round(model.intercept_, 3)
(array([ 1. , -2. ,  0.5]), 3.0)
"""

from ._base import NotFittedError
from .linear import LinearRegression
from .logistic import LogisticRegression

__all__ = ["LinearRegression", "LogisticRegression", "NotFittedError"]
