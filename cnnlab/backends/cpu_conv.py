"""Convolution kernels of the CPU backend, and the two ways they are used.

- 3x3, stride 1 (any padding up to the dilated kernel's reach, any dilation):
  a direct convolution over "padded flat" planes. Each input plane is padded
  and laid out as one row of width Wp = W + 2*pw, so a kernel tap (i, j) is a
  fixed offset i*dh*Wp + j*dw into it and one output plane is a straight,
  vectorisable pass over Wp*OH positions (the 2*dw extra positions per row are
  computed and dropped). No im2col matrix is built; each pass feeds two output
  channels from the same nine loads. Its gradients are the same pass: the input
  gradient is this convolution of the padded output gradient with the kernel
  flipped and transposed, and the weight gradient nine dot products per
  channel pair.
  It pays on planes of about 128 flat positions or more; below that (7x7 and
  smaller, a ResNet's later stages) im2col + sgemm is faster.
- 1x1, no padding: one matrix product per image, no im2col copy (a strided one
  first takes every s-th row and column).
- anything else: im2col (a numba kernel) followed by one sgemm per chunk of
  images, so the column buffer stays in cache.

Before choosing, a kernel is cropped to the taps that reach real input for some
output (window.live_taps): a 3x3 padding-1 convolution of a 1x1 plane is a 1x1 one,
and the cropped taps' weight gradients are zero.

The direct kernels let LLVM fuse multiply-adds, and the weight gradient's sums be
vectorised: their fastmath flags, and why, are in cnnlab/_config.py.
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit, prange
from numba import uint64 as _u  # an index known to be >= 0 skips the negative-index fix-up

from .._config import NJIT, NJIT_FMA, NJIT_FMA_SUMS, NJIT_PARALLEL
from .cpu_threads import launch
from .window import live_taps, tap_ranges

# ----------------------------------------------------------------------------
# im2col / col2im kernels + sgemm
# ----------------------------------------------------------------------------
# cols has shape (C*kh*kw, n, OH*OW): one row per kernel tap, so that
# W.reshape(K, C*kh*kw) @ cols.reshape(C*kh*kw, n*OH*OW) is one sgemm.

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


# Columns up to this size are built once for the whole batch (and kept for the
# weight gradient); larger ones are built in chunks of images and rebuilt in backward.
_CONV_WHOLE_BYTES = int(os.environ.get("CNNLAB_CONV_WHOLE_BYTES", 48 << 20))
_CONV_CHUNK_BYTES = int(os.environ.get("CNNLAB_CONV_CHUNK_BYTES", 4 << 20))
_SHORT_ROWS = 16  # below this output width the batch-innermost layout wins


def _conv_plan(n, ckk, p, ow, itemsize):
    """(layout, images per chunk): 'pn' for small outputs, else 'np' in chunks."""
    if ow < _SHORT_ROWS or ckk * p * n * itemsize <= _CONV_WHOLE_BYTES:
        return ("pn" if ow < _SHORT_ROWS else "np"), max(1, n)  # an empty batch: one empty chunk
    return "np", max(1, min(n, _CONV_CHUNK_BYTES // max(1, ckk * p * itemsize)))


def _columns(x, layout, s, e, geom):
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geom
    ckk = x.shape[1] * kh * kw
    m = e - s
    if layout == "pn":
        cols = np.empty((ckk, oh * ow, m), x.dtype)
        launch(_im2col_pn, cols.size, np.ascontiguousarray(x[s:e].transpose(1, 2, 3, 0)), cols, kh, kw, sh, sw,
               ph, pw, dh, dw, oh, ow)
    else:
        cols = np.empty((ckk, m, oh * ow), x.dtype)
        launch(_im2col, cols.size, x[s:e], cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return cols.reshape(ckk, -1)


def _im2col_forward(x, w, b, stride, padding, dilation, out_hw, keep_columns):
    """Any geometry: columns, then one sgemm per chunk of images. `saved` is the
    column buffer when it was built whole and keep_columns asked for it, else None."""
    n, c, _, _ = x.shape
    k, _, kh, kw = w.shape
    oh, ow = out_hw
    p = oh * ow
    ckk = c * kh * kw
    geom = (kh, kw, *stride, *padding, *dilation, oh, ow)
    w2 = w.reshape(k, ckk)
    layout, step = _conv_plan(n, ckk, p, ow, x.itemsize)
    y = np.empty((n, k, p), x.dtype)
    saved = None
    for s in range(0, n, step):
        e = min(n, s + step)
        cols = _columns(x, layout, s, e, geom)
        out = (w2 @ cols).reshape(k, -1, e - s) if layout == "pn" else (w2 @ cols).reshape(k, e - s, p)
        out = out.transpose(2, 0, 1) if layout == "pn" else out.transpose(1, 0, 2)
        if b is not None:  # the bias rides along with the copy into NCHW order
            np.add(out, b[None, :, None], out=y[s:e])
        else:
            y[s:e] = out
        if keep_columns and step == n:
            saved = cols
    return y.reshape(n, k, oh, ow), saved


def _im2col_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    n, c, _, _ = x.shape
    k, _, kh, kw = w.shape
    _, _, oh, ow = g.shape
    p = oh * ow
    ckk = c * kh * kw
    geom = (kh, kw, *stride, *padding, *dilation, oh, ow)
    w2 = w.reshape(k, ckk)
    gv = g.reshape(n, k, p)
    layout, step = _conv_plan(n, ckk, p, ow, x.itemsize)
    dx = np.zeros_like(x) if need_x else None
    dw_ = np.zeros((k, ckk), x.dtype) if need_w else None
    db = gv.sum(axis=(0, 2)) if need_b else None
    if need_x or need_w:
        for s in range(0, n, step):
            e = min(n, s + step)
            axes = (1, 2, 0) if layout == "pn" else (1, 0, 2)
            gk = np.ascontiguousarray(gv[s:e].transpose(axes)).reshape(k, -1)
            if need_w:
                cols = saved if saved is not None else _columns(x, layout, s, e, geom)
                dw_ += gk @ cols.T
            if need_x:
                dcols = w2.T @ gk
                if layout == "pn":
                    dxt = np.zeros((c,) + x.shape[2:] + (e - s,), x.dtype)
                    launch(_col2im_pn, dcols.size, dcols.reshape(ckk, p, e - s), dxt, *geom)
                    dx[s:e] = dxt.transpose(3, 0, 1, 2)
                else:
                    launch(_col2im, dcols.size, dcols.reshape(ckk, e - s, p), dx[s:e], *geom)
    return dx, (dw_.reshape(w.shape) if need_w else None), db



# ----------------------------------------------------------------------------
# direct 3x3 stride-1 convolution on padded flat planes
# ----------------------------------------------------------------------------

@njit(**NJIT_FMA)
def _conv3x3_flat(xp, wt, bias, y, width, dh, dw, size):
    """y[b, k] = sum_c sum_ij wt[k, c, i, j] * xp[b, c, p + i*dh*width + j*dw] + bias[k],
    over flat positions p = oy*width + ox < size, keeping oy < OH and ox < OW."""
    n, c, _ = xp.shape
    k = wt.shape[0]
    o1 = dh * width
    o2 = 2 * o1
    d2 = 2 * dw
    pairs = (k + 1) // 2
    for task in prange(n * pairs):
        b = task // pairs
        k0 = (task % pairs) * 2
        k1 = min(k0 + 1, k - 1)  # an odd last channel is computed twice and stored once
        a0 = np.zeros(size, y.dtype)
        a1 = np.zeros(size, y.dtype)
        for ci in range(c):
            r = xp[b, ci]
            u00 = wt[k0, ci, 0, 0]; u01 = wt[k0, ci, 0, 1]; u02 = wt[k0, ci, 0, 2]  # noqa: E702
            u10 = wt[k0, ci, 1, 0]; u11 = wt[k0, ci, 1, 1]; u12 = wt[k0, ci, 1, 2]  # noqa: E702
            u20 = wt[k0, ci, 2, 0]; u21 = wt[k0, ci, 2, 1]; u22 = wt[k0, ci, 2, 2]  # noqa: E702
            v00 = wt[k1, ci, 0, 0]; v01 = wt[k1, ci, 0, 1]; v02 = wt[k1, ci, 0, 2]  # noqa: E702
            v10 = wt[k1, ci, 1, 0]; v11 = wt[k1, ci, 1, 1]; v12 = wt[k1, ci, 1, 2]  # noqa: E702
            v20 = wt[k1, ci, 2, 0]; v21 = wt[k1, ci, 2, 1]; v22 = wt[k1, ci, 2, 2]  # noqa: E702
            for p in range(size):
                x00 = r[_u(p)]; x01 = r[_u(p + dw)]; x02 = r[_u(p + d2)]  # noqa: E702
                x10 = r[_u(p + o1)]; x11 = r[_u(p + o1 + dw)]; x12 = r[_u(p + o1 + d2)]  # noqa: E702
                x20 = r[_u(p + o2)]; x21 = r[_u(p + o2 + dw)]; x22 = r[_u(p + o2 + d2)]  # noqa: E702
                a0[p] += (u00 * x00 + u01 * x01 + u02 * x02 + u10 * x10 + u11 * x11 + u12 * x12
                          + u20 * x20 + u21 * x21 + u22 * x22)
                a1[p] += (v00 * x00 + v01 * x01 + v02 * x02 + v10 * x10 + v11 * x11 + v12 * x12
                          + v20 * x20 + v21 * x21 + v22 * x22)
        _store_cropped(a0, y[b, k0], bias[k0], width)
        if k1 != k0:
            _store_cropped(a1, y[b, k1], bias[k1], width)


@njit(**NJIT)
def _store_cropped(acc, out, bias, width):
    oh, ow = out.shape
    for oy in range(oh):
        row = out[oy]
        base = oy * width
        for ox in range(ow):
            row[ox] = acc[base + ox] + bias


@njit(**NJIT_FMA_SUMS)
def _conv3x3_flat_dw(xp, gp, goff, part, width, dh, dw, size):
    """part[t, k, c, i, j] = sum over the images b of chunk t of
    sum_p gp[b, k, goff + p] * xp[b, c, p + i*dh*width + j*dw], p < size.

    gp holds the output gradient in rows of `width` with zeros past OW, so the
    dropped positions of the forward pass contribute nothing. Each chunk works
    image by image: one image's input and gradient planes stay in cache while
    every channel pair uses them.
    """
    n, c, _ = xp.shape
    chunks, k = part.shape[0], part.shape[1]
    o1 = dh * width
    o2 = 2 * o1
    d2 = 2 * dw
    zero = np.zeros(1, part.dtype)[0]
    for t in prange(chunks):
        acc = part[t]
        for b in range(t * n // chunks, (t + 1) * n // chunks):
            for k0 in range(0, k, 2):
                k1 = min(k0 + 1, k - 1)
                g0 = gp[b, k0, goff:]
                g1 = gp[b, k1, goff:]
                for ci in range(c):
                    r = xp[b, ci]
                    s00 = zero; s01 = zero; s02 = zero; s10 = zero; s11 = zero; s12 = zero  # noqa: E702
                    s20 = zero; s21 = zero; s22 = zero  # noqa: E702
                    t00 = zero; t01 = zero; t02 = zero; t10 = zero; t11 = zero; t12 = zero  # noqa: E702
                    t20 = zero; t21 = zero; t22 = zero  # noqa: E702
                    for p in range(size):
                        x00 = r[_u(p)]; x01 = r[_u(p + dw)]; x02 = r[_u(p + d2)]  # noqa: E702
                        x10 = r[_u(p + o1)]; x11 = r[_u(p + o1 + dw)]; x12 = r[_u(p + o1 + d2)]  # noqa: E702
                        x20 = r[_u(p + o2)]; x21 = r[_u(p + o2 + dw)]; x22 = r[_u(p + o2 + d2)]  # noqa: E702
                        e = g0[_u(p)]
                        f = g1[_u(p)]
                        s00 += e * x00; s01 += e * x01; s02 += e * x02  # noqa: E702
                        s10 += e * x10; s11 += e * x11; s12 += e * x12  # noqa: E702
                        s20 += e * x20; s21 += e * x21; s22 += e * x22  # noqa: E702
                        t00 += f * x00; t01 += f * x01; t02 += f * x02  # noqa: E702
                        t10 += f * x10; t11 += f * x11; t12 += f * x12  # noqa: E702
                        t20 += f * x20; t21 += f * x21; t22 += f * x22  # noqa: E702
                    _add_taps(acc[k0, ci], s00, s01, s02, s10, s11, s12, s20, s21, s22)
                    if k1 != k0:
                        _add_taps(acc[k1, ci], t00, t01, t02, t10, t11, t12, t20, t21, t22)


@njit(**NJIT)
def _add_taps(out, s00, s01, s02, s10, s11, s12, s20, s21, s22):
    out[0, 0] += s00; out[0, 1] += s01; out[0, 2] += s02  # noqa: E702
    out[1, 0] += s10; out[1, 1] += s11; out[1, 2] += s12  # noqa: E702
    out[2, 0] += s20; out[2, 1] += s21; out[2, 2] += s22  # noqa: E702


# The weight gradient sums over images in this many chunks (fixed, so the result
# does not depend on the thread count), then adds the chunks up.
_DW_CHUNKS = 16


# CNNLAB_CONV_DIRECT=0 sends every convolution through im2col (to compare the two).
_DIRECT = os.environ.get("CNNLAB_CONV_DIRECT", "1") != "0"


def _direct_ok(w, stride, padding, dilation) -> bool:
    """3x3, stride 1, and padding no wider than the dilated kernel's reach
    (so the input gradient is again a convolution with non-negative padding)."""
    return (_DIRECT and w.shape[2:] == (3, 3) and tuple(stride) == (1, 1)
            and padding[0] <= 2 * dilation[0] and padding[1] <= 2 * dilation[1])


# The direct kernel's fixed cost per channel pair (18 weight loads, a rounded vector pass)
# outweighs its work on small planes: on 16x64x7x7 -> 64 (63 flat positions) im2col +
# sgemm took 0.74 ms forward and 1.6 ms backward against the direct kernel's 1.0 and 7.1
# (one thread), and on 4x4, 2x2 and 1x1 planes the direct kernel was 10-100x slower; from
# 14x14 (224 positions) on the direct kernel wins. The rule counts positions, not widths.
_DIRECT_MIN_PLANE = 128


def _direct_pays(x_shape, padding, out_hw) -> bool:
    return out_hw[0] * (x_shape[3] + 2 * padding[1]) >= _DIRECT_MIN_PLANE


# LLVM's vector loop takes up to 64 floats an iteration (16 lanes, 4 interleaved) and
# leaves the remainder to a scalar loop, which on small planes (12x14 = 168 positions)
# would be a large share. The flat passes therefore run to a multiple of _VEC positions
# (the extra ones are dropped like the columns past OW; the buffers carry slack for them).
_VEC = 64


def _vec_len(size: int) -> int:
    return -(-size // _VEC) * _VEC


def _padded_flat(x, top, left, width, rows, dw):
    """x padded into rows of `width`, with zeros after it for the rounded passes' reads.

    NumPy's strided copy does this faster than a numba loop over the short rows."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, rows * width + width + _VEC + 2 * dw), x.dtype)
    out[:, :, :rows * width].reshape(n, c, rows, width)[:, :, top:top + h, left:left + w] = x
    return out


