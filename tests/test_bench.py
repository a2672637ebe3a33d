"""The benchmark harness (fastdescent.bench, ``fastdescent bench``): it times every
implementation asked for, and every implementation it times does the same work: one step
of each, from the same params and gradients, gives the same params."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fastdescent import backends, bench, cli

HAVE_TORCH = importlib.util.find_spec("torch") is not None
TINY = bench.Workload("3x257", 3, 257, "none", "three small tensors, odd length")
TINY_BUDGET = bench.Budget(warmup=1, repeat=3, min_repeat=2, min_sample=1e-4, max_time=0.005)


def _loads(name: str) -> bool:
    try:
        backends.load(name)
    except ImportError:
        return False
    return True


FD_IMPLS = [bench.FD_PREFIX + name for name in backends.NAMES if _loads(name)]


def test_cpp_backend_is_benchmarked():
    # The compiled backend is the point of the benchmarks; conftest: its absence is a bug.
    assert "fd-cpp" in FD_IMPLS


@pytest.mark.parametrize("dtype", bench.DTYPES)
@pytest.mark.parametrize("optimizer", bench.OPTIMIZERS)
def test_every_implementation_does_the_same_step(optimizer, dtype):
    params, grads = bench.make_data(TINY, dtype, seed=3)
    results = {}
    for impl in bench.implementations():
        if impl in bench.PROBES:
            continue
        try:
            case = bench.build(impl, optimizer, params, grads)
        except bench.Unavailable as why:
            if impl == "torch-fused" and optimizer == "RMSprop":
                continue  # torch has no fused RMSprop
            if impl.startswith("torch-") and not HAVE_TORCH:
                continue
            if impl.startswith(bench.FD_PREFIX) and impl not in FD_IMPLS:
                continue
            raise AssertionError(f"{impl} unavailable: {why}")
        for _ in range(3):  # a few steps: the state (momentum, moments, bias correction) acts
            case.step()
        results[impl] = [np.array(p, copy=True) for p in case.params()]
        # The builder copied the params: the caller's arrays are untouched.
        assert all(a is not b for a, b in zip(case.params(), params))
    expected = set(FD_IMPLS) | {"numpy-seeds", "numpy-inplace"}
    if HAVE_TORCH:
        expected |= {"torch-forloop", "torch-foreach"}
        if optimizer != "RMSprop":
            expected.add("torch-fused")
    assert set(results) == expected
    reference = results["fd-cpp"]
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    for impl, got in results.items():
        for before, ref, new in zip(params, reference, got):
            assert new.dtype == np.dtype(dtype)
            assert not np.array_equal(new, before), f"{impl} did not update its params"
            np.testing.assert_allclose(new, ref, **tol, err_msg=f"{impl} vs fd-cpp")


def test_probe_reads_and_writes_the_optimizer_bytes():
    params, grads = bench.make_data(TINY, "float32")
    case = bench.build("probe", "Adam", params, grads)
    arrays = case.keep
    assert len(arrays) == bench.ACCESS["Adam"][0]
    assert all(a.size == sum(p.size for p in params) for a in arrays)
    before = [a.copy() for a in arrays]
    case.step()
    written = bench.ACCESS["Adam"][1]
    for k, (a, b) in enumerate(zip(arrays, before)):
        assert (not np.array_equal(a, b)) == (k < written)


def test_bytes_per_element():
    assert bench.bytes_per_element("Adam", "float32") == 28
    assert bench.bytes_per_element("AdamW", "float64") == 56
    assert bench.bytes_per_element("SGD", "float32") == 20
    assert bench.bytes_per_element("RMSprop", "float64") == 40


def test_scale_shrinks_what_the_workload_says():
    w = bench.WORKLOADS
    assert w["1x10M"].shape(0.01) == (1, 100_000)
    assert w["1000x1000"].shape(0.01) == (10, 1000)
    assert w["10000x100"].shape(0.001) == (10, 100)
    assert w["1000x1000"].shape(1e-6) == (1, 1000)
    assert w["1x16K"].shape(0.01) == (1, 16384)
    assert w["1x1K"].shape(0.01) == (1, 1000)
    with pytest.raises(ValueError):
        w["1x1K"].shape(0)


def test_quick_run_has_a_row_for_every_implementation_asked_for():
    rows = bench.run(optimizers=["Adam", "RMSprop"], workloads=["1x10M", "10000x100"],
                     dtypes=["float32"], threads=[1, 2], scale=0.001, budget=TINY_BUDGET)
    seen = {(r.optimizer, r.workload, r.threads, r.implementation) for r in rows}
    for optimizer in ("Adam", "RMSprop"):
        for workload in ("1x10M", "10000x100"):
            for threads in (1, 2):
                for impl in FD_IMPLS + ["numpy-seeds", "numpy-inplace", "probe"]:
                    assert (optimizer, workload, threads, impl) in seen
                if HAVE_TORCH:
                    modes = ["torch-forloop", "torch-foreach"]
                    modes += [] if optimizer == "RMSprop" else ["torch-fused"]
                    for impl in modes:
                        assert (optimizer, workload, threads, impl) in seen
    assert not any(r.implementation == "torch-fused" and r.optimizer == "RMSprop" for r in rows)
    assert not HAVE_TORCH or any("fused" in note for note in rows.notes)
    for r in rows:
        assert r.seconds > 0 and r.min_seconds <= r.seconds
        assert r.elements == (1000 if r.workload == "10000x100" else 10_000)
        assert r.ns_per_element == pytest.approx(r.seconds / r.elements * 1e9)
        assert r.gb_per_s == pytest.approx(r.bytes_per_element * r.elements / r.seconds / 1e9)


def test_rounds_take_turns_and_report_the_median_of_the_rounds(monkeypatch):
    order = []
    cpp = bench.FD_PREFIX + "cpp"
    per_call = {cpp: [3e-3, 1e-3, 2e-3], "numpy-seeds": [9e-3, 7e-3, 8e-3]}

    def fake_measure(step, budget):
        name = impl_of[id(step)]
        order.append(name)
        seconds = per_call[name][sum(1 for n in order if n == name) - 1]
        return bench.Timing(seconds, seconds / 2, 5, 1)

    impl_of = {}
    real_build = bench.build

    def recording_build(implementation, *args, **kwargs):
        case = real_build(implementation, *args, **kwargs)
        impl_of[id(case.step)] = implementation
        return case

    monkeypatch.setattr(bench, "measure", fake_measure)
    monkeypatch.setattr(bench, "build", recording_build)
    rows = bench.run(optimizers=["SGD"], workloads=["1x1K"], dtypes=["float32"], threads=[1],
                     backends=["cpp"], peers=["numpy-seeds"], scale=0.01, rounds=3)
    assert not rows.notes
    assert order == [cpp, "numpy-seeds"] * 3  # turns, not one implementation's run after
    by_impl = {r.implementation: r for r in rows}
    assert by_impl[cpp].seconds == 2e-3 and by_impl["numpy-seeds"].seconds == 8e-3
    assert by_impl[cpp].min_seconds == 0.5e-3 and by_impl[cpp].samples == 15
    with pytest.raises(ValueError, match="rounds"):
        bench.run(optimizers=["SGD"], workloads=["1x1K"], rounds=0)


def test_run_restores_thread_settings():
    import fastdescent as fd

    before = fd.get_num_threads()
    bench.run(optimizers=["SGD"], workloads=["1x1K"], dtypes=["float64"], threads=[1, 2],
              peers=["probe"], budget=TINY_BUDGET)
    assert fd.get_num_threads() == before


def _row(impl, seconds, threads=1):
    return bench.Row("Adam", "1x10M", "float32", threads, impl, seconds, seconds, 10_000_000,
                     1, 28)


def test_table_ratios_are_peer_time_over_fastdescent_time():
    rows = bench.Rows([_row("fd-cpp", 0.01), _row("numpy-seeds", 0.09),
                       _row("torch-forloop", 0.05), _row("torch-fused", 0.012),
                       _row("probe", 0.009)], notes=["something was skipped"])
    header, lines = bench.table(rows)
    assert len(lines) == 1
    line = dict(zip(header, lines[0]))
    assert line["impl"] == "cpp"
    assert line["ns/el"] == "1"
    assert line["GB/s"] == "28"
    assert line["vs numpy-seeds"] == "9x"
    assert line["vs torch-forloop"] == "5x"
    assert line["vs torch-fused"] == "1.2x"
    assert line["vs torch-best"] == "1.2x"
    assert line["of probe"] == "90%"
    text = bench.format_table(rows, markdown=True)
    assert text.splitlines()[0].startswith("| optimizer | workload |")
    assert "- something was skipped" in text


def test_cli_bench_quick_prints_machine_and_table(capsys):
    assert cli.main(["bench", "--quick", "-o", "adam", "-w", "1x1K", "-d", "float32",
                     "-t", "1", "-p", "numpy-seeds,probe", "--quiet"]) == 0
    out = capsys.readouterr().out
    for key in ("date", "cpu", "caches", "SIMD", "versions"):
        assert any(line.startswith(key) for line in out.splitlines())
    assert "Adam: 4 arrays read, 3 written per element = 28 B (float32)" in out
    table = out[out.index("optimizer  workload"):].splitlines()
    assert "vs numpy-seeds" in table[0] and "of probe" in table[0]
    impls = [line.split()[4] for line in table[1:] if line.startswith("Adam")]
    assert impls == [name[len(bench.FD_PREFIX):] for name in FD_IMPLS]


def test_cli_bench_markdown(capsys):
    assert cli.main(["bench", "--quick", "-o", "sgd", "-w", "1x1K", "-d", "float64", "-t", "1",
                     "-b", "cpp", "-p", "probe", "--markdown", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("- **date**")
    assert "| SGD | 1x1K | float64 | 1 | cpp |" in out


def test_cli_bench_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "-o", "adamax"])
    assert "not one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "-t", "0"])


def test_bench_and_cli_import_neither_torch_nor_numba():
    import subprocess
    import sys

    code = ("import sys, fastdescent.bench, fastdescent.cli; fastdescent.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def _report_targets():
    path = Path(__file__).parents[1] / "benches" / "report_targets.py"
    spec = importlib.util.spec_from_file_location("report_targets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_targets_table_states_each_case_against_its_target():
    # Two cases of one-10M Adam: at 2 threads fastdescent takes 10 ms against the probe's
    # 8.5 ms (85%, a miss of the 90% target) and torch fused's 12 ms (1.2x); at 1 thread
    # 10 ms against 9.5 ms (95%) and 9 ms (0.9x, a miss). The sqrt+div probe takes 9.8 ms
    # at 2 threads (so the limit there is 9.8 ms: fastdescent reaches 98% of it) and 9.2 ms
    # at 1 thread (the limit stays the plain probe's 9.5 ms: torch fused's 9 ms is 0.95x it).
    def row(threads, implementation, seconds):
        return {"optimizer": "Adam", "workload": "1x10M", "dtype": "float32",
                "threads": threads, "implementation": implementation, "seconds": seconds}

    document = {"rows": [row(1, "fd-cpp", 0.010), row(1, "probe", 0.0095),
                         row(1, "probe-sqrt-div", 0.0092), row(1, "torch-fused", 0.009),
                         row(2, "fd-cpp", 0.010), row(2, "probe", 0.0085),
                         row(2, "probe-sqrt-div", 0.0098), row(2, "torch-fused", 0.012)]}
    report = _report_targets()
    lines = report.table(report.Run(document, "cpp"))
    probe_row = next(line for line in lines if "90% of the bandwidth probe" in line)
    assert "| 85% to 95% | no: 1 of 2 (Adam float32 2t 85% (of limit 98%)) |" in probe_row
    fused_row = next(line for line in lines if "torch's fused mode" in line)
    assert "| 0.90x to 1.20x | no: 1 of 2 (Adam float32 1t 0.90x (limit 0.95x)) |" in fused_row
    # Workloads the run did not measure get no row.
    assert not any("16K" in line for line in lines)
