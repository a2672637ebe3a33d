"""Step plans of the numba backend: every tensor of every group stepped by one compiled call.

A plan binds the params and state arrays once: their data addresses, sizes and shapes go
into int64 arrays, grouped by dtype and by the state columns their group's options use
(each such bucket is one call of :data:`fastdescent.backends.numba.STEPS`, as the C++ plan
makes one call per dtype). A step costs next to nothing per tensor in Python: the grads are
copied into a tuple (which keeps them alive), and compiled code reads the tuple's items and
the NumPy array structs directly (the fields pybind11's ``array_proxy`` reads for the C++
plans: type, data, shape, dtype, flags) to check every gradient, and re-checks the params
and state arrays for writability the same way.

That fast check accepts only what is certainly valid (exact ``numpy.ndarray``, the param's
dtype object, C-contiguous, the param's shape, no overlap with a param or state array).
Anything else, and any step when the struct layout could not be confirmed at import, takes
the checks of :class:`~fastdescent.backends.plan.ListPlan`, which raise with the argument's
name and index, or pass (an ndarray subclass, say) and the step runs with addresses taken
in Python. Either way every check runs before the first write: all or nothing.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from . import numba as kernels
from .plan import KINDS, ListPlan

njit = kernels.njit

#: NumPy's array flags (ndarraytypes.h)
_C_CONTIGUOUS = 0x0001
_WRITEABLE = 0x0400


def _struct_offsets():
    """Byte offsets of (type, data, nd, dimensions, descr, flags) in a NumPy array object
    (PyArrayObject_fields after the PyObject header) and of the items of a tuple, or None
    when probing objects of several kinds does not confirm them."""
    head = object.__basicsize__  # PyObject_HEAD: ob_type is its last field
    offsets = (head - 8, head, head + 8, head + 16, head + 40, head + 48, tuple.__basicsize__)
    int64 = lambda a: ctypes.c_int64.from_address(a).value  # noqa: E731
    int32 = lambda a: ctypes.c_int32.from_address(a).value  # noqa: E731
    read_only = np.zeros(3)
    read_only.flags.writeable = False
    probes = [np.zeros((2, 3), np.float32), np.zeros((4, 6))[:, ::2], read_only,
              np.zeros(()), np.zeros(0, np.float32)]
    try:
        for a in probes:
            base = id(a)
            flags = int32(base + offsets[5])
            dims = int64(base + offsets[3])
            if (int64(base + offsets[0]) != id(np.ndarray)
                    or int64(base + offsets[1]) != a.__array_interface__["data"][0]
                    or int32(base + offsets[2]) != a.ndim
                    or [int64(dims + 8 * d) for d in range(a.ndim)] != list(a.shape)
                    or int64(base + offsets[4]) != id(a.dtype)
                    or bool(flags & _C_CONTIGUOUS) != a.flags.c_contiguous
                    or bool(flags & _WRITEABLE) != a.flags.writeable):
                return None
        items = tuple(probes) + (None, 1.5)
        if [int64(id(items) + offsets[6] + 8 * k) for k in range(len(items))] != list(
                map(id, items)):
            return None
    except (ValueError, OSError):  # pragma: no cover (an unreadable address)
        return None
    return np.array(offsets, np.int64)


OFFSETS = _struct_offsets()


@kernels.intrinsic
def _load(typingctx, address, kind):
    """The value of type ``kind`` (int32 or int64) stored at ``address``."""
    value = kind.instance_type

    def codegen(context, builder, signature, args):
        pointer = builder.inttoptr(args[0], context.get_value_type(value).as_pointer())
        return builder.load(pointer)

    return value(kernels.types.int64, kind), codegen


@njit(cache=True)  # holds the GIL: no other thread can free a gradient while it is read
def _check(grads, count, none, ndarray, offsets, ndims, dims, dim_start, descrs, itemsizes,
           written, span_begin, span_end, grad_data, live):
    """-1 when every gradient of the tuple ``grads`` (its address; ``count`` items) is
    certainly valid (filling ``grad_data`` and ``live``), else the index of the first that
    is not (or -2: a param or state array became read-only)."""
    type_at, data_at, nd_at, dims_at, descr_at, flags_at, items_at = (
        offsets[0], offsets[1], offsets[2], offsets[3], offsets[4], offsets[5], offsets[6])
    for w in range(written.size):
        if _load(written[w] + flags_at, np.int32) & _WRITEABLE == 0:
            return -2
    for t in range(count):
        grad = _load(grads + items_at + 8 * t, np.int64)
        if grad == none:
            live[t] = 0
            continue
        if _load(grad + type_at, np.int64) != ndarray:
            return t
        descr = _load(grad + descr_at, np.int64)
        if descr != descrs[t, 0] and descr != descrs[t, 1]:
            return t
        if _load(grad + flags_at, np.int32) & _C_CONTIGUOUS == 0:
            return t
        if _load(grad + nd_at, np.int32) != ndims[t]:
            return t
        shape = _load(grad + dims_at, np.int64)
        size = 1
        for d in range(ndims[t]):
            extent = _load(shape + 8 * d, np.int64)
            if extent != dims[dim_start[t] + d]:
                return t
            size *= extent
        data = _load(grad + data_at, np.int64)
        if size > 0:
            # Written spans are disjoint and sorted: only the last one starting before the
            # gradient's end can overlap it.
            end = data + size * itemsizes[t]
            k = kernels.last_at_or_before(span_begin, end - 1)
            if k >= 0 and span_end[k] > data:
                return t
        grad_data[t] = data
        live[t] = 1
    return -1


#: the compiled functions of this module (the tests read their cache statistics)
DISPATCHERS = (_check,)


class _Bucket:
    """The tensors of one dtype whose groups use the same state columns."""

    def __init__(self, dtype, members, used, sizes, groups, params, state):
        self.dtype = dtype
        self.members = np.array(members, np.int64)
        self.sizes = sizes[self.members]
        self.groups = groups[self.members]
        self.params = params[self.members]
        self.columns = [column[self.members] if use else None
                        for column, use in zip(state, used)]
        self.columns += [None] * (3 - len(self.columns))
        #: every tensor of the plan, in order
        self.whole = self.members.size == sizes.size and bool(
            (self.members == np.arange(sizes.size)).all())


class NumbaPlan(ListPlan):
    """A plan of the numba backend for one optimizer ``kind`` (see the module docstring);
    checks and messages are those of :class:`~fastdescent.backends.plan.ListPlan`."""

    def __init__(self, kind, params, state, groups, steps, group_count):
        super().__init__(kernels, kind, params, state, groups, steps, group_count)
        self._kind = kind
        n = len(self._params)
        self._rows = np.zeros((group_count, len(kernels.OPTIONS[kind])), np.float64)
        self._used: list[tuple[bool, ...] | None] = [None] * group_count
        self._buckets: list[_Bucket] | None = None
        self._sizes = np.array([p.size for p in self._params], np.int64)
        self._group_of = np.array(self._groups, np.int64)
        self._param_data = np.array([kernels.address(p) for p in self._params], np.int64)
        self._state_data = [np.array([0 if a is None else kernels.address(a) for a in column],
                                     np.int64) for column in self._state]
        # What the compiled check compares each gradient with.
        self._ndims = np.array([p.ndim for p in self._params], np.int64)
        self._dims = np.array([d for p in self._params for d in p.shape], np.int64)
        self._dim_start = np.concatenate([[0], np.cumsum(self._ndims)]).astype(np.int64)
        self._descrs = np.array([[id(p.dtype), id(np.dtype(p.dtype.type))]
                                 for p in self._params], np.int64).reshape(n, 2)
        self._dtype_objects = [p.dtype for p in self._params]  # keeps the ids valid
        self._itemsizes = np.array([p.itemsize for p in self._params], np.int64)
        written = list(self._params) + [a for column in self._state for a in column
                                        if a is not None]
        self._written_ids = np.array([id(a) for a in written], np.int64)
        spans = sorted((kernels.address(a), kernels.address(a) + a.nbytes)
                       for a in written if a.nbytes)
        self._span_begin = np.array([s for s, _ in spans], np.int64)
        self._span_end = np.array([e for _, e in spans], np.int64)
        self._grad_data = np.zeros(n, np.int64)
        self._live = np.zeros(n, np.uint8)

    def set_group(self, group: int, **options) -> None:
        super().set_group(group, **options)
        self._rows[group] = [float(options[name]) for name in kernels.OPTIONS[self._kind]]
        self._used[group] = kernels.columns_used(self._kind, options)
        self._buckets = None

    def set_lr(self, group: int, lr: float) -> None:
        super().set_lr(group, lr)
        self._rows[group, 0] = lr

    def _prepare(self) -> list[_Bucket]:
        keys: dict[tuple, list[int]] = {}
        for i, (param, group) in enumerate(zip(self._params, self._groups)):
            used = self._used[group]
            if used is None:
                raise RuntimeError(f"plan group {group} has no options")
            for column, arrays, use in zip(self.columns, self._state, used):
                if use and arrays[i] is None:
                    raise RuntimeError(f"state[{i}][{column!r}] is needed by the options "
                                       "but missing")
            keys.setdefault((param.dtype, used), []).append(i)
        return [_Bucket(dtype, members, used, self._sizes, self._group_of, self._param_data,
                        self._state_data) for (dtype, used), members in keys.items()]

    def _ready_buckets(self) -> list[_Bucket]:
        if self._buckets is None:
            self._buckets = self._prepare()
        return self._buckets

    def _step(self, grads, check_finite: bool) -> None:
        self._ready_buckets()
        n = len(self._params)
        # A tuple of our own: the user's list could change in another thread.
        held = tuple(grads) if isinstance(grads, (list, tuple)) else None
        status = 0
        if OFFSETS is not None and held is not None and len(held) == n:
            status = _check(id(held), n, id(None), id(np.ndarray),
                            OFFSETS, self._ndims, self._dims, self._dim_start, self._descrs,
                            self._itemsizes, self._written_ids, self._span_begin,
                            self._span_end, self._grad_data, self._live)
        if status == -1:
            if check_finite:
                self._check_finite()
        else:
            # The checks that name what is wrong; if all pass, addresses from Python.
            live = self._checked_live(grads if held is None else held, check_finite)
            self._live[:] = 0
            for i in live:
                self._live[i] = 1
                self._grad_data[i] = kernels.address((grads if held is None else held)[i])
        self._run_buckets()
        del held  # the gradients were kept alive through the compiled calls

    def _selected(self, bucket, everyone: bool):
        """(members, groups, sizes, param addresses, state addresses) of the tensors of
        ``bucket`` whose grad is not None."""
        if everyone:
            return bucket.members, bucket.groups, bucket.sizes, bucket.params, bucket.columns
        live = self._live[bucket.members].view(bool)
        return (bucket.members[live], bucket.groups[live], bucket.sizes[live],
                bucket.params[live], [None if c is None else c[live] for c in bucket.columns])

    def _check_finite(self) -> None:
        bad = n = len(self._params)
        everyone = bool(self._live.all())
        for bucket in self._ready_buckets():
            members, _, sizes, _, _ = self._selected(bucket, everyone)
            k = kernels._first_nonfinite_at(kernels._LIKE[bucket.dtype],
                                            self._grad_data[members], sizes)
            if k >= 0:
                bad = min(bad, int(members[k]))
        if bad < n:
            raise ValueError(f"grads[{bad}] holds NaN or infinity (check_finite=True); "
                             "nothing was updated")

    def _run_buckets(self) -> None:
        live = self._live.view(bool)
        everyone = bool(live.all())
        for bucket in self._ready_buckets():
            members, groups, sizes, params, columns = self._selected(bucket, everyone)
            if members.size == 0:
                continue
            if everyone and bucket.whole:  # the common case: no copies
                grads, steps = self._grad_data, self._steps + 1.0
            else:
                grads, steps = self._grad_data[members], self._steps[members] + 1.0
            kernels.run_step(self._kind, bucket.dtype, self._rows, groups, steps, params,
                             grads, columns, sizes)
        if everyone:
            self._steps += 1
        else:
            self._steps[live] += 1


#: the numba backend's plans, by optimizer kind (see fastdescent.backends.plan.make_plan)
PLANS = {kind: functools.partial(NumbaPlan, kind) for kind in KINDS}
