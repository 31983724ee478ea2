"""`cnnlab.nn.functional`: the maths of every layer, with PyTorch's signatures.

Each public function checks its arguments (raising `LayerError`, a ValueError
that names what was expected and what came) and then applies a Function whose
forward and backward call the tensor's backend. Convolution, padding and pooling
live in functional_conv.py and are re-exported here; the output-size rule is
`conv_output_size` from geometry.py.
"""
from __future__ import annotations

import numpy as np

from .. import random
from ..autograd import Function
from ..errors import LayerError, shape_str
from ..ops import Pointwise, inverse_permutation
from ..tensor import Tensor
from ..types import promote
from .functional_conv import (  # noqa: F401  (re-exported: F.conv2d ...)
    _KERNEL_DTYPES, adaptive_avg_pool2d, avg_pool2d, conv2d, conv_transpose2d, max_pool2d, pad, sum_pool2d,
)
from .geometry import conv_output_size  # noqa: F401  (re-exported: models and tests import it from here)


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
    """max(x, 0), or slope * x below 0 (leaky_relu).

    With a slope >= 0, y > 0 exactly where x > 0, so backward can read y instead of x:
    relu and the in-place forms keep y (as PyTorch does), leaky_relu keeps x.
    """

    node_name = staticmethod(lambda ctx: "LeakyReluBackward0" if ctx is not None and ctx.slope else "ReluBackward0")

    @staticmethod
    def forward(ctx, x, *, slope, keep_output):
        y = ctx.backend.relu_forward(x, slope)
        ctx.save_for_backward(y if keep_output else x)
        ctx.slope = slope
        return y

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.relu_backward(g, ctx.saved[0], ctx.slope)


class _Sigmoid(Pointwise):
    from_output = True
    f = staticmethod(lambda B, x: B.sigmoid_forward(x))
    df = staticmethod(lambda B, g, x, y: B.sigmoid_backward(g, y))


class _Tanh(Pointwise):
    from_output = True
    f = staticmethod(lambda B, x: B.tanh_forward(x))
    df = staticmethod(lambda B, g, x, y: B.tanh_backward(g, y))