def _direct_forward(x, w, b, padding, dilation, out_hw, keep):
    n, c, h, wd = x.shape
    (ph, pw), (dh, dw) = padding, dilation
    width = wd + 2 * pw
    xp = _padded_flat(x, ph, pw, width, h + 2 * ph, dw)
    y = np.empty((n, w.shape[0]) + tuple(out_hw), x.dtype)
    bias = b if b is not None else np.zeros(w.shape[0], x.dtype)
    _conv3x3_flat(xp, w, bias, y, width, dh, dw, _vec_len(out_hw[0] * width))
    return y, (xp if keep else None)


def _direct_backward(x, w, g, saved, padding, dilation, need_x, need_w, need_b):
    n, c, h, wd = x.shape
    k = w.shape[0]
    _, _, oh, ow = g.shape
    (ph, pw), (dh, dw) = padding, dilation
    width = wd + 2 * pw
    # dx is the 3x3 convolution of g padded by (2d - p) with the flipped, transposed kernel
    qh, qw = 2 * dh - ph, 2 * dw - pw
    gwidth = ow + 2 * qw
    gp = None
    if need_x or (need_w and gwidth == width):
        gp = _padded_flat(g, qh, qw, gwidth, oh + 2 * qh, dw)
    dx = dwt = None
    if need_x:
        wt = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        dx = np.empty_like(x)
        _conv3x3_flat(gp, wt, np.zeros(c, x.dtype), dx, gwidth, dh, dw, _vec_len(h * gwidth))
    if need_w:
        xp = saved if saved is not None else _padded_flat(x, ph, pw, width, h + 2 * ph, dw)
        if gp is not None and gwidth == width:
            # g sits at (qh, qw) in gp, and the 2*qw = 2*dw columns between rows are zeros
            gflat, goff = gp, qh * width + qw
        else:
            gflat, goff = _padded_flat(g, 0, 0, width, oh, dw), 0
        part = np.zeros((min(n, _DW_CHUNKS),) + w.shape, w.dtype)
        # past OH*width gflat holds zeros, so the rounded pass adds nothing there
        _conv3x3_flat_dw(xp, gflat, goff, part, width, dh, dw, _vec_len(oh * width))
        dwt = part.sum(axis=0)
    db = g.sum(axis=(0, 2, 3)) if need_b else None
    return dx, dwt, db


