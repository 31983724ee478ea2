"""Pooling kernels of the CPU backend: max pooling (keeping the winning tap for
backward) and window sums for average and sum pooling, forward and backward.
cpu.py re-exports the public functions; the tap ranges come from window.py, shared
with cpu_conv.py.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba import uint64 as _u  # an index known to be >= 0 skips the negative-index fix-up

from .._config import NJIT, NJIT_PARALLEL
from .cpu_threads import launch
from .window import tap_ranges, valid_range

# Pooling loops run kernel taps outside and output columns innermost, so the
# inner loop is a straight (vectorisable) pass over one output row.
#
# Max pooling records which window cell won (`arg`, its tap index i*kw + j): the
# first maximum in scan order, or the first NaN, which is the cell PyTorch's strict
# `>` picks. Backward then sends each gradient straight there, without reading the
# input again or comparing anything.

@njit(**NJIT_PARALLEL)
def _max_pool_fwd(x, y, arg, kh, kw, sh, sw, ph, pw, dh, dw):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    xlo, xhi = tap_ranges(kw, dw, pw, ow, sw, w)
    for plane in prange(n * c):
        b = plane // c
        ci = plane % c
        for oy in range(oh):
            yr = y[b, ci, oy]
            ar = arg[b, ci, oy]
            for ox in range(ow):
                yr[ox] = -np.inf
                ar[ox] = -1
            for i in range(kh):
                iy = oy * sh - ph + i * dh
                if iy < 0 or iy >= h:
                    continue
                xr = x[b, ci, iy]
                for j in range(kw):
                    off = j * dw - pw
                    t = i * kw + j
                    for ox in range(xlo[j], xhi[j]):
                        v = xr[_u(ox * sw + off)]
                        best = yr[ox]
                        # NaN wins and then sticks, as in PyTorch, so a diverging net shows NaN;
                        # bitwise operators and selects keep the loop free of branches
                        a = ar[ox]
                        take = (a < 0) | (v > best) | ((v != v) & (best == best))
                        yr[ox] = v if take else best
                        ar[ox] = t if take else a


@njit(**NJIT_PARALLEL)
def _max_pool_bwd(g, arg, dx, kh, kw, sh, sw, ph, pw, dh, dw):
    n, c = dx.shape[0], dx.shape[1]
    oh, ow = g.shape[2], g.shape[3]
    for plane in prange(n * c):
        b = plane // c
        ci = plane % c
        dp = dx[b, ci]
        for oy in range(oh):
            gr = g[b, ci, oy]
            ar = arg[b, ci, oy]
            for ox in range(ow):
                t = ar[ox]
                if t >= 0:  # always: every window holds at least one input cell
                    i = t // kw
                    dp[_u(oy * sh - ph + i * dh), _u(ox * sw - pw + (t - i * kw) * dw)] += gr[ox]


# MaxPool2d(2) (stride 2, no padding) is the pool nearly every CNN uses: its four
# taps are unrolled, and since its windows tile the input, backward writes every
# cell of dx once instead of zeroing dx and adding into it.

@njit(**NJIT)
def _wins(v, best):
    """Whether window cell v replaces the best so far: greater, or the first NaN."""
    return v > best or (v != v and best == best)


@njit(**NJIT_PARALLEL)
def _max_pool_fwd_2x2(x, y, arg):
    n, c = x.shape[0], x.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    for plane in prange(n * c):
        b = plane // c
        ci = plane % c
        for oy in range(oh):
            r0 = x[b, ci, 2 * oy]
            r1 = x[b, ci, 2 * oy + 1]
            yr = y[b, ci, oy]
            ar = arg[b, ci, oy]
            for ox in range(ow):
                j = 2 * ox
                m = r0[j]
                t = 0
                if _wins(r0[j + 1], m):
                    m = r0[j + 1]
                    t = 1
                if _wins(r1[j], m):
                    m = r1[j]
                    t = 2
                if _wins(r1[j + 1], m):
                    m = r1[j + 1]
                    t = 3
                yr[ox] = m
                ar[ox] = t


@njit(**NJIT_PARALLEL)
def _max_pool_bwd_2x2(g, arg, dx):
    n, c, h, w = dx.shape
    oh, ow = g.shape[2], g.shape[3]
    for plane in prange(n * c):
        b = plane // c
        ci = plane % c
        for oy in range(oh):
            d0 = dx[b, ci, 2 * oy]
            d1 = dx[b, ci, 2 * oy + 1]
            gr = g[b, ci, oy]
            ar = arg[b, ci, oy]
            for ox in range(ow):
                j = 2 * ox
                t = ar[ox]
                gv = gr[ox]
                d0[j] = gv if t == 0 else 0.0
                d0[j + 1] = gv if t == 1 else 0.0
                d1[j] = gv if t == 2 else 0.0
                d1[j + 1] = gv if t == 3 else 0.0
            for ix in range(2 * ow, w):  # an odd last column lies in no window
                d0[ix] = 0.0
                d1[ix] = 0.0
        for iy in range(2 * oh, h):  # an odd last row, likewise
            dr = dx[b, ci, iy]
            for ix in range(w):
                dr[ix] = 0.0


def _is_pool_2x2(x_shape, kernel, stride, padding, dilation, out_hw) -> bool:
    # ceil_mode can add a partial window at an odd edge: that goes to the general kernel
    return (tuple(kernel) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)
            and tuple(dilation) == (1, 1) and tuple(out_hw) == (x_shape[2] // 2, x_shape[3] // 2))


def max_pool2d_forward(x, kernel, stride, padding, dilation, out_hw):
    """Returns (y, arg): arg, the winning tap of each window, goes back to max_pool2d_backward."""
    n, c, _, _ = x.shape
    y = np.empty((n, c) + tuple(out_hw), x.dtype)
    if _is_pool_2x2(x.shape, kernel, stride, padding, dilation, out_hw):
        arg = np.empty(y.shape, np.int8)
        launch(_max_pool_fwd_2x2, x.size, x, y, arg)
    else:
        arg = np.empty(y.shape, np.int32)
        launch(_max_pool_fwd, x.size, x, y, arg, *kernel, *stride, *padding, *dilation)
    return y, arg


def max_pool2d_backward(g, x, y, saved, kernel, stride, padding, dilation):
    """`saved` is the arg array max_pool2d_forward returned."""
    g = np.ascontiguousarray(g)
    if _is_pool_2x2(x.shape, kernel, stride, padding, dilation, y.shape[2:]):
        dx = np.empty_like(x)
        launch(_max_pool_bwd_2x2, x.size, g, saved, dx)
    else:
        dx = np.zeros_like(x)
        launch(_max_pool_bwd, x.size, g, saved, dx, *kernel, *stride, *padding, *dilation)
    return dx


@njit(**NJIT_PARALLEL)
def _window_sum_fwd(x, y, scale, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for plane in prange(n * c):
        b = plane // c
        ci = plane % c
        for oy in range(oh):
            yr = y[b, ci, oy]
            yr[:] = 0.0
            for i in range(kh):
                iy = oy * sh - ph + i
                if iy < 0 or iy >= h:
                    continue
                xr = x[b, ci, iy]
                for j in range(kw):
                    off = j - pw
                    lo, hi = valid_range(ow, sw, off, w)
                    for ox in range(lo, hi):
                        yr[ox] += xr[_u(ox * sw + off)]
            sr = scale[oy]
            for ox in range(ow):
                yr[ox] *= sr[ox]


@njit(**NJIT_PARALLEL)
def _window_sum_bwd(g, dx, scale, kh, kw, sh, sw, ph, pw):
    n, c, h, w = dx.shape
    oh, ow = g.shape[2], g.shape[3]
    for plane in prange(n * c):
        b = plane // c
        ci = plane % c
        for oy in range(oh):
            gr = g[b, ci, oy]
            sr = scale[oy]
            for i in range(kh):
                iy = oy * sh - ph + i
                if iy < 0 or iy >= h:
                    continue
                dr = dx[b, ci, iy]
                for j in range(kw):
                    off = j - pw
                    lo, hi = valid_range(ow, sw, off, w)
                    for ox in range(lo, hi):
                        dr[_u(ox * sw + off)] += gr[ox] * sr[ox]


@njit(**NJIT_PARALLEL)
def _plane_means(x, y, scale):
    """y[p] = scale * (sum of plane p), summed in the order _window_sum_fwd uses (row by
    row), so global pooling gives the same bits on either kernel."""
    zero = np.zeros(1, y.dtype)[0]
    for p in prange(x.shape[0]):
        row = x[p]
        s = zero
        for i in range(row.size):
            s += row[i]
        y[p] = s * scale


def _whole_planes(hw, kernel, padding, out_hw) -> bool:
    """One window per plane, covering it: global average pooling, AdaptiveAvgPool2d((1, 1)).
    The window-sum kernels would run a one-wide inner loop per tap there."""
    return tuple(out_hw) == (1, 1) and tuple(kernel) == tuple(hw) and tuple(padding) == (0, 0)


def _pool_scale(hw, out_hw, kernel, stride, padding, count_include_pad, divisor_override, summing, dtype):
    """1/divisor for every output cell: PyTorch's avg_pool2d rule (or 1 for sum pooling)."""
    if summing:
        return np.ones(out_hw, dtype)
    if divisor_override:
        return np.full(out_hw, 1.0 / divisor_override, dtype)
    counts = []
    for n, o, k, s, p in zip(hw, out_hw, kernel, stride, padding):
        lo = np.arange(o) * s - p
        hi_pad = np.minimum(lo + k, n + p)
        if count_include_pad:
            counts.append(hi_pad - lo)
        else:
            counts.append(np.minimum(hi_pad, n) - np.maximum(lo, 0))
    return (1.0 / np.outer(counts[0], counts[1])).astype(dtype)


