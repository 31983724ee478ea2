"""The one helper of tests/cuda: run a backend function through cpu.py and cuda.py
on the same inputs and compare what comes back.

>>> twin("add", rand(2, 3), rand(3))
"""
from __future__ import annotations

import os

import numpy as np

from cnnlab.backends import cpu

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0")
_rng = np.random.default_rng(0)


def cuda():
    from cnnlab.backends import cuda as C

    return C


def rand(*shape, dtype=np.float32, low=-1.0, high=1.0) -> np.ndarray:
    return _rng.uniform(low, high, size=shape).astype(dtype)


def to_device(x):
    """NumPy arrays (also inside tuples and lists) become DeviceArrays; the rest is passed through."""
    if isinstance(x, np.ndarray):
        return cuda().from_numpy(x)
    if isinstance(x, tuple):
        return tuple(to_device(i) for i in x)
    if isinstance(x, list):
        return [to_device(i) for i in x]
    return x


def to_host(x, where: str = "result"):
    """DeviceArrays back to NumPy; a NumPy array coming out of the CUDA backend is a bug (a host leak)."""
    C = cuda()
    if isinstance(x, C.DeviceArray):
        return C.to_numpy(x)
    if isinstance(x, (tuple, list)):
        return type(x)(to_host(i, f"{where}[{k}]") for k, i in enumerate(x))
    assert not isinstance(x, np.ndarray), f"the CUDA backend returned a host array as {where}"
    return x


def twin(name: str, *args, rtol: float = 1e-5, atol: float = 1e-6, **kwargs):
    """cpu.name(*args) and cuda.name(*args) agree (values, shapes, dtypes); returns (cpu, cuda) results."""
    expected = getattr(cpu, name)(*_copies(args), **kwargs)
    got = to_host(getattr(cuda(), name)(*to_device(_copies(args)), **kwargs))
    assert_same(got, expected, rtol, atol, name)
    return expected, got


def _copies(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def assert_same(got, expected, rtol=1e-5, atol=1e-6, what="result"):
    if expected is None or got is None:
        assert got is None and expected is None, f"{what}: got {got!r}, expected {expected!r}"
        return
    if isinstance(expected, (tuple, list)):
        assert len(got) == len(expected), what
        for k, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, rtol, atol, f"{what}[{k}]")
        return
    if isinstance(expected, (int, float, bool)) and not isinstance(expected, np.generic):
        assert got == expected, f"{what}: got {got}, expected {expected}"
        return
    e = np.asarray(expected)
    g = np.asarray(got)
    assert g.shape == e.shape, f"{what}: shape {g.shape}, expected {e.shape}"
    assert g.dtype == e.dtype, f"{what}: dtype {g.dtype}, expected {e.dtype}"
    if e.dtype.kind in "fc":
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=what)
    else:
        np.testing.assert_array_equal(g, e, err_msg=what)
