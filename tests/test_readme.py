"""The README's example runs and does what it says."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    if not README.exists():  # tests run against an installed wheel, without the sources
        pytest.skip("README.md is not beside the tests")
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_ten_line_example_fits():
    (example,) = python_blocks()
    assert len(example.strip().splitlines()) <= 12
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(example, str(README), "exec"), namespace)
    np = namespace["np"]
    X, y, w, b = (namespace[k] for k in ("X", "y", "w", "b"))
    design = np.column_stack([X, np.ones(len(y))])
    best = np.linalg.lstsq(design, y, rcond=None)[0]
    assert np.allclose(np.append(w, b), best, atol=1e-3)
