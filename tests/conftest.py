"""Shared fixtures: every test that takes ``backend`` runs once per available backend."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

from fastdescent import backends

# Hypothesis profiles (HYPOTHESIS_PROFILE): "ci", the default, bounds the examples a
# property test runs; "thorough" is for a long run by hand. No deadline: a first call
# compiles numba kernels, and the machine may be loaded.
settings.register_profile("ci", max_examples=40, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The compiled backend must be present in the test environment: a missing extension is a
# failed build, not a reason to skip.
BACKENDS = list(backends.NAMES)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def restore_backend():
    """Whatever a test does to the default backend is undone afterwards."""
    import fastdescent as fd

    saved = fd.get_backend()
    yield saved
    fd.set_backend(saved)


@pytest.fixture
def restore_threads():
    """Whatever a test does to the thread count is undone afterwards."""
    import fastdescent as fd

    saved = fd.get_num_threads()
    yield saved
    fd.set_num_threads(saved)


def snapshot(optimizer):
    """A deep copy of everything a step may change: params, state, counters, options."""
    return {
        "params": [p.copy() for p in optimizer.params],
        "state": {i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                  for i, s in optimizer.state.items()},
        "step_count": optimizer.step_count,
        "groups": [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups],
    }


def assert_snapshots_equal(after, before):
    """Two :func:`snapshot` results agree bit for bit (values of the same type, too)."""
    assert after["step_count"] == before["step_count"]
    assert after["groups"] == before["groups"]
    assert len(after["params"]) == len(before["params"])
    for a, b in zip(after["params"], before["params"]):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    assert after["state"].keys() == before["state"].keys()
    for i in before["state"]:
        assert after["state"][i].keys() == before["state"][i].keys()
        for k, v in before["state"][i].items():
            w = after["state"][i][k]
            if isinstance(v, np.ndarray):
                assert w.dtype == v.dtype and w.shape == v.shape and w.tobytes() == v.tobytes()
            else:
                assert type(w) is type(v) and w == v


def assert_unchanged(optimizer, before):
    """Bit-for-bit equality of ``optimizer`` with a :func:`snapshot` taken earlier."""
    assert_snapshots_equal(snapshot(optimizer), before)


def assert_same(a, b):
    """Params, state, step count and options of two optimizers agree bit for bit (two
    schedules given as lr count as equal when they are of the same type)."""
    sa, sb = snapshot(a), snapshot(b)
    for s in (sa, sb):
        s["groups"] = [{k: (type(v) if callable(v) else v) for k, v in g.items()}
                       for g in s["groups"]]
    assert_snapshots_equal(sa, sb)