def _float_input(op: str, x) -> None:
    if not isinstance(x, Tensor):
        raise LayerError(op, f"expected a Tensor, got {type(x).__name__}")
    if x.dtype.name not in _KERNEL_DTYPES:
        raise LayerError(op, f"expected a float32 (or float64) tensor, got {x.dtype}; convert it with .float()")


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0) elementwise; with inplace=True written into input itself (and input returned)."""
    _float_input("relu", input)
    if inplace:
        return input._inplace(_ReLU, slope=0.0, keep_output=True)
    return _ReLU.apply(input, slope=0.0, keep_output=True)


def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    _float_input("leaky_relu", input)
    if inplace:
        if negative_slope < 0:
            raise RuntimeError("in-place leaky_relu with a negative slope cannot be differentiated "
                               "(its output does not tell the sign of its input); use inplace=False")
        return input._inplace(_ReLU, slope=float(negative_slope), keep_output=True)
    return _ReLU.apply(input, slope=float(negative_slope), keep_output=False)


def sigmoid(input: Tensor) -> Tensor:
    _float_input("sigmoid", input)
    return _Sigmoid.apply(input)


def tanh(input: Tensor) -> Tensor:
    _float_input("tanh", input)
    return _Tanh.apply(input)


class _SoftmaxFamily(Function):
    """softmax or log_softmax along one axis, moved last and flattened to rows."""

    node_name = staticmethod(lambda ctx: "LogSoftmaxBackward0" if ctx is not None and ctx.log else "SoftmaxBackward0")

    @staticmethod
    def forward(ctx, x, *, dim, log):
        B = ctx.backend
        perm = tuple(i for i in range(x.ndim) if i != dim) + (dim,)
        xt = B.ascontiguous(B.transpose(x, perm))
        rows = B.reshape(xt, (-1, x.shape[dim]))
        y = B.log_softmax_forward(rows) if log else B.softmax_forward(rows)
        ctx.save_for_backward(y)
        ctx.perm, ctx.tshape, ctx.log = perm, xt.shape, log
        return B.transpose(B.reshape(y, xt.shape), inverse_permutation(perm))

    @staticmethod
    def backward(ctx, g):
        B, (y,) = ctx.backend, ctx.saved
        gr = B.reshape(B.ascontiguous(B.transpose(g, ctx.perm)), y.shape)
        dx = B.log_softmax_backward(gr, y) if ctx.log else B.softmax_backward(gr, y)
        return B.transpose(B.reshape(dx, ctx.tshape), inverse_permutation(ctx.perm))


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
    return _SoftmaxFamily.apply(x, dim=_softmax_dim("softmax", x, dim), log=False)


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """log(softmax(x)) computed stably (x - logsumexp(x))."""
    x = input if dtype is None else input.to(dtype)
    return _SoftmaxFamily.apply(x, dim=_softmax_dim("log_softmax", x, dim), log=True)


# ------------------------------------------------------------------------- losses
class _NLL(Function):
    """-logp[target] per row (weighted), reduced; target and weight are arrays, not inputs.
    One fused backend kernel each way (one launch apiece on a GPU)."""

    node_name = "NllLossBackward0"

    @staticmethod
    def forward(ctx, logp, *, target, weight, ignore_index, reduction):
        loss, ctx.wsel, ctx.denominator = ctx.backend.nll_loss_forward(logp, target, weight, ignore_index, reduction)
        ctx.target, ctx.shape, ctx.dtype, ctx.reduction = target, logp.shape, logp.dtype, reduction
        return loss

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.nll_loss_backward(g, ctx.target, ctx.wsel, ctx.denominator, ctx.shape, ctx.dtype,
                                             ctx.reduction)


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
    B = logp._backend
    w = None if weight is None else B.astype(weight.to(logp.device)._data, logp.dtype)
    out = _NLL.apply(logp, target=B.astype(tgt._data, np.int64), weight=w, ignore_index=int(ignore_index),
                     reduction=reduction)
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


def _reduce_array(B, per, reduction: str):
    """A loss Function's per-element losses as asked: all of them, their sum, or sum / count."""
    if reduction == "none":
        return per
    total = B.sum(per)
    return total if reduction == "sum" else B.divide(total, per.dtype.type(per.size))


