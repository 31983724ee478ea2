"""The im2col / col2im kernels of the CPU backend's general convolution path (cpu_conv.py
multiplies their columns with one sgemm per chunk of images).

cols has shape (C*kh*kw, n, OH*OW): one row per kernel tap, so that
W.reshape(K, C*kh*kw) @ cols.reshape(C*kh*kw, n*OH*OW) is one sgemm.
"""
from __future__ import annotations

from numba import njit, prange
from numba import uint64 as _u  # an index known to be >= 0 skips the negative-index fix-up

from .._config import NJIT_PARALLEL
from .window import tap_ranges

# Kernels index one-dimensional row views (x[b, c, iy], cols[row, b]): LLVM then
# sees plain strided loops it can vectorise, where 4-D indexing with possibly
# negative indices is 5-10x slower.


@njit(**NJIT_PARALLEL)
def _im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    ylo, yhi = tap_ranges(kh, dh, ph, oh, sh, h)
    xlo, xhi = tap_ranges(kw, dw, pw, ow, sw, w)
    for b in prange(n):
        for ci in range(c):
            for i in range(kh):
                for j in range(kw):
                    cr = cols[(ci * kh + i) * kw + j, b]
                    off = j * dw - pw
                    x_lo, x_hi = xlo[j], xhi[j]
                    for oy in range(oh):
                        base = oy * ow
                        if oy < ylo[i] or oy >= yhi[i]:
                            for ox in range(ow):
                                cr[base + ox] = 0.0
                            continue
                        xr = x[b, ci, oy * sh - ph + i * dh]
                        for ox in range(x_lo):
                            cr[base + ox] = 0.0
                        for ox in range(x_lo, x_hi):
                            cr[base + ox] = xr[_u(ox * sw + off)]
                        for ox in range(x_hi, ow):
                            cr[base + ox] = 0.0


@njit(**NJIT_PARALLEL)
def _col2im(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = dx.shape
    ylo, yhi = tap_ranges(kh, dh, ph, oh, sh, h)
    xlo, xhi = tap_ranges(kw, dw, pw, ow, sw, w)
    for b in prange(n):
        for ci in range(c):
            for i in range(kh):
                for j in range(kw):
                    cr = cols[(ci * kh + i) * kw + j, b]
                    off = j * dw - pw
                    x_lo, x_hi = xlo[j], xhi[j]
                    for oy in range(ylo[i], yhi[i]):
                        dr = dx[b, ci, oy * sh - ph + i * dh]
                        base = oy * ow
                        for ox in range(x_lo, x_hi):
                            dr[_u(ox * sw + off)] += cr[base + ox]


@njit(**NJIT_PARALLEL)
def _im2col_pn(xt, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """cols[row, oy*ow+ox, b]: the batch innermost, for small outputs where
    the per-row loops of _im2col would be shorter than their overhead.
    xt is the input in (C, H, W, N) order, so each copy is a contiguous run of N."""
    c, h, w, n = xt.shape
    for row in prange(c * kh * kw):
        ci = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        cr = cols[row]
        for oy in range(oh):
            iy = oy * sh - ph + i * dh
            for ox in range(ow):
                ix = ox * sw - pw + j * dw
                out = cr[oy * ow + ox]
                if iy < 0 or iy >= h or ix < 0 or ix >= w:
                    for b in range(n):
                        out[b] = 0.0
                else:
                    src = xt[ci, iy, ix]
                    for b in range(n):
                        out[b] = src[b]


@njit(**NJIT_PARALLEL)
def _col2im_pn(cols, dxt, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """The adjoint of _im2col_pn, accumulating into dxt in (C, H, W, N) order."""
    c, h, w, n = dxt.shape
    for ci in prange(c):
        for i in range(kh):
            for j in range(kw):
                cr = cols[(ci * kh + i) * kw + j]
                for oy in range(oh):
                    iy = oy * sh - ph + i * dh
                    if iy < 0 or iy >= h:
                        continue
                    for ox in range(ow):
                        ix = ox * sw - pw + j * dw
                        if ix < 0 or ix >= w:
                            continue
                        src = cr[oy * ow + ox]
                        dst = dxt[ci, iy, ix]
                        for b in range(n):
                            dst[b] += src[b]
