"""Mini-batch gradient accumulation: sum the gradients of micro-batches, average per-sample
gradients, and hand back the mean for one optimizer step.

A batch too large for one pass is split into micro-batches. If micro-batch ``b`` holds
``n_b`` samples and ``g_b`` is the mean of their gradients, the gradient of the whole batch is

    g = (sum_b n_b g_b) / (sum_b n_b),

the mean over all its samples. :class:`GradientAccumulator` keeps the running sums
``sum_b n_b g_b`` and ``sum_b n_b`` and returns ``g``; :func:`accumulate` is its kernel,
``acc <- acc + scale * grad``; :func:`row_mean` averages a (batch, n) matrix whose rows are
per-sample gradients. All three run as native kernels in every backend (one call covers a
list of tensors), check every argument before writing anything, and raise TypeError or
ValueError naming the offending argument and index.

>>> import numpy as np, fastdescent as fd
>>> w = np.zeros(2)
>>> opt = fd.SGD([w], lr=0.5)
>>> acc = fd.GradientAccumulator([w])
>>> acc.add([np.array([1.0, 2.0])], weight=3)     # the mean gradient of 3 samples
>>> acc.add([np.array([5.0, 6.0])], weight=1)     # and of 1 more
>>> acc.samples
4
>>> opt.step(acc.mean())                           # the mean over all 4 samples: [2, 3]
>>> w
array([-1. , -1.5])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import backends
from .backends import lists

__all__ = ["accumulate", "row_mean", "GradientAccumulator"]


def accumulate(acc, grad, scale=1.0, *, backend: str | None = None) -> None:
    """Add ``scale * grad`` to ``acc``, in place: ``acc <- acc + scale * grad``.

    ``acc`` and ``grad`` are arrays of the same shape and dtype (float32 or float64,
    C-contiguous; ``acc`` writable), or two aligned lists of them: one native call then covers
    every pair. ``scale`` is a finite real number, cast to each array's dtype. Nothing is
    written unless every argument is valid. ``backend`` names the backend (default: the
    current one).

    >>> import numpy as np, fastdescent as fd
    >>> acc = np.zeros(3, dtype=np.float32)
    >>> fd.accumulate(acc, np.array([1, 2, 3], dtype=np.float32), scale=0.5)
    >>> fd.accumulate(acc, np.array([1, 1, 1], dtype=np.float32))
    >>> acc
    array([1.5, 2. , 2.5], dtype=float32)
    >>> a, b = np.zeros(2), np.zeros((2, 2))
    >>> fd.accumulate([a, b], [np.ones(2), np.full((2, 2), 2.0)], scale=2)
    >>> a.tolist(), b.tolist()
    ([2.0, 2.0], [[4.0, 4.0], [4.0, 4.0]])
    """
    single = isinstance(acc, np.ndarray)
    if single:
        if not isinstance(grad, np.ndarray):
            raise TypeError(f"accumulate: grad must be a numpy.ndarray when acc is one, "
                            f"got {type(grad).__name__}")
        accs, grads = [acc], [grad]
    else:
        accs, grads = acc, grad
    try:
        backends.resolve(backend).accumulate(accs, grads, scale)
    except (TypeError, ValueError):
        # Nothing was written; name the arguments as the caller did.
        lists.real_arg("accumulate", "scale", scale)
        lists.check_lists("accumulate", ("acc", accs, True, False),
                          ("grad", grads, False, False))
        raise


def row_mean(per_sample_grads, out=None, *, backend: str | None = None) -> np.ndarray:
    """The mean over the rows of a matrix of per-sample gradients:
    ``out[j] = (1 / B) sum_{i=1}^{B} G[i, j]``.

    ``per_sample_grads`` is a C-contiguous float32 or float64 array of shape ``(B, n)`` (or
    ``(B, *shape)``: row ``i`` is the gradient of sample ``i``), ``B >= 1``; the result has the
    shape of one row. ``out``, when given, receives it (same dtype, C-contiguous, writable,
    not overlapping the input) and is returned; otherwise a new array is.

    Rows are added in order, in float64 whatever the dtype, and the sum is divided once by
    ``B``: for float32 input the result is the exact mean rounded once to float32 (summing in
    float32 would lose up to about ``B`` units in the last place), and it is the same for any
    number of threads. Large matrices are split across threads by columns.

    >>> import numpy as np, fastdescent as fd
    >>> G = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    >>> fd.row_mean(G)
    array([3., 5.])
    >>> out = np.empty(2, dtype=np.float32)
    >>> fd.row_mean(G.astype(np.float32), out=out) is out
    True
    """
    if out is None:
        if not isinstance(per_sample_grads, np.ndarray):
            raise TypeError(f"row_mean: per_sample_grads must be a numpy.ndarray, "
                            f"got {type(per_sample_grads).__name__}")
        out = np.empty(per_sample_grads.shape[1:], dtype=per_sample_grads.dtype)
    try:
        backends.resolve(backend).row_mean(per_sample_grads, out)
    except (TypeError, ValueError):
        lists.check_row_mean(per_sample_grads, out, "per_sample_grads")
        raise
    return out


def _as_shape(entry, where: str) -> tuple[int, ...]:
    if isinstance(entry, (int, np.integer)) and not isinstance(entry, bool):
        entry = (entry,)
    if not isinstance(entry, Sequence) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0
            for d in entry):
        raise TypeError(f"{where} must be an array or a shape (a tuple of whole numbers "
                        f">= 0), got {entry!r}")
    return tuple(int(d) for d in entry)


class GradientAccumulator:
    """Sums micro-batch gradients and hands back their mean for one step.

    For tensors ``k = 1..K`` it keeps the running sums ``S_k`` and the total weight ``N``:

    - :meth:`add` ``(grads, weight=w)``: ``S_k <- S_k + w g_k``, ``N <- N + w``. Give as
      ``w`` the number of samples that ``g_k`` is the mean over (or any weight >= 0);
    - :meth:`add_per_sample` ``(G)``: ``G_k`` holds one row per sample (shape
      ``(B, *shape_k)``): ``S_k <- S_k + B mean_rows(G_k)``, ``N <- N + B``;
    - :meth:`mean`: ``S_k / N`` (computed as ``S_k * (1 / N)``), new arrays ready for
      ``opt.step`` (or written into ``out``); :meth:`reset` starts again from zero.

    With ``w`` the micro-batch sizes, the mean is the gradient of the whole batch. Every
    method checks its arguments (count, shape and dtype of each tensor) before it changes
    anything, and names the offending one.

    ``like`` describes the tensors: arrays (a list, or one array; their shapes and dtypes are
    used, typically ``opt.params``) or shapes (ints or tuples) with ``dtype`` (default
    float64). ``dtype`` given with arrays overrides their dtype.

    >>> import numpy as np, fastdescent as fd
    >>> acc = fd.GradientAccumulator([(2,), ()], dtype=np.float32)
    >>> acc.add_per_sample([np.array([[1, 2], [3, 4]], np.float32), np.array([1, 3], np.float32)])
    >>> acc.add([np.array([8, 9], np.float32), np.array(6, np.float32)], weight=2)
    >>> acc.samples
    4
    >>> acc.sums
    [array([20., 24.], dtype=float32), array(16., dtype=float32)]
    >>> acc.mean()
    [array([5., 6.], dtype=float32), array(4., dtype=float32)]
    >>> acc.reset(); acc.samples
    0
    """

    def __init__(self, like, dtype=None, *, backend: str | None = None):
        self._backend = backends.resolve(backend)
        entries = [like] if isinstance(like, np.ndarray) else like
        if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
            raise TypeError(f"like must be a list of arrays or of shapes, "
                            f"got {type(like).__name__}")
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype not in lists._FLOAT:
                raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        sums = []
        for k, entry in enumerate(entries):
            where = f"like[{k}]"
            if isinstance(entry, np.ndarray):
                shape, kind = entry.shape, dtype if dtype is not None else entry.dtype
                if kind not in lists._FLOAT:
                    raise TypeError(f"{where} has dtype {kind}: gradients are float32 or "
                                    "float64")
            else:
                shape, kind = _as_shape(entry, where), dtype or np.dtype(np.float64)
            sums.append(np.zeros(shape, kind))
        self._sums = sums
        self._scratch: list[np.ndarray] | None = None  # row means, for add_per_sample
        self._samples: float = 0

    def __len__(self) -> int:
        return len(self._sums)

    @property
    def samples(self):
        """The total weight added since the last :meth:`reset` (the number of samples when
        the weights are micro-batch sizes)."""
        return self._samples

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [s.shape for s in self._sums]

    @property
    def dtypes(self) -> list[np.dtype]:
        return [s.dtype for s in self._sums]

    @property
    def sums(self) -> list[np.ndarray]:
        """The running sums ``S_k`` (read-only views)."""
        views = [s.view() for s in self._sums]
        for v in views:
            v.flags.writeable = False
        return views

    def _listed(self, grads, name: str) -> Sequence:
        if isinstance(grads, np.ndarray):
            if len(self._sums) != 1:
                raise TypeError(f"{name} must be a list of {len(self._sums)} arrays; a bare "
                                "array is accepted only when there is one tensor")
            return [grads]
        if not isinstance(grads, (list, tuple)):
            raise TypeError(f"{name} must be a list or tuple of arrays, "
                            f"got {type(grads).__name__}")
        if len(grads) != len(self._sums):
            raise ValueError(f"{name} has {len(grads)} arrays but the accumulator has "
                             f"{len(self._sums)} tensors")
        return grads

    def _explain(self, function: str, grads, name: str, row_axis: bool = False) -> None:
        """Raise the error a kernel raised about ``grads``, in the accumulator's terms."""
        for k, (g, s) in enumerate(zip(grads, self._sums)):
            lists.check_array(function, f"{name}[{k}]", g, False)
            shape = g.shape[1:] if row_axis else g.shape
            if g.dtype != s.dtype:
                raise TypeError(f"{function}: {name}[{k}] has dtype {g.dtype} but tensor {k} "
                                f"of the accumulator has dtype {s.dtype}")
            if shape != s.shape:
                what = "rows of shape" if row_axis else "shape"
                raise ValueError(f"{function}: {name}[{k}] has {what} {shape} but tensor {k} "
                                 f"of the accumulator has shape {s.shape}")

    def add(self, grads, weight=1) -> None:
        """``S_k <- S_k + weight * grads[k]`` for every tensor, and ``N <- N + weight``.

        ``grads``: arrays aligned with the tensors (a bare array when there is one), each of
        the tensor's shape and dtype. ``weight``: a finite number >= 0, typically the number
        of samples ``grads`` is the mean over.
        """
        weight_value = lists.real_arg("GradientAccumulator.add", "weight", weight)
        if weight_value < 0:
            raise ValueError(f"GradientAccumulator.add: weight must be >= 0, got {weight}")
        grads = self._listed(grads, "grads")
        try:
            self._backend.accumulate(self._sums, grads, weight_value)
        except (TypeError, ValueError):
            self._explain("GradientAccumulator.add", grads, "grads")
            raise
        # Whole weights keep the count whole (a number of samples).
        whole = isinstance(weight, (int, np.integer)) and not isinstance(weight, bool)
        self._samples += int(weight) if whole else weight_value

    def add_per_sample(self, per_sample_grads) -> None:
        """Add every row of per-sample gradients: ``per_sample_grads[k]`` has shape
        ``(B, *shape_k)`` (row ``i``: sample ``i``'s gradient of tensor ``k``), the same
        ``B >= 1`` for every tensor. ``S_k <- S_k + B mean_rows``, ``N <- N + B``."""
        function = "GradientAccumulator.add_per_sample"
        grads = self._listed(per_sample_grads, "per_sample_grads")
        for k, g in enumerate(grads):
            lists.check_array(function, f"per_sample_grads[{k}]", g, False)
            if g.ndim == 0:
                raise ValueError(f"{function}: per_sample_grads[{k}] is 0-d: it needs a first "
                                 "axis of rows (one per sample)")
        self._explain(function, grads, "per_sample_grads", row_axis=True)
        for k, g in enumerate(grads):
            if g.shape[0] != grads[0].shape[0]:
                raise ValueError(f"{function}: per_sample_grads[{k}] has {g.shape[0]} rows but "
                                 f"per_sample_grads[0] has {grads[0].shape[0]}")
        if not grads:
            return
        batch = grads[0].shape[0]
        if batch == 0:
            raise ValueError(f"{function}: per_sample_grads have no rows (no samples)")
        if self._scratch is None:
            self._scratch = [np.empty_like(s) for s in self._sums]
        for g, scratch in zip(grads, self._scratch):
            self._backend.row_mean(g, scratch)
        self._backend.accumulate(self._sums, self._scratch, batch)
        self._samples += batch

    def mean(self, out=None) -> list[np.ndarray]:
        """The mean ``S_k / N`` of what was added, as new arrays (or written into ``out``,
        arrays of the tensors' shapes and dtypes, which are returned). ValueError when
        nothing (or only weight 0) was added."""
        if not self._samples:
            raise ValueError("GradientAccumulator.mean: nothing was added since the last "
                             "reset (the total weight is 0)")
        if out is None:
            out = [s.copy() for s in self._sums]
        else:
            out = list(self._listed(out, "out"))
            lists.check_lists("GradientAccumulator.mean", ("out", out, True, False))
            for k, (o, s) in enumerate(zip(out, self._sums)):
                if o.dtype != s.dtype or o.shape != s.shape:
                    raise ValueError(f"GradientAccumulator.mean: out[{k}] is {o.dtype} "
                                     f"{o.shape} but tensor {k} is {s.dtype} {s.shape}")
            for o, s in zip(out, self._sums):
                np.copyto(o, s)
        self._backend.scale_(out, 1.0 / self._samples)
        return out

    def reset(self) -> None:
        """Forget everything added: the sums and the weight start again from zero."""
        for s in self._sums:
            s.fill(0)
        self._samples = 0

    def __repr__(self) -> str:
        return (f"GradientAccumulator({len(self._sums)} tensors, samples={self._samples}, "
                f"backend={self._backend.NAME!r})")
