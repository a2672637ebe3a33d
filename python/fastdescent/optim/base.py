"""The optimizer base class: param groups, validation, state, state dicts, step plans.

Subclasses state their hyperparameters (``_check_options``), which state arrays a group's
options need (``_needed_state``) and the options their kernel takes (``_kernel_options``).
Everything else, including the all-or-nothing guarantee of :meth:`step`, lives here.

A step is one call into the backend's *plan* (see :mod:`fastdescent.backends.plan`), which
holds the params and state arrays and checks the gradients. What the user can change between
steps (group options, the state mapping, a group's lr schedule) is noticed cheaply and
re-checked in Python before the plan runs again.

Threads: the kernels release the GIL, so optimizers of their own step in parallel. Calls on
one optimizer that read or write its state (:meth:`step`, :meth:`state_dict`,
:meth:`load_state_dict`, :meth:`add_param_group`) hold its lock, so from several threads
they run one after the other, never interleaved. The lock is a :class:`StepLock`, bound to
the plan: a step that needs nothing but the plan's call (``_ready``) is one call,
``plan.step_ready``, which takes the lock, steps and counts the step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, cast

import numpy as np

from .. import backends
from .._validation import (MemoryIndex, as_array, as_arrays, check_array, check_bool,
                           check_matches_param, check_range, is_array_like)
from ..backends.plan import KINDS, make_plan
from .step_lock import StepLock


def _key_name(where: str, key: str) -> str:
    return f"{where}[{key!r}]" if where else key


class ParamGroup(dict):
    """A param group: a dict that tells its optimizer when it changes, so a step re-checks
    the options only after they were edited (``group["lr"] = 0.01`` works as in
    torch.optim)."""

    __slots__ = ("_owner",)

    def __init__(self, owner: Optimizer, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._owner = owner

    def _changed(self):
        self._owner._edited = True

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key):
        super().__delitem__(key)
        self._changed()

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self._changed()

    def setdefault(self, key, default=None):
        value = super().setdefault(key, default)
        self._changed()
        return value

    def pop(self, *args):
        value = super().pop(*args)
        self._changed()
        return value

    def popitem(self):
        item = super().popitem()
        self._changed()
        return item

    def clear(self):
        super().clear()
        self._changed()

    def __ior__(self, other):  # type: ignore[misc]  # typeshed: list/dict's in-place ops differ
        result = super().__ior__(other)
        self._changed()
        return result


class GroupList(list):
    """``optimizer.param_groups``: a list that tells its optimizer when it changes."""

    def _changed(self):
        self._owner._edited = True

    def __init__(self, owner: Optimizer):
        super().__init__()
        self._owner = owner

    def __setitem__(self, index, value):
        super().__setitem__(index, value)
        self._changed()

    def __delitem__(self, index):
        super().__delitem__(index)
        self._changed()

    def __iadd__(self, other):  # type: ignore[misc]  # typeshed: list/dict's in-place ops differ
        result = super().__iadd__(other)
        self._changed()
        return result

    def __imul__(self, other):  # type: ignore[misc]  # typeshed: list/dict's in-place ops differ
        result = super().__imul__(other)
        self._changed()
        return result

    def append(self, value):
        super().append(value)
        self._changed()

    def extend(self, values):
        super().extend(values)
        self._changed()

    def insert(self, index, value):
        super().insert(index, value)
        self._changed()

    def pop(self, *args):
        value = super().pop(*args)
        self._changed()
        return value

    def remove(self, value):
        super().remove(value)
        self._changed()

    def clear(self):
        super().clear()
        self._changed()

    def reverse(self):
        super().reverse()
        self._changed()

    def sort(self, *args, **kwargs):
        super().sort(*args, **kwargs)
        self._changed()


class ParamState(MutableMapping):
    """The state of one param: its state arrays by name, and ``"step"`` (read from the
    optimizer's step counts). Arrays are the live ones the kernels update; assigning or
    deleting an entry is allowed and checked at the next step."""

    __slots__ = ("_owner", "_index", "_entries")

    def __init__(self, owner: Optimizer, index: int):
        self._owner = owner
        self._index = index
        self._entries: dict[str, Any] = {}

    def _has_step(self) -> bool:
        return self._owner._exposes_step

    def __getitem__(self, key):
        if key == "step" and self._has_step() and "step" not in self._entries:
            return int(self._owner._steps[self._index])
        return self._entries[key]

    def __setitem__(self, key, value):
        self._entries[key] = value
        self._owner._edited = True

    def __delitem__(self, key):
        if key == "step" and self._has_step() and "step" not in self._entries:
            raise KeyError("'step' cannot be deleted; load a state dict to reset it")
        del self._entries[key]
        self._owner._edited = True

    def __iter__(self) -> Iterator[str]:
        if self._has_step() and "step" not in self._entries:
            yield "step"
        yield from self._entries

    def __len__(self) -> int:
        return len(self._entries) + (self._has_step() and "step" not in self._entries)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class StateDict(dict):
    """``optimizer.state``: param index -> :class:`ParamState`, for the params stepped so
    far. Replacing or removing an entry is noticed by the next step."""

    __slots__ = ("_owner",)

    def __init__(self, owner: Optimizer, *args):
        super().__init__(*args)
        self._owner = owner

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self._owner._edited = True

    def __delitem__(self, key):
        super().__delitem__(key)
        self._owner._edited = True


class _NoPlan:
    """The plan before the first step builds one: never ready."""

    __slots__ = ("ready",)

    def __init__(self) -> None:
        self.ready = False

    def step_ready(self, grads) -> bool:
        return False


def _serialized(method):
    """``method`` runs holding the optimizer's lock (see the module docstring)."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


def _packed(requests) -> list[np.ndarray]:
    """New state arrays, one per request ``(name, param, source)``, shaped like ``param``
    and filled with ``source`` (a number, or an array to copy).

    Arrays of one name and dtype are views into one buffer, in request order, each starting
    on a 64-byte boundary: a step over many small tensors then streams through the state
    instead of hopping between scattered allocations.
    """
    out: list[np.ndarray | None] = [None] * len(requests)
    by_kind: dict[tuple[str, np.dtype], list[int]] = {}
    for k, (name, param, _) in enumerate(requests):
        by_kind.setdefault((name, param.dtype), []).append(k)
    for (_, dtype), members in by_kind.items():
        align = max(1, 64 // dtype.itemsize)
        padded = [-(-requests[k][1].size // align) * align for k in members]
        buffer = np.empty(sum(padded) + align, dtype)
        offset = (-(buffer.ctypes.data // dtype.itemsize)) % align
        for k, size in zip(members, padded):
            _, param, source = requests[k]
            view = buffer[offset:offset + param.size].reshape(param.shape)
            view[...] = source
            out[k] = view
            offset += size
    return cast("list[np.ndarray]", out)  # every entry filled above


class Optimizer:
    """Base of fastdescent's optimizers.

    Parameters are NumPy arrays (float16, float32 or float64, C-contiguous, writable) updated
    in place by :meth:`step`, or anything NumPy can view without a copy (torch CPU tensors, writable
    buffers such as ``memoryview``, DLPack exporters): such params are viewed once, here, and
    :attr:`params` and ``param_groups`` hold those views, so every step updates the caller's
    own memory. Gradients may be of the same kinds.

    float16 params are stored in float16 and computed in float32, as torch's fused CPU
    kernels compute them: their gradients and state arrays are float16 too, each element is
    widened to float32 (exactly), the optimizer's update rule runs in float32 (hyperparameters
    rounded to float32), and every value written back is rounded to float16, to nearest,
    ties to even. Within a step nothing is rounded to float16: the param update uses the
    float32 moments just computed, not their stored float16 copies. Results agree with
    torch 2.13's ``fused=True`` Adam and AdamW on float16 to within a float16 ulp or so
    (tests/test_float16.py). Groups may mix float16, float32 and float64 params.

    ``params`` is a list of arrays or a list of param groups
    (``{"params": [...], "lr": ..., ...}``) whose keys override the defaults, as in
    torch.optim. Params are numbered in the order they appear across groups; ``grads``
    passed to :meth:`step` and error messages (``params[3]``, ``grads[3]``) use that
    numbering.
    """

    #: the backend plan kind (see fastdescent.backends.plan.KINDS)
    _kind: str = ""
    #: names of the per-param state entries this optimizer keeps
    _state_keys: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict[str, Any], *, backend: str | None = None):
        self._backend = backends.resolve(backend)
        self._columns = KINDS[self._kind][0]
        self._exposes_step = "step" in self._state_keys
        self.defaults = self._checked_options(dict(defaults), "")
        self._param_groups: list[ParamGroup] = GroupList(self)
        self._params: list[np.ndarray] = []
        self._group_indices: list[list[int]] = []
        self._param_states: list[ParamState] = []
        self._steps = np.zeros(0, dtype=np.int64)
        # Reentrant: a schedule or callback may read the optimizer during its own step. It
        # also counts the steps (step_count).
        self._lock = StepLock()
        # The backend's step plan (cpp, numba or numpy); built by _sync before any step.
        self._plan: Any = _NoPlan()
        self._group_options: list[dict[str, Any]] = []
        self._schedules: list[tuple[int, Callable[[int], float]]] = []
        # Set by anything the user may change (groups, options, state): the next step checks
        # it all again before it runs.
        self._edited = True
        # True while a step is nothing but the plan's call: nothing edited, no schedule, every
        # stepped param already in self.state (cleared with every edit, see _edited).
        self._ready = False
        self._unexposed = 0  # params stepped or not, missing from self.state
        self._state = StateDict(self)
        if is_array_like(params):
            raise TypeError("params must be a list of arrays or of param groups, "
                            "not a single array (wrap it: [array])")
        if isinstance(params, (Mapping, str, bytes)) or not hasattr(params, "__iter__"):
            raise TypeError("params must be a list of arrays or of param groups, "
                            f"got {type(params).__name__}")
        params = list(params)
        if not params:
            raise ValueError("params is empty: the optimizer has nothing to update")
        is_group = [isinstance(p, Mapping) for p in params]
        if any(is_group) and not all(is_group):
            raise TypeError("params must be all arrays or all param groups (dicts), not a mix")
        groups = params if all(is_group) else [{"params": params}]
        for group in groups:
            self._append_group(group)
        self._check_no_overlap()

    # ----------------------------------------------------------------------------- groups

    @property
    def param_groups(self) -> list[ParamGroup]:
        """The param groups: each a dict of the group's params (``"params"``) and options.
        Options may be edited between steps (checked at the next step); params may not."""
        return self._param_groups

    @param_groups.setter
    def param_groups(self, groups) -> None:
        replacement = GroupList(self)
        list.extend(replacement, groups)
        self._param_groups = replacement
        self._edited = True

    @property
    def state(self) -> dict[int, ParamState]:
        """Per-param state of the params stepped so far: ``{index: {"step": n, name: array}}``.
        The arrays are the live ones; entries may be replaced (checked at the next step)."""
        return self._state

    @state.setter
    def state(self, state) -> None:
        replacement = StateDict(self)
        dict.update(replacement, state)
        self._state = replacement
        self._edited = True

    @property
    def backend(self) -> str:
        """Name of the backend this optimizer's kernels run on."""
        return self._backend.NAME

    @property
    def params(self) -> list[np.ndarray]:
        """All params, in the order ``grads`` are aligned with."""
        return list(self._params)

    @_serialized
    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group of params with its own options (the defaults fill the rest)."""
        if not isinstance(param_group, Mapping):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        n_params, n_groups = len(self._params), len(self.param_groups)
        self._append_group(param_group)
        try:
            self._check_no_overlap()
        except ValueError:
            del self._params[n_params:], self.param_groups[n_groups:]
            del self._group_indices[n_groups:], self._param_states[n_params:]
            self._steps = self._steps[:n_params].copy()
            raise
        self._edited = True

    def _append_group(self, group: Mapping[str, Any]) -> None:
        gi = len(self.param_groups)
        where = f"param_groups[{gi}]"
        if "params" not in group:
            raise ValueError(f"{where} has no 'params' key")
        arrays = group["params"]
        if is_array_like(arrays):
            arrays = [arrays]
        if not isinstance(arrays, Sequence) or isinstance(arrays, (str, bytes)):
            raise TypeError(f"{where}['params'] must be a list of arrays, "
                            f"got {type(arrays).__name__}")
        first = len(self._params)
        # Arrays from elsewhere (torch tensors, buffers, DLPack) are viewed once, here, so a
        # step binds ndarrays only.
        checked = [as_array(a, f"params[{first + k}]", writable=True)
                   for k, a in enumerate(arrays)]
        unknown = [k for k in group if k != "params" and k not in self.defaults]
        options = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        options = self._checked_options(options, where)
        for k in unknown:  # kept, as torch keeps extra keys, but not checked
            options[k] = group[k]
        # Commit only after every check of this group passed.
        self._params.extend(checked)
        self._group_indices.append(list(range(first, first + len(checked))))
        self._param_states.extend(ParamState(self, i)
                                  for i in range(first, first + len(checked)))
        self._steps = np.concatenate([self._steps, np.zeros(len(checked), np.int64)])
        self._unexposed += len(checked)
        self.param_groups.append(ParamGroup(self, {"params": checked, **options}))
        self._group_options.append(options)

    def _check_no_overlap(self) -> None:
        pair = MemoryIndex(self._params).pairs_overlapping()
        if pair is not None:
            i, j = pair
            raise ValueError(f"params[{j}] shares memory with params[{i}]: "
                             "each param must be a separate array, listed once")

    # ------------------------------------------------------------------------ hyperparameters

    def _checked_options(self, options: dict[str, Any], where: str) -> dict[str, Any]:
        """Validated copy of the options of one group (or of the defaults, where="")."""
        options = dict(options)
        lr = options["lr"]
        if not callable(lr):
            options["lr"] = check_range(lr, _key_name(where, "lr"), 0)
        options["maximize"] = check_bool(options["maximize"], _key_name(where, "maximize"))
        self._check_options(options, lambda key: _key_name(where, key))
        return options

    def _check_options(self, options: dict[str, Any], name: Callable[[str], str]) -> None:
        """Check and normalize this optimizer's own options in place (subclasses)."""
        raise NotImplementedError

    def _needed_state(self, options: dict[str, Any]) -> tuple[str, ...]:
        """The state arrays a param of a group with these options needs (subclasses)."""
        raise NotImplementedError

    def _initial_value(self, key: str, options: dict[str, Any]) -> float:
        """The value a new state array ``key`` starts with (0 unless a subclass says
        otherwise)."""
        return 0.0

    def _state_created(self, i: int, key: str) -> None:
        """Called when state array ``key`` of params[i] is created (subclasses)."""

    def _kernel_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the plan's ``set_group`` for one group (subclasses)."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------- stepping

    def step(self, grads, check_finite: bool = False) -> None:
        """Update every param in place from its gradient.

        ``grads`` is a list aligned with :attr:`params` (a bare array is accepted when there
        is one param); an entry ``None`` leaves that param and its state untouched, as a
        missing ``.grad`` does in torch. With ``check_finite=True`` a gradient holding NaN or
        infinity raises ValueError.

        A step is all or nothing: every check runs before any memory is written, and a
        failing check raises TypeError or ValueError leaving every param and every state
        array exactly as it was.

        Steps of one optimizer from several threads run one after the other (each holds
        the optimizer's lock); the step number, the schedule's lr and the state stay
        consistent.
        """
        if check_finite is False and type(grads) is list:
            try:
                if self._plan.step_ready(grads):
                    return
            except TypeError:
                pass  # refused, nothing changed: the full path below views other grads
        with self._lock:
            self._full_step(grads, check_finite)

    def _full_step(self, grads, check_finite) -> None:
        """A step with every check: options and state edited since the last step, schedules,
        gradients that are not ndarrays; called with the lock held."""
        if check_finite is not False and check_finite is not True:
            check_finite = check_bool(check_finite, "check_finite")
        if isinstance(grads, np.ndarray):
            if len(self._params) != 1:
                raise TypeError(f"grads must be a list of {len(self._params)} arrays aligned "
                                "with params; a bare array is accepted only when there is "
                                "one param")
            grads = [grads]
        if self._edited:
            self._sync()
        step = self._step_count + 1
        plan = self._plan
        for gi, schedule in self._schedules:
            lr = schedule(step)
            if not (type(lr) is float and 0.0 <= lr < float("inf")):
                lr = check_range(lr, f"param_groups[{gi}]['lr'] (the value its schedule "
                                     f"returned for step {step})", 0)
            plan.set_lr(gi, lr)
        try:
            plan.step(grads, check_finite)
        except TypeError:
            # The plans take ndarrays only; gradients of other kinds (torch tensors, buffers)
            # are viewed as ndarrays and the step runs again: only they pay for it. The
            # refused step changed nothing.
            try:
                converted = as_arrays(grads, "grads", len(self._params))
            except (TypeError, ValueError) as error:
                raise error from None
            if converted is None:
                raise
            plan.step(converted, check_finite)
        self._step_count = step
        if self._unexposed:
            self._expose_state()
        self._ready = not (self._stale or self._schedules or self._unexposed)

    @property
    def _step_count(self) -> int:
        return self._lock.count

    @_step_count.setter
    def _step_count(self, value: int) -> None:
        self._lock.count = value

    @property
    def _ready(self) -> bool:
        """Whether a step is nothing but the plan's call (see step_ready)."""
        return self._plan.ready

    @_ready.setter
    def _ready(self, value: bool) -> None:
        self._plan.ready = value

    @property
    def _edited(self) -> bool:
        """Whether the user may have changed something the next step must check first."""
        return self._stale

    @_edited.setter
    def _edited(self, value: bool) -> None:
        self._stale = value
        if value:
            self._ready = False

    def _native_binding(self):
        """For native training loops (:mod:`fastdescent.models`): the state made ready as a
        step would (created, checked, bound), then ``(kind, kernel options of group 0, state
        arrays by column aligned with params (None where absent), the live step counts)``.
        The caller runs the kernels on these arrays, increments the step counts in place and
        then calls :meth:`_native_stepped`."""
        if self._edited:
            self._sync()
        options = self._kernel_options(self._group_options[0])
        columns = [[ps._entries.get(c) for ps in self._param_states] for c in self._columns]
        return self._kind, options, columns, self._steps

    def _native_stepped(self, steps: int) -> None:
        """Record ``steps`` steps taken by a native training loop (see :meth:`_native_binding`)."""
        self._step_count += int(steps)
        if self._unexposed:
            self._expose_state()

    def _expose_state(self) -> None:
        """Put the params stepped for the first time into :attr:`state`."""
        for i in np.flatnonzero(self._steps).tolist():
            if i not in self.state:
                dict.__setitem__(self.state, i, self._param_states[i])
                self._unexposed -= 1

    def _sync(self) -> None:
        """Check what the user may have changed since the last step (group options, the
        state mapping) and bring the plan up to date; nothing changes unless all is well."""
        n_groups = len(self._group_indices)
        if len(self.param_groups) != n_groups:
            raise ValueError(f"param_groups has {len(self.param_groups)} groups but the "
                             f"optimizer was given {n_groups}: use add_param_group()")
        options = []
        for gi, (group, indices) in enumerate(zip(self.param_groups, self._group_indices)):
            if not isinstance(group, Mapping):
                raise TypeError(f"param_groups[{gi}] must be a dict")
            arrays = group.get("params")
            if not isinstance(arrays, Sequence) or len(arrays) != len(indices) or any(
                    a is not self._params[i] for a, i in zip(arrays, indices)):
                raise ValueError(f"param_groups[{gi}]['params'] was changed: a group's params "
                                 "are fixed (use add_param_group() for new ones)")
            missing = [k for k in self.defaults if k not in group]
            if missing:
                raise ValueError(f"param_groups[{gi}] has no {missing[0]!r}")
            options.append(self._checked_options({k: group[k] for k in self.defaults},
                                                 f"param_groups[{gi}]"))
        group_of = [gi for gi, indices in enumerate(self._group_indices) for _ in indices]
        entries, steps, exposed = self._checked_user_state()
        # The arrays each param needs now: kept, or created.
        created: list[tuple[int, str]] = []
        fills = []
        for i, param in enumerate(self._params):
            for key in self._needed_state(options[group_of[i]]):
                if key not in entries[i]:
                    created.append((i, key))
                    fills.append(self._initial_value(key, options[group_of[i]]))
        for (i, key), array in zip(created, _packed(
                [(key, self._params[i], fill) for (i, key), fill in zip(created, fills)])):
            entries[i][key] = array
        written = list(self._params)
        names = [f"params[{i}]" for i in range(len(self._params))]
        for i, arrays in enumerate(entries):
            for key, array in arrays.items():
                written.append(array)
                names.append(f"state[{i}][{key!r}]")
        pair = MemoryIndex(written).pairs_overlapping()
        if pair is not None:
            i, j = pair
            raise ValueError(f"{names[j]} shares memory with {names[i]}: "
                             "each param and state array must be a separate array")
        columns = [[arrays.get(column) for arrays in entries] for column in self._columns]
        plan = make_plan(self._backend, self._kind, self._params,
                         [None if all(a is None for a in c) else c for c in columns],
                         group_of, steps, n_groups)
        schedules = []
        for gi, group_options in enumerate(options):
            kernel_options = self._kernel_options(group_options)
            if callable(group_options["lr"]):
                schedules.append((gi, group_options["lr"]))
                kernel_options["lr"] = 0.0  # set before every step
            plan.set_group(gi, **kernel_options)
        # Every check passed: commit.
        for ps, arrays in zip(self._param_states, entries):
            ps._entries = arrays
        self._steps = steps
        for i, key in created:
            self._state_created(i, key)
        dict.clear(self.state)
        for i in exposed:
            dict.__setitem__(self.state, i, self._param_states[i])
        self._unexposed = len(self._params) - len(exposed)
        for gi, group in enumerate(self.param_groups):
            if not isinstance(group, ParamGroup) or group._owner is not self:
                list.__setitem__(self.param_groups, gi, ParamGroup(self, group))
        self._group_options = options
        self._schedules = schedules
        self._plan.ready = False  # a step that read the old plan before this one waits
        plan.bind(self._lock)
        self._plan = plan
        self._edited = False

    def _checked_user_state(self):
        """The state arrays and step counts as :attr:`state` now says, checked: (arrays per
        param, step counts, the params present in :attr:`state`)."""
        n = len(self._params)
        entries: list[dict[str, Any]] = [dict() for _ in range(n)]
        steps = np.zeros(n, dtype=np.int64)
        exposed = []
        for i, state in self.state.items():
            if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not 0 <= i < n:
                raise ValueError(f"state has an entry {i!r} that is no param index")
            if not isinstance(state, Mapping):
                raise TypeError(f"state[{i}] must be a dict, got {type(state).__name__}")
            checked = self._checked_state(i, dict(state.items()), self._params[i],
                                          f"state[{i}]")
            steps[i] = checked.pop("step", 0)
            entries[i] = checked
            exposed.append(int(i))
        if not self._exposes_step:
            # Stepped params keep their count (SGD: whether its momentum buffer is filled).
            for i in exposed:
                steps[i] = self._steps[i]
        # A param missing from the state starts afresh: the caller creates its arrays.
        return entries, steps, sorted(exposed)

    def _checked_state(self, i: int, state: Mapping[str, Any], param: np.ndarray,
                       where: str, writable: bool = True) -> dict[str, Any]:
        """A checked copy of the state entries of params[i] (arrays are not copied; they must
        be writable unless the caller copies them)."""
        checked = {}
        for key, value in state.items():
            name = f"{where}[{key!r}]"
            if key not in self._state_keys:
                raise ValueError(f"{name}: {type(self).__name__} keeps no state called {key!r}"
                                 f" (it keeps {', '.join(self._state_keys)})")
            if key == "step":
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                        or value < 0:
                    raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
                checked[key] = int(value)
                continue
            check_array(value, name, writable=writable)
            check_matches_param(value, name, param, i)
            checked[key] = value
        return checked

    @property
    def step_count(self) -> int:
        """How many times :meth:`step` has completed; a schedule ``lr`` is called with
        ``step_count + 1``."""
        return self._step_count

    # -------------------------------------------------------------------------- state dicts

    @_serialized
    def state_dict(self) -> dict[str, Any]:
        """A snapshot of the optimizer: ``{"state": {index: {name: array or number}},
        "param_groups": [{option: value, "params": [index, ...]}], "step_count": n}``.

        Arrays are copies, so the snapshot does not change as training goes on. Params are
        referred to by their index, as in torch.optim.
        """
        groups = []
        for group, indices in zip(self.param_groups, self._group_indices):
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = list(indices)
            groups.append(saved)
        state = {i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for i, s in sorted(self.state.items())}
        return {"state": state, "param_groups": groups, "step_count": self._step_count}

    @_serialized
    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a snapshot taken by :meth:`state_dict` (of an optimizer of the same kind
        over params of the same shapes and dtypes).

        Everything is checked before anything changes; the arrays are copied in. Continuing
        from a loaded snapshot gives bit-identical results to never having stopped.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"state_dict has no {key!r} entry")
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, Sequence) or len(saved_groups) != len(self.param_groups):
            count = len(saved_groups) if isinstance(saved_groups, Sequence) else "no"
            raise ValueError(f"state_dict['param_groups'] has {count} groups but the optimizer "
                             f"has {len(self.param_groups)}")
        id_map: dict[Any, int] = {}
        new_options = []
        for gi, (saved, indices) in enumerate(zip(saved_groups, self._group_indices)):
            where = f"state_dict['param_groups'][{gi}]"
            if not isinstance(saved, Mapping) or "params" not in saved:
                raise ValueError(f"{where} must be a dict with a 'params' entry")
            ids = saved["params"]
            if not isinstance(ids, Sequence) or len(ids) != len(indices):
                raise ValueError(f"{where}['params'] must list {len(indices)} params, "
                                 f"as the optimizer's group {gi} has")
            for saved_id, i in zip(ids, indices):
                try:
                    listed = saved_id in id_map
                except TypeError:
                    raise TypeError(f"{where}['params'] must hold param indices") from None
                if listed:
                    raise ValueError(f"{where}['params'] lists param {saved_id!r} twice "
                                     "(across the groups of state_dict['param_groups'])")
                id_map[saved_id] = i
            merged = {k: self.param_groups[gi][k] for k in self.defaults}
            merged.update({k: v for k, v in saved.items() if k != "params"})
            new_options.append(self._checked_options(
                {k: merged[k] for k in self.defaults}, where))
        saved_state = state_dict["state"]
        if not isinstance(saved_state, Mapping):
            raise TypeError("state_dict['state'] must be a dict")
        new_state: dict[int, dict[str, Any]] = {}
        for saved_id, entries in saved_state.items():
            where = f"state_dict['state'][{saved_id!r}]"
            if saved_id not in id_map:
                raise ValueError(f"{where} belongs to no param of state_dict['param_groups']")
            if not isinstance(entries, Mapping):
                raise TypeError(f"{where} must be a dict")
            i = id_map[saved_id]
            checked = self._checked_state(i, entries, self._params[i], where, writable=False)
            new_state[i] = checked  # arrays are copied in when committed
        step_count = state_dict.get("step_count", 0)
        if isinstance(step_count, bool) or not isinstance(step_count, (int, np.integer)) \
                or step_count < 0:
            raise ValueError(f"state_dict['step_count'] must be a whole number >= 0, "
                             f"got {step_count!r}")
        # Every check passed: commit. The next step checks the result once more and binds
        # the new arrays (creating the ones the loaded state lacks).
        for group, options in zip(self.param_groups, new_options):
            group.update(options)
        dict.clear(self.state)
        loaded = [(i, k, v) for i, entries in sorted(new_state.items())
                  for k, v in entries.items() if isinstance(v, np.ndarray)]
        packed = dict(zip([(i, k) for i, k, _ in loaded],
                          _packed([(k, self._params[i], v) for i, k, v in loaded])))
        for i, entries in sorted(new_state.items()):
            ps = ParamState(self, i)
            ps._entries = {k: packed.get((i, k), v) for k, v in entries.items() if k != "step"}
            if self._exposes_step:
                ps._entries["step"] = entries.get("step", 0)
            self._param_states[i] = ps
            dict.__setitem__(self.state, i, ps)
        for i in range(len(self._params)):
            if i not in new_state:
                self._param_states[i] = ParamState(self, i)
        if not self._exposes_step:
            # Without a count of its own (SGD), a param's state is ready exactly when loaded.
            self._steps = np.array([i in new_state for i in range(len(self._params))],
                                   dtype=np.int64)
        self._edited = True
        self._step_count = int(step_count)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} (backend={self.backend!r})"]
        for gi, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={group[k]!r}" for k in self.defaults)
            lines.append(f"  group {gi}: {len(group['params'])} params, {options}")
        return "\n".join(lines)

