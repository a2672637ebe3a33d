"""Step time, bytes and optimizer-state memory of fd.distributed, per number of ranks.

    mpirun -n 3 python -m mpi4py benches/distributed_bench.py            # full size
    mpirun -n 2 python -m mpi4py benches/distributed_bench.py --scale 0.001 --steps 3

Every rank steps Adam (float32) on its own fixed random gradients; each step is timed
between two barriers, as the slowest rank's time, and the median over ``--steps`` steps is
reported. Rank 0 prints one JSON object per line:

- ``"kind": "step"``: a workload (``1x10M``: one tensor of 10M elements; ``1000x1000``:
  1000 tensors of 1000 elements) stepped by ``mode``: ``Adam`` (the optimizer alone, no
  communication), ``DataParallel`` or ``ShardedOptimizer`` (each with the default
  ``timeout``, polled nonblocking collectives, and with ``timeout=None``, MPI's blocking
  calls); with the bytes of optimizer state each rank holds (the bytes sent are counted
  by benches/distributed_report.py, running ``--count`` under Open MPI's monitoring);
- ``"kind": "local"`` (one rank only): the local work of a step on the 10M elements: a
  copy, the division, an addition, Adam's step (median and minimum);
- ``"kind": "collective"``: the bare collectives on buffers of the workload's size (what the
  per-byte cost model of benches/REPORT_MPI.md is fitted on), and an 8-byte allreduce (the
  latency).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from mpi4py import MPI

import fastdescent as fd


def workloads(scale: float) -> dict[str, list[tuple[int, ...]]]:
    return {"1x10M": [(max(1000, int(10_000_000 * scale)),)],
            "1000x1000": [(1000,)] * max(4, int(1000 * scale))}


def timed(comm, fn, steps: int, best: bool = False) -> float:
    """Median (or with ``best``, minimum) over ``steps`` calls of the slowest rank's time
    for ``fn()``, in seconds."""
    times = []
    fn()  # first step: state allocation, plans
    for _ in range(steps):
        comm.Barrier()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(comm.allreduce(elapsed, op=MPI.MAX))
    return min(times) if best else statistics.median(times)


def bench_local(comm, elements, steps, out):
    """The local work of a step, per element (one process): what the cost model of
    benches/REPORT_MPI.md multiplies by the elements each rank handles."""
    rng = np.random.default_rng(0)
    grad = rng.normal(size=elements).astype(np.float32)
    buffer = np.empty_like(grad)
    param = np.zeros_like(grad)
    adam = fd.Adam([param], lr=1e-3)
    cases = {
        "copy (pack or unpack)": lambda: np.copyto(buffer, grad),
        "divide in place (the mean)": lambda: np.divide(buffer, np.float32(3), out=buffer),
        "add (a reduction's arithmetic)": lambda: np.add(buffer, grad, out=buffer),
        "Adam step": lambda: adam.step([grad]),
    }
    for case, fn in cases.items():
        out({"kind": "local", "operation": case, "elements": elements,
             "seconds_median": timed(comm, fn, steps),
             "seconds_min": timed(comm, fn, steps, best=True)})


def state_bytes(optimizer) -> int:
    return sum(v.nbytes for s in optimizer.state.values() for v in s.values()
               if isinstance(v, np.ndarray))


def bench_steps(comm, name, shapes, steps, out):
    rank, size = comm.Get_rank(), comm.Get_size()
    rng = np.random.default_rng(rank)
    grads = [rng.normal(size=s).astype(np.float32) for s in shapes]
    elements = sum(g.size for g in grads)
    modes = [("Adam", None)] if size == 1 else []
    modes += [(m, t) for m in ("DataParallel", "ShardedOptimizer") for t in (600.0, None)]
    for mode, timeout in modes:
        params = [np.zeros(s, np.float32) for s in shapes]
        adam = fd.Adam(params, lr=1e-3)
        opt = adam if mode == "Adam" else getattr(fd.distributed, mode)(adam, comm,
                                                                         timeout=timeout)
        timed(comm, lambda: opt.step(grads), 1)  # warm up
        seconds = timed(comm, lambda: opt.step(grads), steps)
        held = opt.state_bytes() if mode == "ShardedOptimizer" else state_bytes(adam)
        held_max = comm.allreduce(held, op=MPI.MAX)
        if rank == 0:
            out({"kind": "step", "ranks": size, "workload": name, "elements": elements,
                 "mode": mode, "timeout": timeout, "seconds": seconds,
                 "state_bytes_per_rank_max": held_max})


def bench_collectives(comm, name, elements, steps, out):
    rank, size = comm.Get_rank(), comm.Get_size()
    buffer = np.ones(elements, np.float32)
    counts = [elements // size + (r < elements % size) for r in range(size)]
    displacements = [sum(counts[:r]) for r in range(size)]
    part = np.empty(counts[rank], np.float32)
    cases = {
        "Allreduce": lambda: comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM),
        "Reduce_scatter": lambda: comm.Reduce_scatter(buffer, part, counts, op=MPI.SUM),
        "Allgatherv": lambda: comm.Allgatherv(
            MPI.IN_PLACE, [buffer, (counts, displacements), MPI.FLOAT]),
        "Iallreduce+Wait": lambda: comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.SUM).Wait(),
    }
    for case, fn in cases.items():
        seconds = timed(comm, fn, steps)
        if rank == 0:
            out({"kind": "collective", "ranks": size, "workload": name,
                 "collective": case, "bytes": buffer.nbytes, "seconds": seconds})
    tiny = np.zeros(2, np.float32)
    seconds = timed(comm, lambda: comm.Allreduce(MPI.IN_PLACE, tiny, op=MPI.SUM), steps * 10)
    if rank == 0:
        out({"kind": "collective", "ranks": size, "workload": "8 bytes",
             "collective": "Allreduce", "bytes": 8, "seconds": seconds})


def count_steps(comm, name, shapes, mode, steps):
    """Build ``mode`` over ``shapes`` and take exactly ``steps`` steps, nothing else: run
    under Open MPI's PML monitoring, the bytes each rank sent, minus those of a run with
    ``steps=0``, are the bytes of ``steps`` steps."""
    rng = np.random.default_rng(comm.Get_rank())
    grads = [rng.normal(size=s).astype(np.float32) for s in shapes]
    params = [np.zeros(s, np.float32) for s in shapes]
    opt = getattr(fd.distributed, mode)(fd.Adam(params, lr=1e-3), comm, timeout=None)
    for _ in range(steps):
        opt.step(grads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--count", nargs=2, metavar=("WORKLOAD", "MODE"),
                        help="only take --steps steps of MODE on WORKLOAD (to count bytes)")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    if args.count:
        workload, mode = args.count
        count_steps(comm, workload, workloads(args.scale)[workload], mode, args.steps)
        return

    def out(row):
        print(json.dumps(row), flush=True)

    if comm.Get_size() == 1:
        bench_local(comm, sum(int(np.prod(s)) for s in workloads(args.scale)["1x10M"]),
                    args.steps, out)
    for name, shapes in workloads(args.scale).items():
        bench_steps(comm, name, shapes, args.steps, out)
        if comm.Get_size() > 1 and name == "1x10M":
            bench_collectives(comm, name, sum(int(np.prod(s)) for s in shapes), args.steps,
                              out)


if __name__ == "__main__":
    main()