class _MseLoss(Function):
    """(x - t) ** 2, reduced: one record, so the graph shows PyTorch's MseLossBackward0; the
    arithmetic is that of ((x - t) * (x - t)).sum() / n, rounding included."""

    node_name = "MseLossBackward0"

    @staticmethod
    def forward(ctx, x, t, *, reduction):
        B = ctx.backend
        d = B.subtract(x, t)
        ctx.save_for_backward(d)
        ctx.reduction = reduction
        return _reduce_array(B, B.multiply(d, d), reduction)

    @staticmethod
    def backward(ctx, g):
        B, (d,) = ctx.backend, ctx.saved
        half = B.multiply(B.divide(g, d.dtype.type(d.size)) if ctx.reduction == "mean" else g, d)
        gx = B.add(half, half)
        need_x, need_t = ctx.needs_input_grad
        return (gx if need_x else None), (B.negative(gx) if need_t else None)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean of squared differences."""
    if tuple(input.shape) != tuple(target.shape):
        raise LayerError("mse_loss", f"input shape {shape_str(input.shape)} and target shape "
                                     f"{shape_str(target.shape)} differ")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return _MseLoss.apply(*promote(input, target), reduction=reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    if tuple(input.shape) != tuple(target.shape):
        raise LayerError("l1_loss", f"input shape {shape_str(input.shape)} and target shape "
                                    f"{shape_str(target.shape)} differ")
    return _reduce((input - target).abs(), reduction)


# ------------------------------------------------------------- binary cross-entropy
def _log1p(B, z):
    """log(1 + z) accurate for tiny z from the backend's log alone: log(u) * z / (u - 1), u = 1 + z
    rounded, cancels u's rounding error (Goldberg's trick); z itself where u rounds to 1."""
    one = z.dtype.type(1)
    u = B.add(z, one)
    d = B.subtract(u, one)
    exact = B.equal(d, z.dtype.type(0))
    return B.where(exact, z, B.multiply(_log(B, u), B.divide(z, B.where(exact, one, d))))


def _log(B, a):
    """log(a) for a >= 0, with 0 read as the smallest subnormal: a finite value below PyTorch's floor
    of -100 in BCE (log(0) = -inf is a math error on the CUDA simulator, a warning in NumPy)."""
    return B.log(B.maximum(a, np.finfo(a.dtype).smallest_subnormal))


class _BinaryCrossEntropy(Function):
    """PyTorch's elementwise BCE: (t - 1) * max(log1p(-x), -100) - t * max(log(x), -100), times the
    weight, reduced; with logits=True x is a logit and the loss (1 - t) x - w_pos log_sigmoid(x),
    w_pos = 1 + (pos_weight - 1) t, computed without overflow. weight and pos_weight are arrays."""

    node_name = staticmethod(lambda ctx: "BinaryCrossEntropyWithLogitsBackward0" if ctx is not None and ctx.logits
                             else "BinaryCrossEntropyBackward0")

    @staticmethod
    def forward(ctx, x, t, *, weight, pos_weight, reduction, logits):
        B, one = ctx.backend, x.dtype.type(1)
        ctx.save_for_backward(x, t)
        ctx.weight, ctx.pos_weight, ctx.reduction, ctx.logits = weight, pos_weight, reduction, logits
        if logits:
            # log_sigmoid(x) = min(x, 0) - log1p(exp(-|x|))
            ctx.logsig = B.subtract(B.subtract(x, B.maximum(x, x.dtype.type(0))),
                                    _log1p(B, B.exp(B.negative(B.absolute(x)))))
            log_weight = ctx.logsig if pos_weight is None else \
                B.multiply(ctx.logsig, B.add(B.multiply(B.subtract(pos_weight, one), t), one))
            per = B.subtract(B.multiply(B.subtract(one, t), x), log_weight)
        else:
            floor = x.dtype.type(-100)
            ctx.log_x, ctx.log_1mx = _log(B, x), _log1p(B, B.negative(x))
            per = B.subtract(B.multiply(B.subtract(t, one), B.maximum(ctx.log_1mx, floor)),
                             B.multiply(t, B.maximum(ctx.log_x, floor)))
        return _reduce_array(B, per if weight is None else B.multiply(per, weight), reduction)

    @staticmethod
    def backward(ctx, g):
        B, (x, t) = ctx.backend, ctx.saved
        one, pw = x.dtype.type(1), ctx.pos_weight
        if ctx.logits:
            s = B.sigmoid_forward(x)
            if pw is None:
                gx = B.multiply(B.subtract(s, t), g)
                gt = B.multiply(B.negative(x), g)
            else:
                tpw = B.multiply(pw, t)
                gx = B.multiply(B.subtract(B.multiply(B.subtract(B.add(tpw, one), t), s), tpw), g)
                gt = B.multiply(B.subtract(B.multiply(B.subtract(one, pw), ctx.logsig), x), g)
        else:
            eps = x.dtype.type(1e-12)  # PyTorch's floor on x (1 - x) where x is 0 or 1
            gx = B.divide(B.multiply(g, B.subtract(x, t)), B.maximum(B.multiply(B.subtract(one, x), x), eps))
            gt = B.multiply(g, B.subtract(ctx.log_1mx, ctx.log_x))  # unfloored, as PyTorch's (but finite at 0, 1)
        grads = []
        for grad, need in zip((gx, gt), ctx.needs_input_grad):
            if need and ctx.weight is not None:
                grad = B.multiply(grad, ctx.weight)
            if need and ctx.reduction == "mean":
                grad = B.divide(grad, x.dtype.type(x.size))
            grads.append(grad if need else None)
        return tuple(grads)


def _bce(op: str, input: Tensor, target: Tensor, weight, pos_weight, reduction: str, logits: bool) -> Tensor:
    _float_input(op, input)
    if not isinstance(target, Tensor) or tuple(target.shape) != tuple(input.shape):
        raise LayerError(op, f"target shape {shape_str(getattr(target, 'shape', ()))} differs from input shape "
                             f"{shape_str(input.shape)}; they must be the same")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not logits and not ((input >= 0) & (input <= 1)).all():
        raise LayerError(op, "all elements of input should be between 0 and 1 (probabilities: apply sigmoid "
                             "first, or use binary_cross_entropy_with_logits on the scores)")
    arrays = [None if w is None else input._operand(w if isinstance(w, Tensor) else np.asarray(w)).to(input.dtype)
              ._data for w in (weight, pos_weight)]
    return _BinaryCrossEntropy.apply(input, target.to(input.dtype), weight=arrays[0], pos_weight=arrays[1],
                                     reduction=reduction, logits=logits)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """-(t log x + (1 - t) log(1 - x)) per element, each log floored at -100 as PyTorch does (so a
    probability of exactly 0 or 1 costs 100, not infinity); x in [0, 1], t of x's shape."""
    return _bce("binary_cross_entropy", input, target, weight, None, reduction, logits=False)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """binary_cross_entropy(sigmoid(x), t) computed from the scores x without overflow; pos_weight
    (broadcast along the last dimension) weighs the positive term."""
    return _bce("binary_cross_entropy_with_logits", input, target, weight, pos_weight, reduction, logits=True)


