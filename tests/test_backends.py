"""Backends: one kernel interface in every backend, the numba kernels against the numpy
reference, and the choice of the default backend (cpp -> numba -> numpy) with its warning.

The tests of the fallback run fastdescent in a subprocess whose import system hides the
compiled extension (and numba), as on a machine where the build or the install failed.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastdescent as fd
from fastdescent import backends

KERNELS = ("sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "first_nonfinite",
           "simd_level", "get_num_threads", "set_num_threads",
           "accumulate", "row_mean", "sum_of_squares", "scale_", "clip_", "ema_update")
RTOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-9}


# ------------------------------------------------------------------------ the interface

def _argument_names(function):
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # a pybind11 function: its docstring holds the signature
        head = function.__doc__.splitlines()[0]
        inside = head[head.index("(") + 1:head.rindex(")")]
        return [part.split(":")[0].strip() for part in inside.split(", ") if part]


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_backend_has_the_kernel_with_the_same_arguments(kernel):
    reference = _argument_names(getattr(backends.load("numpy"), kernel))
    for name in backends.NAMES:
        module = backends.load(name)
        assert module.NAME == name
        assert _argument_names(getattr(module, kernel)) == reference, (name, kernel)


def test_preference_is_cpp_numba_numpy():
    assert backends.NAMES == ("cpp", "numba", "numpy")
    assert backends.available() == ["cpp", "numba", "numpy"]


# ------------------------------------------------- numba kernels against the numpy reference

def _case_arrays(dtype, shapes, columns, seed):
    rng = np.random.default_rng(seed)
    # State arrays start positive (sums of squares), square_avg (column 2) above 1 and
    # grad_avg (column 3) small, so that RMSprop's centered variance stays positive.
    scale = {2: (1.0, 1.0), 3: (0.1, 0.0), 4: (1.0, 0.0)}
    result = []
    for c in range(columns):
        column = []
        for s in shapes:
            a = np.asarray(rng.standard_normal(s))
            if c in scale:
                a = np.asarray(np.abs(a) * scale[c][0] + scale[c][1])
            column.append(a.astype(dtype))
        result.append(column)
    return result


# (kernel, number of array columns, optional columns (None when off), arguments for step s)
CALLS = {
    "sgd": ("sgd_step", 3, lambda s: (0.05, 0.9, 0.1, 0.01, False, True, s == 1)),
    "sgd_nesterov": ("sgd_step", 3, lambda s: (0.05, 0.9, 0.0, 0.0, True, False, s == 1)),
    "sgd_plain": ("sgd_step", 3, lambda s: (0.05, 0.0, 0.0, 0.0, False, False, False)),
    "adagrad": ("adagrad_step", 3, lambda s: (0.05, 0.01, 0.01, 1e-10, True, s)),
    "rmsprop": ("rmsprop_step", 5, lambda s: (0.01, 0.99, 1e-8, 0.0, 0.0, False, False)),
    "rmsprop_all": ("rmsprop_step", 5, lambda s: (0.01, 0.3, 1e-8, 0.01, 0.9, True, True)),
    "adam": ("adam_step", 5, lambda s: (0.01, 0.9, 0.999, 1e-8, 0.0, False, False, False, s)),
    "adam_l2_amsgrad": ("adam_step", 5,
                        lambda s: (0.01, 0.3, 0.99, 1e-8, 0.1, False, True, True, s)),
    "adamw_amsgrad": ("adam_step", 5,
                      lambda s: (0.01, 0.9, 0.999, 1e-8, 0.1, True, True, False, s)),
}


def _off_columns(case, args):
    """Columns the kernel must not touch for these arguments: they are passed as None."""
    kernel = CALLS[case][0]
    if kernel == "sgd_step":
        return {2} if args[1] == 0 else set()
    if kernel == "rmsprop_step":
        return ({3} if not args[5] else set()) | ({4} if not args[4] > 0 else set())
    if kernel == "adam_step":
        return {4} if not args[6] else set()
    return set()


def _run_kernel(module, case, arrays, steps=3):
    kernel, _, args = CALLS[case]
    for s in range(1, steps + 1):
        off = _off_columns(case, args(s))
        getattr(module, kernel)(*[None if c in off else col for c, col in enumerate(arrays)],
                                *args(s))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(CALLS))
def test_numba_matches_numpy(case, dtype):
    numba_backend = backends.load("numba")
    shapes = [(0,), (1,), (7,), (4, 5), (3, 1, 2), ()]
    arrays = _case_arrays(dtype, shapes, CALLS[case][1], seed=len(case))
    got = [[a.copy() for a in col] for col in arrays]
    expected = [[a.copy() for a in col] for col in arrays]
    _run_kernel(numba_backend, case, got)
    _run_kernel(backends.load("numpy"), case, expected)
    for c, (col_got, col_expected) in enumerate(zip(got, expected)):
        for a, b in zip(col_got, col_expected):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=RTOL[a.dtype], atol=0, err_msg=f"column {c}")


@pytest.mark.parametrize("case", ["sgd", "adagrad", "rmsprop_all", "adamw_amsgrad"])
def test_numba_parallel_loop_matches_serial_and_numpy(case):
    numba_backend = backends.load("numba")
    size = numba_backend.PARALLEL_MIN_SIZE + 37
    arrays = _case_arrays(np.float32, [(size,), (5,)], CALLS[case][1], seed=1)
    results = {}
    threads = numba_backend.get_num_threads()
    try:
        for label, module, n in [("serial", numba_backend, 1), ("parallel", numba_backend, 2),
                                 ("numpy", backends.load("numpy"), 1)]:
            module.set_num_threads(n)
            results[label] = [[a.copy() for a in col] for col in arrays]
            _run_kernel(module, case, results[label])
    finally:
        numba_backend.set_num_threads(threads)
    for label in ("serial", "parallel"):
        for col_got, col_expected in zip(results[label], results["numpy"]):
            for a, b in zip(col_got, col_expected):
                np.testing.assert_allclose(a, b, rtol=2e-4, atol=0, err_msg=label)


def test_numba_first_nonfinite():
    nb = backends.load("numba")
    assert nb.first_nonfinite([]) == -1
    assert nb.first_nonfinite([np.zeros(0, np.float32), np.ones((2, 3))]) == -1
    assert nb.first_nonfinite([np.ones(3), np.array([[1.0], [np.inf]])]) == 1
    assert nb.first_nonfinite([np.array([np.nan], np.float32), np.ones(1)]) == 0
    assert nb.first_nonfinite([np.float64(-np.inf) * np.ones(())]) == 0


def test_numba_refuses_mismatched_arrays_before_writing_any():
    """Compiled loops do not check bounds: the wrapper must, for every tensor first."""
    nb = backends.load("numba")
    param, grad = np.zeros(8), np.ones(4)
    with pytest.raises(ValueError, match=r"grads\[0\]"):
        nb.sgd_step([param], [grad], None, 0.1, 0.0, 0.0, 0.0, False, False, False)
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[0\]"):
        nb.adam_step([param], [np.ones(8)], [np.zeros(8)], [np.zeros(7)], None,
                     0.1, 0.9, 0.999, 1e-8, 0.0, False, False, False, 1)
    read_only = np.zeros(8)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[1\] must be C-contiguous, writable"):
        nb.sgd_step([param, read_only], [np.ones(8), np.ones(8)], None,
                    0.1, 0.0, 0.0, 0.0, False, False, False)
    assert not param.any()  # all or nothing: params[0] was fine, and is untouched


def test_numba_threads():
    nb = backends.load("numba")
    before = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        assert nb.get_num_threads() == 1
        nb.set_num_threads(10_000)  # more than the pool has: as many as it has
        assert nb.get_num_threads() >= 1
        with pytest.raises(ValueError, match="at least 1"):
            nb.set_num_threads(0)
    finally:
        nb.set_num_threads(before)
    assert isinstance(nb.simd_level(), str) and nb.simd_level()


# ------------------------------------------------------------ the default, in a subprocess

HIDER = """
import importlib.abc, sys

