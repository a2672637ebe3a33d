"""fd.schedules: every schedule's values at chosen steps against its formula, against
torch.optim.lr_scheduler where the definitions coincide (our step t is torch's
last_epoch t - 1), joining, pickling, validation, and use as an optimizer's lr."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import schedules as S

import torch  # noqa: E402  (the oracle: a test dependency, never skipped)

STEPS = [1, 2, 3, 5, 10, 11, 50, 99, 100, 101, 250]


# ----------------------------------------------------------------------------- formulas


def test_constant():
    s = S.Constant(0.3)
    assert [s(t) for t in STEPS] == [0.3] * len(STEPS)


def test_piecewise_constant_drops_after_each_milestone():
    s = S.PiecewiseConstant(0.1, milestones=[10, 100], factor=0.5)
    expected = {1: 0.1, 10: 0.1, 11: 0.05, 99: 0.05, 100: 0.05, 101: 0.025, 250: 0.025}
    for t, lr in expected.items():
        assert s(t) == pytest.approx(lr, rel=1e-15)


def test_piecewise_constant_with_one_factor_per_milestone_reaches_any_values():
    s = S.PiecewiseConstant(1.0, milestones=[3, 6], factor=[0.2, 0.25])
    assert [s(t) for t in range(1, 9)] == pytest.approx([1, 1, 1, 0.2, 0.2, 0.2, 0.05, 0.05])


def test_step_decay():
    s = S.StepDecay(2.0, step_size=10, gamma=0.3)
    for t in STEPS:
        assert s(t) == pytest.approx(2.0 * 0.3 ** ((t - 1) // 10), rel=1e-15)


def test_exponential_decay():
    s = S.ExponentialDecay(0.5, rate=0.1)
    for t in STEPS:
        assert s(t) == pytest.approx(0.5 * math.exp(-0.1 * t), rel=1e-15)


def test_exponential_decay_reproduces_the_seeds_code():
    # seed 004: global t = 1; each call does t += 1 and returns exp(-0.1 t), times eta
    t, eta, seed = 1, 0.01, []
    for _ in range(20):
        t += 1
        seed.append(eta * np.exp(-0.1 * t))
    s = S.ExponentialDecay(eta * math.exp(-0.1), rate=0.1)
    assert [s(k) for k in range(1, 21)] == pytest.approx(seed, rel=1e-14)


def test_polynomial_decay_is_the_seeds_formula():
    s = S.PolynomialDecay(0.01, alpha=0.5, beta=0.1)
    for t in STEPS:
        assert s(t) == pytest.approx(0.01 * (1 + 0.1 * t) ** -0.5, rel=1e-15)
    # the seed's code calls it with t = 2, 3, ... for its steps 1, 2, ...
    assert s(1 + 1) == pytest.approx(0.01 * (1 + 0.1 * 2) ** -0.5)


def test_cosine_annealing_from_lr_to_the_floor():
    s = S.CosineAnnealing(1.0, steps=100, lr_min=0.01)
    for t in STEPS:
        progress = min(t - 1, 100) / 100
        assert s(t) == pytest.approx(0.01 + 0.99 * (1 + math.cos(math.pi * progress)) / 2,
                                     rel=1e-14)
    assert s(1) == 1.0 and s(51) == pytest.approx(0.505) and s(101) == s(1000) == 0.01


def test_linear_warmup():
    s = S.LinearWarmup(0.2, warmup_steps=10, start_lr=0.02)
    for t in STEPS:
        assert s(t) == pytest.approx(0.02 + 0.18 * min(t, 10) / 10, rel=1e-15)
    assert s(10) == s(11) == 0.2 and S.LinearWarmup(1.0, 4)(1) == 0.25


def test_one_cycle_formula():
    s = S.OneCycle(1.0, total_steps=100, pct_start=0.25, div_factor=10, final_div_factor=100)
    assert s(1) == pytest.approx(0.1)              # initial = max / div_factor
    assert s(25) == pytest.approx(1.0)             # the peak at 0-based step pN - 1 = 24
    assert s(100) == pytest.approx(0.001)          # final = initial / final_div_factor
    assert s(13) == pytest.approx(0.1 + 0.9 * (1 - math.cos(math.pi * 12 / 24)) / 2)
    assert s(500) == pytest.approx(0.001)          # stays at the end after total_steps
    rising = [s(t) for t in range(1, 26)]
    falling = [s(t) for t in range(25, 101)]
    assert rising == sorted(rising) and falling == sorted(falling, reverse=True)


def test_reduce_on_plateau_by_hand():
    s = S.ReduceOnPlateau(1.0, factor=0.5, patience=2, threshold=0.0, cooldown=1, min_lr=0.2)
    lrs = [s.observe(loss) for loss in [5, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3]]
    # 4 is the best until 3 of no improvement (> patience 2): halve; the cooldown ignores
    # one observation; then 3 more bad ones; the floor min_lr = 0.2 stops the last drop
    assert lrs == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert s(123) == 0.25
    s2 = S.ReduceOnPlateau(1.0, factor=0.1, patience=0, min_lr=0.2)
    assert [s2.observe(v) for v in [1, 1, 1]] == [1, 0.2, 0.2]
    s2.reset()
    assert s2.current_lr == 1.0 and s2.best == math.inf


def test_reduce_on_plateau_nan_is_never_an_improvement():
    s = S.ReduceOnPlateau(1.0, factor=0.5, patience=0)
    assert s.observe(1.0) == 1.0
    assert s.observe(float("nan")) == 0.5
    assert s.observe(np.array([0.5])) == 0.5 and s.best == 0.5   # 1-element arrays count
    with pytest.raises(TypeError, match="loss must be a real number"):
        s.observe("low")


def test_every_value_is_a_python_float():
    for s in examples():
        for t in [1, 7, 1000]:
            assert type(s(t)) is float, s


# --------------------------------------------------------------------------------- join


def test_join_restarts_each_schedule_at_step_1():
    warmup = S.LinearWarmup(0.1, warmup_steps=100)
    cosine = S.CosineAnnealing(0.1, steps=900, lr_min=0.001)
    s = S.Join([warmup, cosine], boundaries=[100])
    for t in [1, 50, 100]:
        assert s(t) == warmup(t)
    for t in [101, 102, 550, 1000, 1001, 2000]:
        assert s(t) == cosine(t - 100)
    assert s(101) == 0.1 and s(1001) == 0.001


def test_join_without_restart_gives_the_global_step():
    first, second = S.Constant(1.0), S.ExponentialDecay(1.0, rate=0.1)
    s = S.Join([first, second], boundaries=[5], restart=False)
    assert [s(t) for t in range(1, 6)] == [1.0] * 5
    assert s(6) == second(6) and s(20) == second(20)


def test_join_of_three_and_of_plain_functions():
    s = S.Join([S.Constant(3.0), abs, S.Constant(1.0)], boundaries=[2, 4])
    assert [s(t) for t in range(1, 7)] == [3.0, 3.0, 1.0, 2.0, 1.0, 1.0]


# -------------------------------------------------------------------------------- torch


def torch_lrs(make_scheduler, lr, count):
    """The lr torch's optimizer uses at each of its first ``count`` steps."""
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(count):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def ours(schedule, count):
    return [schedule(t) for t in range(1, count + 1)]


