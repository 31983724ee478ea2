"""CPU backend: NumPy for plain array maths, numba.njit kernels for the CNN ops.

The contract every backend follows: functions take and return backend arrays
(here numpy.ndarray), never Tensors; `*_forward` returns what backward needs,
`*_backward` returns gradients. Kernels (`_name`) are private and write into
preallocated outputs; the public wrappers allocate.

Matrix products go to BLAS (sgemm through NumPy): no hand-written loop in
numba comes near it, and numba's own np.dot would call the same library.
Convolution lives in cpu_conv.py (a direct kernel for 3x3 stride 1, im2col +
sgemm for the rest), pooling in cpu_pool.py.
"""
from __future__ import annotations

import math
import sys

import numpy as np
from numba import njit, prange

from .._config import NJIT, NJIT_PARALLEL, QUIET
from .cpu_conv import conv2d_backward, conv2d_forward  # noqa: F401 - the backend contract
from .cpu_pool import (  # noqa: F401 - the backend contract
    avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
)

name = "cpu"


# ----------------------------------------------------------------------------
# arrays
# ----------------------------------------------------------------------------

def asarray(data, dtype=None) -> np.ndarray:
    return np.asarray(data, dtype=dtype)


def to_numpy(a: np.ndarray) -> np.ndarray:
    return a


def from_numpy(a: np.ndarray) -> np.ndarray:
    return a


def empty(shape, dtype) -> np.ndarray:
    return np.empty(shape, dtype)


def zeros(shape, dtype) -> np.ndarray:
    return np.zeros(shape, dtype)


def full(shape, value, dtype) -> np.ndarray:
    return np.full(shape, value, dtype)


def copy(a):
    return a.copy()


def astype(a, dtype):
    return a.astype(dtype, copy=False)


# ----------------------------------------------------------------------------
# elementwise, reductions, shapes (NumPy does these well; the GPU twin needs kernels)
# ----------------------------------------------------------------------------

add = np.add
subtract = np.subtract
multiply = np.multiply
divide = np.divide
negative = np.negative
power = np.power
exp = np.exp
log = np.log
sqrt = np.sqrt
absolute = np.abs
sign = np.sign
maximum = np.maximum
where = np.where
equal = np.equal
not_equal = np.not_equal
less = np.less
less_equal = np.less_equal
greater = np.greater
greater_equal = np.greater_equal
logical_and = np.logical_and
logical_or = np.logical_or
matmul = np.matmul
clip = np.clip


def sum(a, axis=None, keepdims=False):  # noqa: A001 - the backend contract's name
    return np.sum(a, axis=axis, keepdims=keepdims)


def amax(a, axis=None, keepdims=False):
    return np.max(a, axis=axis, keepdims=keepdims)


def argmax(a, axis=None, keepdims=False):
    return np.argmax(a, axis=axis, keepdims=keepdims)


def reshape(a, shape):
    return np.reshape(a, shape)


def transpose(a, axes):
    return np.transpose(a, axes)


def broadcast_to(a, shape):
    return np.broadcast_to(a, shape)


def ascontiguous(a):
    return a if a.flags.c_contiguous else np.array(a, order="C")  # keeps 0-d arrays 0-d


def concatenate(arrays, axis):
    return np.concatenate(arrays, axis=axis)


def split(a, indices, axis):
    return np.split(a, indices, axis=axis)


