"""Convolution kernels of the CUDA backend: direct, one thread per output cell.

Where cpu_conv.py builds im2col columns and calls sgemm, the GPU twin gives every
output cell its own thread, CUDA_CONV_CHANNELS output channels each
(`cnnlab.cuda_layout` maps cells to blocks and threads): no column buffer, and the
teaching map is one thread per cell. The input gradient gathers, one thread per
input cell, so no two threads write one cell; the weight gradient is one block per
(out, in) channel pair reducing over the batch. conv_transpose2d is these same three
kernels with input and output exchanged.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from .. import _config as cfg
from .cuda_array import (add, kernel_factory, launch_blocks, launch_cells, new, reduce_threads, reshape,
                         zeros)
from .cuda_math import sum

@kernel_factory
def _conv_kernel(kind, per_thread, dtype_str):
    acc_t = numba.from_dtype(np.dtype(dtype_str))
    zero = np.dtype(dtype_str).type(0)

    def forward(x, w, b, has_bias, y, groups, sh, sw, ph, pw, dh, dw):
        # thread (ox, oy) of plane z = (image, group of `per_thread` output channels)
        n_img, c_in, h, wd = x.shape
        k_out, _, kh, kw = w.shape
        oh, ow = y.shape[2], y.shape[3]
        ox, oy = cuda.grid(2)  # (blockIdx * blockDim + threadIdx) along x and y
        if ox >= ow or oy >= oh:
            return
        acc = cuda.local.array(per_thread, acc_t)
        for z in range(cuda.blockIdx.z, n_img * groups, cuda.gridDim.z):
            n = z // groups
            k0 = (z % groups) * per_thread
            for q in range(per_thread):
                acc[q] = zero
            for c in range(c_in):
                for i in range(kh):
                    iy = oy * sh - ph + i * dh
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw - pw + j * dw
                        if ix < 0 or ix >= wd:
                            continue
                        v = x[n, c, iy, ix]
                        for q in range(per_thread):
                            if k0 + q < k_out:
                                acc[q] += v * w[k0 + q, c, i, j]
            for q in range(per_thread):
                k = k0 + q
                if k < k_out:
                    y[n, k, oy, ox] = acc[q] + b[k] if has_bias else acc[q]

    def input_grad(g, w, dx, groups, sh, sw, ph, pw, dh, dw):
        # thread (ix, iy) of plane z = (image, group of input channels): gathers every
        # output cell whose window covered it, so no two threads write one cell
        n_img, c_in, h, wd = dx.shape
        k_out, _, kh, kw = w.shape
        oh, ow = g.shape[2], g.shape[3]
        ix, iy = cuda.grid(2)  # (blockIdx * blockDim + threadIdx) along x and y
        if ix >= wd or iy >= h:
            return
        acc = cuda.local.array(per_thread, acc_t)
        for z in range(cuda.blockIdx.z, n_img * groups, cuda.gridDim.z):
            n = z // groups
            c0 = (z % groups) * per_thread
            for q in range(per_thread):
                acc[q] = zero
            for k in range(k_out):
                for i in range(kh):
                    ty = iy + ph - i * dh
                    if ty < 0 or ty % sh != 0 or ty // sh >= oh:
                        continue
                    oy = ty // sh
                    for j in range(kw):
                        tx = ix + pw - j * dw
                        if tx < 0 or tx % sw != 0 or tx // sw >= ow:
                            continue
                        gv = g[n, k, oy, tx // sw]
                        for q in range(per_thread):
                            if c0 + q < c_in:
                                acc[q] += gv * w[k, c0 + q, i, j]
            for q in range(per_thread):
                if c0 + q < c_in:
                    dx[n, c0 + q, iy, ix] = acc[q]

    return cuda.jit(forward if kind == "forward" else input_grad)


@kernel_factory
def _conv_weight_grad_kernel(taps, threads, dtype_str):
    acc_t = numba.from_dtype(np.dtype(dtype_str))
    zero = np.dtype(dtype_str).type(0)

    def weight_grad(x, g, dwt, sh, sw, ph, pw, dh, dw):
        # one block per (out channel k, in channel c): its threads stride over every
        # (image, output cell), accumulate `taps` kernel taps at once, then reduce
        n_img, c_in, h, wd = x.shape
        k_out, _, kh, kw = dwt.shape
        oh, ow = g.shape[2], g.shape[3]
        sm = cuda.shared.array((taps, threads), numba.float64)
        acc = cuda.local.array(taps, acc_t)
        tid = cuda.threadIdx.x
        n_taps = kh * kw
        cells = n_img * oh * ow
        for kc in range(cuda.blockIdx.x, k_out * c_in, cuda.gridDim.x):
            k = kc // c_in
            c = kc % c_in
            for t0 in range(0, n_taps, taps):
                for q in range(taps):
                    acc[q] = zero
                for p in range(tid, cells, threads):
                    n = p // (oh * ow)
                    oy = (p // ow) % oh
                    ox = p % ow
                    gv = g[n, k, oy, ox]
                    for q in range(taps):
                        t = t0 + q
                        if t < n_taps:
                            iy = oy * sh - ph + (t // kw) * dh
                            ix = ox * sw - pw + (t % kw) * dw
                            if iy >= 0 and iy < h and ix >= 0 and ix < wd:
                                acc[q] += gv * x[n, c, iy, ix]
                # one tree reduces all taps of the pass together
                for q in range(taps):
                    sm[q, tid] = acc[q]
                cuda.syncthreads()
                s = threads // 2
                while s > 0:
                    if tid < s:
                        for q in range(taps):
                            sm[q, tid] += sm[q, tid + s]
                    cuda.syncthreads()
                    s //= 2
                for q in range(tid, taps, threads):
                    if t0 + q < n_taps:
                        dwt[k, c, (t0 + q) // kw, (t0 + q) % kw] = sm[q, 0]
                cuda.syncthreads()
    return cuda.jit(weight_grad)


def _groups(channels, per_thread):
    return -(-channels // per_thread)


def conv2d_forward(x, w, b, stride, padding, dilation, out_hw, keep_columns=False):
    """y[n,k] = sum_c,i,j w[k,c,i,j] * x_pad[n,c,oy*s+i*d, ox*s+j*d] + b[k].

    Returns (y, None): the direct kernel keeps no column buffer for backward.
    """
    n, c, _, _ = x.shape
    k = w.shape[0]
    per = int(cfg.CUDA_CONV_CHANNELS)
    y = new((n, k) + tuple(out_hw), x.dtype)
    launch_cells(_conv_kernel("forward", per, x.dtype.str), y.shape, per, x.nd(), w.nd(),
                  (b if b is not None else w).buf, b is not None, y.nd(), _groups(k, per),
                 *stride, *padding, *dilation)
    return y, None


def _input_grad(g, w, shape, dtype, stride, padding, dilation):
    """dx of shape `shape`: one thread per input cell gathering the outputs it fed."""
    per = int(cfg.CUDA_CONV_CHANNELS)
    dx = new(shape, dtype)
    launch_cells(_conv_kernel("input_grad", per, np.dtype(dtype).str), shape, per, g.nd(), w.nd(), dx.nd(),
                 _groups(shape[1], per), *stride, *padding, *dilation)
    return dx


def _weight_grad(x, g, w_shape, stride, padding, dilation):
    """dw of shape w_shape: one block per (out, in) channel pair reducing over the batch."""
    if x.size == 0 or g.size == 0:  # an empty batch: nothing to reduce (and no N-d view to index)
        return zeros(w_shape, x.dtype)
    dw_ = new(w_shape, x.dtype)
    kernel = _conv_weight_grad_kernel(int(cfg.CUDA_CONV_TAPS), reduce_threads(), x.dtype.str)
    launch_blocks(kernel, w_shape[0] * w_shape[1], x.nd(), g.nd(), dw_.nd(), *stride, *padding, *dilation)
    return dw_


def conv2d_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    """Gradients of conv2d_forward: (dx, dw, db), None where not needed."""
    dx = _input_grad(g, w, x.shape, x.dtype, stride, padding, dilation) if need_x else None
    dw_ = _weight_grad(x, g, w.shape, stride, padding, dilation) if need_w else None
    db = sum(g, axis=(0, 2, 3)) if need_b else None
    return dx, dw_, db


# A transposed convolution is the input gradient of a convolution (see cpu_conv_transpose.py):
# the same three kernels, with the roles of input and output exchanged.

def conv_transpose2d_forward(x, w, b, stride, padding, dilation, out_hw):
    """y = conv2d's input gradient for output gradient x and weight w (C, O, kh, kw), + b.

    Returns (y, None): backward needs only x and w.
    """
    y = _input_grad(x, w, (x.shape[0], w.shape[1]) + tuple(out_hw), x.dtype, stride, padding, dilation)
    if b is not None:
        y = add(y, reshape(b, (1, -1, 1, 1)))
    return y, None


def conv_transpose2d_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    """Gradients of conv_transpose2d_forward: (dx, dw, db), None where not needed."""
    dx = conv2d_forward(g, w, None, stride, padding, dilation, x.shape[2:])[0] if need_x else None
    dw_ = _weight_grad(g, x, w.shape, stride, padding, dilation) if need_w else None
    db = sum(g, axis=(0, 2, 3)) if need_b else None
    return dx, dw_, db