def _pointwise_ok(w, padding) -> bool:
    """1x1, no padding: per image a plain product W (K x C) @ x (C x OH*OW)."""
    return w.shape[2:] == (1, 1) and tuple(padding) == (0, 0)


def _subsampled(x, stride, out_hw):
    """The input cells a 1x1 kernel reads: every stride-th row and column (x itself at stride 1)."""
    (sh, sw), (oh, ow) = stride, out_hw
    if (sh, sw) == (1, 1) and x.shape[2:] == (oh, ow):
        return x
    return np.ascontiguousarray(x[:, :, :oh * sh:sh, :ow * sw:sw])


def _pointwise_forward(x, w, b, stride, out_hw, keep):
    xs = _subsampled(x, stride, out_hw)
    n, c, oh, ow = xs.shape
    k = w.shape[0]
    y = np.matmul(w.reshape(k, c), xs.reshape(n, c, oh * ow))
    if b is not None:
        y += b[None, :, None]
    return y.reshape(n, k, oh, ow), (xs if keep and xs is not x else None)


def _pointwise_backward(x, w, g, saved, stride, need_x, need_w, need_b):
    n, k, oh, ow = g.shape
    c = x.shape[1]
    xs = saved if saved is not None else _subsampled(x, stride, (oh, ow))
    g3 = g.reshape(n, k, oh * ow)
    dx = None
    if need_x:
        dxs = np.matmul(w.reshape(k, c).T, g3).reshape(n, c, oh, ow)
        if xs is x:
            dx = dxs
        else:  # the cells no output read get zero
            dx = np.zeros_like(x)
            dx[:, :, :oh * stride[0]:stride[0], :ow * stride[1]:stride[1]] = dxs
    dw = (np.tensordot(g3, xs.reshape(n, c, oh * ow), axes=([0, 2], [0, 2])).reshape(w.shape)
          .astype(w.dtype, copy=False) if need_w else None)
    db = g3.sum(axis=(0, 2)) if need_b else None
    return dx, dw, db


