"""The small value types that describe a tensor: dtypes (NumPy's), `Size` and `device`.

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
    return np.dtype(dtype)


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
