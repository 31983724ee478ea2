"""The backend contract: every function a backend module provides, with its signature
and what it promises. Autograd, layers, losses and optimizers reach kernels only
through these names (`ctx.backend.conv2d_forward(...)`, `B.ascontiguous(...)`), so a new
device is a module that implements this list; tests/engine/test_backend_contract.py
checks that cpu and cuda each provide every entry with exactly this signature.

Every function takes and returns the backend's arrays (NumPy arrays on 'cpu',
DeviceArrays on 'cuda'), never Tensors; shapes are NCHW; `*_forward` returns what its
`*_backward` needs, `*_backward` returns gradients (None where not asked for). Besides
the functions, a backend has `name`, its device type ('cpu', 'cuda').

`numpy` names the NumPy function the CPU backend may bind itself (its signature is
NumPy's, with out=, where= and friends; the contract is the positional subset).

>>> [k.name for k in CONTRACT][:3]
['asarray', 'to_numpy', 'from_numpy']
>>> str(signature("conv2d_forward"))
'(x, w, b, stride, padding, dilation, out_hw, keep_columns=False)'
"""
from __future__ import annotations

import inspect
from typing import NamedTuple


class Kernel(NamedTuple):
    name: str
    params: str         # the parameter list, as written in the def
    contract: str       # what it takes and returns, in one line
    numpy: str = ""     # the NumPy function cpu.py may bind directly, if any


_BINARY = "NumPy's {}(a, b): broadcasting, NumPy's result dtype; a new array"
_UNARY = "NumPy's {}(a): same shape, NumPy's result dtype; a new array"


def _binary(name: str, numpy: str | None = None) -> Kernel:
    return Kernel(name, "a, b", _BINARY.format(numpy or name), numpy or name)


def _unary(name: str, numpy: str | None = None) -> Kernel:
    return Kernel(name, "a", _UNARY.format(numpy or name), numpy or name)


