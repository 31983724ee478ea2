"""Convolution, padding and pooling: the sliding-window half of `cnnlab.nn.functional`.

Each public function checks its arguments (raising `LayerError` naming the op), turns
int-or-pair arguments into pairs and works out the output size with cnnlab/nn/geometry.py,
then applies a Function whose forward and backward call the backend's kernels
(`conv2d_forward` / `conv2d_backward` ... in cnnlab/backends/). All are re-exported by
`cnnlab.nn.functional`. conv2d and conv_transpose2d share one Function, which also runs
grouped convolutions block by block.
"""
from __future__ import annotations

import functools
import numbers
from typing import Sequence

from ..autograd import Function, is_grad_enabled
from ..errors import LayerError, shape_str
from ..tensor import Tensor
from .geometry import IntOrPair, conv_output_size, conv_transpose_output_size, pair, window_span

_KERNEL_DTYPES = ("float32", "float64")


def _pairs(op: str, **values: tuple[IntOrPair, int]) -> list[tuple[int, int]]:
    """Each (value, minimum) as a pair; a bad one raises a LayerError naming op and argument."""
    error = functools.partial(LayerError, op)
    return [pair(value, what, minimum, error) for what, (value, minimum) in values.items()]


def _check_image(op: str, x: Tensor, what: str = "input") -> None:
    if not isinstance(x, Tensor):
        raise LayerError(op, f"expected a Tensor as {what}, got {type(x).__name__}")
    if x.ndim != 4:
        raise LayerError(op, f"expected a 4-D {what} [N, C, H, W] (or 3-D [C, H, W]), "
                             f"got a {x.ndim}-D tensor of shape {shape_str(x.shape)}")
    if x.dtype.name not in _KERNEL_DTYPES:
        raise LayerError(op, f"expected a float32 (or float64) {what}, got {x.dtype}; "
                             f"convert it with .float()")


def _batched(x: Tensor):
    """PyTorch accepts unbatched (C, H, W) images: add a batch axis and remember to drop it."""
    if isinstance(x, Tensor) and x.ndim == 3:
        return x.unsqueeze(0), True
    return x, False


def _spatial_out(op, x_hw, kernel, stride, padding, dilation, ceil_mode=False):
    out = []
    for axis, n, k, s, p, d in zip("HW", x_hw, kernel, stride, padding, dilation):
        span = window_span(k, d)
        if n + 2 * p < span:
            dil = f" (kernel {k} dilated by {d})" if d > 1 else ""
            raise LayerError(op, f"input is {x_hw[0]}x{x_hw[1]}, padded {x_hw[0] + 2 * padding[0]}x"
                                 f"{x_hw[1] + 2 * padding[1]}, which is smaller than the "
                                 f"{span}-wide window{dil} along {axis}")
        out.append(conv_output_size(n, k, s, p, d, ceil_mode))
    return tuple(out)


# ---------------------------------------------------------------------------- conv
class _Conv2d(Function):
    """conv2d, or with `transposed` conv_transpose2d, as `groups` independent convolutions
    side by side: the input's channels, the weight's first axis and the output's channels
    split into `groups` equal blocks, block i of the input meeting block i of the weight.
    Each block runs through the backend's ungrouped kernels (a ResNeXt block's 32 groups
    are 32 small convolutions), so grouping adds no kernel to the backend contract."""

    @staticmethod
    def forward(ctx, x, w, b, *, transposed, groups, stride, padding, dilation, out_hw):
        B = ctx.backend
        x, w = B.ascontiguous(x), B.ascontiguous(w)
        keep = is_grad_enabled() and ctx.needs_input_grad[1]
        results = []
        for xg, wg, bg in zip(_blocks(B, x, groups, 1), _blocks(B, w, groups, 0), _blocks(B, b, groups, 0)):
            if transposed:
                results.append(B.conv_transpose2d_forward(xg, wg, bg, stride, padding, dilation, out_hw))
            else:
                results.append(B.conv2d_forward(xg, wg, bg, stride, padding, dilation, out_hw, keep_columns=keep))
        ctx.save_for_backward(x, w)
        ctx.params = (stride, padding, dilation)
        ctx.transposed, ctx.groups, ctx.columns = transposed, groups, [r[1] for r in results]
        return _joined(B, [r[0] for r in results], 1)

    @staticmethod
    def backward(ctx, g):
        B = ctx.backend
        x, w = ctx.saved
        need, n = ctx.needs_input_grad, ctx.groups
        kernel = B.conv_transpose2d_backward if ctx.transposed else B.conv2d_backward
        grads = [kernel(xg, wg, gg, cols, *ctx.params, *need) for xg, wg, gg, cols in
                 zip(_blocks(B, x, n, 1), _blocks(B, w, n, 0), _blocks(B, B.ascontiguous(g), n, 1), ctx.columns)]
        ctx.columns = None
        return tuple(_joined(B, [d[i] for d in grads], axis) if need[i] else None
                     for i, axis in enumerate((1, 0, 0)))


