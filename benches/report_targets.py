"""Print the Speed issue's targets table of benches/REPORT.md from one full bench run.

    fastdescent bench --backends cpp,numba --markdown --all-rows --rounds 3 --json run.json
    python benches/report_targets.py run.json                 # the cpp backend
    python benches/report_targets.py run.json --backend numba

Every ratio is taken within the run (peer time / fastdescent time, both medians of the
run's rounds), so the table says only what that run measured. A "met?" cell is "yes" when
every case of the row meets its target; otherwise it names how many miss, and for each
miss the machine's limit as the same run measured it: the limit of a case is the slower of
the two probes moving its bytes (the plain one, and the one that also takes a square root
and makes a division per element, for the rules that do). "limit 3.1x" after a ratio to a
peer is the peer's time over that limit: no code could reach more on that run's machine;
"of limit 97%" after a fraction of the probe is fastdescent's speed as a fraction of the
limit.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

OPTIMIZERS = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")
DTYPES = ("float32", "float64")
TORCH_MODES = ("torch-forloop", "torch-foreach", "torch-fused")


class Run:
    """The median time of every (optimizer, workload, dtype, threads, implementation)."""

    def __init__(self, document: dict, backend: str):
        self.fd = f"fd-{backend}"
        self.seconds = {(r["optimizer"], r["workload"], r["dtype"], r["threads"],
                         r["implementation"]): r["seconds"] for r in document["rows"]}
        self.threads = sorted({r["threads"] for r in document["rows"]})

    def time(self, optimizer, workload, dtype, threads, implementation):
        return self.seconds.get((optimizer, workload, dtype, threads, implementation))

    def limit(self, optimizer, workload, dtype, threads):
        """The slower of the probes for the case: the least time the machine needs."""
        times = [self.time(optimizer, workload, dtype, threads, probe)
                 for probe in ("probe", "probe-sqrt-div")]
        times = [t for t in times if t is not None]
        return max(times) if times else None

    def torch_best(self, optimizer, workload, dtype, threads):
        times = [self.time(optimizer, workload, dtype, threads, mode) for mode in TORCH_MODES]
        times = [t for t in times if t is not None]
        return min(times) if times else None

    def ratios(self, workload: str, peer: Callable, optimizers=OPTIMIZERS):
        """[(label, peer time / fastdescent time, case)] over every case both ran."""
        out = []
        for optimizer in optimizers:
            for dtype in DTYPES:
                for threads in self.threads:
                    case = (optimizer, workload, dtype, threads)
                    mine = self.time(*case, self.fd)
                    theirs = peer(*case)
                    if mine and theirs:
                        out.append((f"{optimizer} {dtype} {threads}t", theirs / mine, case))
        return out


def span(ratios, percent=False) -> str:
    values = [r for _, r, _ in ratios]
    if percent:
        return f"{100 * min(values):.0f}% to {100 * max(values):.0f}%"
    return f"{min(values):.2f}x to {max(values):.2f}x"


def misses(ratios, below: float, percent=False, limit: Callable | None = None) -> str:
    """"yes", or how many cases are short of `below`, each with its ratio and, when
    `limit(case)` gives one, what the machine's limit allows (see the module docstring)."""
    short = [item for item in ratios if item[1] < below]
    if not short:
        return "yes"
    cells = []
    for label, r, case in sorted(short, key=lambda item: item[1]):
        cell = f"{label} {100 * r:.0f}%" if percent else f"{label} {r:.2f}x"
        bound = limit(case) if limit else None
        if bound is not None:
            cell += f" (of limit {100 * bound:.0f}%)" if percent else f" (limit {bound:.2f}x)"
        cells.append(cell)
    return f"no: {len(short)} of {len(ratios)} ({', '.join(cells)})"


def table(run: Run) -> list[str]:
    def peer(implementation):
        return lambda o, w, d, t: run.time(o, w, d, t, implementation)

    rows = []

    def bound_of(peer_time):
        """For a ratio to a peer: the peer's time over the case's limit."""
        def bound(case):
            theirs, least = peer_time(*case), run.limit(*case)
            return theirs / least if theirs and least else None
        return bound

    def of_limit(case):
        """For a fraction of a probe: fastdescent's speed as a fraction of the limit."""
        least = run.limit(*case)
        return least / run.time(*case, run.fd) if least else None

    def row(target, ratios, below, percent=False, limit=None):
        if ratios:
            rows.append(f"| {target} | {span(ratios, percent)} | "
                        f"{misses(ratios, below, percent, limit)} |")

    row("one 10M tensor: >= 90% of the bandwidth probe", run.ratios("1x10M", peer("probe")),
        0.9, percent=True, limit=of_limit)
    row("... so never slower than torch's fused mode",
        run.ratios("1x10M", peer("torch-fused")), 1.0, limit=bound_of(peer("torch-fused")))
    row("RMSprop on 10M: >= 3x torch's best", run.ratios("1x10M", run.torch_best,
                                                          ("RMSprop",)), 3.0,
        limit=bound_of(run.torch_best))
    row("one 16K tensor in cache: >= 80% of the probe", run.ratios("1x16K", peer("probe")),
        0.8, percent=True, limit=of_limit)
    row("... (rules with sqrt and division: of the sqrt+div probe)",
        run.ratios("1x16K", peer("probe-sqrt-div"), OPTIMIZERS[1:]), 0.8, percent=True)
    row("1000 tensors of 1000: >= 5x torch's fastest", run.ratios("1000x1000", run.torch_best),
        5.0, limit=bound_of(run.torch_best))
    row("10000 tensors of 100: >= 20x torch's fastest",
        run.ratios("10000x100", run.torch_best), 20.0, limit=bound_of(run.torch_best))
    row("... and within 2x of the probe (>= 50%)", run.ratios("10000x100", peer("probe")),
        0.5, percent=True, limit=of_limit)
    row("one tensor of 1000: faster than torch's fastest", run.ratios("1x1K", run.torch_best),
        1.0)
    row(">= 8x the seeds' NumPy on the 10M tensor", run.ratios("1x10M", peer("numpy-seeds")),
        8.0, limit=bound_of(peer("numpy-seeds")))
    # The 2 us bound is on fastdescent's own time, not a ratio.
    steps = [(label, run.time(*key, run.fd)) for label, key in _cases(run, "1x1K")]
    if steps:
        over = [f"{label} {1e6 * seconds:.2f} us" for label, seconds in steps if seconds >= 2e-6]
        times = [seconds for _, seconds in steps]
        rows.append(f"| one tensor of 1000: a whole step() under 2 us | "
                    f"{1e6 * min(times):.2f} to {1e6 * max(times):.2f} us | "
                    + (f"no: {len(over)} of {len(steps)} ({', '.join(over)})" if over
                       else "yes") + " |")
    return ["| target | measured | met? |", "| --- | --- | --- |", *rows]


def _cases(run: Run, workload: str):
    for optimizer in OPTIMIZERS:
        for dtype in DTYPES:
            for threads in run.threads:
                key = (optimizer, workload, dtype, threads)
                if run.time(*key, run.fd):
                    yield f"{optimizer} {dtype} {threads}t", key


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="the file `fastdescent bench --json` wrote")
    parser.add_argument("--backend", default="cpp", help="fastdescent backend (cpp)")
    args = parser.parse_args(argv)
    with open(args.json) as f:
        document = json.load(f)
    machine = document["machine"]
    print(f"Run of {machine['date']}, {machine['versions']}; {document['settings']}.\n")
    print("\n".join(table(Run(document, args.backend))))


if __name__ == "__main__":
    main()
