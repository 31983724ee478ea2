"""Pooling kernels of the CUDA backend: one thread per output cell (forward) or input
cell (backward gathers); max-pool backward adds with atomics, as windows may overlap.
"""
from __future__ import annotations

import math

from numba import cuda

from .cuda_array import launch_cells, new, zeros

@cuda.jit
def _max_pool_fwd(x, y, kh, kw, sh, sw, ph, pw, dh, dw):
    n_img, c_in, h, wd = x.shape
    oh, ow = y.shape[2], y.shape[3]
    ox, oy = cuda.grid(2)  # (blockIdx * blockDim + threadIdx) along x and y
    if ox >= ow or oy >= oh:
        return
    for z in range(cuda.blockIdx.z, n_img * c_in, cuda.gridDim.z):
        n, c = divmod(z, c_in)
        best = -math.inf
        for i in range(kh):
            iy = oy * sh - ph + i * dh
            if iy < 0 or iy >= h:
                continue
            for j in range(kw):
                ix = ox * sw - pw + j * dw
                if ix < 0 or ix >= wd:
                    continue
                v = x[n, c, iy, ix]
                # NaN wins and then sticks, as in PyTorch, so a diverging net shows NaN
                if v > best or v != v:
                    best = v
        y[n, c, oy, ox] = best


@cuda.jit
def _max_pool_bwd(g, x, y, dx, kh, kw, sh, sw, ph, pw, dh, dw):
    # The gradient goes to the first window cell equal to the max, in scan order (as the
    # CPU); overlapping windows may pick one cell twice, hence the atomic add.
    n_img, c_in, h, wd = x.shape
    oh, ow = y.shape[2], y.shape[3]
    ox, oy = cuda.grid(2)  # (blockIdx * blockDim + threadIdx) along x and y
    if ox >= ow or oy >= oh:
        return
    for z in range(cuda.blockIdx.z, n_img * c_in, cuda.gridDim.z):
        n, c = divmod(z, c_in)
        m = y[n, c, oy, ox]
        nan = m != m
        done = False
        for i in range(kh):
            iy = oy * sh - ph + i * dh
            if done or iy < 0 or iy >= h:
                continue
            for j in range(kw):
                ix = ox * sw - pw + j * dw
                if done or ix < 0 or ix >= wd:
                    continue
                v = x[n, c, iy, ix]
                if v == m or (nan and v != v):
                    cuda.atomic.add(dx, (n, c, iy, ix), g[n, c, oy, ox])
                    done = True


def max_pool2d_forward(x, kernel, stride, padding, dilation, out_hw):
    """Returns (y, None): backward finds each window's maximum again (one thread per
    output cell re-reads its window, cheaper here than storing the arg-max)."""
    n, c, _, _ = x.shape
    y = new((n, c) + tuple(out_hw), x.dtype)
    launch_cells(_max_pool_fwd, y.shape, 1, x.nd(), y.nd(), *kernel, *stride, *padding, *dilation)
    return y, None


def max_pool2d_backward(g, x, y, saved, kernel, stride, padding, dilation):
    dx = zeros(x.shape, x.dtype)
    launch_cells(_max_pool_bwd, y.shape, 1, g.nd(), x.nd(), y.nd(), dx.nd(), *kernel, *stride, *padding,
                 *dilation)
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


@cuda.jit
def _window_sum_fwd(x, y, kh, kw, sh, sw, ph, pw, include_pad, divisor, summing):
    n_img, c_in, h, wd = x.shape
    oh, ow = y.shape[2], y.shape[3]
    ox, oy = cuda.grid(2)  # (blockIdx * blockDim + threadIdx) along x and y
    if ox >= ow or oy >= oh:
        return
    scale = _pool_scale(oy, ox, h, wd, kh, kw, sh, sw, ph, pw, include_pad, divisor, summing)
    for z in range(cuda.blockIdx.z, n_img * c_in, cuda.gridDim.z):
        n, c = divmod(z, c_in)
        s = 0.0
        for i in range(kh):
            iy = oy * sh - ph + i
            if iy < 0 or iy >= h:
                continue
            for j in range(kw):
                ix = ox * sw - pw + j
                if ix >= 0 and ix < wd:
                    s += x[n, c, iy, ix]
        y[n, c, oy, ox] = s * scale


@cuda.jit
def _window_sum_bwd(g, dx, kh, kw, sh, sw, ph, pw, include_pad, divisor, summing):
    n_img, c_in, h, wd = dx.shape
    oh, ow = g.shape[2], g.shape[3]
    ix, iy = cuda.grid(2)  # (blockIdx * blockDim + threadIdx) along x and y
    if ix >= wd or iy >= h:
        return
    for z in range(cuda.blockIdx.z, n_img * c_in, cuda.gridDim.z):
        n, c = divmod(z, c_in)
        s = 0.0
        for i in range(kh):
            ty = iy + ph - i
            if ty < 0 or ty % sh != 0 or ty // sh >= oh:
                continue
            oy = ty // sh
            for j in range(kw):
                tx = ix + pw - j
                if tx < 0 or tx % sw != 0 or tx // sw >= ow:
                    continue
                ox = tx // sw
                s += g[n, c, oy, ox] * _pool_scale(oy, ox, h, wd, kh, kw, sh, sw, ph, pw, include_pad, divisor,
                                                   summing)
        dx[n, c, iy, ix] = s


def avg_pool2d_forward(x, kernel, stride, padding, out_hw, count_include_pad=True,
                       divisor_override=0, summing=False):
    n, c, _, _ = x.shape
    y = new((n, c) + tuple(out_hw), x.dtype)
    launch_cells(_window_sum_fwd, y.shape, 1, x.nd(), y.nd(), *kernel, *stride, *padding,
                 bool(count_include_pad), int(divisor_override or 0), bool(summing))
    return y


def avg_pool2d_backward(g, x_shape, dtype, kernel, stride, padding, count_include_pad=True,
                        divisor_override=0, summing=False):
    dx = new(x_shape, dtype)
    launch_cells(_window_sum_bwd, dx.shape, 1, g.nd(), dx.nd(), *kernel, *stride, *padding,
                 bool(count_include_pad), int(divisor_override or 0), bool(summing))
    return dx
