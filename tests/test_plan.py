"""Step plans and the compiled kernels' machinery: one call steps every tensor of every
group, threads split the work by total elements, every SIMD level agrees, and what a user
edits between steps (options, groups, state) takes effect at the next step."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import _core
from fastdescent.backends.plan import KINDS

OPTIMIZERS = {
    "SGD": (fd.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    "Adagrad": (fd.Adagrad, {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.01}),
    "RMSprop": (fd.RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True}),
    "Adam": (fd.Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
    "AdamW": (fd.AdamW, {"lr": 0.01, "maximize": True}),
}
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}


def run(name, backend, sizes, dtype=np.float32, steps=5, seed=0):
    """Params after `steps` steps of one optimizer over tensors of the given sizes."""
    cls, options = OPTIMIZERS[name]
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]
    opt = cls(params, backend=backend, **options)
    for _ in range(steps):
        opt.step([rng.standard_normal(n).astype(dtype) for n in sizes])
    return params


# Many tensors whose total is above the threading grain: the split between threads falls
# inside tensors, and some tensors are empty.
MANY = [1000] * 150 + [0, 1, 7, 33] + [70_001]
# Thousands of small tensors: with 2 threads each thread checks and then steps its own
# share of whole tensors, in one parallel region.
THOUSANDS_SMALL = [100] * 2000 + [0, 1, 7, 33]
SIZES = {"many": MANY, "thousands": THOUSANDS_SMALL}


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_threads_split_many_tensors_without_changing_the_bits(name, sizes, restore_threads):
    results = []
    for n in (1, 2):
        fd.set_num_threads(n)
        results.append(run(name, "cpp", SIZES[sizes]))
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_many_tensors_agree_with_the_reference(name, dtype, sizes, restore_threads):
    fd.set_num_threads(2)
    got = run(name, "cpp", SIZES[sizes], dtype)
    want = run(name, "numpy", SIZES[sizes], dtype)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


# Thousands of tensors: with 2 threads every check runs on both threads first, then (when
# one fails) again on one thread to raise the first error, as a step over few tensors does.
THOUSANDS = 3000
BAD_GRADS = {
    "dtype": (lambda params, grads, i: grads.__setitem__(i, grads[i].astype(np.float64)),
              r"grads\[{i}\] has dtype float64 but params\[{i}\] has dtype float32"),
    "shape": (lambda params, grads, i: grads.__setitem__(i, np.ones(5, np.float32)),
              r"grads\[{i}\] has shape \(5,\) but params\[{i}\] has shape \(4,\)"),
    "shared memory": (lambda params, grads, i: grads.__setitem__(i, params[i]),
                      r"grads\[{i}\] shares memory with params\[{i}\]"),
    "read-only param": (lambda params, grads, i: setattr(params[i].flags, "writeable", False),
                        r"params\[{i}\] must be writable"),
    "not an array": (lambda params, grads, i: grads.__setitem__(i, [1.0, 2.0, 3.0, 4.0]),
                     r"grads\[{i}\] must be a numpy.ndarray"),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bad", BAD_GRADS)
@pytest.mark.parametrize("where", [100, 2500])  # in the first thread's half, the second's
# Without a None gradient every tensor has taken as many steps: with 2 threads the failing
# step runs as one team (checks, then updates); with one, the step counts differ.
@pytest.mark.parametrize("skipped", [None, 7])
def test_many_tensors_raise_the_first_bad_one_and_change_nothing(bad, threads, where, skipped,
                                                                restore_threads):
    fd.set_num_threads(threads)
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(4).astype(np.float32) for _ in range(THOUSANDS)]
    opt = fd.Adam(params, lr=0.1)
    grads = [np.ones(4, np.float32) for _ in params]
    if skipped is not None:
        grads[skipped] = None
    opt.step(grads)
    before = [p.copy() for p in params]
    state_before = [{k: v.copy() for k, v in s.items() if isinstance(v, np.ndarray)}
                    for s in opt.state.values()]
    make_bad, message = BAD_GRADS[bad]
    make_bad(params, grads, where)
    grads[2900] = np.ones(3, np.float32)  # a later bad gradient is not the one reported
    with pytest.raises((TypeError, ValueError), match=message.format(i=where)):
        opt.step(grads)
    for p, b in zip(params, before):
        assert p.tobytes() == b.tobytes()
    # params[skipped] never had a gradient
    assert len(state_before) == THOUSANDS - (skipped is not None)
    for s, saved in zip(opt.state.values(), state_before):
        assert saved and all(s[k].tobytes() == v.tobytes() for k, v in saved.items())


@pytest.mark.parametrize("threads", [1, 2])
def test_many_tensors_with_none_gradients_step_the_others(threads, restore_threads):
    fd.set_num_threads(threads)
    params = [np.zeros(4, np.float32) for _ in range(THOUSANDS)]
    opt = fd.SGD(params, lr=1.0)
    grads = [None if i % 1000 == 3 else np.ones(4, np.float32) for i in range(THOUSANDS)]
    opt.step(grads)
    for i, p in enumerate(params):
        assert np.all(p == (0.0 if i % 1000 == 3 else -1.0))
    # Now the step counts differ (each tensor's options are then looked up on its own), and
    # the tensors skipped before get their first step.
    grads = [None if i % 1000 == 5 else np.ones(4, np.float32) for i in range(THOUSANDS)]
    opt.step(grads)
    for i, p in enumerate(params):
        assert np.all(p == (-1.0 if i % 1000 in (3, 5) else -2.0))


def test_plan_kinds_match_the_compiled_plans():
    plans = {"sgd": _core.SGDPlan, "adagrad": _core.AdagradPlan,
             "rmsprop": _core.RMSpropPlan, "adam": _core.AdamPlan}
    for kind, (columns, _) in KINDS.items():
        assert plans[kind].columns == columns


# ---------------------------------------------------------------------------- SIMD levels

SCRIPT = """
import json, sys, numpy as np, fastdescent as fd
from fastdescent import _core
sys.path.insert(0, {tests!r})
from test_plan import run, OPTIMIZERS
out = {{"level": fd.backend_info()["simd"], "core": _core.simd_level()}}
for name in OPTIMIZERS:
    for dtype in (np.float32, np.float64):
        params = run(name, "cpp", [0, 1, 7, 33, 1000], dtype)
        out[name + dtype.__name__] = [p.tolist() for p in params]
