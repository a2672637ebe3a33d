"""Property-based tests (hypothesis): random optimizers, options, dtypes, shapes and step
counts, and random bad calls.

* Every compiled backend agrees with the NumPy reference within the float tolerances of
  the oracle tests, params and state alike, whatever the options, the mix of float16,
  float32 and float64 params, the shapes (empty, 0-d, 1-d, 2-d, and above the threading grain), the
  groups, the lr schedule and which gradients are None.
* A bad call (any of BAD_CALLS, on a random optimizer at a random point of its run)
  raises TypeError or ValueError, leaves params and state bit for bit as they were, and the
  next good step is the one of a twin that never saw the bad call.

The number of examples comes from the hypothesis profile (tests/conftest.py:
HYPOTHESIS_PROFILE=ci, the default, or thorough); ``pytest --hypothesis-show-statistics``
prints how many ran.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdescent as fd
from conftest import BACKENDS, assert_same, assert_unchanged, snapshot

COMPILED = [b for b in BACKENDS if b != "numpy"]
# (rtol, atol relative to the largest magnitude in the array): float rounding of fused
# multiply-adds and of Adam's 1/sqrt, accumulated over at most MAX_STEPS steps.
# float16 (stored in float16, computed in float32): a contraction rounds a stored value to the
# neighbouring float16 now and then, about 1e-3 relative, and later steps carry it along.
TOLERANCE = {np.dtype(np.float16): 4e-3, np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-9}
MAX_STEPS = 6
LARGE = 140_000  # above the C++ and numba threading grain (64K elements a thread)

unit = st.floats(0.0, 1.0)
small = st.one_of(st.just(0.0), st.floats(1e-4, 0.1))


@st.composite
def sgd(draw):
    momentum = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.99)))
    nesterov = momentum > 0 and draw(st.booleans())
    return fd.SGD, dict(lr=draw(unit), momentum=momentum,
                        dampening=0.0 if nesterov else draw(unit),
                        weight_decay=draw(small), nesterov=nesterov,
                        maximize=draw(st.booleans()))


@st.composite
def adagrad(draw):
    return fd.Adagrad, dict(lr=draw(unit), lr_decay=draw(small), weight_decay=draw(small),
                            initial_accumulator_value=draw(st.floats(0.0, 1.0)),
                            eps=draw(st.floats(1e-10, 1e-6)), maximize=draw(st.booleans()))


@st.composite
def rmsprop(draw):
    return fd.RMSprop, dict(lr=draw(st.floats(0.0, 0.1)), alpha=draw(st.floats(0.5, 0.999)),
                            eps=draw(st.floats(1e-8, 1e-4)), weight_decay=draw(small),
                            momentum=draw(st.one_of(st.just(0.0), st.floats(0.0, 0.99))),
                            centered=draw(st.booleans()), maximize=draw(st.booleans()))


@st.composite
def adam(draw):
    cls = draw(st.sampled_from([fd.Adam, fd.AdamW]))
    return cls, dict(lr=draw(st.floats(0.0, 0.1)),
                     betas=(draw(st.floats(0.0, 0.99)), draw(st.floats(0.0, 0.999))),
                     eps=draw(st.floats(1e-8, 1e-6)), weight_decay=draw(small),
                     amsgrad=draw(st.booleans()), maximize=draw(st.booleans()))


optimizers = st.one_of(sgd(), adagrad(), rmsprop(), adam())
shapes = st.one_of(st.just(()), st.just((0,)), st.tuples(st.integers(1, 300)),
                   st.tuples(st.integers(0, 20), st.integers(1, 20)),
                   st.just((LARGE,)))
dtypes = st.sampled_from([np.float16, np.float32, np.float64])


@st.composite
def problems(draw):
    """(optimizer class, options, param groups as lists of (shape, dtype), lr schedule
    or None, step count, for each step which params get a gradient, seed)."""
    cls, options = draw(optimizers)
    specs = draw(st.lists(st.tuples(shapes, dtypes), min_size=1, max_size=4))
    # Large arrays are slow on the reference backend: at most one.
    large = [k for k, (shape, _) in enumerate(specs) if shape == (LARGE,)]
    specs = [s for k, s in enumerate(specs) if k not in large[1:]]
    cut = draw(st.integers(0, len(specs) - 1))
    groups = [specs[:cut + 1], specs[cut + 1:]] if cut + 1 < len(specs) else [specs]
    group_lr = draw(st.one_of(st.none(), st.floats(0.0, 0.05)))
    scheduled = draw(st.booleans())
    steps = draw(st.integers(1, MAX_STEPS))
    present = draw(st.lists(st.lists(st.booleans(), min_size=len(specs), max_size=len(specs)),
                            min_size=steps, max_size=steps))
    return cls, options, groups, group_lr, scheduled, present, draw(st.integers(0, 2 ** 32 - 1))


def build(problem, backend):
    cls, options, groups, group_lr, scheduled, _, seed = problem
    rng = np.random.default_rng(seed)
    param_groups = []
    for k, specs in enumerate(groups):
        group = {"params": [rng.standard_normal(shape).astype(dtype) for shape, dtype in specs]}
        if k == 1 and group_lr is not None:
            group["lr"] = group_lr
        param_groups.append(group)
    options = dict(options)
    if scheduled:
        lr = options["lr"]
        options["lr"] = lambda t: lr / (1.0 + 0.5 * t)
    return cls(param_groups, backend=backend, **options)


def run(opt, problem):
    seed, present = problem[6], problem[5]
    rng = np.random.default_rng(seed + 1)
    for mask in present:
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in opt.params]
        opt.step([g if keep else None for g, keep in zip(grads, mask)])
    return opt


def assert_close(actual, reference, name):
    assert actual.dtype == reference.dtype and actual.shape == reference.shape, name
    if actual.size == 0:
        return
    tol = TOLERANCE[reference.dtype]
    scale = max(1.0, float(np.max(np.abs(reference))))
    np.testing.assert_allclose(actual, reference, rtol=tol, atol=tol * scale, err_msg=name)


@pytest.mark.parametrize("backend", COMPILED)
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(problem=problems())
def test_every_backend_agrees_with_the_numpy_reference(backend, problem):
    reference = run(build(problem, "numpy"), problem)
    opt = run(build(problem, backend), problem)
    assert opt.step_count == reference.step_count
    for i, (p, r) in enumerate(zip(opt.params, reference.params)):
        assert_close(p, r, f"params[{i}]")
    assert opt.state.keys() == reference.state.keys()
    for i, state in reference.state.items():
        assert opt.state[i].keys() == state.keys()
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                assert_close(opt.state[i][key], value, f"state[{i}][{key!r}]")
            else:
                assert opt.state[i][key] == value


# ------------------------------------------------------------------------------ bad calls


def _other_dtype(g):
    return g.astype(np.float32 if g.dtype == np.float64 else np.float64)


def _strided(g):
    out = np.zeros(g.shape + (2,), g.dtype)[..., 0]
    out[...] = g
    return out


def _some_state(opt, i):
    """A state array of params[i], or None when it has none yet."""
    arrays = [v for v in opt.state.get(i, {}).values() if isinstance(v, np.ndarray)]
    return arrays[0] if arrays else None


def _grad_variants(opt, g, i):
    """Bad gradients for params[i] (whose good gradient is ``g``)."""
    variants = {
        "a list": g.tolist(),
        "a number": 0.5,
        "None-like string": "none",
        "other float dtype": _other_dtype(g),
        "int": g.astype(np.int64),
        "float16 (float32 for a float16 param)": g.astype(
            np.float32 if g.dtype == np.float16 else np.float16),
        "complex": g.astype(np.complex128),
        "big-endian": g.astype(g.dtype.newbyteorder(">")),
        "extra axis": g[None],
        "one more element": np.zeros(g.size + 1, g.dtype),
    }
    if g.size == 0:  # an empty array shares no memory: aliasing is no error
        return variants
    variants["its param"] = opt.params[i]
    variants["a view of its param"] = opt.params[i][...]
    if g.ndim >= 1 and g.size > 1:
        variants["strided"] = _strided(g)
        variants["flattened"] = g.reshape(-1)[:, None] if g.ndim == 1 else g.reshape(-1)
    if g.ndim == 2 and g.shape[0] > 1 and g.shape[1] > 1:
        variants["fortran order"] = np.asfortranarray(g)
    variants["NaN with check_finite"] = ("finite", np.nan)
    variants["infinity with check_finite"] = ("finite", -np.inf)
    state = _some_state(opt, i)
    if state is not None:
        variants["its own state array"] = state
    for j, other in enumerate(opt.params):
        if j != i and other.dtype == g.dtype and other.size == g.size:
            variants["a view of another param"] = other.reshape(g.shape)
            other_state = _some_state(opt, j)
            if other_state is not None:
                variants["another param's state"] = other_state.reshape(g.shape)
    return variants


BAD_OPTIONS = [("lr", -0.1), ("lr", float("nan")), ("lr", float("inf")), ("lr", "0.1"),
               ("lr", None), ("maximize", 1), ("maximize", "yes")]
BAD_OWN_OPTIONS = {
    fd.SGD: [("momentum", -0.5), ("weight_decay", -1.0), ("nesterov", 0)],
    fd.Adagrad: [("lr_decay", -1.0), ("eps", -1e-8), ("initial_accumulator_value", -1.0)],
    fd.RMSprop: [("alpha", 1.5), ("alpha", -0.1), ("eps", -1.0), ("momentum", -0.1),
                 ("centered", None)],
    fd.Adam: [("betas", (1.0, 0.999)), ("betas", (0.9, -0.1)), ("betas", (0.9,)),
              ("betas", 0.9), ("eps", -1.0), ("weight_decay", -0.1), ("amsgrad", "no")],
}
BAD_OWN_OPTIONS[fd.AdamW] = BAD_OWN_OPTIONS[fd.Adam]


def _bad_state_dicts(opt):
    """Damaged copies of a good state dict of ``opt``."""
    good = opt.state_dict()
    out = {}

    def damaged(name, change):
        copy = opt.state_dict()
        change(copy)
        out[name] = copy

    damaged("no state", lambda d: d.pop("state"))
    damaged("no param_groups", lambda d: d.pop("param_groups"))
    damaged("a group too many", lambda d: d["param_groups"].append(dict(d["param_groups"][0])))
    damaged("negative step_count", lambda d: d.update(step_count=-1))
    damaged("step_count a float", lambda d: d.update(step_count=2.5))
    damaged("state of no param", lambda d: d["state"].update({99: {}}))
    damaged("bad group option", lambda d: d["param_groups"][0].update(lr=-1.0))
    if good["state"]:
        i = next(iter(good["state"]))

        def each_array(change):
            def apply(d):
                for key, value in d["state"][i].items():
                    if isinstance(value, np.ndarray):
                        d["state"][i][key] = change(value)
                        return
                d["state"][i]["nonsense"] = 1  # no arrays: still refused (unknown key)
            return apply

        damaged("state array of another shape", each_array(lambda a: np.zeros(a.size + 1,
                                                                               a.dtype)))
        damaged("state array of another dtype", each_array(_other_dtype))
        damaged("state array a list", each_array(lambda a: a.tolist()))
        damaged("unknown state key", lambda d: d["state"][i].update(nonsense=np.zeros(1)))
        damaged("state not a dict", lambda d: d["state"].update({i: [1, 2]}))
    out["not a dict"] = [good]
    return out


@st.composite
def bad_calls(draw, opt):
    """(description, call, repair or None) for one bad call on ``opt``."""
    n = len(opt.params)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    good = [rng.standard_normal(p.shape).astype(p.dtype) for p in opt.params]
    kind = draw(st.sampled_from(["grad", "grads", "check_finite", "read-only param",
                                 "read-only state", "bad state array", "option",
                                 "load_state_dict"]))
    if kind == "grad":
        i = draw(st.integers(0, n - 1))
        variants = _grad_variants(opt, good[i], i)
        name = draw(st.sampled_from(sorted(variants)))
        grads, check = list(good), False
        if isinstance(variants[name], tuple):  # a non-finite value at a random element
            flat = good[i].copy().reshape(-1)
            flat[draw(st.integers(0, flat.size - 1))] = variants[name][1]
            grads[i], check = flat.reshape(good[i].shape), True
        else:
            grads[i] = variants[name]
        return f"grads[{i}]: {name}", lambda: opt.step(grads, check_finite=check), None
    if kind == "grads":
        variants = {"one too few": good[:-1], "one too many": good + [good[0]],
                    "a dict": dict(enumerate(good)), "a generator": (g for g in good),
                    "None": None, "a string": "grads"}
        if n > 1:
            variants["a bare array"] = good[0]
        name = draw(st.sampled_from(sorted(variants)))
        return f"grads: {name}", lambda: opt.step(variants[name]), None
    if kind == "check_finite":
        flag = draw(st.sampled_from([1, 0, "yes", None, 1.0]))
        return f"check_finite={flag!r}", lambda: opt.step(good, check_finite=flag), None
    if kind == "read-only param":
        i = draw(st.integers(0, n - 1))
        opt.params[i].flags.writeable = False

        def repair():
            opt.params[i].flags.writeable = True
        return f"params[{i}] read-only", lambda: opt.step(good), repair
    if kind in ("read-only state", "bad state array"):
        stateful = [(i, k) for i, s in opt.state.items() for k, v in s.items()
                    if isinstance(v, np.ndarray)]
        if not stateful:
            return draw(bad_calls(opt))
        i, key = draw(st.sampled_from(stateful))
        array = opt.state[i][key]
        if kind == "read-only state":
            array.flags.writeable = False

            def repair():
                array.flags.writeable = True
            return f"state[{i}][{key!r}] read-only", lambda: opt.step(good), repair
        replacements = ["shape", "dtype", "list", "read-only"]
        if array.size > 1:  # an empty array is contiguous and overlaps nothing
            replacements += ["strided", "its param"]
        replacement = draw(st.sampled_from(replacements))
        bad = {"shape": lambda: np.zeros(array.size + 1, array.dtype),
               "dtype": lambda: _other_dtype(array),
               "list": lambda: array.tolist(),
               "strided": lambda: _strided(array),
               "read-only": lambda: np.array(array, copy=True).view(),
               "its param": lambda: opt.params[i]}[replacement]()
        if replacement == "read-only":
            bad.flags.writeable = False
        opt.state[i][key] = bad

        def repair():
            opt.state[i][key] = array
        return f"state[{i}][{key!r}] replaced: {replacement}", lambda: opt.step(good), repair
    if kind == "option":
        cls = type(opt)
        key, value = draw(st.sampled_from(BAD_OPTIONS + BAD_OWN_OPTIONS[cls]))
        gi = draw(st.integers(0, len(opt.param_groups) - 1))
        group = opt.param_groups[gi]
        saved = group[key]
        group[key] = value

        def repair():
            group[key] = saved
        return f"param_groups[{gi}][{key!r}] = {value!r}", lambda: opt.step(good), repair
    variants = _bad_state_dicts(opt)
    name = draw(st.sampled_from(sorted(variants)))
    return f"load_state_dict: {name}", lambda: opt.load_state_dict(variants[name]), None


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(problem=problems(), data=st.data())
def test_a_bad_call_raises_and_changes_nothing(backend, problem, data):
    opt, twin = run(build(problem, backend), problem), run(build(problem, backend), problem)
    for _ in range(data.draw(st.integers(1, 3), label="bad calls in a row")):
        description, call, repair = data.draw(bad_calls(opt), label="bad call")
        before = snapshot(opt)
        with pytest.raises((TypeError, ValueError)):
            call()
        assert_unchanged(opt, before)
        if repair is not None:
            repair()
    rng = np.random.default_rng(problem[6] + 2)
    grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in opt.params]
    opt.step(grads)
    twin.step(grads)
    assert_same(opt, twin)
