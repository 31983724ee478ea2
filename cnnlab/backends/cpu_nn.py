"""The CPU backend's layer kernels that are neither convolution nor pooling: Linear
(cpu_linear.py), activations, dropout masks, the softmax family, the NLL loss and batch norm.
cpu.py re-exports the public functions; cuda_nn.py is the GPU twin.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._config import NJIT, NJIT_PARALLEL, NJIT_SUMS
from .cpu_linear import linear_backward, linear_forward  # noqa: F401 - the dense layer lives there
from .cpu_threads import launch


# ----------------------------------------------------------------------------
# activations (flat, elementwise)
# ----------------------------------------------------------------------------

@njit(**NJIT_PARALLEL)
def _relu_fwd(x, y, slope):
    for i in prange(x.size):
        v = x[i]
        y[i] = v if v > 0 else v * slope


@njit(**NJIT_PARALLEL)
def _relu_bwd(g, x, dx, slope):
    for i in prange(x.size):
        dx[i] = g[i] if x[i] > 0 else g[i] * slope


@njit(**NJIT_PARALLEL)
def _sigmoid_fwd(x, y):
    for i in prange(x.size):
        v = x[i]
        # two branches so exp never overflows
        if v >= 0:
            y[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            y[i] = e / (1.0 + e)


@njit(**NJIT_PARALLEL)
def _sigmoid_bwd(g, y, dx):
    for i in prange(y.size):
        dx[i] = g[i] * y[i] * (1.0 - y[i])


@njit(**NJIT_PARALLEL)
def _tanh_fwd(x, y):
    for i in prange(x.size):
        y[i] = math.tanh(x[i])


@njit(**NJIT_PARALLEL)
def _tanh_bwd(g, y, dx):
    for i in prange(y.size):
        dx[i] = g[i] * (1.0 - y[i] * y[i])


def _flat_out(x):
    x = np.ascontiguousarray(x)
    return x, np.empty_like(x)


def _elementwise(kernel, arrays, *scalars):
    """kernel(*inputs, out, *scalars) over flat C-contiguous views; out is shaped like the last input."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    out = np.empty_like(arrays[-1])
    launch(kernel, out.size, *(a.reshape(-1) for a in arrays), out.reshape(-1), *scalars)
    return out


def relu_forward(x, negative_slope=0.0):
    return _elementwise(_relu_fwd, (x,), x.dtype.type(negative_slope))


def relu_backward(g, x, negative_slope=0.0):
    return _elementwise(_relu_bwd, (g, x), x.dtype.type(negative_slope))


def sigmoid_forward(x):
    return _elementwise(_sigmoid_fwd, (x,))


def sigmoid_backward(g, y):
    return _elementwise(_sigmoid_bwd, (g, y))


def tanh_forward(x):
    return _elementwise(_tanh_fwd, (x,))


def tanh_backward(g, y):
    return _elementwise(_tanh_bwd, (g, y))


# ----------------------------------------------------------------------------
# dropout
# ----------------------------------------------------------------------------

def dropout_mask(rng: np.random.Generator, shape, p: float, dtype):
    """Keep-mask already scaled by 1/(1-p), as PyTorch's inverted dropout."""
    keep = rng.random(shape, dtype=np.float32) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))



# ----------------------------------------------------------------------------
# softmax family, over the last axis of a 2-D (rows, classes) array
# ----------------------------------------------------------------------------

@njit(**NJIT)
def _log_softmax_rows(x, y):
    for r in range(x.shape[0]):
        m = -np.inf
        for j in range(x.shape[1]):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(x.shape[1]):
            s += math.exp(x[r, j] - m)
        lse = m + math.log(s)
        for j in range(x.shape[1]):
            y[r, j] = x[r, j] - lse


@njit(**NJIT)
def _log_softmax_rows_bwd(g, y, dx):
    for r in range(y.shape[0]):
        s = 0.0
        for j in range(y.shape[1]):
            s += g[r, j]
        for j in range(y.shape[1]):
            dx[r, j] = g[r, j] - math.exp(y[r, j]) * s


