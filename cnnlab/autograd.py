"""The tape: grad mode, `Function`, and the backward walk, all here.

Every differentiable op is a Function subclass (in cnnlab/ops.py and cnnlab/nn/functional*.py)
with `forward(ctx, *arrays, **options)` on backend arrays and `backward(ctx, grad)` returning
one gradient (or None) per positional input. `Function.apply(*inputs, **options)` runs
forward and, if some input needs a gradient, records `(Function, ctx, inputs)` on the
output: that record is the tape. `backward(root)` visits the tensors reachable from root,
each after everything computed from it, calls each record's backward and sums the
gradients that meet at a tensor; leaves keep theirs in `.grad`.

Positional inputs are tensors, None for an absent optional one (a bias), or constants
(the 2 in `x * 2`); axes, strides and flags are keyword options.
"""
from __future__ import annotations

import functools
import threading
from typing import Any

from .errors import shape_str

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


def set_grad_enabled(mode: bool) -> None:
    _state.enabled = bool(mode)


class no_grad:
    """Context manager and decorator that stops recording on the tape.

    >>> with no_grad():
    ...     y = model(x)          # y.requires_grad is False
    """

    def __enter__(self) -> None:
        self._prev = is_grad_enabled()
        set_grad_enabled(False)

    def __exit__(self, *exc: Any) -> None:
        set_grad_enabled(self._prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


class enable_grad(no_grad):
    def __enter__(self) -> None:
        self._prev = is_grad_enabled()
        set_grad_enabled(True)


class TensorBase:
    """The part of a tensor the tape reads; `cnnlab.Tensor` subclasses it and provides
    `_data` (the backend array), `_device`, `_backend`, `requires_grad`, `grad`,
    `_node` (the record of the op that made it, None for a leaf), `_retains_grad`,
    and `_wrap(array, device, requires_grad)`, which makes a new plain Tensor."""

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self) -> "GradFn | None":
        return None if self._node is None else GradFn(self._node[0])

    def retain_grad(self) -> None:
        self._retains_grad = True

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`; see `backward` below."""
        backward(self, gradient, retain_graph)


class GradFn:
    """What `tensor.grad_fn` shows: the name of the Function that made the tensor."""

    def __init__(self, fn: type):
        self.name = f"{fn.__name__}Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"


class Context:
    """What forward leaves for backward: saved arrays, the backend, flags."""

    __slots__ = ("saved", "backend", "needs_input_grad", "released", "__dict__")

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved = arrays


class Function:
    """Base class of differentiable ops: subclass and write forward and backward."""

    @staticmethod
    def forward(ctx: Context, *arrays: Any, **options: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **options: Any):
        """forward on the inputs' arrays, recorded on the output if an input needs a gradient."""
        ref = None  # the first tensor: the output takes its device and backend
        for t in inputs:
            if isinstance(t, TensorBase):
                if ref is None:
                    ref, device = t, t._device
                elif t._device is not device and t._device != device:
                    raise ValueError(f"{cls.__name__}: all tensors must be on one device, "
                                     f"got {device} and {t._device}")
        ctx = Context()
        ctx.backend = ref._backend
        ctx.needs_input_grad = tuple(isinstance(t, TensorBase) and t.requires_grad for t in inputs)
        out = cls.forward(ctx, *[t._data if isinstance(t, TensorBase) else t for t in inputs], **options)
        track = is_grad_enabled() and any(ctx.needs_input_grad)
        result = ref._wrap(out, device, track)
        if track:
            result._node = (cls, ctx, inputs)
        return result


def backward(root: TensorBase, gradient: Any = None, retain_graph: bool = False) -> None:
    """Walk the tape from root: `gradient` (a tensor or array of root's shape) is
    d(loss)/d(root), 1 by default for a single-element root."""
    if not root.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad and has no grad_fn "
                           "(did you compute it under no_grad(), or forget requires_grad=True?)")
    B = root._backend
    shape = tuple(root._data.shape)
    if gradient is None:
        if root._data.size != 1:
            raise RuntimeError(f"backward(): grad can be implicitly created only for scalar outputs, "
                               f"this tensor has shape {shape_str(shape)}; pass gradient=")
        gradient = B.full(shape, 1.0, root._data.dtype)
    elif isinstance(gradient, TensorBase):
        gradient = gradient._data
    else:
        gradient = B.asarray(gradient, root._data.dtype)
    if tuple(gradient.shape) != shape:
        raise ValueError(f"backward(): gradient has shape {shape_str(gradient.shape)}, expected {shape_str(shape)}")
    grads = {id(root): gradient}
    for t in _topological_order(root):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        if t._node is None or t._retains_grad:
            _accumulate(t, g)
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
            if gi is None or not isinstance(inp, TensorBase) or not inp.requires_grad:
                continue
            prev = grads.get(id(inp))
            grads[id(inp)] = gi if prev is None else B.add(prev, gi)


def _accumulate(t: TensorBase, g: Any) -> None:
    B = t._backend
    if g.dtype != t._data.dtype:
        g = B.astype(g, t._data.dtype)
    if t.grad is None:
        # always a copy: one backward array may be handed to several leaves (a + b)
        t.grad = t._wrap(B.copy(g), t._device)
    else:
        t.grad._data = B.add(t.grad._data, g)


def _topological_order(root: TensorBase) -> list[TensorBase]:
    """Tensors reachable from root, each before everything it was computed from."""
    order: list[TensorBase] = []
    seen: set[int] = set()
    stack: list[tuple[TensorBase, bool]] = [(root, False)]
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
                if isinstance(inp, TensorBase) and inp.requires_grad and id(inp) not in seen:
                    stack.append((inp, False))
    order.reverse()
    return order


def Variable(data: TensorBase, requires_grad: bool = False) -> TensorBase:  # noqa: N802 - PyTorch's name
    """PyTorch's pre-0.4 wrapper of a tensor, kept so old tutorials import: the tensor itself."""
    if not isinstance(data, TensorBase):
        raise TypeError(f"Variable wraps a Tensor, got {type(data).__name__}; use cnnlab.tensor(data)")
    return data.requires_grad_(requires_grad) if requires_grad else data
