"""`cnnlab.nn.functional`: the maths of every layer, with PyTorch's signatures.

Each public function checks its arguments (raising `LayerError`, a ValueError
that names what was expected and what came) and then applies a Function whose
forward and backward call the tensor's backend.

Output size of a convolution or pooling along one axis, the formula used
everywhere here::

    out = floor((n + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1
"""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..errors import LayerError, shape_str
from ..tensor import Tensor, _rng

IntOrPair = int | Sequence[int]


def _pair(value, op: str, what: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, numbers.Integral):
        pair = (int(value), int(value))
    else:
        pair = tuple(int(v) for v in value)
        if len(pair) != 2:
            raise LayerError(op, f"{what} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        kind = "positive" if minimum > 0 else "non-negative"
        raise LayerError(op, f"{what} must be {kind}, got {value!r}")
    return pair  # type: ignore[return-value]


def conv_output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """floor((n + 2p - d(k-1) - 1) / s) + 1, or with ceil as pooling's ceil_mode (PyTorch's rule)."""
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p:  # the last window must start inside the input or left padding
        out -= 1
    return out


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
        span = d * (k - 1) + 1
        if n + 2 * p < span:
            dil = f" (kernel {k} dilated by {d})" if d > 1 else ""
            raise LayerError(op, f"input is {x_hw[0]}x{x_hw[1]}, padded {x_hw[0] + 2 * padding[0]}x"
                                 f"{x_hw[1] + 2 * padding[1]}, which is smaller than the "
                                 f"{span}-wide window{dil} along {axis}")
        out.append(conv_output_size(n, k, s, p, d, ceil_mode))
    return tuple(out)


# ---------------------------------------------------------------------------- conv
class _Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, out_hw):
        B = ctx.backend
        x, w = B.ascontiguous(x), B.ascontiguous(w)
        keep = is_grad_enabled() and ctx.needs_input_grad[1]
        y, ctx.columns = B.conv2d_forward(x, w, b, stride, padding, dilation, out_hw, keep_columns=keep)
        ctx.save_for_backward(x, w)
        ctx.params = (stride, padding, dilation)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        need = ctx.needs_input_grad
        dx, dw, db = ctx.backend.conv2d_backward(x, w, ctx.backend.ascontiguous(g), ctx.columns, *ctx.params,
                                                 need[0], need[1], need[2])
        ctx.columns = None
        return dx, dw, db, None, None, None, None


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
           padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation, as PyTorch's `F.conv2d`.

    Shape: input (N, C, H, W) or (C, H, W); weight (K, C, kh, kw); bias (K,);
    output (N, K, H_out, W_out) with
    H_out = floor((H + 2*padding - dilation*(kh - 1) - 1) / stride) + 1.

    >>> x = cnnlab.arange(9.).view(1, 1, 3, 3)
    >>> F.conv2d(x, cnnlab.tensor([[[[0., 1.], [2., 3.]]]]))
    tensor([[[[19., 25.],
              [37., 43.]]]])
    """
    op = "conv2d"
    x, unbatched = _batched(input)
    _check_image(op, x)
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        raise LayerError(op, f"expected a 4-D weight [out_channels, in_channels, kh, kw], got "
                             f"{shape_str(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}")
    if groups != 1:
        raise LayerError(op, f"groups={groups} is not supported yet (only groups=1)")
    k, c, kh, kw = weight.shape
    if x.shape[1] != c:
        raise LayerError(op, f"expected input with {c} channels (weight {shape_str(weight.shape)}), "
                             f"got {x.shape[1]} channels in input of shape {shape_str(x.shape)}")
    if x.dtype != weight.dtype:
        raise LayerError(op, f"input is {x.dtype} but the weight is {weight.dtype}; "
                             f"convert one of them (e.g. model.double() or x.float())")
    if bias is not None and tuple(bias.shape) != (k,):
        raise LayerError(op, f"expected bias of shape [{k}], got {shape_str(bias.shape)}")
    st = _pair(stride, op, "stride", 1)
    dil = _pair(dilation, op, "dilation", 1)
    if isinstance(padding, str):
        x, pad = _string_padding(op, x, padding, (kh, kw), st, dil)
    else:
        pad = _pair(padding, op, "padding", 0)
    out_hw = _spatial_out(op, x.shape[2:], (kh, kw), st, pad, dil)
    y = _Conv2d.apply(x, weight, bias, st, pad, dil, out_hw)
    return y.squeeze(0) if unbatched else y


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
    def forward(ctx, x, widths, value):
        ctx.widths = widths
        return ctx.backend.pad2d(x, *widths, value)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.unpad2d(g, *ctx.widths), None, None


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
    return _Pad2d.apply(input, (top, bottom, left, right), value)


# ------------------------------------------------------------------------ pooling
class _MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, out_hw):
        B = ctx.backend
        x = B.ascontiguous(x)
        y, ctx.arg = B.max_pool2d_forward(x, kernel, stride, padding, dilation, out_hw)
        ctx.save_for_backward(x, y)
        ctx.params = (kernel, stride, padding, dilation)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        return ctx.backend.max_pool2d_backward(g, x, y, ctx.arg, *ctx.params), None, None, None, None, None


class _AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, out_hw, include_pad, divisor, summing):
        ctx.args = (kernel, stride, padding, include_pad, divisor, summing)
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return ctx.backend.avg_pool2d_forward(ctx.backend.ascontiguous(x), kernel, stride, padding, out_hw,
                                              include_pad, divisor, summing)

    @staticmethod
    def backward(ctx, g):
        dx = ctx.backend.avg_pool2d_backward(g, ctx.shape, ctx.dtype, *ctx.args)
        return (dx,) + (None,) * 7


def _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    _check_image(op, x)
    kernel = _pair(kernel_size, op, "kernel_size", 1)
    st = kernel if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) \
        else _pair(stride, op, "stride", 1)
    pad_ = _pair(padding, op, "padding", 0)
    dil = _pair(dilation, op, "dilation", 1)
    for p, k, d in zip(pad_, kernel, dil):
        if p > (d * (k - 1) + 1) // 2:
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
    y = _MaxPool2d.apply(x, kernel, st, pad_, dil, out_hw)
    if return_indices:
        raise LayerError("max_pool2d", "return_indices=True is not supported")
    return y.squeeze(0) if unbatched else y


def avg_pool2d(input: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each window (padding zeros counted unless count_include_pad=False)."""
    x, unbatched = _batched(input)
    kernel, st, pad_, _, out_hw = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    y = _AvgPool2d.apply(x, kernel, st, pad_, out_hw, count_include_pad, divisor_override or 0, False)
    return y.squeeze(0) if unbatched else y


