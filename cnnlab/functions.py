"""PyTorch's top-level functions: `cnnlab.exp(x)` is `x.exp()`, `cnnlab.cat([a, b])` joins tensors.

Each is the tensor method of the same name (see cnnlab/tensor.py), written out so that
signatures and docstrings show in help() and editors.

>>> cnnlab.sum(cnnlab.ones(2, 3), dim=1)
tensor([3., 3.])
"""
from __future__ import annotations

from typing import Any, Iterable

from . import ops
from .tensor import Tensor, dim_aliases


# ------------------------------------------------------------------ elementwise
def exp(input: Tensor) -> Tensor:
    """e ** input, elementwise."""
    return input.exp()


def log(input: Tensor) -> Tensor:
    """Natural logarithm, elementwise."""
    return input.log()


def sqrt(input: Tensor) -> Tensor:
    """Square root, elementwise."""
    return input.sqrt()


def abs(input: Tensor) -> Tensor:  # noqa: A001 - PyTorch's name
    """Absolute value, elementwise."""
    return input.abs()


def clamp(input: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """input limited to [min, max] (either bound may be left out)."""
    return input.clamp(min, max)


def _elementwise(name: str, doc: str):
    """The top-level function `name(input)`, which is `input.name()` (d2l's library binds these)."""
    def fn(input: Tensor) -> Tensor:
        return getattr(input, name)()

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


# sin and cos are computed on the host (no backend kernel); sinh and cosh from exp
sin = _elementwise("sin", "Sine, elementwise.")
cos = _elementwise("cos", "Cosine, elementwise.")
sinh = _elementwise("sinh", "Hyperbolic sine, (e ** x - e ** -x) / 2.")
cosh = _elementwise("cosh", "Hyperbolic cosine, (e ** x + e ** -x) / 2.")


def relu(input: Tensor) -> Tensor:
    """max(input, 0), elementwise."""
    return input.relu()


def relu_(input: Tensor) -> Tensor:
    """max(input, 0) written into input."""
    return input.relu_()


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e ** -input), elementwise."""
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent, elementwise."""
    return input.tanh()


def softmax(input: Tensor, dim: int) -> Tensor:
    """exp(input) / sum(exp(input)) along dim."""
    return input.softmax(dim)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    """log(softmax(input)) along dim, computed stably."""
    return input.log_softmax(dim)


# ------------------------------------------------------------------- reductions
@dim_aliases
def sum(input: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    """Sum over dim (an int, a tuple, or None for all elements)."""
    return input.sum(dim, keepdim, dtype)


@dim_aliases
def mean(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Mean over dim (an int, a tuple, or None for all elements)."""
    return input.mean(dim, keepdim)


@dim_aliases
def var(input: Tensor, dim=None, unbiased: bool = True, keepdim: bool = False, *,
        correction: int | None = None) -> Tensor:
    """Variance over dim, by default with Bessel's correction (n - 1)."""
    return input.var(dim, unbiased, keepdim, correction=correction)


@dim_aliases
def std(input: Tensor, dim=None, unbiased: bool = True, keepdim: bool = False, *,
        correction: int | None = None) -> Tensor:
    """Standard deviation over dim: sqrt(var)."""
    return input.std(dim, unbiased, keepdim, correction=correction)


@dim_aliases
def prod(input: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Product over dim (outside the graph)."""
    return input.prod(dim, keepdim, dtype)


@dim_aliases
def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where every element along dim is non-zero."""
    return input.all(dim, keepdim)


@dim_aliases
def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where some element along dim is non-zero."""
    return input.any(dim, keepdim)


@dim_aliases
def max(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """The largest element; with dim, (values, indices) along it; with a tensor, the elementwise max."""
    return input.max(dim, keepdim)


@dim_aliases
def min(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """The smallest element; with dim, (values, indices) along it."""
    return input.min(dim, keepdim)


@dim_aliases
def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest element (of the flattened input when dim is None)."""
    return input.argmax(dim, keepdim)


@dim_aliases
def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the smallest element (of the flattened input when dim is None)."""
    return input.argmin(dim, keepdim)


# ----------------------------------------------------------------------- shapes
def reshape(input: Tensor, *shape) -> Tensor:
    """The same elements in another shape; one dimension may be -1."""
    return input.reshape(*shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Dimensions start_dim..end_dim merged into one."""
    return input.flatten(start_dim, end_dim)


def squeeze(input: Tensor, dim: int | None = None) -> Tensor:
    """input without its size-1 dimensions (or only dim, if it has size 1)."""
    return input.squeeze(dim)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """input with a new size-1 dimension at dim."""
    return input.unsqueeze(dim)


def permute(input: Tensor, *dims) -> Tensor:
    """input with its dimensions reordered: permute(x, (2, 0, 1))."""
    return input.permute(*dims)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """input with dimensions dim0 and dim1 swapped."""
    return input.transpose(dim0, dim1)


def t(input: Tensor) -> Tensor:
    """The transpose of a matrix (a 0-d or 1-d input is returned as is)."""
    return input.t()


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy's broadcasting rules: input @ other."""
    return input.matmul(other)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Matrix product of two matrices."""
    return input.mm(mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product of two 3-D tensors: (b, n, m) @ (b, m, p) -> (b, n, p)."""
    return input.bmm(mat2)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """beta * input + alpha * bmm(batch1, batch2)."""
    return input.baddbmm(batch1, batch2, beta=beta, alpha=alpha)


def einsum(equation: str, *operands: Tensor) -> Tensor:
    """Einstein summation, NumPy's and PyTorch's notation: einsum("bij,bjk->bik", a, b).

    Computed on the host; gradients for operands without '...' or a repeated letter.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    equation = equation.replace(" ", "")
    lhs, arrow, output = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise RuntimeError(f"einsum(): {equation!r} names {len(inputs)} operands, got {len(operands)}")
    if not arrow:  # implicit output: the letters that occur once, in alphabetical order
        letters = lhs.replace(",", "").replace(".", "")
        output = ("..." if "..." in lhs else "") + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return ops.Einsum.apply(*operands, equation=equation, inputs=tuple(inputs), output=output)


def meshgrid(*tensors: Tensor, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors: with indexing 'ij' (the default) output k varies along
    dimension k; 'xy' swaps the first two dimensions, as NumPy's meshgrid."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    flat = [t.reshape(-1) for t in tensors]
    if indexing == "xy" and len(flat) >= 2:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.numel() for t in flat)
    grids = [t.reshape(tuple(-1 if j == i else 1 for j in range(len(flat)))).expand(shape) for i, t in enumerate(flat)]
    if indexing == "xy" and len(grids) >= 2:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


# ----------------------------------------------------------- several tensors
def cat(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    """The tensors joined along dim (all other sizes equal)."""
    tensors = list(tensors)
    return ops.Cat.apply(*tensors, axis=dim % tensors[0].ndim)


def stack(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    """The tensors (all one shape) stacked along a new dimension dim."""
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def where(condition: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """a where condition holds, else b (either may be a number)."""
    cond = condition._data if isinstance(condition, Tensor) else condition
    if not isinstance(a, Tensor):
        a = b._operand(a)
    if not isinstance(b, Tensor):
        b = a._operand(b)
    return ops.Where.apply(a, b, cond=cond)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    """How many elements input holds."""
    return input.numel()