def test_step_decay_is_torch_step_lr():
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 7, gamma=0.3), 0.5, 40)
    assert ours(S.StepDecay(0.5, 7, gamma=0.3), 40) == pytest.approx(expected, rel=1e-12)


def test_piecewise_constant_is_torch_multi_step_lr_with_the_same_milestones():
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [3, 10, 11], 0.2),
                         0.5, 30)
    got = ours(S.PiecewiseConstant(0.5, [3, 10, 11], factor=0.2), 30)
    assert got == pytest.approx(expected, rel=1e-12)


def test_exponential_decay_is_torch_exponential_lr_one_step_on():
    gamma, lr = 0.9, 0.5
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma), lr, 40)
    got = ours(S.ExponentialDecay(lr / gamma, rate=-math.log(gamma)), 40)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("lr_min", [0.0, 0.05])
def test_cosine_annealing_is_torch_cosine_annealing_lr(lr_min):
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=lr_min),
        0.5, 21)
    got = ours(S.CosineAnnealing(0.5, steps=20, lr_min=lr_min), 21)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("start_factor", [0.1, 0.5])
def test_linear_warmup_is_torch_linear_lr_one_step_on(start_factor):
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=start_factor,
                                                    total_iters=8), 0.4, 15)
    got = ours(S.LinearWarmup(0.4, warmup_steps=8, start_lr=start_factor * 0.4), 14)
    assert expected[0] == pytest.approx(start_factor * 0.4)
    assert got == pytest.approx(expected[1:], rel=1e-9)


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("total, pct", [(100, 0.3), (37, 0.25), (10, 0.5)])
def test_one_cycle_is_torch_one_cycle_lr(anneal, three_phase, total, pct):
    def make(o):
        return torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.8, total_steps=total, pct_start=pct, anneal_strategy=anneal,
            div_factor=20.0, final_div_factor=50.0, three_phase=three_phase,
            cycle_momentum=False)
    expected = torch_lrs(make, 0.8, total)
    got = ours(S.OneCycle(0.8, total, pct_start=pct, anneal=anneal, div_factor=20.0,
                          final_div_factor=50.0, three_phase=three_phase), total)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("options", [
    dict(),
    dict(factor=0.5, patience=2),
    dict(factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", cooldown=2),
    dict(factor=0.3, patience=0, min_lr=0.01, cooldown=1),
    dict(factor=0.5, patience=1, mode="max", threshold=0.01),
    dict(factor=0.5, patience=1, mode="max", threshold_mode="abs", eps=0.1),
])
def test_reduce_on_plateau_is_torch_reduce_lr_on_plateau(options):
    rng = np.random.default_rng(7)
    losses = np.maximum.accumulate(rng.random(120))[::-1] + 0.3 * rng.random(120)
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.5)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **options)
    ours_ = S.ReduceOnPlateau(0.5, **options)
    for loss in losses:
        opt.step()
        scheduler.step(float(loss))
        assert ours_.observe(loss) == opt.param_groups[0]["lr"]
    assert ours_.num_bad_observations == scheduler.num_bad_epochs
    assert ours_.current_lr < 0.5  # the sequence did reduce it


