"""What the data-parallel and the sharded optimizer share: the communicator, the check that
every rank holds the same model, the broadcast of rank 0's params, and the checks of a
step's gradients, agreed on by every rank before any rank changes anything."""

from __future__ import annotations

import numpy as np

from .._validation import check_array, check_bool, check_matches_param
from ..optim.base import Optimizer
from . import _mpi, layout


class DistributedOptimizer:
    """Base of :class:`DataParallel` and :class:`ShardedOptimizer`."""

    #: the optimizer that steps on this rank (set by the subclass)
    optimizer: Optimizer

    def __init__(self, optimizer: Optimizer, comm=None, *, bucket_bytes: int = 2 ** 25,
                 timeout: float | None = 600.0, broadcast: bool = True):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastdescent optimizer, "
                            f"got {type(optimizer).__name__}")
        if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, (int, np.integer)) \
                or bucket_bytes < 8:
            raise ValueError(f"bucket_bytes must be a whole number >= 8, got {bucket_bytes!r}")
        self.collectives = _mpi.Collectives(_mpi.world() if comm is None else comm, timeout)
        self.comm = self.collectives.comm
        self.rank, self.size = self.collectives.rank, self.collectives.size
        self._params = optimizer.params
        self._flats = layout.flats(self._params, int(bucket_bytes), self.size)
        self._check_same_model(optimizer)
        if broadcast:
            self._broadcast_params()

    @property
    def params(self) -> list[np.ndarray]:
        """All params, in the order ``grads`` are aligned with (the user's arrays)."""
        return list(self._params)

    @property
    def step_count(self) -> int:
        """Steps taken (the wrapped optimizer's count, the same on every rank)."""
        return self.optimizer.step_count

    @property
    def param_groups(self):
        """The wrapped optimizer's groups (sharded: this rank's local optimizer, whose
        params are this rank's pieces)."""
        return self.optimizer.param_groups

    def _check_same_model(self, optimizer: Optimizer) -> None:
        """Every rank must wrap the same kind of optimizer over params of the same shapes
        and dtypes, or the layouts (and so the messages) would not match."""
        mine = (type(optimizer).__name__, layout.signature(self._params),
                [len(g["params"]) for g in optimizer.param_groups])
        everyone = self.comm.allgather(mine)
        for r, theirs in enumerate(everyone):
            if theirs != everyone[0]:
                raise ValueError(
                    f"rank {r} wraps {theirs[0]} over params {theirs[1]} in groups of "
                    f"{theirs[2]}, but rank 0 wraps {everyone[0][0]} over params "
                    f"{everyone[0][1]} in groups of {everyone[0][2]}: every rank must "
                    "build the same model and optimizer")

    def _broadcast_params(self) -> None:
        """Start every rank from rank 0's params, bucket by bucket."""
        for flat in self._flats:
            for lo, hi in flat.buckets:
                buffer = np.empty(hi - lo, flat.dtype)
                pieces = flat.pieces(lo, hi)
                layout.pack(pieces, self._params, buffer)
                self.collectives.broadcast(buffer)
                layout.unpack(pieces, buffer, self._params)

    def _checked_grads(self, grads, check_finite) -> list:
        """The step's gradients, checked on every rank together: a list aligned with the
        params, None where every rank passed None. Raises on every rank if any rank's
        gradients are bad (or None where another's are not); nothing has changed then."""
        error = None
        given = np.zeros(len(self._params), dtype=np.int64)
        try:
            check_finite = check_bool(check_finite, "check_finite")
            grads = self._as_list(grads)
            for i, (grad, param) in enumerate(zip(grads, self._params)):
                if grad is None:
                    continue
                check_array(grad, f"grads[{i}]", writable=False)
                check_matches_param(grad, f"grads[{i}]", param, i)
                if check_finite and not np.isfinite(grad).all():
                    raise ValueError(f"grads[{i}] holds NaN or infinity "
                                     "(check_finite=True)")
                given[i] = 1
        except (TypeError, ValueError) as bad:
            error = bad
        total = self.collectives.agree(error, "the gradients of a step", given)
        assert total is not None  # agree returns the summed counts when given counts
        mixed = np.flatnonzero((total != 0) & (total != self.size))
        if mixed.size:
            raise ValueError(f"grads[{mixed[0]}] is None on {self.size - total[mixed[0]]} "
                             f"rank(s) and an array on {total[mixed[0]]}: every rank must "
                             "pass a gradient for the same params; nothing changed")
        return [grad if total[i] else None for i, grad in enumerate(grads)]

    def _as_list(self, grads) -> list:
        if isinstance(grads, np.ndarray):
            if len(self._params) != 1:
                raise TypeError(f"grads must be a list of {len(self._params)} arrays aligned "
                                "with params; a bare array is accepted only when there is "
                                "one param")
            return [grads]
        if isinstance(grads, (str, bytes)) or not hasattr(grads, "__len__"):
            raise TypeError(f"grads must be a list of arrays, got {type(grads).__name__}")
        grads = list(grads)
        if len(grads) != len(self._params):
            raise ValueError(f"grads has {len(grads)} entries but there are "
                             f"{len(self._params)} params")
        return grads

    def _average(self, buffer: np.ndarray) -> None:
        """Sum -> mean, dividing as ``numpy.mean`` does (so exact sums give numpy's mean)."""
        if self.size > 1:
            np.divide(buffer, buffer.dtype.type(self.size), out=buffer)
