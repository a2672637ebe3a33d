"""Argument checks of the accumulation and transformation kernels for the Python backends.

The numpy and numba twins of ``accumulate``, ``row_mean``, ``sum_of_squares``, ``scale_``,
``clip_`` and ``ema_update`` check their arguments here, with the checks and messages of the
compiled kernels (``cpp/bindings/transforms.cpp``): every array and number is checked before
any memory is written, and a failure raises TypeError or ValueError naming the function, the
argument and the index.
"""

from __future__ import annotations

import math

import numpy as np

_FLOAT = (np.dtype(np.float32), np.dtype(np.float64))


def check_array(function: str, name: str, item, writable: bool) -> np.ndarray:
    if not isinstance(item, np.ndarray):
        raise TypeError(f"{function}: {name} must be a numpy.ndarray, got {type(item).__name__}")
    if item.dtype not in _FLOAT or not item.dtype.isnative:
        raise TypeError(f"{function}: {name} must have dtype float32 or float64 in native "
                        f"byte order, got {item.dtype}")
    if not item.flags.c_contiguous:
        raise ValueError(f"{function}: {name} must be C-contiguous")
    if writable and not item.flags.writeable:
        raise ValueError(f"{function}: {name} must be writable")
    return item


def _span(array: np.ndarray):
    start = array.__array_interface__["data"][0]
    return start, start + array.nbytes


def check_no_overlap(function: str, spans) -> None:
    """``spans``: (begin, end, written, column, row, name); ValueError when a written span
    overlaps any other (the later of the two in (column, row) order is named first)."""
    reach_all = reach_written = None
    for span in sorted(spans, key=lambda s: s[0]):
        other = None
        if reach_written is not None and span[0] < reach_written[1]:
            other = reach_written
        elif span[2] and reach_all is not None and span[0] < reach_all[1]:
            other = reach_all
        if other is not None:
            earlier, later = sorted((span, other), key=lambda s: (s[3], s[4]))
            raise ValueError(f"{function}: {later[5]} shares memory with {earlier[5]} "
                             "(an array written in place must not overlap another)")
        if reach_all is None or span[1] > reach_all[1]:
            reach_all = span
        if span[2] and (reach_written is None or span[1] > reach_written[1]):
            reach_written = span


def check_lists(function: str, *args) -> list[tuple[np.ndarray, ...]]:
    """The rows of aligned lists of arrays, checked. ``args`` are ``(name, arrays, writable,
    none_ok)``; the first list sets each row's dtype and shape; a None entry of a
    ``none_ok`` list (only ever the first) leaves its row out."""
    for name, arrays, _, _ in args:
        if not isinstance(arrays, (list, tuple)):
            raise TypeError(f"{function}: {name} must be a list or tuple of arrays, "
                            f"got {type(arrays).__name__}")
    first_name, first_list = args[0][0], args[0][1]
    for name, arrays, _, _ in args[1:]:
        if len(arrays) != len(first_list):
            raise ValueError(f"{function}: {name} has {len(arrays)} arrays but {first_name} "
                             f"has {len(first_list)}")
    rows, spans = [], []
    for r in range(len(first_list)):
        row: list = []
        for c, (name, arrays, writable, none_ok) in enumerate(args):
            item = arrays[r]
            if item is None and none_ok:
                break
            where = f"{name}[{r}]"
            array = check_array(function, where, item, writable)
            if c > 0:
                first = row[0]
                if array.dtype != first.dtype:
                    raise TypeError(f"{function}: {where} has dtype {array.dtype} but "
                                    f"{first_name}[{r}] has dtype {first.dtype}")
                if array.shape != first.shape:
                    raise ValueError(f"{function}: {where} has shape {array.shape} but "
                                     f"{first_name}[{r}] has shape {first.shape}")
            if array.nbytes:
                spans.append((*_span(array), writable, c, r, where))
            row.append(array)
        else:
            rows.append(tuple(row))
    check_no_overlap(function, spans)
    return rows


def real_arg(function: str, name: str, value, infinite_ok: bool = False) -> float:
    """``value`` as a float: a real number (not a bool), not NaN, finite unless
    ``infinite_ok``."""
    if isinstance(value, (bool, complex, str, bytes)):
        raise TypeError(f"{function}: {name} must be a real number, got {type(value).__name__}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{function}: {name} must be a real number, "
                        f"got {type(value).__name__}") from None
    if math.isnan(x) or (not infinite_ok and math.isinf(x)):
        what = "a number, not NaN" if infinite_ok else "finite"
        raise ValueError(f"{function}: {name} must be {what}, got {x}")
    return x


def check_row_mean(matrix, out, matrix_name: str = "matrix") -> None:
    """The checks of ``row_mean(matrix, out)`` (``matrix_name``: what to call ``matrix``)."""
    check_array("row_mean", matrix_name, matrix, False)
    check_array("row_mean", "out", out, True)
    if matrix.ndim < 1:
        raise ValueError(f"row_mean: {matrix_name} must have at least one dimension (its "
                         "rows), got a 0-d array")
    if matrix.shape[0] == 0:
        raise ValueError(f"row_mean: {matrix_name} has no rows (shape {matrix.shape}): the "
                         "mean of no samples is undefined")
    if out.dtype != matrix.dtype:
        raise TypeError(f"row_mean: out has dtype {out.dtype} but {matrix_name} has dtype "
                        f"{matrix.dtype}")
    if out.shape != matrix.shape[1:]:
        raise ValueError(f"row_mean: out has shape {out.shape} but {matrix_name} has shape "
                         f"{matrix.shape} (out must have the shape of one row)")
    spans = [(*_span(a), written, c, 0, name)
             for c, (a, written, name) in enumerate(((matrix, False, matrix_name),
                                                      (out, True, "out"))) if a.nbytes]
    check_no_overlap("row_mean", spans)


def check_decay(function: str, decay) -> float:
    decay = real_arg(function, "decay", decay)
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"{function}: decay must be in [0, 1], got {decay}")
    return decay


def check_bounds(function: str, lo, hi) -> tuple[float, float]:
    lo = real_arg(function, "lo", lo, infinite_ok=True)
    hi = real_arg(function, "hi", hi, infinite_ok=True)
    if lo > hi:
        raise ValueError(f"{function}: lo must not exceed hi, got lo={lo} and hi={hi}")
    return lo, hi
