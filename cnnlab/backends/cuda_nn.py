"""The CUDA backend's layer kernels that are neither convolution nor pooling: Linear
(the tiled gemm, operands transposed by strides), activations, the softmax family
and the NLL loss (a thread per row), dropout masks and batch norm (a block per channel).

Dropout masks come from xoroshiro128+ generators on the device, seeded once from
cnnlab's host generator: reproducible after manual_seed, but not the CPU's masks.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda
from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_uniform_float32

from .. import _config as cfg
from .cuda_array import DeviceArray, astype, exp, full, kernel_factory, launch_blocks, launch_flat, new, \
    reduce_threads, reshape, to_numpy, zeros
from .cuda_math import block_sum, gemm, sum

# ----------------------------------------------------------------------------
# dense layer (the tiled gemm, operands transposed by strides)
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
    if need_w:  # g2.T @ x2
        dw = reshape(gemm(g, (0, 1, out_f), x, (0, in_f, 1), out_f, in_f, rows, 1, x.dtype), w.shape)
    if need_b:
        db = sum(reshape(g, (rows, out_f)), axis=0)
    return dx, dw, db


# ----------------------------------------------------------------------------
# activations (flat, elementwise)
# ----------------------------------------------------------------------------

@cuda.jit
def _relu_fwd(x, y, slope):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        y[i] = v if v > 0 else v * slope


@cuda.jit
def _relu_bwd(g, x, dx, slope):
    i = cuda.grid(1)
    if i < x.size:
        dx[i] = g[i] if x[i] > 0 else g[i] * slope


@cuda.jit
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


@cuda.jit
def _sigmoid_bwd(g, y, dx):
    i = cuda.grid(1)
    if i < y.size:
        dx[i] = g[i] * y[i] * (1.0 - y[i])


@cuda.jit
def _tanh_fwd(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = math.tanh(x[i])


@cuda.jit
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


@cuda.jit
def _dropout(states, streams, p, scale, out):
    t = cuda.grid(1)
    if t < streams:
        for i in range(t, out.size, streams):
            out[i] = scale if xoroshiro128p_uniform_float32(states, t) >= p else 0


# ----------------------------------------------------------------------------
# softmax family, over the last axis of a 2-D (rows, classes) array: a thread per row
# ----------------------------------------------------------------------------

@cuda.jit
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


@cuda.jit
def _log_softmax_rows_bwd(g, y, dx):
    r = cuda.grid(1)
    if r < y.shape[0]:
        s = 0.0
        for j in range(y.shape[1]):
            s += g[r, j]
        for j in range(y.shape[1]):
            dx[r, j] = g[r, j] - math.exp(y[r, j]) * s


@cuda.jit
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


@cuda.jit
def _nll(logp, target, weight, ignore_index, losses, wsel):
    r = cuda.grid(1)
    if r < logp.shape[0]:
        t = target[r]
        if t == ignore_index:
            losses[r] = 0.0
            wsel[r] = 0.0
        else:
            wsel[r] = weight[t]
            losses[r] = -logp[r, t] * weight[t]


@cuda.jit
def _nll_bwd(g_rows, target, wsel, dx):
    r = cuda.grid(1)
    if r < dx.shape[0] and wsel[r] != 0:
        dx[r, target[r]] = -(g_rows[r] * wsel[r])


def nll_forward(logp2d, target, weight, ignore_index):
    """Per-row losses -w[t]*logp[r, t] and the weights used (0 where ignored)."""
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



def first_bad_target(target, classes, ignore_index):
    """The first class index outside 0..classes-1 (ignore_index allowed), or None.

    The one read-back besides the loss: a single int, so that a bad label raises a
    clear error instead of a device-side assert.
    """
    if target.size == 0:
        return None
    first = full((1,), target.size, np.int64)
    launch_flat(_first_bad, target.size, target.buf, classes, ignore_index, first.buf)
    i = int(first.buf.copy_to_host()[0])
    return None if i >= target.size else int(to_numpy(target).reshape(-1)[i])


@cuda.jit
def _first_bad(t, classes, ignore, first):
    i = cuda.grid(1)
    if i < t.size:
        v = t[i]
        if v != ignore and (v < 0 or v >= classes):
            cuda.atomic.min(first, 0, np.int64(i))


# ----------------------------------------------------------------------------
# batch norm over (N, C, L): one block per channel for the statistics
# ----------------------------------------------------------------------------

@kernel_factory
def _bn_kernel(kind, threads):
    def stats(x, mean, var):
        n, c, l = x.shape
        cnt = n * l
        sm = cuda.shared.array(threads, numba.float64)
        for ci in range(cuda.blockIdx.x, c, cuda.gridDim.x):
            s = 0.0
            for r in range(cuda.threadIdx.x, cnt, threads):
                s += x[r // l, ci, r % l]
            m = block_sum(sm, s) / cnt
            q = 0.0
            for r in range(cuda.threadIdx.x, cnt, threads):
                d = x[r // l, ci, r % l] - m
                q += d * d
            v = block_sum(sm, q) / cnt
            if cuda.threadIdx.x == 0:
                mean[ci] = m
                var[ci] = v

    def backward(g, x, mean, invstd, gamma, dx, dgamma, dbeta, training):
        n, c, l = x.shape
        cnt = n * l
        sm = cuda.shared.array(threads, numba.float64)
        for ci in range(cuda.blockIdx.x, c, cuda.gridDim.x):
            sg = 0.0
            sgx = 0.0
            for r in range(cuda.threadIdx.x, cnt, threads):
                gv = g[r // l, ci, r % l]
                sg += gv
                sgx += gv * (x[r // l, ci, r % l] - mean[ci]) * invstd[ci]
            sg = block_sum(sm, sg)
            sgx = block_sum(sm, sgx)
            if cuda.threadIdx.x == 0:
                dgamma[ci] = sgx
                dbeta[ci] = sg
            a = gamma[ci] * invstd[ci]
            for r in range(cuda.threadIdx.x, cnt, threads):
                b = r // l
                i = r % l
                if training:
                    xh = (x[b, ci, i] - mean[ci]) * invstd[ci]
                    dx[b, ci, i] = a * (g[b, ci, i] - sg / cnt - xh * sgx / cnt)
                else:
                    dx[b, ci, i] = a * g[b, ci, i]

    return cuda.jit(stats if kind == "stats" else backward)


@cuda.jit
def _bn_apply(x, mean, invstd, gamma, beta, y, c, l):
    i = cuda.grid(1)
    if i < x.size:
        ci = (i // l) % c
        a = invstd[ci] * gamma[ci]
        y[i] = x[i] * a + (beta[ci] - mean[ci] * a)


def batch_norm_stats(x3):
    """Per-channel mean and biased variance of an (N, C, L) array."""
    c = x3.shape[1]
    mean, var = new((c,), x3.dtype), new((c,), x3.dtype)
    launch_blocks(_bn_kernel("stats", reduce_threads()), c, x3.nd(), mean.buf, var.buf)
    return mean, var


def batch_norm_forward(x3, mean, invstd, gamma, beta):
    y = new(x3.shape, x3.dtype)
    launch_flat(_bn_apply, y.size, x3.buf, mean.buf, invstd.buf, gamma.buf, beta.buf, y.buf, x3.shape[1],
                x3.shape[2])
    return y


def batch_norm_backward(g3, x3, mean, invstd, gamma, training):
    c = x3.shape[1]
    dx = new(x3.shape, x3.dtype)
    dgamma, dbeta = new((c,), x3.dtype), new((c,), x3.dtype)
    launch_blocks(_bn_kernel("backward", reduce_threads()), c, g3.nd(), x3.nd(), mean.buf, invstd.buf,
                  gamma.buf, dx.nd(), dgamma.buf, dbeta.buf, bool(training))
    return dx, dgamma, dbeta

