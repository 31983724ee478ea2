"""The CUDA backend's layer kernels that are neither convolution nor pooling: Linear
(the register-tiled gemm, operands transposed by strides, the bias gradient from the weight
gradient's launch), activations, the softmax family and the NLL loss (a thread per row, the
reduced loss in one block), dropout masks and batch norm (a block per channel).

Dropout masks come from xoroshiro128+ generators on the device, seeded once from
cnnlab's host generator: reproducible after manual_seed, but not the CPU's masks.
Class labels are checked on the host (see `first_bad_target`): a training step never
waits for the device.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda
from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_uniform_float32

from .. import _config as cfg
from . import cuda_array
from .cuda_array import DeviceArray, astype, exp, full, launch_blocks, launch_flat, new, reduce_threads, reshape, \
    to_numpy, zeros
from .cuda_array import from_numpy as _upload
from .cuda_math import block_sum, gemm, sum
from .cpu_nn import first_bad_target as host_first_bad_target

_MAX_BLOCK = 1024  # CUDA's most threads per block: shared scratch sized for any reduction block

# ----------------------------------------------------------------------------
# dense layer (the register-tiled gemm, operands transposed by strides)
# ----------------------------------------------------------------------------

def linear_forward(x, w, b):
    out_f, in_f = w.shape
    rows = x.size // in_f
    y = gemm(x, (0, in_f, 1), w, (0, 1, in_f), rows, out_f, in_f, 1, x.dtype, bias=b)
    return reshape(y, x.shape[:-1] + (out_f,))


def linear_backward(x, w, g, need_x, need_w, need_b):
    out_f, in_f = w.shape
    rows = x.size // in_f
    dx = dw = db = None
    if need_x:  # g @ w
        dx = reshape(gemm(g, (0, out_f, 1), w, (0, in_f, 1), rows, in_f, out_f, 1, x.dtype), x.shape)
    if need_w:  # g2.T @ x2; db, the row sums of g2.T, comes from the same launch
        out = gemm(g, (0, 1, out_f), x, (0, in_f, 1), out_f, in_f, rows, 1, x.dtype, row_sums=need_b)
        dw, sums = out if need_b else (out, None)
        dw = reshape(dw, w.shape)
        db = reshape(sums, (out_f,)) if need_b else None
    elif need_b:
        db = sum(reshape(g, (rows, out_f)), axis=0)
    return dx, dw, db


# ----------------------------------------------------------------------------
# activations (flat, elementwise)
# ----------------------------------------------------------------------------

@cuda.jit(**cfg.CUDA_JIT)
def _relu_fwd(x, y, slope):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        y[i] = v if v > 0 else v * slope


@cuda.jit(**cfg.CUDA_JIT)
def _relu_bwd(g, x, dx, slope):
    i = cuda.grid(1)
    if i < x.size:
        dx[i] = g[i] if x[i] > 0 else g[i] * slope


@cuda.jit(**cfg.CUDA_JIT)
def _sigmoid_fwd(x, y):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        # two branches so exp never overflows
        if v >= 0:
            y[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            y[i] = e / (1.0 + e)


@cuda.jit(**cfg.CUDA_JIT)
def _sigmoid_bwd(g, y, dx):
    i = cuda.grid(1)
    if i < y.size:
        dx[i] = g[i] * y[i] * (1.0 - y[i])


@cuda.jit(**cfg.CUDA_JIT)
def _tanh_fwd(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = math.tanh(x[i])


@cuda.jit(**cfg.CUDA_JIT)
def _tanh_bwd(g, y, dx):
    i = cuda.grid(1)
    if i < y.size:
        dx[i] = g[i] * (1.0 - y[i] * y[i])


def _elementwise(kernel, first, *rest):
    out = new(first.shape, first.dtype)
    launch_flat(kernel, out.size, *(a.buf if isinstance(a, DeviceArray) else a for a in (first, *rest)), out.buf)
    return out


def relu_forward(x, negative_slope=0.0):
    y = new(x.shape, x.dtype)
    launch_flat(_relu_fwd, y.size, x.buf, y.buf, x.dtype.type(negative_slope))
    return y


def relu_backward(g, x, negative_slope=0.0):
    out = new(x.shape, x.dtype)
    launch_flat(_relu_bwd, out.size, g.buf, x.buf, out.buf, x.dtype.type(negative_slope))
    return out


def sigmoid_forward(x):
    return _elementwise(_sigmoid_fwd, x)


def sigmoid_backward(g, y):
    return _elementwise(_sigmoid_bwd, g, y)


def tanh_forward(x):
    return _elementwise(_tanh_fwd, x)


def tanh_backward(g, y):
    return _elementwise(_tanh_bwd, g, y)



# ----------------------------------------------------------------------------
# dropout: keep-masks drawn on the device
# ----------------------------------------------------------------------------

_dropout_states: list = [None, None]  # (host generator they were seeded from, device states)


def dropout_mask(rng: np.random.Generator, shape, p: float, dtype):
    """Keep-mask already scaled by 1/(1-p), drawn on the device by xoroshiro128+ generators.

    The generators are seeded from `rng` once (and again after manual_seed makes a new one).
    """
    source, states = _dropout_states
    if source is not rng or states is None or states.size != cfg.CUDA_RNG_STATES:
        states = create_xoroshiro128p_states(cfg.CUDA_RNG_STATES, seed=int(rng.integers(2**63)))
        _dropout_states[:] = [rng, states]
    out = new(shape, dtype)
    n = out.size
    streams = min(states.size, n)
    launch_flat(_dropout, streams, states, streams, np.float32(p), out.dtype.type(1.0 / (1.0 - p)), out.buf)
    return out


@cuda.jit(**cfg.CUDA_JIT)
def _dropout(states, streams, p, scale, out):
    t = cuda.grid(1)
    if t < streams:
        for i in range(t, out.size, streams):
            out[i] = scale if xoroshiro128p_uniform_float32(states, t) >= p else 0


# ----------------------------------------------------------------------------
# softmax family, over the last axis of a 2-D (rows, classes) array: a thread per row
# ----------------------------------------------------------------------------

@cuda.jit(**cfg.CUDA_JIT)
def _log_softmax_rows(x, y):
    r = cuda.grid(1)
    if r < x.shape[0]:
        m = -math.inf
        for j in range(x.shape[1]):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(x.shape[1]):
            s += math.exp(x[r, j] - m)
        lse = m + math.log(s)
        for j in range(x.shape[1]):
            y[r, j] = x[r, j] - lse


@cuda.jit(**cfg.CUDA_JIT)
def _log_softmax_rows_bwd(g, y, dx):
    r = cuda.grid(1)
    if r < y.shape[0]:
        s = 0.0
        for j in range(y.shape[1]):
            s += g[r, j]
        for j in range(y.shape[1]):
            dx[r, j] = g[r, j] - math.exp(y[r, j]) * s


@cuda.jit(**cfg.CUDA_JIT)
def _softmax_rows_bwd(g, y, dx):
    r = cuda.grid(1)
    if r < y.shape[0]:
        s = 0.0
        for j in range(y.shape[1]):
            s += g[r, j] * y[r, j]
        for j in range(y.shape[1]):
            dx[r, j] = y[r, j] * (g[r, j] - s)


def _rows(kernel, *arrays):
    out = new(arrays[-1].shape, arrays[-1].dtype)
    launch_flat(kernel, out.shape[0] if out.size else 0, *(a.nd() for a in arrays), out.nd())
    return out


def log_softmax_forward(x2d):
    return _rows(_log_softmax_rows, x2d)


def log_softmax_backward(g2d, y2d):
    return _rows(_log_softmax_rows_bwd, g2d, y2d)


def softmax_forward(x2d):
    return exp(log_softmax_forward(x2d))


def softmax_backward(g2d, y2d):
    return _rows(_softmax_rows_bwd, g2d, y2d)


@cuda.jit(**cfg.CUDA_JIT)
def _nll(logp, target, weight, ignore_index, losses, wsel):
    r = cuda.grid(1)
    if r < logp.shape[0]:
        t = target[r]
        if t == ignore_index:
            losses[r] = 0.0
            wsel[r] = 0.0
        elif t < 0 or t >= logp.shape[1]:  # a label first_bad_target could not see (changed on the device)
            losses[r] = math.nan
            wsel[r] = 0.0
        else:
            wsel[r] = weight[t]
            losses[r] = -logp[r, t] * weight[t]


@cuda.jit(**cfg.CUDA_JIT)
def _nll_bwd(g_rows, target, wsel, dx):
    r = cuda.grid(1)
    if r < dx.shape[0] and wsel[r] != 0:
        dx[r, target[r]] = -(g_rows[r] * wsel[r])


def nll_forward(logp2d, target, weight, ignore_index):
    """Per-row losses -w[t]*logp[r, t] and the weights used (0 where ignored; NaN loss for a bad label)."""
    rows = logp2d.shape[0]
    losses = new((rows,), logp2d.dtype)
    wsel = new((rows,), logp2d.dtype)
    launch_flat(_nll, rows, logp2d.nd(), astype(target, np.int64).buf, weight.buf, ignore_index, losses.buf,
                wsel.buf)
    return losses, wsel


def nll_backward(g_rows, target, wsel, shape, dtype):
    dx = zeros(shape, dtype)
    launch_flat(_nll_bwd, shape[0], g_rows.buf, astype(target, np.int64).buf, wsel.buf, dx.nd())
    return dx


# The loss as a training step runs it: one launch forward (losses, weights and their
# reduction, in one block), one backward (each row's whole gradient, zeros included).

@cuda.jit(device=True)
def _nll_row(logp, target, weight, has_weight, ignore_index, r):
    """(loss, weight used) of row r; a label outside the classes gives NaN (see first_bad_target)."""
    t = target[r]
    w = 0.0
    if t == ignore_index:
        return w, w
    if t < 0 or t >= logp.shape[1]:
        return math.nan, w
    w = 1.0
    if has_weight:
        w = weight[t]
    return -logp[r, t] * w, w


@cuda.jit(**cfg.CUDA_JIT)
def _nll_reduce(logp, target, weight, has_weight, ignore_index, mean, wsel, out, denominator):
    sm = cuda.shared.array(_MAX_BLOCK, numba.float64)[:cuda.blockDim.x]
    total = 0.0
    wsum = 0.0
    for r in range(cuda.threadIdx.x, logp.shape[0], cuda.blockDim.x):
        loss, w = _nll_row(logp, target, weight, has_weight, ignore_index, r)
        wsel[r] = w
        total += loss
        wsum += w
    total = block_sum(sm, total)
    wsum = block_sum(sm, wsum)
    if cuda.threadIdx.x == 0:
        denominator[0] = wsum
        out[0] = total / denominator[0] if mean else total


@cuda.jit(**cfg.CUDA_JIT)
def _nll_rows_bwd(g, per_row, denominator, mean, target, wsel, dx):
    r = cuda.grid(1)
    if r < dx.shape[0]:
        scale = g[r] if per_row else (g[0] / denominator[0] if mean else g[0])
        t = target[r]
        for j in range(dx.shape[1]):
            dx[r, j] = -(scale * wsel[r]) if j == t and wsel[r] != 0 else 0.0


def nll_loss_forward(logp2d, target, weight, ignore_index, reduction):
    target = astype(target, np.int64)
    if reduction == "none":
        c = logp2d.shape[1]
        losses, wsel = nll_forward(logp2d, target, weight if weight is not None else _ones(c, logp2d.dtype),
                                   ignore_index)
        return losses, wsel, None
    rows = logp2d.shape[0]
    wsel = new((rows,), logp2d.dtype)
    out, denominator = new((), logp2d.dtype), new((), logp2d.dtype)
    cuda_array.launch(_nll_reduce, 1, reduce_threads(), logp2d.nd(), target.buf,
                      (weight if weight is not None else wsel).buf, weight is not None, ignore_index,
                      reduction == "mean", wsel.buf, out.buf, denominator.buf)
    return out, wsel, denominator if reduction == "mean" else None


def nll_loss_backward(g, target, wsel, denominator, shape, dtype, reduction):
    dx = new(shape, dtype)
    launch_flat(_nll_rows_bwd, shape[0], g.buf, reduction == "none", (denominator if denominator is not None
                else g).buf, reduction == "mean", astype(target, np.int64).buf, wsel.buf, dx.nd())
    return dx


_ones_cache: dict = {}


def _ones(n, dtype):
    """A cached all-ones weight (never written: kernels only read weights)."""
    key = (n, np.dtype(dtype).str)
    if key not in _ones_cache:
        _ones_cache[key] = full((n,), 1.0, dtype)
    return _ones_cache[key]


# ----------------------------------------------------------------------------
# class labels: checked on the host, from the copy they were uploaded from
# ----------------------------------------------------------------------------
# A bad label must raise a clear error, not a device-side assert, and reading the labels
# back would stall every training step until the device catches up. Labels come from the
# host (a DataLoader batch, then .to('cuda')), so `from_numpy` keeps the host copy of each
# small integer upload, keyed by its device block (held, so never recycled meanwhile);
# `first_bad_target` answers from it. Only labels made or changed on the device are read
# back; a label changed on the device after the check gives a NaN loss, never a stray read.

_LABEL_UPLOADS = 16           # integer uploads remembered (the latest batches' labels)
_LABEL_SIZE = 1 << 20         # larger integer arrays are not labels worth a host copy
_uploads: dict[int, tuple] = {}   # id(block) -> (block, host copy), oldest first


def from_numpy(a) -> DeviceArray:
    """cuda_array.from_numpy, remembering the host values of small integer arrays (labels)."""
    out = _upload(a)
    if not isinstance(a, DeviceArray):
        host = np.asarray(a)
        if host.dtype.kind in "iu" and 0 < host.size <= _LABEL_SIZE:
            _uploads.pop(id(out.block), None)
            _uploads[id(out.block)] = (out.block, host.reshape(-1).copy())
            while len(_uploads) > _LABEL_UPLOADS:
                del _uploads[next(iter(_uploads))]
    return out


def first_bad_target(target, classes, ignore_index):
    """The first class index outside 0..classes-1 (ignore_index allowed), or None."""
    if target.size == 0:
        return None
    known = _uploads.get(id(target.block))
    if known is not None and known[0] is target.block and known[1].size == target.size:
        host = known[1]
    else:  # labels computed on the device: one read-back
        host = to_numpy(target).reshape(-1)
    return host_first_bad_target(host, classes, ignore_index)


# ----------------------------------------------------------------------------
# batch norm over (N, C, L): one block per channel for the statistics
# ----------------------------------------------------------------------------
# A training forward is two launches: `_bn_train_stats` (mean, variance, invstd and the
# running averages, per channel) and `_bn_apply`; eval is `_bn_invstd` and `_bn_apply`;
# backward is one. The shared scratch is sized for the largest block, so the kernels are
# plain module-level kernels (cached across processes) whatever CUDA_REDUCE_THREADS is.

@cuda.jit(**cfg.CUDA_JIT)
def _bn_train_stats(x, mean, variance, invstd, rmean, rvar, has_running, keep, momentum, unbias, eps, counter,
                    counting):
    n, c, l = x.shape
    cnt = n * l
    if counting and cuda.blockIdx.x == 0 and cuda.threadIdx.x == 0:
        counter[0] += 1
    sm = cuda.shared.array(_MAX_BLOCK, numba.float64)[:cuda.blockDim.x]
    for ci in range(cuda.blockIdx.x, c, cuda.gridDim.x):
        s = 0.0
        for r in range(cuda.threadIdx.x, cnt, cuda.blockDim.x):
            s += x[r // l, ci, r % l]
        m = block_sum(sm, s) / cnt
        q = 0.0
        for r in range(cuda.threadIdx.x, cnt, cuda.blockDim.x):
            d = x[r // l, ci, r % l] - m
            q += d * d
        v = block_sum(sm, q) / cnt
        if cuda.threadIdx.x == 0:
            mean[ci] = m
            variance[ci] = v
            var = variance[ci]    # rounded to the arrays' dtype, as the CPU's variance is
            invstd[ci] = 1.0 / math.sqrt(numba.float64(var) + eps)
            if has_running:
                rmean[ci] = rmean[ci] * keep + mean[ci] * momentum
                rvar[ci] = rvar[ci] * keep + var * momentum * unbias


@cuda.jit(**cfg.CUDA_JIT)
def _bn_invstd(var, eps, out):
    i = cuda.grid(1)
    if i < var.size:
        out[i] = 1.0 / math.sqrt(numba.float64(var[i]) + eps)


@cuda.jit(**cfg.CUDA_JIT)
def _bn_apply(x, mean, invstd, gamma, beta, y, c, l):
    i = cuda.grid(1)
    if i < x.size:
        ci = (i // l) % c
        a = invstd[ci] * gamma[ci]
        y[i] = x[i] * a + (beta[ci] - mean[ci] * a)


@cuda.jit(**cfg.CUDA_JIT)
def _bn_backward(g, x, mean, invstd, gamma, dx, dgamma, dbeta, training):
    n, c, l = x.shape
    cnt = n * l
    sm = cuda.shared.array(_MAX_BLOCK, numba.float64)[:cuda.blockDim.x]
    for ci in range(cuda.blockIdx.x, c, cuda.gridDim.x):
        sg = 0.0
        sgx = 0.0
        for r in range(cuda.threadIdx.x, cnt, cuda.blockDim.x):
            gv = g[r // l, ci, r % l]
            sg += gv
            sgx += gv * (x[r // l, ci, r % l] - mean[ci]) * invstd[ci]
        sg = block_sum(sm, sg)
        sgx = block_sum(sm, sgx)
        if cuda.threadIdx.x == 0:
            dgamma[ci] = sgx
            dbeta[ci] = sg
        a = gamma[ci] * invstd[ci]
        for r in range(cuda.threadIdx.x, cnt, cuda.blockDim.x):
            b = r // l
            i = r % l
            if training:
                xh = (x[b, ci, i] - mean[ci]) * invstd[ci]
                dx[b, ci, i] = a * (g[b, ci, i] - sg / cnt - xh * sgx / cnt)
            else:
                dx[b, ci, i] = a * g[b, ci, i]


def batch_norm_stats(x3):
    """Per-channel mean and biased variance of an (N, C, L) array."""
    return _train_stats(x3, None, None, 0.0, 0.0, None)[:2]


def batch_norm_train_stats(x3, running_mean, running_var, momentum, eps, num_batches=None):
    mean, _, invstd = _train_stats(x3, running_mean, running_var, momentum, eps, num_batches)
    return mean, invstd


def _train_stats(x3, running_mean, running_var, momentum, eps, num_batches):
    c = x3.shape[1]
    count = x3.shape[0] * x3.shape[2]
    mean, var, invstd = new((c,), x3.dtype), new((c,), x3.dtype), new((c,), x3.dtype)
    has_running = running_mean is not None
    dt = x3.dtype.type
    launch_blocks(_bn_train_stats, c, x3.nd(), mean.buf, var.buf, invstd.buf,
                  (running_mean if has_running else mean).buf, (running_var if has_running else invstd).buf,
                  has_running, dt(1 - momentum), dt(momentum), dt(count / max(count - 1, 1)), float(eps),
                  (num_batches if num_batches is not None else _no_counter()).buf, num_batches is not None)
    return mean, var, invstd


_counter_stub: list = []


def _no_counter():
    """An int64 stand-in for the counter argument when nothing is counted (never written)."""
    if not _counter_stub:
        _counter_stub.append(new((1,), np.int64))
    return _counter_stub[0]


def batch_norm_invstd(var, eps):
    out = new(var.shape, var.dtype)
    launch_flat(_bn_invstd, out.size, var.buf, float(eps), out.buf)
    return out


def batch_norm_forward(x3, mean, invstd, gamma, beta):
    y = new(x3.shape, x3.dtype)
    launch_flat(_bn_apply, y.size, x3.buf, mean.buf, invstd.buf, gamma.buf, beta.buf, y.buf, x3.shape[1],
                x3.shape[2])
    return y


def batch_norm_relu_forward(x3, mean, invstd, gamma, beta):
    # composed, not fused: the same results in two launches (one kernel is the CPU's gain)
    return relu_forward(batch_norm_forward(x3, mean, invstd, gamma, beta))


def batch_norm_relu_backward(g3, y3, x3, mean, invstd, gamma, training):
    return batch_norm_backward(relu_backward(g3, y3), x3, mean, invstd, gamma, training)


def batch_norm_backward(g3, x3, mean, invstd, gamma, training):
    c = x3.shape[1]
    dx = new(x3.shape, x3.dtype)
    dgamma, dbeta = new((c,), x3.dtype), new((c,), x3.dtype)
    launch_blocks(_bn_backward, c, g3.nd(), x3.nd(), mean.buf, invstd.buf, gamma.buf, dx.nd(), dgamma.buf,
                  dbeta.buf, bool(training))
    return dx, dgamma, dbeta