def sum_pool2d(input: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, ceil_mode: bool = False) -> Tensor:
    """Sum over each window (seed 001's sum pooling; PyTorch has no such layer)."""
    x, unbatched = _batched(input)
    kernel, st, pad_, _, out_hw = _pool_args("sum_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    y = _AvgPool2d.apply(x, kernel, st, pad_, out_hw, True, 0, True)
    return y.squeeze(0) if unbatched else y


def adaptive_avg_pool2d(input: Tensor, output_size: IntOrPair) -> Tensor:
    """Average pooling to a fixed output size; the input size must be a multiple of it."""
    x, unbatched = _batched(input)
    _check_image("adaptive_avg_pool2d", x)
    out = _pair(output_size, "adaptive_avg_pool2d", "output_size", 1)
    h, w = x.shape[2:]
    if h % out[0] or w % out[1]:
        raise LayerError("adaptive_avg_pool2d", f"input {h}x{w} is not a multiple of output size "
                                                f"{out[0]}x{out[1]} (only that case is supported)")
    k = (h // out[0], w // out[1])
    y = avg_pool2d(x, k, k)
    return y.squeeze(0) if unbatched else y


# ------------------------------------------------------------------------- linear
class _Linear(Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return ctx.backend.linear_forward(x, w, b)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        need = ctx.needs_input_grad
        return ctx.backend.linear_backward(x, w, g, need[0], need[1], need[2])


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b. Shape: (*, in_features) -> (*, out_features)."""
    op = "linear"
    if not isinstance(input, Tensor):
        raise LayerError(op, f"expected a Tensor, got {type(input).__name__}")
    out_f, in_f = weight.shape
    if input.ndim == 0 or input.shape[-1] != in_f:
        hint = ""
        if input.ndim > 2:
            hint = " (flatten it first, e.g. x.view(x.size(0), -1))"
        elif input.ndim == 2 and input.numel() % in_f == 0:
            hint = f" (a view(-1, {in_f}) upstream may have mixed up the batch)"
        raise LayerError(op, f"expected input with {in_f} features in its last dimension, "
                             f"got shape {shape_str(input.shape)}{hint}")
    if input.dtype != weight.dtype:
        raise LayerError(op, f"input is {input.dtype} but the weight is {weight.dtype}")
    if input.ndim > 2:
        lead = input.shape[:-1]
        return linear(input.reshape(-1, in_f), weight, bias).reshape(*lead, out_f)
    return _Linear.apply(input, weight, bias)


# -------------------------------------------------------------------- activations
class _ReLU(Function):
    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return ctx.backend.relu_forward(x, slope)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.relu_backward(g, ctx.saved[0], ctx.slope), None


class _Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.sigmoid_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.sigmoid_backward(g, ctx.saved[0]),)


class _Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.tanh_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.tanh_backward(g, ctx.saved[0]),)


_KERNEL_DTYPES = ("float32", "float64")


def _float_input(op: str, x) -> None:
    if not isinstance(x, Tensor):
        raise LayerError(op, f"expected a Tensor, got {type(x).__name__}")
    if x.dtype.name not in _KERNEL_DTYPES:
        raise LayerError(op, f"expected a float32 (or float64) tensor, got {x.dtype}; convert it with .float()")


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0) elementwise (inplace is accepted and ignored)."""
    _float_input("relu", input)
    return _ReLU.apply(input, 0.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    _float_input("leaky_relu", input)
    return _ReLU.apply(input, float(negative_slope))


def sigmoid(input: Tensor) -> Tensor:
    _float_input("sigmoid", input)
    return _Sigmoid.apply(input)


def tanh(input: Tensor) -> Tensor:
    _float_input("tanh", input)
    return _Tanh.apply(input)


class _SoftmaxFamily(Function):
    """softmax or log_softmax along one axis, moved last and flattened to rows."""

    @staticmethod
    def forward(ctx, x, dim, log):
        B = ctx.backend
        perm = tuple(i for i in range(x.ndim) if i != dim) + (dim,)
        xt = B.ascontiguous(B.transpose(x, perm))
        rows = B.reshape(xt, (-1, x.shape[dim]))
        y = B.log_softmax_forward(rows) if log else B.softmax_forward(rows)
        ctx.save_for_backward(y)
        ctx.perm, ctx.tshape, ctx.log = perm, xt.shape, log
        return B.transpose(B.reshape(y, xt.shape), _inverse(perm))

    @staticmethod
    def backward(ctx, g):
        B, (y,) = ctx.backend, ctx.saved
        gr = B.reshape(B.ascontiguous(B.transpose(g, ctx.perm)), y.shape)
        dx = B.log_softmax_backward(gr, y) if ctx.log else B.softmax_backward(gr, y)
        return B.transpose(B.reshape(dx, ctx.tshape), _inverse(ctx.perm)), None, None


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _softmax_dim(op, x, dim):
    _float_input(op, x)
    if dim is None:  # PyTorch's legacy implicit choice
        dim = 0 if x.ndim in (0, 1, 3) else 1
    if x.ndim == 0:
        raise LayerError(op, "expected at least a 1-D tensor")
    if not -x.ndim <= dim < x.ndim:
        raise LayerError(op, f"dim {dim} is out of range for a {x.ndim}-D tensor of shape {shape_str(x.shape)}")
    return dim % x.ndim


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim: the probabilities of each class."""
    x = input if dtype is None else input.to(dtype)
    return _SoftmaxFamily.apply(x, _softmax_dim("softmax", x, dim), False)


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """log(softmax(x)) computed stably (x - logsumexp(x))."""
    x = input if dtype is None else input.to(dtype)
    return _SoftmaxFamily.apply(x, _softmax_dim("log_softmax", x, dim), True)


# ------------------------------------------------------------------------- losses
class _NLL(Function):
    @staticmethod
    def forward(ctx, logp, target, weight, ignore_index, reduction):
        B = ctx.backend
        losses, wsel = B.nll_forward(logp, target, weight, ignore_index)
        ctx.target, ctx.wsel, ctx.shape, ctx.dtype, ctx.reduction = target, wsel, logp.shape, logp.dtype, reduction
        if reduction == "none":
            return losses
        total = B.sum(losses)
        if reduction == "sum":
            return total
        ctx.denominator = B.sum(wsel)
        return B.divide(total, ctx.denominator)

    @staticmethod
    def backward(ctx, g):
        B = ctx.backend
        if ctx.reduction == "none":
            rows = g
        else:
            scale = g if ctx.reduction == "sum" else B.divide(g, ctx.denominator)
            rows = B.multiply(B.full(ctx.wsel.shape, 1.0, ctx.dtype), scale)
        return B.astype(B.nll_backward(rows, ctx.target, ctx.wsel, ctx.shape, ctx.dtype), ctx.dtype), \
            None, None, None, None


_REDUCTIONS = ("mean", "sum", "none")


def _class_rows(op: str, input: Tensor, target: Tensor):
    """(N, C, d1...) scores and (N, d1...) targets -> (rows, C) and (rows,)."""
    if input.ndim == 1:
        input, target = input.unsqueeze(0), target.reshape(1)
    if input.ndim > 2:
        c = input.shape[1]
        perm = (0,) + tuple(range(2, input.ndim)) + (1,)
        input = input.permute(perm).reshape(-1, c)
        target = target.reshape(-1)
    return input, target


def _check_targets(op: str, scores: Tensor, target: Tensor, ignore_index: int):
    if not isinstance(target, Tensor):
        raise LayerError(op, f"expected the target as a Tensor of class indices, got {type(target).__name__}")
    if target.dtype.kind not in "iu":
        raise LayerError(op, f"expected integer class indices as target (int64), got {target.dtype}; "
                             f"use labels.long()")
    n = scores.shape[0]
    if tuple(target.shape) != (n,):
        raise LayerError(op, f"expected {n} targets for scores of shape {shape_str(scores.shape)}, "
                             f"got targets of shape {shape_str(target.shape)}")
    c = scores.shape[1]
    v = target._backend.first_bad_target(target._data, c, ignore_index)
    if v is not None:
        raise LayerError(op, f"target {v} is out of range for {c} classes (expected 0..{c - 1})")


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of the target classes, given log-probabilities (N, C)."""
    op = "nll_loss"
    _float_input(op, input)
    if reduction not in _REDUCTIONS:
        raise LayerError(op, f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    logp, tgt = _class_rows(op, input, target)
    _check_targets(op, logp, tgt, ignore_index)
    c = logp.shape[1]
    B = logp._backend
    w = B.full((c,), 1.0, logp.dtype) if weight is None else B.astype(weight.to(logp.device)._data, logp.dtype)
    out = _NLL.apply(logp, B.astype(tgt._data, np.int64), w, int(ignore_index), reduction)
    if reduction == "none" and input.ndim > 2:
        out = out.reshape(input.shape[0], *input.shape[2:])
    return out


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over classes followed by nll_loss. Shape: scores (N, C), targets (N,) in 0..C-1.

    Targets may also be class probabilities with the scores' shape.
    """
    op = "cross_entropy"
    _float_input(op, input)
    if input.ndim < 1:
        raise LayerError(op, "expected scores of shape (N, C)")
    cdim = 1 if input.ndim > 1 else 0
    c = input.shape[cdim]
    wshape = [1] * input.ndim
    wshape[cdim] = c
    logp = log_softmax(input, cdim)
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise LayerError(op, f"probability targets must have the scores' shape {shape_str(input.shape)}, "
                                 f"got {shape_str(target.shape)}")
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / c
        term = logp * target
        if weight is not None:
            term = term * weight.reshape(wshape)
        return _reduce(-term.sum(cdim), reduction)
    loss = nll_loss(logp, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return loss
    # PyTorch's rule: (1-e) * nll + e/C * (-sum_c w_c logp_c), over the rows not ignored
    rows, tgt = _class_rows(op, logp, target)
    keep_np = tgt.numpy() != ignore_index
    keep = Tensor._wrap(rows._backend.from_numpy(keep_np.astype(rows.dtype)), rows.device)
    w = weight.to(rows.dtype) if weight is not None else None
    per = -((rows * w.reshape(1, c)) if w is not None else rows).sum(1) * keep
    if reduction == "mean":
        if w is not None:
            denom = float((w.numpy()[tgt.numpy()[keep_np]]).sum())
        else:
            denom = float(keep_np.sum())
        smooth = per.sum() / denom
    elif reduction == "sum":
        smooth = per.sum()
    else:
        smooth = per.reshape(loss.shape)
    return loss * (1 - label_smoothing) + smooth * (label_smoothing / c)


def _reduce(per: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per.mean()
    if reduction == "sum":
        return per.sum()
    return per


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean of squared differences."""
    if tuple(input.shape) != tuple(target.shape):
        raise LayerError("mse_loss", f"input shape {shape_str(input.shape)} and target shape "
                                     f"{shape_str(target.shape)} differ")
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    if tuple(input.shape) != tuple(target.shape):
        raise LayerError("l1_loss", f"input shape {shape_str(input.shape)} and target shape "
                                    f"{shape_str(target.shape)} differ")
    return _reduce((input - target).abs(), reduction)


# --------------------------------------------------------------------- batch norm
class _BatchNorm(Function):
    @staticmethod
    def forward(ctx, x3, gamma, beta, mean, invstd, training):
        B = ctx.backend
        x3 = B.ascontiguous(x3)
        ctx.save_for_backward(x3, gamma, mean, invstd)
        ctx.training = training
        return B.batch_norm_forward(x3, mean, invstd, gamma, beta)

    @staticmethod
    def backward(ctx, g):
        x3, gamma, mean, invstd = ctx.saved
        dx, dgamma, dbeta = ctx.backend.batch_norm_backward(g, x3, mean, invstd, gamma, ctx.training)
        return dx, dgamma, dbeta, None, None, None


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (axis 1) to zero mean and unit variance, then scale and shift.

    Shape: (N, C) or (N, C, *). In training the batch statistics are used and the
    running ones updated (unbiased variance); in eval the running ones are used.
    """
    op = "batch_norm"
    _float_input(op, input)
    if input.ndim < 2:
        raise LayerError(op, f"expected at least a 2-D input (N, C, ...), got shape {shape_str(input.shape)}")
    n, c = input.shape[:2]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and tuple(t.shape) != (c,):
            raise LayerError(op, f"expected {name} of shape [{c}] for an input with {c} channels, "
                                 f"got {shape_str(t.shape)}")
    if weight is not None and weight.dtype != input.dtype:
        raise LayerError(op, f"input is {input.dtype} but the weight is {weight.dtype}; "
                             f"convert one of them (e.g. model.double() or x.float())")
    B = input._backend
    x3 = input.reshape(n, c, -1)
    count = n * x3.shape[2]
    if training:
        if count <= 1:
            raise LayerError(op, f"expected more than 1 value per channel when training, got input of "
                                 f"shape {shape_str(input.shape)}")
        mean, var = B.batch_norm_stats(x3._data)
        if running_mean is not None:
            rm, rv = running_mean._data, running_var._data
            rm[...] = B.add(B.multiply(rm, 1 - momentum), B.multiply(mean, momentum))
            rv[...] = B.add(B.multiply(rv, 1 - momentum), B.multiply(B.multiply(var, momentum), count / (count - 1)))
    else:
        if running_mean is None:
            raise LayerError(op, "running statistics are needed in eval mode")
        mean, var = running_mean._data, running_var._data
    invstd = B.astype(B.divide(1.0, B.sqrt(B.add(B.astype(var, np.float64), eps))), input.dtype)
    gamma = weight if weight is not None else B.full((c,), 1.0, input.dtype)
    beta = bias if bias is not None else B.zeros((c,), input.dtype)
    y = _BatchNorm.apply(x3, gamma, beta, mean, invstd, training)
    return y.reshape(input.shape)


# ------------------------------------------------------------------------ dropout
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (only when training)."""
    if not 0.0 <= p <= 1.0:
        raise LayerError("dropout", f"probability must be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return input
    B = input._backend
    if p == 1.0:
        return input * 0.0
    mask = B.dropout_mask(_rng(), input.shape, p, input.dtype)
    return input * Tensor._wrap(mask, input.device)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, H, W) input with probability p (only when training)."""
    if not 0.0 <= p <= 1.0:
        raise LayerError("dropout2d", f"probability must be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return input
    if input.ndim not in (3, 4):
        raise LayerError("dropout2d", f"expected a 3-D or 4-D input, got shape {shape_str(input.shape)}")
    if p == 1.0:
        return input * 0.0
    shape = input.shape[:-2] + (1, 1)
    mask = input._backend.dropout_mask(_rng(), shape, p, input.dtype)
    return input * Tensor._wrap(mask, input.device)


# ------------------------------------------------------------------------- misc
def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    t = tensor.numpy().astype(np.int64)
    c = int(t.max()) + 1 if num_classes < 0 else num_classes
    return Tensor._wrap(tensor._backend.from_numpy(np.eye(c, dtype=np.int64)[t]), tensor.device)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


__all__ = [
    "conv2d", "pad", "max_pool2d", "avg_pool2d", "sum_pool2d", "adaptive_avg_pool2d", "linear",
    "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "nll_loss", "cross_entropy",
    "mse_loss", "l1_loss", "batch_norm", "dropout", "dropout2d", "one_hot", "flatten", "conv_output_size",
]
