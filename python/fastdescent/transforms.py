"""Gradient transformations usable with any optimizer, as optax and torch users expect them:
clipping by global norm and by value, skipping steps whose gradients are not finite, an
exponential moving average of the params, and :func:`chain` to put them in front of (and
behind) an optimizer's step.

The work that touches every element runs as native kernels of the current backend (the sum
of squares in double, scaling, clipping, the average), one call per list of tensors. Every
function checks its arguments before it writes anything. Gradients are transformed in place.

>>> import numpy as np, fastdescent as fd
>>> w = np.zeros(2)
>>> opt = fd.chain(fd.SGD([w], lr=1.0), fd.SkipNonFinite(), fd.ClipByGlobalNorm(1.0))
>>> opt.step([np.array([3.0, 4.0])])           # norm 5: clipped to norm 1
True
>>> w.round(6)
array([-0.6, -0.8])
>>> opt.step([np.array([np.nan, 1.0])])        # not finite: no step
False
>>> opt.skipped, w.round(6)
(1, array([-0.6, -0.8]))

The pieces (a *transform* is any object with ``before_step(grads) -> bool``, which may
change ``grads`` in place and returns False to skip the step, and/or ``after_step()``):

- :func:`global_norm`, :func:`clip_by_global_norm` (as ``torch.nn.utils.clip_grad_norm_``),
  :func:`clip_by_value` (as ``torch.nn.utils.clip_grad_value_``) and their transforms
  :class:`ClipByGlobalNorm`, :class:`ClipByValue`;
- :class:`SkipNonFinite` and :func:`skip_nonfinite`;
- :class:`EMA` (as ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``);
- :func:`chain` / :class:`Chain`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import backends
from .backends import lists

__all__ = ["global_norm", "clip_by_global_norm", "clip_by_value", "ClipByGlobalNorm",
           "ClipByValue", "SkipNonFinite", "skip_nonfinite", "EMA", "Chain", "chain"]


def _listed(function: str, grads) -> list:
    if isinstance(grads, np.ndarray):
        return [grads]
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"{function}: grads must be an array or a list of arrays, "
                        f"got {type(grads).__name__}")
    return list(grads)


def _explain(function: str, grads: list, writable: bool) -> None:
    """After a kernel refused ``grads`` (nothing was written): raise its error with the
    caller's names."""
    lists.check_lists(function, ("grads", grads, writable, True))


def _norm(backend, function: str, grads: list) -> float:
    try:
        total = backend.sum_of_squares(grads)
    except (TypeError, ValueError):
        _explain(function, grads, False)
        raise
    if math.isfinite(total):
        return math.sqrt(total)
    present = [g for g in grads if g is not None]
    if math.isinf(total) and backend.first_nonfinite(present) < 0:
        # Every element is finite but the sum of squares overflowed (float64 elements above
        # about 1e154): measure again relative to the largest magnitude.
        largest = max(float(np.max(np.abs(g))) for g in present if g.size)
        scaled = sum(float(np.sum(np.square(g / largest))) for g in present if g.size)
        return largest * math.sqrt(scaled)
    return math.sqrt(total)  # inf or NaN: some element is


def global_norm(grads, *, backend: str | None = None) -> float:
    """The Euclidean norm of all gradients taken together, ``sqrt(sum_k sum_i g_k[i]^2)``,
    accumulated in double (``None`` entries are skipped, a bare array is one tensor).

    It is infinite or NaN exactly when some element is; an overflow of the sum of squares
    (float64 elements above about 1e154) is measured again with scaling.

    >>> import numpy as np, fastdescent as fd
    >>> fd.global_norm([np.array([3.0]), np.array([[4.0]], np.float32), None])
    5.0
    """
    be = backends.resolve(backend)
    return _norm(be, "global_norm", _listed("global_norm", grads))


