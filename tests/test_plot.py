"""fd.plot: every function draws the right lines and saves PNG and SVG files."""

from __future__ import annotations

import numpy as np
import pytest

import matplotlib  # noqa: F401  (a test dependency: never skipped)

from fastdescent import plot

PNG = b"\x89PNG\r\n\x1a\n"


def bowl(xy):
    return 0.1 * xy[0] ** 2 + 2 * xy[1] ** 2


def descend(grad, x0, lr, steps):
    points = [np.asarray(x0, dtype=float)]
    for _ in range(steps):
        points.append(points[-1] - lr * grad(points[-1]))
    return np.array(points)


def test_trajectories_over_a_contour_map(tmp_path):
    grad = lambda p: np.array([0.2 * p[0], 4 * p[1]])  # noqa: E731
    paths = {"lr 0.1": descend(grad, [-5, -2], 0.1, 20), "lr 0.4": descend(grad, [-5, -2], 0.4, 20)}
    ax = plot.trajectories(bowl, paths, bounds=[[-6, 2], [-3, 3]], path=tmp_path / "t.png",
                           minimum=[0, 0])
    assert len(ax.get_lines()) == 3  # two paths and the minimum
    assert len(ax.get_legend().get_texts()) == 3
    assert (tmp_path / "t.png").read_bytes().startswith(PNG)
    plot.trajectories(bowl, paths, path=tmp_path / "t.svg", log_levels=True)
    assert b"<svg" in (tmp_path / "t.svg").read_bytes()[:500]


def test_loss_curves_schedules_and_1d(tmp_path):
    ax = plot.loss_curves({"a": [4, 2, 1], "b": [3, 1, 0.5]}, optimum=0.4,
                          path=tmp_path / "l.png")
    assert len(ax.get_lines()) == 3
    ax = plot.schedules({"constant": lambda t: 0.1, "decay": lambda t: 0.1 / t}, 50,
                        path=tmp_path / "s.png")
    assert len(ax.get_lines()) == 2
    xs = descend(lambda x: x * np.cos(np.pi * x) * 0 + np.cos(np.pi * x)
                 - np.pi * x * np.sin(np.pi * x), [-0.5], 0.05, 10)
    ax = plot.descent_1d(lambda x: x * np.cos(np.pi * x), xs, bounds=(-1, 2),
                         path=tmp_path / "d.png", label="gd")
    assert len(ax.get_lines()) == 2
    for name in "lsd":
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG)


def test_bad_path_extension(tmp_path):
    with pytest.raises(ValueError, match=".png or .svg"):
        plot.loss_curves({"a": [1, 2]}, path=tmp_path / "x.jpg")
