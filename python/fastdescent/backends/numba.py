"""The Numba backend: the kernels compiled at run time, for when the C++ extension is missing.

Same function names, arguments and argument order as :mod:`fastdescent.backends.numpy` (the
reference) and the compiled ``fastdescent._core``. Importing this module raises ImportError
when numba is not installed (or does not import); nothing else in fastdescent imports numba.

How the kernels are put together, mirroring ``cpp/include/fastdescent``:

* per optimizer, a **setup** ``setup(param, options, step)`` that turns one row of options
  (float64, the names in :data:`OPTIONS`) and a tensor's step number into the constants of
  the update, cast to the array's dtype ``T`` as the C++ kernels cast them, and a
  per-element **rule** ``rule(i, param, grad, s0, s1, s2, c)`` that reads and writes
  element ``i`` of its arrays and nothing else. ``s0..s2`` are the state arrays, ``None``
  where the C++ kernel gets a null pointer (no momentum buffer, not centered, no AMSGrad):
  numba decides ``is None`` at compile time, so each combination is its own branch-free
  loop;
* one **multi-tensor step** per optimizer (:func:`_multi_tensor`, in :data:`STEPS`): a
  single compiled call that runs the setup once per (group, step number) and the rule over
  every element of every tensor, the tensors given by the addresses of their data. It is
  compiled twice: serial, and parallel (``prange``), which splits the concatenation of all
  tensors into one share per thread by total elements, as the C++ loop does, and runs when
  there are at least :data:`PARALLEL_GRAIN` elements per thread for two threads or more.
  The step plans (:mod:`fastdescent.backends.numba_plan`) and the list kernels
  (``adam_step`` ...) both call it;
* for the gradient accumulation and transformation kernels, a generic per-array **loop**
  (:func:`_elementwise`), serial and parallel, with setups ``setup(array, k)`` over a tuple
  of hyperparameters.

Each rule does its arithmetic in the order of numpy.py and the C++ headers, without
``fastmath``, so that rounding agrees with torch. ``error_model="numpy"`` makes a division by
zero give inf or NaN, as in NumPy, instead of raising (and lets the loops vectorize).
Compiled code is cached on disk (``cache=True``: next to this file, or in
``NUMBA_CACHE_DIR``), so only the first process on a machine pays for compiling.

Like the numpy backend, the list kernels trust the optimizer layer to have validated their
arguments, but they check every tensor's layout, dtype and size (compiled code would read or
write out of bounds) before running any.
"""

from __future__ import annotations

import ctypes
import math
import sys

import numpy as np

from . import lists

try:
    import numba
    from numba import njit, prange, types
    from numba.extending import intrinsic, overload, register_jitable
except Exception as exc:  # not installed, or installed but broken (llvmlite, numpy version)
    raise ImportError(f"the numba backend needs numba (pip install fastdescent[numba]): "
                      f"{type(exc).__name__}: {exc}") from exc

NAME = "numba"

#: Arrays of at least this many elements are stepped by the parallel loop (when more than
#: one thread is allowed); smaller ones on the calling thread. The C++ kernels' threshold.
PARALLEL_MIN_SIZE = 2 * 65536

# No fastmath: results must round as numpy.py's do.
_JIT = dict(cache=True, nogil=True, error_model="numpy")


# --------------------------------------------------------------------------- the skeleton

def _part(function):
    """A setup or a rule: compiled for the argument types of the loop that calls it (so a
    test ``state is None`` is decided at compile time), and inlined there by LLVM. Not
    ``inline="always"``: numba's IR inlining would type the dead ``None`` branch too."""
    return register_jitable(function)


def _elementwise(setup, rule):
    """The (serial, parallel) compiled loops running ``rule`` over every element."""

    def serial(param, grad, s0, s1, s2, k):
        c = setup(param, k)
        for i in range(param.size):
            rule(i, param, grad, s0, s1, s2, c)

    def parallel(param, grad, s0, s1, s2, k):
        c = setup(param, k)
        for i in prange(param.size):
            rule(i, param, grad, s0, s1, s2, c)

    # Named after the rule, so that each loop has cache files of its own.
    stem = rule.__name__.strip("_").replace("_rule", "")
    serial.__name__ = serial.__qualname__ = f"{stem}_serial"
    parallel.__name__ = parallel.__qualname__ = f"{stem}_parallel"
    return njit(**_JIT)(serial), njit(parallel=True, **_JIT)(parallel)


def _as(array, value):
    """``value`` cast to ``array``'s dtype: the C++ kernels' ``T(value)``."""
    return array.dtype.type(value)


@overload(_as)
def _as_overload(array, value):
    if array.dtype == types.float32:
        return lambda array, value: np.float32(value)
    return lambda array, value: np.float64(value)


