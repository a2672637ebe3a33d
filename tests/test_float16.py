"""float16 params: stored in float16, computed in float32 (issue 8).

Params, gradients and every state array stay float16 in memory; each element is widened to
float32, the update rule runs in float32, and the values written are rounded to float16 (to
nearest, ties to even), as torch's fused CPU kernels treat float16.

The oracles:

* Adam and AdamW: torch 2.13's own fused CPU kernel on float16 tensors (``fused=True``).
* SGD, Adagrad and RMSprop: torch's float32 step run on float32 copies of the float16 params
  and state, every param and state tensor rounded to float16 after each step: the same
  definition, step by step. Not torch's fused kernels: in torch 2.13 on CPU the vectorized
  part of fused SGD's float16 kernel never writes the params and reads its momentum buffer as
  if it held float32 (after one step of 40 float16 params, the first 32 are unchanged), and
  fused Adagrad's float16 kernel rounds ``lr``, ``weight_decay`` and ``eps`` to float16 in its
  vectorized part (``eps=1e-10`` becomes 0: a zero gradient gives NaN). RMSprop has no fused
  kernel.

Tolerance: float16 values are compared as float64 with ``rtol=2**-10`` (one float16 ulp at
the bottom of a binade) and an ``atol`` of 1e-6 for state, ``PARAM_ATOL`` (5% of lr) for
params. The compiled backend contracts ``a * b + c`` into fused multiply-adds at the avx2
and avx512 levels where torch's kernel does not, so now and then a value rounds to the
neighbouring float16 and the difference carries into the param over the following steps.
Measured (2026-11-23, 50 steps, 1126 elements per case): NumPy and numba backends at most
1 ulp in at most 2 elements per case; the compiled backend (avx2) states at most 1 ulp in at
most 4 elements, params at most 1 ulp except SGD with Nesterov (3 ulp: 9e-5 at 0.047, lr
1e-2). :func:`test_the_tolerance_tells_float16_arithmetic_from_float32` shows the comparison
fails for a step computed in float16 arithmetic instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import assert_unchanged, snapshot

import fastdescent as fd
import fastdescent.torch as fdt
from fastdescent import _core

STEPS = 50
SHAPES = [(0,), (1,), (7,), (33,), (1000,), (17, 5)]
LR = 1e-2
PARAM_ATOL = 0.05 * LR

# name -> (fastdescent class, torch class, options, oracle: "fused" or "float32 emulation")
CASES = {
    "Adam": (fd.Adam, torch.optim.Adam, {}, "fused"),
    "Adam weight_decay": (fd.Adam, torch.optim.Adam, {"weight_decay": 0.1}, "fused"),
    "Adam amsgrad": (fd.Adam, torch.optim.Adam, {"amsgrad": True}, "fused"),
    "Adam maximize betas": (fd.Adam, torch.optim.Adam,
                            {"maximize": True, "betas": (0.8, 0.99)}, "fused"),
    "AdamW": (fd.AdamW, torch.optim.AdamW, {}, "fused"),
    "AdamW amsgrad": (fd.AdamW, torch.optim.AdamW,
                      {"amsgrad": True, "weight_decay": 0.05}, "fused"),
    "SGD": (fd.SGD, torch.optim.SGD, {}, "float32 emulation"),
    "SGD momentum dampening": (fd.SGD, torch.optim.SGD,
                               {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
                               "float32 emulation"),
    "SGD nesterov maximize": (fd.SGD, torch.optim.SGD,
                              {"momentum": 0.9, "nesterov": True, "maximize": True},
                              "float32 emulation"),
    "Adagrad": (fd.Adagrad, torch.optim.Adagrad, {}, "float32 emulation"),
    "Adagrad lr_decay accumulator": (fd.Adagrad, torch.optim.Adagrad,
                                     {"lr_decay": 0.01, "initial_accumulator_value": 0.1,
                                      "weight_decay": 0.01}, "float32 emulation"),
    "Adagrad maximize": (fd.Adagrad, torch.optim.Adagrad, {"maximize": True},
                         "float32 emulation"),
    "RMSprop": (fd.RMSprop, torch.optim.RMSprop, {}, "float32 emulation"),
    "RMSprop centered momentum": (fd.RMSprop, torch.optim.RMSprop,
                                  {"centered": True, "momentum": 0.9, "weight_decay": 0.01},
                                  "float32 emulation"),
    "RMSprop maximize": (fd.RMSprop, torch.optim.RMSprop, {"maximize": True, "alpha": 0.9},
                         "float32 emulation"),
}


def problem(seed=0, shapes=SHAPES, steps=STEPS):
    """float16 initial params and one float16 gradient per param per step."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float16) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float16) for s in shapes] for _ in range(steps)]
    return params, grads


