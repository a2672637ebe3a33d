r"""Learning-rate schedules: callables ``step -> lr``, steps counting from 1.

Any schedule can be passed as an optimizer's ``lr`` (``fd.SGD([w], lr=schedule)``): before
step :math:`t` of that optimizer (the first step is :math:`t = 1`) the optimizer calls
``schedule(t)`` and uses the value as the learning rate :math:`\eta_t` of that step.

Every schedule here is a plain object with a ``__repr__`` that shows its arguments, so it can
be pickled, printed and compared by eye; each docstring states its formula.

* :class:`Constant`: :math:`\eta_0`
* :class:`PiecewiseConstant`: :math:`\eta_0 \prod_{i:\, m_i < t} \gamma_i` (drops after
  milestones :math:`m_i`)
* :class:`StepDecay`: :math:`\eta_0\, \gamma^{\lfloor (t-1)/k \rfloor}` (drops every k steps)
* :class:`ExponentialDecay`: :math:`\eta_0\, e^{-\lambda t}`
* :class:`PolynomialDecay`: :math:`\eta_0\, (1 + \beta t)^{-\alpha}`
* :class:`CosineAnnealing`: from :math:`\eta_0` at step 1 along a half cosine down to a
  floor, reached T steps later
* :class:`LinearWarmup`: linear up to :math:`\eta_0`, reached at step W
* :class:`OneCycle`: up to a peak, then annealed far below the start (torch's OneCycleLR)
* :class:`Join`: one schedule after another (warmup, then cosine)
* :class:`ReduceOnPlateau`: divided by a factor when the observed loss stops improving

Relation to ``torch.optim.lr_scheduler``. A torch scheduler counts *epochs* from 0: the
learning rate of the first optimizer step is the one at ``last_epoch == 0``, and each
``scheduler.step()`` moves to the next. So fastdescent's step :math:`t` corresponds to torch's
``last_epoch`` :math:`e = t - 1`. With that mapping :class:`StepDecay` is ``StepLR``,
:class:`PiecewiseConstant` is ``MultiStepLR`` (same milestone numbers), :class:`CosineAnnealing`
is ``CosineAnnealingLR`` (up to its end), :class:`OneCycle` is ``OneCycleLR`` (its
learning rates only) and :class:`ReduceOnPlateau` is ``ReduceLROnPlateau``, value for value.
:class:`ExponentialDecay` and :class:`LinearWarmup` are off by one step from ``ExponentialLR``
and ``LinearLR``; their docstrings give the exact relation.

>>> import numpy as np, fastdescent as fd
>>> warmup = fd.schedules.LinearWarmup(0.1, warmup_steps=4)
>>> cosine = fd.schedules.CosineAnnealing(0.1, steps=8, lr_min=0.001)
>>> schedule = fd.schedules.Join([warmup, cosine], boundaries=[4])
>>> [round(schedule(t), 4) for t in range(1, 14)]
[0.025, 0.05, 0.075, 0.1, 0.1, 0.0962, 0.0855, 0.0694, 0.0505, 0.0316, 0.0155, 0.0048, 0.001]
>>> w = np.zeros(2)
>>> opt = fd.SGD([w], lr=schedule)
>>> opt.step([np.ones(2)])           # step 1 uses lr = schedule(1) = 0.025
>>> w
array([-0.025, -0.025])
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from ._validation import check_range

__all__ = [
    "Schedule", "Constant", "PiecewiseConstant", "StepDecay", "ExponentialDecay",
    "PolynomialDecay", "CosineAnnealing", "LinearWarmup", "OneCycle", "Join",
    "ReduceOnPlateau",
]


def _check_int(value, name: str, low: int) -> int:
    """An integer >= ``low`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def _check_step(step) -> int:
    """The step a schedule is asked about: an integer >= 1."""
    if type(step) is int and step >= 1:
        return step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an integer (steps count from 1), "
                        f"got {type(step).__name__}")
    if step < 1:
        raise ValueError(f"step must be >= 1 (steps count from 1), got {step}")
    return int(step)


def _check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_milestones(milestones, name: str) -> tuple[int, ...]:
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
        raise TypeError(f"{name} must be a sequence of integers, "
                        f"got {type(milestones).__name__}")
    checked = tuple(_check_int(m, f"{name}[{i}]", 1) for i, m in enumerate(milestones))
    for i in range(1, len(checked)):
        if checked[i] <= checked[i - 1]:
            raise ValueError(f"{name} must be strictly increasing, but {name}[{i}] = "
                             f"{checked[i]} follows {checked[i - 1]}")
    return checked


class Schedule:
    """Base of the schedules: ``schedule(step) -> lr`` for integer steps >= 1.

    Subclasses implement :meth:`_value` for a checked step and list their constructor
    arguments in ``_fields`` (for the repr). Calling a schedule with a step that is not an
    integer >= 1 raises TypeError or ValueError.

    >>> import fastdescent as fd
    >>> isinstance(fd.schedules.Constant(0.1), fd.schedules.Schedule)
    True
    """

    _fields: tuple[str, ...] = ()

    def __call__(self, step: int) -> float:
        return self._value(_check_step(step))

    def _value(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    r"""The same learning rate at every step: :math:`\eta_t = \eta_0`.

    >>> import fastdescent as fd
    >>> schedule = fd.schedules.Constant(0.01)
    >>> schedule(1), schedule(1000)
    (0.01, 0.01)
    >>> schedule
    Constant(lr=0.01)
    """

    _fields = ("lr",)

    def __init__(self, lr: float):
        self.lr = check_range(lr, "lr", 0)

    def _value(self, step):
        return self.lr


class PiecewiseConstant(Schedule):
    r"""Piecewise constant (seed 004): the learning rate drops at fixed milestones.

    .. math::

        \eta_t = \eta_0 \prod_{i \,:\, m_i < t} \gamma_i

    Steps :math:`1 \ldots m_1` use :math:`\eta_0`, steps :math:`m_1 + 1 \ldots m_2` use
    :math:`\eta_0 \gamma_1`, and so on: a milestone :math:`m` is the number of steps after
    which the learning rate is multiplied by its factor. ``factor`` is one number
    :math:`\gamma` for every milestone, or one factor per milestone (then any sequence of
    values :math:`\eta_i` can be reached, as in the seed's
    :math:`\eta(t) = \eta_i` for :math:`t_i \le t < t_{i+1}`).

    Same as ``torch.optim.lr_scheduler.MultiStepLR(milestones, gamma=factor)`` with the same
    milestone numbers, at torch's ``last_epoch = t - 1``.

    Parameters
    ----------
    lr : float >= 0, the learning rate before the first milestone
    milestones : increasing sequence of integers >= 1
    factor : float >= 0 or a sequence of them (one per milestone), default 0.1

    >>> import fastdescent as fd
    >>> schedule = fd.schedules.PiecewiseConstant(1.0, milestones=[2, 4], factor=0.5)
    >>> [schedule(t) for t in range(1, 7)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    >>> values = fd.schedules.PiecewiseConstant(0.1, [10, 20], factor=[0.3, 0.1])
    >>> round(values(15), 6), round(values(25), 6)
    (0.03, 0.003)
    """

    _fields = ("lr", "milestones", "factor")

    def __init__(self, lr: float, milestones: Sequence[int], factor=0.1):
        self.lr = check_range(lr, "lr", 0)
        self.milestones = _check_milestones(milestones, "milestones")
        if isinstance(factor, Sequence) and not isinstance(factor, (str, bytes)):
            if len(factor) != len(self.milestones):
                raise ValueError(f"factor has {len(factor)} values but there are "
                                 f"{len(self.milestones)} milestones: give one per milestone")
            self.factor: float | tuple[float, ...] = tuple(
                check_range(f, f"factor[{i}]", 0) for i, f in enumerate(factor))
        else:
            self.factor = check_range(factor, "factor", 0)
        factors = (self.factor if isinstance(self.factor, tuple)
                   else (self.factor,) * len(self.milestones))
        self._levels = [self.lr]
        for f in factors:
            self._levels.append(self._levels[-1] * f)

    def _value(self, step):
        return self._levels[bisect.bisect_left(self.milestones, step)]


class StepDecay(Schedule):
    r"""Multiply the learning rate by :math:`\gamma` every :math:`k` steps.

    .. math::

        \eta_t = \eta_0\, \gamma^{\lfloor (t - 1) / k \rfloor}

    Steps :math:`1 \ldots k` use :math:`\eta_0`, steps :math:`k+1 \ldots 2k` use
    :math:`\eta_0 \gamma`, and so on. Same as ``torch.optim.lr_scheduler.StepLR(step_size=k,
    gamma)`` at torch's ``last_epoch = t - 1``.

    Parameters
    ----------
    lr : float >= 0
    step_size : int >= 1, the :math:`k` steps between drops
    gamma : float >= 0, default 0.1

    >>> import fastdescent as fd
    >>> schedule = fd.schedules.StepDecay(1.0, step_size=3, gamma=0.5)
    >>> [schedule(t) for t in range(1, 8)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    """

    _fields = ("lr", "step_size", "gamma")

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1):
        self.lr = check_range(lr, "lr", 0)
        self.step_size = _check_int(step_size, "step_size", 1)
        self.gamma = check_range(gamma, "gamma", 0)

    def _value(self, step):
        return self.lr * self.gamma ** ((step - 1) // self.step_size)


class ExponentialDecay(Schedule):
    r"""Exponential decay (seed 004): :math:`\eta_t = \eta_0\, e^{-\lambda t}`.

    torch's ``ExponentialLR(gamma)`` uses :math:`\eta_0 \gamma^{e}` at its epoch
    :math:`e = t - 1`, i.e. :math:`\eta_0 \gamma^{t-1}`: with :math:`\gamma = e^{-\lambda}`
    it is one step behind, and ``ExponentialDecay(lr / gamma, rate=-log(gamma))`` gives
    exactly torch's values.

    The seed's code increments its counter before using it, starting from ``t = 1``, so its
    step :math:`k` uses :math:`\eta\, e^{-0.1 (k + 1)}`, which is
    ``ExponentialDecay(eta * exp(-0.1), rate=0.1)``.

    Parameters
    ----------
    lr : float >= 0, :math:`\eta_0`
    rate : float >= 0, the decay rate :math:`\lambda` per step

    >>> import math, fastdescent as fd
    >>> schedule = fd.schedules.ExponentialDecay(0.1, rate=0.5)
    >>> schedule(2) == 0.1 * math.exp(-1.0)
    True
    """

    _fields = ("lr", "rate")

    def __init__(self, lr: float, rate: float):
        self.lr = check_range(lr, "lr", 0)
        self.rate = check_range(rate, "rate", 0)

    def _value(self, step):
        return self.lr * math.exp(-self.rate * step)


class PolynomialDecay(Schedule):
    r"""Polynomial decay (seed 004): :math:`\eta_t = \eta_0\, (1 + \beta t)^{-\alpha}`.

    With :math:`\alpha = 1/2` the learning rate falls as :math:`O(t^{-1/2})`, the rate at
    which convex stochastic problems converge. (torch's ``PolynomialLR`` is a different
    schedule, :math:`\eta_0 (1 - e/T)^p`, reaching 0 at a fixed end.) The seed's code,
    which increments its counter before use, starts at ``t = 2``: its step :math:`k` is
    this schedule at :math:`t = k + 1`.

    Parameters
    ----------
    lr : float >= 0, :math:`\eta_0`
    alpha : float >= 0, the power :math:`\alpha`
    beta : float >= 0, the time scale :math:`\beta`

    >>> import fastdescent as fd
    >>> schedule = fd.schedules.PolynomialDecay(1.0, alpha=0.5, beta=0.1)
    >>> schedule(30)                       # (1 + 3) ** -0.5
    0.5
    """

    _fields = ("lr", "alpha", "beta")

    def __init__(self, lr: float, alpha: float, beta: float):
        self.lr = check_range(lr, "lr", 0)
        self.alpha = check_range(alpha, "alpha", 0)
        self.beta = check_range(beta, "beta", 0)

    def _value(self, step):
        return self.lr * (1.0 + self.beta * step) ** -self.alpha


class CosineAnnealing(Schedule):
    r"""Cosine annealing from :math:`\eta_0` down to a floor :math:`\eta_{min}` over
    :math:`T` steps, then the floor.

    .. math::

        \eta_t = \eta_{min} + \tfrac12 (\eta_0 - \eta_{min})
                 \left(1 + \cos\frac{\pi \min(t - 1,\, T)}{T}\right)

    Step 1 uses :math:`\eta_0`; step :math:`T + 1` and every later step use
    :math:`\eta_{min}`. Same as ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T,
    eta_min)`` at torch's ``last_epoch = t - 1`` for :math:`t \le T + 1` (torch's cosine
    then rises again; this one stays at the floor), and as optax's
    ``cosine_decay_schedule`` with ``alpha = lr_min / lr`` at count :math:`t - 1`.

    Parameters
    ----------
    lr : float >= 0, :math:`\eta_0`
    steps : int >= 1, :math:`T`
    lr_min : float >= 0, default 0, the floor :math:`\eta_{min}`

    >>> import fastdescent as fd
    >>> schedule = fd.schedules.CosineAnnealing(1.0, steps=4, lr_min=0.1)
    >>> [round(schedule(t), 4) for t in range(1, 8)]
    [1.0, 0.8682, 0.55, 0.2318, 0.1, 0.1, 0.1]
    """

    _fields = ("lr", "steps", "lr_min")

    def __init__(self, lr: float, steps: int, lr_min: float = 0.0):
        self.lr = check_range(lr, "lr", 0)
        self.steps = _check_int(steps, "steps", 1)
        self.lr_min = check_range(lr_min, "lr_min", 0)

    def _value(self, step):
        progress = min(step - 1, self.steps) / self.steps
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1.0 + math.cos(math.pi * progress))


class LinearWarmup(Schedule):
    r"""Linear warmup from :math:`\eta_{start}` to :math:`\eta_0` over :math:`W` steps,
    then :math:`\eta_0`.

    .. math::

        \eta_t = \eta_{start} + (\eta_0 - \eta_{start}) \frac{\min(t, W)}{W}

    Step 1 uses :math:`\eta_{start} + (\eta_0 - \eta_{start})/W` (never a wasted step at
    :math:`\eta_{start} = 0`), step :math:`W` and later steps use :math:`\eta_0`. Join it
    with a decay to warm up then decay (see :class:`Join`).

    ``torch.optim.lr_scheduler.LinearLR(start_factor=s, total_iters=W)`` on a base rate
    :math:`\eta_0` takes one more step to get there: its epoch :math:`e` has
    :math:`\eta_0 (s + (1 - s) \min(e, W)/W)`, which is this schedule at :math:`t = e` with
    ``start_lr = s * lr`` (torch's epoch 0, at :math:`s \eta_0`, has no counterpart here).

    Parameters
    ----------
    lr : float >= 0, :math:`\eta_0` (reached at step W)
    warmup_steps : int >= 1, :math:`W`
    start_lr : float >= 0, default 0, :math:`\eta_{start}`

    >>> import fastdescent as fd
    >>> schedule = fd.schedules.LinearWarmup(0.1, warmup_steps=5)
    >>> [round(schedule(t), 4) for t in range(1, 8)]
    [0.02, 0.04, 0.06, 0.08, 0.1, 0.1, 0.1]
    """

    _fields = ("lr", "warmup_steps", "start_lr")

    def __init__(self, lr: float, warmup_steps: int, start_lr: float = 0.0):
        self.lr = check_range(lr, "lr", 0)
        self.warmup_steps = _check_int(warmup_steps, "warmup_steps", 1)
        self.start_lr = check_range(start_lr, "start_lr", 0)

    def _value(self, step):
        progress = min(step, self.warmup_steps) / self.warmup_steps
        return self.start_lr + (self.lr - self.start_lr) * progress


class OneCycle(Schedule):
    r"""The one-cycle policy (Smith and Topin), as ``torch.optim.lr_scheduler.OneCycleLR``
    (its learning rates; torch also cycles the momentum, which this does not).

    With :math:`N` total steps, :math:`\eta_{max}`, :math:`\eta_{init} = \eta_{max}/d`
    (``div_factor``) and :math:`\eta_{end} = \eta_{init}/d_f` (``final_div_factor``), the
    learning rate anneals (by a cosine or linearly) between these values in phases of the
    0-based step :math:`s = t - 1`:

    * two phases: :math:`\eta_{init} \to \eta_{max}` for :math:`s \in [0, pN - 1]`, then
      :math:`\eta_{max} \to \eta_{end}` for :math:`s \in [pN - 1, N - 1]`;
    * three phases: :math:`\eta_{init} \to \eta_{max}` up to :math:`pN - 1`, back to
      :math:`\eta_{init}` at :math:`2pN - 2`, then :math:`\to \eta_{end}` at :math:`N - 1`.

    Within a phase from :math:`a` to :math:`b` over :math:`[s_0, s_1]`, with
    :math:`q = (s - s_0)/(s_1 - s_0)`: cosine :math:`b + (a - b)(1 + \cos \pi q)/2`, linear
    :math:`a + (b - a) q`. Values agree with torch at ``last_epoch = t - 1`` for
    :math:`t \le N`; after step :math:`N` (where torch raises) this stays at
    :math:`\eta_{end}`.

    Parameters
    ----------
    max_lr : float >= 0
    total_steps : int >= 2, :math:`N`
    pct_start : float in (0, 1), default 0.3, the fraction :math:`p` spent warming up
    anneal : {"cos", "linear"}, default "cos"
    div_factor : float > 0, default 25
    final_div_factor : float > 0, default 1e4
    three_phase : bool, default False

    Examples
    --------
    >>> import fastdescent as fd
    >>> schedule = fd.schedules.OneCycle(1.0, total_steps=10, anneal="linear", div_factor=10,
    ...                                  final_div_factor=100)
    >>> [round(schedule(t), 4) for t in range(1, 11)]
    [0.1, 0.55, 1.0, 0.8573, 0.7146, 0.5719, 0.4291, 0.2864, 0.1437, 0.001]
    """

    _fields = ("max_lr", "total_steps", "pct_start", "anneal", "div_factor",
               "final_div_factor", "three_phase")

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 anneal: str = "cos", div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False):
        self.max_lr = check_range(max_lr, "max_lr", 0)
        self.total_steps = _check_int(total_steps, "total_steps", 2)
        self.pct_start = check_range(pct_start, "pct_start", 0, 1, low_open=True,
                                     high_open=True)
        self.anneal = _check_choice(anneal, "anneal", ("cos", "linear"))
        self.div_factor = check_range(div_factor, "div_factor", 0, low_open=True)
        self.final_div_factor = check_range(final_div_factor, "final_div_factor", 0,
                                            low_open=True)
        if not isinstance(three_phase, bool):
            raise TypeError(f"three_phase must be True or False, got {type(three_phase).__name__}")
        self.three_phase = three_phase
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        n, p = self.total_steps, self.pct_start
        if three_phase:
            phases = [(p * n - 1, initial, self.max_lr), (2 * p * n - 2, self.max_lr, initial),
                      (n - 1, initial, final)]
        else:
            phases = [(p * n - 1, initial, self.max_lr), (n - 1, self.max_lr, final)]
        ends = [end for end, _, _ in phases]
        if any(b <= a for a, b in zip([0.0] + ends, ends)):
            raise ValueError(f"pct_start={p} with total_steps={n} leaves a phase of no steps: "
                             "raise total_steps or move pct_start away from the ends")
        self._phases = phases

    def _value(self, step):
        s = min(step - 1, self.total_steps - 1)
        start = 0.0
        for i, (end, a, b) in enumerate(self._phases):
            if s <= end or i == len(self._phases) - 1:
                q = (s - start) / (end - start)
                if self.anneal == "cos":
                    return b + (a - b) / 2.0 * (math.cos(math.pi * q) + 1)
                return (b - a) * q + a
            start = end
        raise AssertionError("unreachable")  # pragma: no cover


class Join(Schedule):
    r"""Schedules one after another: ``schedules[i]`` runs from step
    :math:`b_{i-1} + 1` to step :math:`b_i` (with :math:`b_{-1} = 0`), the last one for
    every step after the last boundary.

    .. math::

        \eta_t = \eta^{(i)}_{t - b_{i-1}} \quad \text{for } b_{i-1} < t \le b_i

    With ``restart=True`` (the default) each schedule counts its own steps from 1 again, so
    a schedule is written as if it started the run: ``Join([LinearWarmup(lr, 100),
    CosineAnnealing(lr, 900)], boundaries=[100])`` warms up for 100 steps, then anneals
    from step 101 to step 1001. With ``restart=False`` every schedule is given the global
    step :math:`t`, so the later schedules continue where the global count is (optax's
    ``join_schedules`` restarts, as the default here does).

    Parameters
    ----------
    schedules : sequence of callables ``step -> lr`` (at least one)
    boundaries : increasing sequence of integers >= 1, one fewer than ``schedules``
    restart : bool, default True

    Examples
    --------
    >>> import fastdescent as fd
    >>> joined = fd.schedules.Join([fd.schedules.Constant(1.0),
    ...                             fd.schedules.StepDecay(1.0, step_size=1, gamma=0.5)],
    ...                            boundaries=[2])
    >>> [joined(t) for t in range(1, 6)]
    [1.0, 1.0, 1.0, 0.5, 0.25]
    >>> continuing = fd.schedules.Join(joined.schedules, [2], restart=False)
    >>> [continuing(t) for t in range(1, 6)]
    [1.0, 1.0, 0.25, 0.125, 0.0625]
    """

    _fields = ("schedules", "boundaries", "restart")

    def __init__(self, schedules: Sequence[Callable[[int], float]], boundaries: Sequence[int],
                 restart: bool = True):
        if isinstance(schedules, (str, bytes)) or not isinstance(schedules, Sequence):
            raise TypeError(f"schedules must be a sequence of callables step -> lr, "
                            f"got {type(schedules).__name__}")
        if not schedules:
            raise ValueError("schedules is empty: give at least one schedule")
        for i, s in enumerate(schedules):
            if not callable(s):
                raise TypeError(f"schedules[{i}] must be a callable step -> lr, "
                                f"got {type(s).__name__}")
        self.schedules = tuple(schedules)
        self.boundaries = _check_milestones(boundaries, "boundaries")
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(f"boundaries must have one fewer entry than schedules "
                             f"({len(self.schedules) - 1}), got {len(self.boundaries)}")
        if not isinstance(restart, bool):
            raise TypeError(f"restart must be True or False, got {type(restart).__name__}")
        self.restart = restart

    def _value(self, step):
        i = bisect.bisect_left(self.boundaries, step)
        offset = self.boundaries[i - 1] if (i and self.restart) else 0
        return float(self.schedules[i](step - offset))


class ReduceOnPlateau(Schedule):
    r"""Divide the learning rate by a factor when the loss stops improving, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``.

    The schedule is told each loss with :meth:`observe` (after each step, or each epoch:
    ``patience`` and ``cooldown`` count observations). ``schedule(t)`` returns the current
    learning rate, whatever :math:`t`. :func:`fastdescent.minimize` observes the loss
    after every step by itself when its ``lr`` is such a schedule.

    On each observed loss :math:`L` (mode ``"min"``): it is an improvement when
    :math:`L < L_{best} (1 - \tau)` (``threshold_mode="rel"``) or
    :math:`L < L_{best} - \tau` (``"abs"``), which makes it the new best and resets the count
    of bad observations; otherwise the count grows. During a cooldown bad observations are
    not counted. When the count exceeds ``patience``:
    :math:`\eta \leftarrow \max(\eta \cdot \text{factor}, \eta_{min})` (skipped when the
    change is at most ``eps``), then a cooldown of ``cooldown`` observations starts.
    Mode ``"max"`` watches for increases instead (a score rather than a loss). For a loss
    that may be negative, relative thresholds behave oddly (as in torch): use
    ``threshold_mode="abs"``. A NaN loss is never an improvement.

    Parameters
    ----------
    lr : float >= 0, the starting learning rate
    factor : float in [0, 1), default 0.1
    patience : int >= 0, default 10
    threshold : float >= 0, default 1e-4, :math:`\tau`
    threshold_mode : {"rel", "abs"}, default "rel"
    cooldown : int >= 0, default 0
    min_lr : float >= 0, default 0, :math:`\eta_{min}`
    eps : float >= 0, default 1e-8
    mode : {"min", "max"}, default "min"

    Attributes
    ----------
    current_lr : the learning rate now; ``best``, ``num_bad_observations``,
    ``cooldown_counter`` : the state, as torch names it (``num_bad_epochs`` there).

    >>> import fastdescent as fd
    >>> plateau = fd.schedules.ReduceOnPlateau(0.1, factor=0.5, patience=1)
    >>> [plateau.observe(loss) for loss in [1.0, 0.9, 0.95, 0.97, 0.8]]
    [0.1, 0.1, 0.1, 0.05, 0.05]
    >>> plateau(6)
    0.05
    """

    _fields = ("lr", "factor", "patience", "threshold", "threshold_mode", "cooldown",
               "min_lr", "eps", "mode")

    def __init__(self, lr: float, factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8, mode: str = "min"):
        self.lr = check_range(lr, "lr", 0)
        self.factor = check_range(factor, "factor", 0, 1, high_open=True)
        self.patience = _check_int(patience, "patience", 0)
        self.threshold = check_range(threshold, "threshold", 0)
        self.threshold_mode = _check_choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.cooldown = _check_int(cooldown, "cooldown", 0)
        self.min_lr = check_range(min_lr, "min_lr", 0)
        self.eps = check_range(eps, "eps", 0)
        self.mode = _check_choice(mode, "mode", ("min", "max"))
        self.reset()

    def reset(self) -> None:
        """Forget every observation: back to ``lr`` with no best loss.

        >>> import fastdescent as fd
        >>> plateau = fd.schedules.ReduceOnPlateau(1.0, patience=0)
        >>> plateau.observe(1.0), plateau.observe(2.0)
        (1.0, 0.1)
        >>> plateau.reset(); plateau(1)
        1.0
        """
        self.current_lr = self.lr
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_observations = 0
        self.cooldown_counter = 0

    def _is_improvement(self, loss: float) -> bool:
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return loss < self.best * (1.0 - self.threshold)
            return loss < self.best - self.threshold
        if self.threshold_mode == "rel":
            return loss > self.best * (1.0 + self.threshold)
        return loss > self.best + self.threshold

    def observe(self, loss: float) -> float:
        """Take one loss into account; return the learning rate for the next step."""
        if isinstance(loss, (bool, np.bool_)) or not isinstance(loss, numbers.Real):
            array = np.asarray(loss) if not isinstance(loss, (str, bytes)) else None
            if array is None or array.size != 1 or array.dtype.kind not in "iuf":
                raise TypeError(f"loss must be a real number, got {type(loss).__name__}")
            loss = float(array.reshape(()))
        loss = float(loss)
        if self._is_improvement(loss):
            self.best = loss
            self.num_bad_observations = 0
        else:
            self.num_bad_observations += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_observations = 0
        if self.num_bad_observations > self.patience:
            reduced = max(self.current_lr * self.factor, self.min_lr)
            if self.current_lr - reduced > self.eps:
                self.current_lr = reduced
            self.cooldown_counter = self.cooldown
            self.num_bad_observations = 0
        return self.current_lr

    def _value(self, step):
        return self.current_lr

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, current_lr={self.current_lr!r})"

