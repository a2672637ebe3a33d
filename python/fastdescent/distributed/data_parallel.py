"""Data-parallel steps: every rank holds the whole model and optimizer; gradients are averaged
across ranks (allreduce), then every rank takes the same step."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..optim.base import Optimizer
from . import layout
from ._base import DistributedOptimizer


class DataParallel(DistributedOptimizer):
    """Wrap any fastdescent optimizer so that :meth:`step` averages the gradients of every
    rank and steps with the mean:

    .. math::

        g = \\frac{1}{N} \\sum_{r=0}^{N-1} g_r, \\qquad \\text{optimizer.step}(g)

    on every rank, so the params stay identical on all ranks and equal (to float rounding of
    the sum; exactly when the sum is exact) those of one process stepping on the averaged
    gradients. (That every rank gets the same bits from ``MPI_Allreduce`` is what MPI
    advises and Open MPI's algorithms do; :class:`ShardedOptimizer` needs no such promise:
    each element is stepped by one rank and copied to the others.)

    The gradients are copied into flat buffers, one per dtype, owned by the wrapper (the
    caller's arrays are never written) and summed in place by ``MPI_Allreduce`` one bucket
    of at most ``bucket_bytes`` at a time: many small tensors travel in few messages. The
    optimizer then steps on views of those buffers.

    Parameters
    ----------
    optimizer: the optimizer every rank would run alone (same class, options and param
        shapes on every rank: checked).
    comm: an mpi4py communicator (``MPI.COMM_WORLD`` by default).
    bucket_bytes: the largest message.
    timeout: seconds a collective may wait for the other ranks before raising
        :class:`CollectiveTimeout` (None: wait forever, with MPI's blocking calls).
    broadcast: start every rank from rank 0's params.

    Every rank (``mpirun -n 2 python -m mpi4py train.py``; see
    examples/distributed_line.py)::

        opt = fd.distributed.DataParallel(fd.Adam([w, b], lr=0.1))
        opt.step([grad_w_of_my_data, grad_b_of_my_data])   # the same w, b on every rank
    """

    def __init__(self, optimizer: Optimizer, comm=None, *, bucket_bytes: int = 2 ** 25,
                 timeout: float | None = 600.0, broadcast: bool = True):
        super().__init__(optimizer, comm, bucket_bytes=bucket_bytes, timeout=timeout,
                         broadcast=broadcast)
        self.optimizer = optimizer
        self._buffers = [np.zeros(flat.size, flat.dtype) for flat in self._flats]
        self._pieces = [flat.pieces(0, flat.size) for flat in self._flats]
        views: list[Any] = [None] * len(self._params)
        for buffer, pieces in zip(self._buffers, self._pieces):
            for piece in pieces:
                views[piece.param] = buffer[piece.offset:piece.offset + piece.size].reshape(
                    self._params[piece.param].shape)
        self._averaged = views

    def step(self, grads, check_finite: bool = False) -> None:
        """Average ``grads`` (aligned with :attr:`params`; None skips a param on every rank)
        across ranks and step. Bad gradients on any rank make every rank raise, with no
        param or state changed anywhere. ``check_finite`` refuses NaN or infinity in any
        rank's gradients, and an average that overflowed."""
        grads = self._checked_grads(grads, check_finite)
        for flat, buffer, pieces in zip(self._flats, self._buffers, self._pieces):
            layout.pack(pieces, grads, buffer)
            for lo, hi in flat.buckets:
                self.collectives.allreduce(buffer[lo:hi], what="allreduce of the gradients")
            self._average(buffer)
        # Every rank holds the same averaged bits, so every rank decides the same way.
        if check_finite and not all(np.isfinite(b).all() for b in self._buffers):
            raise ValueError(f"rank {self.rank}: the averaged gradients overflowed to "
                             "infinity (check_finite=True); nothing changed on any rank")
        self.optimizer.step([view if grad is not None else None
                             for view, grad in zip(self._averaged, grads)])

    @property
    def state(self):
        return self.optimizer.state

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict (the same on every rank)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict) -> None:
        self.optimizer.load_state_dict(state_dict)
