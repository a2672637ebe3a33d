"""torch.optim (2.13.0, CPU, for-loop implementation) as the oracle for every optimizer.

Each case builds one fastdescent optimizer and the torch.optim optimizer of the same name
with the same options over identical copies of the same params, feeds both the same
seeded random gradients (standard normal, so every step is well conditioned) for
``STEPS`` steps, and compares every param with torch's every ``CHECK_EVERY`` steps and at the
end; at the end the optimizer state (``exp_avg``, ``sum``, ``momentum_buffer``, ``step``,
...) is compared too, entry by entry and under torch's names.

Conditioning. With L2 weight decay the gradient an update sees is ``g + weight_decay *
param``; where that sum nearly cancels, its last bits are rounding noise (torch adds
``alpha * param`` with one fused rounding, fastdescent rounds the product and the sum
separately), and the first step of Adagrad, RMSprop and Adam divides that noise by its own
magnitude. Such elements are ill-conditioned, not wrong, so the gradient generator redraws
any element whose decayed gradient would be within ``CANCELLATION`` (1e-3) of zero: about
one element in a thousand, the rest of the draw unchanged.

The params of one case are six arrays of sizes 0, 1, 7, 33, 1000 and (17, 5), all in one
optimizer, so the multi-tensor path of the kernels is what runs.

Tolerance, per compared array ``a`` (fastdescent) against ``b`` (torch)::

    |a - b| <= atol + rtol * |b|     elementwise, with
    rtol = 2e-4 (float32), 1e-9 (float64)
    atol = ATOL_FRACTION * rtol * max(1, max|b|),   ATOL_FRACTION = 1e-2

``atol`` only matters for elements that pass near zero, where the last bits of a
difference of O(max|b|) terms are all that is left: it allows an absolute error of a
hundredth of the relative budget at the array's own scale, 2e-6 * scale in float32 (about
17 ulps of the scale) and 1e-11 * scale in float64. Measured on this suite, the largest
absolute difference is about 2.5 ulps of the scale in both dtypes, so float32 uses about
5% of its budget; float64's rtol is far above its rounding and would still catch any
difference in the update rule. ``test_tolerance_has_teeth_*`` check that the comparison
fails for a wrong option or a flipped flag, and for a single element off by 3 rtol (or by
3 atol near zero) while 0.3 rtol passes.

Every comparison also measures the worst relative error ``|a - b| / |b|`` over the elements
with ``|b| > 1e-3`` (near that floor it is an absolute error of a few ulps of the scale
divided by 1e-3, so it reads much larger than the error of typical elements) and appends
``(optimizer, options, dtype, backend, error)`` to :data:`RECORDS`. When the environment
variable ``FASTDESCENT_ORACLE_REPORT`` names a file, the worst error per (dtype, backend)
and the number of cases are written there as JSON when this module's tests finish;
otherwise nothing is written.
"""

from __future__ import annotations

import json
import math
import os
import zlib

import numpy as np
import pytest
import torch

import fastdescent as fd

STEPS = 50
CHECK_EVERY = 5
SHAPES = [(0,), (1,), (7,), (33,), (1000,), (17, 5)]
DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-9}
ATOL_FRACTION = 1e-2
REL_FLOOR = 1e-3  # relative errors are measured where |torch| > REL_FLOOR
CANCELLATION = 1e-3  # gradients are redrawn where g + weight_decay * param is this small

FD = {"SGD": fd.SGD, "Adagrad": fd.Adagrad, "RMSprop": fd.RMSprop, "Adam": fd.Adam,
      "AdamW": fd.AdamW}
TORCH = {"SGD": torch.optim.SGD, "Adagrad": torch.optim.Adagrad,
         "RMSprop": torch.optim.RMSprop, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}

#: one entry per comparison: optimizer, options, dtype, backend, error, case
RECORDS: list[dict] = []


# --------------------------------------------------------------------------- the report