def _live_kernel(w_shape, x_shape, stride, padding, dilation, out_hw):
    """(rows, cols, padding): the kernel's live taps and the padding that keeps them
    reading the same cells; None when every tap is live (or cropping would need a
    negative padding, which only odd dilated geometries reach)."""
    rows = live_taps(w_shape[2], dilation[0], padding[0], out_hw[0], stride[0], x_shape[2])
    cols = live_taps(w_shape[3], dilation[1], padding[1], out_hw[1], stride[1], x_shape[3])
    if rows == (0, w_shape[2]) and cols == (0, w_shape[3]) or rows[0] == rows[1] or cols[0] == cols[1]:
        return None
    pad = (padding[0] - rows[0] * dilation[0], padding[1] - cols[0] * dilation[1])
    return (slice(*rows), slice(*cols), pad) if min(pad) >= 0 else None


def _forward(x, w, b, stride, padding, dilation, out_hw, keep):
    if _direct_ok(w, stride, padding, dilation) and _direct_pays(x.shape, padding, out_hw):
        return _direct_forward(x, w, b, padding, dilation, out_hw, keep)
    if _pointwise_ok(w, padding):
        return _pointwise_forward(x, w, b, stride, out_hw, keep)
    return _im2col_forward(x, w, b, stride, padding, dilation, out_hw, keep)