def _blocks(B, a, groups: int, axis: int) -> list:
    """a split into `groups` equal contiguous blocks along axis ([None]*groups for no bias)."""
    if a is None or groups == 1:
        return [a] * groups
    size = a.shape[axis] // groups
    return [B.ascontiguous(part) for part in B.split(a, [i * size for i in range(1, groups)], axis)]


def _joined(B, parts: list, axis: int):
    return parts[0] if len(parts) == 1 else B.concatenate(parts, axis)


def _check_conv(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, groups: int, transposed: bool) -> int:
    """PyTorch's checks on a (transposed) convolution's tensors; returns the output channels."""
    _check_image(op, x)
    layout = "in_channels, out_channels/groups" if transposed else "out_channels, in_channels/groups"
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        raise LayerError(op, f"expected a 4-D weight [{layout}, kh, kw], got "
                             f"{shape_str(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}")
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise LayerError(op, f"groups must be a positive int, got {groups!r}")
    first, second = weight.shape[:2]
    if first % groups:
        raise LayerError(op, f"groups={groups} must divide the weight's first dimension, got weight of "
                             f"size {shape_str(weight.shape)}")
    c = first if transposed else second * groups
    if x.shape[1] != c:
        grouped = f" (groups={groups})" if groups > 1 else ""
        raise LayerError(op, f"expected input with {c} channels (weight {shape_str(weight.shape)}{grouped}), "
                             f"got {x.shape[1]} channels in input of shape {shape_str(x.shape)}")
    if x.dtype != weight.dtype:
        raise LayerError(op, f"input is {x.dtype} but the weight is {weight.dtype}; "
                             f"convert one of them (e.g. model.double() or x.float())")
    k = second * groups if transposed else first
    if bias is not None and tuple(bias.shape) != (k,):
        raise LayerError(op, f"expected bias of shape [{k}], got {shape_str(bias.shape)}")
    return k


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
           padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation, as PyTorch's `F.conv2d`.

    Shape: input (N, C, H, W) or (C, H, W); weight (K, C/groups, kh, kw); bias (K,);
    output (N, K, H_out, W_out) with
    H_out = floor((H + 2*padding - dilation*(kh - 1) - 1) / stride) + 1.
    With groups=g the channels split into g blocks convolved separately (K divisible by g).

    >>> x = cnnlab.arange(9.).view(1, 1, 3, 3)
    >>> F.conv2d(x, cnnlab.tensor([[[[0., 1.], [2., 3.]]]]))
    tensor([[[[19., 25.],
              [37., 43.]]]])
    """
    op = "conv2d"
    x, unbatched = _batched(input)
    _check_conv(op, x, weight, bias, groups, transposed=False)
    kh, kw = weight.shape[2:]
    st, dil = _pairs(op, stride=(stride, 1), dilation=(dilation, 1))
    if isinstance(padding, str):
        x, pad = _string_padding(op, x, padding, (kh, kw), st, dil)
    else:
        [pad] = _pairs(op, padding=(padding, 0))
    out_hw = _spatial_out(op, x.shape[2:], (kh, kw), st, pad, dil)
    y = _Conv2d.apply(x, weight, bias, transposed=False, groups=int(groups), stride=st, padding=pad,
                      dilation=dil, out_hw=out_hw)
    return y.squeeze(0) if unbatched else y


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
                     padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1,
                     dilation: IntOrPair = 1) -> Tensor:
    """2-D transposed convolution, as PyTorch's `F.conv_transpose2d` (note: groups before dilation).

    Each input cell adds itself times the kernel to the output, windows `stride` apart;
    then `padding` is cropped from every side and `output_padding` cells kept at the
    bottom and right. It is the gradient of conv2d with respect to its input.

    Shape: input (N, C, H, W) or (C, H, W); weight (C, O/groups, kh, kw); bias (O,);
    output (N, O, H_out, W_out) with
    H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1.

    >>> x = cnnlab.tensor([[[[1., 2.]]]])
    >>> F.conv_transpose2d(x, cnnlab.ones(1, 1, 1, 3), stride=2)
    tensor([[[[1., 1., 3., 2., 2.]]]])
    """
    op = "conv_transpose2d"
    x, unbatched = _batched(input)
    _check_conv(op, x, weight, bias, groups, transposed=True)
    if isinstance(padding, str):
        raise LayerError(op, f"padding must be an int or a pair for a transposed convolution, got {padding!r}")
    kernel = tuple(weight.shape[2:])
    st, pad, opad, dil = _pairs(op, stride=(stride, 1), padding=(padding, 0), output_padding=(output_padding, 0),
                                dilation=(dilation, 1))
    out_hw = _transposed_out(op, x.shape[2:], kernel, st, pad, opad, dil)
    y = _Conv2d.apply(x, weight, bias, transposed=True, groups=int(groups), stride=st, padding=pad,
                      dilation=dil, out_hw=out_hw)
    return y.squeeze(0) if unbatched else y


def _transposed_out(op, x_hw, kernel, stride, padding, output_padding, dilation):
    for axis, op_, s, d in zip(("height", "width"), output_padding, stride, dilation):
        if op_ >= s and op_ >= d:
            raise LayerError(op, f"output_padding must be smaller than either stride or dilation, got "
                                 f"output_padding {op_} with stride {s} and dilation {d} along the {axis}")
    out = tuple(conv_transpose_output_size(n, k, s, p, d, o)
                for n, k, s, p, d, o in zip(x_hw, kernel, stride, padding, dilation, output_padding))
    if min(out) < 1:
        raise LayerError(op, f"input is {x_hw[0]}x{x_hw[1]} and the output would be {out[0]}x{out[1]}: "
                             f"padding {padding} crops more than the {kernel[0]}x{kernel[1]} kernel adds")
    return out


def _string_padding(op, x, mode, kernel, stride, dilation):
    if mode == "valid":
        return x, (0, 0)
    if mode != "same":
        raise LayerError(op, f"padding must be an int, a pair, 'same' or 'valid', got {mode!r}")
    if stride != (1, 1):
        raise LayerError(op, f"padding='same' needs stride 1, got stride {stride}")
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    sym = tuple(t // 2 for t in totals)
    extra = [t - 2 * s for t, s in zip(totals, sym)]
    if any(extra):  # even kernels: PyTorch puts the odd pixel on the bottom/right
        x = pad(x, (0, extra[1], 0, extra[0]))
    return x, sym


# ------------------------------------------------------------------------ padding
class _Pad2d(Function):
    @staticmethod
    def forward(ctx, x, *, widths, value):
        ctx.widths = widths
        return ctx.backend.pad2d(x, *widths, value)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.unpad2d(g, *ctx.widths)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Constant padding of the last one or two axes: pad=(left, right[, top, bottom])."""
    if mode != "constant":
        raise LayerError("pad", f"only mode='constant' is supported, got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        pad = pad + (0, 0)
    if len(pad) != 4 or min(pad) < 0:
        raise LayerError("pad", f"expected 2 or 4 non-negative widths, got {pad}")
    left, right, top, bottom = pad
    return _Pad2d.apply(input, widths=(top, bottom, left, right), value=value)


# ------------------------------------------------------------------------ pooling
class _MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding, dilation, out_hw):
        B = ctx.backend
        x = B.ascontiguous(x)
        y, ctx.arg = B.max_pool2d_forward(x, kernel, stride, padding, dilation, out_hw)
        ctx.save_for_backward(x, y)
        ctx.params = (kernel, stride, padding, dilation)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        return ctx.backend.max_pool2d_backward(g, x, y, ctx.arg, *ctx.params)


