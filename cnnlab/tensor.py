"""Tensor: an array (NumPy on the CPU) plus what autograd needs to differentiate it.

>>> x = cnnlab.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""
from __future__ import annotations

import numbers
from collections import namedtuple
from typing import Any, Iterable, Sequence

import numpy as np

from . import backends, ops
from .autograd import is_grad_enabled, no_grad
from .errors import LayerError, shape_str

# dtypes are NumPy's; cnnlab/__init__.py adds PyTorch's aliases (float, double, long)
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")
_default_float = float32

_MaxResult = namedtuple("max", ["values", "indices"])
_MinResult = namedtuple("min", ["values", "indices"])


class Size(tuple):
    """A tensor's shape: a tuple that prints like PyTorch's torch.Size."""

    def __repr__(self) -> str:
        return f"cnnlab.Size({list(self)})"

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))


class device:
    """Where a tensor lives: device('cpu') or device('cuda'); compares equal to its string."""

    def __init__(self, spec: "str | device" = "cpu", index: int | None = None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index
        kind, _, idx = str(spec).partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r}; expected 'cpu' or 'cuda'")
        self.type = kind
        self.index = int(idx) if idx else index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and other.type == self.type

    def __hash__(self) -> int:
        return hash(self.type)

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}')"


_CPU = device("cpu")


def _contiguous(a: np.ndarray) -> np.ndarray:
    """C-contiguous without np.ascontiguousarray's promotion of 0-d arrays to 1-d."""
    return a if a.flags.c_contiguous else np.array(a, order="C")


def _as_dtype(dtype) -> np.dtype | None:
    if dtype is None:
        return None
    if dtype is bool:
        return bool_
    return np.dtype(dtype)