class _Hide(importlib.abc.MetaPathFinder):
    # What a failed build (or a missing extra) looks like to the import system.
    def find_spec(self, name, path=None, target=None):
        if any(name == h or name.startswith(h + ".") for h in {hidden!r}):
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden by the test)",
                                      name=name)
        return None

sys.meta_path.insert(0, _Hide())
"""

# Builds one optimizer of each kind on the default backend and the same on numpy, steps
# them, and prints what happened as JSON.
SCRIPT = """
import json, sys, warnings
import numpy as np
import fastdescent as fd

report = {"numba_imported_by_import": "numba" in sys.modules}
cases = [(fd.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
         (fd.Adagrad, dict(lr=0.1, weight_decay=0.01)),
         (fd.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
         (fd.Adam, dict(lr=0.01, amsgrad=True)),
         (fd.AdamW, dict(lr=0.01))]
shapes = [(0,), (1,), (33,), (4, 5)]
worst = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for cls, options in cases:
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            start = [rng.standard_normal(s).astype(dtype) for s in shapes]
            grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(5)]
            results = {}
            for backend in (None, "numpy"):
                params = [p.copy() for p in start]
                opt = cls(params, **options, backend=backend)
                for g in grads:
                    opt.step(g)
                results[backend] = params
                if backend is None:
                    report["default"] = opt.backend
            err = max((float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))
                       for a, b in zip(results[None], results["numpy"]) if a.size), default=0)
            worst[np.dtype(dtype).name] = max(worst.get(np.dtype(dtype).name, 0), err)