class _AvgPool2d(Function):
    """Mean (or, with summing, sum) over each window; divisor 0 means the window's own count."""

    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding, out_hw, include_pad, divisor, summing):
        ctx.args = (kernel, stride, padding, include_pad, divisor, summing)
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return ctx.backend.avg_pool2d_forward(ctx.backend.ascontiguous(x), kernel, stride, padding, out_hw,
                                              include_pad, divisor, summing)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.avg_pool2d_backward(g, ctx.shape, ctx.dtype, *ctx.args)


def _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    _check_image(op, x)
    if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0):
        stride = kernel_size
    kernel, st, pad_, dil = _pairs(op, kernel_size=(kernel_size, 1), stride=(stride, 1), padding=(padding, 0),
                                   dilation=(dilation, 1))
    for p, k, d in zip(pad_, kernel, dil):
        if p > window_span(k, d) // 2:
            raise LayerError(op, f"padding {padding} is more than half the window ({kernel_size}); "
                                 f"PyTorch forbids it because a window could then see only padding")
    out_hw = _spatial_out(op, x.shape[2:], kernel, st, pad_, dil, ceil_mode)
    return kernel, st, pad_, dil, out_hw


def max_pool2d(input: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """Maximum over each window. Shape: (N, C, H, W) -> (N, C, H_out, W_out), stride defaults to kernel_size.

    >>> F.max_pool2d(cnnlab.zeros(1, 1, 12, 12), 2, 2, 1).shape   # seed 004's MaxPool2d(2, 2, 1)
    cnnlab.Size([1, 1, 7, 7])
    """
    x, unbatched = _batched(input)
    kernel, st, pad_, dil, out_hw = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    y = _MaxPool2d.apply(x, kernel=kernel, stride=st, padding=pad_, dilation=dil, out_hw=out_hw)
    if return_indices:
        raise LayerError("max_pool2d", "return_indices=True is not supported")
    return y.squeeze(0) if unbatched else y


def avg_pool2d(input: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each window (padding zeros counted unless count_include_pad=False)."""
    x, unbatched = _batched(input)
    kernel, st, pad_, _, out_hw = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    y = _AvgPool2d.apply(x, kernel=kernel, stride=st, padding=pad_, out_hw=out_hw, include_pad=count_include_pad,
                         divisor=divisor_override or 0, summing=False)
    return y.squeeze(0) if unbatched else y


def sum_pool2d(input: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, ceil_mode: bool = False) -> Tensor:
    """Sum over each window (seed 001's sum pooling; PyTorch has no such layer)."""
    x, unbatched = _batched(input)
    kernel, st, pad_, _, out_hw = _pool_args("sum_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    y = _AvgPool2d.apply(x, kernel=kernel, stride=st, padding=pad_, out_hw=out_hw, include_pad=True, divisor=0,
                         summing=True)
    return y.squeeze(0) if unbatched else y


def adaptive_avg_pool2d(input: Tensor, output_size: IntOrPair) -> Tensor:
    """Average pooling to a fixed output size; the input size must be a multiple of it."""
    x, unbatched = _batched(input)
    _check_image("adaptive_avg_pool2d", x)
    [out] = _pairs("adaptive_avg_pool2d", output_size=(output_size, 1))
    h, w = x.shape[2:]
    if h % out[0] or w % out[1]:
        raise LayerError("adaptive_avg_pool2d", f"input {h}x{w} is not a multiple of output size "
                                                f"{out[0]}x{out[1]} (only that case is supported)")
    k = (h // out[0], w // out[1])
    y = avg_pool2d(x, k, k)
    return y.squeeze(0) if unbatched else y