@njit(**NJIT)
def _softmax_rows_bwd(g, y, dx):
    for r in range(y.shape[0]):
        s = 0.0
        for j in range(y.shape[1]):
            s += g[r, j] * y[r, j]
        for j in range(y.shape[1]):
            dx[r, j] = y[r, j] * (g[r, j] - s)


def log_softmax_forward(x2d):
    x2d, y = _flat_out(x2d)
    _log_softmax_rows(x2d, y)
    return y


def log_softmax_backward(g2d, y2d):
    y2d, dx = _flat_out(y2d)
    _log_softmax_rows_bwd(np.ascontiguousarray(g2d), y2d, dx)
    return dx


def softmax_forward(x2d):
    return np.exp(log_softmax_forward(x2d))


def softmax_backward(g2d, y2d):
    y2d, dx = _flat_out(y2d)
    _softmax_rows_bwd(np.ascontiguousarray(g2d), y2d, dx)
    return dx


@njit(**NJIT)
def _nll(logp, target, weight, ignore_index, losses, wsel):
    for r in range(logp.shape[0]):
        t = target[r]
        if t == ignore_index:
            losses[r] = 0.0
            wsel[r] = 0.0
        else:
            wsel[r] = weight[t]
            losses[r] = -logp[r, t] * weight[t]


def nll_forward(logp2d, target, weight, ignore_index):
    """Per-row losses -w[t]*logp[r, t] and the weights used (0 where ignored)."""
    rows = logp2d.shape[0]
    losses = np.empty(rows, logp2d.dtype)
    wsel = np.empty(rows, logp2d.dtype)
    _nll(np.ascontiguousarray(logp2d), target.astype(np.int64, copy=False), weight,
         ignore_index, losses, wsel)
    return losses, wsel


def nll_backward(g_rows, target, wsel, shape, dtype):
    dx = np.zeros(shape, dtype)
    keep = wsel != 0
    r = np.nonzero(keep)[0]
    dx[r, target[r]] = -(g_rows[r] * wsel[r])
    return dx



def first_bad_target(target, classes, ignore_index):
    """The first class index outside 0..classes-1 (ignore_index allowed), or None."""
    bad = (target != ignore_index) & ((target < 0) | (target >= classes))
    return int(target[bad][0]) if bad.any() else None


# ----------------------------------------------------------------------------
# batch norm over (N, C, L): statistics per channel
# ----------------------------------------------------------------------------

@njit(**NJIT_SUMS)
def _bn_stats(x, mean, var):
    n, c, hw = x.shape
    cnt = n * hw
    for ci in prange(c):
        s = 0.0
        for b in range(n):
            row = x[b, ci]
            for i in range(hw):
                s += row[i]
        m = s / cnt
        q = 0.0
        for b in range(n):
            row = x[b, ci]
            for i in range(hw):
                d = row[i] - m
                q += d * d
        mean[ci] = m
        var[ci] = q / cnt


@njit(**NJIT_PARALLEL)
def _bn_apply(x, mean, invstd, gamma, beta, y, relu):
    n, c, hw = x.shape
    zero = y.dtype.type(0.0)
    for ci in prange(c):
        a = invstd[ci] * gamma[ci]
        sh = beta[ci] - mean[ci] * a
        for b in range(n):
            for i in range(hw):
                v = x[b, ci, i] * a + sh
                # relu as _relu_fwd computes it (v * 0 keeps the sign of -0.0 and NaN's NaN)
                y[b, ci, i] = v if not relu or v > 0 else v * zero


