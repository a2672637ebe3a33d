"""Sharded steps in the style of ZeRO stage 1: every rank holds the whole model but the
optimizer state of only 1/N of its elements; it steps those elements and the ranks then
gather the updated params."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..optim.base import Optimizer
from . import layout
from ._base import DistributedOptimizer
from .layout import Piece


@dataclass
class _Bucket:
    """One message's worth of a flat vector, ``lo:hi``, and this rank's part of it."""
    lo: int
    hi: int
    counts: list[int]             # elements of each rank's part
    displacements: list[int]      # where each rank's part starts, relative to lo
    shard_offset: int             # where this rank's part lands in its shard buffer
    mine: list[Piece]             # this rank's part, offsets relative to lo
    others: list[Piece]           # the rest of the bucket, offsets relative to lo


def _shifted(pieces: list[Piece], by: int) -> list[Piece]:
    return [Piece(p.param, p.start, p.stop, p.offset + by) for p in pieces]


def assemble(piece: Piece, sources: list[tuple[int, int, np.ndarray]], name: str) -> np.ndarray:
    """Elements ``piece.start:piece.stop`` of a flattened state array, from ``sources``:
    ``(start, stop, values)`` runs of that array (as saved by some other sharding)."""
    out = None
    covered = 0
    for start, stop, values in sources:
        lo, hi = max(start, piece.start), min(stop, piece.stop)
        if hi > lo:
            if out is None:
                out = np.empty(piece.size, values.dtype)
            out[lo - piece.start:hi - piece.start] = values[lo - start:hi - start]
            covered += hi - lo
    if covered != piece.size:
        raise ValueError(f"{name}: the saved shards cover {covered} of elements "
                         f"{piece.start}:{piece.stop} of params[{piece.param}]")
    if out is None:  # an empty piece
        return np.empty(0, sources[0][2].dtype if sources else np.float64)
    return out


class ShardedOptimizer(DistributedOptimizer):
    """Wrap any fastdescent optimizer to step data-parallel with its state sharded across
    the N ranks (ZeRO stage 1). Each step:

    1. every rank's gradients are summed and scattered (``MPI_Reduce_scatter``, bucket by
       bucket): rank r receives the sum over ranks of its 1/N of the elements, and divides
       by N;
    2. rank r steps its 1/N of the params with the optimizer's rule, keeping the state of
       those elements only (a local optimizer of the same class and options over views of
       the params' elements it owns);
    3. the ranks gather every part of the params (``MPI_Allgatherv``, in place).

    The result is that of :class:`DataParallel` (and so of one process stepping on the
    averaged gradients) with the optimizer state split N ways: memory per rank for the state
    is 1/N of the unsharded optimizer's, and the bytes sent per step are the same as an
    allreduce's (a reduce-scatter plus an allgather).

    The elements are those of all params of one dtype laid end to end, cut into buckets of
    at most ``bucket_bytes``, each bucket split evenly between ranks. Options, schedules and
    param groups are the wrapped optimizer's; its existing state (if it has stepped or
    loaded a state dict) is split among the ranks. Checkpoints: :func:`save` /
    :func:`load` of :mod:`fastdescent.distributed` (one file per rank; a run can resume on
    another number of ranks).
    """

    def __init__(self, optimizer: Optimizer, comm=None, *, bucket_bytes: int = 2 ** 25,
                 timeout: float | None = 600.0, broadcast: bool = True):
        super().__init__(optimizer, comm, bucket_bytes=bucket_bytes, timeout=timeout,
                         broadcast=broadcast)
        self._class = type(optimizer)
        self._buckets: list[list[_Bucket]] = []
        self._shards: list[np.ndarray] = []
        mine: list[tuple[Piece, int]] = []        # (piece with shard offset, flat index)
        for f, flat in enumerate(self._flats):
            buckets, shard_size = [], 0
            for lo, hi in flat.buckets:
                counts, displacements = flat.split(lo, hi, self.size)
                start = lo + displacements[self.rank]
                stop = start + counts[self.rank]
                own = _shifted(flat.pieces(start, stop), start - lo)
                rest = flat.pieces(lo, start) + _shifted(flat.pieces(stop, hi), stop - lo)
                buckets.append(_Bucket(lo, hi, counts, displacements, shard_size, own, rest))
                mine.extend((Piece(p.param, p.start, p.stop, p.offset - (start - lo)
                                   + shard_size), f) for p in own)
                shard_size += counts[self.rank]
            self._buckets.append(buckets)
            self._shards.append(np.zeros(shard_size, flat.dtype))
        self._bucket_buffers = [np.empty(max((hi - lo for lo, hi in flat.buckets), default=0),
                                         flat.dtype) for flat in self._flats]
        # The local optimizer: one local param per piece, in the wrapped optimizer's groups.
        group_of = [g for g, group in enumerate(optimizer.param_groups)
                    for _ in group["params"]]
        ordered = sorted(mine, key=lambda item: group_of[item[0].param])
        self.pieces: list[Piece] = [piece for piece, _ in ordered]
        self._piece_grads = [self._shards[f][p.offset:p.offset + p.size] for p, f in ordered]
        groups = []
        for g, group in enumerate(optimizer.param_groups):
            options = {k: v for k, v in group.items() if k != "params"}
            views = [self._params[p.param].reshape(-1)[p.start:p.stop]
                     for p in self.pieces if group_of[p.param] == g]
            groups.append({"params": views, **options})
        self.optimizer = self._class(groups, **optimizer.defaults, backend=optimizer.backend)
        self._group_sizes = [len(group["params"]) for group in optimizer.param_groups]
        if optimizer.state or optimizer.step_count:
            self.load_full_state_dict(optimizer.state_dict())

    # ---------------------------------------------------------------------------- stepping

    def step(self, grads, check_finite: bool = False) -> None:
        """Average ``grads`` across ranks, step this rank's shard, gather the params. Bad
        gradients on any rank make every rank raise with nothing changed anywhere;
        ``check_finite`` refuses NaN or infinity in any rank's gradients, and an average
        that overflowed."""
        grads = self._checked_grads(grads, check_finite)
        rank = self.rank
        for flat_buckets, shard, buffer in zip(self._buckets, self._shards,
                                               self._bucket_buffers):
            for b in flat_buckets:
                message = buffer[:b.hi - b.lo]
                layout.pack(b.mine + b.others, grads, message)
                self.collectives.reduce_scatter(
                    message, shard[b.shard_offset:b.shard_offset + b.counts[rank]], b.counts)
            self._average(shard)
        if check_finite:
            error = None
            if not all(np.isfinite(shard).all() for shard in self._shards):
                error = ValueError(f"rank {rank}: the averaged gradients overflowed to "
                                   "infinity (check_finite=True); nothing changed on any rank")
            self.collectives.agree(error, "the averaged gradients")
        self.optimizer.step([view if grads[p.param] is not None else None
                             for view, p in zip(self._piece_grads, self.pieces)])
        for flat_buckets, buffer in zip(self._buckets, self._bucket_buffers):
            for b in flat_buckets:
                message = buffer[:b.hi - b.lo]
                layout.pack(b.mine, self._params, message)
                self.collectives.allgatherv(message, b.counts, b.displacements)
                layout.unpack(b.others, message, self._params)

    def state_bytes(self) -> int:
        """Bytes of optimizer state this rank holds."""
        return sum(v.nbytes for s in self.optimizer.state.values() for v in s.values()
                   if isinstance(v, np.ndarray))

    # ------------------------------------------------------------------------- state dicts

    def full_state_dict(self) -> dict[str, Any]:
        """The state dict of the unsharded optimizer (as one process stepping alone would
        have it), put together from every rank's shard; collective: every rank calls it and
        gets the whole (it holds the state of every element, so it needs the memory of the
        unsharded state). ``fd.save`` on one rank writes it as an ordinary checkpoint."""
        local = self.optimizer.state_dict()
        mine = [(p.param, p.start, p.stop, local["state"].get(j, {}))
                for j, p in enumerate(self.pieces)]
        state: dict[int, dict[str, Any]] = {}
        for theirs in self.comm.allgather(mine):
            for param, start, stop, entries in theirs:
                target = state.setdefault(param, {})
                for key, value in entries.items():
                    if not isinstance(value, np.ndarray):
                        target[key] = value
                        continue
                    if key not in target:
                        target[key] = np.empty_like(self._params[param])
                    target[key].reshape(-1)[start:stop] = value
        groups, first = [], 0
        for group, count in zip(local["param_groups"], self._group_sizes):
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": list(range(first, first + count))})
            first += count
        return {"state": dict(sorted(state.items())), "param_groups": groups,
                "step_count": local["step_count"]}

    def load_full_state_dict(self, state_dict) -> None:
        """Load the state dict of an unsharded optimizer of the same class over the same
        params (each rank keeps its shard of it)."""
        sources = {}
        for i, entries in state_dict["state"].items():
            arrays = {k: [(0, self._params[i].size, np.asarray(v).reshape(-1))]
                      for k, v in entries.items() if isinstance(v, np.ndarray)}
            scalars = {k: v for k, v in entries.items() if not isinstance(v, np.ndarray)}
            sources[i] = (arrays, scalars)
        self.optimizer.load_state_dict(self.local_state_dict(
            sources, state_dict["param_groups"], state_dict.get("step_count", 0), "state_dict"))

    def local_state_dict(self, sources: dict[int, tuple[dict[str, list], dict[str, Any]]],
                         groups: list[dict[str, Any]], step_count: int,
                         name: str) -> dict[str, Any]:
        """The state dict of this rank's local optimizer, from state given per param ``i``
        as ``(arrays, scalars)``: ``arrays[key]`` a list of ``(start, stop, values)`` runs of
        the flattened state array (cut by any sharding), ``scalars[key]`` a number (the
        param's step). Options come from ``groups`` (the wrapped optimizer's groups)."""
        state = {}
        for j, piece in enumerate(self.pieces):
            if piece.param not in sources:
                continue
            arrays, scalars = sources[piece.param]
            entries = dict(scalars)
            for key, runs in arrays.items():
                entries[key] = assemble(piece, runs, f"{name}: state[{piece.param}][{key!r}]")
            state[j] = entries
        if len(groups) != len(self._group_sizes):
            raise ValueError(f"{name} has {len(groups)} param groups but the optimizer has "
                             f"{len(self._group_sizes)}")
        local_groups, first = [], 0
        for g, group in enumerate(groups):
            members = [j for j, p in enumerate(self.pieces)
                       if first <= p.param < first + self._group_sizes[g]]
            first += self._group_sizes[g]
            local_groups.append({**{k: v for k, v in group.items() if k != "params"},
                                 "params": members})
        return {"state": state, "param_groups": local_groups, "step_count": step_count}
