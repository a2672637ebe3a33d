"""Pictures of gradient descent (matplotlib, the ``plot`` extra, imported when first used).

Every function draws on ``ax`` (a new figure when None), returns the Axes, and saves the
figure when ``path`` is given (PNG or SVG by the file's extension; the Agg backend is used
when no display is set up, so this works on servers and in CI).

* :func:`trajectories`: paths of several optimizers over a contour map of ``f(x, y)``;
* :func:`loss_curves`: loss against step or epoch, one line per run;
* :func:`schedules`: learning rate against step, one line per schedule;
* :func:`descent_1d`: a 1-D function with the points of gradient descent on it.

Functions are plain callables (``f(xy)`` with ``xy`` of shape ``(2, ...)`` for contour maps,
``f(x)`` on arrays for 1-D) or objects of :mod:`fastdescent.problems` (their ``value`` and
``bounds`` are used).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("fastdescent.plot needs matplotlib: pip install "
                          "'fastdescent[plot]' (or pip install matplotlib)") from None
    import os

    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() != "agg":
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover - a backend already in use
            pass
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, figsize=(6, 4.5)):
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, dpi=100)
    return ax


def save(ax_or_figure, path) -> None:
    """Save the figure of ``ax_or_figure`` to ``path`` (PNG or SVG by extension)."""
    figure = getattr(ax_or_figure, "figure", ax_or_figure)
    path = str(path)
    if not path.lower().endswith((".png", ".svg")):
        raise ValueError(f"path must end in .png or .svg, got {path!r}")
    figure.tight_layout()
    figure.savefig(path)


def _finish(ax, path, title):
    if title:
        ax.set_title(title)
    if path is not None:
        save(ax, path)
    return ax


def _function(f):
    return f.value if hasattr(f, "value") else f


def _items(runs) -> list[tuple[str, object]]:
    if isinstance(runs, Mapping):
        return list(runs.items())
    return [(getattr(r, "label", f"run {i}"), r) for i, r in enumerate(runs)]


def _path_of(run) -> np.ndarray:
    """An (steps, 2) array from an array or an fd.minimize result (its ``path``)."""
    for name in ("path", "trajectory"):
        if hasattr(run, name) or (isinstance(run, Mapping) and name in run):
            run = run[name] if isinstance(run, Mapping) else getattr(run, name)
            break
    return np.asarray(run, dtype=np.float64)


def trajectories(f, paths, *, bounds=None, levels=30, log_levels=False, ax=None,
                 path=None, title=None, resolution=200, minimum=None, legend="best"):
    """Paths of optimizers over a contour map of ``f``.

    ``paths``: ``{label: (steps, 2) array or fd.minimize result}``. ``bounds``:
    ``[[x_low, x_high], [y_low, y_high]]`` (default: the problem's, else around the paths).
    ``log_levels`` spaces the contour levels logarithmically (Rosenbrock). ``legend`` is
    matplotlib's legend location.
    """
    ax = _axes(ax)
    fun = _function(f)
    items = [(label, _path_of(p)) for label, p in _items(paths)]
    if bounds is None and getattr(f, "bounds", None) is not None:
        bounds = np.asarray(f.bounds, dtype=np.float64)
    if bounds is None:
        points = np.concatenate([p for _, p in items]) if items else np.zeros((1, 2))
        low, high = points.min(axis=0), points.max(axis=0)
        pad = 0.1 * np.maximum(high - low, 1e-3)
        bounds = np.column_stack([low - pad, high + pad])
    bounds = np.asarray(bounds, dtype=np.float64)
    xs = np.linspace(bounds[0, 0], bounds[0, 1], resolution)
    ys = np.linspace(bounds[1, 0], bounds[1, 1], resolution)
    grid = np.stack(np.meshgrid(xs, ys))
    values = np.asarray(fun(grid), dtype=np.float64)
    if log_levels:
        shift = values.min()
        contour_levels = shift + np.geomspace(1e-3, max(values.max() - shift, 1e-2), levels)
    else:
        contour_levels = levels
    ax.contour(xs, ys, values, levels=contour_levels, cmap="viridis", linewidths=0.7)
    for label, p in items:
        # A marker per step while steps can be told apart, then about 40 along the path.
        ax.plot(p[:, 0], p[:, 1], "-o", markersize=2.5, linewidth=1.3, label=label,
                markevery=max(1, len(p) // 40))
    if minimum is None and getattr(f, "global_minimum", None) is not None:
        minimum = f.global_minimum
    if minimum is not None:
        m = np.asarray(minimum, dtype=np.float64).reshape(-1)
        ax.plot([m[0]], [m[1]], marker="*", color="black", markersize=12, linestyle="none",
                label="minimum")
    ax.set_xlim(bounds[0])
    ax.set_ylim(bounds[1])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if items:
        ax.legend(fontsize=8, loc=legend)
    return _finish(ax, path, title)


def loss_curves(curves, *, xlabel="step", ylabel="loss", log=True, ax=None, path=None,
                title=None, optimum=None):
    """One line per run: ``{label: losses}`` (or fd.minimize results, their ``history``, or
    fitted models, their ``loss_curve_``). ``optimum`` draws a dashed reference line."""
    ax = _axes(ax)
    for label, run in _items(curves):
        for name in ("loss_curve_", "history"):
            if hasattr(run, name):
                run = getattr(run, name)
                break
        if isinstance(run, Mapping) and "history" in run:
            run = run["history"]
        values = np.asarray(run, dtype=np.float64)
        ax.plot(np.arange(1, values.size + 1), values, label=label, linewidth=1.5)
    if optimum is not None:
        ax.axhline(optimum, color="gray", linestyle="--", linewidth=1, label="optimum")
    if log:
        ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps and epochs are whole
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _finish(ax, path, title)


def schedules(schedules, steps, *, ax=None, path=None, title=None):
    """Learning rate against step (from 1) for ``{label: schedule}``."""
    ax = _axes(ax)
    t = np.arange(1, int(steps) + 1)
    for label, schedule in _items(schedules):
        ax.plot(t, [float(schedule(int(s))) for s in t], label=label, linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.legend(fontsize=8)
    return _finish(ax, path, title)


def descent_1d(f, points, *, bounds=None, ax=None, path=None, title=None, label=None):
    """A 1-D function and the points gradient descent visited on it, joined in order.

    ``points``: the iterates (an array, or an fd.minimize result's ``path``), or
    ``{label: points}`` for several runs.
    """
    ax = _axes(ax)
    fun = _function(f)
    runs = _items(points) if isinstance(points, Mapping) else [(label, points)]
    runs = [(name, _path_of(p).reshape(-1)) for name, p in runs]
    if bounds is None and getattr(f, "bounds", None) is not None:
        bounds = np.asarray(f.bounds, dtype=np.float64).reshape(-1)[:2]
    if bounds is None:
        allx = np.concatenate([p for _, p in runs])
        pad = 0.2 * max(np.ptp(allx), 1.0)
        bounds = (allx.min() - pad, allx.max() + pad)
    xs = np.linspace(bounds[0], bounds[1], 400)
    ax.plot(xs, np.asarray(fun(xs[None, :]), dtype=np.float64).reshape(-1), color="black",
            linewidth=1.5, label="f(x)")
    for name, p in runs:
        ax.plot(p, np.asarray(fun(p[None, :]), dtype=np.float64).reshape(-1), "-o",
                markersize=4, linewidth=1, label=name)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.legend(fontsize=8)
    return _finish(ax, path, title)