def _check_max_norm(function: str, max_norm) -> float:
    value = lists.real_arg(function, "max_norm", max_norm, infinite_ok=True)
    if value < 0:
        raise ValueError(f"{function}: max_norm must be >= 0, got {max_norm}")
    return value


def clip_by_global_norm(grads, max_norm, *, error_if_nonfinite: bool = False,
                        backend: str | None = None) -> float:
    """Scale all gradients together so that their global norm is at most ``max_norm``, in
    place, and return the norm they had before. As ``torch.nn.utils.clip_grad_norm_``::

        norm = sqrt(sum_k |g_k|^2),   c = max_norm / (norm + 1e-6),
        g_k <- c g_k   when c < 1 (otherwise unchanged).

    - ``norm == 0``: ``c`` is large, nothing changes (no division by zero).
    - ``norm`` not finite (some element is NaN or infinite): the gradients are left
      unchanged and the norm (inf or NaN) is returned, so that a caller (or
      :class:`SkipNonFinite`, or :class:`Chain` with :class:`ClipByGlobalNorm`) can skip the
      step; with ``error_if_nonfinite=True`` a ValueError is raised instead. (torch would
      multiply by ``max_norm / inf = 0``, turning finite entries to 0 and infinite ones to
      NaN.)

    ``grads``: an array or a list of arrays (float32/float64, C-contiguous, writable; ``None``
    entries skipped). ``max_norm >= 0`` (``inf``: never clip). The norm is accumulated in
    double, in one native pass; scaling is a second pass, only when needed.

    >>> import numpy as np, fastdescent as fd
    >>> g = [np.array([3.0, 0.0]), np.array([4.0])]
    >>> fd.clip_by_global_norm(g, max_norm=1.0)
    5.0
    >>> [x.round(6).tolist() for x in g]
    [[0.6, 0.0], [0.8]]
    >>> fd.clip_by_global_norm([np.zeros(3)], max_norm=1.0)    # norm 0: nothing to do
    0.0
    """
    function = "clip_by_global_norm"
    max_norm = _check_max_norm(function, max_norm)
    error_if_nonfinite = _check_flag(function, "error_if_nonfinite", error_if_nonfinite)
    be = backends.resolve(backend)
    grads = _listed(function, grads)
    norm = _norm(be, function, grads)
    if not math.isfinite(norm):
        if error_if_nonfinite:
            raise ValueError(f"{function}: the global norm of the gradients is {norm} "
                             "(error_if_nonfinite=True); nothing was changed")
        return norm
    factor = max_norm / (norm + 1e-6)
    if factor < 1.0:
        try:
            be.scale_(grads, factor)
        except (TypeError, ValueError):
            _explain(function, grads, True)
            raise
    return norm