print(json.dumps(out))
"""


def run_at_level(level):
    env = dict(os.environ, FASTDESCENT_SIMD=level)
    code = SCRIPT.format(tests=os.path.dirname(__file__))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("level", _core.supported_simd_levels())
def test_every_supported_simd_level_agrees_with_the_reference(level):
    out = run_at_level(level)
    assert out["level"] == out["core"] == level
    for name in OPTIMIZERS:
        for dtype in (np.float32, np.float64):
            want = run(name, "numpy", [0, 1, 7, 33, 1000], dtype)
            for g, w in zip(out[name + dtype.__name__], want):
                np.testing.assert_allclose(np.array(g, dtype), w, rtol=TOLERANCE[dtype],
                                           atol=TOLERANCE[dtype])


def test_the_highest_supported_level_runs_by_default():
    assert _core.supported_simd_levels()[0] == "baseline"
    env = {k: v for k, v in os.environ.items() if k != "FASTDESCENT_SIMD"}
    result = subprocess.run([sys.executable, "-c", "import fastdescent._core as c; "
                             "print(c.simd_level())"], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == _core.supported_simd_levels()[-1]


def test_an_unusable_simd_request_warns_and_keeps_a_supported_level():
    env = dict(os.environ, FASTDESCENT_SIMD="sse9")
    code = ("import warnings, numpy as np\nwarnings.simplefilter('always')\n"
            "import fastdescent as fd\nopt = fd.SGD([np.zeros(3)])\n"
            "print(fd.backend_info()['simd'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert "FASTDESCENT_SIMD='sse9' ignored" in result.stderr
    assert result.stdout.strip() == _core.supported_simd_levels()[-1]


def test_set_simd_level_refuses_unknown_levels():
    with pytest.raises(ValueError, match="no kernels for instruction-set level 'sse9'"):
        _core.set_simd_level("sse9")


# ---------------------------------------------------------------------------- bandwidth probe

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_probe_reads_every_array_and_writes_the_first_ones(dtype):
    arrays = [np.full(1000, float(k + 1), dtype) for k in range(4)]  # 1, 2, 3, 4
    _core.stream_probe(arrays, 3)
    for k in range(3):
        np.testing.assert_allclose(arrays[k], 2.5)   # the mean of 1, 2, 3, 4
    assert np.all(arrays[3] == 4.0)                  # read only
    for _ in range(1000):                            # repeated calls stay finite
        _core.stream_probe(arrays, 3)
    assert np.isfinite(arrays[0]).all()
    with pytest.raises(ValueError, match="written must be in"):
        _core.stream_probe(arrays, 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_sqrt_div_probe_also_takes_a_square_root_and_divides(dtype):
    arrays = [np.full(1000, float(k + 1), dtype) for k in range(4)]  # mean 2.5
    _core.stream_probe(arrays, 3, sqrt_div=True)
    for k in range(3):
        np.testing.assert_allclose(arrays[k], 2.5 / (np.sqrt(2.5) + 1), rtol=1e-6)
    assert np.all(arrays[3] == 4.0)
    for _ in range(1000):
        _core.stream_probe(arrays, 3, sqrt_div=True)
    assert np.isfinite(arrays[0]).all()


# ---------------------------------------------------------------------------- edits between steps

def twin_runs(backend, edit, steps=4):
    """Two SGD runs from the same start: one edited by `edit(opt, k)` before step k, one
    where the edit is made the torch way on a fresh optimizer built with its result."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal(9)
    grads = [rng.standard_normal(9) for _ in range(steps)]
    opt = fd.SGD([w], lr=0.1, backend=backend)
    for k, g in enumerate(grads):
        edit(opt, k)
        opt.step([g])
    return w, grads


