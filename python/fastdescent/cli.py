"""The ``fastdescent`` command: ``info`` (what runs here) and ``demo`` (the seeds' line fit)."""

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

    demo.run(epochs=args.epochs, batch_size=args.batch_size, n=args.points, seed=args.seed,
             backend=args.backend)
    return 0


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
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