@pytest.fixture(scope="module", autouse=True)
def _oracle_report(request):
    """Writes the worst relative errors to $FASTDESCENT_ORACLE_REPORT after the module."""
    RECORDS.clear()

    def write():
        path = os.environ.get("FASTDESCENT_ORACLE_REPORT")
        if not path:
            return
        worst: dict[str, dict] = {}
        cases: dict[str, set] = {}
        for r in RECORDS:
            key = f"{r['dtype']}/{r['backend']}"
            cases.setdefault(key, set()).add(r["case"])
            if key not in worst or r["error"] > worst[key]["error"]:
                worst[key] = {k: r[k] for k in ("error", "optimizer", "options", "case")}
        for key, entry in worst.items():
            entry["cases"] = len(cases[key])
            entry["rtol"] = RTOL[np.dtype(key.split("/")[0])]
        report = {"cases": len({r["case"] for r in RECORDS}), "comparisons": len(RECORDS),
                  "torch": torch.__version__, "worst": dict(sorted(worst.items()))}
        with open(path, "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)

    request.addfinalizer(write)


def _current_case() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]


# --------------------------------------------------------------------------- helpers

def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - b| / |b| over the elements where |b| > REL_FLOOR (0 when there are none)."""
    a = np.asarray(actual, dtype=np.float64).ravel()
    b = np.asarray(expected, dtype=np.float64).ravel()
    mask = np.abs(b) > REL_FLOOR
    if not mask.any():
        return 0.0
    return float(np.max(np.abs(a[mask] - b[mask]) / np.abs(b[mask])))


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """``actual`` agrees with ``expected`` within the module's tolerance (see docstring)."""
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    rtol = RTOL[expected.dtype]
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    atol = ATOL_FRACTION * rtol * scale
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def compare_params(fd_params, torch_params, label, backend, *, record=True, where=""):
    """Asserts every fastdescent param matches its torch twin; records the worst relative
    error per dtype."""
    worst: dict[str, float] = {}
    for i, (a, t) in enumerate(zip(fd_params, torch_params)):
        b = t.detach().numpy()
        err = relative_error(a, b)
        worst[a.dtype.name] = max(worst.get(a.dtype.name, 0.0), err)
        assert_close(a, b, f"{label} [{backend}] params[{i}] {a.shape} {where}")
    if record:
        optimizer, options = label
        for dtype, err in worst.items():
            RECORDS.append({"optimizer": optimizer, "options": options, "dtype": dtype,
                            "backend": backend, "error": err, "case": _current_case()})


def compare_state(fd_opt, torch_opt, torch_params, label, backend):
    """The per-param state of fastdescent holds torch's entries, under torch's names, with
    torch's values (params torch never stepped have no state in either)."""
    for i, t in enumerate(torch_params):
        expected = torch_opt.state.get(t, {})
        got = fd_opt.state.get(i, {})
        expected = {k: v for k, v in expected.items() if v is not None}
        if not got and "step" in expected and expected["step"].item() == 0:
            continue  # torch.optim.Adagrad creates its state in __init__, before any step
        assert set(got) == set(expected), \
            f"{label} [{backend}] state[{i}] keys {sorted(got)} != torch's {sorted(expected)}"
        for key, value in expected.items():
            if key == "step":
                assert got[key] == int(value.item()), f"{label} state[{i}]['step']"
            else:
                assert_close(got[key], value.numpy(), f"{label} [{backend}] state[{i}][{key!r}]")


