"""The MPI side of the distributed optimizers: mpi4py imported on first use, collectives that
wait with a deadline, and the collective error check every step starts with.

mpi4py is imported only here, and only when a distributed optimizer is built: importing it
initializes MPI, which a plain ``import fastdescent`` must never do.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

INSTALL_HINT = ('fastdescent.distributed needs mpi4py and an MPI library: '
                'pip install "fastdescent[mpi]" (mpi4py, and Open MPI from PyPI with its '
                'mpirun in the environment\'s bin directory)')


class DistributedError(RuntimeError):
    """A distributed step could not complete on every rank."""


class RemoteStepError(DistributedError):
    """Another rank refused its gradients (bad input): no rank changed anything."""


class CollectiveTimeout(DistributedError):
    """A collective did not complete in time: some rank stopped taking part (it raised
    outside the optimizer, hangs, or died). The communicator is unusable afterwards: save
    what this rank holds, then end the job (``comm.Abort()``)."""


def mpi():
    """The ``mpi4py.MPI`` module (importing it initializes MPI)."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} ({error})") from error
    return MPI


def world():
    return mpi().COMM_WORLD


class Collectives:
    """The few collectives the optimizers use, on NumPy buffers, all in place.

    With ``timeout=None`` they are MPI's blocking calls. With a timeout (seconds) they are
    the nonblocking ones, polled until done or until the deadline passes, when
    :class:`CollectiveTimeout` is raised on this rank: a rank that stops taking part makes
    the others raise rather than wait forever.
    """

    #: Test() calls spun before polling slows to one every _POLL seconds
    _SPINS = 2000
    _POLL = 5e-5

    def __init__(self, comm, timeout: float | None):
        if timeout is not None and not (isinstance(timeout, (int, float))
                                        and not isinstance(timeout, bool) and timeout > 0):
            raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
        self.MPI = mpi()
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = None if timeout is None else float(timeout)

    def _wait(self, request, what: str) -> None:
        assert self.timeout is not None  # blocking calls are used without a timeout
        deadline = time.monotonic() + self.timeout
        spins = 0
        while not request.Test():
            spins += 1
            if spins > self._SPINS:
                if time.monotonic() > deadline:
                    raise CollectiveTimeout(
                        f"rank {self.rank}: {what} did not complete within {self.timeout:g} s: "
                        "another rank stopped taking part. The communicator is unusable now: "
                        "save what this rank holds, then end the job (comm.Abort()).")
                time.sleep(self._POLL)

    def allreduce(self, buffer: np.ndarray, op: Any = None, what: str = "allreduce") -> None:
        """Reduce ``buffer`` across ranks, in place (sum unless ``op`` says otherwise)."""
        op = self.MPI.SUM if op is None else op
        if self.timeout is None:
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=op)
        else:
            self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=op), what)

    def reduce_scatter(self, send: np.ndarray, receive: np.ndarray, counts: list[int]) -> None:
        """Sum ``send`` across ranks; this rank receives its ``counts[rank]`` elements."""
        if self.timeout is None:
            self.comm.Reduce_scatter(send, receive, counts, op=self.MPI.SUM)
        else:
            self._wait(self.comm.Ireduce_scatter(send, receive, counts, op=self.MPI.SUM),
                       "reduce-scatter of the gradients")

    def allgatherv(self, buffer: np.ndarray, counts: list[int], displacements: list[int]) -> None:
        """Every rank's part ``buffer[displacements[r]:][:counts[r]]`` to every rank, in
        place."""
        datatype = self.MPI.FLOAT if buffer.dtype == np.float32 else self.MPI.DOUBLE
        spec = [buffer, (counts, displacements), datatype]
        if self.timeout is None:
            self.comm.Allgatherv(self.MPI.IN_PLACE, spec)
        else:
            self._wait(self.comm.Iallgatherv(self.MPI.IN_PLACE, spec),
                       "allgather of the params")

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        if self.timeout is None:
            self.comm.Bcast(buffer, root=root)
        else:
            self._wait(self.comm.Ibcast(buffer, root=root), "broadcast of the params")

    def agree(self, error: BaseException | None, what: str,
              counts: np.ndarray | None = None) -> np.ndarray | None:
        """The collective error check: every rank says whether it failed; if any did, every
        rank raises (the failing ones their own error, the others :class:`RemoteStepError`),
        so no rank goes on into a collective the others will never join.

        ``counts`` (int64) ride along in the same message; their sum over ranks is returned.
        """
        extra = 0 if counts is None else len(counts)
        header = np.zeros(self.size + extra, dtype=np.int64)
        header[self.rank] = error is not None
        if counts is not None:
            header[self.size:] = counts
        self.allreduce(header, what=f"the error check of {what}")
        if error is not None:
            raise error
        failed = header[:self.size]
        if failed.any():
            ranks = ", ".join(str(r) for r in np.flatnonzero(failed))
            raise RemoteStepError(f"rank {self.rank}: {what} failed on rank(s) {ranks} "
                                  "(see their errors); nothing changed on any rank")
        return None if counts is None else header[self.size:]