@_part
def _lerp(start, end, weight, one_minus_weight):
    """torch.lerp's formula, taken from the nearer end (``one_minus_weight`` is ``1 - weight``
    computed in the array's dtype)."""
    if -0.5 < weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * one_minus_weight


# ------------------------------------------------------------ the multi-tensor skeleton
#
# A step over many tensors is one compiled call. Tensors arrive as the addresses of their
# data (int64), each made an array of its size by numba.carray: passing arrays one by one,
# or in a typed.List, costs microseconds per tensor on the Python side; an address costs
# nothing once known. The caller guarantees every address points at ``size`` elements of
# the dtype of ``like`` that stay alive through the call.

@intrinsic
def _pointer(typingctx, address, like):
    """The int64 ``address`` as a pointer to elements of ``like``'s dtype."""
    pointer = types.CPointer(like.dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))

    return pointer(types.int64, like), codegen


@register_jitable
def _tensor(address, begin, end, like):
    """Elements [begin, end) of the tensor at ``address``, as an array counting from 0
    (so that loops run from 0 and numba need not wrap negative indices, which keeps them
    vectorizable)."""
    return numba.carray(_pointer(address + begin * like.itemsize, like), end - begin)


def _column(addresses, t, begin, end, like):
    """Elements [begin, end) of the state array of tensor ``t`` in a column, or None for a
    column the kernel does not use."""


@overload(_column)
def _column_overload(addresses, t, begin, end, like):
    if isinstance(addresses, types.NoneType):
        return lambda addresses, t, begin, end, like: None
    return lambda addresses, t, begin, end, like: _tensor(addresses[t], begin, end, like)


@register_jitable
def _offsets(sizes):
    """Where each tensor starts in the concatenation of all, and (last) the total. A plain
    loop: in a parallel function numba would make np.cumsum a parallel region of its own."""
    offsets = np.empty(sizes.size + 1, np.int64)
    offsets[0] = 0
    for t in range(sizes.size):
        offsets[t + 1] = offsets[t] + sizes[t]
    return offsets


@register_jitable
def last_at_or_before(ascending, value):
    """The last index k with ``ascending[k] <= value``, or -1 (np.searchsorted's answer
    minus one; a plain binary search compiles in a fraction of the time)."""
    lo, hi = -1, ascending.size
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if ascending[middle] <= value:
            lo = middle
        else:
            hi = middle
    return lo


# ------------------------------------------------------------------------ float16 tensors
#
# numba has no float16 arithmetic on the CPU (an array of float16 does not even compile), so
# float16 tensors arrive as uint16 bit patterns (``like`` a uint16 array). A tensor's span is
# widened a block at a time into float32 buffers by the bit method of
# cpp/include/fastdescent/float16.hpp, the rule runs on the buffers with its setup's float32
# constants, and the params and state arrays are rounded back to float16 (nearest, ties to
# even): the rules stay as they are, as loop.hpp's run_widened keeps the C++ rules.

#: elements of a float16 tensor widened at a time (five float32 buffers stay in L1)
WIDEN_BLOCK = 512


@intrinsic
def _bitcast(typingctx, value, kind):
    """``value``'s bits as a number of type ``kind`` of the same width."""
    target = kind.instance_type

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(target))

    return target(value, kind), codegen


@register_jitable
def widen_float16(h):
    """The float16 with bits ``h`` as float32, exactly (float16.hpp's widen_portable)."""
    w = np.int64(h) << 16
    sign = w & 0x80000000
    two_w = (w + w) & 0xFFFFFFFF
    normal = _bitcast(np.uint32((two_w >> 4) + (0xE0 << 23)), np.float32) * np.float32(2.0**-112)
    subnormal = _bitcast(np.uint32((two_w >> 17) | (126 << 23)), np.float32) - np.float32(0.5)
    if two_w < (1 << 27):
        magnitude = np.int64(_bitcast(subnormal, np.uint32))
    else:
        magnitude = np.int64(_bitcast(normal, np.uint32))
    return _bitcast(np.uint32(sign | magnitude), np.float32)


@register_jitable
def narrow_float16(f):
    """The bits of float32 ``f`` rounded to float16, to nearest, ties to even (float16.hpp's
    narrow_portable: the float adder does the rounding)."""
    w = np.int64(_bitcast(f, np.uint32))
    shl1_w = (w + w) & 0xFFFFFFFF
    sign = w & 0x80000000
    bias = shl1_w & 0xFF000000
    if bias < 0x71000000:
        bias = 0x71000000
    base = (abs(f) * np.float32(2.0**112)) * np.float32(2.0**-110)
    base = _bitcast(np.uint32((bias >> 1) + 0x07800000), np.float32) + base
    bits = np.int64(_bitcast(base, np.uint32))
    magnitude = 0x7E00 if shl1_w > 0xFF000000 else ((bits >> 13) & 0x7C00) + (bits & 0xFFF)
    return np.uint16((sign >> 16) | magnitude)


