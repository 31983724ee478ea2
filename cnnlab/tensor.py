"""Tensor: an array (NumPy on the CPU) plus what autograd needs to differentiate it.

>>> x = cnnlab.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])

The tape (Function, backward, gradient accumulation, version counters) is cnnlab/autograd.py,
the differentiable primitives cnnlab/ops.py, in-place operations and views cnnlab/inplace.py,
dtypes, Size and device cnnlab/types.py, printing cnnlab/printing.py; factories such as `zeros` and `randn` are in
cnnlab/creation.py, PyTorch's top-level functions (`cnnlab.exp` ...) in cnnlab/functions.py.
"""
from __future__ import annotations

import functools
import numbers
from collections import namedtuple
from typing import Any, Sequence

import numpy as np

from . import backends, ops, printing, random
from .random import get_rng_state, manual_seed, seed, set_rng_state  # noqa: F401  (importable from here too)
from .autograd import TensorBase, _storage, is_grad_enabled
from .inplace import InPlaceOps, _raw_index
from .errors import LayerError, shape_str

from .types import (  # noqa: F401  (the value types, importable from here as before)
    _CPU, LegacyTensorType, Size, _as_dtype, _default_float, _device_or_cpu, bool_, device, dtype_of_type_name,
    float16, float32, float64, int8, int16, int32, int64, legacy_type_name, promote, uint8,
)

_MaxResult = namedtuple("max", ["values", "indices"])
_MinResult = namedtuple("min", ["values", "indices"])


def _contiguous(a: np.ndarray) -> np.ndarray:
    """C-contiguous without np.ascontiguousarray's promotion of 0-d arrays to 1-d."""
    return a if a.flags.c_contiguous else np.array(a, order="C")


