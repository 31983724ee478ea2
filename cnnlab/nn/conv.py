"""Conv2d: holds the kernel and bias; `functional.conv2d` does the maths."""
from __future__ import annotations

from ..errors import LayerError, shape_str
from ..tensor import Tensor
from . import functional as F
from . import init
from .geometry import pair
from .module import Module


def _conv_error(message: str) -> LayerError:
    return LayerError("Conv2d", message)


class Conv2d(Module):
    """2-D convolution (cross-correlation) over an (N, C, H, W) batch.

    Args:
        in_channels, out_channels: C and K.
        kernel_size: int or (kh, kw).
        stride=1, padding=0 (int, pair, 'same' or 'valid'), dilation=1, bias=True.

    Shape: (N, C, H, W) -> (N, K, H_out, W_out),
    H_out = floor((H + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1.
    Weight (K, C, kh, kw) and bias (K,) start as PyTorch's, U(+-1/sqrt(C*kh*kw)).

    >>> conv = nn.Conv2d(3, 18, kernel_size=3, stride=1, padding=1)
    >>> conv(cnnlab.zeros(1, 3, 32, 32)).shape
    cnnlab.Size([1, 18, 32, 32])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise LayerError("Conv2d", f"channel counts must be positive, got in_channels={in_channels}, "
                                       f"out_channels={out_channels}")
        if groups != 1 or padding_mode != "zeros":
            raise LayerError("Conv2d", "only groups=1 and padding_mode='zeros' are supported")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", 1, _conv_error)
        self.stride = pair(stride, "stride", 1, _conv_error)
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", 0, _conv_error)
        self.dilation = pair(dilation, "dilation", 1, _conv_error)
        self.groups = groups
        init.add_weight_and_bias(self, (out_channels, in_channels) + self.kernel_size, bias, dtype, device)

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if isinstance(input, Tensor) and input.ndim in (3, 4):
            c = input.shape[-3]
            if c != self.in_channels:
                raise LayerError("conv2d", f"expected input with {self.in_channels} channels "
                                           f"(in_channels={self.in_channels}), got {c} channels in input "
                                           f"of shape {shape_str(input.shape)}")
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        return s
