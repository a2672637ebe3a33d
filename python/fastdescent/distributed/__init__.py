"""Beyond one machine: data-parallel steps over MPI (mpi4py), with the optimizer state
optionally sharded across ranks.

Every rank runs the same script (``mpirun -n N python train.py``), builds the same model and
optimizer, computes gradients on its own part of the data, and steps through a wrapper:

- :class:`DataParallel`: the gradients are averaged across ranks (allreduce), then every
  rank takes the whole step;
- :class:`ShardedOptimizer` (ZeRO stage 1): each rank keeps the optimizer state of 1/N of
  the elements, steps those, and the ranks gather the params.

Both give the result of one process stepping on the averaged gradients. Bad gradients on
one rank make every rank raise (nothing changed anywhere); a rank that stops taking part
makes the others raise :class:`CollectiveTimeout` after ``timeout`` seconds rather than hang.
:func:`save` / :func:`load` checkpoint a sharded optimizer, one file per rank, and resume on
any number of ranks.

mpi4py (and so MPI) is imported only when a wrapper is built: ``pip install
"fastdescent[mpi]"``.
"""

from ._mpi import CollectiveTimeout, DistributedError, RemoteStepError
from .checkpoint import load, save
from .data_parallel import DataParallel
from .sharded import ShardedOptimizer

__all__ = ["DataParallel", "ShardedOptimizer", "save", "load", "DistributedError",
           "RemoteStepError", "CollectiveTimeout"]
