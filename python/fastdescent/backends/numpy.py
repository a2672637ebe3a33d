"""The NumPy backend: the readable reference for the kernels.

Every function here has the name, arguments and argument order of its compiled twin in
``fastdescent._core``; the tests hold the other backends to these results, and benchmarks
compare against them. Each update is written the way torch.optim's for-loop implementation
orders its operations, so that float rounding agrees with torch. Hyperparameters are cast to
each array's dtype, as the C++ kernels cast them to ``T``.

float16 tensors are computed in float32, as torch's fused CPU kernels compute them: each is
widened to float32 (exactly), the float32 update runs, and the arrays it writes are rounded
back to float16 (to nearest, ties to even); see :func:`_float16_in_float32`.

The functions trust their caller (the optimizer layer) to have validated shapes, dtypes,
contiguity and aliasing; they update ``params`` and the state arrays in place.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import lists

NAME = "numpy"


def _lerp(start, end, weight):
    """torch.lerp's formula: ``start + weight * (end - start)`` taken from the nearer end."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (weight.dtype.type(1) - weight)


def _float16_in_float32(lists: int):
    """A kernel whose first ``lists`` arguments are lists of arrays aligned with params
    (params, grads, then state arrays; a list may be None) made to step float16 tensors in
    float32: their arrays are widened to float32 copies, the kernel steps the copies, and the
    params and state arrays are rounded back to float16 in place (grads are only read)."""

    def decorate(kernel):
        @functools.wraps(kernel)
        def step(*args, **options):
            columns, rest = args[:lists], args[lists:]
            half = [p.dtype == np.float16 for p in columns[0]]
            if not any(half):
                return kernel(*args, **options)

            def rows(wanted, convert):
                return [None if c is None else
                        [convert(a) for a, h in zip(c, half) if h == wanted] for c in columns]

            if not all(half):
                kernel(*rows(False, lambda a: a), *rest, **options)
            widened = rows(True, lambda a: None if a is None else a.astype(np.float32))
            kernel(*widened, *rest, **options)
            for k, (column, copies) in enumerate(zip(columns, widened)):
                if column is None or k == 1:  # k == 1: the grads
                    continue
                for array, copy in zip([a for a, h in zip(column, half) if h], copies):
                    if array is not None:
                        np.copyto(array, copy, casting="same_kind")

        return step

    return decorate


@_float16_in_float32(lists=3)
def sgd_step(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay,
             nesterov, maximize, first_step):
    for i, (param, grad) in enumerate(zip(params, grads)):
        t = param.dtype.type
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + t(weight_decay) * param
        if momentum != 0:
            buf = momentum_buffers[i]
            if first_step:
                buf[...] = g
            else:
                buf[...] = buf * t(momentum) + t(1.0 - dampening) * g
            g = g + t(momentum) * buf if nesterov else buf
        param += t(-lr) * g


@_float16_in_float32(lists=3)
def adagrad_step(params, grads, state_sums, lr, lr_decay, weight_decay, eps, maximize, step):
    for param, grad, state_sum in zip(params, grads, state_sums):
        t = param.dtype.type
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + t(weight_decay) * param
        clr = lr / (1.0 + (step - 1) * lr_decay)
        state_sum += g * g
        param += t(-clr) * g / (np.sqrt(state_sum) + t(eps))


@_float16_in_float32(lists=5)
def rmsprop_step(params, grads, square_avgs, grad_avgs, momentum_buffers, lr, alpha, eps,
                 weight_decay, momentum, centered, maximize):
    for i, (param, grad, square_avg) in enumerate(zip(params, grads, square_avgs)):
        t = param.dtype.type
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + t(weight_decay) * param
        square_avg[...] = square_avg * t(alpha) + t(1.0 - alpha) * g * g
        if centered:
            grad_avg = grad_avgs[i]
            grad_avg[...] = _lerp(grad_avg, g, t(1.0 - alpha))
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + t(eps)
        else:
            avg = np.sqrt(square_avg) + t(eps)
        if momentum > 0:
            buf = momentum_buffers[i]
            buf[...] = buf * t(momentum) + g / avg
            param += t(-lr) * buf
        else:
            param += t(-lr) * g / avg


