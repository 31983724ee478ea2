"""The tape: `Function` (forward/backward with a context) and `no_grad`.

Every differentiable op is a Function subclass. `forward(ctx, *arrays, **kw)`
works on raw backend arrays and returns one array; `backward(ctx, grad)` returns
one gradient array (or None) per tensor input. `Function.apply` wraps the
result in a Tensor that remembers the Function, the context and its parents, so
`Tensor.backward()` can walk the graph in reverse topological order.
"""
from __future__ import annotations

import functools
import threading
from typing import Any

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


class Context:
    """What forward leaves for backward: saved arrays, the backend, flags."""

    __slots__ = ("saved", "backend", "needs_input_grad", "__dict__")

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved = arrays


class Function:
    """Base class of differentiable ops: subclass and write forward and backward."""

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **kwargs: Any):
        from .tensor import Tensor

        tensors = [t for t in inputs if isinstance(t, Tensor)]
        ref = tensors[0]
        device = ref.device
        for t in tensors[1:]:
            if t.device != device:
                raise ValueError(
                    f"{cls.__name__}: all tensors must be on one device, got {device} and {t.device}"
                )
        ctx = Context()
        ctx.backend = ref._backend
        ctx.needs_input_grad = tuple(isinstance(t, Tensor) and t.requires_grad for t in inputs)
        raw = [t._data if isinstance(t, Tensor) else t for t in inputs]
        out = cls.forward(ctx, *raw, **kwargs)
        track = is_grad_enabled() and any(ctx.needs_input_grad)
        result = Tensor._wrap(out, device, requires_grad=track)
        if track:
            result._node = (cls, ctx, inputs)
        return result


def Variable(data, requires_grad: bool = False):  # noqa: N802 - PyTorch's (deprecated) name
    """PyTorch's pre-0.4 wrapper, kept so old tutorials import: returns a Tensor."""
    from .tensor import Tensor

    t = data if isinstance(data, Tensor) else Tensor(data)
    return t.requires_grad_(requires_grad) if requires_grad else t