def torch_fused(torch_class, options, params, grads):
    """The params and state after torch's fused float16 kernel ran on every step."""
    tensors = [torch.tensor(p) for p in params]
    opt = torch_class(tensors, lr=LR, fused=True, **options)
    for step in grads:
        for t, g in zip(tensors, step):
            t.grad = torch.tensor(g)
        opt.step()
    return tensors, opt


def torch_float32_emulation(torch_class, options, params, grads):
    """torch's float32 step on widened copies, params and state rounded to float16 after
    each step (returned as float16 tensors)."""
    tensors = [torch.tensor(p.astype(np.float32)) for p in params]
    opt = torch_class(tensors, lr=LR, **options)

    def round_to_float16():
        with torch.no_grad():
            for t in tensors:
                t.copy_(t.half().float())
                for key, value in opt.state[t].items():
                    if key != "step" and isinstance(value, torch.Tensor):
                        value.copy_(value.half().float())

    round_to_float16()  # Adagrad's initial_accumulator_value is stored in float16 too
    for step in grads:
        for t, g in zip(tensors, step):
            t.grad = torch.tensor(g.astype(np.float32))
        opt.step()
        round_to_float16()
    for t in tensors:
        for key, value in list(opt.state[t].items()):
            if key != "step":
                opt.state[t][key] = value.half()
    return [t.half() for t in tensors], opt


def oracle(name, params, grads):
    _, torch_class, options, kind = CASES[name]
    run = torch_fused if kind == "fused" else torch_float32_emulation
    return run(torch_class, options, params, grads)


def assert_close_float16(actual, expected, atol, what):
    assert actual.dtype == np.float16 and expected.dtype == np.float16, what
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                               rtol=2**-10, atol=atol, err_msg=what)


def assert_matches(opt, tensors, torch_opt, params):
    for i, (ours, theirs) in enumerate(zip(params, tensors)):
        assert_close_float16(ours, theirs.numpy(), PARAM_ATOL, f"params[{i}]")
        for key, value in torch_opt.state[theirs].items():
            if key == "step":
                assert opt.state[i]["step"] == int(value)
                continue
            assert_close_float16(opt.state[i][key], value.numpy(), 1e-6, f"state[{i}][{key!r}]")


@pytest.mark.parametrize("name", CASES)
def test_each_optimizer_matches_torch_in_float16(name, backend):
    params, grads = problem()
    tensors, torch_opt = oracle(name, params, grads)
    cls, _, options, _ = CASES[name]
    opt = cls([p.copy() for p in params], lr=LR, backend=backend, **options)
    for step in grads:
        opt.step(step)
    assert all(p.dtype == np.float16 for p in opt.params)
    assert all(v.dtype == np.float16 for s in opt.state.values() for v in s.values()
               if isinstance(v, np.ndarray))
    assert_matches(opt, tensors, torch_opt, opt.params)


LEVEL_SCRIPT = """
import json, sys, numpy as np, fastdescent as fd
sys.path.insert(0, {tests!r})
from test_float16 import CASES, LR, problem
out = {{"level": fd.backend_info()["simd"]}}
for name, (cls, _, options, _) in CASES.items():
    params, grads = problem()
    opt = cls(params, lr=LR, backend="cpp", **options)
    for step in grads:
        opt.step(step)
    out[name] = [p.view(np.uint16).tolist() for p in opt.params]
print(json.dumps(out))
"""


@pytest.mark.parametrize("level", _core.supported_simd_levels())
def test_every_simd_level_steps_float16_as_torch(level):
    """The baseline level converts with integer bit operations, avx2 and avx512 with F16C."""
    code = LEVEL_SCRIPT.format(tests=os.path.dirname(__file__))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, FASTDESCENT_SIMD=level), timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["level"] == level
    for name in CASES:
        params, grads = problem()
        tensors, _ = oracle(name, params, grads)
        for i, (bits, theirs) in enumerate(zip(out[name], tensors)):
            ours = np.array(bits, np.uint16).view(np.float16).reshape(theirs.shape)
            assert_close_float16(ours, theirs.numpy(), PARAM_ATOL, f"{name}: params[{i}]")


