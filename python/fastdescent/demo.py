"""The seeds' first experiment: fit the line y = m x + c by gradient descent on the MSE.

Seed 000 fits ``y = m x + c`` from ``m = c = 0`` with the partial derivatives

.. math::

    D_m = -\\frac{2}{n} \\sum_i x_i (y_i - \\hat y_i), \\qquad
    D_c = -\\frac{2}{n} \\sum_i (y_i - \\hat y_i).

Here every optimizer does the same with mini-batches reshuffled each epoch, and the loss
(MSE over the whole data) is recorded after each epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import optim

#: (column label, optimizer class, keyword arguments) raced by the demo: settings a user
#: would start from for this problem (x in [0, 10), so the curvature along m is about 67).
DEFAULT_RACE = (
    ("SGD", optim.SGD, {"lr": 0.01}),
    ("Nesterov", optim.SGD, {"lr": 0.005, "momentum": 0.9, "nesterov": True}),
    ("Adagrad", optim.Adagrad, {"lr": 1.0}),
    ("RMSprop", optim.RMSprop, {"lr": 0.05}),
    ("Adam", optim.Adam, {"lr": 0.1}),
    ("AdamW", optim.AdamW, {"lr": 0.1, "weight_decay": 1e-4}),
)


@dataclass
class LineData:
    x: np.ndarray
    y: np.ndarray
    true_m: float
    true_c: float

    def mse(self, m: float, c: float) -> float:
        return float(np.mean((self.y - (m * self.x + c)) ** 2))

    def least_squares(self) -> tuple[float, float]:
        design = np.column_stack([self.x, np.ones_like(self.x)])
        (m, c), *_ = np.linalg.lstsq(design, self.y, rcond=None)
        return float(m), float(c)


def make_line(n: int = 1000, m: float = 2.5, c: float = 1.0, noise: float = 0.5,
              seed: int = 0) -> LineData:
    """Noisy points around the line y = m x + c, with x uniform on [0, 10)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 10.0, n)
    y = m * x + c + rng.normal(0.0, noise, n)
    return LineData(x, y, m, c)


def line_gradient(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """(D_m, D_c) of the mean squared error at theta = (m, c)."""
    residual = y - (theta[0] * x + theta[1])
    return np.array([-2.0 * np.mean(x * residual), -2.0 * np.mean(residual)])


@dataclass
class FitResult:
    label: str
    m: float
    c: float
    losses: list[float] = field(default_factory=list)


def fit_line(data: LineData, optimizer_class, options: dict, *, epochs: int, batch_size: int,
             seed: int = 0, backend: str | None = None, label: str = "") -> FitResult:
    """Fit (m, c) from (0, 0) with ``optimizer_class(**options)`` by mini-batch descent."""
    theta = np.zeros(2)
    opt = optimizer_class([theta], backend=backend, **options)
    rng = np.random.default_rng(seed)
    n = data.x.size
    result = FitResult(label or optimizer_class.__name__, 0.0, 0.0)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            opt.step([line_gradient(data.x[batch], data.y[batch], theta)])
        result.losses.append(data.mse(*theta))
    result.m, result.c = float(theta[0]), float(theta[1])
    return result


def run(*, epochs: int = 20, batch_size: int = 32, n: int = 1000, seed: int = 0,
        backend: str | None = None, race=DEFAULT_RACE, out=print) -> list[FitResult]:
    """Fit the line with every optimizer of ``race`` and print the loss per epoch and the
    fitted m and c next to the least-squares answer."""
    data = make_line(n=n, seed=seed)
    best_m, best_c = data.least_squares()
    out(f"Fitting y = m x + c to {n} noisy points (true m = {data.true_m}, c = {data.true_c}) "
        f"by mini-batch gradient descent: batch {batch_size}, {epochs} epochs, from m = c = 0.")
    out(f"Least squares: m = {best_m:.4f}, c = {best_c:.4f}, MSE = {data.mse(best_m, best_c):.5f}")
    out("")
    results = [fit_line(data, cls, options, epochs=epochs, batch_size=batch_size, seed=seed,
                        backend=backend, label=label) for label, cls, options in race]
    names = [r.label for r in results]
    width = max(11, max(len(name) for name in names) + 2)
    out("MSE after each epoch")
    out("epoch " + "".join(name.rjust(width) for name in names))
    for epoch in range(epochs):
        out(f"{epoch + 1:5d} " + "".join(f"{r.losses[epoch]:{width}.5f}" for r in results))
    out("")
    out("fitted line")
    label_width = max(len(name) for name in names)
    for (name, cls, options), r in zip(race, results):
        settings = ", ".join(f"{k}={v}" for k, v in options.items())
        out(f"{name:<{label_width}}  m = {r.m:7.4f}  c = {r.c:7.4f}  MSE = {r.losses[-1]:.5f}"
            f"   {cls.__name__}({settings})")
    return results
