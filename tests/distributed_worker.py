"""The program every rank runs in tests/test_distributed.py (``mpirun -n N python -m mpi4py
tests/distributed_worker.py SCENARIO OUT ...``). It writes what each rank saw into OUT; the
tests compare that with one process stepping on the averaged gradients.

The cases and the gradients of each rank are defined here, once, and imported by the tests
for their single-process oracle.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

import fastdescent as fd


def _half_lr(step):
    return 0.05 / (1 + step)


#: name -> (optimizer class, param groups options, param shapes and dtypes per group)
CASES = {
    "adam": (fd.Adam, [{"lr": 0.01}], [[((7, 5), "f4"), ((3,), "f4"), ((1000,), "f4")]]),
    "adamw-amsgrad-groups": (fd.AdamW, [{"lr": 0.02, "amsgrad": True},
                                        {"lr": _half_lr, "weight_decay": 0.1}],
                             [[((300,), "f4"), ((2, 2), "f4")], [((129,), "f4")]]),
    "sgd-nesterov-mixed-dtypes": (fd.SGD, [{"lr": 0.1, "momentum": 0.9, "nesterov": True}],
                                  [[((50,), "f8"), ((200,), "f4"), ((11, 3), "f8")]]),
    "rmsprop-centered": (fd.RMSprop, [{"lr": 0.01, "centered": True, "momentum": 0.5}],
                         [[((257,), "f4"), ((1,), "f4")]]),
    "adagrad": (fd.Adagrad, [{"lr": 0.1, "lr_decay": 0.01}], [[((400,), "f8")]]),
}
#: steps of each run, and the (step, param) whose gradient is None on every rank
STEPS = 6
SKIPPED = (3, 1)
#: bucket sizes tried: tiny ones cut params across many messages and shards
BUCKETS = {"one-bucket": 2 ** 25, "smallest-buckets": 8}
MODES = ("DataParallel", "ShardedOptimizer")


def initial_params(case: str, rank: int = 0) -> list[np.ndarray]:
    """The params a rank starts from: different on every rank, so the runs show that
    rank 0's are broadcast."""
    _, _, shapes = CASES[case]
    rng = np.random.default_rng([len(case), rank])
    return [rng.normal(size=shape).astype(dtype) for group in shapes for shape, dtype in group]


def make_optimizer(case: str, params: list[np.ndarray]):
    cls, options, shapes = CASES[case]
    groups, first = [], 0
    for group_options, group_shapes in zip(options, shapes):
        groups.append({"params": params[first:first + len(group_shapes)], **group_options})
        first += len(group_shapes)
    return cls(groups)


def rank_grads(case: str, step: int, rank: int, params: list[np.ndarray], exact: bool = True):
    """Rank ``rank``'s gradients at ``step`` (from 0). With ``exact`` they are multiples of
    1/32 below 4 in magnitude: sums over a few ranks are exact in any order, so the mean is
    the same bits however MPI adds."""
    rng = np.random.default_rng([len(case), step, rank, 7])
    grads = []
    for i, p in enumerate(params):
        if (step, i) == SKIPPED:
            grads.append(None)
        elif exact:
            grads.append((rng.integers(-127, 128, size=p.shape) / 32).astype(p.dtype))
        else:
            grads.append(rng.normal(size=p.shape).astype(p.dtype))
    return grads


def _wrap(mode, optimizer, **options):
    return getattr(fd.distributed, mode)(optimizer, **options)


def equivalence(out, comm):
    """Every case, mode and bucket size for STEPS steps; then bad gradients on rank 1."""
    rank = comm.Get_rank()
    results = {}
    state_bytes = {}
    for case in CASES:
        for mode in MODES:
            for bucket_name, bucket_bytes in BUCKETS.items():
                for exact in (True, False):
                    params = initial_params(case, rank)
                    opt = _wrap(mode, make_optimizer(case, params), bucket_bytes=bucket_bytes)
                    for step in range(STEPS):
                        opt.step(rank_grads(case, step, rank, params, exact))
                    key = f"{case}/{mode}/{bucket_name}/{'exact' if exact else 'random'}"
                    for i, p in enumerate(params):
                        results[f"{key}/{i}"] = p
                    if mode == "ShardedOptimizer":
                        state_bytes[key] = [opt.state_bytes(),
                                            sum(p.size for p in opt.pieces)]
    np.savez(os.path.join(out, f"equivalence-rank{rank}.npz"), **results)
    report = {"state_bytes": state_bytes, "bad_grads": bad_grads(comm),
              "prestepped": prestepped(out, comm)}
    with open(os.path.join(out, f"equivalence-rank{rank}.json"), "w") as f:
        json.dump(report, f)