def test_the_tolerance_tells_float16_arithmetic_from_float32():
    """Negative control: torch's for-loop Adam computes float16 params in float16 (every
    operation rounded); the comparison above refuses it as a stand-in for the fused kernel."""
    params, grads = problem()
    fused, _ = torch_fused(torch.optim.Adam, {}, params, grads)
    tensors = [torch.tensor(p) for p in params]
    opt = torch.optim.Adam(tensors, lr=LR, foreach=False)
    for step in grads:
        for t, g in zip(tensors, step):
            t.grad = torch.tensor(g)
        opt.step()
    with pytest.raises(AssertionError):
        for ours, theirs in zip(tensors, fused):
            assert_close_float16(ours.numpy(), theirs.numpy(), PARAM_ATOL, "params")


def test_float16_and_float32_params_share_an_optimizer(backend):
    """Groups of either dtype (and both dtypes in one group) step in one call, each dtype
    as torch's fused kernel steps it."""
    rng = np.random.default_rng(3)
    halves = [rng.standard_normal(n).astype(np.float16) for n in (40, 9)]
    singles = [rng.standard_normal(n).astype(np.float32) for n in (40, 9)]
    groups = [{"params": [halves[0], singles[0]]},
              {"params": [singles[1], halves[1]], "lr": 3e-3, "weight_decay": 0.1}]
    tensors = [torch.tensor(a) for a in (halves[0], singles[0], singles[1], halves[1])]
    torch_opt = torch.optim.Adam([{"params": tensors[:2]}, {"params": tensors[2:], "lr": 3e-3,
                                                            "weight_decay": 0.1}],
                                 lr=LR, fused=True)
    opt = fd.Adam(groups, lr=LR, backend=backend)
    for _ in range(20):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in opt.params]
        opt.step(grads)
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        torch_opt.step()
    for i, (ours, theirs) in enumerate(zip(opt.params, tensors)):
        assert ours.dtype == theirs.numpy().dtype
        if ours.dtype == np.float16:
            assert_close_float16(ours, theirs.numpy(), PARAM_ATOL, f"params[{i}]")
        else:
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("wrong", ["float32 grad", "float64 grad"])
def test_a_grad_of_another_dtype_is_refused_and_nothing_changes(wrong, backend):
    rng = np.random.default_rng(4)
    params = [rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float16)]
    opt = fd.Adam(params, backend=backend)
    opt.step([rng.standard_normal(8).astype(p.dtype) for p in params])
    before = snapshot(opt)
    bad = rng.standard_normal(8).astype(np.float32 if wrong == "float32 grad" else np.float64)
    with pytest.raises(TypeError, match=re.escape(
            f"grads[1] has dtype {bad.dtype} but params[1] has dtype float16")):
        opt.step([rng.standard_normal(8).astype(np.float32), bad])
    assert_unchanged(opt, before)
    with pytest.raises(TypeError, match=re.escape(
            "grads[0] has dtype float16 but params[0] has dtype float32")):
        opt.step([rng.standard_normal(8).astype(np.float16), params[1].copy()])
    assert_unchanged(opt, before)


def test_a_nonfinite_float16_grad_is_found_and_nothing_changes(backend):
    params = [np.zeros(5, np.float16), np.zeros(70, np.float16)]
    opt = fd.SGD(params, lr=0.1, momentum=0.9, backend=backend)
    opt.step([np.ones(5, np.float16), np.ones(70, np.float16)])
    before = snapshot(opt)
    for bad in (np.inf, -np.inf, np.nan):
        grad = np.ones(70, np.float16)
        grad[66] = bad
        with pytest.raises(ValueError, match=re.escape("grads[1] holds NaN or infinity")):
            opt.step([np.ones(5, np.float16), grad], check_finite=True)
        assert_unchanged(opt, before)
    big = np.full(5, np.finfo(np.float16).max, np.float16)  # finite: accepted
    opt.step([big, np.ones(70, np.float16)], check_finite=True)


@pytest.mark.parametrize("name", ["Adam amsgrad", "SGD momentum dampening",
                                  "Adagrad lr_decay accumulator", "RMSprop centered momentum"])