def _backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    if _direct_ok(w, stride, padding, dilation) and _direct_pays(x.shape, padding, g.shape[2:]):
        return _direct_backward(x, w, g, saved, padding, dilation, need_x, need_w, need_b)
    if _pointwise_ok(w, padding):
        return _pointwise_backward(x, w, g, saved, stride, need_x, need_w, need_b)
    return _im2col_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b)


def conv2d_forward(x, w, b, stride, padding, dilation, out_hw, keep_columns=False):
    """y[n,k] = sum_c,i,j w[k,c,i,j] * x_pad[n,c,oy*s+i*d, ox*s+j*d] + b[k].

    Returns (y, saved): `saved` goes back to conv2d_backward (what the weight
    gradient can reuse when keep_columns asks for it, else None).
    """
    live = _live_kernel(w.shape, x.shape, stride, padding, dilation, out_hw)
    if live is not None:
        rows, cols, padding = live
        w = np.ascontiguousarray(w[:, :, rows, cols])
    return _forward(x, w, b, stride, padding, dilation, out_hw, keep_columns)


def conv2d_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    """Gradients of conv2d_forward: (dx, dw, db), None where not needed."""
    live = _live_kernel(w.shape, x.shape, stride, padding, dilation, g.shape[2:])
    if live is None:
        return _backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b)
    rows, cols, pad = live
    dx, dw_live, db = _backward(x, np.ascontiguousarray(w[:, :, rows, cols]), g, saved, stride, pad, dilation,
                                need_x, need_w, need_b)
    dw = None
    if dw_live is not None:  # the taps that only ever read padding get zero
        dw = np.zeros_like(w)
        dw[:, :, rows, cols] = dw_live
    return dx, dw, db
