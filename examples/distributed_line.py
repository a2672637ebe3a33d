"""Fit the seeds' line y = m x + c with the data split across MPI ranks.

    mpirun -n 3 python -m mpi4py examples/distributed_line.py            # data-parallel
    mpirun -n 3 python -m mpi4py examples/distributed_line.py --sharded  # ZeRO-1 sharded

(``python -m mpi4py`` makes an uncaught exception on one rank end the whole job.) Every
rank makes the same 1000 noisy points (seeded), keeps its own slice of them, and computes
the MSE gradient of its slice:

    D_m = -2/n_r sum_i x_i (y_i - (m x_i + c)),   D_c = -2/n_r sum_i (y_i - (m x_i + c)).

The wrapper averages the ranks' gradients; weighting each by n_r N / n first makes that
average the gradient of the MSE over all the points, whatever the slices' sizes. Rank 0
prints the loss and the fit next to the least-squares answer.
"""

from __future__ import annotations

import argparse

import numpy as np
from mpi4py import MPI

import fastdescent as fd
from fastdescent.demo import line_gradient, make_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sharded", action="store_true", help="shard the optimizer state")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    data = make_line(n=1000, seed=0)
    mine = np.array_split(np.arange(len(data.x)), size)[rank]
    x, y = data.x[mine], data.y[mine]
    weight = len(mine) * size / len(data.x)

    theta = np.zeros(2)                                   # (m, c), the same on every rank
    wrapper = fd.distributed.ShardedOptimizer if args.sharded else fd.distributed.DataParallel
    opt = wrapper(fd.Adam([theta], lr=args.lr), comm)
    for step in range(1, args.steps + 1):
        opt.step([weight * line_gradient(x, y, theta)])
        if rank == 0 and (step % 200 == 0 or step == 1):
            print(f"step {step:4d}  loss {data.mse(*theta):.5f}  m {theta[0]:.4f}  "
                  f"c {theta[1]:.4f}")
    if rank == 0:
        m, c = data.least_squares()
        mode = "sharded" if args.sharded else "data-parallel"
        print(f"{size} ranks, {mode}: m = {theta[0]:.4f}, c = {theta[1]:.4f} "
              f"(least squares: m = {m:.4f}, c = {c:.4f}; true m = {data.true_m}, "
              f"c = {data.true_c})")


if __name__ == "__main__":
    main()
