"""Activation layers."""
from __future__ import annotations

from . import functional as F
from .stateless import FunctionalLayer


class ReLU(FunctionalLayer):
    """max(x, 0) elementwise. Shape: unchanged."""

    function = staticmethod(F.relu)

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace


class LeakyReLU(FunctionalLayer):
    """x if x > 0 else negative_slope * x."""

    function = staticmethod(F.leaky_relu)
    settings = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope


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