def _check_flag(function: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{function}: {name} must be True or False, got {type(value).__name__}")
    return bool(value)


def clip_by_value(grads, lo, hi, *, backend: str | None = None) -> None:
    """Clip every gradient element to ``[lo, hi]`` in place: ``g <- min(max(g, lo), hi)``.

    As ``torch.nn.utils.clip_grad_value_(params, v)`` with ``lo = -v, hi = v`` (and
    ``optax.clip``). NaN stays NaN. ``lo <= hi``; either may be infinite. Bounds are cast to
    each array's dtype.

    >>> import numpy as np, fastdescent as fd
    >>> g = np.array([-3.0, 0.5, 2.0])
    >>> fd.clip_by_value(g, -1.0, 1.0)
    >>> g
    array([-1. ,  0.5,  1. ])
    """
    function = "clip_by_value"
    lo, hi = lists.check_bounds(function, lo, hi)
    be = backends.resolve(backend)
    grads = _listed(function, grads)
    try:
        be.clip_(grads, lo, hi)
    except (TypeError, ValueError):
        _explain(function, grads, True)
        raise


# ----------------------------------------------------------------------------- transforms

class ClipByGlobalNorm:
    """Transform: :func:`clip_by_global_norm` before each step. ``last_norm`` is the norm
    before clipping at the last step. A non-finite norm skips the step (the gradients are
    left unchanged), unless ``skip_nonfinite=False``, which lets it through unchanged.

    >>> import numpy as np, fastdescent as fd
    >>> clip = fd.ClipByGlobalNorm(2.0)
    >>> g = [np.array([0.0, 4.0])]
    >>> clip.before_step(g), clip.last_norm, g[0].round(6)
    (True, 4.0, array([0., 2.]))
    """

    def __init__(self, max_norm: float, *, skip_nonfinite: bool = True,
                 backend: str | None = None):
        self.max_norm = _check_max_norm("ClipByGlobalNorm", max_norm)
        self.skip_nonfinite = _check_flag("ClipByGlobalNorm", "skip_nonfinite", skip_nonfinite)
        self.backend = backend
        self.last_norm: float | None = None

    def before_step(self, grads) -> bool:
        self.last_norm = clip_by_global_norm(grads, self.max_norm, backend=self.backend)
        return math.isfinite(self.last_norm) or not self.skip_nonfinite

    def __repr__(self) -> str:
        return f"ClipByGlobalNorm({self.max_norm})"


class ClipByValue:
    """Transform: :func:`clip_by_value` to ``[lo, hi]`` before each step.

    >>> import numpy as np, fastdescent as fd
    >>> g = [np.array([-5.0, 5.0])]
    >>> fd.ClipByValue(-1, 2).before_step(g), g[0]
    (True, array([-1.,  2.]))
    """

    def __init__(self, lo: float, hi: float, *, backend: str | None = None):
        self.lo, self.hi = lists.check_bounds("ClipByValue", lo, hi)
        self.backend = backend

    def before_step(self, grads) -> bool:
        clip_by_value(grads, self.lo, self.hi, backend=self.backend)
        return True

    def __repr__(self) -> str:
        return f"ClipByValue({self.lo}, {self.hi})"


class SkipNonFinite:
    """Transform: skip the step (leave params and optimizer state exactly as they are) when
    any gradient element is NaN or infinite, counting the skips in ``skipped``.

    The scan is one native pass over the gradients (``None`` entries skipped). Gradients the
    scan cannot read (not float arrays, ...) are let through, so that the optimizer's step
    raises its own error about them.

    >>> import numpy as np, fastdescent as fd
    >>> skip = fd.SkipNonFinite()
    >>> skip.before_step([np.ones(2)]), skip.before_step([np.array([1.0, np.inf])])
    (True, False)
    >>> skip.skipped
    1
    """

    def __init__(self, *, backend: str | None = None):
        self.backend = backend
        self.skipped = 0

    def before_step(self, grads) -> bool:
        present = [g for g in grads if g is not None]
        try:
            bad = backends.resolve(self.backend).first_nonfinite(present)
        except (TypeError, ValueError):
            return True
        if bad >= 0:
            self.skipped += 1
            return False
        return True

    def __repr__(self) -> str:
        return f"SkipNonFinite(skipped={self.skipped})"


class EMA:
    """An exponential moving average of params:

        avg_k <- decay * avg_k + (1 - decay) * p_k      at every :meth:`update`,

    computed as ``torch.lerp(avg_k, p_k, 1 - decay)``, exactly what
    ``torch.optim.swa_utils.get_ema_multi_avg_fn(decay)`` does in ``AveragedModel`` (and, in
    exact arithmetic, ``optax.ema(decay, debias=False)``). One native call updates every
    tensor. The averages start as a copy of the params when the EMA is made (torch's
    AveragedModel copies the params at its first ``update_parameters`` instead: call that
    once before training to match).

    ``params``: the arrays to follow (a list, one array, or an optimizer: its params); they
    are read, never written, except by :meth:`copy_to` and :meth:`swap`. ``0 <= decay <= 1``.
    In a :func:`chain`, the EMA updates after every step that ran.

    >>> import numpy as np, fastdescent as fd
    >>> w = np.zeros(2)
    >>> ema = fd.EMA([w], decay=0.75)
    >>> w[:] = 4.0
    >>> ema.update()
    >>> ema.averages[0]
    array([1., 1.])
    >>> ema.swap(); w                                  # evaluate with the averages ...
    array([1., 1.])
    >>> ema.swap(); w                                  # ... and back
    array([4., 4.])
    """

    def __init__(self, params, decay: float = 0.999, *, backend: str | None = None):
        if hasattr(params, "params") and not isinstance(params, (list, tuple, np.ndarray)):
            params = params.params  # an optimizer
        params = [params] if isinstance(params, np.ndarray) else params
        if not isinstance(params, (list, tuple)):
            raise TypeError(f"EMA: params must be a list of arrays, an array or an optimizer, "
                            f"got {type(params).__name__}")
        self._params = list(params)
        for k, p in enumerate(self._params):
            lists.check_array("EMA", f"params[{k}]", p, False)
        self.decay = lists.check_decay("EMA", decay)
        self._backend = backends.resolve(backend)
        self._averages = [p.copy() for p in self._params]
        self.updates = 0

    @property
    def params(self) -> list[np.ndarray]:
        """The arrays followed."""
        return list(self._params)

    @property
    def averages(self) -> list[np.ndarray]:
        """The averages (live arrays, one per param)."""
        return list(self._averages)

    def update(self) -> None:
        """One step of the average: ``avg <- decay * avg + (1 - decay) * param``."""
        self._backend.ema_update(self._averages, self._params, self.decay)
        self.updates += 1

    def after_step(self) -> None:
        """:meth:`update` (a transform's hook, called by :class:`Chain` after a step)."""
        self.update()

    def copy_to(self, params=None) -> None:
        """Copy the averages into ``params`` (default: the params followed). Every target is
        checked (shape, dtype, writable) before any is written."""
        targets = self._params if params is None else (
            [params] if isinstance(params, np.ndarray) else list(params))
        if len(targets) != len(self._averages):
            raise ValueError(f"EMA.copy_to: params has {len(targets)} arrays but the EMA has "
                             f"{len(self._averages)}")
        lists.check_lists("EMA.copy_to", ("params", targets, True, False),
                          ("averages", self._averages, False, False))
        for target, average in zip(targets, self._averages):
            np.copyto(target, average)

    def swap(self) -> None:
        """Exchange the contents of the params and the averages (evaluate with the averages,
        then swap again to continue training)."""
        lists.check_lists("EMA.swap", ("params", self._params, True, False),
                          ("averages", self._averages, True, False))
        for param, average in zip(self._params, self._averages):
            held = param.copy()
            np.copyto(param, average)
            np.copyto(average, held)

    def state_dict(self) -> dict[str, Any]:
        """``{"decay": d, "updates": n, "averages": [copies]}``."""
        return {"decay": self.decay, "updates": self.updates,
                "averages": [a.copy() for a in self._averages]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (everything checked before anything changes)."""
        if not isinstance(state, Mapping):
            raise TypeError(f"EMA.load_state_dict: state must be a dict, "
                            f"got {type(state).__name__}")
        for key in ("decay", "updates", "averages"):
            if key not in state:
                raise ValueError(f"EMA.load_state_dict: state has no {key!r} entry")
        decay = lists.check_decay("EMA.load_state_dict", state["decay"])
        updates = state["updates"]
        if isinstance(updates, bool) or not isinstance(updates, (int, np.integer)) \
                or updates < 0:
            raise ValueError(f"EMA.load_state_dict: updates must be a whole number >= 0, "
                             f"got {updates!r}")
        saved = state["averages"]
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self._averages):
            raise ValueError(f"EMA.load_state_dict: averages must be a list of "
                             f"{len(self._averages)} arrays")
        for k, (a, mine) in enumerate(zip(saved, self._averages)):
            if not isinstance(a, np.ndarray) or a.dtype != mine.dtype or a.shape != mine.shape:
                raise ValueError(f"EMA.load_state_dict: averages[{k}] must be an array of "
                                 f"dtype {mine.dtype} and shape {mine.shape}")
        for a, mine in zip(saved, self._averages):
            np.copyto(mine, a)
        self.decay = decay
        self.updates = int(updates)

    def __repr__(self) -> str:
        return f"EMA({len(self._params)} tensors, decay={self.decay}, updates={self.updates})"


# ----------------------------------------------------------------------------- chaining

class Chain:
    """An optimizer behind a list of transforms: :meth:`step` runs each transform's
    ``before_step(grads)`` in order (any returning False skips the step: the optimizer is
    not called, the later transforms neither), then ``optimizer.step(grads)``, then every
    ``after_step()``. Made by :func:`chain`.

    ``skipped`` counts the steps a transform skipped, ``steps`` those that ran. Other
    attributes (``param_groups``, ``state``, ``state_dict``, ...) are the optimizer's.
    """

    def __init__(self, optimizer, *transforms):
        if not hasattr(optimizer, "step"):
            raise TypeError(f"chain: optimizer must have a step() method, "
                            f"got {type(optimizer).__name__}")
        for k, t in enumerate(transforms):
            if not (callable(getattr(t, "before_step", None))
                    or callable(getattr(t, "after_step", None))):
                raise TypeError(f"chain: transforms[{k}] ({type(t).__name__}) has neither "
                                "before_step(grads) nor after_step()")
        self.optimizer = optimizer
        self.transforms = list(transforms)
        self.skipped = 0
        self.steps = 0

    def step(self, grads, **kwargs) -> bool:
        """Transform ``grads`` (in place), step the optimizer (``kwargs`` go to its step),
        run the after-step hooks; False when a transform skipped the step."""
        grads = [grads] if isinstance(grads, np.ndarray) else list(grads)
        for t in self.transforms:
            before = getattr(t, "before_step", None)
            if before is not None and before(grads) is False:
                self.skipped += 1
                return False
        self.optimizer.step(grads, **kwargs)
        self.steps += 1
        for t in self.transforms:
            after = getattr(t, "after_step", None)
            if after is not None:
                after()
        return True

    def __getattr__(self, name):
        if name == "optimizer":  # not set yet (during unpickling)
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"chain({type(self.optimizer).__name__}, {inner})"


def chain(optimizer, *transforms) -> Chain:
    """``optimizer`` behind ``transforms`` (see :class:`Chain`), e.g.
    ``fd.chain(fd.Adam(params), fd.SkipNonFinite(), fd.ClipByGlobalNorm(1.0), fd.EMA(params))``.

    >>> import numpy as np, fastdescent as fd
    >>> w = np.zeros(1)
    >>> ema = fd.EMA([w], decay=0.5)
    >>> opt = fd.chain(fd.SGD([w], lr=1.0), fd.ClipByValue(-1, 1), ema)
    >>> opt.step([np.array([-8.0])]), w, ema.averages[0]
    (True, array([1.]), array([0.5]))
    """
    return Chain(optimizer, *transforms)


def skip_nonfinite(optimizer) -> Chain:
    """``optimizer`` whose steps with a NaN or infinite gradient are no-ops (params, state
    and step count unchanged), counted in ``.skipped``: ``chain(optimizer,
    SkipNonFinite())``.

    >>> import numpy as np, fastdescent as fd
    >>> w = np.zeros(2)
    >>> opt = fd.skip_nonfinite(fd.Adam([w], lr=0.1))
    >>> opt.step([np.array([np.nan, 1.0])]), opt.skipped, opt.step_count, w
    (False, 1, 0, array([0., 0.]))
    """
    backend = getattr(optimizer, "backend", None)
    return Chain(optimizer, SkipNonFinite(backend=backend if isinstance(backend, str) else None))