def bad_grads(comm):
    """Rank 1 passes a gradient of the wrong shape at step 2, then good ones again."""
    rank = comm.Get_rank()
    seen = {}
    for mode in MODES:
        params = initial_params("adam", rank)
        opt = _wrap(mode, make_optimizer("adam", params))
        for step in range(2):
            opt.step(rank_grads("adam", step, rank, params))
        before = [p.copy() for p in params]
        grads = rank_grads("adam", 2, rank, params)
        if rank == 1:
            grads[2] = grads[2][:-1]
        try:
            opt.step(grads)
            raised = None
        except Exception as error:  # what each rank raised is the result
            raised = [type(error).__name__, str(error)]
        unchanged = all(np.array_equal(a, b) for a, b in zip(before, params))
        refused = {"bad shape": raised}
        # NaN on rank 1 only, then finite gradients that overflow when summed.
        for name, value, rank_with in (("nan", np.nan, 1), ("overflow", 3e38, None)):
            grads = rank_grads("adam", 2, rank, params)
            if rank_with is None or rank == rank_with:
                grads[0] = np.full_like(grads[0], value)
            try:
                opt.step(grads, check_finite=True)
                refused[name] = None
            except Exception as error:
                refused[name] = [type(error).__name__, str(error)]
            unchanged = unchanged and all(np.array_equal(a, b) for a, b in zip(before, params))
        opt.step(rank_grads("adam", 2, rank, params))   # the job goes on
        seen[mode] = {"raised": refused, "unchanged": unchanged,
                      "step_count": opt.step_count,
                      "params": [p.tolist() for p in params]}
    return seen


def prestepped(out, comm):
    """An optimizer that stepped alone (on the mean gradients) before it is sharded: its
    state is split between the ranks."""
    rank, size = comm.Get_rank(), comm.Get_size()
    case = "adamw-amsgrad-groups"
    params = initial_params(case, 0)
    opt = make_optimizer(case, params)
    for step in range(2):
        per_rank = [rank_grads(case, step, r, params) for r in range(size)]
        opt.step([None if g[0] is None else np.mean(np.stack(g), axis=0)
                  for g in zip(*per_rank)])
    sharded = fd.distributed.ShardedOptimizer(opt, bucket_bytes=256)
    for step in range(2, STEPS):
        sharded.step(rank_grads(case, step, rank, params))
    full = sharded.full_state_dict()
    if rank == 0:
        opt.load_state_dict(full)
        fd.save(os.path.join(out, "prestepped-gathered-state.npz"), opt)
    return [p.tolist() for p in params]


def resume(out, comm, directory, case, first, last):
    """Steps ``first:last`` of ``case``, sharded, resuming from the checkpoint (and the
    params) in ``directory`` when ``first > 0``; saves both there after the last step."""
    rank = comm.Get_rank()
    params = initial_params(case, 0)
    if first:
        params = [a.copy() for a in np.load(os.path.join(directory, "params.npz")).values()]
    opt = fd.distributed.ShardedOptimizer(make_optimizer(case, params), bucket_bytes=256)
    if first:
        loaded = fd.distributed.load(directory, opt)
        assert loaded == first, (loaded, first)
    for step in range(first, last):
        opt.step(rank_grads(case, step, rank, params))
    save_all(directory, opt, params)


def save_all(directory, opt, params):
    fd.distributed.save(directory, opt)
    if opt.rank == 0:
        np.savez(os.path.join(directory, "params.npz"), *params)


def failure(out, comm, directory, how):
    """Save at step 2, then rank 1 fails at step 3: ``dies`` (the process exits mid-step),
    ``hangs`` (it never comes back; the others time out) or ``dies-saving`` (it dies while
    writing the checkpoint of step 4)."""
    rank = comm.Get_rank()
    params = initial_params("adam", 0)
    opt = fd.distributed.ShardedOptimizer(make_optimizer("adam", params), timeout=3.0)
    for step in range(4):
        if step == 2:
            save_all(directory, opt, params)
        if step == 3 and rank == 1 and how == "dies":
            os._exit(3)
        if step == 3 and rank == 1 and how == "hangs":
            time.sleep(3600)
        try:
            opt.step(rank_grads("adam", step, rank, params))
        except fd.distributed.CollectiveTimeout as error:
            with open(os.path.join(out, f"timeout-rank{rank}.txt"), "w") as f:
                f.write(str(error))
            # Abort ends every rank at once: let the other live ranks time out first, so
            # that the test sees what each of them raised.
            others = [os.path.join(out, f"timeout-rank{r}.txt")
                      for r in range(comm.Get_size()) if r != 1]
            deadline = time.monotonic() + 60
            while not all(map(os.path.exists, others)) and time.monotonic() < deadline:
                time.sleep(0.05)
            comm.Abort(4)  # the communicator is unusable: end the job
    if rank == 1 and how == "dies-saving":
        real = np.lib.format.write_array

        def write_then_die(*args, **kwargs):
            real(*args, **kwargs)
            os._exit(5)
        np.lib.format.write_array = write_then_die
    fd.distributed.save(directory, opt)


def main(argv):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    scenario, out, *rest = argv
    if scenario == "equivalence":
        equivalence(out, comm)
    elif scenario == "resume":
        directory, case, first, last = rest
        resume(out, comm, directory, case, int(first), int(last))
    elif scenario == "failure":
        directory, how = rest
        failure(out, comm, directory, how)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
