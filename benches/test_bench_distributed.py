"""fd.distributed's benchmark (benches/distributed_report.py, which launches
benches/distributed_bench.py under mpirun) runs and reports every row.

    FASTDESCENT_BENCH_SCALE=0.001 python -m pytest benches -k distributed   # CI: 2 ranks, tiny
    python benches/distributed_report.py > table.md                        # the full report

Timings are reported, never asserted; what is checked is that every case ran and that the
numbers are the ones the report's model rests on (state split N ways, bytes counted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCALE = float(os.environ.get("FASTDESCENT_BENCH_SCALE", "1.0"))
REPORT = os.path.join(os.path.dirname(__file__), "distributed_report.py")


def test_distributed_report_runs_every_case():
    short = SCALE < 0.01
    ranks = ["2"] if short else ["1", "2", "3"]
    command = [sys.executable, REPORT, "--json", "--scale", str(SCALE), "--steps",
               "2" if short else "15", "--ranks", *ranks]
    if short:
        command += ["--count-workloads", "1x10M"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    steps = {(r["ranks"], r["workload"], r["mode"], r["timeout"]): r
             for r in rows if r["kind"] == "step"}
    for n in map(int, ranks):
        for workload in ("1x10M", "1000x1000"):
            for timeout in (600.0, None):
                data_parallel = steps[(n, workload, "DataParallel", timeout)]
                sharded = steps[(n, workload, "ShardedOptimizer", timeout)]
                assert data_parallel["seconds"] > 0 and sharded["seconds"] > 0
                held, full = (sharded["state_bytes_per_rank_max"],
                              data_parallel["state_bytes_per_rank_max"])
                assert full / n <= held <= full / n + 64 * 8 * 2
    sent = [r for r in rows if r["kind"] == "sent"]
    assert {(r["ranks"], r["mode"]) for r in sent} == {
        (int(n), mode) for n in ranks for mode in ("DataParallel", "ShardedOptimizer")}
    for r in sent:
        if r["ranks"] > 1:
            assert min(r["bytes_per_step"]) > 0
