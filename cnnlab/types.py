"""The small value types that describe a tensor: dtypes (NumPy's), `Size`, `device`, and
PyTorch's legacy tensor types (`FloatTensor`, `LongTensor` ...), which name a dtype.

>>> cnnlab.device("cuda:0") == "cuda"
True
"""
from __future__ import annotations

import numpy as np

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


def _device_or_cpu(spec: "str | device | None") -> device:
    # factories name their argument `device` as PyTorch does, which hides the class there
    return _CPU if spec is None else device(spec)


def _as_dtype(dtype) -> np.dtype | None:
    if dtype is None:
        return None
    if dtype is bool:
        return bool_
    if isinstance(dtype, LegacyTensorType):
        return dtype.dtype
    return np.dtype(dtype)


# ------------------------------------------------------------- legacy tensor types
# PyTorch's names for (dtype, CPU) pairs, from before dtypes existed; tutorials still write
# x.type(torch.FloatTensor), torch.LongTensor([1, 2]) and compare x.type() with 'torch.FloatTensor'
_LEGACY_NAMES = {float32: "FloatTensor", float64: "DoubleTensor", float16: "HalfTensor", int64: "LongTensor",
                 int32: "IntTensor", int16: "ShortTensor", int8: "CharTensor", uint8: "ByteTensor",
                 bool_: "BoolTensor"}


class LegacyTensorType(type):
    """The type of `cnnlab.FloatTensor` and its siblings: calling one makes a tensor of its dtype
    (`FloatTensor([1, 2])` from data, `FloatTensor(2, 3)` zeros of that shape), and
    `isinstance(x, cnnlab.FloatTensor)` is True for a float32 CPU tensor."""

    dtype: np.dtype

    def __call__(cls, *args, device=None):
        from .tensor import Tensor  # tensor.py imports this module

        if len(args) == 1 and not isinstance(args[0], (int, np.integer, Size)):
            data = args[0]
            if isinstance(data, Tensor) and data.dtype != cls.dtype:
                raise TypeError(f"{cls.__name__}(tensor) needs a {cls.dtype} tensor, got {data.dtype}; "
                                f"convert with x.type(cnnlab.{cls.__name__}) or x.to(cnnlab.{cls.dtype})")
            return Tensor._from_host(np.array(data, dtype=cls.dtype), device)
        shape = tuple(args[0]) if len(args) == 1 and isinstance(args[0], Size) else args or (0,)
        # PyTorch leaves the memory uninitialised; zeros are the same shape and reproducible
        return Tensor._from_host(np.zeros(tuple(int(n) for n in shape), cls.dtype), device)

    def __instancecheck__(cls, obj) -> bool:
        return getattr(obj, "dtype", None) == cls.dtype and getattr(obj, "is_cuda", True) is False

    def __repr__(cls) -> str:
        return f"<class 'cnnlab.{cls.__name__}'>"


LEGACY_TYPES = {name: LegacyTensorType(name, (), {"dtype": dt}) for dt, name in _LEGACY_NAMES.items()}


def legacy_type_name(dtype: np.dtype, device_type: str) -> str:
    """`x.type()`'s answer, spelled as PyTorch's so that tutorial comparisons hold: 'torch.FloatTensor',
    'torch.cuda.LongTensor'."""
    return f"torch.{'cuda.' if device_type == 'cuda' else ''}{_LEGACY_NAMES[np.dtype(dtype)]}"


def dtype_of_type_name(name: str) -> np.dtype:
    """The dtype that `x.type('torch.LongTensor')` (or 'cnnlab.LongTensor', 'torch.cuda.LongTensor') asks for."""
    short = name.rpartition(".")[2]
    if short not in LEGACY_TYPES:
        raise ValueError(f"invalid type: {name!r}; expected a name such as 'torch.FloatTensor' "
                         f"(one of {', '.join(sorted(LEGACY_TYPES))})")
    return LEGACY_TYPES[short].dtype


def promote(a, b, true_divide: bool = False) -> tuple:
    """The operands of `a <op> b` (a a tensor, b a tensor or a NumPy number) cast to PyTorch's
    result type where NumPy's differs: a float with an integer or bool keeps the float's
    dtype (float32 + int64 is float32, not float64), and integers divided give the default float."""
    b_tensor = not isinstance(b, (np.generic, int, float, bool))
    b_float = b.dtype.kind == "f" if b_tensor else isinstance(b, (float, np.floating))
    if a.dtype.kind == "f":
        return a, (b.to(a.dtype) if b_tensor and not b_float else b)
    if not (b_float or true_divide):
        return a, b
    target = b.dtype if b_tensor and b_float else _default_float
    a = a.to(target)
    if not b_tensor:
        b = target.type(b)
    elif not b_float:
        b = b.to(target)
    return a, b
