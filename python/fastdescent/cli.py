"""The ``fastdescent`` command: ``info`` (what runs here), ``demo`` (the seeds' line fit) and
``bench`` (speed against NumPy and torch.optim)."""

from __future__ import annotations

import argparse
import sys


def _info(args) -> int:
    from .runtime import backend_info

    info = backend_info()
    compiled = info["compiled"]
    rows = [
        ("fastdescent", info["fastdescent"]),
        ("backend", info["backend"]),
        ("SIMD level", info["simd"]),
        ("threads", str(info["threads"])),
        ("available backends", ", ".join(info["available"])),
        ("compiled extension", "missing" if compiled is None else
         f"yes (SIMD {compiled['simd']}, OpenMP {'on' if compiled['openmp'] else 'off'}, "
         f"compiler {compiled['compiler']})"),
        ("numpy", info["numpy"]),
        ("python", f"{info['python']} ({info['machine']})"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _demo(args) -> int:
    from . import demo

    demo.main(epochs=args.epochs, batch_size=args.batch_size, n=args.points, seed=args.seed,
              backend=args.backend, out_dir=None if args.no_plots else args.out)
    return 0


def _bench(args) -> int:
    import time
    from dataclasses import replace

    from . import bench

    budget = bench.QUICK if args.quick else bench.FULL
    if args.repeat is not None:
        budget = replace(budget, repeat=args.repeat, min_repeat=min(budget.min_repeat,
                                                                     args.repeat))
    if args.max_time is not None:
        budget = replace(budget, max_time=args.max_time)
    scale = args.scale if args.scale is not None else (
        bench.QUICK_SCALE if args.quick else 1.0)
    threads = args.threads
    started = time.perf_counter()
    tty = sys.stderr.isatty()
    per_cell = len(bench.implementations(args.backends, args.peers)) * len(threads) * args.rounds

    def progress(done, total, row, message):
        if args.quiet:
            return
        elapsed = time.perf_counter() - started
        if row is not None:
            what = (f"{row.optimizer} {row.workload} {row.dtype} threads={row.threads} "
                    f"{row.implementation}: {row.ns_per_element:.3g} ns/el")
        else:
            what = message
        if tty:
            sys.stderr.write(f"\r\x1b[K[{done}/{total} {elapsed:.0f}s] {what}"[:200])
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif done % per_cell == 0 or done == total:
            cell = f"{row.optimizer} {row.workload} {row.dtype}" if row is not None else what
            print(f"[{done}/{total} {elapsed:.0f}s] {cell}", file=sys.stderr, flush=True)

    settings = (("quick (a smoke run, not a measurement): " if args.quick else "")
                + f"scale {scale:g}, threads {','.join(map(str, threads))}, "
                f"median of up to {budget.repeat} samples (at least {budget.min_repeat}, "
                f"about {budget.max_time:g} s each implementation), warm-up "
                f"{budget.warmup} steps"
                + (f"; {args.rounds} rounds taking turns, the median of their medians"
                   if args.rounds > 1 else ""))
    legend = ("ratios: peer time / fastdescent time (above 1: fastdescent is faster); "
              "torch-best: torch's fastest mode; of probe: probe time / fastdescent time, "
              "the probe moving the optimizer's bytes per element over one array of the "
              "workload's total size; of sqrt+div: the same for the probe that also takes "
              "one square root and makes one division per element")
    # The machine first, before the (long) run.
    print(bench.format_machine(markdown=args.markdown))
    if args.markdown:
        print(f"- **run**: {settings}")
        print("- **bytes per element**: " + "; ".join(bench.access_legend(
            args.optimizers).splitlines()))
        print(f"- {legend}")
    else:
        print(f"{'run':<8}  {settings}")
        print(bench.access_legend(args.optimizers))
        print(legend)
    print(flush=True)
    rows = bench.run(optimizers=args.optimizers, workloads=args.workloads, dtypes=args.dtypes,
                     threads=threads, backends=args.backends, peers=args.peers, scale=scale,
                     budget=budget, progress=progress, rounds=args.rounds)
    print(bench.format_table(rows, markdown=args.markdown))
    if args.all_rows:
        print()
        print(bench.format_rows(rows, markdown=args.markdown))
    print()
    print(f"({len(rows)} measurements in {time.perf_counter() - started:.0f} s)")
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"machine": dict(bench.machine_info()), "settings": settings,
                       "notes": rows.notes, "rows": [r.as_dict() for r in rows]}, f, indent=1)
    return 0


