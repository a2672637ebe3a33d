"""Bad input: every rule of DESIGN.md's "Bad input" section.

A bad call raises TypeError or ValueError whose message names the offending argument (and
its index), and it is all or nothing: every param and every state array is left exactly as
it was, and the next good step gives the same bits as an optimizer that never saw the bad
call.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import fastdescent as fd
from conftest import assert_same, assert_unchanged, snapshot

# Optimizer, options that create every state array it can keep, and one of its state keys.
OPTIMIZERS = {
    "SGD": (fd.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01), "momentum_buffer"),
    "Adagrad": (fd.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                 initial_accumulator_value=0.1), "sum"),
    "RMSprop": (fd.RMSprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01),
                "square_avg"),
    "Adam": (fd.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01), "exp_avg"),
    "AdamW": (fd.AdamW, dict(lr=0.01, amsgrad=True), "exp_avg"),
}
# params[0] and params[2] have the same shape; params[1] has as many elements as they do, so
# a reshaped view of one param can pose as the gradient of another.
SHAPES = [(6,), (2, 3), (6,)]


@pytest.fixture(params=list(OPTIMIZERS))
def name(request):
    return request.param


def make_params(dtype=np.float64, shapes=SHAPES, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def make_grads(params, t):
    rng = np.random.default_rng(1000 + t)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


_DEFAULT = object()


def build(name, backend, params=_DEFAULT, **options):
    cls, defaults, _ = OPTIMIZERS[name]
    params = make_params() if params is _DEFAULT else params
    return cls(params, backend=backend, **{**defaults, **options})


def warm(opt, steps=3):
    for t in range(steps):
        opt.step(make_grads(opt.params, t))
    return opt


@pytest.fixture
def pair(name, backend):
    """Two identical optimizers after three good steps: one gets the bad call, one not."""
    opt, twin = warm(build(name, backend)), warm(build(name, backend))
    assert_same(opt, twin)
    assert opt.state, "the good steps created state"
    return opt, twin


def assert_all_or_nothing(opt, twin, bad_call, exc, fragment, repair=None):
    """``bad_call`` raises ``exc`` naming ``fragment``, changes nothing, and (after
    ``repair`` undoes the user's tampering, if any) the next good step matches ``twin``."""
    before = snapshot(opt)
    with pytest.raises(exc, match=re.escape(fragment)):
        bad_call()
    assert_unchanged(opt, before)
    if repair is not None:
        repair()
    grads = make_grads(opt.params, 99)
    opt.step(grads)
    twin.step(grads)
    assert_same(opt, twin)


def state_key(opt):
    return OPTIMIZERS[type(opt).__name__][2]


# ---------------------------------------------------------------------------- construction


def good(dtype=np.float64):
    return np.zeros(4, dtype=dtype)


def noncontiguous():
    return np.zeros(8)[::2]


def readonly():
    a = np.zeros(4)
    a.flags.writeable = False
    return a


BAD_PARAMS = {
    "list": (lambda: [0.0, 1.0, 2.0, 3.0], TypeError, "params[1] must be a numpy.ndarray"),
    "int dtype": (lambda: np.zeros(4, dtype=np.int64), TypeError, "params[1] must have dtype"),
    "long double": (lambda: np.zeros(4, dtype=np.longdouble), TypeError,
                    "params[1] must have dtype"),
    "big-endian": (lambda: np.zeros(4, dtype=">f8"), TypeError, "params[1] must have dtype"),
    "complex": (lambda: np.zeros(4, dtype=np.complex128), TypeError, "params[1]"),
    "strided": (noncontiguous, ValueError, "params[1] must be C-contiguous"),
    "fortran order": (lambda: np.asfortranarray(np.zeros((3, 2))), ValueError,
                      "params[1] must be C-contiguous"),
    "read-only": (readonly, ValueError, "params[1] must be writable"),
}


@pytest.mark.parametrize("kind", list(BAD_PARAMS))
def test_bad_param_is_refused_by_name_and_index(name, backend, kind):
    make_bad, exc, fragment = BAD_PARAMS[kind]
    first, last = good(), good()
    with pytest.raises(exc, match=re.escape(fragment)):
        build(name, backend, params=[first, make_bad(), last])
    assert not first.any() and not last.any()


@pytest.mark.parametrize("kind", list(BAD_PARAMS))
def test_bad_param_in_a_later_group_is_numbered_across_groups(name, backend, kind):
    make_bad, exc, fragment = BAD_PARAMS[kind]
    with pytest.raises(exc, match=re.escape(fragment.replace("params[1]", "params[2]"))):
        build(name, backend, params=[{"params": [good(), good()]}, {"params": [make_bad()]}])


def test_same_param_twice_is_refused(name, backend):
    a = good()
    with pytest.raises(ValueError, match=re.escape("params[1] shares memory with params[0]")):
        build(name, backend, params=[a, a])


def test_same_param_in_two_groups_is_refused(name, backend):
    a = good()
    with pytest.raises(ValueError, match=re.escape("params[2] shares memory with params[0]")):
        build(name, backend, params=[{"params": [a, good()]}, {"params": [a]}])


def test_overlapping_views_of_one_buffer_are_refused(name, backend):
    buffer = np.zeros(10)
    with pytest.raises(ValueError, match=re.escape("params[2] shares memory with params[0]")):
        build(name, backend, params=[buffer[0:6], good(), buffer[4:10]])


def test_disjoint_views_of_one_buffer_are_separate_params(name, backend):
    buffer = np.zeros(10)
    opt = build(name, backend, params=[buffer[0:5], buffer[5:10]])
    opt.step([np.ones(5), np.full(5, 2.0)])
    assert (buffer != 0).all()


def test_empty_params_is_refused(name, backend):
    with pytest.raises(ValueError, match="params is empty"):
        build(name, backend, params=[])


@pytest.mark.parametrize("params", [np.zeros(3), np.zeros((2, 3))], ids=["1d", "2d"])
def test_a_bare_array_as_params_is_refused(name, backend, params):
    with pytest.raises(TypeError, match=r"params must be a list .* not a single array"):
        build(name, backend, params=params)


@pytest.mark.parametrize("params", [None, 3.0, "w", {"params": [np.zeros(3)]}],
                         ids=["None", "float", "str", "one dict"])
def test_params_that_is_not_a_list_is_refused(name, backend, params):
    with pytest.raises(TypeError, match="params must be a list"):
        build(name, backend, params=params)


@pytest.mark.parametrize("first_group", [False, True], ids=["array first", "group first"])
def test_a_mix_of_arrays_and_groups_is_refused(name, backend, first_group):
    params = [good(), {"params": [good()]}]
    with pytest.raises(TypeError, match="params must be all arrays or all param groups"):
        build(name, backend, params=params[::-1] if first_group else params)


def test_a_group_without_params_is_refused(name, backend):
    with pytest.raises(ValueError, match=re.escape("param_groups[1] has no 'params' key")):
        build(name, backend, params=[{"params": [good()]}, {"lr": 0.1}])


def test_a_group_whose_params_is_not_a_list_is_refused(name, backend):
    with pytest.raises(TypeError, match=re.escape("param_groups[0]['params'] must be a list")):
        build(name, backend, params=[{"params": 3.0}])


# Bad hyperparameters: (optimizer, option, value, error, what the message names after the
# option's name).
COMMON = [("lr", -0.1, ValueError, ""), ("lr", float("nan"), ValueError, ""),
          ("lr", float("inf"), ValueError, ""), ("lr", "0.1", TypeError, ""),
          ("lr", None, TypeError, ""), ("lr", True, TypeError, ""),
          ("lr", [0.1], TypeError, ""), ("weight_decay", -1e-3, ValueError, ""),
          ("weight_decay", float("nan"), ValueError, ""), ("maximize", 1, TypeError, ""),
          ("maximize", "yes", TypeError, "")]
OWN = {
    "SGD": [("momentum", -0.5, ValueError, ""), ("momentum", "0.9", TypeError, ""),
            ("dampening", float("nan"), ValueError, ""), ("nesterov", 1, TypeError, ""),
            ("nesterov", None, TypeError, "")],
    "Adagrad": [("lr_decay", -0.1, ValueError, ""), ("eps", -1e-10, ValueError, ""),
                ("eps", float("nan"), ValueError, ""),
                ("initial_accumulator_value", -0.1, ValueError, "")],
    "RMSprop": [("alpha", -0.01, ValueError, ""), ("alpha", 1.01, ValueError, ""),
                ("eps", -1e-8, ValueError, ""), ("momentum", -0.9, ValueError, ""),
                ("centered", 0, TypeError, ""), ("centered", "False", TypeError, "")],
    "Adam": [("betas", (1.0, 0.999), ValueError, "[0]"),
             ("betas", (-0.1, 0.999), ValueError, "[0]"),
             ("betas", (0.9, 1.0), ValueError, "[1]"), ("betas", (0.9, 1.5), ValueError, "[1]"),
             ("betas", (0.9, float("nan")), ValueError, "[1]"),
             ("betas", (0.9, "0.99"), TypeError, "[1]"), ("betas", 0.9, TypeError, ""),
             ("betas", (0.9,), TypeError, ""), ("betas", (0.9, 0.99, 0.999), TypeError, ""),
             ("eps", -1e-8, ValueError, ""), ("amsgrad", 0, TypeError, ""),
             ("amsgrad", "no", TypeError, "")],
}
OWN["AdamW"] = OWN["Adam"]
BAD_OPTIONS = [(opt, *case) for opt in OPTIMIZERS for case in COMMON + OWN[opt]]


def _id(case):
    opt, key, value, *_ = case
    return f"{opt}-{key}={value!r}"


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=[_id(c) for c in BAD_OPTIONS])
def test_bad_hyperparameter_is_refused_by_name(backend, case):
    name, key, value, exc, suffix = case
    cls = OPTIMIZERS[name][0]
    with pytest.raises(exc, match="^" + re.escape(f"{key}{suffix}") + "[ =]"):
        cls([good()], backend=backend, **{key: value})


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=[_id(c) for c in BAD_OPTIONS])
def test_bad_hyperparameter_in_a_group_is_refused_by_group_and_name(backend, case):
    name, key, value, exc, suffix = case
    cls = OPTIMIZERS[name][0]
    with pytest.raises(exc, match="^" + re.escape(f"param_groups[1][{key!r}]{suffix}") + "[ =]"):
        cls([{"params": [good()]}, {"params": [good()], key: value}], backend=backend)


