"""Checks shared by the API: every rule is checked before any memory is touched, and a
failure names the offending argument (and index) in a TypeError or ValueError."""

from __future__ import annotations

import bisect
import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_array(array, name: str, *, writable: bool) -> np.ndarray:
    """``array`` as a kernel can take it: a C-contiguous float32/float64 ndarray in native
    byte order (and writable when the kernel writes it)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
    if array.dtype not in FLOAT_DTYPES or not array.dtype.isnative:
        raise TypeError(
            f"{name} must have dtype float32 or float64 in native byte order, got {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if writable and not array.flags.writeable:
        raise ValueError(f"{name} must be writable (it is updated in place)")
    return array


def check_matches_param(array: np.ndarray, name: str, param: np.ndarray, index: int) -> None:
    """``array`` (a gradient or a state array of params[index]) has the param's dtype
    (TypeError) and shape (ValueError)."""
    if array.dtype != param.dtype:
        raise TypeError(f"{name} has dtype {array.dtype} but params[{index}] "
                        f"has dtype {param.dtype}")
    if array.shape != param.shape:
        raise ValueError(f"{name} has shape {array.shape} but params[{index}] "
                         f"has shape {param.shape}")


def byte_range(array: np.ndarray) -> tuple[int, int]:
    """[start, end) of the bytes a C-contiguous array occupies."""
    start = array.__array_interface__["data"][0]
    return start, start + array.nbytes


class MemoryIndex:
    """Byte ranges of a fixed set of arrays, sorted, to find which one a new array overlaps
    in O(log n)."""

    def __init__(self, arrays):
        spans = sorted((*byte_range(a), i) for i, a in enumerate(arrays) if a.nbytes)
        self._starts = [s for s, _, _ in spans]
        self._spans = spans

    def pairs_overlapping(self):
        """(i, j) for the first two arrays of the set found to overlap, or None."""
        for (s0, e0, i), (s1, e1, j) in zip(self._spans, self._spans[1:]):
            if s1 < e0:
                return min(i, j), max(i, j)
        return None

    def overlapping(self, array: np.ndarray):
        """Index of an array of the set that shares bytes with ``array``, or None."""
        if array.nbytes == 0:
            return None
        start, end = byte_range(array)
        k = bisect.bisect_right(self._starts, end - 1) - 1
        # Spans are disjoint (checked at construction), so only the span starting at or
        # before ``end`` can overlap.
        if k >= 0:
            s, e, i = self._spans[k]
            if s < end and start < e:
                return i
        return None


def check_real(value, name: str) -> float:
    """A finite real number (bools are refused: they are options, not numbers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_range(value, name: str, low: float = -math.inf, high: float = math.inf, *,
                low_open: bool = False, high_open: bool = False) -> float:
    value = check_real(value, name)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low}, {high}{hi}, got {value}")
    return value


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)
