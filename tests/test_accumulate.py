"""Mini-batch gradient accumulation: the ``accumulate`` and ``row_mean`` kernels of every
backend against the numpy reference, ``fd.accumulate`` / ``fd.row_mean``, and
``fd.GradientAccumulator`` (its mean is the full-batch gradient of a linear model computed by
hand). Bad input raises naming the argument and leaves every array as it was."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import backends

DTYPES = (np.float32, np.float64)
SHAPES = ((0,), (1,), (7,), (33,), (3, 5), ())
RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-15}




def _arrays(shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _copies(arrays):
    return [a.copy() for a in arrays]


def _assert_bits_equal(arrays, saved):
    for a, b in zip(arrays, saved):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------------------ the interface

# ---------------------------------------------------------------------- the accumulate kernel

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 0.5, -2.0, 0.0, 3])
def test_accumulate_kernel_matches_the_reference(backend, dtype, scale):
    accs = _arrays(SHAPES, dtype, 1)
    grads = _arrays(SHAPES, dtype, 2)
    expected = [a + dtype(scale) * g for a, g in zip(accs, grads)]
    backends.load(backend).accumulate(accs, tuple(grads), scale)
    for a, e in zip(accs, expected):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, e, rtol=RTOL[a.dtype], atol=1e-30)


def test_accumulate_kernel_mixed_dtypes_and_threads(backend, restore_threads):
    """Tensors of both dtypes in one call; large ones split across threads give the result of
    one thread."""
    shapes = [(300_001,), (5,), (70_000, 3)]
    accs = _arrays(shapes, np.float32, 3) + _arrays(shapes, np.float64, 4)
    grads = _arrays(shapes, np.float32, 5) + _arrays(shapes, np.float64, 6)
    results = []
    for threads in (1, 2):
        fd.set_num_threads(threads)
        work = _copies(accs)
        backends.load(backend).accumulate(work, grads, 0.25)
        results.append(work)
    for one, two, a, g in zip(*results, accs, grads):
        assert one.tobytes() == two.tobytes()
        np.testing.assert_allclose(one, a + a.dtype.type(0.25) * g, rtol=RTOL[a.dtype])


def _bad_accumulate_cases():
    f32 = np.float32
    good = lambda: ([np.zeros(3, f32), np.zeros((2, 2), f32)],  # noqa: E731
                    [np.ones(3, f32), np.ones((2, 2), f32)])
    cases = {}

    def case(name, exc, match, edit):
        cases[name] = (exc, match, edit)

    case("dtype", TypeError, r"grads\[1\] has dtype float64 but accs\[1\]",
         lambda a, g, s: (a, [g[0], g[1].astype(np.float64)], s))
    case("int dtype", TypeError, r"grads\[0\] must have dtype float32 or float64",
         lambda a, g, s: (a, [np.ones(3, np.int64), g[1]], s))
    case("shape", ValueError, r"grads\[1\] has shape \(4,\) but accs\[1\] has shape \(2, 2\)",
         lambda a, g, s: (a, [g[0], g[1].reshape(4)], s))
    case("strided", ValueError, r"grads\[0\] must be C-contiguous",
         lambda a, g, s: (a, [np.ones(6, f32)[::2], g[1]], s))
    case("read-only acc", ValueError, r"accs\[1\] must be writable",
         lambda a, g, s: ([a[0], _readonly(a[1])], g, s))
    case("length", ValueError, r"grads has 1 arrays but accs has 2",
         lambda a, g, s: (a, g[:1], s))
    case("not a list", TypeError, r"accs must be a list or tuple",
         lambda a, g, s: (a[0], g, s))
    case("not an array", TypeError, r"grads\[0\] must be a numpy.ndarray",
         lambda a, g, s: (a, [[1.0, 2.0, 3.0], g[1]], s))
    case("nan scale", ValueError, r"scale must be finite",
         lambda a, g, s: (a, g, float("nan")))
    case("inf scale", ValueError, r"scale must be finite",
         lambda a, g, s: (a, g, float("inf")))
    case("bool scale", TypeError, r"scale must be a real number",
         lambda a, g, s: (a, g, True))
    case("str scale", TypeError, r"scale must be a real number",
         lambda a, g, s: (a, g, "1"))
    case("grad is acc", ValueError, r"grads\[0\] shares memory with accs\[0\]",
         lambda a, g, s: (a, [a[0], g[1]], s))
    case("acc listed twice", ValueError, r"accs\[1\] shares memory with accs\[0\]",
         lambda a, g, s: ([a[0], a[0].reshape(3)], [g[0], g[0]], s))
    return good, cases


def _readonly(array):
    view = array.view()
    view.flags.writeable = False
    return view


_GOOD, _BAD = _bad_accumulate_cases()


@pytest.mark.parametrize("case", sorted(_BAD))
def test_accumulate_kernel_refuses_bad_input_before_writing(backend, case):
    exc, match, edit = _BAD[case]
    accs, grads = _GOOD()
    saved = _copies(accs)
    a, g, s = edit(accs, grads, 2.0)
    with pytest.raises(exc, match="accumulate: " + match):
        backends.load(backend).accumulate(a, g, s)
    _assert_bits_equal(accs, saved)


# ------------------------------------------------------------------------ the row_mean kernel

ROW_SHAPES = ((1, 0), (1, 1), (7, 33), (33, 7), (4,), (5, 3, 4), (2, 1, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=str)
def test_row_mean_kernel_matches_numpy_bit_for_bit(backend, dtype, shape):
    matrix = _arrays([shape], dtype, 7)[0]
    out = np.full(shape[1:], np.nan, dtype)
    backends.load(backend).row_mean(matrix, out)
    expected = matrix.mean(axis=0, dtype=np.float64).astype(dtype)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_mean_kernel_threads_split_columns_bit_identically(backend, dtype, restore_threads):
    matrix = _arrays([(40, 70_013)], dtype, 8)[0]
    results = []
    for threads in (1, 2):
        fd.set_num_threads(threads)
        out = np.empty(matrix.shape[1], dtype)
        backends.load(backend).row_mean(matrix, out)
        results.append(out)
    assert results[0].tobytes() == results[1].tobytes()
    np.testing.assert_array_equal(results[0],
                                  matrix.mean(axis=0, dtype=np.float64).astype(dtype))


def test_row_mean_float32_is_the_exact_mean_rounded_once(backend):
    """Summing 20,000 float32 rows in float32 drifts by many ulps; in float64 the mean is
    the exact one rounded once."""
    rng = np.random.default_rng(9)
    matrix = (rng.random((20_000, 16)) + 0.1).astype(np.float32)
    out = np.empty(16, np.float32)
    backends.load(backend).row_mean(matrix, out)
    exact = matrix.astype(np.float64).sum(axis=0) / 20_000
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(out - exact) <= 0.5 * ulp + 1e-300)
    naive = np.add.reduce(matrix, axis=0, dtype=np.float32) / np.float32(20_000)
    assert np.max(np.abs(naive - exact) / ulp) > 1  # what float32 accumulation would do


def _bad_row_mean_cases():
    m = lambda: np.ones((4, 3))  # noqa: E731
    return {
        "no rows": (ValueError, r"matrix has no rows", lambda: (np.ones((0, 3)), np.empty(3))),
        "0-d": (ValueError, r"matrix must have at least one dimension",
                lambda: (np.array(1.0), np.empty(()))),
        "out shape": (ValueError, r"out has shape \(4,\) but matrix has shape \(4, 3\)",
                      lambda: (m(), np.zeros(4))),
        "out dtype": (TypeError, r"out has dtype float32 but matrix has dtype float64",
                      lambda: (m(), np.zeros(3, np.float32))),
        "int matrix": (TypeError, r"matrix must have dtype float32 or float64",
                       lambda: (np.ones((4, 3), np.int32), np.zeros(3))),
        "strided matrix": (ValueError, r"matrix must be C-contiguous",
                           lambda: (np.ones((3, 4)).T, np.zeros(3))),
        "strided out": (ValueError, r"out must be C-contiguous",
                        lambda: (m(), np.zeros(6)[::2])),
        "read-only out": (ValueError, r"out must be writable",
                          lambda: (m(), _readonly(np.zeros(3)))),
        "out in matrix": (ValueError, r"out shares memory with matrix", None),
        "not an array": (TypeError, r"matrix must be a numpy.ndarray",
                         lambda: ([[1.0, 2.0]], np.zeros(2))),
    }


_BAD_ROW_MEAN = _bad_row_mean_cases()


@pytest.mark.parametrize("case", sorted(_BAD_ROW_MEAN))
def test_row_mean_kernel_refuses_bad_input_before_writing(backend, case):
    exc, match, make = _BAD_ROW_MEAN[case]
    if make is None:
        matrix = np.arange(12.0).reshape(4, 3)
        out = matrix[3]
    else:
        matrix, out = make()
    saved_out = out.copy() if isinstance(out, np.ndarray) else None
    saved_matrix = matrix.copy() if isinstance(matrix, np.ndarray) else None
    with pytest.raises(exc, match="row_mean: " + match):
        backends.load(backend).row_mean(matrix, out)
    assert out.tobytes() == saved_out.tobytes()
    if saved_matrix is not None:
        assert matrix.tobytes() == saved_matrix.tobytes()


# --------------------------------------------------------------------------------- the API

def test_fd_accumulate_single_arrays_and_lists(backend):
    acc = np.zeros(3, np.float32)
    fd.accumulate(acc, np.array([1, 2, 3], np.float32), 0.5, backend=backend)
    fd.accumulate(acc, np.ones(3, np.float32), backend=backend)  # scale defaults to 1
    np.testing.assert_array_equal(acc, [1.5, 2.0, 2.5])
    a, b = np.zeros(2), np.zeros((2, 2))
    fd.accumulate((a, b), [np.ones(2), np.full((2, 2), 2.0)], scale=-1, backend=backend)
    np.testing.assert_array_equal(a, -1.0)
    np.testing.assert_array_equal(b, -2.0)


@pytest.mark.parametrize("args, exc, match", [
    ((np.zeros(3), [np.ones(3)]), TypeError, r"grad must be a numpy.ndarray when acc is one"),
    ((np.zeros(3), np.ones(4)), ValueError, r"grad\[0\] has shape \(4,\) but acc\[0\]"),
    ((np.zeros(3), np.ones(3, np.float32)), TypeError, r"grad\[0\] has dtype float32"),
    (([np.zeros(3)], [np.ones(3), np.ones(3)]), ValueError, r"grad has 2 arrays but acc has 1"),
    ((np.zeros(3), np.ones(3), float("nan")), ValueError, r"scale must be finite"),
])
def test_fd_accumulate_names_the_callers_arguments(backend, args, exc, match):
    acc = args[0]
    saved = _copies(acc if isinstance(acc, list) else [acc])
    with pytest.raises(exc, match=match):
        fd.accumulate(*args, backend=backend)
    _assert_bits_equal(acc if isinstance(acc, list) else [acc], saved)


def test_fd_row_mean_returns_a_new_array_or_fills_out(backend):
    G = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    np.testing.assert_array_equal(fd.row_mean(G, backend=backend), [3.0, 5.0])
    out = np.empty(2, np.float32)
    assert fd.row_mean(G.astype(np.float32), out=out, backend=backend) is out
    np.testing.assert_array_equal(out, [3.0, 5.0])
    per_sample = np.arange(24.0).reshape(4, 2, 3)
    np.testing.assert_array_equal(fd.row_mean(per_sample, backend=backend),
                                  per_sample.mean(axis=0))


def test_fd_row_mean_errors_name_per_sample_grads(backend):
    with pytest.raises(TypeError, match="per_sample_grads must be a numpy.ndarray"):
        fd.row_mean([[1.0]], backend=backend)
    with pytest.raises(ValueError, match=r"row_mean: per_sample_grads has no rows"):
        fd.row_mean(np.ones((0, 2)), backend=backend)
    out = np.zeros(3)
    with pytest.raises(ValueError, match=r"out has shape \(3,\) but per_sample_grads"):
        fd.row_mean(np.ones((2, 2)), out=out, backend=backend)
    assert not out.any()


# ------------------------------------------------------------------------ GradientAccumulator

def _linear_problem(dtype, n=15, d=4, seed=11):
    """Squared loss of a linear model, 1/2 (x_i . w + b - y_i)^2 per sample: the gradient of
    sample i is (r_i x_i, r_i) with r_i = x_i . w + b - y_i."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    w = rng.standard_normal(d).astype(dtype)
    b = np.array(0.3, dtype)
    return X, y, w, b


