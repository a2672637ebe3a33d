"""Interop: params and grads may be any array NumPy can view without a copy.

torch CPU tensors, ``memoryview`` and other buffers, and DLPack exporters are accepted as
params (viewed once, at construction, and updated in place in their own memory) and as
grads (viewed at the step). Immutable arrays (read-only buffers, as JAX's arrays are) are
refused with a message that says what to do, and every refusal names the argument and its
index and leaves everything as it was.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import fastdescent as fd
from conftest import assert_unchanged, snapshot


class ReadOnlyArray:
    """An immutable array as JAX presents one to NumPy: ``__array__`` (honouring copy=)
    hands out a read-only view."""

    def __init__(self, values):
        self._values = np.array(values)
        self._values.flags.writeable = False

    def __array__(self, dtype=None, copy=None):
        return self._values


class DLPackOnly:
    """An array known to NumPy only through DLPack."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def adam_reference(param, grads, **options):
    """The same steps on a plain float64 ndarray copy of ``param``."""
    reference = np.array(param, dtype=np.float64)
    opt = fd.Adam([reference], **options)
    for grad in grads:
        opt.step([np.asarray(grad, dtype=np.float64)])
    return reference


@pytest.mark.parametrize("requires_grad", [False, True])
def test_a_torch_tensor_param_is_updated_in_place(backend, requires_grad):
    tensor = torch.linspace(-1, 1, 7, dtype=torch.float64, requires_grad=requires_grad)
    start = tensor.detach().clone()
    pointer = tensor.data_ptr()
    grads = [torch.full((7,), 0.5, dtype=torch.float64) * (k + 1) for k in range(3)]
    opt = fd.Adam([tensor], lr=0.1, backend=backend)
    for grad in grads:
        opt.step([grad])
    assert tensor.data_ptr() == pointer
    assert not torch.equal(tensor.detach(), start)
    # The optimizer's params are views of the tensor's own memory.
    assert opt.params[0].ctypes.data == pointer
    expected = adam_reference(start.numpy(), [g.numpy() for g in grads], lr=0.1)
    np.testing.assert_allclose(tensor.detach().numpy(), expected, rtol=1e-12)


def test_torch_grads_on_numpy_params_give_the_numpy_result(backend):
    w = np.linspace(-1, 1, 5, dtype=np.float32)
    v = w.copy()
    a = fd.Adam([w], lr=0.01, backend=backend)
    b = fd.Adam([v], lr=0.01, backend=backend)
    for k in range(4):
        grad = np.sin(np.arange(5, dtype=np.float32) + k)
        a.step([torch.from_numpy(grad.copy())])
        b.step([grad])
    assert w.tobytes() == v.tobytes()


def test_a_bare_tensor_grad_is_accepted_with_one_param(backend):
    tensor = torch.zeros(3)
    opt = fd.SGD([tensor], lr=1.0, backend=backend)
    opt.step(torch.ones(3))
    assert torch.equal(tensor, -torch.ones(3))


def test_memoryview_params_and_grads(backend):
    memory = np.zeros(4, dtype=np.float32)
    opt = fd.SGD([memoryview(memory)], lr=0.5, backend=backend)
    opt.step([memoryview(np.ones(4, dtype=np.float32))])
    assert memory.tolist() == [-0.5] * 4


def test_dlpack_params_and_grads(backend):
    memory = np.zeros(4)
    opt = fd.SGD([np.from_dlpack(torch.from_numpy(memory))], lr=0.5, backend=backend)
    opt.step([DLPackOnly(np.full(4, 2.0))])
    assert memory.tolist() == [-1.0] * 4
    only = np.zeros(3)
    opt = fd.SGD([DLPackOnly(only)], lr=1.0, backend=backend)
    opt.step([np.ones(3)])
    assert only.tolist() == [-1.0] * 3


def test_params_in_groups_may_be_tensors(backend):
    a, b = torch.zeros(2), torch.zeros(3)
    opt = fd.SGD([{"params": [a]}, {"params": b, "lr": 2.0}], lr=1.0, backend=backend)
    opt.step([torch.ones(2), torch.ones(3)])
    assert a.tolist() == [-1.0, -1.0] and b.tolist() == [-2.0, -2.0, -2.0]


def test_a_none_grad_leaves_a_tensor_param_alone(backend):
    a, b = torch.zeros(2), torch.zeros(2)
    opt = fd.SGD([a, b], lr=1.0, backend=backend)
    opt.step([None, torch.ones(2)])
    assert a.tolist() == [0.0, 0.0] and b.tolist() == [-1.0, -1.0]


