"""Activation layers."""
from __future__ import annotations

from . import functional as F
from .stateless import FunctionalLayer


class ReLU(FunctionalLayer):
    """max(x, 0) elementwise. Shape: unchanged.

    inplace=True writes the result into the input (saving one activation's memory); the
    input must then be a tensor nothing else needs unchanged, as in PyTorch.
    """

    function = staticmethod(F.relu)
    settings = ("inplace",)
    shown = ()

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(FunctionalLayer):
    """x if x > 0 else negative_slope * x."""

    function = staticmethod(F.leaky_relu)
    settings = ("negative_slope", "inplace")

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(FunctionalLayer):
    function = staticmethod(F.sigmoid)


class Tanh(FunctionalLayer):
    function = staticmethod(F.tanh)


class Softmax(FunctionalLayer):
    """Probabilities along dim (exp(x) / sum exp(x))."""

    function = staticmethod(F.softmax)
    settings = ("dim",)

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim


class LogSoftmax(Softmax):
    function = staticmethod(F.log_softmax)
