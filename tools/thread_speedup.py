"""Measure what releasing the GIL buys: two optimizers stepped by two Python threads at
once, against the same steps one after the other on one thread. Each kernel call is held
to one thread (fd.set_num_threads(1)), so any gain comes from the two Python threads
running kernels at the same time. Prints the median of several repeats; asserts nothing.

    python tools/thread_speedup.py [--backend cpp] [--size 1000000] [--steps 50] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np

import fastdescent as fd


def make(size, backend):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(size).astype(np.float32)
    return fd.Adam([w], lr=1e-3, backend=backend), [np.ones_like(w)]


def serial(pairs, steps):
    start = time.perf_counter()
    for opt, grads in pairs:
        for _ in range(steps):
            opt.step(grads)
    return time.perf_counter() - start


def threaded(pairs, steps):
    barrier = threading.Barrier(len(pairs) + 1)

    def work(opt, grads):
        barrier.wait()
        for _ in range(steps):
            opt.step(grads)

    threads = [threading.Thread(target=work, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cpp")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    fd.set_num_threads(1)
    pairs = [make(args.size, args.backend) for _ in range(2)]
    for opt, grads in pairs:  # state created, kernels compiled
        opt.step(grads)
    ratios, one, two = [], [], []
    for _ in range(args.repeats):  # interleaved, so that load changes hit both alike
        s = serial(pairs, args.steps)
        t = threaded(pairs, args.steps)
        one.append(s)
        two.append(t)
        ratios.append(s / t)
    print(f"backend {args.backend}, 2 optimizers x {args.steps} Adam steps over "
          f"{args.size} float32, 1 kernel thread each, {args.repeats} repeats")
    print(f"serial   median {statistics.median(one) * 1e3:8.1f} ms "
          f"(min {min(one) * 1e3:.1f}, max {max(one) * 1e3:.1f})")
    print(f"threaded median {statistics.median(two) * 1e3:8.1f} ms "
          f"(min {min(two) * 1e3:.1f}, max {max(two) * 1e3:.1f})")
    print(f"speedup  median {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
