"""Checkpoints of a sharded optimizer: one file per rank, each written atomically, and a
resume on any number of ranks.

``save(directory, opt)`` has rank r of N write ``step-<S>.rank-<r>-of-<N>.npz`` (S the step
count) with :func:`fastdescent.checkpoint.write_archive`: a temporary file renamed over the
destination, so a crash mid-write leaves every earlier file whole. A checkpoint is the set of
N files of one step; ``load`` takes the newest complete set, whatever its N, and each rank
cuts the elements it owns now out of the saved shards that hold them.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from ..checkpoint import _decode_groups, _encode_group, read_archive, split_state, write_archive
from . import layout
from .sharded import ShardedOptimizer

FORMAT = "fastdescent-sharded-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step-(\d+)\.rank-(\d+)-of-(\d+)\.npz$")


def _file_name(step: int, rank: int, size: int) -> str:
    return f"step-{step:09d}.rank-{rank:05d}-of-{size:05d}.npz"


def _complete_sets(directory: str) -> dict[int, int]:
    """step -> N for every step whose N files are all present (the largest N if several)."""
    found: dict[tuple[int, int], set[int]] = {}
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if match:
            step, rank, size = map(int, match.groups())
            found.setdefault((step, size), set()).add(rank)
    complete: dict[int, int] = {}
    for (step, size), ranks in found.items():
        if ranks == set(range(size)):
            complete[step] = max(complete.get(step, 0), size)
    return complete


def save(directory: str | os.PathLike, optimizer: ShardedOptimizer, *, keep: int = 2) -> str:
    """Write this rank's shard of ``optimizer`` into ``directory`` (created if missing);
    collective: every rank calls it. Once every rank has written its file, the complete sets
    older than the newest ``keep`` are deleted (by rank 0). Returns this rank's file name.

    If any rank fails to write, every rank raises and no earlier file is touched."""
    if not isinstance(optimizer, ShardedOptimizer):
        raise TypeError(f"optimizer must be a fastdescent.distributed.ShardedOptimizer, "
                        f"got {type(optimizer).__name__}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be a whole number >= 1, got {keep!r}")
    directory = os.fspath(directory)
    local = optimizer.optimizer.state_dict()
    arrays, scalars = split_state(local["state"])
    groups = []
    for group in optimizer.param_groups:
        groups.append(_encode_group({k: v for k, v in group.items() if k != "params"}))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "optimizer": optimizer.optimizer.__class__.__name__,
        "rank": optimizer.rank,
        "size": optimizer.size,
        "params": layout.signature(optimizer.params),
        "pieces": [[p.param, p.start, p.stop] for p in optimizer.pieces],
        "step_count": local["step_count"],
        "param_groups": groups,
        "scalars": scalars,
    }
    path = os.path.join(directory, _file_name(local["step_count"], optimizer.rank,
                                              optimizer.size))
    error = None
    try:
        os.makedirs(directory, exist_ok=True)
        write_archive(path, meta, arrays)
    except OSError as failure:
        error = failure
    optimizer.collectives.agree(error, "saving the checkpoint")
    if optimizer.rank == 0:
        complete = sorted(_complete_sets(directory))
        if local["step_count"] in complete:
            oldest_kept = complete[-keep:][0]
            for name in os.listdir(directory):
                match = _NAME.match(name)
                if match and int(match.group(1)) < oldest_kept:
                    os.unlink(os.path.join(directory, name))
    return path


def load(directory: str | os.PathLike, optimizer: ShardedOptimizer) -> int:
    """Load the newest complete checkpoint in ``directory`` into ``optimizer``, whatever the
    number of ranks that saved it; collective: every rank calls it. Returns its step count.

    Raises FileNotFoundError when there is none, ValueError when it belongs to another kind
    of optimizer or other params; on every rank, with nothing changed."""
    if not isinstance(optimizer, ShardedOptimizer):
        raise TypeError(f"optimizer must be a fastdescent.distributed.ShardedOptimizer, "
                        f"got {type(optimizer).__name__}")
    directory = os.fspath(directory)
    error, step = None, -1
    try:
        sources, groups, step = _read_newest(directory, optimizer)
        local = optimizer.local_state_dict(sources, groups, step, directory)
    except (OSError, ValueError, TypeError) as failure:
        error = failure
    optimizer.collectives.agree(error, "loading the checkpoint")
    newest = np.array([step, -step], dtype=np.int64)   # max and -min over ranks
    optimizer.collectives.allreduce(newest, optimizer.collectives.MPI.MAX,
                                    "the check that every rank loads the same step")
    if newest[0] != -newest[1]:
        raise ValueError(f"rank {optimizer.rank}: the ranks found different newest "
                         f"checkpoints in {directory} (this rank: step {step})")
    optimizer.optimizer.load_state_dict(local)
    return optimizer.step_count


def _read_newest(directory: str, optimizer: ShardedOptimizer):
    complete = _complete_sets(directory) if os.path.isdir(directory) else {}
    if not complete:
        raise FileNotFoundError(f"{directory} holds no complete sharded checkpoint")
    step = max(complete)
    size = complete[step]
    needed: dict[int, list[tuple[int, int]]] = {}
    for p in optimizer.pieces:
        needed.setdefault(p.param, []).append((p.start, p.stop))

    def wanted(param, start, stop) -> bool:
        return any(start < b and a < stop for a, b in needed.get(param, ()))

    sources: dict[int, tuple[dict[str, list], dict[str, Any]]] = {}
    metas = []
    for rank in range(size):
        path = os.path.join(directory, _file_name(step, rank, size))
        meta, _ = read_archive(path, with_arrays=False)
        _check_meta(meta, path, optimizer, step, rank, size)
        metas.append(meta)
        # Only the files holding elements this rank owns now are read whole.
        if not any(wanted(*piece) for piece in meta["pieces"]):
            continue
        _, arrays = read_archive(path)
        for j, (param, start, stop) in enumerate(meta["pieces"]):
            if not wanted(param, start, stop):
                continue
            runs, scalars = sources.setdefault(param, ({}, {}))
            scalars.update(meta["scalars"].get(str(j), {}))
            for name, values in arrays.items():
                prefix = f"state/{j}/"
                if name.startswith(prefix) and name.endswith(".npy"):
                    key = name[len(prefix):-len(".npy")]
                    runs.setdefault(key, []).append((start, stop, values.reshape(-1)))
    # load_pieces reports a mismatch in the number of groups
    groups = _decode_groups(metas[0]["param_groups"], optimizer.param_groups)
    return sources, groups, step


def _check_meta(meta, path: str, optimizer: ShardedOptimizer, step: int, rank: int,
                size: int) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastdescent sharded checkpoint")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path} is a version {meta.get('version')} checkpoint; "
                         f"this fastdescent reads version {VERSION}")
    expected = optimizer.optimizer.__class__.__name__
    if meta.get("optimizer") != expected:
        raise ValueError(f"{path} holds the state of a {meta.get('optimizer')}, "
                         f"not of a {expected}")
    if (meta.get("rank"), meta.get("size"), meta.get("step_count")) != (rank, size, step):
        raise ValueError(f"{path}: its name and its contents disagree")
    saved = [(tuple(shape), dtype) for shape, dtype in meta.get("params", [])]
    if saved != layout.signature(optimizer.params):
        raise ValueError(f"{path} was saved for params {saved}, not "
                         f"{layout.signature(optimizer.params)}")