@pytest.mark.parametrize("options", [dict(momentum=0.0, nesterov=True),
                                     dict(momentum=0.9, dampening=0.1, nesterov=True)],
                         ids=["no momentum", "dampening"])
def test_nesterov_needs_momentum_and_no_dampening(backend, options):
    with pytest.raises(ValueError, match=re.escape("nesterov")):
        fd.SGD([good()], backend=backend, **options)
    with pytest.raises(ValueError, match=re.escape("param_groups[0]['nesterov']")):
        fd.SGD([{"params": [good()], **options}], backend=backend)


# Positive controls: the boundaries of each range are accepted, so the checks above refuse
# only what is out of range.
LIMITS = [("SGD", dict(lr=0, momentum=0, dampening=-1.0, weight_decay=0, maximize=np.True_)),
          ("SGD", dict(lr=np.float32(0.5), momentum=0.9, nesterov=True)),
          ("Adagrad", dict(lr=1, lr_decay=0, initial_accumulator_value=0)),
          ("RMSprop", dict(alpha=0, momentum=0)), ("RMSprop", dict(alpha=1, centered=True)),
          ("Adam", dict(betas=(0, 0), weight_decay=0)), ("Adam", dict(betas=[0.5, 0.5])),
          ("AdamW", dict(betas=(0.0, 0.999), amsgrad=np.False_))]