@njit(**NJIT_SUMS)
def _bn_bwd(g, x, mean, invstd, gamma, dx, dgamma, dbeta, training, y, relu):
    """Batch norm's backward; with relu, of g masked as _relu_bwd masks it where y (the fused
    forward's output) is not > 0, without writing the masked gradient out. (The relu test
    sits outside the inner loops, each of which LLVM then vectorises.)"""
    n, c, hw = x.shape
    cnt = n * hw
    zero = g.dtype.type(0.0)
    one = g.dtype.type(1.0)
    for ci in prange(c):
        mu = mean[ci]
        inv = invstd[ci]
        sg = 0.0
        sgx = 0.0
        for b in range(n):
            grow = g[b, ci]
            xrow = x[b, ci]
            if relu:
                yrow = y[b, ci]
                for i in range(hw):
                    # g * 1 is g and g * 0 is _relu_bwd's g * slope, bit for bit: one multiply
                    gv = grow[i] * (one if yrow[i] > 0 else zero)
                    sg += gv
                    sgx += gv * (xrow[i] - mu)
            else:
                for i in range(hw):
                    gv = grow[i]
                    sg += gv
                    sgx += gv * (xrow[i] - mu)
        sgx *= inv
        dgamma[ci] = sgx
        dbeta[ci] = sg
        a = gamma[ci] * inv
        # training: dx = a * (g - mean(g) - xhat * mean(g * xhat)), with xhat = (x - mu) * inv;
        # eval: dx = a * g
        mg = sg / cnt if training else 0.0
        k = sgx / cnt * inv if training else 0.0
        for b in range(n):
            grow = g[b, ci]
            xrow = x[b, ci]
            drow = dx[b, ci]
            if relu:
                yrow = y[b, ci]
                if training:
                    for i in range(hw):
                        gv = grow[i] * (one if yrow[i] > 0 else zero)
                        drow[i] = a * (gv - mg - (xrow[i] - mu) * k)
                else:
                    for i in range(hw):
                        drow[i] = a * (grow[i] * (one if yrow[i] > 0 else zero))
            elif training:
                for i in range(hw):
                    drow[i] = a * (grow[i] - mg - (xrow[i] - mu) * k)
            else:
                for i in range(hw):
                    drow[i] = a * grow[i]


def batch_norm_stats(x3):
    """Per-channel mean and biased variance of an (N, C, L) array."""
    c = x3.shape[1]
    mean = np.empty(c, np.float64)
    var = np.empty(c, np.float64)
    launch(_bn_stats, x3.size, np.ascontiguousarray(x3), mean, var)
    return mean.astype(x3.dtype), var.astype(x3.dtype)


def batch_norm_forward(x3, mean, invstd, gamma, beta):
    x3, y = _flat_out(x3)
    launch(_bn_apply, x3.size, x3, mean, invstd, gamma, beta, y, False)
    return y


def batch_norm_relu_forward(x3, mean, invstd, gamma, beta):
    """relu(batch_norm_forward(...)) in one pass: one read and one write of the activation fewer."""
    x3, y = _flat_out(x3)
    launch(_bn_apply, x3.size, x3, mean, invstd, gamma, beta, y, True)
    return y


def batch_norm_backward(g3, x3, mean, invstd, gamma, training):
    return _bn_backward(g3, x3, mean, invstd, gamma, training, None)


def batch_norm_relu_backward(g3, y3, x3, mean, invstd, gamma, training):
    """batch_norm_backward of relu's gradient (g3 where y3 > 0), the masked gradient never stored."""
    return _bn_backward(g3, x3, mean, invstd, gamma, training, y3)


def _bn_backward(g3, x3, mean, invstd, gamma, training, y3):
    x3, dx = _flat_out(x3)
    c = x3.shape[1]
    dgamma = np.empty(c, x3.dtype)
    dbeta = np.empty(c, x3.dtype)
    g3 = np.ascontiguousarray(g3)
    y = g3 if y3 is None else np.ascontiguousarray(y3).reshape(x3.shape)   # unread without relu
    launch(_bn_bwd, x3.size, g3, x3, mean, invstd, gamma, dx, dgamma, dbeta, training, y, y3 is not None)
    return dx, dgamma, dbeta