# ------------------------------------------------------------------------ in an optimizer


def examples():
    return [
        S.Constant(0.1),
        S.PiecewiseConstant(0.1, [2, 4], factor=0.5),
        S.StepDecay(0.1, 2, gamma=0.5),
        S.ExponentialDecay(0.1, rate=0.2),
        S.PolynomialDecay(0.1, alpha=0.5, beta=0.1),
        S.CosineAnnealing(0.1, steps=5, lr_min=0.01),
        S.LinearWarmup(0.1, warmup_steps=3),
        S.OneCycle(0.1, total_steps=6),
        S.Join([S.LinearWarmup(0.1, 2), S.CosineAnnealing(0.1, 4)], boundaries=[2]),
        S.ReduceOnPlateau(0.1, patience=0),
    ]


@pytest.mark.parametrize("index", range(len(examples())))
def test_an_optimizer_uses_the_schedule_at_each_step(index, backend):
    schedule = examples()[index]
    w = np.zeros(3)
    opt = fd.SGD([w], lr=schedule, backend=backend)
    before = 0.0
    for t in range(1, 9):
        if isinstance(schedule, S.ReduceOnPlateau):
            schedule.observe(1.0)          # never improving: the lr drops every time
        lr = schedule(t)
        opt.step([np.ones(3)])             # p <- p - lr_t * 1
        np.testing.assert_allclose(w, before - lr, rtol=1e-14, atol=1e-16)
        before = float(w[0])


@pytest.mark.parametrize("index", range(len(examples())))
def test_schedules_pickle_and_repr(index):
    schedule = examples()[index]
    copy = pickle.loads(pickle.dumps(schedule))
    assert repr(copy) == repr(schedule)
    assert ours(copy, 10) == ours(schedule, 10)
    text = repr(schedule)
    assert text.startswith(type(schedule).__name__ + "(")
    if not isinstance(schedule, S.ReduceOnPlateau):  # a repr that rebuilds the schedule
        rebuilt = eval(text, vars(S))
        assert ours(rebuilt, 10) == ours(schedule, 10)


def test_reduce_on_plateau_state_survives_pickling():
    s = S.ReduceOnPlateau(1.0, patience=0, factor=0.5)
    s.observe(1.0)
    s.observe(2.0)
    copy = pickle.loads(pickle.dumps(s))
    assert copy(1) == 0.5 and copy.best == 1.0
    assert "current_lr=0.5" in repr(copy)