CONTRACT: list[Kernel] = [
    # --- arrays: the only functions that cross between host and device
    Kernel("asarray", "data, dtype=None", "array-like (or a backend array) -> backend array, cast if dtype is given"),
    Kernel("to_numpy", "a", "backend array -> numpy.ndarray of the same shape and dtype (device to host)"),
    Kernel("from_numpy", "a", "numpy.ndarray -> C-contiguous backend array, same shape and dtype (host to device)"),
    Kernel("empty", "shape, dtype", "uninitialised array"),
    Kernel("zeros", "shape, dtype", "array of zeros"),
    Kernel("full", "shape, value, dtype", "array filled with value"),
    Kernel("copy", "a", "a new array equal to a"),
    Kernel("astype", "a, dtype", "a cast to dtype; a itself when it already has that dtype"),
    Kernel("random_uniform", "rng, shape, low, high, dtype", "uniform [low, high) draws from the host generator rng"),
    Kernel("random_normal", "rng, shape, mean, std, dtype", "normal(mean, std) draws from the host generator rng"),
    # --- elementwise (NumPy's semantics; cuda implements them as kernels)
    _binary("add"), _binary("subtract"), _binary("multiply"), _binary("divide"), _binary("power"),
    _binary("maximum"), _binary("equal"), _binary("not_equal"), _binary("less"), _binary("less_equal"),
    _binary("greater"), _binary("greater_equal"), _binary("logical_and"), _binary("logical_or"),
    _unary("negative"), _unary("exp"), _unary("log"), _unary("sqrt"), _unary("absolute"), _unary("sign"),
    Kernel("where", "cond, a, b", "NumPy's where(cond, a, b): a where cond, else b, broadcast", "where"),
    Kernel("clip", "a, lo, hi", "NumPy's clip(a, lo, hi); lo or hi may be None", "clip"),
    Kernel("matmul", "a, b", "NumPy's matmul(a, b): (.., m, k) @ (.., k, n) -> (.., m, n), batch dims broadcast",
           "matmul"),
    # --- reductions and shapes
    Kernel("sum", "a, axis=None, keepdims=False", "NumPy's sum (ints and bools give int64)"),
    Kernel("amax", "a, axis=None, keepdims=False", "NumPy's max: NaN wins"),
    Kernel("argmax", "a, axis=None, keepdims=False", "NumPy's argmax: the first maximum; a flat index if axis=None"),
    Kernel("sum_to_shape", "g, shape", "undo broadcasting: g summed down to shape"),
    Kernel("reshape", "a, shape", "NumPy's reshape (one -1 allowed)"),
    Kernel("transpose", "a, axes", "NumPy's transpose; the result may be a view or a copy"),
    Kernel("broadcast_to", "a, shape", "NumPy's broadcast_to; read-only on cpu, a copy on cuda"),
    Kernel("ascontiguous", "a", "a C-contiguous array equal to a (0-d stays 0-d)"),
    Kernel("concatenate", "arrays, axis", "NumPy's concatenate"),
    Kernel("split", "a, indices, axis", "NumPy's split at the given indices: a list of arrays"),
    Kernel("pad2d", "a, top, bottom, left, right, value=0.0",
           "(.., H, W) -> (.., H+top+bottom, W+left+right), the border filled with value"),
    Kernel("unpad2d", "a, top, bottom, left, right", "the inverse of pad2d: the inner (.., H, W) block, contiguous"),
    Kernel("getitem", "a, index", "a[index] with NumPy's indexing (basic, integer or boolean arrays)"),
    Kernel("index_add", "shape, dtype, index, values", "zeros(shape)[index] += values, repeated indices accumulating"),
    # --- convolution (cpu_conv.py, cpu_conv_transpose.py, cuda_conv.py)
    Kernel("conv2d_forward", "x, w, b, stride, padding, dilation, out_hw, keep_columns=False",
           "x (N,C,H,W), w (K,C,kh,kw), b (K,) or None, pairs -> (y (N,K,*out_hw), saved for backward)"),
    Kernel("conv2d_backward", "x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b",
           "g (N,K,OH,OW) -> (dx like x, dw like w, db (K,)), None where need_* is False"),
    Kernel("conv_transpose2d_forward", "x, w, b, stride, padding, dilation, out_hw",
           "x (N,C,H,W), w (C,O,kh,kw), b (O,) or None, pairs -> (y (N,O,*out_hw), saved for backward); "
           "y is conv2d_backward's input gradient for output gradient x"),
    Kernel("conv_transpose2d_backward", "x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b",
           "g (N,O,OH,OW) -> (dx like x, dw like w, db (O,)), None where need_* is False"),
    # --- pooling (cpu_pool.py, cuda_pool.py)
    Kernel("max_pool2d_forward", "x, kernel, stride, padding, dilation, out_hw",
           "x (N,C,H,W) -> (y (N,C,*out_hw), saved for backward); NaN wins and sticks"),
    Kernel("max_pool2d_backward", "g, x, y, saved, kernel, stride, padding, dilation",
           "g like y -> dx like x, each gradient to its window's first maximum"),
    Kernel("avg_pool2d_forward",
           "x, kernel, stride, padding, out_hw, count_include_pad=True, divisor_override=0, summing=False",
           "x (N,C,H,W) -> window means (N,C,*out_hw) by PyTorch's divisor rule; window sums if summing"),
    Kernel("avg_pool2d_backward",
           "g, x_shape, dtype, kernel, stride, padding, count_include_pad=True, divisor_override=0, summing=False",
           "g (N,C,OH,OW) -> dx of shape x_shape, each gradient spread over its window"),
    # --- layers (cpu_nn.py, cuda_nn.py; the fused nll_loss_* and batch_norm_train_stats/invstd: cpu_fused.py)
    Kernel("linear_forward", "x, w, b", "x (.., in), w (out, in), b (out,) or None -> x @ w.T + b (.., out)"),
    Kernel("linear_backward", "x, w, g, need_x, need_w, need_b", "g (.., out) -> (dx like x, dw like w, db (out,))"),
    Kernel("relu_forward", "x, negative_slope=0.0", "x where x > 0, else x * negative_slope"),
    Kernel("relu_backward", "g, x, negative_slope=0.0", "g where x > 0, else g * negative_slope"),
    Kernel("sigmoid_forward", "x", "1 / (1 + exp(-x)), without overflow"),
    Kernel("sigmoid_backward", "g, y", "g * y * (1 - y), y the forward's output"),
    Kernel("tanh_forward", "x", "tanh(x)"),
    Kernel("tanh_backward", "g, y", "g * (1 - y**2), y the forward's output"),
    Kernel("dropout_mask", "rng, shape, p, dtype", "keep-mask scaled by 1/(1-p) (inverted dropout), seeded from rng"),
    Kernel("log_softmax_forward", "x2d", "(rows, classes) -> log_softmax over the last axis"),
    Kernel("log_softmax_backward", "g2d, y2d", "gradient of log_softmax, y2d its output"),
    Kernel("softmax_forward", "x2d", "(rows, classes) -> softmax over the last axis"),
    Kernel("softmax_backward", "g2d, y2d", "gradient of softmax, y2d its output"),
    Kernel("nll_forward", "logp2d, target, weight, ignore_index",
           "(rows, classes), (rows,) ints, (classes,) -> (losses -w[t]*logp[r, t], weights used; 0 where ignored)"),
    Kernel("nll_backward", "g_rows, target, wsel, shape, dtype", "g (rows,) -> d logp of shape `shape`"),
    Kernel("nll_loss_forward", "logp2d, target, weight, ignore_index, reduction",
           "nll_forward and its reduction at once -> (loss (rows,) or 0-d, wsel (rows,), denominator 0-d "
           "(sum of wsel) if reduction is 'mean' else None); weight None means all ones"),
    Kernel("nll_loss_backward", "g, target, wsel, denominator, shape, dtype, reduction",
           "gradient of nll_loss_forward: g (rows,) or 0-d -> d logp of shape `shape`"),
    Kernel("first_bad_target", "target, classes, ignore_index",
           "the first label outside 0..classes-1 (ignore_index allowed) as an int, or None"),
    Kernel("batch_norm_stats", "x3", "(N, C, L) -> per-channel (mean, biased variance), each (C,)"),
    Kernel("batch_norm_train_stats", "x3, running_mean, running_var, momentum, eps, num_batches=None",
           "(N, C, L) -> per-channel (mean, 1/sqrt(biased variance + eps)), each (C,); running_mean/var "
           "(or None) updated in place: r = (1-momentum)*r + momentum*stat, the variance unbiased; "
           "num_batches (a 0-d int64 counter, or None) += 1"),
    Kernel("batch_norm_invstd", "var, eps", "(C,) variance -> 1/sqrt(var + eps), computed in float64"),
    Kernel("batch_norm_forward", "x3, mean, invstd, gamma, beta", "(x - mean) * invstd * gamma + beta per channel"),
    Kernel("batch_norm_backward", "g3, x3, mean, invstd, gamma, training",
           "-> (dx (N,C,L), dgamma (C,), dbeta (C,)); batch statistics' gradient only if training"),
    Kernel("batch_norm_relu_forward", "x3, mean, invstd, gamma, beta",
           "relu(batch_norm_forward(...)), bit for bit, in one pass where the backend can"),
    Kernel("batch_norm_relu_backward", "g3, y3, x3, mean, invstd, gamma, training",
           "batch_norm_backward of relu_backward(g3, y3), bit for bit: y3 is the fused forward's output"),
    # --- optimizers, in place (cpu_optim.py, cuda_optim.py)
    Kernel("sgd_step", "p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first",
           "PyTorch's SGD step: updates p and the momentum buffer buf in place; returns None"),
    Kernel("adam_step", "p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad",
           "PyTorch's Adam (AdamW if decoupled) step: updates p, m, v (vmax if amsgrad) in place"),
    Kernel("sgd_steps", "params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, first, maximize",
           "sgd_step over lists of one dtype (the gradients negated if maximize); on a GPU one launch"),
    Kernel("adam_steps",
           "params, grads, ms, vs, vmaxs, lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad, maximize",
           "adam_step over lists of one dtype (vmaxs used only if amsgrad); on a GPU one launch"),
]

NAMES = [k.name for k in CONTRACT]


def signature(name: str) -> inspect.Signature:
    """The contract's signature of kernel `name`, as inspect gives it for a def."""
    kernel = next(k for k in CONTRACT if k.name == name)
    namespace: dict = {}
    exec(f"def {name}({kernel.params}): pass", namespace)  # the params are this file's own literals
    return inspect.signature(namespace[name])
