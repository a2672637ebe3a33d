"""The seeds' first experiment: fit the line y = m x + c by gradient descent on the MSE.

Seed 000 fits ``y = m x + c`` from ``m = c = 0`` with the partial derivatives

.. math::

    D_m = -\\frac{2}{n} \\sum_i x_i (y_i - \\hat y_i), \\qquad
    D_c = -\\frac{2}{n} \\sum_i (y_i - \\hat y_i).

Here every optimizer does the same with mini-batches reshuffled each epoch, and the loss
(MSE over the whole data) is recorded after each epoch.
"""

from __future__ import annotations

import os
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


def _race_on(fun_grad, start, race, steps):
    """The iterates of each optimizer of ``race`` from ``start``: {label: (steps+1, 2)}."""
    paths = {}
    for label, cls, options in race:
        x = np.array(start, dtype=np.float64)
        opt = cls([x], **options)
        points = [x.copy()]
        for _ in range(steps):
            opt.step([fun_grad(x)[1]])
            points.append(x.copy())
        paths[label] = np.array(points)
    return paths


@dataclass
class Experiment:
    """One line of the demo's summary: what was run, what came out, how long it took."""
    name: str
    result: str
    seconds: float


def _fmt_point(p) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in np.asarray(p).reshape(-1)) + ")"


def _line_race(data: LineData, results: list[FitResult]) -> str:
    best = min(results, key=lambda r: r.losses[-1])
    optimum = data.mse(*data.least_squares())
    return (f"best {best.label}: MSE {best.losses[-1]:.5f} (least squares {optimum:.5f}); "
            f"worst {max(r.losses[-1] for r in results):.5f}")


def _line_fit_modes(out_dir, seed):
    from . import models, plot

    data = make_line(seed=seed)
    X = data.x.reshape(-1, 1)
    fits = {name: models.LinearRegression(lr=lr, epochs=20, batch_size=bs, random_state=seed)
            .fit(X, data.y) for name, bs, lr in (("batch, lr 0.02", None, 0.02),
                                                 ("stochastic, lr 0.001", 1, 0.001),
                                                 ("mini-batch 32, lr 0.01", 32, 0.01))}
    best = data.mse(*data.least_squares())
    plot.loss_curves(fits, xlabel="epoch", ylabel="MSE", optimum=best,
                     title="y = m x + c: batch, stochastic, mini-batch",
                     path=os.path.join(out_dir, "line_fit_modes.png"))
    return "MSE after 20 epochs: " + ", ".join(
        f"{name.split(',')[0]} {model.loss_curve_[-1]:.4f}" for name, model in fits.items()) \
        + f" (optimum {best:.4f})"


def _quadratic_race(out_dir, seed):
    from . import plot

    def quadratic(x):
        return 0.1 * x[0] ** 2 + 2 * x[1] ** 2, np.array([0.2 * x[0], 4 * x[1]])

    race = (("SGD", optim.SGD, {"lr": 0.4}),
            ("momentum", optim.SGD, {"lr": 0.1, "momentum": 0.8}),
            ("Adagrad", optim.Adagrad, {"lr": 1.5}),
            ("RMSprop", optim.RMSprop, {"lr": 0.3, "alpha": 0.9}),
            ("Adam", optim.Adam, {"lr": 0.5}))
    paths = _race_on(quadratic, [-5.0, -2.0], race, 30)
    plot.trajectories(lambda p: quadratic(p)[0], paths,
                      bounds=[[-5.5, 1.5], [-3, 3]], minimum=[0, 0],
                      title="0.1 x^2 + 2 y^2: 30 steps each",
                      path=os.path.join(out_dir, "quadratic_race.png"))
    return "distance to the minimum after 30 steps: " + ", ".join(
        f"{label} {np.linalg.norm(p[-1]):.2g}" for label, p in paths.items())