def test_float16_state_round_trips_through_state_dict_and_files(name, backend, tmp_path):
    cls, _, options, _ = CASES[name]
    params, grads = problem(seed=5, shapes=[(33,), (4, 3)], steps=12)
    original = cls([p.copy() for p in params], lr=LR, backend=backend, **options)
    for step in grads[:6]:
        original.step(step)
    saved = original.state_dict()
    assert all(v.dtype == np.float16 for s in saved["state"].values() for v in s.values()
               if isinstance(v, np.ndarray))
    fd.save(tmp_path / "opt.npz", original)
    from_dict = cls([p.copy() for p in original.params], lr=LR, backend=backend, **options)
    from_dict.load_state_dict(saved)
    from_file = cls([p.copy() for p in original.params], lr=LR, backend=backend, **options)
    fd.load(tmp_path / "opt.npz", from_file)
    for step in grads[6:]:
        for opt in (original, from_dict, from_file):
            opt.step([g.copy() for g in step])
    for opt in (from_dict, from_file):
        assert_unchanged(opt, snapshot(original))


def test_the_torch_dropin_steps_float16_tensors_as_torchs_fused_adam():
    params, grads = problem(seed=6, shapes=[(33,), (17, 5)], steps=20)
    ours = [torch.tensor(p) for p in params]
    theirs = [torch.tensor(p) for p in params]
    # fused=True changes nothing here, but travels in the state dict: torch's optimizer keeps
    # running its fused kernel after loading ours.
    opt = fdt.Adam(ours, lr=LR, weight_decay=0.01, fused=True)
    torch_opt = torch.optim.Adam(theirs, lr=LR, weight_decay=0.01, fused=True)

    def run(steps):
        for step in steps:
            for a, b, g in zip(ours, theirs, step):
                a.grad, b.grad = torch.tensor(g), torch.tensor(g)
            opt.step()
            torch_opt.step()

    def check():
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert a.dtype == torch.float16
            assert_close_float16(a.numpy(), b.numpy(), PARAM_ATOL, f"params[{i}]")
            for key in ("exp_avg", "exp_avg_sq"):
                assert opt.state[a][key].dtype == torch.float16
                assert_close_float16(opt.state[a][key].numpy(), torch_opt.state[b][key].numpy(),
                                     1e-6, key)

    run(grads[:10])
    check()
    # Our state dict loads into torch's fused Adam, and torch's into ours: both continue.
    mine, torchs = opt.state_dict(), torch_opt.state_dict()
    opt.load_state_dict(torchs)
    torch_opt.load_state_dict(mine)
    assert torch_opt.state[theirs[0]]["exp_avg"].dtype == torch.float16
    assert torch_opt.param_groups[0]["fused"] is True
    run(grads[10:])
    check()


@pytest.mark.parametrize("kind", ["sgd", "adagrad", "rmsprop", "adam"])
def test_every_backends_list_kernels_take_float16_as_the_reference(kind, backend):
    """``adam_step`` and the rest (the kernels' common interface) step float16 lists in
    float32 in every backend, as the NumPy reference does."""
    from fastdescent import backends

    rng = np.random.default_rng(7)
    shapes = [(0,), (7,), (600,), (3, 4)]
    options = {
        "sgd": dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=True,
                    maximize=False, first_step=False),
        "adagrad": dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, eps=1e-10, maximize=False,
                        step=3),
        "rmsprop": dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=0.5,
                        centered=True, maximize=True),
        "adam": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1,
                     decoupled_weight_decay=True, amsgrad=True, maximize=False, step=3),
    }[kind]

    def arrays():
        def column(scale):
            return [(scale * rng.standard_normal(s)).astype(np.float16) for s in shapes]

        def positive(scale):  # state that is a running mean of squares (or a max of them)
            return [(scale * (1 + np.abs(rng.standard_normal(s)))).astype(np.float16)
                    for s in shapes]
        state = {"sgd": [column(1.0)], "adagrad": [positive(1.0)],
                 "rmsprop": [positive(1.0), column(0.1), column(0.1)],
                 "adam": [column(0.1), positive(0.1), positive(0.2)]}[kind]
        return [column(1.0), column(1.0)] + state

    data = arrays()
    want = [[a.copy() for a in c] for c in data]
    got = [[a.copy() for a in c] for c in data]
    getattr(backends.load("numpy"), f"{kind}_step")(*want, **options)
    getattr(backends.load(backend), f"{kind}_step")(*got, **options)
    for c, (ours, reference) in enumerate(zip(got, want)):
        for i, (a, b) in enumerate(zip(ours, reference)):
            assert a.dtype == np.float16
            assert_close_float16(a, b, 1e-6, f"column {c}, tensor {i}")