@_float16_in_float32(lists=5)
def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr, beta1, beta2, eps,
              weight_decay, decoupled_weight_decay, amsgrad, maximize, step):
    bias_correction1 = 1.0 - beta1 ** step
    bias_correction2 = 1.0 - beta2 ** step
    for i, (param, grad, exp_avg, exp_avg_sq) in enumerate(
            zip(params, grads, exp_avgs, exp_avg_sqs)):
        t = param.dtype.type
        g = -grad if maximize else grad
        if weight_decay != 0:
            if decoupled_weight_decay:
                param *= t(1.0 - lr * weight_decay)
            else:
                g = g + t(weight_decay) * param
        exp_avg[...] = _lerp(exp_avg, g, t(1.0 - beta1))
        exp_avg_sq[...] = exp_avg_sq * t(beta2) + t(1.0 - beta2) * g * g
        second_moment = exp_avg_sq
        if amsgrad:
            np.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            second_moment = max_exp_avg_sqs[i]
        denom = np.sqrt(second_moment) / t(math.sqrt(bias_correction2)) + t(eps)
        param += t(-(lr / bias_correction1)) * exp_avg / denom


def first_nonfinite(arrays):
    """Index of the first array holding a NaN or infinity, or -1 when all are finite."""
    for i, array in enumerate(arrays):
        if not np.isfinite(array).all():
            return i
    return -1


def simd_level():
    return "numpy"


def get_num_threads():
    return 1


def set_num_threads(n):
    if n < 1:
        raise ValueError(f"set_num_threads: n must be at least 1, got {n}")


# ------------------------------------------------- gradient accumulation and transformations
# These check their arguments (fastdescent.backends.lists, the compiled kernels' checks and
# messages): they are called directly by fastdescent.accumulate and fastdescent.transforms.

def accumulate(accs, grads, scale):
    """``acc += scale * grad`` for each pair of arrays of two aligned lists, in place."""
    scale = lists.real_arg("accumulate", "scale", scale)
    for acc, grad in lists.check_lists("accumulate", ("accs", accs, True, False),
                                       ("grads", grads, False, False)):
        acc += acc.dtype.type(scale) * grad


def row_mean(matrix, out):
    """``out`` = the mean over the rows (first axis) of ``matrix``: rows added in order, in
    float64 for either dtype, then divided by their number."""
    lists.check_row_mean(matrix, out)
    out[...] = matrix.mean(axis=0, dtype=np.float64)


def sum_of_squares(arrays):
    """The sum of the squares of every element of every array (None skipped), in float64."""
    total = 0.0
    for (array,) in lists.check_lists("sum_of_squares", ("arrays", arrays, False, True)):
        with np.errstate(over="ignore"):  # an overflow is inf, as in the compiled kernel
            total += float(np.sum(np.square(array, dtype=np.float64)))
    return total


def scale_(arrays, factor):
    """``x *= factor`` for every array (None skipped), in place."""
    factor = lists.real_arg("scale_", "factor", factor)
    for (array,) in lists.check_lists("scale_", ("arrays", arrays, True, True)):
        array *= array.dtype.type(factor)


def clip_(arrays, lo, hi):
    """``x = min(max(x, lo), hi)`` for every array (None skipped), in place; NaN stays NaN."""
    lo, hi = lists.check_bounds("clip_", lo, hi)
    for (array,) in lists.check_lists("clip_", ("arrays", arrays, True, True)):
        t = array.dtype.type
        np.clip(array, t(lo), t(hi), out=array)


def ema_update(averages, params, decay):
    """``average = decay * average + (1 - decay) * param`` in place, computed as
    ``torch.lerp(average, param, 1 - decay)`` (torch.optim.swa_utils.get_ema_multi_avg_fn)."""
    decay = lists.check_decay("ema_update", decay)
    for average, param in lists.check_lists("ema_update", ("averages", averages, True, False),
                                            ("params", params, False, False)):
        average[...] = _lerp(average, param, average.dtype.type(1.0 - decay))