@register_jitable
def _widened(address, begin, end, like, buffer):
    """Elements [begin, end) of the float16 tensor at ``address`` widened into ``buffer``."""
    bits = _tensor(address, begin, end, like)
    out = buffer[:end - begin]
    for i in range(end - begin):
        out[i] = widen_float16(bits[i])
    return out


@register_jitable
def _narrowed(values, address, begin, like):
    """``values`` rounded into the float16 tensor at ``address`` from element ``begin``."""
    bits = _tensor(address, begin, begin + values.size, like)
    for i in range(values.size):
        bits[i] = narrow_float16(values[i])


def _widened_column(addresses, t, begin, end, like, buffer):
    """_widened for tensor ``t`` of a state column, or None for an unused column."""


@overload(_widened_column)
def _widened_column_overload(addresses, t, begin, end, like, buffer):
    if isinstance(addresses, types.NoneType):
        return lambda addresses, t, begin, end, like, buffer: None
    return lambda addresses, t, begin, end, like, buffer: _widened(addresses[t], begin, end,
                                                                   like, buffer)


def _narrowed_column(values, addresses, t, begin, like):
    """_narrowed for tensor ``t`` of a state column; nothing for an unused column."""


@overload(_narrowed_column)
def _narrowed_column_overload(values, addresses, t, begin, like):
    if isinstance(addresses, types.NoneType):
        return lambda values, addresses, t, begin, like: None
    return lambda values, addresses, t, begin, like: _narrowed(values, addresses[t], begin,
                                                               like)


def _compute_like(like):
    """An array of the dtype the rules compute in for tensors of ``like``'s dtype."""


@overload(_compute_like)
def _compute_like_overload(like):
    if like.dtype == types.uint16:
        return lambda like: np.empty(0, np.float32)
    return lambda like: like


