"""state_dict / load_state_dict: an exact, self-contained snapshot of an optimizer.

A state dict holds copies (plain arrays and numbers), round-trips exactly, and a run continued
from it is bit-identical to one that never stopped. load_state_dict checks everything before
it changes anything.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import fastdescent as fd
from conftest import assert_same, assert_unchanged, snapshot

# Options under which each optimizer keeps every state array it can keep (and a few others).
CONFIGS = {
    "SGD-momentum": (fd.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "SGD-nesterov": (fd.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    "Adagrad": (fd.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                 initial_accumulator_value=0.1)),
    "RMSprop-centered-momentum": (fd.RMSprop, dict(lr=0.01, momentum=0.9, centered=True,
                                                   weight_decay=0.01)),
    "RMSprop": (fd.RMSprop, dict(lr=0.01, alpha=0.9)),
    "Adam-amsgrad": (fd.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    "Adam": (fd.Adam, dict(lr=0.01, betas=(0.8, 0.99))),
    "AdamW-amsgrad": (fd.AdamW, dict(lr=0.01, amsgrad=True)),
}
SHAPES = [(5,), (2, 3), (4,)]


@pytest.fixture(params=list(CONFIGS))
def config(request):
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def make_grads(params, t):
    """Gradients of step t; params[2] gets none on the first step, so its state (and step
    count) lags behind the others'."""
    rng = np.random.default_rng(1000 + t)
    grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    if t == 0:
        grads[2] = None
    return grads


def build(config, backend, params, groups=True, **options):
    """params 0 and 1 in one group, params 2 in a second group with its own lr."""
    cls, defaults = CONFIGS[config]
    defaults = {**defaults, **options}
    if groups:
        params = [{"params": params[:2]}, {"params": params[2:], "lr": defaults["lr"] / 2}]
    return cls(params, backend=backend, **defaults)


def run(opt, start, stop):
    for t in range(start, stop):
        opt.step(make_grads(opt.params, t))
    return opt


def test_round_trip_mid_run_is_exact(config, backend, dtype):
    opt = run(build(config, backend, make_params(dtype)), 0, 3)
    fresh = build(config, backend, [p.copy() for p in opt.params], lr=0.5)
    fresh.load_state_dict(opt.state_dict())
    assert_same(fresh, opt)
    # and the state dicts agree too
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"] and a["step_count"] == b["step_count"] == 3
    for i in a["state"]:
        for k, v in a["state"][i].items():
            w = b["state"][i][k]
            assert (v.tobytes() == w.tobytes()) if isinstance(v, np.ndarray) else v == w


def test_state_dict_layout(config, backend):
    opt = run(build(config, backend, make_params()), 0, 2)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups", "step_count"}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["step_count"] == 2
    assert set(sd["state"]) == {0, 1, 2}
    keys = type(opt)._state_keys
    for entries in sd["state"].values():
        assert entries and set(entries) <= set(keys)
        for value in entries.values():
            assert type(value) in (int, np.ndarray)
    if "step" in keys:  # params[2] got no gradient on the first step
        assert [sd["state"][i]["step"] for i in range(3)] == [2, 2, 1]


def test_continued_run_is_bit_identical(config, backend, dtype):
    uninterrupted = run(build(config, backend, make_params(dtype)), 0, 6)

    first = run(build(config, backend, make_params(dtype)), 0, 3)
    saved = first.state_dict()
    second = build(config, backend, [p.copy() for p in first.params])
    second.load_state_dict(saved)
    run(second, 3, 6)

    assert_same(second, uninterrupted)


def test_load_right_after_the_first_step_keeps_lagging_state(config, backend):
    """After one step params[2] has no state at all: the loaded optimizer must create it
    (SGD: with the first-step rule) exactly as the original does."""
    uninterrupted = run(build(config, backend, make_params()), 0, 4)
    first = run(build(config, backend, make_params()), 0, 1)
    assert 2 not in first.state
    second = build(config, backend, [p.copy() for p in first.params])
    second.load_state_dict(first.state_dict())
    run(second, 1, 4)
    assert_same(second, uninterrupted)


def test_schedule_continues_from_the_loaded_step_count(backend):
    calls = []

    def schedule(t):
        calls.append(t)
        return 0.1 / t

    first = run(fd.Adam(make_params(), lr=schedule, backend=backend), 0, 3)
    second = fd.Adam([p.copy() for p in first.params], lr=schedule, backend=backend)
    second.load_state_dict(first.state_dict())
    del calls[:]
    run(second, 3, 5)
    assert calls == [4, 5]
    assert second.step_count == 5


