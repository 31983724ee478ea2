"""Convolution kernels of the CUDA backend: direct, one thread per output cell.

Where cpu_conv.py builds im2col columns and calls sgemm, the GPU twin gives every
output cell its own thread, CUDA_CONV_CHANNELS output channels each
(`cnnlab.cuda_layout` maps cells to blocks and threads): no column buffer, and the
teaching map is one thread per cell. conv_transpose2d is these same three kernels
with input and output exchanged.

The input gradient gathers, one thread per input cell, so no two threads write one
cell. It visits only the taps whose output cell exists: the first tap that lines up
with the stride is found once per thread, then taps step by stride/gcd(stride,
dilation), so no division or modulo runs per tap.

The weight gradient splits the (image, output row) pairs over many blocks: block
(k*C + c, s) sums slice s for weight plane (k, c), every tap of a pass at once (and the
bias, for c = 0), reduces over its threads, and writes one partial per tap. The last
block of a plane to finish (an atomic counter says which) adds the slices' partials
in slice order: one launch, many blocks even for 16 weight planes, and the same
result every run (no float atomics). Each thread owns one output column and walks
whole rows, so the inner loops hold no division either.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from .. import _config as cfg
from . import cuda_array
from .cuda_array import add, kernel_factory, launch_cells, new, reduce_threads, reshape, zeros
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

    def input_grad(g, w, dx, groups, sh, sw, ph, pw, dh, dw, step_i, doy, step_j, dox):
        # thread (ix, iy) of plane z = (image, group of input channels): gathers every
        # output cell whose window covered it, so no two threads write one cell.
        # Tap i reaches output row oy = (iy + ph - i*dh) / sh when that divides; those i
        # are i_first, i_first + step_i, ... and oy falls by doy at each (host: gcd).
        n_img, c_in, h, wd = dx.shape
        k_out, _, kh, kw = w.shape
        oh, ow = g.shape[2], g.shape[3]
        ix, iy = cuda.grid(2)  # (blockIdx * blockDim + threadIdx) along x and y
        if ix >= wd or iy >= h:
            return
        i_first = 0
        while i_first < step_i and (iy + ph - i_first * dh) % sh != 0:
            i_first += 1
        if i_first == step_i:  # no tap lines up with the stride: nothing reaches this row
            i_first = kh
        oy_first = (iy + ph - i_first * dh) // sh
        j_first = 0
        while j_first < step_j and (ix + pw - j_first * dw) % sw != 0:
            j_first += 1
        if j_first == step_j:
            j_first = kw
        ox_first = (ix + pw - j_first * dw) // sw
        acc = cuda.local.array(per_thread, acc_t)
        for z in range(cuda.blockIdx.z, n_img * groups, cuda.gridDim.z):
            n = z // groups
            c0 = (z % groups) * per_thread
            for q in range(per_thread):
                acc[q] = zero
            for k in range(k_out):
                oy = oy_first
                for i in range(i_first, kh, step_i):
                    if oy < 0:
                        break
                    if oy < oh:
                        ox = ox_first
                        for j in range(j_first, kw, step_j):
                            if ox < 0:
                                break
                            if ox < ow:
                                gv = g[n, k, oy, ox]
                                for q in range(per_thread):
                                    if c0 + q < c_in:
                                        acc[q] += gv * w[k, c0 + q, i, j]
                            ox -= dox
                    oy -= doy
            for q in range(per_thread):
                if c0 + q < c_in:
                    dx[n, c0 + q, iy, ix] = acc[q]

    return cuda.jit(forward if kind == "forward" else input_grad, **cfg.CUDA_JIT)


@kernel_factory
def _conv_weight_grad_kernel(taps, threads, dtype_str):
    """Shared memory is sized at compile time, hence a kernel per (taps, threads)."""
    acc_t = numba.from_dtype(np.dtype(dtype_str))
    zero = np.dtype(dtype_str).type(0)
    slots = taps + 1  # the taps of one pass, then the bias

    def weight_grad(x, g, dwt, db, has_bias, part, count, cols, row_step, ni, nj, sh, sw, ph, pw, dh, dw):
        # block (plane k*C + c, slice s); part[plane, pass, slice, slot] holds the slices' sums
        n_img, c_in, h, wd = x.shape
        k_out, _, kh, kw = dwt.shape
        oh, ow = g.shape[2], g.shape[3]
        slices = cuda.gridDim.y
        s = cuda.blockIdx.y
        tid = cuda.threadIdx.x
        sm = cuda.shared.array((slots, threads), numba.float64)
        last = cuda.shared.array(1, numba.int32)
        acc = cuda.local.array(slots, acc_t)
        ox0 = tid % cols  # this thread's column and row of a pass: once, not per cell
        r0 = tid // cols
        rows = n_img * oh
        passes_j = (kw + nj - 1) // nj
        passes = ((kh + ni - 1) // ni) * passes_j
        for kc in range(cuda.blockIdx.x, k_out * c_in, cuda.gridDim.x):
            k = kc // c_in
            c = kc - k * c_in
            for p in range(passes):
                i0 = (p // passes_j) * ni
                j0 = (p % passes_j) * nj
                i1 = min(i0 + ni, kh)
                j1 = min(j0 + nj, kw)
                for q in range(slots):
                    acc[q] = zero
                bias = has_bias and c == 0 and p == 0
                if r0 < row_step:
                    for r in range(s * row_step + r0, rows, slices * row_step):
                        n = r // oh
                        oy = r - n * oh
                        for ox in range(ox0, ow, cols):
                            gv = g[n, k, oy, ox]
                            if bias:
                                acc[taps] += gv
                            q = 0
                            for i in range(i0, i1):
                                iy = oy * sh - ph + i * dh
                                if iy >= 0 and iy < h:
                                    ix = ox * sw - pw + j0 * dw
                                    for j in range(j1 - j0):
                                        if ix >= 0 and ix < wd:
                                            acc[q + j] += gv * x[n, c, iy, ix]
                                        ix += dw
                                q += nj
                # one tree reduces every slot of the pass together
                for q in range(slots):
                    sm[q, tid] = acc[q]
                cuda.syncthreads()
                half = threads // 2
                while half > 0:
                    if tid < half:
                        for q in range(slots):
                            sm[q, tid] += sm[q, tid + half]
                    cuda.syncthreads()
                    half //= 2
                for q in range(tid, slots, threads):
                    part[kc, p, s, q] = sm[q, 0]
                cuda.syncthreads()
            # the plane's last block to finish adds the slices, in slice order
            cuda.threadfence()
            cuda.syncthreads()
            if tid == 0:
                last[0] = 1 if cuda.atomic.add(count, kc, 1) == slices - 1 else 0
            cuda.syncthreads()
            if last[0] == 1:
                for e in range(tid, passes * slots, threads):
                    p = e // slots
                    q = e - p * slots
                    total = 0.0
                    for s2 in range(slices):
                        total += part[kc, p, s2, q]
                    if q == taps:
                        if has_bias and c == 0 and p == 0:
                            db[k] = total
                    elif q < ni * nj:
                        i = (p // passes_j) * ni + q // nj
                        j = (p % passes_j) * nj + q % nj
                        if i < kh and j < kw:
                            dwt[k, c, i, j] = total
                if tid == 0:
                    count[kc] = 0  # ready for the next launch
            cuda.syncthreads()
    return cuda.jit(weight_grad, **cfg.CUDA_JIT)


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


def _tap_steps(stride, dilation):
    """(taps between the ones that line up with the stride, output cells they move by), per axis."""
    out = []
    for s_, d_ in zip(stride, dilation):
        g = math.gcd(s_, d_)
        out += [s_ // g, d_ // g]
    return out


def _input_grad(g, w, shape, dtype, stride, padding, dilation):
    """dx of shape `shape`: one thread per input cell gathering the outputs it fed."""
    per = int(cfg.CUDA_CONV_CHANNELS)
    dx = new(shape, dtype)
    launch_cells(_conv_kernel("input_grad", per, np.dtype(dtype).str), shape, per, g.nd(), w.nd(), dx.nd(),
                 _groups(shape[1], per), *stride, *padding, *dilation, *_tap_steps(stride, dilation))
    return dx


_counters: list = [None]  # one int32 per weight plane, zero between launches (the last block resets its own)
_BLOCKS = 1024            # blocks the weight gradient aims for, so every SM has several


def _plane_counters(planes: int):
    if _counters[0] is None or _counters[0].size < planes:
        _counters[0] = zeros((max(planes, 256),), np.int32)
    return _counters[0]


def weight_grad(x, g, w_shape, stride, padding, dilation, bias=False):
    """dw of shape w_shape (and db if bias): blocks over (weight plane, slice of image rows)."""
    if x.size == 0 or g.size == 0:  # an empty batch: nothing to reduce (and no N-d view to index)
        return zeros(w_shape, x.dtype), zeros((w_shape[0],), x.dtype) if bias else None
    k_out, c_in, kh, kw = w_shape
    n, _, oh, ow = g.shape
    taps, threads = int(cfg.CUDA_CONV_TAPS), reduce_threads()
    nj = min(kw, taps)
    ni = max(1, min(kh, taps // nj))
    cols = min(ow, threads)
    row_step = threads // cols
    planes = k_out * c_in
    slices = max(1, min(-(-_BLOCKS // planes), -(-(n * oh) // (4 * row_step)), 65535))
    passes = -(-kh // ni) * -(-kw // nj)
    part = new((planes, passes, slices, taps + 1), np.float64)
    dw_ = new(w_shape, x.dtype)
    db = new((k_out,), x.dtype) if bias else dw_
    kernel = _conv_weight_grad_kernel(taps, threads, x.dtype.str)
    cuda_array.launch(kernel, (min(planes, 1 << 30), slices), threads, x.nd(), g.nd(), dw_.nd(), db.buf, bias,
                      part.nd(), _plane_counters(planes).buf, cols, row_step, ni, nj, *stride, *padding, *dilation)
    return dw_, db if bias else None


def conv2d_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    """Gradients of conv2d_forward: (dx, dw, db), None where not needed."""
    dx = _input_grad(g, w, x.shape, x.dtype, stride, padding, dilation) if need_x else None
    dw_, db = weight_grad(x, g, w.shape, stride, padding, dilation, bias=need_b) if need_w else (None, None)
    if need_b and db is None:
        db = sum(g, axis=(0, 2, 3))
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
    dw_ = weight_grad(g, x, w.shape, stride, padding, dilation)[0] if need_w else None
    db = sum(g, axis=(0, 2, 3)) if need_b else None
    return dx, dw_, db