def _choices(allowed):
    """An argparse type: a comma-separated list of names from ``allowed`` (any case), or
    ``all``."""
    lookup = {name.lower(): name for name in allowed}

    def parse(text: str) -> list:
        if text.strip().lower() == "all":
            return list(allowed)
        names = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if part.lower() not in lookup:
                raise argparse.ArgumentTypeError(
                    f"{part!r} is not one of {', '.join(allowed)} (or all)")
            names.append(lookup[part.lower()])
        if not names:
            raise argparse.ArgumentTypeError("empty list")
        return names
    return parse


def _thread_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be at least 1, got {text!r}")
    return values


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .backends import NAMES

    parser = argparse.ArgumentParser(
        prog="fastdescent", description="Fused native gradient-descent optimizers for NumPy.")
    parser.add_argument("--version", action="version", version=f"fastdescent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    info = commands.add_parser("info", help="backend, SIMD level, threads and versions")
    info.set_defaults(run=_info)

    demo = commands.add_parser("demo", help="fit the seeds' line y = m x + c with each optimizer")
    demo.add_argument("--epochs", type=_positive, default=20, help="passes over the data (20)")
    demo.add_argument("--batch-size", type=_positive, default=32, help="mini-batch size (32)")
    demo.add_argument("--points", type=_positive, default=1000, help="data points (1000)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (0)")
    demo.add_argument("--backend", choices=NAMES, default=None,
                      help="kernels to run on (default: the fastest available)")
    demo.add_argument("--out", default="fastdescent-demo",
                      help="directory for the gallery (./fastdescent-demo)")
    demo.add_argument("--no-plots", action="store_true", help="no pictures, the table only")
    demo.set_defaults(run=_demo)

    from . import bench as b  # numpy only: torch and numba load when a run needs them

    bench = commands.add_parser(
        "bench", help="time every optimizer against NumPy, torch.optim and the bandwidth probe",
        description="Time fastdescent's optimizers against NumPy (as the seeds write it, and "
                    "in place) and torch.optim (for-loop, foreach, fused), and against the "
                    "bandwidth probe. Prints the machine, then one line per fastdescent "
                    "backend and (optimizer, workload, dtype, threads) with the ratio to each "
                    "peer. Progress goes to stderr. Lists are comma-separated, or 'all'.")
    bench.add_argument("--optimizers", "-o", type=_choices(b.OPTIMIZERS),
                       default=list(b.OPTIMIZERS), metavar="LIST",
                       help=f"from {','.join(b.OPTIMIZERS)} (all)")
    bench.add_argument("--workloads", "-w", type=_choices(tuple(b.WORKLOADS)),
                       default=list(b.WORKLOADS), metavar="LIST",
                       help=f"from {','.join(b.WORKLOADS)} (all)")
    bench.add_argument("--dtypes", "-d", type=_choices(b.DTYPES), default=list(b.DTYPES),
                       metavar="LIST", help="from float32,float64 (both)")
    bench.add_argument("--threads", "-t", type=_thread_list, default=[1, 2], metavar="LIST",
                       help="thread counts for fastdescent and torch (1,2)")
    bench.add_argument("--backends", "-b", type=_choices(NAMES), default=list(NAMES),
                       metavar="LIST", help=f"fastdescent backends from {','.join(NAMES)}; "
                                            "those that do not load are skipped (all)")
    bench.add_argument("--peers", "-p", type=_choices(b.PEERS), default=list(b.PEERS),
                       metavar="LIST", help=f"from {','.join(b.PEERS)} (all)")
    bench.add_argument("--quick", action="store_true",
                       help=f"small scale ({b.QUICK_SCALE:g}) and few repeats: a smoke run "
                            "of well under a minute, not a measurement")
    bench.add_argument("--scale", type=_positive_float, default=None,
                       help="shrink element counts (the 10M tensor, the number of tensors of "
                            "the many-tensor workloads; 1 unless --quick)")
    bench.add_argument("--repeat", type=_positive, default=None,
                       help="at most this many timed samples per implementation")
    bench.add_argument("--max-time", type=_positive_float, default=None,
                       help="seconds of timed samples per implementation before stopping "
                            "(once the minimum number of samples is reached)")
    bench.add_argument("--rounds", type=_positive, default=1,
                       help="measure the implementations of each case this many times, "
                            "taking turns, and report the median of the rounds (steadier "
                            "ratios on a shared machine)")
    bench.add_argument("--markdown", action="store_true",
                       help="print Markdown (for benches/REPORT.md)")
    bench.add_argument("--all-rows", action="store_true",
                       help="also print every measured row, peers included")
    bench.add_argument("--json", metavar="PATH", help="also write every row to PATH as JSON")
    bench.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