def test_state_dict_holds_copies(config, backend):
    opt = run(build(config, backend, make_params()), 0, 3)
    sd = opt.state_dict()
    frozen = copy.deepcopy(sd)
    run(opt, 3, 5)
    opt.param_groups[0]["lr"] = 123.0
    assert sd["step_count"] == 3
    assert sd["param_groups"] == frozen["param_groups"]
    for i, entries in frozen["state"].items():
        for k, v in entries.items():
            w = sd["state"][i][k]
            assert (v.tobytes() == w.tobytes()) if isinstance(v, np.ndarray) else v == w
    # writing into the dict does not reach the optimizer either
    before = snapshot(opt)
    for entries in sd["state"].values():
        for v in entries.values():
            if isinstance(v, np.ndarray):
                v[...] = 7
    sd["param_groups"][0]["lr"] = 0.0
    assert_unchanged(opt, before)


def test_load_state_dict_copies_the_arrays_in(config, backend):
    source = run(build(config, backend, make_params()), 0, 3)
    sd = source.state_dict()
    opt = build(config, backend, [p.copy() for p in source.params])
    opt.load_state_dict(sd)
    before = snapshot(opt)
    for entries in sd["state"].values():
        for v in entries.values():
            if isinstance(v, np.ndarray):
                v[...] = 7
    assert_unchanged(opt, before)


def test_load_accepts_read_only_arrays(config, backend):
    """The arrays are copied in, so they need not be writable (a frozen or memory-mapped
    snapshot loads)."""
    source = run(build(config, backend, make_params()), 0, 3)
    sd = source.state_dict()
    for entries in sd["state"].values():
        for v in entries.values():
            if isinstance(v, np.ndarray):
                v.flags.writeable = False
    opt = build(config, backend, [p.copy() for p in source.params])
    opt.load_state_dict(sd)
    run(opt, 3, 4), run(source, 3, 4)
    assert_same(opt, source)


def test_load_restores_group_options(backend):
    source = fd.SGD([{"params": [np.zeros(2)], "lr": 0.3, "momentum": 0.5},
                     {"params": [np.zeros(3)], "nesterov": True}],
                    lr=0.2, momentum=0.9, weight_decay=0.1, backend=backend)
    target = fd.SGD([{"params": [np.zeros(2)]}, {"params": [np.zeros(3)]}],
                    lr=0.01, backend=backend)
    target.load_state_dict(source.state_dict())
    strip = [{k: v for k, v in g.items() if k != "params"} for g in source.param_groups]
    assert [{k: v for k, v in g.items() if k != "params"} for g in target.param_groups] == strip
    assert target.param_groups[0]["lr"] == 0.3 and target.param_groups[0]["momentum"] == 0.5
    assert target.param_groups[1]["nesterov"] is True
    assert target.param_groups[1]["weight_decay"] == 0.1


def test_lr_schedule_survives_an_in_memory_round_trip(backend):
    def schedule(t):
        return 0.1 / t

    source = run(fd.Adam(make_params(), lr=schedule, backend=backend), 0, 2)
    target = fd.Adam([p.copy() for p in source.params], lr=0.5, backend=backend)
    target.load_state_dict(source.state_dict())
    assert target.param_groups[0]["lr"] is schedule
    run(target, 2, 4), run(source, 2, 4)
    assert_same(target, source)


# ---------------------------------------------------------------------------- refusals


@pytest.fixture
def trained(config, backend):
    """An optimizer after three steps and a state dict of another run of it, to corrupt."""
    opt = run(build(config, backend, make_params()), 0, 3)
    other = run(build(config, backend, make_params(seed=1)), 0, 4)
    return opt, other.state_dict()


def state_array_key(sd):
    return next(k for k, v in sd["state"][1].items() if isinstance(v, np.ndarray))


def _groups(sd):
    sd["param_groups"] = sd["param_groups"][:1]
    return ValueError, "state_dict['param_groups'] has 1 groups but the optimizer has 2"


def _more_groups(sd):
    sd["param_groups"].append(dict(sd["param_groups"][1], params=[3]))
    return ValueError, "state_dict['param_groups'] has 3 groups but the optimizer has 2"


def _group_size(sd):
    sd["param_groups"][0]["params"] = [0]
    return ValueError, "state_dict['param_groups'][0]['params'] must list 2 params"


def _group_swapped(sd):
    sd["param_groups"][0]["params"], sd["param_groups"][1]["params"] = [2], [0, 1]
    return ValueError, "state_dict['param_groups'][0]['params'] must list 2 params"


def _shape(sd):
    key = state_array_key(sd)
    sd["state"][1][key] = np.zeros(7, sd["state"][1][key].dtype)
    return ValueError, f"state_dict['state'][1][{key!r}] has shape (7,)"


def _transposed(sd):
    key = state_array_key(sd)
    sd["state"][1][key] = np.ascontiguousarray(sd["state"][1][key].T)
    return ValueError, f"state_dict['state'][1][{key!r}] has shape (3, 2)"


def _dtype(sd):
    key = state_array_key(sd)
    sd["state"][1][key] = sd["state"][1][key].astype(np.float32)
    return TypeError, f"state_dict['state'][1][{key!r}] has dtype float32"


def _not_array(sd):
    key = state_array_key(sd)
    sd["state"][1][key] = sd["state"][1][key].tolist()
    return TypeError, f"state_dict['state'][1][{key!r}] must be a numpy.ndarray"


