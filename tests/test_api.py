"""The public API around the optimizers: backend selection, threads, param groups, the
shape of ``step``'s arguments, and the docstring examples."""

from __future__ import annotations

import doctest
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import backends
from conftest import assert_unchanged, snapshot

OPTIMIZERS = [fd.SGD, fd.Adagrad, fd.RMSprop, fd.Adam, fd.AdamW]




def python(code, **env):
    """Run ``code`` in a fresh interpreter with FASTDESCENT_BACKEND set as given (or
    unset), and return its stdout and stderr."""
    environ = {k: v for k, v in os.environ.items() if k != "FASTDESCENT_BACKEND"}
    environ.update(env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environ, timeout=60)
    return result


# ---------------------------------------------------------------------------- backends


def test_the_compiled_backend_is_the_default_when_built():
    importlib.import_module("fastdescent._core")  # built in the test environment
    result = python("import fastdescent as fd, numpy as np\n"
                    "print(fd.get_backend(), fd.SGD([np.zeros(1)]).backend)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cpp", "cpp"]


@pytest.mark.parametrize("name", backends.NAMES)
def test_the_environment_variable_chooses_the_default(name):
    result = python("import fastdescent as fd, numpy as np\n"
                    "print(fd.get_backend(), fd.Adam([np.zeros(1)]).backend,"
                    " fd.backend_info()['backend'])", FASTDESCENT_BACKEND=name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [name, name, name]


def test_an_unknown_name_in_the_environment_variable_is_an_error():
    result = python("import fastdescent as fd\nfd.get_backend()", FASTDESCENT_BACKEND="cuda")
    assert result.returncode != 0
    assert "ValueError" in result.stderr and "FASTDESCENT_BACKEND" in result.stderr
    assert "'cuda'" in result.stderr


def test_set_backend_applies_to_optimizers_created_afterwards(restore_backend):
    other = "numpy" if restore_backend == "cpp" else "cpp"
    before = fd.SGD([np.zeros(2)])
    fd.set_backend(other)
    after = fd.SGD([np.zeros(2)])
    assert fd.get_backend() == other
    assert after.backend == other
    assert before.backend == restore_backend  # an existing optimizer keeps its backend
    assert fd.backend_info()["backend"] == other


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_backend_per_optimizer(cls, backend, restore_backend):
    opt = cls([np.zeros(3)], backend=backend)
    assert opt.backend == backend
    assert f"backend={backend!r}" in repr(opt)
    for default in backends.NAMES:  # the default does not override an explicit choice
        fd.set_backend(default)
        assert cls([np.zeros(3)], backend=backend).backend == backend
        assert cls([np.zeros(3)]).backend == default


def test_the_backend_really_runs_the_step(restore_backend, monkeypatch):
    """opt.backend is not just a label: its step calls that backend's kernel."""
    calls = []
    numpy_backend = backends.load("numpy")
    real = numpy_backend.adam_step
    monkeypatch.setattr(numpy_backend, "adam_step",
                        lambda *a, **k: (calls.append(1), real(*a, **k)))
    fd.Adam([np.zeros(3)], backend="cpp").step([np.ones(3)])
    assert calls == []
    fd.Adam([np.zeros(3)], backend="numpy").step([np.ones(3)])
    assert calls == [1]


@pytest.mark.parametrize("name", ["cuda", "CPP", "", "numba-ish"])
def test_unknown_backend_names_are_refused(name, restore_backend):
    with pytest.raises(ValueError, match="backend must be one of"):
        fd.set_backend(name)
    assert fd.get_backend() == restore_backend
    with pytest.raises(ValueError, match="backend must be one of"):
        fd.SGD([np.zeros(2)], backend=name)


@pytest.mark.parametrize("name", [None, 1, b"cpp"], ids=repr)
def test_backend_names_must_be_strings(name, restore_backend):
    with pytest.raises(TypeError, match="backend must be a string"):
        fd.set_backend(name)
    assert fd.get_backend() == restore_backend


def test_backend_info(restore_backend):
    info = fd.backend_info()
    assert {"backend", "simd", "threads", "available"} <= set(info)
    assert info["backend"] == fd.get_backend()
    available = info["available"]
    assert available[0] == "cpp" and available[-1] == "numpy"  # the extension is built here
    assert set(available) <= set(backends.NAMES)
    assert isinstance(info["simd"], str) and info["simd"]
    assert info["threads"] == fd.get_num_threads() >= 1
    fd.set_backend("numpy")
    info = fd.backend_info()
    assert info["backend"] == "numpy" and info["simd"] == "numpy" and info["threads"] == 1


# ---------------------------------------------------------------------------- threads


def _omp():
    return bool(fd.backend_info()["compiled"]["openmp"])


def test_set_num_threads_round_trip(restore_threads, restore_backend):
    fd.set_backend("cpp")
    for n in (1, 3, 2):
        fd.set_num_threads(n)
        assert fd.get_num_threads() == (n if _omp() else 1)
    fd.set_num_threads(np.int64(1))
    assert fd.get_num_threads() == 1


def test_set_num_threads_holds_after_every_backend_is_loaded():
    """In a fresh process, as a user would: look at backend_info() (which loads every
    available backend), then set the threads."""
    result = python("import fastdescent as fd\n"
                    "fd.backend_info()\n"
                    "for n in (1, 2, 1):\n"
                    "    fd.set_num_threads(n)\n"
                    "    print(fd.get_num_threads(), fd.backend_info()['threads'])\n"
                    "print(fd.backend_info()['compiled']['openmp'])")
    assert result.returncode == 0, result.stderr
    *lines, openmp = result.stdout.splitlines()
    expected = [(1, 1), (2, 2), (1, 1)] if openmp == "True" else [(1, 1)] * 3
    assert [tuple(int(x) for x in line.split()) for line in lines] == expected


@pytest.mark.parametrize("n, exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                    (True, TypeError), ("2", TypeError)], ids=repr)
def test_set_num_threads_refuses_bad_counts(restore_threads, n, exc):
    fd.set_num_threads(1)
    with pytest.raises(exc):
        fd.set_num_threads(n)
    assert fd.get_num_threads() == 1


def test_threads_do_not_change_the_bits(restore_threads):
    """Large enough to run on several threads: an elementwise rule gives the same bits."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(300_000).astype(np.float32)
    grads = [rng.standard_normal(w0.size).astype(np.float32) for _ in range(3)]
    results = []
    for n in (1, 2):
        fd.set_num_threads(n)
        w = w0.copy()
        opt = fd.Adam([w], lr=0.01, amsgrad=True, backend="cpp")
        for g in grads:
            opt.step(g)
        results.append(w.tobytes())
    assert results[0] == results[1]


# ---------------------------------------------------------------------------- param groups


def test_group_options_override_the_defaults_and_the_rest_are_defaults(backend):
    a, b = np.zeros(2), np.zeros(3)
    opt = fd.Adam([{"params": [a], "lr": 0.5, "betas": (0.5, 0.6)}, {"params": [b]}],
                  lr=0.01, eps=1e-6, amsgrad=True, backend=backend)
    g0, g1 = opt.param_groups
    assert g0["params"] == [a] and g0["params"][0] is a
    assert (g0["lr"], g0["betas"], g0["eps"], g0["amsgrad"]) == (0.5, (0.5, 0.6), 1e-6, True)
    assert (g1["lr"], g1["betas"], g1["eps"], g1["weight_decay"], g1["maximize"]) == (
        0.01, (0.9, 0.999), 1e-6, 0.0, False)
    assert opt.defaults["lr"] == 0.01


def test_each_group_steps_with_its_own_options(backend):
    a, b = np.ones(3), np.ones(3)
    opt = fd.SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1, backend=backend)
    opt.step([np.ones(3), np.ones(3)])
    np.testing.assert_array_equal(a, 0.5)
    np.testing.assert_array_equal(b, 0.9)


def test_extra_group_keys_are_kept(backend):
    opt = fd.SGD([{"params": [np.zeros(2)], "name": "bias"}], backend=backend)
    assert opt.param_groups[0]["name"] == "bias"


def test_params_are_numbered_across_groups(backend):
    a, b, c = np.zeros(1), np.zeros(2), np.zeros(3)
    opt = fd.Adam([{"params": [a, b]}, {"params": [c]}], backend=backend)
    assert [p is q for p, q in zip(opt.params, [a, b, c])] == [True] * 3
    opt.step([np.ones(1), np.ones(2), np.ones(3)])
    assert sorted(opt.state) == [0, 1, 2] and opt.state[2]["exp_avg"].shape == (3,)


def test_add_param_group(backend):
    a, b = np.ones(2), np.ones(3)
    opt = fd.SGD([a], lr=0.1, momentum=0.9, backend=backend)
    opt.step([np.ones(2)])
    opt.add_param_group({"params": [b], "lr": 0.5})
    assert len(opt.param_groups) == 2 and opt.params[1] is b
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.5
    with pytest.raises(ValueError, match="grads has 1 entries but the optimizer has 2"):
        opt.step([np.ones(2)])
    opt.step([np.ones(2), np.ones(3)])
    np.testing.assert_array_equal(b, 0.5)  # first step of b: buffer = g, b -= 0.5 g
    assert opt.state[1]["momentum_buffer"].shape == (3,)


@pytest.mark.parametrize("which", [0, 1], ids=["first", "second"])
def test_add_param_group_refuses_a_param_already_present(backend, which):
    a, b = np.ones(2), np.ones(3)
    opt = fd.Adam([a, b], backend=backend)
    opt.step([np.ones(2), np.ones(3)])
    before = snapshot(opt)
    present = [a, b][which]
    with pytest.raises(ValueError, match=rf"params\[3\] shares memory with params\[{which}\]"):
        opt.add_param_group({"params": [np.zeros(4), present]})
    with pytest.raises(ValueError, match="shares memory"):
        opt.add_param_group({"params": [present[...]]})  # a view of it: the same memory
    assert len(opt.param_groups) == 1 and len(opt.params) == 2
    assert_unchanged(opt, before)


# ---------------------------------------------------------------------------- step's grads


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_a_bare_array_is_accepted_when_there_is_one_param(cls, backend):
    w1, w2 = np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)
    opt1, opt2 = cls([w1], lr=0.1, backend=backend), cls([w2], lr=0.1, backend=backend)
    for t in range(3):
        g = np.cos(np.arange(5.0) + t)
        opt1.step(g)
        opt2.step([g])
    assert w1.tobytes() == w2.tobytes() and not np.array_equal(w1, np.linspace(-1, 1, 5))


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_grads_may_be_a_tuple(cls, backend):
    w1, w2 = np.ones(3), np.ones(3)
    cls([w1], backend=backend).step((np.ones(3),))
    cls([w2], backend=backend).step([np.ones(3)])
    assert w1.tobytes() == w2.tobytes()


OPTIONS = {fd.SGD: dict(lr=0.1, momentum=0.9), fd.Adagrad: dict(lr=0.1),
           fd.RMSprop: dict(momentum=0.9, centered=True), fd.Adam: dict(amsgrad=True),
           fd.AdamW: dict(amsgrad=True)}


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_a_none_grad_leaves_its_param_and_state_untouched(cls, backend):
    a, b, c = np.ones(2), np.ones(3), np.ones(4)
    opt = cls([a, b, c], backend=backend, **OPTIONS[cls])
    opt.step([np.ones(2), None, np.ones(4)])  # b has no gradient on the first step
    assert 1 not in opt.state and (b == 1).all()
    assert sorted(opt.state) == [0, 2] and (a != 1).all() and (c != 1).all()

    opt.step([np.ones(2), np.ones(3), np.ones(4)])
    before = snapshot(opt)
    opt.step([None, np.full(3, 0.5), None])
    after = snapshot(opt)
    assert after["step_count"] == before["step_count"] + 1
    for i in (0, 2):
        assert after["params"][i].tobytes() == before["params"][i].tobytes()
        for k, v in before["state"][i].items():
            w = after["state"][i][k]
            assert (w.tobytes() == v.tobytes()) if isinstance(v, np.ndarray) else w == v
    assert after["params"][1].tobytes() != before["params"][1].tobytes()


def test_all_grads_none_counts_a_step_and_changes_nothing_else(backend):
    opt = fd.Adam([np.ones(2), np.ones(3)], backend=backend)
    opt.step([np.ones(2), np.ones(3)])
    before = snapshot(opt)
    opt.step([None, None])
    before["step_count"] += 1
    assert_unchanged(opt, before)


def test_step_returns_none_and_updates_in_place(backend):
    w = np.ones(3)
    opt = fd.SGD([w], lr=0.5, backend=backend)
    assert opt.step([np.ones(3)]) is None
    assert opt.params[0] is w
    np.testing.assert_array_equal(w, 0.5)
    assert opt.step_count == 1


# ---------------------------------------------------------------------------- docstrings


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_every_optimizer_has_a_runnable_example(cls):
    examples = doctest.DocTestParser().get_examples(cls.__doc__)
    assert any("opt.step" in e.source for e in examples)
    assert any(e.want.strip() for e in examples)  # an example that shows a result