def _rosenbrock_race(out_dir, seed):
    from . import plot

    def rosenbrock(p):
        x, y = p[0], p[1]
        value = (1 - x) ** 2 + 100 * (y - x ** 2) ** 2
        if np.ndim(x) == 0:
            return value, np.array([-2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)])
        return value, None

    race = (("SGD", optim.SGD, {"lr": 1e-3}),
            ("momentum", optim.SGD, {"lr": 2e-4, "momentum": 0.95}),
            ("RMSprop", optim.RMSprop, {"lr": 2e-3}),
            ("Adam", optim.Adam, {"lr": 2e-2}))
    paths = _race_on(rosenbrock, [-1.5, 2.0], race, 3000)
    # The paths share the valley: the legend tells them apart by where they end.
    labelled = {f"{label}: ends at {_fmt_point(p[-1])}": p for label, p in paths.items()}
    plot.trajectories(lambda p: rosenbrock(p)[0], labelled,
                      bounds=[[-2, 2], [-1, 3]], minimum=[1, 1], log_levels=True,
                      legend="upper center",
                      title="Rosenbrock from (-1.5, 2): 3000 steps each",
                      path=os.path.join(out_dir, "rosenbrock_race.png"))
    return "distance to (1, 1) after 3000 steps: " + ", ".join(
        f"{label} {np.linalg.norm(p[-1] - 1):.2g}" for label, p in paths.items())


def _local_minimum(out_dir, seed):
    from . import plot

    def xcos(x):
        return x * np.cos(np.pi * x), np.cos(np.pi * x) - np.pi * x * np.sin(np.pi * x)

    runs = {}
    for label, start in (("from -0.8: local minimum", -0.8), ("from 0.45: global minimum", 0.45)):
        x = np.array([start])
        opt = optim.SGD([x], lr=0.05)
        points = [start]
        for _ in range(25):
            opt.step([np.atleast_1d(xcos(x[0])[1])])
            points.append(float(x[0]))
        runs[label] = np.array(points)
    plot.descent_1d(lambda x: x * np.cos(np.pi * x), runs, bounds=(-1, 2),
                    title="x cos(pi x): where descent ends depends on the start",
                    path=os.path.join(out_dir, "local_minimum.png"))
    return "; ".join(f"{label.split(':')[0]} ends at x = {p[-1]:.3f}, f = "
                     f"{xcos(p[-1])[0]:.3f}" for label, p in runs.items())


def _saddle(out_dir, seed):
    from . import minimize, plot, problems

    saddle = problems.Saddle()
    # The nudged run first, so that the stalled one is drawn over it on y = 0.
    paths = {f"from (1, {dy:g})": minimize(saddle.fun_grad, [1.0, dy], optim.SGD, 40,
                                           lr=0.1).path
             for dy in (1e-3, 0.0)}
    plot.trajectories(saddle.value, paths, bounds=[[-1.2, 1.2], [-1.2, 1.2]],
                      title="x^2 - y^2: descent stalls at the saddle unless nudged",
                      legend="lower left",
                      path=os.path.join(out_dir, "saddle.png"))
    return "after 40 steps: " + ", ".join(f"{label} at {_fmt_point(p[-1])}"
                                          for label, p in paths.items())


def _learning_rates(out_dir, seed):
    from . import minimize, plot, problems

    bowl = problems.Quadratic([2.0])
    curves = {f"lr {lr:g}": minimize(bowl.fun_grad, [1.0], optim.SGD, 60, lr=lr).history
              for lr in (0.01, 0.1, 0.5, 0.6)}
    # A diverging run's line stops where it leaves the picture (above 1e6).
    shown = {k: np.where(np.asarray(v) > 1e6, np.nan, v) for k, v in curves.items()}
    plot.loss_curves(shown, title="2 x^2: lr too small, right, bouncing, diverging",
                     path=os.path.join(out_dir, "learning_rates.png"))
    return "loss after 60 steps: " + ", ".join(f"{k} {v[-1]:.2g}" for k, v in curves.items())


def _newton(out_dir, seed):
    from . import newton, plot, problems

    wave = problems.XCos(0.15 * np.pi)
    runs = {"plain Newton": newton(wave.fun_grad_hess, [10.0], 3).path[:, 0],
            "Newton + line search": newton(wave.fun_grad_hess, [10.0], 8,
                                           damping="line_search").path[:, 0]}
    plot.descent_1d(wave.value, runs, bounds=(-10, 30),
                    title="x cos(0.15 pi x): plain Newton climbs to a maximum",
                    path=os.path.join(out_dir, "newton.png"))
    return "from x = 10: " + "; ".join(f"{label} ends at x = {p[-1]:.3f}, f = "
                                       f"{float(wave.value([p[-1]])):.3f}"
                                       for label, p in runs.items())


