"""Gradient transformations: the ``sum_of_squares``, ``scale_``, ``clip_`` and ``ema_update``
kernels of every backend against the numpy reference; ``fd.clip_by_global_norm`` /
``fd.clip_by_value`` against torch.nn.utils; skipping non-finite steps (params and state
left bit-identical); ``fd.EMA`` against torch.optim.swa_utils.AveragedModel; ``fd.chain``."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import backends

from conftest import assert_unchanged, snapshot

import torch  # noqa: E402  (the oracle: a test dependency, never skipped)

DTYPES = (np.float32, np.float64)
SHAPES = ((0,), (1,), (7,), (33,), (3, 5), ())
RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}




def _arrays(shapes, dtype, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [np.asarray(scale * rng.standard_normal(s)).astype(dtype) for s in shapes]


def _copies(arrays):
    return [a.copy() for a in arrays]


def _assert_bits_equal(arrays, saved):
    for a, b in zip(arrays, saved):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _readonly(array):
    view = array.view()
    view.flags.writeable = False
    return view


# ------------------------------------------------------------------------------ the kernels

@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_of_squares_kernel(backend, dtype):
    arrays = _arrays(SHAPES, dtype, 1)
    expected = sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays)
    kernel = backends.load(backend).sum_of_squares
    assert kernel(arrays) == pytest.approx(expected, rel=1e-13)
    assert kernel(arrays + [None]) == pytest.approx(expected, rel=1e-13)  # None: skipped
    assert kernel([]) == 0.0 and kernel([None]) == 0.0
    assert isinstance(kernel(tuple(arrays)), float)


def test_sum_of_squares_kernel_float32_accumulates_in_double(backend):
    x = np.full(1_000_003, 0.1, np.float32)
    exact = 1_000_003 * float(np.float32(0.1)) ** 2
    # A sum in float32 would be off by about 1% here; in double, by far less than 1e-9
    # (sequential partial sums, one per vector lane and thread).
    assert backends.load(backend).sum_of_squares([x]) == pytest.approx(exact, rel=1e-9)


def test_sum_of_squares_kernel_threads(backend, restore_threads):
    arrays = _arrays([(400_000,), (3,), (100_000, 2)], np.float64, 2) + \
        _arrays([(250_000,)], np.float32, 3)
    expected = sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays)
    for threads in (1, 2):
        fd.set_num_threads(threads)
        first = backends.load(backend).sum_of_squares(arrays)
        assert first == pytest.approx(expected, rel=1e-12)
        assert backends.load(backend).sum_of_squares(arrays) == first  # deterministic


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factor", [0.5, -3.0, 0.0, 1e-3])
def test_scale_kernel(backend, dtype, factor):
    arrays = _arrays(SHAPES, dtype, 4)
    expected = [a * dtype(factor) for a in arrays]
    backends.load(backend).scale_(arrays + [None], factor)
    for a, e in zip(arrays, expected):
        np.testing.assert_array_equal(a, e)  # one multiplication: exact agreement


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lo, hi", [(-0.5, 0.5), (0.0, 0.0), (-math.inf, 0.1), (-1.0, math.inf),
                                    (0.3, 0.30000001)])
def test_clip_kernel(backend, dtype, lo, hi):
    arrays = _arrays(SHAPES, dtype, 5)
    arrays[3][:3] = [np.nan, np.inf, -np.inf]
    expected = [np.clip(a, dtype(lo), dtype(hi)) for a in arrays]
    backends.load(backend).clip_([None] + arrays, lo, hi)
    for a, e in zip(arrays, expected):
        np.testing.assert_array_equal(a, e)  # NaN stays NaN (assert_array_equal: NaN == NaN)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decay", [0.999, 0.9, 0.5, 0.25, 0.0, 1.0])
def test_ema_kernel(backend, dtype, decay):
    averages = _arrays(SHAPES, dtype, 6)
    params = _arrays(SHAPES, dtype, 7)
    expected = [decay * a.astype(np.float64) + (1 - decay) * p.astype(np.float64)
                for a, p in zip(averages, params)]
    saved_params = _copies(params)
    backends.load(backend).ema_update(averages, params, decay)
    for a, e in zip(averages, expected):
        np.testing.assert_allclose(a, e, rtol=4 * RTOL[a.dtype], atol=4 * RTOL[a.dtype])
    _assert_bits_equal(params, saved_params)


def test_elementwise_kernels_agree_across_threads(backend, restore_threads):
    base = _arrays([(300_000,), (5,)], np.float32, 8) + _arrays([(200_000,)], np.float64, 9)
    other = _arrays([(300_000,), (5,)], np.float32, 10) + _arrays([(200_000,)], np.float64, 11)
    results = []
    for threads in (1, 2):
        fd.set_num_threads(threads)
        be = backends.load(backend)
        a, b, c = _copies(base), _copies(base), _copies(base)
        be.scale_(a, 0.3)
        be.clip_(b, -0.5, 0.7)
        be.ema_update(c, other, 0.9)
        results.append(a + b + c)
    for x, y in zip(*results):
        assert x.tobytes() == y.tobytes()


_LIST_KERNELS = {
    "sum_of_squares": lambda be, arrays: be.sum_of_squares(arrays),
    "scale_": lambda be, arrays: be.scale_(arrays, 2.0),
    "clip_": lambda be, arrays: be.clip_(arrays, -0.1, 0.1),
}


@pytest.mark.parametrize("kernel", sorted(_LIST_KERNELS))
@pytest.mark.parametrize("bad, exc, match", [
    (lambda a: [a[0], a[1].astype(np.int32)], TypeError,
     r"arrays\[1\] must have dtype float32 or float64"),
    (lambda a: [a[0], np.ones(8)[::2]], ValueError, r"arrays\[1\] must be C-contiguous"),
    (lambda a: [a[0], "x"], TypeError, r"arrays\[1\] must be a numpy.ndarray, got str"),
    (lambda a: a[0], TypeError, r"arrays must be a list or tuple of arrays, got ndarray"),
    (lambda a: [a[0], np.ones(3, np.dtype(">f8"))], TypeError,
     r"arrays\[1\] must have dtype float32 or float64 in native byte order, got >f8"),
])
def test_list_kernels_refuse_bad_input_before_writing(backend, kernel, bad, exc, match):
    arrays = _arrays([(4,), (4,)], np.float64, 12)
    saved = _copies(arrays)
    with pytest.raises(exc, match=f"{kernel}: {match}"):
        _LIST_KERNELS[kernel](backends.load(backend), bad(arrays))
    _assert_bits_equal(arrays, saved)


@pytest.mark.parametrize("kernel", ["scale_", "clip_"])
def test_writing_kernels_refuse_read_only_and_repeated_arrays(backend, kernel):
    arrays = _arrays([(4,), (4,)], np.float64, 13)
    saved = _copies(arrays)
    be = backends.load(backend)
    with pytest.raises(ValueError, match=rf"{kernel}: arrays\[1\] must be writable"):
        _LIST_KERNELS[kernel](be, [arrays[0], _readonly(arrays[1])])
    with pytest.raises(ValueError, match=rf"{kernel}: arrays\[2\] shares memory with arrays\[0\]"):
        _LIST_KERNELS[kernel](be, [arrays[0], arrays[1], arrays[0][1:]])
    _assert_bits_equal(arrays, saved)
    be.sum_of_squares([arrays[0], arrays[0], _readonly(arrays[1])])  # reading: both fine


@pytest.mark.parametrize("args, exc, match", [
    (("scale_", [np.ones(2)], float("nan")), ValueError, r"scale_: factor must be finite"),
    (("scale_", [np.ones(2)], "2"), TypeError, r"scale_: factor must be a real number"),
    (("clip_", [np.ones(2)], 1.0, -1.0), ValueError, r"clip_: lo must not exceed hi"),
    (("clip_", [np.ones(2)], float("nan"), 1.0), ValueError, r"clip_: lo must be a number"),
    (("clip_", [np.ones(2)], 0.0, None), TypeError, r"clip_: hi must be a real number"),
    (("ema_update", [np.ones(2)], [np.ones(2)], 1.5), ValueError,
     r"ema_update: decay must be in \[0, 1\]"),
    (("ema_update", [np.ones(2)], [np.ones(2)], True), TypeError,
     r"ema_update: decay must be a real number"),
    (("ema_update", [np.ones(2)], [np.ones(3)], 0.5), ValueError,
     r"ema_update: params\[0\] has shape \(3,\) but averages\[0\] has shape \(2,\)"),
    (("ema_update", [np.ones(2)], [np.ones(2, np.float32)], 0.5), TypeError,
     r"ema_update: params\[0\] has dtype float32 but averages\[0\] has dtype float64"),
    (("ema_update", [np.ones(2)], [], 0.5), ValueError,
     r"ema_update: params has 0 arrays but averages has 1"),
    (("ema_update", [_readonly(np.ones(2))], [np.ones(2)], 0.5), ValueError,
     r"ema_update: averages\[0\] must be writable"),
])
def test_kernel_number_and_pairing_checks(backend, args, exc, match):
    name, first, *rest = args
    saved = _copies(first)
    with pytest.raises(exc, match=match):
        getattr(backends.load(backend), name)(first, *rest)
    _assert_bits_equal(first, saved)


def test_ema_kernel_refuses_an_average_overlapping_its_param(backend):
    buffer = np.arange(6.0)
    with pytest.raises(ValueError, match=r"params\[0\] shares memory with averages\[0\]"):
        backends.load(backend).ema_update([buffer[:3]], [buffer[1:4]], 0.5)
    np.testing.assert_array_equal(buffer, np.arange(6.0))


# ------------------------------------------------------------------ clipping, against torch

def _torch_params(grads):
    params = []
    for g in grads:
        p = torch.zeros(g.shape, dtype=torch.float32 if g.dtype == np.float32 else torch.float64,
                        requires_grad=True)
        p.grad = torch.from_numpy(g.copy())
        params.append(p)
    return params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm", [0.0, 0.1, 1.0, 5.0, 1e6, math.inf])
def test_clip_by_global_norm_matches_torch(backend, dtype, max_norm):
    grads = _arrays(SHAPES, dtype, 14, scale=0.7)
    params = _torch_params(grads)
    expected_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    norm = fd.clip_by_global_norm(grads, max_norm, backend=backend)
    assert isinstance(norm, float)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert norm == pytest.approx(float(expected_norm), rel=rtol)
    for g, p in zip(grads, params):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=rtol, atol=1e-30)


def test_clip_by_global_norm_of_zero_gradients_changes_nothing(backend):
    grads = [np.zeros(3), np.zeros((2, 2), np.float32), np.zeros(0)]
    assert fd.clip_by_global_norm(grads, 1.0, backend=backend) == 0.0
    assert all(not g.any() for g in grads)
    assert fd.clip_by_global_norm(grads, 0.0, backend=backend) == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_clip_by_global_norm_leaves_nonfinite_gradients_unchanged(backend, bad):
    grads = _arrays([(7,), (33,)], np.float32, 15)
    grads[1][5] = bad
    saved = _copies(grads)
    norm = fd.clip_by_global_norm(grads, 0.1, backend=backend)
    assert (math.isnan(norm) if np.isnan(bad) else norm == math.inf)
    _assert_bits_equal(grads, saved)
    with pytest.raises(ValueError, match="error_if_nonfinite=True"):
        fd.clip_by_global_norm(grads, 0.1, error_if_nonfinite=True, backend=backend)
    _assert_bits_equal(grads, saved)


def test_global_norm_survives_an_overflowing_sum_of_squares(backend):
    grads = [np.array([3e200, 0.0]), np.array([4e200])]
    assert fd.global_norm(grads, backend=backend) == pytest.approx(5e200, rel=1e-14)
    norm = fd.clip_by_global_norm(grads, 1.0, backend=backend)
    assert norm == pytest.approx(5e200, rel=1e-14)
    assert fd.global_norm(grads, backend=backend) == pytest.approx(1.0, rel=1e-6)


def test_global_norm(backend):
    assert fd.global_norm(np.array([3.0, 4.0]), backend=backend) == 5.0
    assert fd.global_norm([np.array([3.0], np.float32), None, np.array([[4.0]])],
                          backend=backend) == 5.0
    assert fd.global_norm([], backend=backend) == 0.0


@pytest.mark.parametrize("call, exc, match", [
    (lambda g, b: fd.clip_by_global_norm(g, -1.0, backend=b), ValueError,
     r"max_norm must be >= 0"),
    (lambda g, b: fd.clip_by_global_norm(g, float("nan"), backend=b), ValueError,
     r"max_norm must be a number"),
    (lambda g, b: fd.clip_by_global_norm(g, 1.0, error_if_nonfinite=1, backend=b), TypeError,
     r"error_if_nonfinite must be True or False"),
    (lambda g, b: fd.clip_by_global_norm([g[0], g[1].astype(np.int64)], 0.1, backend=b),
     TypeError, r"clip_by_global_norm: grads\[1\] must have dtype float32 or float64"),
    (lambda g, b: fd.clip_by_global_norm([g[0], _readonly(g[1])], 0.1, backend=b),
     ValueError, r"clip_by_global_norm: grads\[1\] must be writable"),
    (lambda g, b: fd.clip_by_global_norm([g[0], g[0]], 0.1, backend=b),
     ValueError, r"clip_by_global_norm: grads\[1\] shares memory with grads\[0\]"),
    (lambda g, b: fd.clip_by_global_norm(3.0, 0.1, backend=b),
     TypeError, r"grads must be an array or a list of arrays"),
    (lambda g, b: fd.clip_by_value([g[0], np.ones(4)[::2]], -1, 1, backend=b),
     ValueError, r"clip_by_value: grads\[1\] must be C-contiguous"),
    (lambda g, b: fd.clip_by_value(g, 1, -1, backend=b), ValueError,
     r"clip_by_value: lo must not exceed hi"),
])
def test_clipping_refuses_bad_input_and_changes_nothing(backend, call, exc, match):
    grads = _arrays([(5,), (2,)], np.float64, 16, scale=10.0)
    saved = _copies(grads)
    with pytest.raises(exc, match=match):
        call(grads, backend)
    _assert_bits_equal(grads, saved)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip_value", [0.0, 0.1, 1.0, 10.0])
def test_clip_by_value_matches_torch(backend, dtype, clip_value):
    grads = _arrays(SHAPES, dtype, 17)
    params = _torch_params(grads)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    assert fd.clip_by_value(grads, -clip_value, clip_value, backend=backend) is None
    for g, p in zip(grads, params):
        np.testing.assert_array_equal(g, p.grad.numpy())


# ------------------------------------------------------------------ skipping non-finite steps

def _trained_adam(backend, dtype):
    params = _arrays([(7,), (3, 5), ()], dtype, 18)
    opt = fd.Adam(params, lr=0.01, amsgrad=True, backend=backend)
    opt.step(_arrays([(7,), (3, 5), ()], dtype, 19))  # state exists before the NaN step
    return opt


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_skip_nonfinite_leaves_params_and_state_bit_identical(backend, dtype, bad):
    opt = _trained_adam(backend, dtype)
    wrapped = fd.skip_nonfinite(opt)
    before = snapshot(opt)
    grads = _arrays([(7,), (3, 5), ()], dtype, 20)
    grads[1][2, 3] = bad
    assert wrapped.step(grads) is False
    assert wrapped.skipped == 1 and wrapped.steps == 0
    assert_unchanged(opt, before)
    grads[1][2, 3] = 0.0
    assert wrapped.step(grads) is True
    assert wrapped.skipped == 1 and wrapped.steps == 1 and opt.step_count == 2
    # The wrapper is the optimizer for everything else.
    assert wrapped.param_groups is opt.param_groups
    assert wrapped.state_dict()["step_count"] == 2


def test_skip_nonfinite_counts_and_accepts_none_grads(backend):
    w, v = np.zeros(3), np.zeros(2)
    skip = fd.SkipNonFinite(backend=backend)
    opt = fd.chain(fd.SGD([w, v], lr=1.0, backend=backend), skip)
    assert opt.step([np.ones(3), None]) is True
    for _ in range(3):
        assert opt.step([None, np.array([np.nan, 0.0])]) is False
    assert skip.skipped == 3 and opt.skipped == 3 and opt.steps == 1
    np.testing.assert_array_equal(w, -1.0)
    np.testing.assert_array_equal(v, 0.0)


def test_skip_nonfinite_lets_the_optimizer_report_bad_grads(backend):
    opt = fd.skip_nonfinite(fd.SGD([np.zeros(3)], lr=1.0, backend=backend))
    with pytest.raises(TypeError, match=r"grads\[0\]"):
        opt.step([np.ones(3, np.int64)])
    with pytest.raises(ValueError, match=r"grads\[0\]"):
        opt.step([np.ones(4)])
    assert opt.skipped == 0


# -------------------------------------------------------------------------- EMA, against torch

def _torch_averaged(params, decay, multi):
    swa = torch.optim.swa_utils
    module = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(p.copy()))
                                     for p in params])
    if multi:
        averaged = swa.AveragedModel(module, multi_avg_fn=swa.get_ema_multi_avg_fn(decay))
    else:
        averaged = swa.AveragedModel(module, avg_fn=swa.get_ema_avg_fn(decay))
    averaged.update_parameters(module)  # torch's first update copies the params
    return module, averaged


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decay", [0.999, 0.9, 0.3])
@pytest.mark.parametrize("multi", [True, False], ids=["multi_avg_fn", "avg_fn"])
def test_ema_matches_torch_averaged_model(backend, dtype, decay, multi):
    params = _arrays([(7,), (3, 5), (), (33,)], dtype, 21)
    module, averaged = _torch_averaged(params, decay, multi)
    ema = fd.EMA(params, decay=decay, backend=backend)
    rng = np.random.default_rng(22)
    for _ in range(25):
        for p, tp in zip(params, module):
            p += (0.1 * rng.standard_normal(p.shape)).astype(dtype)
            with torch.no_grad():
                tp.copy_(torch.from_numpy(p))
        ema.update()
        averaged.update_parameters(module)
    assert ema.updates == 25
    # get_ema_multi_avg_fn is the same formula (torch.lerp); get_ema_avg_fn rounds differently.
    rtol = (1e-6 if multi else 1e-5) if dtype == np.float32 else (1e-14 if multi else 1e-12)
    for a, tp in zip(ema.averages, averaged.module):
        np.testing.assert_allclose(a, tp.detach().numpy(), rtol=rtol, atol=rtol)


def test_ema_copy_to_swap_and_state_dict(backend):
    w = np.zeros(3)
    b = np.ones((), np.float32)
    opt = fd.SGD([w, b], lr=1.0, backend=backend)
    ema = fd.EMA(opt, decay=0.5, backend=backend)  # an optimizer: its params
    assert ema.params[0] is w and ema.params[1] is b
    opt.step([np.full(3, -4.0), np.array(-2.0, np.float32)])
    ema.update()
    np.testing.assert_array_equal(ema.averages[0], 2.0)
    assert float(ema.averages[1]) == 2.0
    state = ema.state_dict()
    assert state["decay"] == 0.5 and state["updates"] == 1
    ema.swap()
    np.testing.assert_array_equal(w, 2.0)
    np.testing.assert_array_equal(ema.averages[0], 4.0)
    ema.swap()
    np.testing.assert_array_equal(w, 4.0)
    other = [np.empty(3), np.empty((), np.float32)]
    ema.copy_to(other)
    np.testing.assert_array_equal(other[0], 2.0)
    ema.update()
    ema.load_state_dict(state)
    np.testing.assert_array_equal(ema.averages[0], 2.0)
    assert ema.updates == 1
    state["averages"][0][:] = 7.0  # a state dict holds copies
    np.testing.assert_array_equal(ema.averages[0], 2.0)
    ema.copy_to()
    np.testing.assert_array_equal(w, 2.0)


@pytest.mark.parametrize("call, exc", [
    (lambda e: e.load_state_dict({"decay": 2.0, "updates": 0, "averages": e.averages}),
     ValueError),
    (lambda e: e.load_state_dict({"decay": 0.5, "updates": -1, "averages": e.averages}),
     ValueError),
    (lambda e: e.load_state_dict({"decay": 0.5, "updates": 1, "averages": [np.zeros(2)]}),
     ValueError),
    (lambda e: e.load_state_dict({"decay": 0.5, "updates": 1,
                                  "averages": [np.zeros(4), np.zeros(2, np.float32)]}),
     ValueError),
    (lambda e: e.load_state_dict({"decay": 0.5}), ValueError),
    (lambda e: e.load_state_dict([]), TypeError),
    (lambda e: e.copy_to([np.zeros(3, np.float32), np.zeros(2, np.float32)]), TypeError),
    (lambda e: e.copy_to([np.zeros(3)]), ValueError),
    (lambda e: e.copy_to([np.zeros(3), _readonly(np.zeros(2, np.float32))]), ValueError),
])
def test_ema_refuses_bad_input_and_changes_nothing(backend, call, exc):
    params = [np.arange(3.0), np.arange(2, dtype=np.float32)]
    ema = fd.EMA(params, 0.5, backend=backend)
    params[0][:] = 10
    ema.update()
    saved = _copies(ema.averages)
    with pytest.raises(exc):
        call(ema)
    _assert_bits_equal(ema.averages, saved)
    assert ema.updates == 1 and ema.decay == 0.5


@pytest.mark.parametrize("params, decay, exc", [
    ([np.zeros(2)], 1.5, ValueError),
    ([np.zeros(2)], -0.1, ValueError),
    ([np.zeros(2)], "0.9", TypeError),
    ([np.zeros(2, np.int32)], 0.9, TypeError),
    ([np.zeros(4)[::2]], 0.9, ValueError),
    (5, 0.9, TypeError),
])
def test_ema_refuses_bad_construction(params, decay, exc):
    with pytest.raises(exc):
        fd.EMA(params, decay)


# ------------------------------------------------------------------------------------ chain

def test_chain_runs_transforms_in_order_then_the_step_then_after_hooks(backend):
    w = np.zeros(2)
    calls = []

    class Record:
        def before_step(self, grads):
            calls.append(("before", grads[0].copy()))

        def after_step(self):
            calls.append(("after", w.copy()))

    clip = fd.ClipByGlobalNorm(1.0, backend=backend)
    ema = fd.EMA([w], decay=0.5, backend=backend)
    opt = fd.chain(fd.SGD([w], lr=1.0, backend=backend), fd.ClipByValue(-3, 3, backend=backend),
                   clip, Record(), ema)
    assert opt.step([np.array([-6.0, 8.0])]) is True
    # clip by value: (-3, 3), norm sqrt(18); then by norm to 1.
    assert clip.last_norm == pytest.approx(math.sqrt(18))
    np.testing.assert_allclose(calls[0][1], np.array([-3.0, 3.0]) / math.sqrt(18), rtol=1e-6)
    np.testing.assert_allclose(w, -calls[0][1])
    np.testing.assert_array_equal(calls[1][1], w)  # after the step
    np.testing.assert_allclose(ema.averages[0], w / 2)
    assert "ClipByValue" in repr(opt)


def test_chain_clip_by_global_norm_skips_nonfinite_unless_told_not_to(backend):
    w = np.zeros(2)
    opt = fd.chain(fd.SGD([w], lr=1.0, backend=backend), fd.ClipByGlobalNorm(1.0))
    assert opt.step([np.array([np.inf, 1.0])]) is False and opt.skipped == 1
    np.testing.assert_array_equal(w, 0.0)
    lenient = fd.chain(fd.SGD([w], lr=1.0, backend=backend),
                       fd.ClipByGlobalNorm(1.0, skip_nonfinite=False))
    assert lenient.step([np.array([np.inf, 1.0])]) is True
    assert w[0] == -np.inf


def test_chain_passes_step_options_and_refuses_non_transforms(backend):
    opt = fd.chain(fd.SGD([np.zeros(2)], lr=1.0, backend=backend))
    with pytest.raises(ValueError, match="check_finite"):
        opt.step([np.array([np.nan, 0.0])], check_finite=True)
    with pytest.raises(TypeError, match=r"transforms\[0\]"):
        fd.chain(fd.SGD([np.zeros(2)]), object())
    with pytest.raises(TypeError, match="step"):
        fd.chain(object())


def test_chain_accepts_a_bare_array_for_one_param(backend):
    w = np.zeros(2)
    opt = fd.skip_nonfinite(fd.SGD([w], lr=1.0, backend=backend))
    assert opt.step(np.ones(2)) is True
    np.testing.assert_array_equal(w, -1.0)


# ------------------------------------------------------------------------------- docstrings

@pytest.mark.parametrize("name", ["global_norm", "clip_by_global_norm", "clip_by_value",
                                  "ClipByGlobalNorm", "ClipByValue", "SkipNonFinite",
                                  "skip_nonfinite", "EMA", "chain"])
def test_every_public_name_has_an_example(name):
    examples = doctest.DocTestParser().get_examples(getattr(fd, name).__doc__)
    assert any(e.want.strip() for e in examples)