report["get_backend"] = fd.get_backend()
report["worst"] = worst
report["warnings"] = [{"category": w.category.__name__, "message": str(w.message),
                       "filename": w.filename,
                       "is_backend_warning": issubclass(w.category, fd.BackendWarning)}
                      for w in caught]
report["numba_imported"] = "numba" in sys.modules
print(json.dumps(report))
"""


def run_python(code, hidden=(), env=None):
    """Run ``code`` in a fresh interpreter (with ``hidden`` modules unimportable) and return
    its JSON output."""
    environ = {k: v for k, v in os.environ.items() if k != "FASTDESCENT_BACKEND"}
    environ.update(env or {})
    source = (HIDER.format(hidden=tuple(hidden)) if hidden else "") + textwrap.dedent(code)
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                            env=environ, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check_results_agree(report):
    assert report["worst"]["float32"] <= RTOL[np.dtype(np.float32)]
    assert report["worst"]["float64"] <= RTOL[np.dtype(np.float64)]


def test_default_is_cpp_and_numba_is_not_imported():
    report = run_python(SCRIPT)
    assert report["default"] == report["get_backend"] == "cpp"
    assert report["warnings"] == []
    assert not report["numba_imported_by_import"]
    assert not report["numba_imported"]
    _check_results_agree(report)


def test_set_num_threads_reaches_backends_loaded_later_without_importing_them():
    report = run_python("""
        import json, sys
        import fastdescent as fd
        from fastdescent import backends
        fd.set_num_threads(1)
        imported = "numba" in sys.modules
        print(json.dumps({"imported": imported,
                          "numba_threads": backends.load("numba").get_num_threads()}))
    """)
    assert report == {"imported": False, "numba_threads": 1}


@pytest.mark.parametrize("first", ["cpp", "numba"])
def test_loading_numba_keeps_the_cpp_threads(first):
    """numba's OpenMP layer sets libgomp's thread count when its pool starts; the cpp
    backend, which shares libgomp, must keep its own, whichever loads first."""
    report = run_python(f"""
        import json
        import numpy as np
        from fastdescent import backends
        backends.load({first!r})
        cpp, nb = backends.load("cpp"), backends.load("numba")
        threads = [cpp.get_num_threads()]
        nb.set_num_threads(2)
        big = np.zeros(nb.PARALLEL_MIN_SIZE, np.float32)
        nb.sgd_step([big], [np.ones_like(big)], None, 0.1, 0.0, 0.0, 0.0, False, False, False)
        threads.append(cpp.get_num_threads())
        print(json.dumps({{"cpp": threads}}))
    """, env={"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"})
    assert report["cpp"] == [1, 1]


def test_without_extension_default_is_numba_and_warns_once():
    report = run_python(SCRIPT, hidden=["fastdescent._core"])
    assert report["default"] == report["get_backend"] == "numba"
    assert not report["numba_imported_by_import"]
    assert len(report["warnings"]) == 1, report["warnings"]
    warning = report["warnings"][0]
    assert warning["is_backend_warning"]
    assert warning["filename"] == "<string>"  # points at the code that built the optimizer
    message = warning["message"]
    assert "numba backend" in message and "fastdescent._core" in message
    assert "C++" in message and "reinstall" in message
    _check_results_agree(report)


def test_without_extension_and_numba_default_is_numpy():
    report = run_python(SCRIPT, hidden=["fastdescent._core", "numba"])
    assert report["default"] == report["get_backend"] == "numpy"
    assert len(report["warnings"]) == 1, report["warnings"]
    message = report["warnings"][0]["message"]
    assert report["warnings"][0]["is_backend_warning"]
    assert "numpy backend" in message and "fastdescent[numba]" in message
    assert "reinstall" in message
    assert report["worst"] == {"float32": 0, "float64": 0}


@pytest.mark.parametrize("how", ["environment", "set_backend", "argument"])
def test_an_explicit_choice_does_not_warn(how):
    choose = {"environment": "", "set_backend": "fd.set_backend('numba')",
              "argument": ""}[how]
    backend = "'numba'" if how == "argument" else "None"
    report = run_python(f"""
        import json, warnings
        import numpy as np
        import fastdescent as fd
        {choose}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            opt = fd.Adam([np.zeros(3)], backend={backend})
            opt.step([np.ones(3)])
        print(json.dumps({{"backend": opt.backend, "warnings": [str(w.message) for w in caught]}}))
    """, hidden=["fastdescent._core"],
        env={"FASTDESCENT_BACKEND": "numba"} if how == "environment" else None)
    assert report == {"backend": "numba", "warnings": []}


def test_second_process_loads_compiled_kernels_from_the_cache(tmp_path):
    """numba compiles each loop once per machine: a second process only loads it."""
    code = """
        import json, time
        import numpy as np
        import fastdescent as fd
        from fastdescent.backends import numba as nb, numba_plan
        start = time.perf_counter()
        big = np.zeros(nb.PARALLEL_MIN_SIZE, np.float32)
        for params in ([np.zeros((3, 4), np.float32)], [np.zeros((3, 4), np.float32), big]):
            opt = fd.Adam(params, lr=0.01, backend="numba")
            opt.step([np.ones_like(p) for p in params], check_finite=True)
        stats = {d.py_func.__name__: {"hits": sum(d.stats.cache_hits.values()),
                                      "misses": sum(d.stats.cache_misses.values())}
                 for d in nb.DISPATCHERS + numba_plan.DISPATCHERS}
        print(json.dumps({"stats": stats, "seconds": time.perf_counter() - start}))
    """
    env = {"NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_NUM_THREADS": "2"}
    used = ("adam_step_serial", "adam_step_parallel", "_first_nonfinite_at", "_check")
    cold = run_python(code, env=env)
    for name in used:
        assert cold["stats"][name] == {"hits": 0, "misses": 1}, cold["stats"]
    assert any(tmp_path.rglob("*.nbi")) and any(tmp_path.rglob("*.nbc"))
    warm = run_python(code, env=env)
    for name, counts in warm["stats"].items():
        assert counts["misses"] == 0, (name, warm["stats"])
    for name in used:
        assert warm["stats"][name]["hits"] == 1, warm["stats"]
    assert warm["seconds"] < cold["seconds"]


# ------------------------------------------- numba step plans: every tensor, one call


# Two groups whose options use different state columns, float32 and float64 tensors, sizes
# that cross the threading grain and an empty one: four (dtype, columns) buckets.
PLAN_CASES = {
    "SGD": (fd.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True},
            {"momentum": 0.0, "nesterov": False}),
    "Adagrad": (fd.Adagrad, {"lr": 0.05, "lr_decay": 0.01}, {"weight_decay": 0.1}),
    "RMSprop": (fd.RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True},
                {"momentum": 0.0, "centered": False}),
    "Adam": (fd.Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}, {"amsgrad": False}),
    "AdamW": (fd.AdamW, {"lr": 0.01, "maximize": True}, {"amsgrad": True}),
}
PLAN_SIZES = [(3, 4), (0,), (70_001,), (5,), (40_000,), (2, 2)]


def _plan_run(name, backend, steps=4, seed=0):
    """Params after `steps` steps over two groups of mixed dtypes; the second group's lr is
    a schedule, and some grads are None so that tensors reach different step counts."""
    cls, options, second = PLAN_CASES[name]
    rng = np.random.default_rng(seed)
    dtypes = [np.float32, np.float64]
    params = [rng.standard_normal(s).astype(dtypes[k % 2]) for k, s in enumerate(PLAN_SIZES)]
    groups = [{"params": params[:3]},
              {"params": params[3:], "lr": lambda step: 0.02 / step, **second}]
    opt = cls(groups, backend=backend, **options)
    for step in range(steps):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
        grads[step % len(params)] = None
        opt.step(grads, check_finite=step % 2 == 0)
    return params


@pytest.fixture
def step_calls(monkeypatch):
    """The compiled calls of the numba plans, as (kind, dtype, tensor count)."""
    from fastdescent.backends import numba as nb

    calls = []
    run_step = nb.run_step

    def counting(kind, dtype, options, groups, steps, *rest):
        calls.append((kind, np.dtype(dtype).name, groups.size))
        return run_step(kind, dtype, options, groups, steps, *rest)

    monkeypatch.setattr(nb, "run_step", counting)
    return calls


@pytest.mark.parametrize("name", PLAN_CASES)
def test_numba_plan_matches_numpy_over_groups_dtypes_schedules_and_none_grads(name):
    got = _plan_run(name, "numba")
    want = _plan_run(name, "numpy")
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=RTOL[g.dtype], atol=0)


@pytest.mark.parametrize("name", PLAN_CASES)
def test_numba_plan_steps_each_dtype_and_state_layout_in_one_call(name, step_calls):
    cls, options, second = PLAN_CASES[name]
    params = [np.ones(s, [np.float32, np.float64][k % 2]) for k, s in enumerate(PLAN_SIZES)]
    opt = cls([{"params": params[:3]}, {"params": params[3:], **second}], backend="numba",
              **options)
    for _ in range(2):
        step_calls.clear()
        opt.step([np.ones_like(p) for p in params])
        # group 0: float32 (3, 4), (70_001,); float64 (0,). group 1: float64 (5,), (2, 2);
        # float32 (40_000,). The groups share a call when they use the same state columns.
        same_columns = name in ("Adagrad",)
        expected = ([("float32", 3), ("float64", 3)] if same_columns else
                    [("float32", 2), ("float64", 1), ("float64", 2), ("float32", 1)])
        assert sorted((dtype, n) for _, dtype, n in step_calls) == sorted(expected)


@pytest.mark.parametrize("name", PLAN_CASES)
def test_numba_plan_threads_split_by_total_elements_without_changing_the_bits(
        name, restore_threads):
    from fastdescent.backends import numba as nb

    results = []
    for threads in (1, 2):
        nb.set_num_threads(threads)
        if nb.get_num_threads() != threads:
            pytest.fail("numba's thread pool has fewer than 2 threads (NUMBA_NUM_THREADS)")
        results.append(_plan_run(name, "numba"))
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


def test_numba_plan_reads_numpy_array_structs_on_this_python():
    """The fast gradient check reads NumPy's array struct; its layout was confirmed at
    import (else every step would take the slower Python checks)."""
    from fastdescent.backends import numba_plan

    assert numba_plan.OFFSETS is not None


def test_numba_plan_without_the_struct_layout_gives_the_same_results(monkeypatch):
    from fastdescent.backends import numba_plan

    want = _plan_run("Adam", "numba")
    monkeypatch.setattr(numba_plan, "OFFSETS", None)
    got = _plan_run("Adam", "numba")
    for g, w in zip(got, want):
        assert g.tobytes() == w.tobytes()


class _GradArray(np.ndarray):
    pass


@pytest.mark.parametrize("make_grad", [
    lambda a: a.view(_GradArray),
    lambda a: a.view(np.dtype(np.float32, metadata={"unit": "m"})),
], ids=["ndarray subclass", "dtype with metadata"])
def test_numba_plan_accepts_what_the_fast_check_does_not_know(make_grad):
    """Valid gradients the compiled check does not recognise take the Python checks and
    step as a plain array does."""
    params = [np.zeros(6, np.float32), np.zeros(6, np.float32)]
    opt = fd.Adam([params[0]], lr=0.1, backend="numba")
    twin = fd.Adam([params[1]], lr=0.1, backend="numba")
    grad = np.arange(6, dtype=np.float32)
    opt.step([make_grad(grad.copy())])
    twin.step([grad])
    assert params[0].tobytes() == params[1].tobytes() and params[0].any()


def test_numba_plan_refuses_a_grad_sharing_memory_with_state():
    params = [np.zeros(4), np.zeros(4)]
    opt = fd.Adam(params, lr=0.1, backend="numba")
    opt.step([np.ones(4), np.ones(4)])
    before = [p.copy() for p in params], {k: v.copy() for k, v in opt.state[1].items()
                                          if isinstance(v, np.ndarray)}
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with state\[0\]"):
        opt.step([np.ones(4), opt.state[0]["exp_avg_sq"]])
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[1\]"):
        opt.step([params[1], np.ones(4)])
    assert all(p.tobytes() == q.tobytes() for p, q in zip(params, before[0]))
    assert all(opt.state[1][k].tobytes() == v.tobytes() for k, v in before[1].items())


def test_numba_plan_refuses_a_param_made_read_only_between_steps():
    params = [np.zeros(4), np.zeros(4)]
    opt = fd.SGD(params, lr=0.1, backend="numba")
    opt.step([np.ones(4), np.ones(4)])
    params[1].flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[1\] must be writable"):
        opt.step([np.ones(4), np.ones(4)])
    assert (params[0] == -0.1).all()


def test_numba_plan_steps_groups_and_step_counts_of_one_layout_in_one_call(step_calls):
    params = [np.ones(n, np.float32) for n in (3, 5, 7, 9)]
    groups = [{"params": params[:2]}, {"params": params[2:3], "lr": 0.5},
              {"params": params[3:], "lr": lambda step: 0.1 / step}]
    opt = fd.Adam(groups, lr=0.01, backend="numba")
    opt.step([np.ones(3, np.float32), None, None, np.ones(9, np.float32)])
    step_calls.clear()
    opt.step([np.ones_like(p) for p in params])  # tensors at steps 2, 1, 1, 2
    assert step_calls == [("adam", "float32", 4)]
    assert [opt.state[i]["step"] for i in range(4)] == [2, 1, 1, 2]