def seed_of(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


def initial_params(rng, shapes, dtypes):
    return [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]


class Pair:
    """A fastdescent optimizer and its torch twin over equal copies of the same params.

    ``groups`` is a list of param groups, ``{"params": [arrays], **options}``, with
    ``options`` passed to both constructors; ``fd_overrides`` changes options on the
    fastdescent side only (to check that a difference is caught).
    """

    def __init__(self, name, groups, options, backend, fd_overrides=None):
        self.name = name
        self.fd_params = [p.copy() for g in groups for p in g["params"]]
        self.torch_params = [torch.from_numpy(p.copy()).requires_grad_(True)
                             for g in groups for p in g["params"]]
        fd_groups, torch_groups, k = [], [], 0
        for g in groups:
            n = len(g["params"])
            extra = {key: v for key, v in g.items() if key != "params"}
            fd_groups.append({"params": self.fd_params[k:k + n], **extra})
            # torch takes a schedule's first value; Pair.step sets the later ones.
            extra = {key: v(1) if callable(v) else v for key, v in extra.items()}
            torch_groups.append({"params": self.torch_params[k:k + n], **extra})
            k += n
        self.fd = FD[name](fd_groups, **{**options, **(fd_overrides or {})}, backend=backend)
        self.torch = TORCH[name](torch_groups, **options, foreach=False)
        assert self.fd.backend == backend
        # (weight_decay, maximize) per param where the decay enters the gradient
        self._coupled = [(0.0 if name == "AdamW" else g["weight_decay"], g["maximize"])
                         for g in self.torch.param_groups for _ in g["params"]]

    def grads(self, rng):
        """Standard normal gradients, one per param, redrawn where the gradient the update
        sees, ``(-g if maximize else g) + weight_decay * param``, would be within
        ``CANCELLATION`` of zero (see the module docstring)."""
        out = []
        for t, (weight_decay, maximize) in zip(self.torch_params, self._coupled):
            g = rng.standard_normal(tuple(t.shape))
            if weight_decay:
                p = t.detach().numpy().astype(np.float64)
                sign = -1.0 if maximize else 1.0
                while (bad := np.abs(sign * g + weight_decay * p) < CANCELLATION).any():
                    g[bad] = rng.standard_normal(int(bad.sum()))
            out.append(g.astype(t.detach().numpy().dtype))
        return out

    def step(self, grads, torch_lrs=None):
        """One step of both; ``grads`` entries may be None; ``torch_lrs`` (one per group)
        are set as torch's group lr before its step."""
        self.fd.step(grads)
        if torch_lrs is not None:
            for group, lr in zip(self.torch.param_groups, torch_lrs):
                group["lr"] = lr
        for t, g in zip(self.torch_params, grads):
            t.grad = None if g is None else torch.from_numpy(g.copy())
        self.torch.step()


def run_case(name, options, dtype, backend, *, shapes=SHAPES, steps=STEPS,
             fd_overrides=None, record=True):
    rng = np.random.default_rng(seed_of(name, options, np.dtype(dtype).name, tuple(shapes)))
    params = initial_params(rng, shapes, [dtype] * len(shapes))
    pair = Pair(name, [{"params": params}], options, backend, fd_overrides)
    label = (name, repr(options))
    for t in range(1, steps + 1):
        pair.step(pair.grads(rng))
        if t % CHECK_EVERY == 0 or t == steps:
            compare_params(pair.fd_params, pair.torch_params, label, backend, record=record,
                           where=f"after step {t}")
    compare_state(pair.fd, pair.torch, pair.torch_params, label, backend)
    return pair


# --------------------------------------------------------------------------- the cases

def _cases(name, lr, options):
    """(optimizer, options) params: the defaults alone, lr alone, then ``options`` each with
    that lr."""
    out = [pytest.param(name, {}, id=f"{name}-defaults"),
           pytest.param(name, {"lr": lr}, id=f"{name}-lr")]
    for case_id, opts in options:
        out.append(pytest.param(name, {"lr": lr, **opts}, id=f"{name}-{case_id}"))
    return out


CASES = (
    _cases("SGD", 0.05, [
        ("momentum", dict(momentum=0.9)),
        ("dampening", dict(dampening=0.5)),
        ("weight_decay", dict(weight_decay=0.1)),
        ("nesterov", dict(momentum=0.9, nesterov=True)),
        ("maximize", dict(maximize=True)),
        ("momentum+dampening", dict(momentum=0.9, dampening=0.3)),
        ("momentum+weight_decay", dict(momentum=0.5, weight_decay=0.1)),
        ("momentum+nesterov+weight_decay+maximize",
         dict(momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
        ("momentum+dampening+weight_decay+maximize",
         dict(momentum=0.8, dampening=0.2, weight_decay=0.05, maximize=True)),
    ])
    + _cases("Adagrad", 0.1, [
        ("lr_decay", dict(lr_decay=0.05)),
        ("weight_decay", dict(weight_decay=0.1)),
        ("initial_accumulator_value", dict(initial_accumulator_value=0.5)),
        ("eps", dict(eps=0.1)),
        ("maximize", dict(maximize=True)),
        ("lr_decay+initial_accumulator_value+weight_decay+eps",
         dict(lr_decay=0.05, initial_accumulator_value=0.5, weight_decay=0.1, eps=1e-3)),
        ("all+maximize", dict(lr_decay=0.02, initial_accumulator_value=0.1, weight_decay=0.05,
                              eps=0.01, maximize=True)),
    ])
    + _cases("RMSprop", 0.01, [
        ("alpha", dict(alpha=0.9)),
        ("eps", dict(eps=1e-3)),
        ("weight_decay", dict(weight_decay=0.1)),
        ("momentum", dict(momentum=0.9)),
        ("centered", dict(centered=True)),
        ("maximize", dict(maximize=True)),
        ("centered+momentum+weight_decay", dict(centered=True, momentum=0.9, weight_decay=0.1)),
        ("centered+maximize", dict(centered=True, maximize=True)),
        ("momentum+alpha+maximize", dict(momentum=0.5, alpha=0.9, maximize=True)),
        ("all", dict(alpha=0.95, eps=1e-4, weight_decay=0.05, momentum=0.8, centered=True,
                     maximize=True)),
    ])
    + _cases("Adam", 0.05, [
        ("betas", dict(betas=(0.8, 0.99))),
        ("eps", dict(eps=1e-3)),
        ("weight_decay", dict(weight_decay=0.1)),
        ("amsgrad", dict(amsgrad=True)),
        ("maximize", dict(maximize=True)),
        ("amsgrad+weight_decay+maximize", dict(amsgrad=True, weight_decay=0.1, maximize=True)),
        ("all", dict(betas=(0.5, 0.9), eps=1e-4, weight_decay=0.05, amsgrad=True,
                     maximize=True)),
    ])
    + _cases("AdamW", 0.05, [
        ("betas", dict(betas=(0.8, 0.99))),
        ("eps", dict(eps=1e-3)),
        ("weight_decay", dict(weight_decay=0.1)),
        ("no_weight_decay", dict(weight_decay=0)),
        ("amsgrad", dict(amsgrad=True)),
        ("maximize", dict(maximize=True)),
        ("amsgrad+weight_decay+maximize", dict(amsgrad=True, weight_decay=0.1, maximize=True)),
        ("all", dict(betas=(0.5, 0.9), eps=1e-4, weight_decay=0.2, amsgrad=True,
                     maximize=True)),
    ])
)

DTYPE_PARAMS = [pytest.param(d, id=np.dtype(d).name) for d in DTYPES]


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("name, options", CASES)
def test_matches_torch(name, options, dtype, backend):
    run_case(name, options, dtype, backend)


# One combination per optimizer over a param large enough for the kernels' threaded path
# (fastdescent.loop: 2 * 65536 elements), with an odd tail.
LARGE = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.5, weight_decay=0.1,
                     eps=1e-3)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("AdamW", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
]


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("name, options", LARGE, ids=[n for n, _ in LARGE])
def test_matches_torch_threaded_size(name, options, dtype, backend):
    run_case(name, options, dtype, backend, shapes=[(2 * 65536 + 37,), (5,)], steps=10)


# --------------------------------------------------------------------------- param groups

# Per optimizer: constructor defaults, then two groups with their own lr and options.
GROUPS = {
    "SGD": ({"lr": 0.05}, [{"momentum": 0.9, "nesterov": True},
                           {"lr": 0.02, "momentum": 0.5, "dampening": 0.1,
                            "weight_decay": 0.1, "maximize": True}]),
    # torch.optim.Adagrad fills every param's "sum" with the constructor's
    # initial_accumulator_value and ignores a group's own (see
    # test_adagrad_group_initial_accumulator_value): here it is set for all groups.
    "Adagrad": ({"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.3},
                [{"lr_decay": 0.05},
                 {"lr": 0.05, "weight_decay": 0.1, "eps": 1e-3, "maximize": True}]),
    "RMSprop": ({"lr": 0.01}, [{"centered": True, "alpha": 0.9},
                               {"lr": 0.005, "momentum": 0.9, "weight_decay": 0.05,
                                "maximize": True}]),
    "Adam": ({"lr": 0.05}, [{"amsgrad": True, "betas": (0.8, 0.99)},
                            {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-4, "maximize": True}]),
    "AdamW": ({"lr": 0.05, "weight_decay": 0.1}, [{"amsgrad": True},
                                                  {"lr": 0.02, "weight_decay": 0.0,
                                                   "betas": (0.5, 0.9), "maximize": True}]),
}


def _run_scenario(name, backend, *, dtypes, groups_options=None, defaults=None,
                  schedules=None, none_grads=False, steps=STEPS, record=True, seed=0):
    """A general run: params of ``SHAPES`` with the given dtypes, split in two groups when
    ``groups_options`` is given, lr schedules per group, None grads at random."""
    if defaults is None:
        defaults = GROUPS[name][0]
    rng = np.random.default_rng(seed_of(name, "scenario", seed, tuple(map(str, dtypes))))
    params = initial_params(rng, SHAPES, dtypes)
    if groups_options is None:
        groups = [{"params": params}]
    else:
        groups = [{"params": params[:3], **groups_options[0]},
                  {"params": params[3:], **groups_options[1]}]
    if schedules is not None:
        for g, schedule in zip(groups, schedules):
            g["lr"] = schedule
    pair = Pair(name, groups, defaults, backend)
    label = (name, repr({"defaults": defaults, "groups": groups_options,
                         "schedules": schedules is not None, "none_grads": none_grads}))
    stepped = [0] * len(params)
    for t in range(1, steps + 1):
        grads = pair.grads(rng)
        if none_grads:
            for i in range(len(grads)):
                if (i == 2 and t <= 7) or i == 5 or (i != 4 and rng.random() < 0.3):
                    grads[i] = None  # params[2] starts late, params[5] never gets one
        stepped = [s + (g is not None) for s, g in zip(stepped, grads)]
        torch_lrs = None
        if schedules is not None:
            torch_lrs = [s(t) for s in schedules]
        pair.step(grads, torch_lrs)
        if t % CHECK_EVERY == 0 or t == steps:
            compare_params(pair.fd_params, pair.torch_params, label, backend, record=record,
                           where=f"after step {t}")
    compare_state(pair.fd, pair.torch, pair.torch_params, label, backend)
    if none_grads:
        assert np.array_equal(pair.fd_params[5], params[5]), "a param without grads moved"
        assert 5 not in pair.fd.state
        if "step" in pair.fd.state.get(2, {}):
            assert pair.fd.state[2]["step"] == stepped[2] < steps
    assert pair.fd.step_count == steps
    return pair


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("name", list(FD))
def test_param_groups_match_torch(name, dtype, backend):
    _run_scenario(name, backend, dtypes=[dtype] * len(SHAPES), groups_options=GROUPS[name][1])


def _warmup_cosine(peak, warmup, total):
    def lr(step):
        assert isinstance(step, int) and 1 <= step <= total, step
        if step <= warmup:
            return peak * step / warmup
        return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
    return lr


def _exponential(lr0, rate):
    return lambda step: lr0 * math.exp(-rate * (step - 1))


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("name", list(FD))
def test_callable_lr_matches_torch(name, dtype, backend):
    peak = GROUPS[name][0]["lr"]
    _run_scenario(name, backend, dtypes=[dtype] * len(SHAPES), groups_options=GROUPS[name][1],
                  schedules=[_warmup_cosine(peak, 10, STEPS), _exponential(2 * peak, 0.05)])


def test_callable_lr_is_called_with_step_numbers_from_one(backend):
    calls = []

    def lr(step):
        calls.append(step)
        return 0.1

    w = np.ones(3)
    opt = fd.SGD([w], lr=lr, backend=backend)
    for _ in range(4):
        opt.step([np.ones(3)])
    opt.step([None])  # a step with no grads still counts
    opt.step([np.ones(3)])
    assert calls == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(w, 1 - 5 * 0.1, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("name", list(FD))
def test_none_grads_match_torch(name, dtype, backend):
    _run_scenario(name, backend, dtypes=[dtype] * len(SHAPES), groups_options=GROUPS[name][1],
                  none_grads=True)


@pytest.mark.parametrize("name", list(FD))
def test_none_grads_with_schedule_match_torch(name, backend):
    # Per-param step counts (Adam, Adagrad) lag behind the optimizer's step, which is the
    # one the schedule sees, as torch's group lr is set per optimizer step.
    peak = GROUPS[name][0]["lr"]
    _run_scenario(name, backend, dtypes=[np.float64] * len(SHAPES),
                  groups_options=GROUPS[name][1], none_grads=True,
                  schedules=[_warmup_cosine(peak, 10, STEPS), _exponential(peak, 0.02)])


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
def test_adagrad_group_initial_accumulator_value(dtype, backend):
    """A group's own initial_accumulator_value fills that group's "sum" (fastdescent takes
    every option from the group). torch.optim.Adagrad 2.13 ignores it and uses the
    constructor's value for every group, so the oracle here is one torch optimizer per
    group, built with that group's value."""
    rng = np.random.default_rng(seed_of("adagrad-groups", np.dtype(dtype).name))
    params = initial_params(rng, SHAPES, [dtype] * len(SHAPES))
    values = [0.5, 0.0]
    fd_params = [p.copy() for p in params]
    opt = fd.Adagrad([{"params": fd_params[:3], "initial_accumulator_value": values[0]},
                      {"params": fd_params[3:], "initial_accumulator_value": values[1]}],
                     lr=0.1, initial_accumulator_value=0.2, backend=backend)
    torch_params = [torch.from_numpy(p.copy()) for p in params]
    twins = [torch.optim.Adagrad(torch_params[:3], lr=0.1, initial_accumulator_value=values[0],
                                 foreach=False),
             torch.optim.Adagrad(torch_params[3:], lr=0.1, initial_accumulator_value=values[1],
                                 foreach=False)]
    label = ("Adagrad", "group initial_accumulator_value")
    for t in range(1, STEPS + 1):
        grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
        opt.step(grads)
        for tp, g in zip(torch_params, grads):
            tp.grad = torch.from_numpy(g.copy())
        for twin in twins:
            twin.step()
        if t % CHECK_EVERY == 0:
            compare_params(fd_params, torch_params, label, backend, where=f"after step {t}")
    for i, tp in enumerate(torch_params):
        twin = twins[i // 3]
        assert_close(opt.state[i]["sum"], twin.state[tp]["sum"].numpy(), f"state[{i}]['sum']")


MIXED = [np.float32, np.float64, np.float32, np.float64, np.float32, np.float64]


@pytest.mark.parametrize("name", list(FD))
def test_mixed_dtypes_match_torch(name, backend):
    pair = _run_scenario(name, backend, dtypes=MIXED)
    assert [p.dtype for p in pair.fd_params] == [np.dtype(d) for d in MIXED]


@pytest.mark.parametrize("name", list(FD))
def test_mixed_dtypes_groups_none_grads_match_torch(name, backend):
    _run_scenario(name, backend, dtypes=MIXED[::-1], groups_options=GROUPS[name][1],
                  none_grads=True)


# --------------------------------------------------------------------------- teeth

# fastdescent given a slightly different option than torch: the comparison must notice.
WRONG = [
    ("SGD", dict(lr=0.05, momentum=0.9), dict(momentum=0.85)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3), dict(dampening=0.0)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True), dict(nesterov=False)),
    ("SGD", dict(lr=0.05, weight_decay=0.1, maximize=True), dict(maximize=False)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05), dict(lr_decay=0.04)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5), dict(initial_accumulator_value=0.4)),
    ("Adagrad", dict(lr=0.1, eps=0.1), dict(eps=0.09)),
    ("RMSprop", dict(lr=0.01), dict(alpha=0.98)),
    ("RMSprop", dict(lr=0.01, centered=True), dict(centered=False)),
    ("RMSprop", dict(lr=0.01, momentum=0.9), dict(momentum=0.89)),
    ("Adam", dict(lr=0.05), dict(betas=(0.8, 0.999))),
    ("Adam", dict(lr=0.05), dict(betas=(0.9, 0.99))),
    ("Adam", dict(lr=0.05, eps=1e-3), dict(eps=1.1e-3)),
    ("Adam", dict(lr=0.05, weight_decay=0.1), dict(weight_decay=0.09)),
    ("Adam", dict(lr=0.05, amsgrad=True), dict(amsgrad=False)),
    ("Adam", dict(lr=0.05), dict(lr=0.0501)),
    ("AdamW", dict(lr=0.05), dict(weight_decay=0.0)),
    ("AdamW", dict(lr=0.05, maximize=True), dict(maximize=False)),
]


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("name, options, wrong", WRONG,
                         ids=[f"{n}-{'+'.join(f'{k}={v}' for k, v in w.items())}"
                              for n, _, w in WRONG])
def test_tolerance_has_teeth_wrong_option(name, options, wrong, dtype, backend):
    with pytest.raises(AssertionError, match=r"\] params\[\d\] "):
        run_case(name, options, dtype, backend, fd_overrides=wrong, record=False)


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
def test_tolerance_has_teeth_one_element(dtype, backend):
    """A single element off by 3 rtol (relative) is caught; 0.3 rtol is not."""
    pair = run_case("Adam", {"lr": 0.05}, dtype, backend, record=False)
    rtol = RTOL[np.dtype(dtype)]
    big = pair.fd_params[4]
    k = int(np.argmax(np.abs(big)))
    saved = big[k]
    label = ("Adam", "teeth")
    big[k] = saved * (1 + 0.3 * rtol)
    compare_params(pair.fd_params, pair.torch_params, label, backend, record=False)
    big[k] = saved * (1 + 3 * rtol)
    with pytest.raises(AssertionError):
        compare_params(pair.fd_params, pair.torch_params, label, backend, record=False)
    # Near zero the absolute tolerance applies: a few of its units are caught too.
    big[k] = saved
    j = int(np.argmin(np.abs(big)))
    scale = max(1.0, float(np.max(np.abs(pair.torch_params[4].detach().numpy()))))
    big[j] = big[j] + big.dtype.type(3 * ATOL_FRACTION * rtol * scale)
    with pytest.raises(AssertionError):
        compare_params(pair.fd_params, pair.torch_params, label, backend, record=False)


@pytest.mark.parametrize("name", list(FD))
def test_tolerance_has_teeth_schedule_off_by_one(name, backend):
    """A schedule read one step late (step counted from 0) is caught."""
    peak = GROUPS[name][0]["lr"]
    schedule = _warmup_cosine(peak, 10, STEPS + 1)
    rng = np.random.default_rng(seed_of(name, "teeth-schedule"))
    params = initial_params(rng, SHAPES, [np.float64] * len(SHAPES))
    pair = Pair(name, [{"params": params, "lr": lambda step: schedule(step + 1)}],
                GROUPS[name][0], backend)
    with pytest.raises(AssertionError, match=r"\] params\[\d\] "):
        for t in range(1, STEPS + 1):
            pair.step(pair.grads(rng), torch_lrs=[schedule(t)])
            compare_params(pair.fd_params, pair.torch_params, (name, "teeth"), backend,
                           record=False)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_tolerance_has_teeth_zero_instead_of_none(name, backend):
    """Stepping a param with a zero gradient where torch skips it (grad None) is caught."""
    options = {"SGD": {"lr": 0.05, "momentum": 0.9}, "RMSprop": {"lr": 0.01, "momentum": 0.9},
               "Adagrad": {"lr": 0.1, "lr_decay": 0.1}}.get(name, GROUPS[name][0])
    rng = np.random.default_rng(seed_of(name, "teeth-none"))
    params = initial_params(rng, SHAPES, [np.float64] * len(SHAPES))
    pair = Pair(name, [{"params": params}], options, backend)
    with pytest.raises(AssertionError, match=r"\] params\[4\] "):
        for t in range(1, STEPS + 1):
            grads = pair.grads(rng)
            if t % 3 == 0:
                grads[4] = None
            pair.fd.step([np.zeros_like(params[4]) if g is None else g for g in grads])
            for tp, g in zip(pair.torch_params, grads):
                tp.grad = None if g is None else torch.from_numpy(g.copy())
            pair.torch.step()
            compare_params(pair.fd_params, pair.torch_params, (name, "teeth"), backend,
                           record=False)