def dim_aliases(method):
    """Accept NumPy's spellings axis= and keepdims= for dim= and keepdim=, as PyTorch does."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if "axis" in kwargs:
            kwargs["dim"] = kwargs.pop("axis")
        if "keepdims" in kwargs:
            kwargs["keepdim"] = kwargs.pop("keepdims")
        return method(*args, **kwargs)

    return wrapper


def _binary(fn: type[ops.Function], doc: str):
    """The operator method `self <op> other` for a two-input Function; other may be a number."""
    def method(self: "Tensor", other) -> "Tensor":
        return fn.apply(*promote(self, self._operand(other), true_divide=fn is ops.Div))

    method.__doc__ = doc
    return method


def _conversion(dtype: np.dtype):
    """The method `float()`, `long()` ...: self.to(dtype)."""
    def method(self: "Tensor") -> "Tensor":
        return self.to(dtype)

    method.__doc__ = f"self.to(cnnlab.{dtype})"
    return method


def _nn_functional():
    # activations are layer maths and live above tensors (nn.functional imports this module)
    from .nn import functional

    return functional


def _comparison(kernel: str, doc: str):
    """The method `self <cmp> other`: a bool tensor, outside the graph."""
    def method(self: "Tensor", other) -> "Tensor":
        o = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(getattr(self._backend, kernel)(self._data, o), self._device)

    method.__doc__ = doc
    return method


class Tensor(InPlaceOps, TensorBase):
    """A multi-dimensional array that records the operations made on it.

    Shape: any. Created by `cnnlab.tensor`, `zeros`, `randn` ... or by ops.
    """

    __hash__ = object.__hash__  # == is elementwise, so identity must hash
    _base, _chain = None, ()      # a view's base tensor and the view ops that lead from it (inplace.py)

    def __init__(self, data: Any = (), requires_grad: bool = False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.numpy()
        # like torch.Tensor(data): float32 unless a dtype is given
        arr = np.asarray(data, dtype=_as_dtype(dtype) or _default_float)
        self._become(Tensor._from_host(arr, device).requires_grad_(bool(requires_grad)))

    @staticmethod
    def _wrap(array, dev: device, requires_grad: bool = False) -> "Tensor":
        """A new Tensor (never a subclass) around a backend array: every tensor's fields are set here."""
        t = object.__new__(Tensor)
        t._data = array
        t._device = dev
        t._backend = backends.get(dev.type)
        t.grad = None
        t._node = None
        t._retains_grad = False
        t.requires_grad = requires_grad
        t._vc = [0]
        return t

    @staticmethod
    def _from_host(arr: np.ndarray, dev: "str | device | None" = None) -> "Tensor":
        """A tensor on dev (default CPU) holding a NumPy array: its memory on the CPU when contiguous."""
        dev = _device_or_cpu(dev)
        return Tensor._wrap(backends.get(dev.type).from_numpy(_contiguous(arr)), dev)

    def _become(self, other: "Tensor") -> None:
        # __init__ (and Parameter's) fill an object Python already made with a new tensor's fields
        vars(self).update(vars(other))

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self._data.shape[dim]

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def device(self) -> device:
        return self._device

    @property
    def is_cuda(self) -> bool:
        return self._device.type == "cuda"

    is_xpu = is_mps = property(lambda self: False, doc="False: cnnlab has no XPU or MPS backend")

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    @property
    def data(self) -> "Tensor":
        """The same storage as a tensor outside the graph whose in-place changes autograd does not
        see (PyTorch's `.data`; `detach()` shares the version counter)."""
        return Tensor._wrap(self._data, self._device)

    @data.setter
    def data(self, value: "Tensor") -> None:
        self._data = value._data if isinstance(value, Tensor) else self._backend.asarray(value)
        if isinstance(value, Tensor):
            self._device, self._backend = value._device, value._backend

    def numpy(self) -> np.ndarray:
        # PyTorch refuses this on a tensor that requires grad; reading values for plots
        # and prints is too common in teaching code to forbid
        return self._backend.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self) -> numbers.Number:
        if self.numel() != 1:
            raise ValueError(f"item(): a tensor with {self.numel()} elements cannot be converted to a number")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu":
            raise TypeError("only integer tensors can be used as an index")
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.item())

    def __format__(self, spec: str) -> str:
        # PyTorch's rule: a 0-d tensor formats as its number (f"{loss:.3f}"), others as str()
        if self.ndim == 0:
            return format(self.item(), spec)
        if spec:
            raise TypeError(f"unsupported format string {spec!r} passed to Tensor.__format__: only a 0-d tensor "
                            f"formats as a number (this one has shape {shape_str(self.shape)}; use .item())")
        return str(self)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        body = printing.format_values(self.numpy(), prefix="tensor(")
        extras = []
        if self.dtype not in (float32, int64, bool_):
            extras.append(f"dtype=cnnlab.{self.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # ------------------------------------------------------------- autograd
    # backward, retain_grad, is_leaf and grad_fn come from autograd.TensorBase
    def detach(self) -> "Tensor":
        t = Tensor._wrap(self._data, self._device)
        t._vc = self._vc
        return t

    def detach_(self) -> "Tensor":
        self._node = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.dtype.kind != "f":
            raise ValueError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def clone(self) -> "Tensor":
        return ops.Mul.apply(self, self.dtype.type(1)) if self.requires_grad else \
            Tensor._wrap(self._backend.copy(self._data), self._device)

    # ------------------------------------------------------------ conversion
    def to(self, *args, **kwargs) -> "Tensor":
        """`to(device)`, `to(dtype)`, `to(device, dtype)` or `to(other_tensor)`; returns self if nothing changes."""
        dev, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        for a in args:
            if isinstance(a, Tensor):
                dev, dtype = a.device, a.dtype
            elif isinstance(a, (str, device)):
                dev = a
            else:
                dtype = a
        out = self
        if dtype is not None and _as_dtype(dtype) != self.dtype:
            out = ops.Cast.apply(out, dtype=_as_dtype(dtype))
        if dev is not None and device(dev) != self._device:
            out = out._move(device(dev))
        return out

    def _move(self, dev: device) -> "Tensor":
        # A copy across devices starts a new leaf; Module.to moves parameters in place.
        return Tensor._from_host(self.numpy(), dev).requires_grad_(self.requires_grad)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device_index: int | None = None) -> "Tensor":
        return self.to("cuda")

    float, double, half = _conversion(float32), _conversion(float64), _conversion(float16)
    long, int, bool = _conversion(int64), _conversion(int32), _conversion(bool_)

    def type(self, dtype=None, non_blocking: bool = False):
        """No argument: PyTorch's type name ('torch.FloatTensor'); a dtype, a legacy type
        (cnnlab.LongTensor, which lives on the CPU) or its name: converted."""
        if dtype is None:
            return legacy_type_name(self.dtype, self._device.type)
        if isinstance(dtype, str):
            return self.to(dtype_of_type_name(dtype), "cuda" if ".cuda." in dtype else "cpu")
        return self.to(dtype, "cpu") if isinstance(dtype, LegacyTensorType) else self.to(dtype)

    # ------------------------------------------------------------ arithmetic
    def _operand(self, other):
        if isinstance(other, Tensor):
            return other
        if isinstance(other, np.ndarray):
            return Tensor._wrap(self._backend.from_numpy(other.astype(self.dtype, copy=False)), self._device)
        if self.dtype.kind == "f" or isinstance(other, numbers.Integral):
            return self.dtype.type(other) if self.dtype.kind != "b" else other
        return np.float32(other)

    __add__ = __radd__ = _binary(ops.Add, "self + other")
    __sub__ = _binary(ops.Sub, "self - other")
    __mul__ = __rmul__ = _binary(ops.Mul, "self * other")
    __truediv__ = _binary(ops.Div, "self / other")
    __matmul__ = _binary(ops.MatMul, "self @ other")

    def __rsub__(self, other):
        return ops.Add.apply(-self, self._operand(other))

    def __rtruediv__(self, other):
        t = self._floating()
        return ops.Mul.apply(t ** -1, t._operand(other))

    def __rmatmul__(self, other):
        return ops.MatMul.apply(self._operand(other), self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return (exponent * self.log()).exp()
        return ops.Pow.apply(self, exponent=exponent)

    def __rpow__(self, base):
        return (self * float(np.log(base))).exp()

    # comparisons give bool tensors outside the graph
    __eq__ = eq = _comparison("equal", "self == other, elementwise")  # type: ignore[assignment]
    __ne__ = ne = _comparison("not_equal", "self != other, elementwise")  # type: ignore[assignment]
    __lt__ = lt = _comparison("less", "self < other, elementwise")
    __le__ = le = _comparison("less_equal", "self <= other, elementwise")
    __gt__ = gt = _comparison("greater", "self > other, elementwise")
    __ge__ = ge = _comparison("greater_equal", "self >= other, elementwise")
    __and__ = _comparison("logical_and", "self & other, elementwise")
    __or__ = _comparison("logical_or", "self | other, elementwise")

    def __invert__(self):
        return Tensor._wrap(~self._data, self._device)

    # ---------------------------------------------------------- elementwise
    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def sqrt(self):
        return self ** 0.5

    def abs(self):
        return ops.Abs.apply(self)

    def pow(self, exponent):
        return self ** exponent

    def clamp(self, min=None, max=None):  # noqa: A002 - PyTorch's keyword names
        return ops.Clamp.apply(self, lo=min, hi=max)

    clip = clamp

    def relu(self):
        return _nn_functional().relu(self)

    def sigmoid(self):
        return _nn_functional().sigmoid(self)

    def tanh(self):
        return _nn_functional().tanh(self)

    def softmax(self, dim: int):
        return _nn_functional().softmax(self, dim)

    def log_softmax(self, dim: int):
        return _nn_functional().log_softmax(self, dim)

    def sin(self):
        return ops.Sin.apply(self._floating())

    def cos(self):
        return ops.Cos.apply(self._floating())

    def sinh(self):
        e = self._floating().exp()
        return (e - e ** -1) * 0.5

    def cosh(self):
        e = self._floating().exp()
        return (e + e ** -1) * 0.5

    def _floating(self) -> "Tensor":
        return self if self.dtype.kind == "f" else self.to(_default_float)

    def matmul(self, other):
        return self @ other

    mm = matmul

    def bmm(self, mat2: "Tensor") -> "Tensor":
        """Batched matrix product: (b, n, m) @ (b, m, p) -> (b, n, p), no broadcasting (PyTorch's bmm)."""
        if self.ndim != 3 or getattr(mat2, "ndim", 0) != 3:
            which = "batch1" if self.ndim != 3 else "batch2"
            raise RuntimeError(f"bmm: {which} must be a 3D tensor, got shapes {shape_str(self.shape)} and "
                               f"{shape_str(getattr(mat2, 'shape', ()))}")
        if mat2.shape[:2] != (self.shape[0], self.shape[2]):
            raise RuntimeError(f"bmm: expected batch2 of size [{self.shape[0]}, {self.shape[2]}, *] for batch1 "
                               f"of shape {shape_str(self.shape)}, got {shape_str(mat2.shape)}")
        return self @ mat2

    def baddbmm(self, batch1: "Tensor", batch2: "Tensor", *, beta: float = 1, alpha: float = 1) -> "Tensor":
        """beta * self + alpha * bmm(batch1, batch2); self is not read when beta is 0 (as PyTorch)."""
        out = batch1.bmm(batch2)
        out = out if alpha == 1 else out * alpha
        return out if beta == 0 else out + (self if beta == 1 else self * beta)

    # ---------------------------------------------------------- reductions
    def _axes(self, dim) -> tuple | None:
        if dim is None:
            return None
        dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        for d in dims:
            if not -self.ndim <= d < max(self.ndim, 1):
                raise IndexError(f"dimension {d} is out of range for a {self.ndim}-d tensor")
        return tuple(d % max(self.ndim, 1) for d in dims)

    @dim_aliases
    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        t = self if dtype is None else self.to(dtype)
        if t.dtype.kind == "b":
            t = t.to(int64)
        return ops.Sum.apply(t, axis=t._axes(dim), keepdims=keepdim)

    @dim_aliases
    def mean(self, dim=None, keepdim: bool = False):
        axes = self._axes(dim)
        count = self.numel() if axes is None else int(np.prod([self.shape[a] for a in axes]))
        t = self if self.dtype.kind == "f" else self.to(float32)
        return t.sum(dim, keepdim) / count

    @dim_aliases
    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction: int | None = None):
        """Variance over dim, divided by count - correction (1 by default: unbiased; PyTorch 2's correction=)."""
        axes = self._axes(dim)
        count = self.numel() if axes is None else int(np.prod([self.shape[a] for a in axes]))
        d = self - self.mean(dim, keepdim=True)
        return (d * d).sum(dim, keepdim) / max(count - (int(unbiased) if correction is None else correction), 1)

    @dim_aliases
    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction: int | None = None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    @dim_aliases
    def prod(self, dim=None, keepdim: bool = False, dtype=None):
        """Product over dim (one int, or all elements); ints and bools give int64, as PyTorch."""
        t = self if dtype is None else self.to(dtype)
        if t.dtype.kind in "biu" and t.dtype != int64:
            t = t.to(int64)
        axis = None if dim is None else self._axes(dim)[0]
        return ops.Prod.apply(t, axis=axis, keepdims=keepdim and axis is not None)

    @dim_aliases
    def all(self, dim=None, keepdim: bool = False):
        """True where every element along dim is non-zero (a bool tensor)."""
        return (self == 0).sum(dim, keepdim) == 0

    @dim_aliases
    def any(self, dim=None, keepdim: bool = False):
        """True where some element along dim is non-zero (a bool tensor)."""
        return (self != 0).sum(dim, keepdim) > 0

    @dim_aliases
    def max(self, dim=None, keepdim: bool = False):
        if isinstance(dim, Tensor):  # torch.max(a, b): elementwise
            return ops.Where.apply(self, dim, cond=self._data >= dim._data)
        if dim is None:
            return ops.Max.apply(self, axis=None, keepdims=False)
        values = ops.Max.apply(self, axis=self._axes(dim), keepdims=keepdim)
        return _MaxResult(values, self.argmax(dim, keepdim))

    @dim_aliases
    def min(self, dim=None, keepdim: bool = False):
        if dim is None:
            return -ops.Max.apply(-self, axis=None, keepdims=False)
        values = -ops.Max.apply(-self, axis=self._axes(dim), keepdims=keepdim)
        return _MinResult(values, self.argmin(dim, keepdim))

    @dim_aliases
    def argmax(self, dim=None, keepdim: bool = False):
        axis = None if dim is None else self._axes(dim)[0]
        return Tensor._wrap(self._backend.argmax(self._data, axis=axis, keepdims=keepdim and axis is not None),
                            self._device)

    @dim_aliases
    def argmin(self, dim=None, keepdim: bool = False):
        return (-self.detach()).argmax(dim, keepdim)

    # --------------------------------------------------------------- shapes
    def view(self, *shape) -> "Tensor":
        """The same elements in another shape; one dimension may be -1 (inferred)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
            shape = tuple(shape[0])
        shape = tuple(int(s) for s in shape)
        known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        bad = shape.count(-1) > 1 or (shape.count(-1) == 0 and known != self.numel()) or \
            (shape.count(-1) == 1 and (known == 0 or self.numel() % known))
        if bad:
            raise LayerError("view", f"shape {shape_str(shape)} is invalid for a tensor of shape "
                                     f"{shape_str(self.shape)} ({self.numel()} elements)")
        out = ops.Reshape.apply(self, shape=shape)
        if _storage(out._data) is not _storage(self._data):
            return out  # NumPy had to copy (a non-contiguous input): not a view, as PyTorch's reshape
        return self._as_view(out, ("reshape", out.shape))

    reshape = view

    def view_as(self, other: "Tensor") -> "Tensor":
        return self.view(other.shape)

    reshape_as = view_as

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        if self.ndim == 0:
            return self.view(1)
        s, e = start_dim % self.ndim, end_dim % self.ndim
        shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1], dtype=np.int64)),) + self.shape[e + 1:]
        return self.view(shape)

    def unflatten(self, dim: int, sizes: Sequence[int]) -> "Tensor":
        d = dim % self.ndim
        return self.view(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def squeeze(self, dim: int | None = None) -> "Tensor":
        if dim is None:
            return self.view(tuple(s for s in self.shape if s != 1))
        d = dim % self.ndim
        if self.shape[d] != 1:
            return self
        return self.view(self.shape[:d] + self.shape[d + 1:])

    def unsqueeze(self, dim: int) -> "Tensor":
        d = dim % (self.ndim + 1)
        return self.view(self.shape[:d] + (1,) + self.shape[d:])

    def permute(self, *dims) -> "Tensor":
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        axes = tuple(d % self.ndim for d in dims)
        return self._as_view(ops.Permute.apply(self, axes=axes), ("permute", axes))

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(axes)

    def t(self) -> "Tensor":
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self) -> "Tensor":  # noqa: N802 - PyTorch's name
        return self.permute(tuple(reversed(range(self.ndim))))

    def contiguous(self) -> "Tensor":
        return self

    def expand(self, *sizes) -> "Tensor":
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        shape = tuple(o if s == -1 else s for s, o in zip(sizes, (1,) * (len(sizes) - self.ndim) + self.shape))
        return self + Tensor._wrap(self._backend.zeros(shape, self.dtype), self._device)

    def __getitem__(self, index) -> "Tensor":
        index = _raw_index(index)
        if not _is_basic(index):
            return ops.GetItem.apply(self, index=index)
        items = index if isinstance(index, tuple) else (index,)
        if Ellipsis not in items:
            index = items + (Ellipsis,)  # so that x[0] of a vector is a 0-d view, not a copied scalar
        return self._as_view(ops.GetItem.apply(self, index=index), ("index", index))


def _is_basic(index) -> bool:
    """Integers, slices, None and Ellipsis only: NumPy (and PyTorch) give a view."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, slice)
               or (isinstance(i, numbers.Integral) and not isinstance(i, (bool, np.bool_))) for i in items)