def avg_pool2d_forward(x, kernel, stride, padding, out_hw, count_include_pad=True,
                       divisor_override=0, summing=False):
    n, c, h, w = x.shape
    y = np.empty((n, c) + tuple(out_hw), x.dtype)
    scale = _pool_scale((h, w), out_hw, kernel, stride, padding, count_include_pad, divisor_override,
                        summing, x.dtype)
    if _whole_planes((h, w), kernel, padding, out_hw):
        launch(_plane_means, x.size, x.reshape(n * c, h * w), y.reshape(-1), scale[0, 0])
    else:
        launch(_window_sum_fwd, x.size, x, y, scale, *kernel, *stride, *padding)
    return y


def avg_pool2d_backward(g, x_shape, dtype, kernel, stride, padding, count_include_pad=True,
                        divisor_override=0, summing=False):
    scale = _pool_scale(x_shape[2:], g.shape[2:], kernel, stride, padding, count_include_pad,
                        divisor_override, summing, dtype)
    if _whole_planes(x_shape[2:], kernel, padding, g.shape[2:]):  # every cell gets its plane's share
        return np.ascontiguousarray(np.broadcast_to(g * scale, x_shape), dtype)
    dx = np.zeros(x_shape, dtype)
    launch(_window_sum_bwd, dx.size, np.ascontiguousarray(g), dx, scale, *kernel, *stride, *padding)
    return dx
