"""Making tensors: `tensor`, `zeros`, `randn`, `arange` ... with PyTorch's signatures.

Each builds a NumPy array on the host and hands it to the device in one step
(`Tensor._from_host`); random ones draw from cnnlab's global generator (cnnlab/random.py)
unless given a `generator=` (a `cnnlab.Generator`, or a NumPy Generator).

>>> cnnlab.zeros(2, 3).shape
cnnlab.Size([2, 3])
"""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from . import ops, random
from .tensor import Size, Tensor, _as_dtype, _default_float, bool_, int64


def _new(arr: np.ndarray, dtype, device, requires_grad: bool) -> Tensor:
    if dtype is not None:
        arr = arr.astype(_as_dtype(dtype), copy=False)
    t = Tensor._from_host(np.asarray(arr), device)
    return t.requires_grad_(requires_grad) if requires_grad else t


def _shape_args(shape: tuple, size=None) -> tuple:
    """The shape from `f(2, 3)`, `f((2, 3))` or PyTorch's keyword `f(size=(2, 3))`."""
    if size is not None:
        if shape:
            raise TypeError("the shape was given twice: positionally and as size=")
        shape = (size,)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        return tuple(int(s) for s in shape[0])
    return tuple(int(s) for s in shape)


def tensor(data: Any, requires_grad: bool = False, dtype=None, device=None) -> Tensor:
    """A new tensor copied from data; Python floats become float32, ints int64.

    >>> cnnlab.tensor([[1, 2], [3, 4]]).shape
    cnnlab.Size([2, 2])
    """
    if isinstance(data, Tensor):
        data = data.numpy()
    elif isinstance(data, (list, tuple)) and data and any(isinstance(d, Tensor) for d in _iter_flat(data)):
        data = _nested_numpy(data)
    arr = np.array(data, dtype=_as_dtype(dtype))
    if dtype is None and arr.dtype.kind == "f" and not (isinstance(data, np.ndarray) and data.dtype == arr.dtype):
        arr = arr.astype(_default_float)
    return _new(arr, None, device, requires_grad)


def _iter_flat(seq):
    for item in seq:
        if isinstance(item, (list, tuple)):
            yield from _iter_flat(item)
        else:
            yield item


def _nested_numpy(seq):
    return [(_nested_numpy(i) if isinstance(i, (list, tuple)) else (i.numpy() if isinstance(i, Tensor) else i))
            for i in seq]


def as_tensor(data: Any, dtype=None, device=None) -> Tensor:
    """data itself when it already is a tensor of that dtype and device, else a new tensor."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if isinstance(data, np.ndarray) and device is None:
        return from_numpy(data if dtype is None else data.astype(_as_dtype(dtype), copy=False))
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (no copy when it is contiguous)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._from_host(array)


def zeros(*shape, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """`zeros(2, 3)`, `zeros((2, 3))` or `zeros(size=(2, 3))`."""
    return _new(np.zeros(_shape_args(shape, size), _as_dtype(dtype) or _default_float), None, device, requires_grad)


def ones(*shape, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """`ones(2, 3)`, `ones((2, 3))` or `ones(size=(2, 3))`."""
    return _new(np.ones(_shape_args(shape, size), _as_dtype(dtype) or _default_float), None, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape size (a tuple or an int) filled with fill_value; without dtype, PyTorch's
    rule: a bool gives bool, an int int64, a float the default float type."""
    if dtype is None:
        value = fill_value.item() if isinstance(fill_value, (Tensor, np.generic)) else fill_value
        dtype = bool_ if isinstance(value, bool) else int64 if isinstance(value, numbers.Integral) else _default_float
    return _new(np.full(_shape_args((size,)), fill_value, _as_dtype(dtype)), None, device, requires_grad)


def empty(*shape, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Here zeros (NumPy's uninitialised memory would make runs unrepeatable)."""
    return zeros(*shape, size=size, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=t.device)


def empty_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros_like(t, dtype=dtype, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn(*shape, size=None, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Standard normal samples: `randn(2, 3)`, `randn((2, 3))` or `randn(size=(2, 3))`."""
    g = random.numpy_rng(generator)
    return _new(g.standard_normal(_shape_args(shape, size)).astype(_as_dtype(dtype) or _default_float),
                None, device, requires_grad)


def rand(*shape, size=None, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Uniform samples in [0, 1): `rand(2, 3)`, `rand((2, 3))` or `rand(size=(2, 3))`."""
    g = random.numpy_rng(generator)
    return _new(g.random(_shape_args(shape, size)).astype(_as_dtype(dtype) or _default_float), None, device,
                requires_grad)


def randint(low: int, high: int | None = None, size: Sequence[int] = (), dtype=None, device=None,
            generator=None) -> Tensor:
    """Integers in [low, high) (or [0, low) when high is left out: `randint(10, (3,))`), int64."""
    if isinstance(high, (tuple, list, Size)):
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    g = random.numpy_rng(generator)
    return _new(g.integers(low, high, size=tuple(size)), dtype or int64, device, False)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Sequence[int] | None = None, *, generator=None, out=None,
           dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples of N(mean, std), PyTorch's four forms: `normal(mean_t, std_t)` (shapes broadcast),
    `normal(mean_t, 1.0)`, `normal(0.0, std_t)` (the tensors' dtype and device), and
    `normal(0.0, 1.0, (2, 3))` with a size (dtype=, device=, requires_grad= as randn).
    Like PyTorch's, no gradient reaches a mean or std tensor (it is zero)."""
    rng = random.numpy_rng(generator)
    ref = mean if isinstance(mean, Tensor) else std if isinstance(std, Tensor) else None
    spread = std.numpy() if isinstance(std, Tensor) else np.asarray(std)
    if spread.size and not spread.min() >= 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {spread.min()}")
    if ref is None:
        if size is None:
            raise TypeError("normal(mean, std) with two numbers needs a size, as PyTorch's: normal(0.0, 1.0, (2, 3))")
        arr = rng.normal(mean, std, _shape_args((size,))).astype(_as_dtype(dtype) or _default_float)
        result = _new(arr, None, device, requires_grad)
    else:
        if size is not None:
            raise TypeError("normal(): size= goes with a number mean and std; with a tensor the shape is its own")
        ref = ref if ref.dtype.kind == "f" else ref.to(_default_float)
        m, sd = (t.to(ref.dtype) if isinstance(t, Tensor) else ref._operand(float(t)) for t in (mean, std))
        shape = np.broadcast_shapes(tuple(getattr(m, "shape", ())), tuple(getattr(sd, "shape", ())))
        noise = ref._backend.random_normal(rng, shape, 0.0, 1.0, ref.dtype)
        result = ops.Normal.apply(m, sd, noise=noise)
    if out is not None:
        return out.copy_(result.detach())
    return result


def randperm(n: int, device=None, generator=None) -> Tensor:
    """A random permutation of 0..n-1, int64."""
    return _new(random.numpy_rng(generator).permutation(n), int64, device, False)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """`arange(9)` -> 0..8 as int64; float bounds give float32, as PyTorch."""
    if end is None:
        start, end = 0, start
    arr = np.arange(start, end, step)
    if dtype is None:
        dtype = int64 if arr.dtype.kind in "iu" else _default_float
    return _new(arr, dtype, device, requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None) -> Tensor:
    return _new(np.linspace(start, end, steps), dtype or _default_float, device, False)


def eye(n: int, m: int | None = None, dtype=None, device=None) -> Tensor:
    return _new(np.eye(n, m), dtype or _default_float, device, False)
