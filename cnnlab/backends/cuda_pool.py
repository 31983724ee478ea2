"""Pooling kernels of the CUDA backend: max and average pooling share one forward kernel,
one thread per output cell, and one backward kernel, one thread per input cell gathering
from the windows that cover it (no atomics: deterministic).
"""
from __future__ import annotations

import math

from numba import cuda

from .. import _config as cfg
from .cuda_array import launch_cells, new
from .window import valid_range

# The CPU's window arithmetic (window.py), compiled for the device: the taps i in [lo, hi) of
# output o read input o*stride - padding + i*dilation inside [0, n), so no tap is tested.
_taps = cuda.jit(device=True)(valid_range.py_func)


@cuda.jit(device=True)
def _window(x, n, c, oy, ox, kh, kw, sh, sw, ph, pw, dh, dw, is_max):
    """(value, row, column) of output cell (oy, ox)'s window in plane (n, c). value: the sum (float64),
    or with is_max the maximum, at (row, column): the first maximum in scan order, as the CPU picks
    it; the first NaN wins, as in PyTorch, so a diverging net shows NaN. Row -1: no input cell."""
    y0 = oy * sh - ph
    x0 = ox * sw - pw
    i0, i1 = _taps(kh, dh, y0, x.shape[2])
    j0, j1 = _taps(kw, dw, x0, x.shape[3])
    total = 0.0
    best = -math.inf
    at_y = -1
    at_x = -1
    for i in range(i0, i1):
        iy = y0 + i * dh
        for j in range(j0, j1):
            ix = x0 + j * dw
            v = x[n, c, iy, ix]
            total += v
            if at_y < 0 or (best == best and (v > best or v != v)):
                best = v
                at_y = iy
                at_x = ix
    return (best if is_max else total), at_y, at_x


@cuda.jit(**cfg.CUDA_JIT)
def _pool_fwd(x, y, kh, kw, sh, sw, ph, pw, dh, dw, is_max, include_pad, divisor, summing):
    ox, oy = cuda.grid(2)  # (blockIdx * blockDim + threadIdx) along x and y
    if ox >= y.shape[3] or oy >= y.shape[2]:
        return
    scale = 1.0 if is_max else _pool_scale(oy, ox, x.shape[2], x.shape[3], kh, kw, sh, sw, ph, pw, include_pad,
                                           divisor, summing)
    for z in range(cuda.blockIdx.z, y.shape[0] * y.shape[1], cuda.gridDim.z):
        n, c = divmod(z, y.shape[1])
        y[n, c, oy, ox] = _window(x, n, c, oy, ox, kh, kw, sh, sw, ph, pw, dh, dw, is_max)[0] * scale


def max_pool2d_forward(x, kernel, stride, padding, dilation, out_hw):
    """Returns (y, None): backward finds each window's maximum again."""
    n, c, _, _ = x.shape
    y = new((n, c) + tuple(out_hw), x.dtype)
    launch_cells(_pool_fwd, y.shape, 1, x.nd(), y.nd(), *kernel, *stride, *padding, *dilation, True, False, 0, False)
    return y, None


def max_pool2d_backward(g, x, y, saved, kernel, stride, padding, dilation):
    dx = new(x.shape, x.dtype)
    launch_cells(_pool_bwd, dx.shape, 1, g.nd(), x.nd(), dx.nd(), *kernel, *stride, *padding, *dilation, True,
                 False, 0, False)
    return dx


@cuda.jit(device=True)
def _pool_count(o, s, p, k, n, include_pad):
    lo = o * s - p
    hi_pad = min(lo + k, n + p)
    if include_pad:
        return hi_pad - lo
    return min(hi_pad, n) - max(lo, 0)


@cuda.jit(device=True)
def _pool_scale(oy, ox, h, w, kh, kw, sh, sw, ph, pw, include_pad, divisor, summing):
    """1/divisor of one output cell: PyTorch's avg_pool2d rule (or 1 for sum pooling)."""
    if summing:
        return 1.0
    if divisor != 0:
        return 1.0 / divisor
    return 1.0 / (_pool_count(oy, sh, ph, kh, h, include_pad) * _pool_count(ox, sw, pw, kw, w, include_pad))


@cuda.jit(**cfg.CUDA_JIT)
def _pool_bwd(g, x, dx, kh, kw, sh, sw, ph, pw, dh, dw, is_max, include_pad, divisor, summing):
    # One thread per input cell gathers from every output whose window covers it: the
    # gradient times 1/divisor (average), or all of it where the window's maximum is this
    # cell (max: each window's maximum found again, cheaper than storing the arg-max). No
    # atomics and no zero-filled dx first, and a fixed summation order: deterministic.
    ix, iy = cuda.grid(2)  # (blockIdx * blockDim + threadIdx) along x and y
    h, wd = dx.shape[2], dx.shape[3]
    oh, ow = g.shape[2], g.shape[3]
    if ix >= wd or iy >= h:
        return
    for z in range(cuda.blockIdx.z, dx.shape[0] * dx.shape[1], cuda.gridDim.z):
        n, c = divmod(z, dx.shape[1])
        s = 0.0
        for i in range(kh):
            ty = iy + ph - i * dh
            if ty < 0 or ty % sh != 0 or ty // sh >= oh:
                continue
            oy = ty // sh
            for j in range(kw):
                tx = ix + pw - j * dw
                if tx < 0 or tx % sw != 0 or tx // sw >= ow:
                    continue
                ox = tx // sw
                if not is_max:
                    s += g[n, c, oy, ox] * _pool_scale(oy, ox, h, wd, kh, kw, sh, sw, ph, pw, include_pad, divisor,
                                                       summing)
                else:
                    _, wy, wx = _window(x, n, c, oy, ox, kh, kw, sh, sw, ph, pw, dh, dw, True)
                    if wy == iy and wx == ix:
                        s += g[n, c, oy, ox]
        dx[n, c, iy, ix] = s


def avg_pool2d_forward(x, kernel, stride, padding, out_hw, count_include_pad=True,
                       divisor_override=0, summing=False):
    n, c, _, _ = x.shape
    y = new((n, c) + tuple(out_hw), x.dtype)
    launch_cells(_pool_fwd, y.shape, 1, x.nd(), y.nd(), *kernel, *stride, *padding, 1, 1, False,
                 bool(count_include_pad), int(divisor_override or 0), bool(summing))
    return y


def avg_pool2d_backward(g, x_shape, dtype, kernel, stride, padding, count_include_pad=True,
                        divisor_override=0, summing=False):
    dx = new(x_shape, dtype)
    launch_cells(_pool_bwd, dx.shape, 1, g.nd(), dx.nd(), dx.nd(), *kernel, *stride, *padding, 1, 1, False,
                 bool(count_include_pad), int(divisor_override or 0), bool(summing))  # dx stands in for x: unread
    return dx
