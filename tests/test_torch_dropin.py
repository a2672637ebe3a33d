"""fastdescent.torch: one import swapped, torch.optim's behaviour kept.

The oracle is torch.optim 2.13.0 itself: the optimizer of the same name with the same
arguments, over equal copies of the same params, fed the same gradients through ``.grad``
(the gradients, cases and tolerances of test_oracle.py: 2e-4 relative in float32, 1e-9 in
float64, plus a small absolute term near zero).
"""

from __future__ import annotations

import copy
import inspect
import io

import numpy as np
import pytest
import torch

import fastdescent as fd
import fastdescent.torch as fdt
from test_oracle import (CASES, DTYPE_PARAMS, GROUPS, SHAPES, Pair, assert_close,
                         initial_params, seed_of)

NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]
STEPS = 40


class Run:
    """A fastdescent.torch optimizer beside torch's (and fastdescent's NumPy one, via
    :class:`test_oracle.Pair`), all over equal copies of the same params."""

    def __init__(self, name, groups, options, backend, torch_options=None):
        self.pair = Pair(name, groups, options, backend)
        self.params = [t.detach().clone().requires_grad_(True) for t in self.pair.torch_params]
        ours, k = [], 0
        for g in groups:
            n = len(g["params"])
            ours.append({**g, "params": self.params[k:k + n]})
            k += n
        fd.set_backend(backend)
        self.opt = getattr(fdt, name)(ours, **options)

    def step(self, rng, none=()):
        grads = self.pair.grads(rng)
        grads = [None if i in none else g for i, g in enumerate(grads)]
        self.pair.step(grads)
        for t, g in zip(self.params, grads):
            t.grad = None if g is None else torch.from_numpy(g.copy())
        self.opt.step()

    def check(self, where):
        for i, (ours, theirs) in enumerate(zip(self.params, self.pair.torch_params)):
            assert_close(ours.detach().numpy(), theirs.detach().numpy(), f"params[{i}] {where}")
        check_state(self.opt, self.pair.torch, self.params, self.pair.torch_params)


def check_state(ours, theirs, our_params, their_params):
    """Same state keys as torch keeps them, same values, ``step`` as torch's tensor."""
    for i, (p, q) in enumerate(zip(our_params, their_params)):
        mine = {k: v for k, v in ours.state.get(p, {}).items() if v is not None}
        expected = {k: v for k, v in theirs.state.get(q, {}).items() if v is not None}
        assert mine.keys() == expected.keys(), f"state of params[{i}]"
        for key, value in expected.items():
            got = mine[key]
            assert isinstance(got, torch.Tensor) and got.dtype == value.dtype, (i, key)
            if key == "step":
                assert got.shape == () and got.item() == value.item()
            else:
                assert_close(got.numpy(), value.numpy(), f"state[params[{i}]][{key!r}]")


def run(name, options, dtype, backend, *, groups_options=None, none=False, steps=STEPS):
    rng = np.random.default_rng(seed_of("dropin", name, repr(options), np.dtype(dtype).name))
    params = initial_params(rng, SHAPES, [dtype] * len(SHAPES))
    groups = ([{"params": params}] if groups_options is None else
              [{"params": params[:3], **groups_options[0]},
               {"params": params[3:], **groups_options[1]}])
    case = Run(name, groups, options, backend)
    for t in range(1, steps + 1):
        # params[5] never gets a gradient, params[2] only from step 8 on.
        case.step(rng, none={5, *((2,) if t < 8 else ())} if none else ())
        if t % 10 == 0:
            case.check(f"after step {t}")
    return case


@pytest.fixture
def default_backend(restore_backend):
    return restore_backend


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("name, options", CASES)
def test_every_option_matches_torch(name, options, dtype, default_backend):
    run(name, options, dtype, default_backend)


@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("name", NAMES)
def test_param_groups_and_missing_grads_match_torch(name, dtype, backend, restore_backend):
    defaults, groups_options = GROUPS[name]
    case = run(name, defaults, dtype, backend, groups_options=groups_options, none=True)
    assert case.opt.param_groups[1]["params"][2] is case.params[5]
    assert case.params[5] not in case.opt.state or name == "Adagrad"


@pytest.mark.parametrize("name", NAMES)
def test_signatures_are_torchs(name):
    ours = inspect.signature(getattr(fdt, name))
    theirs = inspect.signature(getattr(torch.optim, name))
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in theirs.parameters.values()]
    assert issubclass(getattr(fdt, name), torch.optim.Optimizer)


def model_and_data(dtype=torch.float32):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    model.to(dtype)
    x = torch.randn(64, 8, dtype=dtype)
    y = x.sum(1, keepdim=True).sin()
    return model, x, y


def train(opt, model, x, y, steps, scheduler=None):
    losses = []
    for _ in range(steps):
        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss
        losses.append(opt.step(closure).item())
        if scheduler is not None:
            scheduler.step()
    return losses