@pytest.mark.parametrize("name, options", LIMITS, ids=[f"{n}-{o}" for n, o in LIMITS])
def test_hyperparameters_at_the_limits_are_accepted(backend, name, options):
    w = np.ones(3)
    opt = OPTIMIZERS[name][0]([w], backend=backend, **options)
    opt.step([np.full(3, 0.5)])
    assert opt.step_count == 1


def test_add_param_group_failure_changes_nothing(name, backend):
    opt = warm(build(name, backend))
    before = snapshot(opt)
    n_groups = len(opt.param_groups)
    with pytest.raises(ValueError, match=re.escape("params[4] shares memory with params[0]")):
        opt.add_param_group({"params": [good(), opt.params[0]]})
    with pytest.raises(ValueError, match=re.escape("param_groups[1]['lr']")):
        opt.add_param_group({"params": [good()], "lr": -1.0})
    with pytest.raises(TypeError, match=re.escape("params[4] must have dtype")):
        opt.add_param_group({"params": [good(), good(np.int32)]})
    with pytest.raises(ValueError, match=re.escape("param_groups[1] has no 'params' key")):
        opt.add_param_group({"lr": 0.1})
    assert len(opt.param_groups) == n_groups and len(opt.params) == 3
    assert_unchanged(opt, before)
    grads = make_grads(opt.params, 5)
    with pytest.raises(ValueError, match="grads has 4 entries but the optimizer has 3"):
        opt.step(grads + [np.zeros(4)])


