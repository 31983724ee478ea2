"""Pooling layers: no parameters, just the window settings."""
from __future__ import annotations

from . import functional as F
from .stateless import FunctionalLayer


class _Pool(FunctionalLayer):
    shown = ("kernel_size", "stride", "padding")

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode


class MaxPool2d(_Pool):
    """Maximum over each kernel_size window; stride defaults to kernel_size.

    Shape: (N, C, H, W) -> (N, C, H_out, W_out), H_out = floor((H + 2p - d(k-1) - 1)/s) + 1
    (ceil instead of floor with ceil_mode=True).

    >>> nn.MaxPool2d(2, 2, 1)(cnnlab.zeros(1, 1, 12, 12)).shape
    cnnlab.Size([1, 1, 7, 7])
    """

    function = staticmethod(F.max_pool2d)
    settings = shown = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = dilation


class AvgPool2d(_Pool):
    """Mean over each window (count_include_pad=True counts padding zeros, as PyTorch)."""

    function = staticmethod(F.avg_pool2d)
    settings = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override


class SumPool2d(_Pool):
    """Sum over each window: seed 001's sum pooling (PyTorch has no such layer)."""

    function = staticmethod(F.sum_pool2d)
    settings = ("kernel_size", "stride", "padding", "ceil_mode")


class AdaptiveAvgPool2d(FunctionalLayer):
    """Average pooling to a fixed output size (the input must be a multiple of it)."""

    function = staticmethod(F.adaptive_avg_pool2d)
    settings = ("output_size",)

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size