@pytest.mark.parametrize("name", NAMES)
def test_a_model_trains_as_with_torch_closure_and_scheduler(name):
    ours_model, x, y = model_and_data(torch.float64)
    theirs_model, _, _ = model_and_data(torch.float64)
    ours = getattr(fdt, name)(ours_model.parameters(), lr=0.01)
    theirs = getattr(torch.optim, name)(theirs_model.parameters(), lr=0.01, foreach=False)
    a = train(ours, ours_model, x, y, 30, torch.optim.lr_scheduler.StepLR(ours, 10, 0.5))
    b = train(theirs, theirs_model, x, y, 30, torch.optim.lr_scheduler.StepLR(theirs, 10, 0.5))
    np.testing.assert_allclose(a, b, rtol=1e-9)
    assert a[-1] < a[0]
    for p, q in zip(ours_model.parameters(), theirs_model.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] == 0.01 * 0.5 ** 3


def test_params_and_state_are_updated_in_their_own_memory():
    w = torch.zeros(100, requires_grad=True)
    opt = fdt.Adam([w], lr=0.1)
    pointer = w.data_ptr()
    w.grad = torch.ones(100)
    opt.step()
    exp_avg = opt.state[w]["exp_avg"]
    state_pointer, first = exp_avg.data_ptr(), exp_avg.clone()
    w.grad = torch.full((100,), 3.0)
    opt.step()
    assert w.data_ptr() == pointer and torch.all(w < 0)
    assert opt.state[w]["exp_avg"].data_ptr() == state_pointer
    assert not torch.equal(opt.state[w]["exp_avg"], first)
    assert opt.state[w]["step"].item() == 2.0 and opt.state[w]["step"].shape == ()


@pytest.mark.parametrize("name, options", [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.5)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.05, amsgrad=True)),
])
@pytest.mark.parametrize("direction", ["ours to torch's", "torch's to ours"])
def test_state_dicts_load_into_torchs_optimizers_and_back(name, options, direction):
    ours_model, x, y = model_and_data()
    theirs_model, _, _ = model_and_data()
    source_model, target_model = ((ours_model, theirs_model) if direction == "ours to torch's"
                                  else (theirs_model, ours_model))
    ours = getattr(fdt, name)(ours_model.parameters(), **options)
    theirs = getattr(torch.optim, name)(theirs_model.parameters(), **options, foreach=False)
    source, target = (ours, theirs) if direction == "ours to torch's" else (theirs, ours)
    train(source, source_model, x, y, 7)
    target_model.load_state_dict(source_model.state_dict())
    # Through a file, as checkpoints travel (a live state dict shares its tensors, with
    # torch's optimizers as with these).
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    target.load_state_dict(saved)
    if direction == "ours to torch's":
        assert all(isinstance(s["step"], torch.Tensor) and s["step"].item() == 7
                   for s in saved["state"].values() if "step" in s)
    a = train(source, source_model, x, y, 5)
    b = train(target, target_model, x, y, 5)
    np.testing.assert_allclose(a, b, rtol=2e-4)
    check_state(source, target, list(source_model.parameters()),
                list(target_model.parameters()))


def test_a_state_dict_does_not_follow_later_steps_of_the_step_count():
    w = torch.zeros(3, requires_grad=True)
    opt = fdt.Adam([w])
    w.grad = torch.ones(3)
    opt.step()
    saved = opt.state_dict()
    opt.step()
    assert saved["state"][0]["step"].item() == 1 and opt.state[w]["step"].item() == 2


def test_add_param_group_and_lr_edits_are_followed():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = fdt.SGD([a], lr=1.0, momentum=0.5)
    a.grad = torch.ones(2)
    opt.step()
    opt.add_param_group({"params": [b], "lr": 2.0})
    b.grad = torch.ones(3)
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    # a: buffer 1 -> 0.5 * 1 + 1 = 1.5, step 0.5 * 1.5; b: first step, buffer = grad.
    assert a.tolist() == [-1.75, -1.75] and b.tolist() == [-2.0, -2.0, -2.0]
    assert opt.state[b]["momentum_buffer"].tolist() == [1.0, 1.0, 1.0]


def test_adagrad_state_exists_from_construction_as_in_torch():
    ours = fdt.Adagrad([torch.zeros(3)], initial_accumulator_value=0.25)
    theirs = torch.optim.Adagrad([torch.zeros(3)], initial_accumulator_value=0.25)
    assert ours.state_dict()["state"].keys() == theirs.state_dict()["state"].keys() == {0}
    assert ours.state_dict()["state"][0]["sum"].tolist() == [0.25] * 3
    assert ours.state_dict()["state"][0]["step"].item() == 0


def test_adam_with_decoupled_weight_decay_is_adamw():
    a, b = torch.ones(4, requires_grad=True), torch.ones(4, requires_grad=True)
    adam = fdt.Adam([a], lr=0.1, weight_decay=0.5, decoupled_weight_decay=True)
    adamw = fdt.AdamW([b], lr=0.1, weight_decay=0.5)
    for _ in range(3):
        a.grad, b.grad = torch.full((4,), 0.3), torch.full((4,), 0.3)
        adam.step()
        adamw.step()
    assert torch.equal(a, b)