# ---------------------------------------------------------------------------- step: the list


@pytest.mark.parametrize("count", [0, 2, 4])
def test_grads_of_the_wrong_length(pair, count):
    opt, twin = pair
    grads = (make_grads(opt.params, 7) * 2)[:count]
    assert_all_or_nothing(opt, twin, lambda: opt.step(grads), ValueError,
                          f"grads has {count} entries but the optimizer has 3 params")


@pytest.mark.parametrize("grads", [
    lambda ps: (g for g in make_grads(ps, 7)),
    lambda ps: dict(enumerate(make_grads(ps, 7))),
    lambda ps: set(),
    lambda ps: 1.0,
    lambda ps: None,
    lambda ps: "grads",
], ids=["generator", "dict", "set", "float", "None", "str"])
def test_grads_that_is_not_a_sequence(pair, grads):
    opt, twin = pair
    assert_all_or_nothing(opt, twin, lambda: opt.step(grads(opt.params)), TypeError,
                          "grads must be a list or tuple")


def test_a_bare_array_when_there_are_several_params(pair):
    opt, twin = pair
    assert_all_or_nothing(opt, twin, lambda: opt.step(np.ones(6)), TypeError,
                          "a bare array is accepted only when there is one param")


# ---------------------------------------------------------------------------- step: one grad


def _noncontiguous(g):
    out = np.zeros(g.shape + (2,), dtype=g.dtype)[..., 0]
    out[...] = g
    return out


def _other_dtype(g):
    return g.astype(np.float32 if g.dtype == np.float64 else np.float64)


def _view_of(array, shape):
    view = array.reshape(shape)
    assert np.shares_memory(view, array)
    return view


# kind -> (make the bad grad for params[pos], error, message with {pos})
BAD_GRADS = {
    "list": (lambda opt, g, pos: g.tolist(), TypeError, "grads[{pos}] must be a numpy.ndarray"),
    "float": (lambda opt, g, pos: 0.5, TypeError, "grads[{pos}] must be a numpy.ndarray"),
    "other float dtype": (lambda opt, g, pos: _other_dtype(g), TypeError,
                          "grads[{pos}] has dtype"),
    "int dtype": (lambda opt, g, pos: g.astype(np.int64), TypeError,
                  "grads[{pos}] must have dtype float16, float32 or float64"),
    # float16 params are supported; a float16 gradient for a float32/float64 param is not
    "float16": (lambda opt, g, pos: g.astype(np.float16), TypeError,
                "grads[{pos}] has dtype float16 but params[{pos}] has dtype"),
    "big-endian": (lambda opt, g, pos: g.astype(g.dtype.newbyteorder(">")), TypeError,
                   "grads[{pos}] must have dtype float16, float32 or float64 in native byte "
                   "order"),
    "flattened shape": (lambda opt, g, pos: g.reshape(-1)[:, None], ValueError,
                        "grads[{pos}] has shape"),
    "transposed shape": (lambda opt, g, pos: np.ascontiguousarray(g.reshape(3, 2)), ValueError,
                         "grads[{pos}] has shape"),
    "too long": (lambda opt, g, pos: np.zeros(g.size + 1, g.dtype), ValueError,
                 "grads[{pos}] has shape"),
    "non-contiguous": (lambda opt, g, pos: _noncontiguous(g), ValueError,
                       "grads[{pos}] must be C-contiguous"),
    "its param": (lambda opt, g, pos: opt.params[pos], ValueError,
                  "grads[{pos}] shares memory with params[{pos}]"),
    "a view of its param": (lambda opt, g, pos: opt.params[pos][...], ValueError,
                            "grads[{pos}] shares memory with params[{pos}]"),
    "another param": (lambda opt, g, pos: _view_of(opt.params[0], g.shape), ValueError,
                      "grads[{pos}] shares memory with params[0]"),
    "its own state": (lambda opt, g, pos: opt.state[pos][state_key(opt)], ValueError,
                      "grads[{pos}] shares memory with state[{pos}]['{key}']"),
    "another param's state": (
        lambda opt, g, pos: _view_of(opt.state[0][state_key(opt)], g.shape), ValueError,
        "grads[{pos}] shares memory with state[0]['{key}']"),
}