# ---------------------------------------------------------------------------- bad input


def test_steps_count_from_1():
    s = S.Constant(0.1)
    with pytest.raises(ValueError, match=r"step must be >= 1 \(steps count from 1\), got 0"):
        s(0)
    with pytest.raises(TypeError, match="step must be an integer"):
        s(1.5)
    with pytest.raises(TypeError, match="step must be an integer"):
        s(True)
    assert s(np.int64(3)) == 0.1


@pytest.mark.parametrize("make, exc, match", [
    (lambda: S.Constant(-1.0), ValueError, "lr must be in"),
    (lambda: S.Constant("0.1"), TypeError, "lr must be a real number"),
    (lambda: S.Constant(float("inf")), ValueError, "lr must be finite"),
    (lambda: S.PiecewiseConstant(0.1, [5, 3]), ValueError, "milestones must be strictly"),
    (lambda: S.PiecewiseConstant(0.1, [0]), ValueError, r"milestones\[0\] must be >= 1"),
    (lambda: S.PiecewiseConstant(0.1, 5), TypeError, "milestones must be a sequence"),
    (lambda: S.PiecewiseConstant(0.1, [2.5]), TypeError, r"milestones\[0\] must be an int"),
    (lambda: S.PiecewiseConstant(0.1, [2, 3], factor=[0.1]), ValueError, "factor has 1"),
    (lambda: S.PiecewiseConstant(0.1, [2], factor=-0.1), ValueError, "factor must be in"),
    (lambda: S.StepDecay(0.1, 0), ValueError, "step_size must be >= 1"),
    (lambda: S.StepDecay(0.1, 2, gamma=-1), ValueError, "gamma must be in"),
    (lambda: S.ExponentialDecay(0.1, rate=-0.1), ValueError, "rate must be in"),
    (lambda: S.PolynomialDecay(0.1, alpha=-1, beta=0.1), ValueError, "alpha must be in"),
    (lambda: S.PolynomialDecay(0.1, alpha=1, beta=None), TypeError, "beta must be a real"),
    (lambda: S.CosineAnnealing(0.1, steps=0), ValueError, "steps must be >= 1"),
    (lambda: S.CosineAnnealing(0.1, steps=10, lr_min=-1), ValueError, "lr_min must be in"),
    (lambda: S.LinearWarmup(0.1, warmup_steps=True), TypeError, "warmup_steps must be an int"),
    (lambda: S.OneCycle(0.1, total_steps=1), ValueError, "total_steps must be >= 2"),
    (lambda: S.OneCycle(0.1, 10, pct_start=1.0), ValueError, "pct_start must be in"),
    (lambda: S.OneCycle(0.1, 10, anneal="cosine"), ValueError, "anneal must be one of"),
    (lambda: S.OneCycle(0.1, 10, div_factor=0), ValueError, "div_factor must be in"),
    (lambda: S.OneCycle(0.1, 10, three_phase=1), TypeError, "three_phase must be True"),
    (lambda: S.OneCycle(0.1, 2, pct_start=0.1), ValueError, "leaves a phase of no steps"),
    (lambda: S.Join([], []), ValueError, "schedules is empty"),
    (lambda: S.Join([S.Constant(1.0), 0.5], [3]), TypeError, r"schedules\[1\] must be a call"),
    (lambda: S.Join([S.Constant(1.0)] * 2, []), ValueError, "one fewer entry"),
    (lambda: S.Join([S.Constant(1.0)] * 2, [3], restart=None), TypeError, "restart must be"),
    (lambda: S.ReduceOnPlateau(0.1, factor=1.0), ValueError, "factor must be in"),
    (lambda: S.ReduceOnPlateau(0.1, patience=-1), ValueError, "patience must be >= 0"),
    (lambda: S.ReduceOnPlateau(0.1, mode="minimum"), ValueError, "mode must be one of"),
    (lambda: S.ReduceOnPlateau(0.1, threshold_mode=1), TypeError, "threshold_mode must be"),
])
def test_bad_arguments_name_themselves(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_schedules_are_exported():
    assert fd.schedules is S
    assert all(hasattr(S, name) for name in S.__all__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        S.OneCycle(1.0, 1000)(1000)