def snapshot(opt, params):
    return ([p.detach().clone() for p in params],
            {id(p): {k: v.clone() for k, v in s.items()} for p, s in opt.state.items()})


def assert_same_snapshot(a, b):
    assert all(torch.equal(x, y) for x, y in zip(a[0], b[0]))
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        assert a[1][key].keys() == b[1][key].keys()
        assert all(torch.equal(a[1][key][k], b[1][key][k]) for k in a[1][key])


BAD_GRADS = {
    "dtype": (lambda: torch.ones(4, dtype=torch.float64), TypeError,
              r"grads\[1\] has dtype float64 but params\[1\] has dtype float32"),
    "sparse": (lambda: torch.ones(4).to_sparse(), TypeError, r"grads\[1\] must be a dense CPU"),
    "strided": (lambda: torch.ones(4, 2)[:, 0], ValueError, r"grads\[1\] must be C-contiguous"),
}


@pytest.mark.parametrize("make, error, message", BAD_GRADS.values(), ids=BAD_GRADS)
def test_a_bad_grad_names_its_index_and_changes_nothing(make, error, message):
    params = [torch.zeros(4, requires_grad=True), torch.zeros(4, requires_grad=True)]
    opt = fdt.Adam(params, lr=0.1)
    for p in params:
        p.grad = torch.ones(4)
    opt.step()
    before = snapshot(opt, params)
    params[1].grad_dtype = None  # torch refuses a gradient of another dtype unless told
    params[1].grad = make()
    with pytest.raises(error, match=message):
        opt.step()
    assert_same_snapshot(snapshot(opt, params), before)


BAD_CONSTRUCTION = {
    "strided param": (lambda p: fdt.Adam([p, torch.zeros(4, 3).t()]), ValueError,
                      r"params\[1\] must be C-contiguous"),
    "bfloat16 param": (lambda p: fdt.SGD([p, torch.zeros(3, dtype=torch.bfloat16)]), TypeError,
                       r"params\[1\] must be a dense CPU tensor that NumPy can view"),
    "negative lr": (lambda p: fdt.RMSprop([p], lr=-1.0), ValueError, r"lr"),
    "capturable": (lambda p: fdt.Adam([p], capturable=True), ValueError,
                   r"param_groups\[0\]\['capturable'\]=True is not supported"),
    "differentiable": (lambda p: fdt.SGD([p], differentiable=True), ValueError,
                       r"'differentiable'\]=True is not supported"),
}


@pytest.mark.parametrize("make, error, message", BAD_CONSTRUCTION.values(),
                         ids=BAD_CONSTRUCTION)
def test_bad_construction_is_refused(make, error, message):
    with pytest.raises(error, match=message):
        make(torch.zeros(3, requires_grad=True))


def test_a_refused_state_dict_changes_nothing():
    w = torch.zeros(3, requires_grad=True)
    opt = fdt.Adam([w], lr=0.1)
    w.grad = torch.ones(3)
    opt.step()
    saved = opt.state_dict()
    bad = {"state": {0: {**saved["state"][0], "exp_avg": torch.zeros(5)}},
           "param_groups": saved["param_groups"]}
    before = snapshot(opt, [w])
    with pytest.raises(ValueError, match=r"state_dict\['state'\]\[0\]\['exp_avg'\] has shape"):
        opt.load_state_dict(bad)
    assert_same_snapshot(snapshot(opt, [w]), before)
    opt.step()
    assert opt.state[w]["step"].item() == 2


def test_gradients_kept_between_steps_are_read_afresh():
    """zero_grad(set_to_none=False) keeps the .grad tensors: in-place changes to them, and a
    .grad whose storage was swapped, are what the next step sees."""
    ours_w, theirs_w = torch.ones(4, requires_grad=True), torch.ones(4, requires_grad=True)
    ours, theirs = fdt.Adam([ours_w], lr=0.1), torch.optim.Adam([theirs_w], lr=0.1)
    for w, opt in ((ours_w, ours), (theirs_w, theirs)):
        for k in range(6):
            opt.zero_grad(set_to_none=False)
            (w * (k + 1.0) * w).sum().backward()
            if k == 3:
                w.grad.data = torch.full((4,), -5.0)  # a new storage behind the same tensor
            opt.step()
    np.testing.assert_allclose(ours_w.detach().numpy(), theirs_w.detach().numpy(), rtol=2e-6)


def test_a_deep_copy_steps_its_own_params():
    w = torch.zeros(3, requires_grad=True)
    opt = fdt.Adam([w], lr=0.1)
    w.grad = torch.ones(3)
    opt.step()
    twin = copy.deepcopy(opt)
    twin_w = twin.param_groups[0]["params"][0]
    twin_w.grad = torch.ones(3)
    twin.step()
    assert twin_w is not w and twin.state[twin_w]["step"].item() == 2
    np.testing.assert_allclose(w.detach().numpy(), -0.1, rtol=1e-6)  # the original: 1 step
    assert twin_w[0].item() < -0.15
