"""The shared body of parameter-free layers (activations, pooling): each is one call of
`nn.functional` with settings the layer stores, and PyTorch's repr lists those settings."""
from __future__ import annotations

from typing import Callable

from ..tensor import Tensor
from .module import Module


class FunctionalLayer(Module):
    """A layer without parameters: `forward(x)` is `function(x, *settings)`.

    A subclass sets `function` (a `staticmethod` of an `nn.functional` function),
    `settings` (the attribute names passed after the input, in order) and, when PyTorch's
    repr shows fewer or other names, `shown`.
    """

    function: Callable[..., Tensor]
    settings: tuple[str, ...] = ()
    shown: tuple[str, ...] | None = None

    def forward(self, input: Tensor) -> Tensor:
        return self.function(input, *(getattr(self, name) for name in self.settings))

    def extra_repr(self) -> str:
        names = self.settings if self.shown is None else self.shown
        return ", ".join(f"{name}={getattr(self, name)}" for name in names)