@pytest.mark.parametrize("pos", [1, 2], ids=["middle", "last"])
@pytest.mark.parametrize("kind", list(BAD_GRADS))
def test_bad_grad_changes_nothing(pair, kind, pos):
    """The bad grad comes after good ones: a step that updated params as it went would
    have changed params[0] (and params[1]) before finding it."""
    opt, twin = pair
    make_bad, exc, fragment = BAD_GRADS[kind]
    grads = make_grads(opt.params, 7)
    grads[pos] = make_bad(opt, grads[pos], pos)
    assert_all_or_nothing(opt, twin, lambda: opt.step(grads), exc,
                          fragment.format(pos=pos, key=state_key(opt)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pos", [0, 1], ids=["own param", "other param"])
def test_grad_overlapping_a_param_in_part_is_refused(name, backend, dtype, pos):
    buffer, other = make_params(dtype, shapes=[(12,), (6,)])
    opt = build(name, backend, params=[buffer[:6], other])
    twin = build(name, backend, params=[buffer[:6].copy(), other.copy()])
    warm(opt), warm(twin)
    grads = make_grads(opt.params, 7)
    grads[pos] = buffer[3:9]  # the second half of params[0] and memory of no param
    assert_all_or_nothing(opt, twin, lambda: opt.step(grads),
                          ValueError, f"grads[{pos}] shares memory with params[0]")


def test_the_same_grad_for_two_params_is_fine(name, backend):
    opt, twin = warm(build(name, backend)), warm(build(name, backend))
    g = make_grads(opt.params, 7)
    opt.step([g[0], g[1], g[0]])
    twin.step([g[0], g[1], g[0].copy()])
    assert_same(opt, twin)


# ---------------------------------------------------------------------------- check_finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("pos", [1, 2], ids=["middle", "last"])
def test_check_finite_refuses_a_non_finite_grad(name, backend, dtype, value, pos):
    opt = warm(build(name, backend, params=make_params(dtype)))
    twin = warm(build(name, backend, params=make_params(dtype)))
    grads = make_grads(opt.params, 7)
    grads[pos].flat[-1] = value  # the last element: the tail of a vectorized scan
    assert_all_or_nothing(opt, twin, lambda: opt.step(grads, check_finite=True), ValueError,
                          f"grads[{pos}] holds NaN or infinity")


@pytest.mark.parametrize("n", [1, 3, 8, 17, 1000])
def test_check_finite_finds_nan_anywhere_in_a_long_grad(backend, n):
    w = np.zeros(n, np.float32)
    opt = fd.SGD([w], lr=0.1, backend=backend)
    for at in sorted({0, n // 2, n - 1}):
        g = np.ones(n, np.float32)
        g[at] = np.nan
        with pytest.raises(ValueError, match=re.escape("grads[0] holds NaN")):
            opt.step([g], check_finite=True)
    assert not w.any() and opt.step_count == 0


def test_check_finite_with_finite_grads_steps_normally(pair):
    opt, twin = pair
    for t in range(3):
        grads = make_grads(opt.params, 10 + t)
        opt.step(grads, check_finite=True)
        twin.step(grads)
    assert_same(opt, twin)
    assert opt.step_count == 6


def test_check_finite_skips_none_entries(pair):
    opt, twin = pair
    grads = make_grads(opt.params, 7)
    grads[0] = None
    opt.step(grads, check_finite=True)
    twin.step(grads)
    assert_same(opt, twin)


def test_without_check_finite_a_nan_grad_is_stepped(pair):
    """Documented: non-finite gradients are detected only on request."""
    opt, twin = pair
    grads = make_grads(opt.params, 7)
    grads[1][0, 0] = np.nan
    with np.errstate(invalid="ignore"):
        opt.step(grads)  # check_finite=False is the default
    assert opt.step_count == twin.step_count + 1
    assert np.isnan(opt.params[1][0, 0])
    assert np.isfinite(opt.params[0]).all() and np.isfinite(opt.params[2]).all()
    assert opt.params[0].tobytes() != twin.params[0].tobytes()


@pytest.mark.parametrize("flag", [1, 0, "yes", None, 1.0], ids=repr)
def test_check_finite_must_be_a_bool(pair, flag):
    opt, twin = pair
    grads = make_grads(opt.params, 7)
    assert_all_or_nothing(opt, twin, lambda: opt.step(grads, check_finite=flag), TypeError,
                          "check_finite must be True or False")


# ---------------------------------------------------------------------------- tampering


@pytest.mark.parametrize("value, exc", [(-0.1, ValueError), (float("nan"), ValueError),
                                        (float("inf"), ValueError), ("0.1", TypeError),
                                        (None, TypeError)], ids=repr)
def test_group_lr_edited_to_an_invalid_value(pair, value, exc):
    opt, twin = pair
    good_lr = opt.param_groups[0]["lr"]

    def repair():
        opt.param_groups[0]["lr"] = good_lr

    opt.param_groups[0]["lr"] = value
    assert_all_or_nothing(opt, twin, lambda: opt.step(make_grads(opt.params, 7)), exc,
                          "param_groups[0]['lr']", repair)


EDITS = {"SGD": ("momentum", -1.0), "Adagrad": ("eps", -1.0), "RMSprop": ("alpha", 2.0),
         "Adam": ("betas", (0.9, 1.0)), "AdamW": ("betas", (0.9, 1.0))}


def test_group_option_edited_to_an_invalid_value(pair):
    opt, twin = pair
    key, value = EDITS[type(opt).__name__]
    good_value = opt.param_groups[0][key]

    def repair():
        opt.param_groups[0][key] = good_value

    opt.param_groups[0][key] = value
    assert_all_or_nothing(opt, twin, lambda: opt.step(make_grads(opt.params, 7)), ValueError,
                          f"param_groups[0][{key!r}]", repair)


class Schedule:
    """lr = 0.01 / t, except ``bad`` at step ``at`` while ``poisoned``."""

    def __init__(self, bad, at):
        self.bad, self.at, self.poisoned, self.calls = bad, at, True, []

    def __call__(self, t):
        self.calls.append(t)
        return self.bad if (self.poisoned and t == self.at) else 0.01 / t


@pytest.mark.parametrize("bad, exc", [(-0.01, ValueError), (float("nan"), ValueError),
                                      (float("inf"), ValueError), ("0.01", TypeError),
                                      (None, TypeError), (np.array([0.1]), TypeError)],
                         ids=["negative", "nan", "inf", "str", "None", "array"])
def test_lr_schedule_returning_an_invalid_value(name, backend, bad, exc):
    schedule = Schedule(bad, at=4)
    opt = warm(build(name, backend, lr=schedule))
    twin = warm(build(name, backend, lr=Schedule(bad, at=-1)))
    assert schedule.calls == [1, 2, 3]

    def repair():
        schedule.poisoned = False

    assert_all_or_nothing(opt, twin, lambda: opt.step(make_grads(opt.params, 7)), exc,
                          "param_groups[0]['lr'] (the value its schedule returned for step 4)",
                          repair)
    assert schedule.calls == [1, 2, 3, 4, 4]


@pytest.mark.parametrize("pos", [0, 1, 2])
def test_param_made_read_only_after_construction(pair, pos):
    opt, twin = pair
    param = opt.params[pos]

    def repair():
        param.flags.writeable = True

    param.flags.writeable = False
    assert_all_or_nothing(opt, twin, lambda: opt.step(make_grads(opt.params, 7)), ValueError,
                          f"params[{pos}] must be writable", repair)


def _readonly_copy(a):
    b = a.copy()
    b.flags.writeable = False
    return b


# kind -> (the replacement for state[pos][key], given the optimizer and the original array;
# error; message)
STATE_EDITS = {
    "wrong shape": (lambda opt, pos, a: np.zeros(a.size + 1, a.dtype), ValueError,
                    "state[{pos}]['{key}'] has shape"),
    "same size, wrong shape": (lambda opt, pos, a: a.reshape(a.size, 1).copy(), ValueError,
                               "state[{pos}]['{key}'] has shape"),
    "wrong dtype": (lambda opt, pos, a: a.astype(np.float32), TypeError,
                    "state[{pos}]['{key}'] has dtype"),
    "list": (lambda opt, pos, a: a.tolist(), TypeError,
             "state[{pos}]['{key}'] must be a numpy.ndarray"),
    "non-contiguous": (lambda opt, pos, a: _noncontiguous(a), ValueError,
                       "state[{pos}]['{key}'] must be C-contiguous"),
    "read-only": (lambda opt, pos, a: _readonly_copy(a), ValueError,
                  "state[{pos}]['{key}'] must be writable"),
    "its param": (lambda opt, pos, a: opt.params[pos], ValueError,
                  "state[{pos}]['{key}'] shares memory with params[{pos}]"),
    "another param's state": (lambda opt, pos, a: opt.state[0][state_key(opt)].reshape(a.shape),
                              ValueError, "state[{pos}]['{key}'] shares memory with state[0]"),
}


@pytest.mark.parametrize("pos", [1, 2], ids=["middle", "last"])
@pytest.mark.parametrize("kind", list(STATE_EDITS))
def test_state_array_replaced_by_a_bad_one(pair, kind, pos):
    opt, twin = pair
    key = state_key(opt)
    original = opt.state[pos][key]
    make_bad, exc, fragment = STATE_EDITS[kind]
    opt.state[pos][key] = make_bad(opt, pos, original)

    def repair():
        opt.state[pos][key] = original

    assert_all_or_nothing(opt, twin, lambda: opt.step(make_grads(opt.params, 7)), exc,
                          fragment.format(pos=pos, key=key), repair)


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if "step" in OPTIMIZERS[n][0]._state_keys])
def test_state_step_replaced_by_a_bad_count(name, backend):
    opt, twin = warm(build(name, backend)), warm(build(name, backend))
    for bad in (-1, 2.0, "3", None):
        opt.state[2]["step"] = bad
        with pytest.raises(ValueError, match=re.escape("state[2]['step'] must be a whole")):
            opt.step(make_grads(opt.params, 7))
    opt.state[2]["step"] = twin.state[2]["step"]
    assert_same(opt, twin)


def test_unknown_state_key_added_by_the_user(pair):
    opt, twin = pair
    opt.state[1]["velocity"] = np.zeros(opt.params[1].shape)

    def repair():
        del opt.state[1]["velocity"]

    assert_all_or_nothing(opt, twin, lambda: opt.step(make_grads(opt.params, 7)), ValueError,
                          "state[1]['velocity']", repair)


# ---------------------------------------------------------------------------- several groups


def build_groups(name, backend, lr=None):
    """Group 0 holds params 0 and 1, group 1 holds param 2 (with its own lr)."""
    params = make_params()
    cls, defaults, _ = OPTIMIZERS[name]
    second = {"params": [params[2]], "lr": 0.05 if lr is None else lr}
    return warm(cls([{"params": params[:2]}, second], backend=backend, **defaults))


def _edit_lr(opt):
    good_lr = opt.param_groups[1]["lr"]
    opt.param_groups[1]["lr"] = -1.0
    return lambda: opt.param_groups[1].__setitem__("lr", good_lr), \
        (ValueError, "param_groups[1]['lr']")


def _edit_state(opt):
    key = state_key(opt)
    original = opt.state[2][key]
    opt.state[2][key] = original.astype(np.float32)
    return lambda: opt.state[2].__setitem__(key, original), (TypeError, f"state[2][{key!r}]")


def _read_only(opt):
    opt.params[2].flags.writeable = False
    return lambda: setattr(opt.params[2].flags, "writeable", True), \
        (ValueError, "params[2] must be writable")


@pytest.mark.parametrize("tamper", [_edit_lr, _edit_state, _read_only],
                         ids=["lr", "state", "read-only param"])
def test_failure_in_the_second_group_leaves_the_first_untouched(name, backend, tamper):
    opt, twin = build_groups(name, backend), build_groups(name, backend)
    repair, (exc, fragment) = tamper(opt)
    assert_all_or_nothing(opt, twin, lambda: opt.step(make_grads(opt.params, 7)), exc,
                          fragment, repair)


def test_schedule_failure_in_the_second_group_leaves_the_first_untouched(name, backend):
    schedule = Schedule(float("nan"), at=4)
    opt = build_groups(name, backend, lr=schedule)
    twin = build_groups(name, backend, lr=Schedule(float("nan"), at=-1))

    def repair():
        schedule.poisoned = False

    assert_all_or_nothing(opt, twin, lambda: opt.step(make_grads(opt.params, 7)), ValueError,
                          "param_groups[1]['lr'] (the value its schedule returned for step 4)",
                          repair)


def test_bad_grad_in_the_second_group_leaves_the_first_untouched(name, backend):
    opt, twin = build_groups(name, backend), build_groups(name, backend)
    grads = make_grads(opt.params, 7)
    grads[2] = grads[2][:5]
    assert_all_or_nothing(opt, twin, lambda: opt.step(grads), ValueError,
                          "grads[2] has shape (5,) but params[2] has shape (6,)")
