"""Checks shared by the API: every rule is checked before any memory is touched, and a
failure names the offending argument (and index) in a TypeError or ValueError."""

from __future__ import annotations

import bisect
import math
import numbers
import sys
import warnings

import numpy as np

#: the dtypes of params, gradients and state arrays: float16 is stored as such and computed in
#: float32 (see the optimizers' docstrings)
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def check_array(array, name: str, *, writable: bool) -> np.ndarray:
    """``array`` as an optimizer's kernel can take it: a C-contiguous float16, float32 or
    float64 ndarray in native byte order (and writable when the kernel writes it)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
    if array.dtype not in FLOAT_DTYPES or not array.dtype.isnative:
        raise TypeError(
            f"{name} must have dtype float16, float32 or float64 in native byte order, "
            f"got {array.dtype}")
    if not array.flags.c_contiguous:
        if writable:
            raise ValueError(f"{name} must be C-contiguous: it is updated in place, so keep it "
                             "in contiguous memory (a copy by numpy.ascontiguousarray or "
                             "tensor.contiguous() would be updated instead of it)")
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray, or "
                         "tensor.contiguous() for a torch tensor)")
    if writable and not array.flags.writeable:
        raise ValueError(f"{name} must be writable (it is updated in place); it is read-only, "
                         "as immutable arrays (JAX's, for one) are: keep the params in a "
                         "writable array, e.g. numpy.array(x), and hand that to the optimizer")
    return array


def is_array_like(value) -> bool:
    """Whether ``value`` is one array (rather than a list of them): an ndarray, or anything
    exposing its memory through the array interface, the buffer protocol or DLPack."""
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, (list, tuple, dict, str)):
        return False
    kind = type(value)
    return (hasattr(kind, "__array_interface__") or hasattr(kind, "__array_struct__")
            or hasattr(kind, "__dlpack__") or hasattr(kind, "__array__")
            or _buffer(value) is not None)


def _buffer(value) -> memoryview | None:
    """``value``'s memory when it exposes the buffer protocol."""
    try:
        return memoryview(value)
    except TypeError:
        return None


def _torch_tensor(value) -> bool:
    # torch is never imported here: if the caller holds a tensor, torch is already loaded.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def as_array(value, name: str, *, writable: bool) -> np.ndarray:
    """``value`` as a kernel can take it, viewed without a copy: an ndarray, or a NumPy view
    of the memory of a torch CPU tensor, a ``memoryview`` or any object exposing the buffer
    protocol, the array interface or DLPack (then checked as :func:`check_array` does).

    Nothing is ever copied, so a param converted here is updated in place in its owner's
    memory; an object whose memory cannot be viewed raises TypeError, one that is read-only
    (JAX's arrays, a read-only buffer) raises ValueError when ``writable``.
    """
    if not isinstance(value, np.ndarray):
        value = _view(value, name)
    return check_array(value, name, writable=writable)


def _view(value, name: str) -> np.ndarray:
    """A NumPy array over the memory of ``value``, never a copy."""
    if _torch_tensor(value):
        try:
            # detach() shares storage: a tensor that requires grad is viewed just the same.
            return value.detach().numpy()
        except (RuntimeError, TypeError) as error:
            raise TypeError(f"{name} must be a dense CPU tensor that NumPy can view without a "
                            f"copy (torch says: {error})") from None
    kind = type(value)
    if isinstance(value, (list, tuple, dict, str)) or not is_array_like(value):
        raise TypeError(f"{name} must be a numpy.ndarray or an array NumPy can view without a "
                        "copy (a torch CPU tensor, a buffer, a DLPack exporter), "
                        f"got {kind.__name__}")
    try:
        buffer = _buffer(value)
        if buffer is not None:
            # Viewed through the buffer protocol (np.asarray would read bytes as a string).
            return np.asarray(buffer)
        if hasattr(kind, "__dlpack__") and not (hasattr(kind, "__array_interface__")
                                               or hasattr(kind, "__array_struct__")):
            return np.from_dlpack(value)
        with warnings.catch_warnings():
            # An __array__ that cannot promise a view (no copy= keyword) is refused below.
            warnings.simplefilter("error", DeprecationWarning)
            return np.asarray(value, copy=False)
    except (DeprecationWarning, ValueError, TypeError, BufferError, RuntimeError) as error:
        raise TypeError(f"{name} ({kind.__name__}) cannot be viewed as a NumPy array without a "
                        f"copy ({error}); pass a numpy.ndarray") from None


def as_arrays(values, name: str, count: int):
    """``values`` (a list aligned with ``count`` params, ``None`` entries kept, or one array
    when ``count == 1``) with every entry viewed as an ndarray by :func:`as_array`; ``None``
    when there was nothing to convert (the caller's own error then stands)."""
    if not isinstance(values, (list, tuple)):
        if count != 1 or not is_array_like(values):
            return None
        values = [values]
    elif all(v is None or isinstance(v, np.ndarray) for v in values):
        return None
    return [v if v is None else as_array(v, f"{name}[{i}]", writable=False)
            for i, v in enumerate(values)]


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
