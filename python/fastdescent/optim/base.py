"""The optimizer base class: param groups, validation, lazily created state, state dicts.

Subclasses state their hyperparameters (``_check_options``), the state each param needs
(``_next_state``) and how one group's tensors are handed to the backend's kernel
(``_update``). Everything else, including the all-or-nothing guarantee of :meth:`step`,
lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import backends
from .._validation import MemoryIndex, check_array, check_bool, check_range


def _key_name(where: str, key: str) -> str:
    return f"{where}[{key!r}]" if where else key


class Optimizer:
    """Base of fastdescent's optimizers.

    Parameters are NumPy arrays (float32 or float64, C-contiguous, writable) updated in place
    by :meth:`step`. ``params`` is a list of arrays or a list of param groups
    (``{"params": [...], "lr": ..., ...}``) whose keys override the defaults, as in
    torch.optim. Params are numbered in the order they appear across groups; ``grads``
    passed to :meth:`step` and error messages (``params[3]``, ``grads[3]``) use that
    numbering.
    """

    #: names of the per-param state entries this optimizer keeps
    _state_keys: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict[str, Any], *, backend: str | None = None):
        self._backend = backends.resolve(backend)
        self.defaults = self._checked_options(dict(defaults), "")
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        self._params: list[np.ndarray] = []
        self._group_indices: list[list[int]] = []
        self._step_count = 0
        if isinstance(params, np.ndarray):
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
    def backend(self) -> str:
        """Name of the backend this optimizer's kernels run on."""
        return self._backend.NAME

    @property
    def params(self) -> list[np.ndarray]:
        """All params, in the order ``grads`` are aligned with."""
        return list(self._params)

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
            del self._group_indices[n_groups:]
            raise

    def _append_group(self, group: Mapping[str, Any]) -> None:
        gi = len(self.param_groups)
        where = f"param_groups[{gi}]"
        if "params" not in group:
            raise ValueError(f"{where} has no 'params' key")
        arrays = group["params"]
        if isinstance(arrays, np.ndarray):
            arrays = [arrays]
        if not isinstance(arrays, Sequence) or isinstance(arrays, (str, bytes)):
            raise TypeError(f"{where}['params'] must be a list of arrays, "
                            f"got {type(arrays).__name__}")
        first = len(self._params)
        checked = [check_array(a, f"params[{first + k}]", writable=True)
                   for k, a in enumerate(arrays)]
        unknown = [k for k in group if k != "params" and k not in self.defaults]
        options = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        options = self._checked_options(options, where)
        for k in unknown:  # kept, as torch keeps extra keys, but not checked
            options[k] = group[k]
        # Commit only after every check of this group passed.
        self._params.extend(checked)
        self._group_indices.append(list(range(first, first + len(checked))))
        self.param_groups.append({"params": checked, **options})

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

    def _resolved_options(self, gi: int, step: int) -> dict[str, Any]:
        group = self.param_groups[gi]
        where = f"param_groups[{gi}]"
        options = self._checked_options({k: group[k] for k in self.defaults}, where)
        if callable(options["lr"]):
            value = options["lr"](step)
            options["lr"] = check_range(
                value, f"{where}['lr'] (the value its schedule returned for step {step})", 0)
        return options

    # ---------------------------------------------------------------------------- stepping

    def _checked_grads(self, grads) -> list[np.ndarray | None]:
        n = len(self._params)
        if isinstance(grads, np.ndarray):
            if n != 1:
                raise TypeError(f"grads must be a list of {n} arrays aligned with params; "
                                "a bare array is accepted only when there is one param")
            grads = [grads]
        if not isinstance(grads, Sequence) or isinstance(grads, (str, bytes)):
            raise TypeError(f"grads must be a list or tuple of arrays aligned with params, "
                            f"got {type(grads).__name__}")
        if len(grads) != n:
            raise ValueError(f"grads has {len(grads)} entries but the optimizer has {n} params")
        for i, (param, grad) in enumerate(zip(self._params, grads)):
            check_array(param, f"params[{i}]", writable=True)
            if grad is None:
                continue
            check_array(grad, f"grads[{i}]", writable=False)
            if grad.dtype != param.dtype:
                raise TypeError(f"grads[{i}] has dtype {grad.dtype} but params[{i}] "
                                f"has dtype {param.dtype}")
            if grad.shape != param.shape:
                raise ValueError(f"grads[{i}] has shape {grad.shape} but params[{i}] "
                                 f"has shape {param.shape}")
        return list(grads)

    @staticmethod
    def _check_no_aliasing(grads, written: list[np.ndarray], names: list[str]) -> None:
        """No two arrays the step writes share memory, and no gradient shares memory with
        any of them (the kernels read each gradient while writing params and state)."""
        index = MemoryIndex(written)
        pair = index.pairs_overlapping()
        if pair is not None:
            i, j = pair
            raise ValueError(f"{names[j]} shares memory with {names[i]}: "
                             "each param and state array must be a separate array")
        for i, grad in enumerate(grads):
            if grad is None:
                continue
            j = index.overlapping(grad)
            if j is not None:
                raise ValueError(f"grads[{i}] shares memory with {names[j]}: "
                                 "a gradient must be a separate array")

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
            if value.dtype != param.dtype:
                raise TypeError(f"{name} has dtype {value.dtype} but params[{i}] "
                                f"has dtype {param.dtype}")
            if value.shape != param.shape:
                raise ValueError(f"{name} has shape {value.shape} but params[{i}] "
                                 f"has shape {param.shape}")
            checked[key] = value
        return checked

    def step(self, grads, check_finite: bool = False) -> None:
        """Update every param in place from its gradient.

        ``grads`` is a list aligned with :attr:`params` (a bare array is accepted when there
        is one param); an entry ``None`` leaves that param and its state untouched, as a
        missing ``.grad`` does in torch. With ``check_finite=True`` a gradient holding NaN or
        infinity raises ValueError.

        A step is all or nothing: every check runs before any memory is written, and a
        failing check raises TypeError or ValueError leaving every param and every state
        array exactly as it was.
        """
        check_finite = check_bool(check_finite, "check_finite")
        grads = self._checked_grads(grads)
        if check_finite:
            present = [i for i, g in enumerate(grads) if g is not None]
            bad = self._backend.first_nonfinite([grads[i] for i in present])
            if bad >= 0:
                raise ValueError(f"grads[{present[bad]}] holds NaN or infinity "
                                 "(check_finite=True); nothing was updated")
        step = self._step_count + 1
        work = []
        # Memory this step writes: every param, and the state arrays of the params it steps.
        written = list(self._params)
        names = [f"params[{i}]" for i in range(len(self._params))]
        for gi, indices in enumerate(self._group_indices):
            options = self._resolved_options(gi, step)
            live = [i for i in indices if grads[i] is not None]
            states, created = [], []
            for i in live:
                param = self._params[i]
                state = self._checked_state(i, self.state.get(i, {}), param, f"state[{i}]")
                for key, value in state.items():
                    if isinstance(value, np.ndarray):
                        written.append(value)
                        names.append(f"state[{i}][{key!r}]")
                new = self._next_state(options, param, state)
                states.append({**state, **new})
                created.append(new.keys())
            work.append((options, live, states, created))
        self._check_no_aliasing(grads, written, names)
        # Every check passed and every new state array exists: from here nothing can fail.
        for options, live, states, created in work:
            if live:
                self._update(options, [self._params[i] for i in live], [grads[i] for i in live],
                             states, created)
                for i, state in zip(live, states):
                    self.state[i] = state
        self._step_count = step

    def _next_state(self, options: dict[str, Any], param: np.ndarray,
                    state: dict[str, Any]) -> dict[str, Any]:
        """State entries to create or replace before this step of ``param`` (subclasses)."""
        raise NotImplementedError

    def _update(self, options, params, grads, states, created) -> None:
        """Run the backend's kernel over one group's params (subclasses)."""
        raise NotImplementedError

    @staticmethod
    def _buckets(keys: Sequence[Any]):
        """(key, positions) for each distinct key, in order of first appearance: tensors that
        share a key (a step count, a fresh buffer) go to the kernel in one call."""
        buckets: dict[Any, list[int]] = {}
        for position, key in enumerate(keys):
            buckets.setdefault(key, []).append(position)
        return buckets.items()

    @property
    def step_count(self) -> int:
        """How many times :meth:`step` has completed; a schedule ``lr`` is called with
        ``step_count + 1``."""
        return self._step_count

    # -------------------------------------------------------------------------- state dicts

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
            new_state[i] = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                            for k, v in checked.items()}
        step_count = state_dict.get("step_count", 0)
        if isinstance(step_count, bool) or not isinstance(step_count, (int, np.integer)) \
                or step_count < 0:
            raise ValueError(f"state_dict['step_count'] must be a whole number >= 0, "
                             f"got {step_count!r}")
        # Every check passed: commit.
        for group, options in zip(self.param_groups, new_options):
            group.update(options)
        self.state = new_state
        self._step_count = int(step_count)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} (backend={self.backend!r})"]
        for gi, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={group[k]!r}" for k in self.defaults)
            lines.append(f"  group {gi}: {len(group['params'])} params, {options}")
        return "\n".join(lines)

