"""Checkpoints under SIGKILL: a process killed at any point of fd.save leaves the previous
checkpoint whole and loadable (or, killed after the rename, the new one), never a mix.

A forked child saves checkpoints whose every state value and step count is its sequence
number k, so that a loaded file tells exactly which save it came from and whether it is
whole. Two ways of killing it:

* at a random time, by the parent, while the child saves k = 1, 2, 3, ... in a loop;
* at the N-th Python line executed inside fd.save (counted by a trace function in the
  child, which kills itself): every point between two lines of the writer, zipfile and
  numpy's .npy writer, including after the write, the fsync and the rename.

FASTDESCENT_KILLS sets the number of random-time kills (default 40); the exhaustive sweep
over every line is marked slow.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

import numpy as np
import pytest

import fastdescent as fd

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

KILLS = int(os.environ.get("FASTDESCENT_KILLS", "40"))
LINE_KILLS = 40  # sampled kill points of the line sweep in the default run


def make_optimizer():
    """Adam (AMSGrad) over two params of two dtypes, 600 KB of state: a save takes a few
    milliseconds. The numpy backend: a forked child must not start OpenMP threads."""
    params = [np.zeros(50_000, np.float32), np.zeros((100, 99), np.float64)]
    return fd.Adam(params, amsgrad=True, backend="numpy")


def set_generation(opt, k):
    """Every state value and the step count become ``k``."""
    state = opt.state_dict()
    state["state"] = {i: {"step": k, **{key: np.full(p.shape, k, p.dtype) for key in
                                         ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}}
                      for i, p in enumerate(opt.params)}
    state["step_count"] = k
    opt.load_state_dict(state)


def generation_of(path):
    """The k of the whole checkpoint at ``path`` (None if there is no file); fails if the
    file does not load or is not one generation throughout."""
    if not os.path.exists(path):
        return None
    opt = make_optimizer()
    fd.load(path, opt)  # a damaged file raises ValueError here: the test fails
    k = opt.step_count
    for i, state in opt.state.items():
        assert state["step"] == k
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert (state[key] == k).all(), f"state[{i}][{key!r}] mixes generations"
    return k


def in_child(work):
    """Run ``work()`` in a forked child that never returns into pytest; its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def killed(pid):
    """Wait for ``pid``; True when SIGKILL ended it."""
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def debris(directory, keep):
    return [n for n in os.listdir(directory) if n != keep]


def test_killed_at_random_times_the_last_checkpoint_survives(tmp_path):
    rng = random.Random(20261123)
    path = str(tmp_path / "ckpt.npz")
    opt = make_optimizer()
    started = time.perf_counter()
    for k in (1, 2, 3):
        set_generation(opt, k)
        fd.save(path, opt)
    save_time = (time.perf_counter() - started) / 3
    os.unlink(path)
    inside_save = 0
    for kill in range(KILLS):
        first = generation_of(path) or 0
        read_end, write_end = os.pipe()

        def save_forever():
            os.close(read_end)
            k = first
            while True:
                k += 1
                set_generation(opt, k)
                fd.save(path, opt)
                os.write(write_end, b"%d\n" % k)

        pid = in_child(save_forever)
        os.close(write_end)
        time.sleep(rng.uniform(0, 4 * save_time))
        os.kill(pid, signal.SIGKILL)
        assert killed(pid)
        with os.fdopen(read_end, "rb") as pipe:
            reported = [int(line) for line in pipe.read().split()]
        last = reported[-1] if reported else first
        # Whole, and either the last save that returned or the one killed after its rename.
        k = generation_of(path)
        assert k in ({None, last + 1} if last == 0 else {last, last + 1}), (kill, last, k)
        leftovers = debris(tmp_path, "ckpt.npz")
        inside_save += bool(leftovers) or k == last + 1
        for name in leftovers:  # a killed writer cannot clean up; its file is not the checkpoint
            assert name.startswith(".fastdescent-") and name.endswith(".tmp")
            os.unlink(tmp_path / name)
    print(f"{KILLS} kills, {inside_save} inside fd.save (a temporary file left, or the "
          "rename done but not reported)")
    assert inside_save > 0, "no kill landed inside fd.save: the test did not test it"


def _count_lines_then_kill(at, counter):
    """A trace function that counts the Python lines run and SIGKILLs the process at the
    ``at``-th (``counter[0]`` holds the count)."""
    def trace(frame, event, arg):
        if event == "line":
            counter[0] += 1
            if counter[0] == at:
                os.kill(os.getpid(), signal.SIGKILL)
        return trace
    return trace


def _traced_save(path, opt, at, report):
    def work():
        counter = [0]
        set_generation(opt, 2)
        sys.settrace(_count_lines_then_kill(at, counter))
        try:
            fd.save(path, opt)
        finally:
            sys.settrace(None)
        os.write(report, b"%d\n" % counter[0])
    return work


def _kill_at_lines(tmp_path, choose):
    """Save generation 1, then in a child save generation 2 killed at each line number
    ``choose(total)`` picks; returns (total lines of a save, kills)."""
    path = str(tmp_path / "ckpt.npz")
    opt = make_optimizer()
    set_generation(opt, 1)
    fd.save(path, opt)
    read_end, write_end = os.pipe()
    pid = in_child(_traced_save(path, opt, -1, write_end))
    os.close(write_end)
    assert not killed(pid)
    with os.fdopen(read_end, "rb") as pipe:
        total = int(pipe.read())
    assert generation_of(path) == 2
    kills = 0
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for at in choose(total):
            set_generation(opt, 1)
            fd.save(path, opt)
            pid = in_child(_traced_save(path, opt, at, devnull))
            assert killed(pid), f"the child was to be killed at line {at} of {total}"
            kills += 1
            assert generation_of(path) in (1, 2), at
            for name in debris(tmp_path, "ckpt.npz"):
                os.unlink(tmp_path / name)
    finally:
        os.close(devnull)
    return total, kills


def test_killed_at_sampled_lines_of_save_the_checkpoint_is_whole(tmp_path):
    rng = random.Random(7)
    total, kills = _kill_at_lines(
        tmp_path, lambda n: sorted(rng.sample(range(1, n + 1), min(LINE_KILLS, n))))
    print(f"{kills} kills at sampled lines of {total}")
    assert kills == min(LINE_KILLS, total)


@pytest.mark.slow
def test_killed_at_every_line_of_save_the_checkpoint_is_whole(tmp_path):
    total, kills = _kill_at_lines(tmp_path, lambda n: range(1, n + 1))
    print(f"{kills} kills, one at every line of {total}")
    assert kills == total