# --------------------------------------------------------------------- batch norm
class _BatchNorm(Function):
    """(x - mean) * invstd * gamma + beta per channel of x3 (N, C, rest); the statistics are options.
    With relu=True, max(that, 0) in the same pass, forward and backward (nn.Sequential's
    BatchNorm + ReLU): the same bits as the two layers, one read and write of the activation
    fewer each way."""

    node_name = staticmethod(lambda ctx: "BatchNormReluBackward" if ctx is not None and getattr(ctx, "relu", False)
                             else "NativeBatchNormBackward0")

    @staticmethod
    def forward(ctx, x3, gamma, beta, *, mean, invstd, training, relu=False):
        B = ctx.backend
        x3 = B.ascontiguous(x3)
        ctx.training, ctx.relu = training, relu
        if relu:
            y = B.batch_norm_relu_forward(x3, mean, invstd, gamma, beta)
            ctx.save_for_backward(x3, gamma, mean, invstd, y)
            return y
        ctx.save_for_backward(x3, gamma, mean, invstd)
        return B.batch_norm_forward(x3, mean, invstd, gamma, beta)

    @staticmethod
    def backward(ctx, g):
        if ctx.relu:
            x3, gamma, mean, invstd, y = ctx.saved
            return ctx.backend.batch_norm_relu_backward(g, y, x3, mean, invstd, gamma, ctx.training)
        x3, gamma, mean, invstd = ctx.saved
        dx, dgamma, dbeta = ctx.backend.batch_norm_backward(g, x3, mean, invstd, gamma, ctx.training)
        return dx, dgamma, dbeta


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, num_batches_tracked: Tensor | None = None) -> Tensor:
    """Normalise each channel (axis 1) to zero mean and unit variance, then scale and shift.

    Shape: (N, C) or (N, C, *). In training the batch statistics are used and the
    running ones updated (unbiased variance); in eval the running ones are used.
    `num_batches_tracked` (cnnlab's addition, for BatchNorm layers): a counter the
    statistics kernel adds 1 to in training, so on a GPU the count costs no launch of its own.
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                       num_batches_tracked, False)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, num_batches_tracked,
                relu: bool) -> Tensor:
    """batch_norm, followed by relu when asked (in one kernel each way where the backend has one)."""
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
    if training and num_batches_tracked is not None and (input.numel() == 0 or input.numel() // c <= 1):
        num_batches_tracked._data[...] += 1   # counted even for a batch that stops here, as PyTorch's layer does
        num_batches_tracked = None
    if input.numel() == 0:  # an empty batch: an empty output, the statistics untouched (as PyTorch)
        per_channel = (c,) + (1,) * (input.ndim - 2)
        out = input.clone() if weight is None else input * weight.reshape(per_channel)
        out = out if bias is None else out + bias.reshape(per_channel)
        return _relu_fn(out) if relu else out
    B = input._backend
    x3 = input.reshape(n, c, -1)
    count = n * x3.shape[2]
    if training:
        if count <= 1:
            raise LayerError(op, f"expected more than 1 value per channel when training, got input of "
                                 f"shape {shape_str(input.shape)}")
        # one fused kernel: batch statistics, 1/sqrt(var + eps) and the running averages
        mean, invstd = B.batch_norm_train_stats(x3._data, None if running_mean is None else running_mean._data,
                                                None if running_var is None else running_var._data, momentum, eps,
                                                None if num_batches_tracked is None else num_batches_tracked._data)
    else:
        if running_mean is None:
            raise LayerError(op, "running statistics are needed in eval mode")
        mean, invstd = running_mean._data, B.batch_norm_invstd(running_var._data, eps)
    invstd = B.astype(invstd, input.dtype)
    gamma = weight if weight is not None else B.full((c,), 1.0, input.dtype)
    beta = bias if bias is not None else B.zeros((c,), input.dtype)
    y = _BatchNorm.apply(x3, gamma, beta, mean=mean, invstd=invstd, training=training, relu=relu)
    return y.reshape(input.shape)


_relu_fn = relu   # _batch_norm has its own `relu` flag


# ------------------------------------------------------------------------ dropout
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (only when training)."""
    if not 0.0 <= p <= 1.0:
        raise LayerError("dropout", f"probability must be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return input
    B = input._backend
    mask = B.zeros(input.shape, input.dtype) if p == 1.0 else B.dropout_mask(random.generator(), input.shape, p,
                                                                             input.dtype)
    return _scale(input, Tensor._wrap(mask, input.device), inplace)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, H, W) input with probability p (only when training)."""
    if not 0.0 <= p <= 1.0:
        raise LayerError("dropout2d", f"probability must be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return input
    if input.ndim not in (3, 4):
        raise LayerError("dropout2d", f"expected a 3-D or 4-D input, got shape {shape_str(input.shape)}")
    shape = input.shape[:-2] + (1, 1)
    B = input._backend
    mask = B.zeros(shape, input.dtype) if p == 1.0 else B.dropout_mask(random.generator(), shape, p, input.dtype)
    return _scale(input, Tensor._wrap(mask, input.device), inplace)


def _scale(input: Tensor, mask: Tensor, inplace: bool) -> Tensor:
    return input.mul_(mask) if inplace else input * mask


# ------------------------------------------------------------------------- misc
def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    t = tensor.numpy().astype(np.int64)
    c = int(t.max()) + 1 if num_classes < 0 else num_classes
    return Tensor._wrap(tensor._backend.from_numpy(np.eye(c, dtype=np.int64)[t]), tensor.device)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


__all__ = [
    "conv2d", "conv_transpose2d", "pad", "max_pool2d", "avg_pool2d", "sum_pool2d", "adaptive_avg_pool2d", "linear",
    "relu", "relu_", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "nll_loss", "cross_entropy",
    "mse_loss", "l1_loss", "batch_norm", "dropout", "dropout2d", "one_hot", "flatten", "conv_output_size",
]