#: The gallery: (picture, what it shows, the function that draws it and returns its result).
PICTURES = (
    ("line_fit_modes.png", "batch, stochastic and mini-batch descent on the line",
     _line_fit_modes),
    ("quadratic_race.png", "five optimizers on an ill-conditioned quadratic", _quadratic_race),
    ("rosenbrock_race.png", "four optimizers down Rosenbrock's valley", _rosenbrock_race),
    ("local_minimum.png", "x cos(pi x): local or global minimum by start", _local_minimum),
    ("saddle.png", "x^2 - y^2: the saddle", _saddle),
    ("learning_rates.png", "2 x^2 with four learning rates", _learning_rates),
    ("newton.png", "Newton's method, plain and with a line search", _newton),
)


def gallery(out_dir, *, seed: int = 0, out=print, progress=None) -> list[Experiment]:
    """Write the demo's pictures and an index.html to ``out_dir``; returns one
    :class:`Experiment` per picture. ``progress(name)`` is called before each picture.
    Needs matplotlib (``pip install 'fastdescent[plot]'``)."""
    import time

    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    experiments = []
    for name, what, draw in PICTURES:
        if progress is not None:
            progress(name)
        started = time.perf_counter()
        result = draw(out_dir, seed)
        plt.close("all")
        experiments.append(Experiment(f"{name}: {what}", result,
                                      time.perf_counter() - started))
    with open(os.path.join(out_dir, "index.html"), "w") as f:
        f.write("<!doctype html><html><head><meta charset='utf-8'><title>fastdescent demo"
                "</title></head><body><h1>fastdescent demo</h1>\n")
        for (name, what, _), experiment in zip(PICTURES, experiments):
            f.write(f"<figure><img src='{name}'><figcaption>{what}: {experiment.result}"
                    "</figcaption></figure>\n")
        f.write("</body></html>\n")
    out(f"gallery: {len(experiments)} pictures and index.html in {out_dir}")
    return experiments


def summary(experiments: list[Experiment], total_seconds: float, *, width: int = 100) -> str:
    """The demo's closing table: one row per experiment (what, result, seconds), then the
    total. Results longer than the row wrap under their column."""
    import textwrap

    name_width = max(len("experiment"), min(max(len(e.name) for e in experiments), 44))
    result_width = max(30, width - name_width - 11)  # 11: two gaps and the time
    lines = [f"{'experiment':<{name_width}}  {'result':<{result_width}}  {'time':>7}",
             f"{'-' * name_width}  {'-' * result_width}  {'-' * 7}"]
    for e in experiments:
        names = textwrap.wrap(e.name, name_width) or [""]
        results = textwrap.wrap(e.result, result_width) or [""]
        for i in range(max(len(names), len(results))):
            name = names[i] if i < len(names) else ""
            result = results[i] if i < len(results) else ""
            time = f"{e.seconds:6.2f}s" if i == 0 else ""
            lines.append(f"{name:<{name_width}}  {result:<{result_width}}  {time:>7}".rstrip())
    lines.append(f"{'total':<{name_width}}  {'':<{result_width}}  {total_seconds:6.2f}s")
    return "\n".join(lines)


def main(*, epochs: int = 20, batch_size: int = 32, n: int = 1000, seed: int = 0,
         backend: str | None = None, out_dir: str | None = "fastdescent-demo", out=print,
         stream=None) -> list[Experiment]:
    """``fastdescent demo``: the line race (:func:`run`), then the gallery (when
    ``out_dir`` is given and matplotlib is installed), a progress bar on ``stream``
    (stderr) while they run, and the summary table with the elapsed time."""
    import time

    from ._progress import Progress

    pictures = PICTURES if out_dir is not None else ()
    if pictures:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            out("(no pictures: matplotlib is missing; pip install 'fastdescent[plot]')")
            pictures = ()
    progress = Progress(1 + len(pictures), stream=stream)
    started = time.perf_counter()
    progress.update(0, "line y = m x + c")
    data = make_line(n=n, seed=seed)
    results = run(epochs=epochs, batch_size=batch_size, n=n, seed=seed, backend=backend,
                  out=out)
    experiments = [Experiment(f"line y = m x + c: {len(results)} optimizers, {epochs} "
                              f"epochs, batch {batch_size}", _line_race(data, results),
                              time.perf_counter() - started)]
    if pictures:
        done = [1]

        def step(name):
            progress.update(done[0], name)
            done[0] += 1

        experiments += gallery(out_dir, seed=seed, out=out, progress=step)
    total = time.perf_counter() - started
    progress.update(progress.total, "done")
    out("")
    out(summary(experiments, total))
    out(f"demo finished in {total:.2f} s")
    return experiments