def _per_sample(X, y, w, b):
    r = (X.astype(np.float64) @ w + b - y).astype(X.dtype)
    return r[:, None] * X, r.copy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", ["add", "add_per_sample", "mixed"])
def test_accumulator_mean_is_the_full_batch_gradient(backend, dtype, path):
    X, y, w, b = _linear_problem(dtype)
    # The full-batch gradient, by hand: (X^T r / n, mean(r)).
    r = X.astype(np.float64) @ w.astype(np.float64) + float(b) - y.astype(np.float64)
    full = [X.astype(np.float64).T @ r / len(y), np.array(r.mean())]
    acc = fd.GradientAccumulator([w, b], backend=backend)
    start = 0
    for k, size in enumerate((5, 3, 7)):  # micro-batches of uneven sizes
        rows = slice(start, start + size)
        gw, gb = _per_sample(X[rows], y[rows], w, b)
        if path == "add" or (path == "mixed" and k % 2 == 0):
            acc.add([gw.mean(axis=0, dtype=np.float64).astype(dtype),
                     np.array(gb.mean(dtype=np.float64), dtype)], weight=size)
        else:
            acc.add_per_sample([gw, gb])
        start += size
    assert acc.samples == 15
    mean = acc.mean()
    assert [m.dtype for m in mean] == [np.dtype(dtype)] * 2
    assert [m.shape for m in mean] == [w.shape, b.shape]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for m, f in zip(mean, full):
        np.testing.assert_allclose(m, f, rtol=rtol, atol=rtol)
    # ... and it is ready for a step: the same step as with the full-batch gradient.
    w1, b1 = w.copy(), b.copy()
    fd.SGD([w1, b1], lr=0.1, backend=backend).step(mean)
    w2, b2 = w.copy(), b.copy()
    fd.SGD([w2, b2], lr=0.1, backend=backend).step([f.astype(dtype) for f in full])
    np.testing.assert_allclose(w1, w2, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(b1, b2, rtol=rtol, atol=rtol)


def test_accumulator_counts_resets_and_fills_out(backend):
    acc = fd.GradientAccumulator([(2,), 3], dtype=np.float32, backend=backend)
    assert len(acc) == 2 and acc.shapes == [(2,), (3,)]
    assert acc.dtypes == [np.dtype(np.float32)] * 2
    assert acc.samples == 0
    acc.add([np.ones(2, np.float32), np.full(3, 2, np.float32)])
    acc.add([np.full(2, 3, np.float32), np.zeros(3, np.float32)], weight=0.5)
    assert acc.samples == 1.5
    acc.add([np.zeros(2, np.float32), np.zeros(3, np.float32)], weight=np.int64(2))
    acc.add([np.zeros(2, np.float32), np.zeros(3, np.float32)], weight=np.float32(0.5))
    assert acc.samples == 4.0 and type(acc.samples) is float
    acc.add([np.zeros(2, np.float32), np.zeros(3, np.float32)], weight=np.array(-0.0))
    assert acc.samples == 4.0 and type(acc.samples) is float
    out = [np.empty(2, np.float32), np.empty(3, np.float32)]
    result = acc.mean(out=out)
    assert result[0] is out[0] and result[1] is out[1]
    np.testing.assert_allclose(out[0], 2.5 / 4, rtol=1e-6)
    np.testing.assert_allclose(out[1], 2 / 4, rtol=1e-6)
    assert acc.mean()[0] is not acc.sums[0]  # new arrays, the sums are untouched
    with pytest.raises(ValueError):
        acc.sums[0][0] = 1.0  # read-only views
    acc.reset()
    assert acc.samples == 0 and not acc.sums[0].any()
    with pytest.raises(ValueError, match="nothing was added"):
        acc.mean()


def test_accumulator_from_one_array_takes_bare_arrays(backend):
    acc = fd.GradientAccumulator(np.zeros((2, 2)), backend=backend)
    acc.add(np.ones((2, 2)), weight=2)
    acc.add_per_sample(np.full((2, 2, 2), 4.0))
    np.testing.assert_array_equal(acc.mean()[0], 2.5)


def _accumulator_with_history(backend):
    acc = fd.GradientAccumulator([np.zeros(3, np.float32), np.zeros((2, 2))], backend=backend)
    acc.add([np.ones(3, np.float32), np.ones((2, 2))], weight=2)
    return acc


@pytest.mark.parametrize("call, exc, match", [
    (lambda a: a.add([np.ones(3, np.float32)]), ValueError, r"grads has 1 arrays but the "
                                                             r"accumulator has 2 tensors"),
    (lambda a: a.add([np.ones(3), np.ones((2, 2))]), TypeError,
     r"grads\[0\] has dtype float64 but tensor 0 of the accumulator has dtype float32"),
    (lambda a: a.add([np.ones(3, np.float32), np.ones(4)]), ValueError,
     r"grads\[1\] has shape \(4,\) but tensor 1 of the accumulator has shape \(2, 2\)"),
    (lambda a: a.add([np.ones(3, np.float32), np.ones((2, 2))], weight=-1), ValueError,
     r"weight must be >= 0"),
    (lambda a: a.add([np.ones(3, np.float32), np.ones((2, 2))], weight=float("nan")),
     ValueError, r"weight must be finite"),
    (lambda a: a.add(np.ones(3, np.float32)), TypeError, r"a bare array is accepted only"),
    (lambda a: a.add_per_sample([np.ones((2, 3), np.float32), np.ones((3, 2, 2))]), ValueError,
     r"per_sample_grads\[1\] has 3 rows but per_sample_grads\[0\] has 2"),
    (lambda a: a.add_per_sample([np.ones((2, 4), np.float32), np.ones((2, 2, 2))]), ValueError,
     r"per_sample_grads\[0\] has rows of shape \(4,\) but tensor 0"),
    (lambda a: a.add_per_sample([np.ones(3, np.float32), np.ones((2, 2))]), ValueError,
     r"per_sample_grads\[0\] has rows of shape \(\) but tensor 0 of the accumulator has "
     r"shape \(3,\)"),
    (lambda a: a.add_per_sample([np.ones((0, 3), np.float32), np.ones((0, 2, 2))]), ValueError,
     r"no rows"),
    (lambda a: a.add_per_sample([np.ones((2, 3), np.float32), np.ones((2, 2, 2), np.float32)]),
     TypeError, r"per_sample_grads\[1\] has dtype float32 but tensor 1"),
    (lambda a: a.mean(out=[np.empty(3, np.float32), np.empty(4)]), ValueError, r"out\[1\]"),
])
def test_accumulator_refuses_mismatches_and_changes_nothing(backend, call, exc, match):
    acc = _accumulator_with_history(backend)
    saved = _copies(acc.sums)
    with pytest.raises(exc, match=match):
        call(acc)
    _assert_bits_equal(acc.sums, saved)
    assert acc.samples == 2


@pytest.mark.parametrize("like, dtype, exc", [
    ([np.zeros(2, np.int64)], None, TypeError),
    ([(2, -1)], None, TypeError),
    (["abc"], None, TypeError),
    ([(2,)], np.int32, TypeError),
    (3.5, None, TypeError),
])
def test_accumulator_refuses_bad_descriptions(like, dtype, exc):
    with pytest.raises(exc):
        fd.GradientAccumulator(like, dtype=dtype)


def test_accumulator_dtype_overrides_arrays():
    acc = fd.GradientAccumulator([np.zeros(2)], dtype=np.float32)
    assert acc.dtypes == [np.dtype(np.float32)]


# ------------------------------------------------------------------------------- docstrings

@pytest.mark.parametrize("name", ["accumulate", "row_mean", "GradientAccumulator"])
def test_every_public_name_has_an_example(name):
    examples = doctest.DocTestParser().get_examples(getattr(fd, name).__doc__)
    assert any(e.want.strip() for e in examples) or len(examples) > 2