def test_an_lr_edited_between_steps_is_used(backend):
    def edit(opt, k):
        opt.param_groups[0]["lr"] = 0.1 * (k + 1)

    w, grads = twin_runs(backend, edit)
    rng = np.random.default_rng(1)
    want = rng.standard_normal(9)
    for k, g in enumerate(grads):
        want = want - 0.1 * (k + 1) * g
    np.testing.assert_allclose(w, want, rtol=1e-12)


def test_momentum_switched_on_mid_run_starts_its_buffer_from_the_gradient(backend):
    rng = np.random.default_rng(2)
    w, g1, g2, g3 = (rng.standard_normal(5) for _ in range(4))
    want = w.copy()
    opt = fd.SGD([w], lr=0.1, backend=backend)
    opt.step([g1])
    opt.param_groups[0]["momentum"] = 0.9
    opt.step([g2])
    opt.step([g3])
    buf = g2.copy()
    want = want - 0.1 * g1 - 0.1 * buf
    buf = 0.9 * buf + g3
    want = want - 0.1 * buf
    np.testing.assert_allclose(w, want, rtol=1e-12)
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], buf, rtol=1e-12)


def test_a_group_replaced_by_a_plain_dict_is_used_and_watched(backend):
    w = np.zeros(3)
    opt = fd.SGD([w], lr=0.1, backend=backend)
    opt.param_groups[0] = dict(opt.param_groups[0], lr=1.0)
    opt.step([np.ones(3)])
    np.testing.assert_array_equal(w, -np.ones(3))
    opt.param_groups[0]["lr"] = 2.0  # an edit of the replacement is seen too
    opt.step([np.ones(3)])
    np.testing.assert_array_equal(w, -3 * np.ones(3))


def test_param_groups_reassigned_whole_is_used(backend):
    w = np.zeros(3)
    opt = fd.SGD([w], lr=0.1, backend=backend)
    opt.param_groups = [dict(opt.param_groups[0], lr=0.5)]
    opt.step([np.ones(3)])
    np.testing.assert_array_equal(w, -0.5 * np.ones(3))


def test_a_groups_params_cannot_be_swapped(backend):
    w, other = np.zeros(3), np.zeros(3)
    opt = fd.SGD([w], lr=0.1, backend=backend)
    opt.param_groups[0]["params"] = [other]
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\] was changed"):
        opt.step([np.ones(3)])
    assert not w.any() and not other.any()


def test_removing_a_params_state_restarts_it(backend):
    rng = np.random.default_rng(3)
    w = rng.standard_normal(4)
    g = rng.standard_normal(4)
    opt = fd.Adam([w], lr=0.1, backend=backend)
    opt.step([g])
    opt.step([g])
    del opt.state[0]
    before = w.copy()
    opt.step([g])
    assert opt.state[0]["step"] == 1
    # A first Adam step moves each coordinate by lr (times the sign of its gradient).
    np.testing.assert_allclose(w, before - 0.1 * np.sign(g), rtol=1e-6)


def test_state_is_a_view_of_the_live_arrays(backend):
    w = np.zeros(3)
    opt = fd.Adam([w], lr=0.1, backend=backend)
    assert dict(opt.state) == {}
    opt.step([np.ones(3)])
    exp_avg = opt.state[0]["exp_avg"]
    opt.step([np.ones(3)])
    assert opt.state[0]["exp_avg"] is exp_avg      # updated in place, not replaced
    np.testing.assert_allclose(exp_avg, 0.19)      # 0.9 * 0.1 + 0.1
    assert opt.state[0]["step"] == 2
    assert set(opt.state[0]) == {"step", "exp_avg", "exp_avg_sq"}