IMMUTABLE_PARAMS = {
    "read-only ndarray": lambda: ReadOnlyArray(np.zeros(3)).__array__(),
    "read-only memoryview": lambda: memoryview(np.zeros(3)).toreadonly(),
    "read-only __array__ (JAX-like)": lambda: ReadOnlyArray(np.zeros(3)),
    "read-only DLPack": lambda: DLPackOnly(ReadOnlyArray(np.zeros(3)).__array__()),
}


@pytest.mark.parametrize("make", IMMUTABLE_PARAMS.values(), ids=IMMUTABLE_PARAMS)
def test_an_immutable_param_is_refused_with_what_to_do(make):
    with pytest.raises(ValueError, match=r"params\[1\] must be writable .*read-only.*"
                                         r"numpy\.array\(x\)"):
        fd.Adam([np.zeros(2), make()])


@pytest.mark.parametrize("make", IMMUTABLE_PARAMS.values(), ids=IMMUTABLE_PARAMS)
def test_an_immutable_grad_is_fine(backend, make):
    w = np.zeros(3)
    fd.SGD([w], lr=1.0, backend=backend).step([make()])
    assert w.tolist() == [0.0, 0.0, 0.0]


BAD_PARAMS = {
    "strided tensor": (lambda: torch.zeros(3, 2).t(), ValueError,
                       r"params\[1\] must be C-contiguous: it is updated in place"),
    "bfloat16 tensor": (lambda: torch.zeros(3, dtype=torch.bfloat16), TypeError,
                        r"params\[1\] must be a dense CPU tensor .*BFloat16"),
    "sparse tensor": (lambda: torch.zeros(3).to_sparse(), TypeError,
                      r"params\[1\] must be a dense CPU tensor .*Sparse"),
    "int tensor": (lambda: torch.zeros(3, dtype=torch.int32), TypeError,
                   r"params\[1\] must have dtype float16, float32 or float64"),
    "list": (lambda: [0.0, 1.0], TypeError,
             r"params\[1\] must be a numpy.ndarray or an array .*got list"),
    "bytes": (lambda: b"\0" * 8, TypeError, r"params\[1\] must have dtype float16, float32"),
    "__array__ that may copy": (lambda: type("Legacy", (), {
        "__array__": lambda self: np.zeros(2)})(), TypeError,
        r"params\[1\] \(Legacy\) cannot be viewed as a NumPy array without a copy"),
}


@pytest.mark.parametrize("make, error, message", BAD_PARAMS.values(), ids=BAD_PARAMS)
def test_a_bad_param_is_refused_by_index(make, error, message):
    with pytest.raises(error, match=message):
        fd.Adam([np.zeros(2), make()])


def test_a_single_tensor_as_params_is_refused():
    with pytest.raises(TypeError, match="not a single array"):
        fd.Adam(torch.zeros(3))


def test_params_sharing_a_tensor_are_refused():
    tensor = torch.zeros(3)
    with pytest.raises(ValueError, match=r"params\[1\] shares memory with params\[0\]"):
        fd.Adam([tensor, tensor.view(3)])


BAD_GRADS = {
    "strided tensor": (lambda: torch.zeros(4, 2)[:, 0], ValueError,
                       r"grads\[1\] must be C-contiguous"),
    "float64 tensor for a float32 param": (lambda: torch.zeros(4, dtype=torch.float64),
                                           TypeError, r"grads\[1\] has dtype float64"),
    "wrong shape": (lambda: torch.zeros(5), ValueError, r"grads\[1\] has shape \(5,\)"),
    "sparse tensor": (lambda: torch.zeros(4).to_sparse(), TypeError,
                      r"grads\[1\] must be a dense CPU tensor"),
    "string": (lambda: "grad", TypeError,
               r"grads\[1\] must be a numpy.ndarray or an array .*got str"),
}


@pytest.mark.parametrize("make, error, message", BAD_GRADS.values(), ids=BAD_GRADS)
def test_a_bad_grad_is_refused_by_index_and_changes_nothing(backend, make, error, message):
    params = [torch.zeros(4), torch.zeros(4)]
    opt = fd.Adam(params, lr=0.1, backend=backend)
    opt.step([torch.ones(4), torch.ones(4)])
    before = snapshot(opt)
    with pytest.raises(error, match=message):
        opt.step([torch.ones(4), make()])
    assert_unchanged(opt, before)


def test_a_grad_tensor_sharing_a_params_memory_is_refused(backend):
    params = [torch.zeros(4), torch.zeros(4)]
    opt = fd.SGD(params, lr=0.1, backend=backend)
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[1\]"):
        opt.step([params[1], torch.ones(4)])


def test_importing_fastdescent_does_not_import_torch():
    code = "import sys, fastdescent; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