class Tensor:
    """A multi-dimensional array that records the operations made on it.

    Shape: any. Created by `cnnlab.tensor`, `zeros`, `randn` ... or by ops.
    """

    __hash__ = object.__hash__  # == is elementwise, so identity must hash

    def __init__(self, data: Any = (), requires_grad: bool = False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.numpy()
        # like torch.Tensor(data): float32 unless a dtype is given
        arr = np.asarray(data, dtype=_as_dtype(dtype) or _default_float)
        dev = _CPU if device is None else globals()["device"](device)
        self._device = dev
        self._backend = backends.get(dev.type)
        self._data = self._backend.from_numpy(_contiguous(arr))
        self.grad: Tensor | None = None
        self._node = None
        self._retains_grad = False
        self.requires_grad = bool(requires_grad)
        if requires_grad and self._data.dtype.kind != "f":
            raise ValueError(f"only floating-point tensors can require gradients, got {self._data.dtype}")

    @classmethod
    def _wrap(cls, array, dev: device, requires_grad: bool = False) -> "Tensor":
        t = cls.__new__(cls)
        t._data = array
        t._device = dev
        t._backend = backends.get(dev.type)
        t.grad = None
        t._node = None
        t._retains_grad = False
        t.requires_grad = requires_grad
        return t

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
        """The same storage as a tensor outside the graph (PyTorch's `.data`)."""
        return Tensor._wrap(self._data, self._device)

    @data.setter
    def data(self, value: "Tensor") -> None:
        self._data = value._data if isinstance(value, Tensor) else self._backend.asarray(value)
        if isinstance(value, Tensor):
            self._device, self._backend = value._device, value._backend

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return None if self._node is None else _GradFn(self._node[0])

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

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(", threshold=200)
        extras = []
        if self.dtype not in (float32, int64, bool_):
            extras.append(f"dtype=cnnlab.{self.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node[0].__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # ------------------------------------------------------------- autograd
    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`, walking the tape backwards."""
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no grad_fn "
                               "(did you compute it under no_grad(), or forget requires_grad=True?)")
        B = self._backend
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward(): grad can be implicitly created only for scalar outputs, "
                                   f"this tensor has shape {shape_str(self.shape)}; pass gradient=")
            g = B.full(self._data.shape, 1.0, self.dtype)
        else:
            g = gradient._data if isinstance(gradient, Tensor) else B.asarray(gradient, self.dtype)
            if tuple(g.shape) != tuple(self.shape):
                raise ValueError(f"backward(): gradient has shape {shape_str(g.shape)}, "
                                 f"expected {shape_str(self.shape)}")
        grads = {id(self): g}
        for t in _topological_order(self):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._node is None or t._retains_grad:
                _accumulate_grad(t, g)
            if t._node is None:
                continue
            fn, ctx, inputs = t._node
            if getattr(ctx, "released", False):
                raise RuntimeError("backward(): trying to go through the graph a second time; "
                                   "pass retain_graph=True to the first backward() if you need to")
            with no_grad():
                in_grads = fn.backward(ctx, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if not retain_graph:
                ctx.saved = None
                ctx.released = True
            for inp, gi in zip(inputs, in_grads):
                if gi is None or not isinstance(inp, Tensor) or not inp.requires_grad:
                    continue
                prev = grads.get(id(inp))
                grads[id(inp)] = gi if prev is None else B.add(prev, gi)

    def retain_grad(self) -> None:
        self._retains_grad = True

    def detach(self) -> "Tensor":
        return Tensor._wrap(self._data, self._device)

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
        return ops_apply(ops.Mul, self, self.dtype.type(1)) if self.requires_grad else \
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
            out = ops_apply(_Cast, out, _as_dtype(dtype))
        if dev is not None and device(dev) != self._device:
            out = out._move(device(dev))
        return out

    def _move(self, dev: device) -> "Tensor":
        # A copy across devices starts a new leaf; Module.to moves parameters in place.
        target = backends.get(dev.type)
        arr = target.from_numpy(_contiguous(self.numpy()))
        return Tensor._wrap(arr, dev, requires_grad=self.requires_grad)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device_index: int | None = None) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.to(float32)

    def double(self) -> "Tensor":
        return self.to(float64)

    def half(self) -> "Tensor":
        return self.to(float16)

    def long(self) -> "Tensor":
        return self.to(int64)

    def int(self) -> "Tensor":
        return self.to(int32)

    def bool(self) -> "Tensor":
        return self.to(bool_)

    def type(self, dtype=None):
        return str(self.dtype) if dtype is None else self.to(dtype)

    # ------------------------------------------------------------ arithmetic
    def _operand(self, other):
        if isinstance(other, Tensor):
            return other
        if isinstance(other, np.ndarray):
            return Tensor._wrap(self._backend.from_numpy(other.astype(self.dtype, copy=False)), self._device)
        if self.dtype.kind == "f" or isinstance(other, numbers.Integral):
            return self.dtype.type(other) if self.dtype.kind != "b" else other
        return np.float32(other)

    def __add__(self, other):
        return ops_apply(ops.Add, self, self._operand(other))

    def __radd__(self, other):
        return ops_apply(ops.Add, self, self._operand(other))

    def __sub__(self, other):
        return ops_apply(ops.Sub, self, self._operand(other))

    def __rsub__(self, other):
        return ops_apply(ops.Add, ops_apply(ops.Neg, self), self._operand(other))

    def __mul__(self, other):
        return ops_apply(ops.Mul, self, self._operand(other))

    def __rmul__(self, other):
        return ops_apply(ops.Mul, self, self._operand(other))

    def __truediv__(self, other):
        return ops_apply(ops.Div, self, self._operand(other))

    def __rtruediv__(self, other):
        return ops_apply(ops.Mul, self ** -1, self._operand(other))

    def __neg__(self):
        return ops_apply(ops.Neg, self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return (exponent * self.log()).exp()
        return ops_apply(ops.Pow, self, exponent)

    def __rpow__(self, base):
        return (self * float(np.log(base))).exp()

    def __matmul__(self, other):
        return ops_apply(ops.MatMul, self, self._operand(other))

    def __rmatmul__(self, other):
        return ops_apply(ops.MatMul, self._operand(other), self)

    # in place: the storage changes, the graph does not (as PyTorch, only outside autograd)
    def _inplace(self, fn, other) -> "Tensor":
        if is_grad_enabled() and self.requires_grad:
            raise RuntimeError("a tensor that requires grad cannot be changed in place while "
                               "autograd records; wrap the update in `with cnnlab.no_grad():`")
        o = other._data if isinstance(other, Tensor) else other
        r = fn(self._data, o)
        self._data[...] = r
        return self

    def __iadd__(self, other):
        return self._inplace(self._backend.add, other)

    def __isub__(self, other):
        return self._inplace(self._backend.subtract, other)

    def __imul__(self, other):
        return self._inplace(self._backend.multiply, other)

    def __itruediv__(self, other):
        return self._inplace(self._backend.divide, other)

    def add_(self, other, alpha: float = 1.0):
        return self._inplace(self._backend.add, other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha: float = 1.0):
        return self._inplace(self._backend.subtract, other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return self._inplace(self._backend.multiply, other)

    def div_(self, other):
        return self._inplace(self._backend.divide, other)

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        self._data[...] = value
        return self

    def copy_(self, src: "Tensor"):
        return self._inplace(lambda a, b: b, src._data if isinstance(src, Tensor) else src)

    def uniform_(self, a: float = 0.0, b: float = 1.0):
        self._data[...] = self._backend.random_uniform(_rng(), self.shape, a, b, self.dtype)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0):
        self._data[...] = self._backend.random_normal(_rng(), self.shape, mean, std, self.dtype)
        return self

    # comparisons give bool tensors outside the graph
    def _compare(self, fn, other):
        o = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(fn(self._data, o), self._device)

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(self._backend.equal, other)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(self._backend.not_equal, other)

    def __lt__(self, other):
        return self._compare(self._backend.less, other)

    def __le__(self, other):
        return self._compare(self._backend.less_equal, other)

    def __gt__(self, other):
        return self._compare(self._backend.greater, other)

    def __ge__(self, other):
        return self._compare(self._backend.greater_equal, other)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def __and__(self, other):
        return self._compare(self._backend.logical_and, other)

    def __or__(self, other):
        return self._compare(self._backend.logical_or, other)

    def __invert__(self):
        return Tensor._wrap(~self._data, self._device)

    # ---------------------------------------------------------- elementwise
    def exp(self):
        return ops_apply(ops.Exp, self)

    def log(self):
        return ops_apply(ops.Log, self)

    def sqrt(self):
        return self ** 0.5

    def abs(self):
        return ops_apply(ops.Abs, self)

    def pow(self, exponent):
        return self ** exponent

    def clamp(self, min=None, max=None):  # noqa: A002 - PyTorch's keyword names
        return ops_apply(ops.Clamp, self, min, max)

    clip = clamp

    def relu(self):
        from .nn import functional as F

        return F.relu(self)

    def sigmoid(self):
        from .nn import functional as F

        return F.sigmoid(self)

    def tanh(self):
        from .nn import functional as F

        return F.tanh(self)

    def softmax(self, dim: int):
        from .nn import functional as F

        return F.softmax(self, dim)

    def log_softmax(self, dim: int):
        from .nn import functional as F

        return F.log_softmax(self, dim)

    def matmul(self, other):
        return self @ other

    mm = matmul

    # ---------------------------------------------------------- reductions
    def _axes(self, dim) -> tuple | None:
        if dim is None:
            return None
        dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        for d in dims:
            if not -self.ndim <= d < max(self.ndim, 1):
                raise IndexError(f"dimension {d} is out of range for a {self.ndim}-d tensor")
        return tuple(d % max(self.ndim, 1) for d in dims)

    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        t = self if dtype is None else self.to(dtype)
        if t.dtype.kind == "b":
            t = t.to(int64)
        return ops_apply(ops.Sum, t, t._axes(dim), keepdim)

    def mean(self, dim=None, keepdim: bool = False):
        axes = self._axes(dim)
        count = self.numel() if axes is None else int(np.prod([self.shape[a] for a in axes]))
        t = self if self.dtype.kind == "f" else self.to(float32)
        return t.sum(dim, keepdim) / count

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False):
        axes = self._axes(dim)
        count = self.numel() if axes is None else int(np.prod([self.shape[a] for a in axes]))
        d = self - self.mean(dim, keepdim=True)
        return (d * d).sum(dim, keepdim) / max(count - int(unbiased), 1)

    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False):
        return self.var(dim, unbiased, keepdim).sqrt()

    def max(self, dim=None, keepdim: bool = False):
        if isinstance(dim, Tensor):  # torch.max(a, b): elementwise
            return ops_apply(ops.Where, (self._data >= dim._data), self, dim)
        if dim is None:
            return ops_apply(ops.Max, self, None, False)
        values = ops_apply(ops.Max, self, self._axes(dim), keepdim)
        return _MaxResult(values, self.argmax(dim, keepdim))

    def min(self, dim=None, keepdim: bool = False):
        if dim is None:
            return -ops_apply(ops.Max, -self, None, False)
        values = -ops_apply(ops.Max, -self, self._axes(dim), keepdim)
        return _MinResult(values, self.argmin(dim, keepdim))

    def argmax(self, dim=None, keepdim: bool = False):
        axis = None if dim is None else self._axes(dim)[0]
        return Tensor._wrap(self._backend.argmax(self._data, axis=axis, keepdims=keepdim and axis is not None),
                            self._device)

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
        return ops_apply(ops.Reshape, self, shape)

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
        return ops_apply(ops.Permute, self, tuple(d % self.ndim for d in dims))

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
        return ops_apply(ops.GetItem, self, index)

    def __setitem__(self, index, value) -> None:
        if is_grad_enabled() and self.requires_grad:
            raise RuntimeError("a tensor that requires grad cannot be assigned to in place while "
                               "autograd records; wrap it in `with cnnlab.no_grad():`")
        self._data[_raw_index(index)] = value._data if isinstance(value, Tensor) else value


class _GradFn:
    def __init__(self, fn):
        self.name = f"{fn.__name__}Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _raw_index(index):
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    return index


class _Cast(ops.Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return ctx.backend.astype(a, dtype)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.astype(g, ctx.dtype) if ctx.dtype.kind == "f" else None, None


def ops_apply(fn, *args, **kwargs) -> Tensor:
    return fn.apply(*args, **kwargs)


def _accumulate_grad(t: Tensor, g) -> None:
    B = t._backend
    if g.dtype != t.dtype:
        g = B.astype(g, t.dtype)
    if t.grad is None:
        # always a copy: one backward array may be handed to several leaves (a + b)
        t.grad = Tensor._wrap(B.copy(g), t._device)
    else:
        t.grad._data = B.add(t.grad._data, g)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from root, each after everything that depends on it."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._node is not None:
            for inp in t._node[2]:
                if isinstance(inp, Tensor) and inp.requires_grad and id(inp) not in seen:
                    stack.append((inp, False))
    order.reverse()
    return order


# ---------------------------------------------------------------------- RNG
_generator = np.random.default_rng(67280421310721)  # PyTorch's default CPU seed


def _rng() -> np.random.Generator:
    return _generator


def manual_seed(seed: int) -> np.random.Generator:
    """Seed cnnlab's global random generator (weights, randn, dropout, shuffling)."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def get_rng_state() -> dict:
    """The global generator's state (a JSON-able dict), for checkpoints."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state


def seed() -> int:
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s


# ---------------------------------------------------------------- factories
def _new(arr: np.ndarray, dtype, device, requires_grad) -> Tensor:
    dev = _CPU if device is None else globals()["device"](device)
    if dtype is not None:
        arr = arr.astype(_as_dtype(dtype), copy=False)
    t = Tensor._wrap(backends.get(dev.type).from_numpy(_contiguous(np.asarray(arr))), dev)
    return t.requires_grad_(requires_grad) if requires_grad else t


def _shape_args(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        return tuple(size[0])
    return tuple(size)


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
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if isinstance(data, np.ndarray) and device is None:
        return from_numpy(data if dtype is None else data.astype(_as_dtype(dtype), copy=False))
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (no copy when it is contiguous)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._wrap(_contiguous(array), _CPU)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(_shape_args(size), _as_dtype(dtype) or _default_float), None, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(_shape_args(size), _as_dtype(dtype) or _default_float), None, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(np.full(tuple(size), fill_value, _as_dtype(dtype) or _default_float), None, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=t.device)


def randn(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    g = generator or _rng()
    return _new(g.standard_normal(_shape_args(size)).astype(_as_dtype(dtype) or _default_float),
                None, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    g = generator or _rng()
    return _new(g.random(_shape_args(size)).astype(_as_dtype(dtype) or _default_float), None, device, requires_grad)


def randint(low: int, high: int | None = None, size: Sequence[int] = (), dtype=None, device=None,
            generator=None) -> Tensor:
    if high is None:
        low, high = 0, low
    g = generator or _rng()
    return _new(g.integers(low, high, size=tuple(size)), dtype or int64, device, False)


def randperm(n: int, device=None, generator=None) -> Tensor:
    return _new((generator or _rng()).permutation(n), int64, device, False)


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


def flatten(t: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return t.flatten(start_dim, end_dim)


def cat(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    tensors = list(tensors)
    return ops_apply(ops.Cat, dim % tensors[0].ndim, *tensors)


def stack(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def where(condition: Tensor, a: Tensor, b: Tensor) -> Tensor:
    cond = condition._data if isinstance(condition, Tensor) else condition
    if not isinstance(a, Tensor):
        a = b._operand(a)
    if not isinstance(b, Tensor):
        b = a._operand(b)
    return ops_apply(ops.Where, cond, a, b)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    return t.numel()
