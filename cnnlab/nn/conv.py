"""Conv2d and ConvTranspose2d: hold the kernel and bias; `functional` does the maths."""
from __future__ import annotations

from typing import Sequence

from ..errors import LayerError, shape_str
from ..tensor import Tensor
from . import functional as F
from . import init
from .geometry import conv_transpose_output_size, pair
from .module import Module


class _ConvNd(Module):
    """What both convolutions share: argument checks, PyTorch's attributes, init and repr."""

    _kind = "Conv2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation, groups: int,
                 bias: bool, padding_mode: str, device, dtype, output_padding=0):
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise self._error(f"channel counts must be positive, got in_channels={in_channels}, "
                              f"out_channels={out_channels}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise self._error(f"groups must be a positive int, got {groups!r}")
        for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if n % groups:
                raise self._error(f"{what} must be divisible by groups, got {what}={n}, groups={groups}")
        if padding_mode != "zeros":
            raise self._error("only padding_mode='zeros' is supported")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", 1, self._error)
        self.stride = pair(stride, "stride", 1, self._error)
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", 0, self._error)
        self.dilation = pair(dilation, "dilation", 1, self._error)
        self.output_padding = pair(output_padding, "output_padding", 0, self._error)
        self.groups, self.padding_mode = groups, padding_mode
        self.transposed = isinstance(self, ConvTranspose2d)
        # PyTorch's layouts: (out, in/groups, kh, kw), transposed (in, out/groups, kh, kw)
        first, second = (in_channels, out_channels) if self.transposed else (out_channels, in_channels)
        init.add_weight_and_bias(self, (first, second // groups) + self.kernel_size, bias, dtype, device,
                                bias_size=out_channels)

    def _error(self, message: str) -> LayerError:
        return LayerError(self._kind, message)

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def _check_channels(self, input: Tensor) -> None:
        if isinstance(input, Tensor) and input.ndim in (3, 4):
            c = input.shape[-3]
            if c != self.in_channels:
                raise LayerError(self._kind.lower(), f"expected input with {self.in_channels} channels "
                                                     f"(in_channels={self.in_channels}), got {c} channels in "
                                                     f"input of shape {shape_str(input.shape)}")

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over an (N, C, H, W) batch.

    Args:
        in_channels, out_channels: C and K.
        kernel_size: int or (kh, kw).
        stride=1, padding=0 (int, pair, 'same' or 'valid'), dilation=1, groups=1, bias=True.

    Shape: (N, C, H, W) -> (N, K, H_out, W_out),
    H_out = floor((H + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1.
    Weight (K, C/groups, kh, kw) and bias (K,) start as PyTorch's, U(+-1/sqrt(C/groups*kh*kw)).
    With groups=g, each block of C/g input channels feeds its own K/g outputs.

    >>> conv = nn.Conv2d(3, 18, kernel_size=3, stride=1, padding=1)
    >>> conv(cnnlab.zeros(1, 3, 32, 32)).shape
    cnnlab.Size([1, 18, 32, 32])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        self._check_channels(input)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution ("deconvolution"), as PyTorch's: the gradient of Conv2d
    with respect to its input, used to upsample (a U-Net's or a GAN generator's decoder).

    Args:
        in_channels, out_channels: C and O.
        kernel_size: int or (kh, kw).
        stride=1, padding=0, output_padding=0, groups=1, bias=True, dilation=1.

    Shape: (N, C, H, W) -> (N, O, H_out, W_out),
    H_out = (H - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1.
    Weight (C, O/groups, kh, kw) and bias (O,) start as PyTorch's, U(+-1/sqrt(O/groups*kh*kw)).
    `forward(input, output_size)` picks output_padding to reach output_size, as PyTorch's does.

    >>> up = nn.ConvTranspose2d(16, 8, kernel_size=2, stride=2)
    >>> up(cnnlab.zeros(1, 16, 7, 7)).shape
    cnnlab.Size([1, 8, 14, 14])
    """

    _kind = "ConvTranspose2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros",
                 device=None, dtype=None):
        if isinstance(padding, str):
            raise LayerError(self._kind, f"padding must be an int or a pair, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype, output_padding)
        for axis, o, s, d in zip(("height", "width"), self.output_padding, self.stride, self.dilation):
            if o >= s and o >= d:
                raise self._error(f"output_padding must be smaller than either stride or dilation, got "
                                  f"output_padding {o} with stride {s} and dilation {d} along the {axis}")

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        self._check_channels(input)
        extra = self.output_padding if output_size is None else self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, extra, self.groups,
                                  self.dilation)

    def _output_padding(self, input: Tensor, output_size: Sequence[int]) -> tuple[int, int]:
        """The output_padding that gives output_size (its last two numbers): each of the
        `stride` sizes a convolution maps back to the input's size is reachable."""
        want = tuple(int(v) for v in output_size)[-2:]
        if len(want) != 2:
            raise self._error(f"output_size must have 2 (or 4) numbers, got {tuple(output_size)}")
        extra = []
        for n, w, k, s, p, d in zip(input.shape[-2:], want, self.kernel_size, self.stride, self.padding,
                                    self.dilation):
            least = conv_transpose_output_size(n, k, s, p, d)
            if not least <= w < least + s:
                raise self._error(f"requested an output size of {want}, but valid sizes range from "
                                  f"{least} to {least + s - 1} (for an input of {tuple(input.shape[-2:])})")
            extra.append(w - least)
        return extra[0], extra[1]
