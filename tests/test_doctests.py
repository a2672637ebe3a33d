"""The examples in the package's docstrings run and show what they claim, on every backend;
the toolkit's public names each have one."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

import fastdescent as fd

#: every module whose docstrings hold examples
DOC_MODULES = ["fastdescent", "fastdescent.optim.sgd", "fastdescent.optim.adagrad",
               "fastdescent.optim.rmsprop", "fastdescent.optim.adam", "fastdescent.accumulate",
               "fastdescent.transforms"]
#: the seeds' toolkit: each public name must have an example
MODULES = ["fastdescent.schedules", "fastdescent.problems", "fastdescent.minimize",
           "fastdescent.newton", "fastdescent.result"]


@pytest.mark.parametrize("module", DOC_MODULES + MODULES)
def test_docstring_examples_pass(module, backend, restore_backend):
    fd.set_backend(backend)  # the examples use the default backend
    result = doctest.testmod(importlib.import_module(module), verbose=False, report=False,
                             optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def public_objects():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            yield f"{name}.{attr}", getattr(module, attr)


@pytest.mark.parametrize("name, obj", list(public_objects()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_public_function_and_class_has_an_example(name, obj):
    """Module-level names; their methods are shown in the class's example."""
    examples = doctest.DocTestParser().get_examples(inspect.getdoc(obj) or "")
    assert examples, f"{name} has no example in its docstring"