def pad2d(a, top, bottom, left, right, value=0.0):
    """Zero (or `value`) border around the last two axes."""
    widths = [(0, 0)] * (a.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(a, widths, constant_values=value)


def unpad2d(a, top, bottom, left, right):
    h, w = a.shape[-2:]
    return np.ascontiguousarray(a[..., top:h - bottom, left:w - right])


def getitem(a, index):
    return a[index]


def index_add(shape, dtype, index, values):
    """zeros(shape)[index] += values, with repeated indices accumulating."""
    out = np.zeros(shape, dtype)
    np.add.at(out, index, values)
    return out


def sum_to_shape(g, shape):
    """Undo broadcasting: sum g down to `shape`."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def first_bad_target(target, classes, ignore_index):
    """The first class index outside 0..classes-1 (ignore_index allowed), or None."""
    bad = (target != ignore_index) & ((target < 0) | (target >= classes))
    return int(target[bad][0]) if bad.any() else None


def random_uniform(rng: np.random.Generator, shape, low, high, dtype):
    return rng.uniform(low, high, size=shape).astype(dtype)


def random_normal(rng: np.random.Generator, shape, mean, std, dtype):
    return rng.normal(mean, std, size=shape).astype(dtype)


def dropout_mask(rng: np.random.Generator, shape, p: float, dtype):
    """Keep-mask already scaled by 1/(1-p), as PyTorch's inverted dropout."""
    keep = rng.random(shape, dtype=np.float32) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


# ----------------------------------------------------------------------------
# dense layer (BLAS)
# ----------------------------------------------------------------------------

def linear_forward(x, w, b):
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_backward(x, w, g, need_x, need_w, need_b):
    x2 = x.reshape(-1, x.shape[-1])
    g2 = g.reshape(-1, g.shape[-1])
    dx = (g @ w) if need_x else None
    dw = (g2.T @ x2) if need_w else None
    db = g2.sum(axis=0) if need_b else None
    return dx, dw, db


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


def relu_forward(x, negative_slope=0.0):
    x, y = _flat_out(x)
    _relu_fwd(x.reshape(-1), y.reshape(-1), x.dtype.type(negative_slope))
    return y


def relu_backward(g, x, negative_slope=0.0):
    x, dx = _flat_out(x)
    _relu_bwd(np.ascontiguousarray(g).reshape(-1), x.reshape(-1), dx.reshape(-1),
              x.dtype.type(negative_slope))
    return dx


def sigmoid_forward(x):
    x, y = _flat_out(x)
    _sigmoid_fwd(x.reshape(-1), y.reshape(-1))
    return y


def sigmoid_backward(g, y):
    y, dx = _flat_out(y)
    _sigmoid_bwd(np.ascontiguousarray(g).reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx


def tanh_forward(x):
    x, y = _flat_out(x)
    _tanh_fwd(x.reshape(-1), y.reshape(-1))
    return y


def tanh_backward(g, y):
    y, dx = _flat_out(y)
    _tanh_bwd(np.ascontiguousarray(g).reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx


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


# ----------------------------------------------------------------------------
# batch norm over (N, C, L): statistics per channel
# ----------------------------------------------------------------------------

# The per-channel sums are float64 and allowed to be reassociated ('reassoc', nothing
# else of fastmath), so LLVM keeps several vector partial sums instead of one serial
# chain of dependent adds (~4x faster; the float64 rounding difference never reaches
# the float32 results in practice, and a given build always sums in the same order).
_SUMS = dict(NJIT_PARALLEL, fastmath={"reassoc"})


@njit(**_SUMS)
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
def _bn_apply(x, mean, invstd, gamma, beta, y):
    n, c, hw = x.shape
    for ci in prange(c):
        a = invstd[ci] * gamma[ci]
        sh = beta[ci] - mean[ci] * a
        for b in range(n):
            for i in range(hw):
                y[b, ci, i] = x[b, ci, i] * a + sh


@njit(**_SUMS)
def _bn_bwd(g, x, mean, invstd, gamma, dx, dgamma, dbeta, training):
    n, c, hw = x.shape
    cnt = n * hw
    for ci in prange(c):
        mu = mean[ci]
        inv = invstd[ci]
        sg = 0.0
        sgx = 0.0
        for b in range(n):
            grow = g[b, ci]
            xrow = x[b, ci]
            for i in range(hw):
                gv = grow[i]
                sg += gv
                sgx += gv * (xrow[i] - mu)
        sgx *= inv
        dgamma[ci] = sgx
        dbeta[ci] = sg
        a = gamma[ci] * inv
        if training:
            # dx = a * (g - mean(g) - xhat * mean(g * xhat)), with xhat = (x - mu) * inv
            mg = sg / cnt
            k = sgx / cnt * inv
            for b in range(n):
                grow = g[b, ci]
                xrow = x[b, ci]
                drow = dx[b, ci]
                for i in range(hw):
                    drow[i] = a * (grow[i] - mg - (xrow[i] - mu) * k)
        else:
            for b in range(n):
                grow = g[b, ci]
                drow = dx[b, ci]
                for i in range(hw):
                    drow[i] = a * grow[i]


def batch_norm_stats(x3):
    """Per-channel mean and biased variance of an (N, C, L) array."""
    c = x3.shape[1]
    mean = np.empty(c, np.float64)
    var = np.empty(c, np.float64)
    _bn_stats(np.ascontiguousarray(x3), mean, var)
    return mean.astype(x3.dtype), var.astype(x3.dtype)


def batch_norm_forward(x3, mean, invstd, gamma, beta):
    x3, y = _flat_out(x3)
    _bn_apply(x3, mean, invstd, gamma, beta, y)
    return y


def batch_norm_backward(g3, x3, mean, invstd, gamma, training):
    x3, dx = _flat_out(x3)
    c = x3.shape[1]
    dgamma = np.empty(c, x3.dtype)
    dbeta = np.empty(c, x3.dtype)
    _bn_bwd(np.ascontiguousarray(g3), x3, mean, invstd, gamma, dx, dgamma, dbeta, training)
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------
# optimizer updates, in place on flat views
# ----------------------------------------------------------------------------

@njit(**NJIT_PARALLEL)
def _sgd(p, g, buf, lr, momentum, keep, nesterov, weight_decay, first):
    """PyTorch's single-tensor SGD step, element by element, in the parameters' precision
    (`keep` is 1 - dampening)."""
    for i in prange(p.size):
        d = g[i]
        if weight_decay != 0.0:
            d = d + weight_decay * p[i]
        if momentum != 0.0:
            if first:
                b = d
            else:
                b = buf[i] * momentum + keep * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d


@njit(**NJIT, inline="always")
def _adam_moments(d, m, v, w1, b1, b2, w2):
    """The two moving averages, as PyTorch updates them: m.lerp_(g, w1), v.mul_(b2).addcmul_(g, g, w2)."""
    if w1 < 0.5:  # PyTorch's lerp uses the form that is exact at its nearer end
        m = m + w1 * (d - m)
    else:
        m = d - (d - m) * b1
    return m, v * b2 + w2 * d * d


@njit(**NJIT_PARALLEL)
def _adam_plain(p, g, m, v, w1, b1, b2, w2, step_size, bc2_sqrt, eps):
    """Adam without weight decay or amsgrad, in the parameters' own precision and in the
    order of PyTorch's single-tensor Adam (lerp, mul + addcmul, sqrt / bias + eps,
    addcdiv), so float32 parameters follow PyTorch's float32 arithmetic. Branch-free
    apart from the loop-invariant lerp form, so the loop vectorises."""
    for i in prange(p.size):
        mi, vi = _adam_moments(g[i], m[i], v[i], w1, b1, b2, w2)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] + step_size * (mi / (math.sqrt(vi) / bc2_sqrt + eps))


@njit(**NJIT_PARALLEL)
def _adam(p, g, m, v, vmax, w1, b1, b2, w2, step_size, bc2_sqrt, eps, weight_decay, decay_factor, decoupled,
          amsgrad):
    """The general case: weight decay (L2 or decoupled) and/or amsgrad; same order as above."""
    for i in prange(p.size):
        d = g[i]
        if decoupled:
            p[i] = p[i] * decay_factor
        elif weight_decay != 0.0:
            d = d + weight_decay * p[i]
        mi, vi = _adam_moments(d, m[i], v[i], w1, b1, b2, w2)
        m[i] = mi
        v[i] = vi
        if amsgrad:
            if vi > vmax[i]:
                vmax[i] = vi
            vi = vmax[i]
        p[i] = p[i] + step_size * (mi / (math.sqrt(vi) / bc2_sqrt + eps))


def sgd_step(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    dt = p.dtype.type   # float32 parameters get float32 arithmetic, as in PyTorch
    _sgd(p.reshape(-1), np.ascontiguousarray(g).reshape(-1), buf.reshape(-1), dt(lr), dt(momentum),
         dt(1.0 - dampening), nesterov, dt(weight_decay), first)


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad):
    # scalars are computed in float64 (as PyTorch does in Python) and handed to the
    # kernel in the parameters' dtype, so float32 parameters get float32 arithmetic
    dt = p.dtype.type
    step_size = -lr / (1.0 - beta1 ** step)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    flat = (p.reshape(-1), np.ascontiguousarray(g).reshape(-1), m.reshape(-1), v.reshape(-1))
    common = (dt(1.0 - beta1), dt(beta1), dt(beta2), dt(1.0 - beta2), dt(step_size), dt(bc2_sqrt), dt(eps))
    if weight_decay == 0.0 and not amsgrad:
        _adam_plain(*flat, *common)
    else:
        _adam(*flat, vmax.reshape(-1), *common, dt(weight_decay), dt(1.0 - lr * weight_decay), decoupled, amsgrad)


# ----------------------------------------------------------------------------
# first-run notice
# ----------------------------------------------------------------------------

def _announce_compiles() -> None:
    """Say once, on stderr, when numba starts compiling one of these kernels.

    Loading a kernel from numba's cache raises no compile event, so a warm
    start stays silent; a cold one (first run, new numba, changed source) says why it waits.
    """
    try:
        from numba.core import event
    except ImportError:  # numba moved its event API: stay silent rather than break
        return

    class _Once(event.Listener):
        told = False

        def on_start(self, ev):
            disp = getattr(ev, "data", {}).get("dispatcher") if isinstance(getattr(ev, "data", None), dict) else None
            module = getattr(getattr(disp, "py_func", None), "__module__", "")
            if not self.told and module.startswith(__name__):
                self.told = True
                print("cnnlab: compiling CPU kernels (first run only, up to a minute; cached afterwards)...",
                      file=sys.stderr, flush=True)

        def on_end(self, ev):
            pass

    event.register("numba:compile", _Once())


if not QUIET:
    _announce_compiles()