def _unknown_key(sd):
    sd["state"][2]["velocity"] = np.zeros(4)
    return ValueError, "state_dict['state'][2]['velocity']"


def _negative_step(sd):
    sd["step_count"] = -1
    return ValueError, "state_dict['step_count'] must be a whole number >= 0"


def _fractional_step(sd):
    sd["step_count"] = 2.5
    return ValueError, "state_dict['step_count'] must be a whole number >= 0"


def _bad_lr(sd):
    sd["param_groups"][1]["lr"] = -0.1
    return ValueError, "state_dict['param_groups'][1]['lr']"


def _nan_eps_or_momentum(sd):
    key = "momentum" if "momentum" in sd["param_groups"][0] else "eps"
    sd["param_groups"][0][key] = float("nan")
    return ValueError, f"state_dict['param_groups'][0][{key!r}]"


def _bad_bool(sd):
    sd["param_groups"][0]["maximize"] = "no"
    return TypeError, "state_dict['param_groups'][0]['maximize']"


def _orphan_state(sd):
    sd["state"][9] = sd["state"][0]
    return ValueError, "state_dict['state'][9] belongs to no param"


def _duplicate_ids(sd):
    sd["param_groups"][0]["params"] = [0, 0]
    return ValueError, "state_dict['param_groups'][0]['params'] lists param 0 twice"


def _id_in_two_groups(sd):
    sd["param_groups"][1]["params"] = [1]
    return ValueError, "state_dict['param_groups'][1]['params'] lists param 1 twice"


def _no_state(sd):
    del sd["state"]
    return ValueError, "state_dict has no 'state' entry"


def _no_groups(sd):
    del sd["param_groups"]
    return ValueError, "state_dict has no 'param_groups' entry"


def _state_not_dict(sd):
    sd["state"] = [sd["state"][0]]
    return TypeError, "state_dict['state'] must be a dict"


def _entries_not_dict(sd):
    sd["state"][1] = [1, 2]
    return TypeError, "state_dict['state'][1] must be a dict"


def _group_not_dict(sd):
    sd["param_groups"][1] = [2]
    return ValueError, "state_dict['param_groups'][1] must be a dict"


CORRUPTIONS = [_groups, _more_groups, _group_size, _group_swapped, _shape, _transposed, _dtype,
               _not_array, _unknown_key, _negative_step, _fractional_step, _bad_lr,
               _nan_eps_or_momentum, _bad_bool, _orphan_state, _duplicate_ids,
               _id_in_two_groups, _no_state, _no_groups, _state_not_dict, _entries_not_dict,
               _group_not_dict]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=[c.__name__[1:] for c in CORRUPTIONS])
def test_load_refuses_a_bad_state_dict_and_changes_nothing(trained, corrupt):
    opt, sd = trained
    exc, fragment = corrupt(sd)
    before = snapshot(opt)
    with pytest.raises(exc, match=re.escape(fragment)):
        opt.load_state_dict(sd)
    assert_unchanged(opt, before)


def test_the_uncorrupted_state_dict_loads(trained):
    """Control for the test above: the same state dict, uncorrupted, does load."""
    opt, sd = trained
    opt.load_state_dict(sd)
    assert opt.step_count == 4


@pytest.mark.parametrize("value", [None, [1, 2], "state", 3], ids=repr)
def test_load_refuses_what_is_not_a_dict(trained, value):
    opt, _ = trained
    before = snapshot(opt)
    with pytest.raises(TypeError, match="state_dict must be a dict"):
        opt.load_state_dict(value)
    assert_unchanged(opt, before)


@pytest.mark.parametrize("step", [-1, 1.0, "1", None], ids=repr)
def test_load_refuses_a_bad_per_param_step(backend, step):
    opt = run(fd.Adam(make_params(), backend=backend), 0, 3)
    sd = opt.state_dict()
    sd["state"][0]["step"] = step
    before = snapshot(opt)
    with pytest.raises(ValueError, match=re.escape("state_dict['state'][0]['step'] must be")):
        opt.load_state_dict(sd)
    assert_unchanged(opt, before)


@pytest.mark.parametrize("source, target", [
    (fd.Adam, fd.SGD), (fd.Adagrad, fd.RMSprop), (fd.RMSprop, fd.Adagrad), (fd.SGD, fd.Adam)],
    ids=lambda c: c.__name__)
def test_load_refuses_another_optimizers_state(backend, source, target):
    kwargs = {fd.SGD: dict(momentum=0.9), fd.RMSprop: dict(momentum=0.9)}
    src = run(source(make_params(), backend=backend, **kwargs.get(source, {})), 0, 2)
    opt = run(target(make_params(), backend=backend, **kwargs.get(target, {})), 0, 2)
    before = snapshot(opt)
    with pytest.raises(ValueError, match=rf"{target.__name__} keeps no state called"):
        opt.load_state_dict(src.state_dict())
    assert_unchanged(opt, before)