def _multi_tensor(setup, rule, widened=False):
    """The (serial, parallel) compiled steps of one optimizer over many tensors.

    Arguments: ``like`` (an array of the tensors' dtype), ``options`` (float64, one row per
    group), per tensor its ``groups`` index and step number (float64 ``steps``), the
    addresses of ``params``, ``grads`` and of the three state columns (None for a column
    the options do not use), and ``sizes``; the parallel one also takes ``shares``, the
    number of threads, and splits the concatenation of all tensors into that many
    contiguous shares (aligned to 64 elements), as the C++ loop does. With ``widened`` the
    tensors are float16, ``like`` is a uint16 array and the rule runs in float32 (see
    "float16 tensors" above).
    """

    if widened:
        def piece(like, c, k, begin, end, params, grads, s0, s1, s2):
            buffers = np.empty((5, WIDEN_BLOCK), np.float32)
            for block in range(begin, end, WIDEN_BLOCK):
                stop = min(end, block + WIDEN_BLOCK)
                param = _widened(params[k], block, stop, like, buffers[0])
                grad = _widened(grads[k], block, stop, like, buffers[1])
                a0 = _widened_column(s0, k, block, stop, like, buffers[2])
                a1 = _widened_column(s1, k, block, stop, like, buffers[3])
                a2 = _widened_column(s2, k, block, stop, like, buffers[4])
                for i in range(stop - block):
                    rule(i, param, grad, a0, a1, a2, c)
                _narrowed(param, params[k], block, like)
                _narrowed_column(a0, s0, k, block, like)
                _narrowed_column(a1, s1, k, block, like)
                _narrowed_column(a2, s2, k, block, like)
    else:
        def piece(like, c, k, begin, end, params, grads, s0, s1, s2):
            param = _tensor(params[k], begin, end, like)
            grad = _tensor(grads[k], begin, end, like)
            a0 = _column(s0, k, begin, end, like)
            a1 = _column(s1, k, begin, end, like)
            a2 = _column(s2, k, begin, end, like)
            for i in range(end - begin):
                rule(i, param, grad, a0, a1, a2, c)

    piece = register_jitable(piece)

    def span(like, options, groups, steps, params, grads, s0, s1, s2, offsets, lo, hi):
        """Elements [lo, hi) of the concatenation of all tensors (``offsets``: where each
        tensor starts in it). The setup runs again only when the (group, step) changes
        from one tensor to the next (tensors of a group and step come in runs)."""
        compute = _compute_like(like)
        k = last_at_or_before(offsets, lo)
        group, step = -1, -1.0  # no tensor's: the first sets up
        while k < groups.size and offsets[k] < hi:
            begin = max(lo, offsets[k]) - offsets[k]
            end = min(hi, offsets[k + 1]) - offsets[k]
            if begin < end:
                if groups[k] != group or steps[k] != step:
                    group, step = groups[k], steps[k]
                    c = setup(compute, options[group], step)
                piece(like, c, k, begin, end, params, grads, s0, s1, s2)
            k += 1

    span = register_jitable(span)

    def serial(like, options, groups, steps, params, grads, s0, s1, s2, sizes):
        offsets = _offsets(sizes)
        if offsets[-1] > 0:
            span(like, options, groups, steps, params, grads, s0, s1, s2, offsets, 0,
                 offsets[-1])

    def parallel(like, options, groups, steps, params, grads, s0, s1, s2, sizes, shares):
        offsets = _offsets(sizes)
        total = offsets[-1]
        for share in prange(shares):
            lo = 0 if share == 0 else (total * share // shares) // 64 * 64
            hi = total if share + 1 == shares else (total * (share + 1) // shares) // 64 * 64
            if lo < hi:
                span(like, options, groups, steps, params, grads, s0, s1, s2, offsets, lo, hi)

    # Named after the rule, so that each step has cache files of its own.
    stem = rule.__name__.strip("_").replace("_rule", "") + ("_float16" if widened else "")
    serial.__name__ = serial.__qualname__ = f"{stem}_step_serial"
    parallel.__name__ = parallel.__qualname__ = f"{stem}_step_parallel"
    return njit(**_JIT)(serial), njit(parallel=True, **_JIT)(parallel)


@njit(**_JIT)
def _first_nonfinite_at(like, addresses, sizes):
    """Index of the first tensor (given by address) holding NaN or infinity, or -1 (float16
    tensors as uint16: ``like`` says which)."""
    for t in range(sizes.size):
        if not _all_finite(_tensor(addresses[t], 0, sizes[t], like)):
            return t
    return -1


# ------------------------------------------------------------------------------- the rules
#
# An optimizer's setup reads its options from one row of float64 (the names in OPTIONS,
# bools as 0 or 1) and the tensor's step number (counting from 1), so that one compiled
# loop serves every group of every step.

#: per optimizer kind: the kernel's options in the order of a row (the step is separate)
OPTIONS = {
    "sgd": ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"),
    "adagrad": ("lr", "lr_decay", "weight_decay", "eps", "maximize"),
    "rmsprop": ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"),
    "adam": ("lr", "beta1", "beta2", "eps", "weight_decay", "decoupled_weight_decay",
             "amsgrad", "maximize"),
}


def columns_used(kind, options):
    """Which state columns (kernel argument order) the kernel of ``kind`` reads and writes
    with these options; the others are passed as None."""
    if kind == "sgd":
        return (options["momentum"] != 0,)
    if kind == "adagrad":
        return (True,)
    if kind == "rmsprop":
        return (True, bool(options["centered"]), options["momentum"] > 0)
    return (True, True, bool(options["amsgrad"]))


@_part
def _sgd_setup(p, options, step):
    lr, momentum, dampening, weight_decay = options[0], options[1], options[2], options[3]
    nesterov, maximize = options[4] != 0, options[5] != 0
    return (_as(p, -1.0 if maximize else 1.0), _as(p, weight_decay), _as(p, momentum),
            _as(p, 1.0 - dampening), _as(p, -lr), weight_decay != 0, step == 1, nesterov)


@_part
def _sgd_rule(i, param, grad, momentum_buffer, unused0, unused1, c):
    grad_sign, weight_decay, momentum, grad_scale, neg_lr, decay, first_step, nesterov = c
    g = grad_sign * grad[i]
    if decay:
        g = g + weight_decay * param[i]
    if momentum_buffer is not None:
        if first_step:
            buf = g
        else:
            buf = momentum_buffer[i] * momentum + grad_scale * g
        momentum_buffer[i] = buf
        if nesterov:
            g = g + momentum * buf
        else:
            g = buf
    param[i] = param[i] + neg_lr * g


@_part
def _adagrad_setup(p, options, step):
    lr, lr_decay, weight_decay, eps = options[0], options[1], options[2], options[3]
    maximize = options[4] != 0
    clr = lr / (1.0 + (step - 1.0) * lr_decay)
    return (_as(p, -1.0 if maximize else 1.0), _as(p, weight_decay), _as(p, eps), _as(p, -clr),
            weight_decay != 0)


@_part
def _adagrad_rule(i, param, grad, state_sum, unused0, unused1, c):
    grad_sign, weight_decay, eps, neg_clr, decay = c
    g = grad_sign * grad[i]
    if decay:
        g = g + weight_decay * param[i]
    total = state_sum[i] + g * g
    state_sum[i] = total
    param[i] = param[i] + neg_clr * g / (np.sqrt(total) + eps)


@_part
def _rmsprop_setup(p, options, step):
    lr, alpha, eps, weight_decay, momentum = (options[0], options[1], options[2], options[3],
                                              options[4])
    maximize = options[6] != 0
    one_minus_alpha = _as(p, 1.0 - alpha)
    return (_as(p, -1.0 if maximize else 1.0), _as(p, weight_decay), _as(p, alpha),
            one_minus_alpha, _as(p, 1.0) - one_minus_alpha, _as(p, eps), _as(p, momentum),
            _as(p, -lr), weight_decay != 0)


@_part
def _rmsprop_rule(i, param, grad, square_avg, grad_avg, momentum_buffer, c):
    grad_sign, weight_decay, alpha, one_minus_alpha, alpha_complement, eps, momentum, neg_lr, \
        decay = c
    g = grad_sign * grad[i]
    if decay:
        g = g + weight_decay * param[i]
    sq = square_avg[i] * alpha + one_minus_alpha * g * g
    square_avg[i] = sq
    if grad_avg is not None:
        mean = _lerp(grad_avg[i], g, one_minus_alpha, alpha_complement)
        grad_avg[i] = mean
        avg = np.sqrt(sq - mean * mean) + eps
    else:
        avg = np.sqrt(sq) + eps
    if momentum_buffer is not None:
        buf = momentum_buffer[i] * momentum + g / avg
        momentum_buffer[i] = buf
        param[i] = param[i] + neg_lr * buf
    else:
        param[i] = param[i] + neg_lr * g / avg


@_part
def _adam_setup(p, options, step):
    lr, beta1, beta2, eps, weight_decay = options[0], options[1], options[2], options[3], \
        options[4]
    decoupled, maximize = options[5] != 0, options[7] != 0
    # math.pow is C's pow, as Python's float ** int in numpy.py (``step`` is a float, so
    # LLVM cannot turn it into repeated multiplication).
    bias_correction1 = 1.0 - math.pow(beta1, step)
    bias_correction2 = 1.0 - math.pow(beta2, step)
    one_minus_beta1 = _as(p, 1.0 - beta1)
    has_decay = weight_decay != 0
    return (_as(p, -1.0 if maximize else 1.0), _as(p, weight_decay),
            _as(p, 1.0 - lr * weight_decay), one_minus_beta1, _as(p, 1.0) - one_minus_beta1,
            _as(p, beta2), _as(p, 1.0 - beta2), _as(p, eps), _as(p, -(lr / bias_correction1)),
            _as(p, math.sqrt(bias_correction2)), has_decay and not decoupled,
            has_decay and decoupled)


@_part
def _adam_rule(i, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, c):
    grad_sign, weight_decay, param_decay, one_minus_beta1, beta1_complement, beta2, \
        one_minus_beta2, eps, neg_step_size, bias_correction2_sqrt, coupled_decay, \
        decoupled_decay = c
    g = grad_sign * grad[i]
    p = param[i]
    if decoupled_decay:
        p = p * param_decay
    if coupled_decay:
        g = g + weight_decay * p
    m = _lerp(exp_avg[i], g, one_minus_beta1, beta1_complement)
    v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
    exp_avg[i] = m
    exp_avg_sq[i] = v
    second_moment = v
    if max_exp_avg_sq is not None:
        # np.maximum: NaN wins.
        previous = max_exp_avg_sq[i]
        if not (v > previous or v != v):
            second_moment = previous
        max_exp_avg_sq[i] = second_moment
    denom = np.sqrt(second_moment) / bias_correction2_sqrt + eps
    param[i] = p + neg_step_size * m / denom


_RULES = {"sgd": (_sgd_setup, _sgd_rule), "adagrad": (_adagrad_setup, _adagrad_rule),
          "rmsprop": (_rmsprop_setup, _rmsprop_rule), "adam": (_adam_setup, _adam_rule)}

#: per optimizer kind: its (serial, parallel) multi-tensor steps
STEPS = {kind: _multi_tensor(*parts) for kind, parts in _RULES.items()}

#: the same for float16 tensors (given as uint16 bits), computed in float32
STEPS_FLOAT16 = {kind: _multi_tensor(*parts, widened=True) for kind, parts in _RULES.items()}


def _all_finite(values):
    """Whether no element of ``values`` is NaN or infinite."""


@overload(_all_finite)
def _all_finite_overload(values):
    if values.dtype == types.uint16:  # float16 bits: NaN and inf have every exponent bit set
        def check(values):
            finite = True
            for i in range(values.size):
                finite &= (values[i] & 0x7C00) != 0x7C00
            return finite
        return check

    def check(values):
        # x - x is 0 for every finite x and NaN for NaN and +-inf (as finite.hpp).
        finite = True
        for i in range(values.size):
            finite &= values[i] - values[i] == 0
        return finite
    return check


@njit(**_JIT)
def _all_finite_array(values):
    return _all_finite(values)


# ---------------------------------------- gradient accumulation and transformations: rules

@_part
def _accumulate_setup(p, k):
    (scale,) = k
    return _as(p, scale)


@_part
def _accumulate_rule(i, acc, grad, unused0, unused1, unused2, scale):
    acc[i] = acc[i] + scale * grad[i]


@_part
def _scale_setup(p, k):
    (factor,) = k
    return _as(p, factor)


@_part
def _scale_rule(i, x, unused0, unused1, unused2, unused3, factor):
    x[i] = x[i] * factor


@_part
def _clip_setup(p, k):
    lo, hi = k
    return _as(p, lo), _as(p, hi)


@_part
def _clip_rule(i, x, unused0, unused1, unused2, unused3, c):
    lo, hi = c
    v = x[i]
    if v < lo:  # false for NaN: NaN passes through
        v = lo
    if hi < v:
        v = hi
    x[i] = v


@_part
def _ema_setup(p, k):
    (decay,) = k
    weight = _as(p, 1.0 - decay)
    return weight, _as(p, 1.0) - weight


@_part
def _ema_rule(i, average, param, unused0, unused1, unused2, c):
    weight, complement = c
    average[i] = _lerp(average[i], param[i], weight, complement)


_ACCUMULATE = _elementwise(_accumulate_setup, _accumulate_rule)
_SCALE = _elementwise(_scale_setup, _scale_rule)
_CLIP = _elementwise(_clip_setup, _clip_rule)
_EMA = _elementwise(_ema_setup, _ema_rule)


# Reductions: only the order of the additions may change (reassoc lets the sum vectorize).
@njit(fastmath={"reassoc"}, **_JIT)
def _squares_serial(x):
    total = 0.0
    for i in range(x.size):
        v = np.float64(x[i])
        total += v * v
    return total


@njit(parallel=True, fastmath={"reassoc"}, **_JIT)
def _squares_parallel(x):
    total = 0.0
    for i in prange(x.size):
        v = np.float64(x[i])
        total += v * v
    return total


#: columns per block of row_mean (as the C++ kernel: the block's float64 sums stay in L2)
ROW_MEAN_BLOCK = 16384


@register_jitable
def _row_mean_columns(matrix, out, begin, end):
    # Rows added in order in float64, four per pass over the sums (same order as one at a
    # time), then divided once: the C++ kernel's arithmetic, bit for bit.
    rows = matrix.shape[0]
    count = np.float64(rows)
    sums = np.empty(min(ROW_MEAN_BLOCK, end - begin), np.float64)
    for block in range(begin, end, ROW_MEAN_BLOCK):
        width = min(ROW_MEAN_BLOCK, end - block)
        for j in range(width):
            sums[j] = np.float64(matrix[0, block + j])
        r = 1
        while r + 4 <= rows:
            for j in range(width):
                k = block + j
                sums[j] = (((sums[j] + np.float64(matrix[r, k])) + np.float64(matrix[r + 1, k]))
                           + np.float64(matrix[r + 2, k])) + np.float64(matrix[r + 3, k])
            r += 4
        while r < rows:
            for j in range(width):
                sums[j] += np.float64(matrix[r, block + j])
            r += 1
        for j in range(width):
            out[block + j] = sums[j] / count


@njit(**_JIT)
def _row_mean_serial(matrix, out):
    _row_mean_columns(matrix, out, 0, matrix.shape[1])


@njit(parallel=True, **_JIT)
def _row_mean_parallel(matrix, out, shares):
    cols = matrix.shape[1]
    for t in prange(shares):
        lo = 0 if t == 0 else (cols * t // shares) // 64 * 64
        hi = cols if t + 1 == shares else (cols * (t + 1) // shares) // 64 * 64
        if lo < hi:
            _row_mean_columns(matrix, out, lo, hi)


#: every compiled function of this backend (the tests read their cache statistics)
DISPATCHERS = (*(f for pair in STEPS.values() for f in pair),
               *(f for pair in STEPS_FLOAT16.values() for f in pair),
               _first_nonfinite_at, _all_finite_array, *_ACCUMULATE, *_SCALE,
               *_CLIP, *_EMA, _squares_serial, _squares_parallel, _row_mean_serial,
               _row_mean_parallel)


# ------------------------------------------------------------------------ the Python side

#: the threads' share of a step: a thread gets at least this many elements (as the C++)
PARALLEL_GRAIN = PARALLEL_MIN_SIZE // 2

#: per dtype, an empty array of the type compiled code sees its tensors as (float16: uint16)
_LIKE = {np.dtype(np.float16): np.empty(0, np.uint16),
         np.dtype(np.float32): np.empty(0, np.float32),
         np.dtype(np.float64): np.empty(0, np.float64)}


def address(array) -> int:
    """The address of ``array``'s data."""
    return array.__array_interface__["data"][0]


def run_step(kind, dtype, options, groups, steps, params, grads, columns, sizes):
    """One compiled call stepping tensors of one ``dtype``: ``options`` float64 rows (one
    per group, :data:`OPTIONS` order), per tensor its group, its step number (float64), the
    addresses of its param, grad and state arrays (``columns``: three int64 arrays or None,
    None where the options use no such column) and its size (int64). The caller has
    checked every array: compiled code trusts the addresses and sizes."""
    shares = min(numba.get_num_threads(), int(sizes.sum()) // PARALLEL_GRAIN)
    serial, parallel = (STEPS_FLOAT16 if dtype == np.float16 else STEPS)[kind]
    args = (_LIKE[dtype], options, groups, steps, params, grads, *columns, sizes)
    if shares > 1:
        parallel(*args, shares)
    else:
        serial(*args)


def _step(kind, names, rows, options, step):
    """Step the tensors of ``rows`` (param, grad, state arrays or None; ``names`` their
    arguments' names) with the options row ``options`` and step number ``step``. Every
    tensor is checked before any is written: all or nothing, as in the C++."""
    by_dtype = {}
    for i, row in enumerate(rows):
        param = row[0]
        n, dtype = param.size, param.dtype
        for j, array in enumerate(row):
            if array is None:
                continue
            # Compiled code does not check bounds, and writes through the addresses.
            flags = array.flags
            if (array.size != n or array.dtype != dtype or not flags.c_contiguous
                    or not (flags.writeable or j == 1)):
                raise ValueError(
                    f"{kind}_step: {names[j]}[{i}] must be C-contiguous"
                    f"{'' if j == 1 else ', writable'} and have the dtype and size of "
                    f"params[{i}] ({dtype}, {n}), got {array.dtype}, {array.size}")
        by_dtype.setdefault(dtype, []).append(row)
    options = np.array([options], np.float64)
    for dtype, members in by_dtype.items():
        m = len(members)
        addresses = [np.array([address(row[j]) for row in members], np.int64)
                     if members[0][j] is not None else None for j in range(len(members[0]))]
        columns = (addresses[2:] + [None] * 3)[:3]
        run_step(kind, dtype, options, np.zeros(m, np.int64), np.full(m, float(step)),
                 addresses[0], addresses[1], columns,
                 np.array([row[0].size for row in members], np.int64))


def _row(kind, arguments):
    """The options row of ``kind`` from the kernel's arguments by name."""
    return [float(arguments[name]) for name in OPTIONS[kind]]


# Hyperparameters go to the compiled step as one row of float64 (one compiled step for any
# values; the setups cast them).

def sgd_step(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay,
             nesterov, maximize, first_step):
    options = _row("sgd", locals())
    (use_momentum,) = columns_used("sgd", locals())
    rows = [(param, grad, momentum_buffers[i] if use_momentum else None)
            for i, (param, grad) in enumerate(zip(params, grads))]
    _step("sgd", ("params", "grads", "momentum_buffers"), rows, options,
          1 if first_step else 2)


def adagrad_step(params, grads, state_sums, lr, lr_decay, weight_decay, eps, maximize, step):
    options = _row("adagrad", locals())
    _step("adagrad", ("params", "grads", "state_sums"), list(zip(params, grads, state_sums)),
          options, step)


def rmsprop_step(params, grads, square_avgs, grad_avgs, momentum_buffers, lr, alpha, eps,
                 weight_decay, momentum, centered, maximize):
    options = _row("rmsprop", locals())
    _, use_mean, use_momentum = columns_used("rmsprop", locals())
    rows = [(param, grad, square_avg, grad_avgs[i] if use_mean else None,
             momentum_buffers[i] if use_momentum else None)
            for i, (param, grad, square_avg) in enumerate(zip(params, grads, square_avgs))]
    _step("rmsprop", ("params", "grads", "square_avgs", "grad_avgs", "momentum_buffers"),
          rows, options, 1)


def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr, beta1, beta2, eps,
              weight_decay, decoupled_weight_decay, amsgrad, maximize, step):
    options = _row("adam", locals())
    rows = [(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sqs[i] if amsgrad else None)
            for i, (param, grad, exp_avg, exp_avg_sq) in enumerate(
                zip(params, grads, exp_avgs, exp_avg_sqs))]
    _step("adam", ("params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"), rows,
          options, step)


def first_nonfinite(arrays):
    """Index of the first array holding a NaN or infinity, or -1 when all are finite."""
    for i, array in enumerate(arrays):
        flat = array.reshape(-1)
        if not _all_finite_array(flat.view(np.uint16) if flat.dtype == np.float16 else flat):
            return i
    return -1


def simd_level():
    """The widest vector instructions numba compiles for here (it targets the host CPU)."""
    cpu = numba.config.CPU_NAME
    if cpu:  # NUMBA_CPU_NAME set: a named (often generic) target, e.g. for portable caches
        return f"llvm:{cpu}"
    from llvmlite import binding as llvm

    features = llvm.get_host_cpu_features()
    has = lambda name: bool(features.get(name, False))  # noqa: E731
    if has("avx512f"):
        return "avx512"
    if has("avx2"):
        return "avx2+fma" if has("fma") else "avx2"
    for name in ("avx", "sse4.2", "sse2", "neon"):
        if has(name):
            return name
    return "scalar"


def _start_thread_pool():
    """Start numba's thread pool now, leaving OpenMP's thread count as it was.

    numba's OpenMP threading layer calls ``omp_set_num_threads(NUMBA_NUM_THREADS)`` when it
    starts its pool. libgomp is one per process, so that would change the threads of every
    other OpenMP user (the cpp backend among them), and at whatever moment numba first ran in
    parallel. Starting the pool at import and putting the count back prevents both.
    """
    openmp = None
    if sys.platform.startswith("linux"):
        try:
            openmp = ctypes.CDLL("libgomp.so.1")  # the loaded one, if any: same soname
        except OSError:
            pass
    before = openmp.omp_get_max_threads() if openmp is not None else None
    numba.get_num_threads()  # starts the pool
    if openmp is not None and numba.threading_layer() == "omp":
        openmp.omp_set_num_threads(before)


_start_thread_pool()


def get_num_threads():
    return numba.get_num_threads()


def set_num_threads(n):
    if n < 1:
        raise ValueError(f"set_num_threads: n must be at least 1, got {n}")
    # numba's pool is sized at startup (NUMBA_NUM_THREADS): more than that is not an error
    # for the other backends, so ask for as many as there are.
    numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))


# ------------------------------- gradient accumulation and transformations: the Python side

def _threaded(rows) -> bool:
    return numba.get_num_threads() > 1 and any(r[0].size >= PARALLEL_MIN_SIZE for r in rows)


def _run(loops, rows, k):
    """Run one rule's loop over each checked row (one or two arrays)."""
    threaded = _threaded(rows)
    for row in rows:
        flat = [a.reshape(-1) for a in row]
        args = flat + [None] * (5 - len(flat)) + [k]
        loops[threaded and row[0].size >= PARALLEL_MIN_SIZE](*args)


def accumulate(accs, grads, scale):
    scale = lists.real_arg("accumulate", "scale", scale)
    rows = lists.check_lists("accumulate", ("accs", accs, True, False),
                             ("grads", grads, False, False))
    _run(_ACCUMULATE, rows, (scale,))


def row_mean(matrix, out):
    lists.check_row_mean(matrix, out)
    rows = matrix.shape[0]
    cols = out.size
    if cols == 0:
        return
    shares = min(numba.get_num_threads(), rows * cols // 65536, cols // 64)
    flat, target = matrix.reshape(rows, cols), out.reshape(-1)
    if shares > 1:
        _row_mean_parallel(flat, target, shares)
    else:
        _row_mean_serial(flat, target)


def sum_of_squares(arrays):
    rows = lists.check_lists("sum_of_squares", ("arrays", arrays, False, True))
    threaded = _threaded(rows)
    total = 0.0
    for (array,) in rows:
        flat = array.reshape(-1)
        total += (_squares_parallel if threaded and flat.size >= PARALLEL_MIN_SIZE
                  else _squares_serial)(flat)
    return total


def scale_(arrays, factor):
    factor = lists.real_arg("scale_", "factor", factor)
    _run(_SCALE, lists.check_lists("scale_", ("arrays", arrays, True, True)), (factor,))


def clip_(arrays, lo, hi):
    lo, hi = lists.check_bounds("clip_", lo, hi)
    _run(_CLIP, lists.check_lists("clip_", ("arrays", arrays, True, True)), (lo, hi))


def ema_update(averages, params, decay):
    decay = lists.check_decay("ema_update", decay)
    rows = lists.check_lists("ema_update", ("averages", averages, True, False),
                             ("params", params, False, False))
    _run(_EMA, rows, (decay,))


def __getattr__(name):
    # PLANS, the step plans (fastdescent.backends.numba_plan), which import this module.
    if name == "PLANS":
        from .numba_plan import PLANS

        return PLANS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
