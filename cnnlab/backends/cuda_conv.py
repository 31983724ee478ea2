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

All threads of a forward or input-gradient block work for the same channel group, so
the block first copies that group's weights into shared memory (`stage`), laid out so
that a thread reads its CUDA_CONV_CHANNELS weights of a tap as one 16-byte load. Indices
are 32-bit unless an array has 2**31 elements or more (`_index_types`).
`benchmarks/cuda_sass.py` counts what each inner loop costs in machine instructions.

The weight gradient splits the (image, output row) pairs over many blocks: block
(kg*C + c, s) sums slice s for the weight planes (k, c) of kq output channels k (up to
CUDA_CONV_CHANNELS, so each input value loaded feeds kq multiply-adds), every tap of a
pass at once (and the bias, for c = 0), reduces over its threads, and writes one partial
per plane and tap. The last block of a group to finish (an atomic counter says which)
adds the slices' partials in slice order: one launch, many blocks even for 16 weight
planes, and the same result every run (no float atomics). Each thread owns one output
column and walks whole rows, so the inner loops hold no division either.
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

def _index_types(wide):
    """(signed, unsigned) index types: 32-bit unless some array has 2**31 elements or more.

    numba widens every int32 sum or product to int64, so the kernels cast each one back
    (LLVM then does the arithmetic in 32 bits); arrays are indexed flat with the unsigned
    type, which spares numba's negative-index wraparound (every index is checked first).
    Divisions of counts that cannot be negative are unsigned: a signed `//` keeps Python's
    rounding, which LLVM cannot narrow, so it would stay a 64-bit division (a subroutine
    on a GPU).
    """
    return (numba.int64, numba.uint64) if wide else (numba.int32, numba.uint32)


W_TILE_BYTES = 16384  # shared memory per block for staged weights, forward and input gradient (H100/H200: 14 blocks an SM)


@kernel_factory
def _conv_kernel(kind, per_thread, dtype_str, wide=False, staged=False):
    acc_t = numba.from_dtype(np.dtype(dtype_str))
    zero = np.dtype(dtype_str).type(0)
    I, U = _index_types(wide)
    tile = W_TILE_BYTES // np.dtype(dtype_str).itemsize if staged else 1
    # 16-byte aligned, a thread's per_thread (4) weights load as one vector; the simulator
    # refuses any alignment
    align = None if numba.core.config.ENABLE_CUDASIM else 16

    @cuda.jit(device=True)
    def stage(w_tile, w, base, n_s, stride_s, span, first, last, scale, tid, n_threads):
        # the block copies w[base + s*stride_s + min(first + q, last)*scale + u] to
        # w_tile[(s*span + u)*per_thread + q], for s < n_s, u < span, q < per_thread
        cuda.syncthreads()  # the last chunk's readers are done
        e = tid
        while e < I(I(n_s * span) * per_thread):
            q = I(U(e) % U(per_thread))
            su = I(U(e) // U(per_thread))
            s_ = I(U(su) // U(span))
            col = I(I(s_ * stride_s) + I(min(I(first + q), last) * scale))
            w_tile[U(e)] = w[U(I(I(base + col) + I(su - I(s_ * span))))]
            e = I(e + n_threads)
        cuda.syncthreads()

    @cuda.jit(device=True)
    def tap(acc, v, w_tile, w, t, w_rows):
        # acc[q] += v * this tap's weight for channel q: staged, the tap's per_thread weights
        # sit side by side (unsigned + unsigned is 64-bit, so q becomes an address offset);
        # else row q of w starts at w_rows[q]
        if staged:
            st = U(I(t * per_thread))
            for q in range(per_thread):
                acc[q] += v * w_tile[st + U(q)]
        else:
            for q in range(per_thread):
                acc[q] += v * w[U(w_rows[q] + t)]

    def forward(x, w, b, has_bias, y, dims, groups, c_chunk, sh, sw, ph, pw, dh, dw):
        # thread (ox, oy) of plane z = (image, group of `per_thread` output channels);
        # x, w, y are flat, dims = (N, C, H, W, K, kh, kw, OH, OW).
        # Staged: every thread of a block works for the same output channels, so the block
        # copies their weights, c_chunk input channels at a time, into shared memory as
        # [channel, tap, q]; the loop over taps then reads them there, per_thread in a row.
        n_img, c_in, h, wd, k_out, kh, kw, oh, ow = dims
        ox = I(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x)
        oy = I(cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y)
        active = ox < ow and oy < oh  # no early return: the others still help load and sync
        tid = I(I(cuda.threadIdx.y * cuda.blockDim.x) + cuda.threadIdx.x)
        n_threads = I(cuda.blockDim.x * cuda.blockDim.y)
        w_tile = cuda.shared.array(tile, acc_t, alignment=align)
        acc = cuda.local.array(per_thread, acc_t)
        w_row = cuda.local.array(per_thread, I)
        plane, taps = I(h * wd), I(kh * kw)
        w_k = I(c_in * taps)
        iy0, ix0 = I(oy * sh - ph), I(ox * sw - pw)
        for z in range(I(cuda.blockIdx.z), I(n_img * groups), I(cuda.gridDim.z)):
            n = I(U(z) // U(groups))
            k0 = I(I(z - n * groups) * per_thread)
            for q in range(per_thread):
                acc[q] = zero
                # a channel past K reads a real row (K - 1) and is never stored: no test per tap
                w_row[q] = I(min(I(k0 + q), I(k_out - 1)) * w_k)
            c_lo = I(0)
            while c_lo < c_in:
                c_n = min(c_chunk, I(c_in - c_lo))
                t_lo = I(c_lo * taps)
                if staged:  # one span: input channels c_lo.. of each output channel's row
                    stage(w_tile, w, t_lo, I(1), I(0), I(c_n * taps), k0, I(k_out - 1), w_k, tid, n_threads)
                if active:
                    x_c = I(I(n * c_in + c_lo) * plane)
                    t_c = I(0)
                    for c in range(c_n):
                        for i in range(kh):
                            iy = I(iy0 + I(i * dh))
                            if iy >= 0 and iy < h:
                                x_r = I(x_c + I(iy * wd))
                                t = I(t_c + I(i * kw))
                                ix = ix0
                                for j in range(kw):
                                    if ix >= 0 and ix < wd:
                                        tap(acc, x[U(x_r + ix)], w_tile, w, t, w_row)  # unstaged: one chunk, t_lo = 0
                                    ix = I(ix + dw)
                                    t = I(t + 1)
                        x_c = I(x_c + plane)
                        t_c = I(t_c + taps)
                c_lo = I(c_lo + c_n)
            if active:
                out = I(I(I(n * k_out + k0) * oh + oy) * ow + ox)
                for q in range(per_thread):
                    k = I(k0 + q)
                    if k < k_out:
                        y[U(out)] = acc[q] + b[U(k)] if has_bias else acc[q]
                    out = I(out + I(oh * ow))

    def input_grad(g, w, dx, dims, groups, k_chunk, sh, sw, ph, pw, dh, dw, step_i, doy, step_j, dox):
        # thread (ix, iy) of plane z = (image, group of input channels): gathers every
        # output cell whose window covered it, so no two threads write one cell.
        # Tap i reaches output row oy = (iy + ph - i*dh) / sh when that divides; those i
        # are i_first, i_first + step_i, ... and oy falls by doy at each (host: gcd).
        # g, w, dx are flat, dims = (N, C, H, W, K, kh, kw, OH, OW) of the convolution.
        # Staged as forward: the block's input channels' weights, k_chunk output channels at a time.
        n_img, c_in, h, wd, k_out, kh, kw, oh, ow = dims
        ix = I(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x)
        iy = I(cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y)
        active = ix < wd and iy < h
        tid = I(I(cuda.threadIdx.y * cuda.blockDim.x) + cuda.threadIdx.x)
        n_threads = I(cuda.blockDim.x * cuda.blockDim.y)
        w_tile = cuda.shared.array(tile, acc_t, alignment=align)
        i_first = I(0)
        while i_first < step_i and I(iy + ph - I(i_first * dh)) % sh != 0:
            i_first = I(i_first + 1)
        if i_first == step_i:  # no tap lines up with the stride: nothing reaches this row
            i_first = kh
        oy_first = I(I(iy + ph - I(i_first * dh)) // sh)
        j_first = I(0)
        while j_first < step_j and I(ix + pw - I(j_first * dw)) % sw != 0:
            j_first = I(j_first + 1)
        if j_first == step_j:
            j_first = kw
        ox_first = I(I(ix + pw - I(j_first * dw)) // sw)
        acc = cuda.local.array(per_thread, acc_t)
        w_col = cuda.local.array(per_thread, I)
        g_plane, taps = I(oh * ow), I(kh * kw)
        w_k = I(c_in * taps)
        for z in range(I(cuda.blockIdx.z), I(n_img * groups), I(cuda.gridDim.z)):
            n = I(U(z) // U(groups))
            c0 = I(I(z - n * groups) * per_thread)
            for q in range(per_thread):
                acc[q] = zero
                w_col[q] = I(min(I(c0 + q), I(c_in - 1)) * taps)  # as forward's w_row
            k_lo = I(0)
            while k_lo < k_out:
                k_n = min(k_chunk, I(k_out - k_lo))
                if staged:  # k_n spans, one per output channel: its taps for channels c0..
                    stage(w_tile, w, I(k_lo * w_k), k_n, w_k, taps, c0, I(c_in - 1), taps, tid, n_threads)
                if active:
                    g_k = I(I(n * k_out + k_lo) * g_plane)
                    t_k = I(0) if staged else I(k_lo * w_k)
                    for k in range(k_n):
                        # while, not range(first, kh, step): a range with a step known only at
                        # run time divides to count its trips, on every row
                        oy, i = oy_first, i_first
                        while i < kh and oy >= 0:
                            if oy < oh:
                                g_r = I(g_k + I(oy * ow))
                                t = I(I(t_k + I(i * kw)) + j_first)
                                ox, j = ox_first, j_first
                                while j < kw and ox >= 0:
                                    if ox < ow:
                                        tap(acc, g[U(g_r + ox)], w_tile, w, t, w_col)
                                    ox = I(ox - dox)
                                    j = I(j + step_j)
                                    t = I(t + step_j)
                            oy = I(oy - doy)
                            i = I(i + step_i)
                        g_k = I(g_k + g_plane)
                        t_k = I(t_k + (taps if staged else w_k))
                k_lo = I(k_lo + k_n)
            if active:
                out = I(I(I(n * c_in + c0) * h + iy) * wd + ix)
                for q in range(per_thread):
                    if c0 + q < c_in:
                        dx[U(out)] = acc[q]
                    out = I(out + I(h * wd))

    return cuda.jit(forward if kind == "forward" else input_grad, **cfg.CUDA_JIT)


@kernel_factory
def _conv_weight_grad_kernel(taps, ni, nj, kq, threads, dtype_str, wide=False):
    """Shared memory is sized at compile time, hence a kernel per (taps, kq, threads); a pass's
    ni x nj taps and the kq output channels a thread sums for are constants too, so the
    loops over them unroll and the sums stay in registers."""
    acc_t = numba.from_dtype(np.dtype(dtype_str))
    zero = np.dtype(dtype_str).type(0)
    slots = taps + 1  # the taps of one pass, then the bias
    sums = kq * slots  # a thread's sums: [q, slot]
    I, U = _index_types(wide)

    def weight_grad(x, g, dwt, db, has_bias, part, count, dims, cols, row_step, sh, sw, ph, pw, dh, dw):
        # block (group kg*C + c, slice s) sums slice s for weight planes (k, c), k = kg*kq ...
        # kg*kq + kq-1: each input value it loads feeds kq multiply-adds. part[k*C + c, pass,
        # slice, slot] holds the slices' sums; x and g are flat, dims = (N, C, H, W, K, kh, kw, OH, OW)
        n_img, c_in, h, wd, k_out, kh, kw, oh, ow = dims
        slices = I(cuda.gridDim.y)
        s = I(cuda.blockIdx.y)
        tid = I(cuda.threadIdx.x)
        sm = cuda.shared.array((sums, threads), acc_t)
        last = cuda.shared.array(1, numba.int32)
        acc = cuda.local.array(sums, acc_t)
        g_row = cuda.local.array(kq, I)
        gv = cuda.local.array(kq, acc_t)
        row_x = cuda.local.array(ni, I)  # where each of a pass's rows starts in x; -1: outside the image
        ox0 = I(tid % cols)  # this thread's column and row of a pass: once, not per cell
        r0 = I(tid // cols)
        rows = I(n_img * oh)
        plane = I(h * wd)
        passes_j = I((kw + nj - 1) // nj)
        passes = I(I((kh + ni - 1) // ni) * passes_j)
        k_groups = I((k_out + kq - 1) // kq)
        for kc in range(I(cuda.blockIdx.x), I(k_groups * c_in), I(cuda.gridDim.x)):
            kg = I(U(kc) // U(c_in))
            c = I(kc - kg * c_in)
            k0 = I(kg * kq)
            for p in range(passes):
                i0 = I(I(p // passes_j) * ni)
                j0 = I(I(p % passes_j) * nj)
                for q in range(sums):
                    acc[q] = zero
                bias = has_bias and c == 0 and p == 0
                if r0 < row_step:
                    for r in range(I(I(s * row_step) + r0), rows, I(slices * row_step)):
                        n = I(U(r) // U(oh))
                        oy = I(r - n * oh)
                        for q in range(kq):  # a channel past K sums a real row (K - 1), never written
                            g_row[q] = I(I(I(n * k_out + min(I(k0 + q), I(k_out - 1))) * oh + oy) * ow)
                        x_c = I(I(n * c_in + c) * plane)
                        for i in range(ni):
                            iy = I(I(oy * sh - ph) + I(I(i0 + i) * dh))
                            inside = i0 + i < kh and iy >= 0 and iy < h
                            row_x[i] = I(x_c + I(iy * wd)) if inside else I(-1)
                        ox = ox0
                        while ox < ow:
                            for q in range(kq):
                                gv[q] = g[U(g_row[q] + ox)]
                                if bias:
                                    acc[q * slots + taps] += gv[q]
                            ix0 = I(I(ox * sw - pw) + I(j0 * dw))
                            for i in range(ni):
                                if row_x[i] >= 0:
                                    for j in range(nj):
                                        ix = I(ix0 + I(j * dw))
                                        if I(j0 + j) < kw and ix >= 0 and ix < wd:
                                            xv = x[U(row_x[i] + ix)]
                                            for q in range(kq):
                                                acc[q * slots + i * nj + j] += gv[q] * xv
                            ox = I(ox + cols)
                # one tree reduces every slot of the pass together
                for q in range(sums):
                    sm[q, tid] = acc[q]
                cuda.syncthreads()
                half = threads // 2
                while half > 0:
                    if tid < half:
                        for q in range(sums):
                            sm[q, tid] += sm[q, tid + half]
                    cuda.syncthreads()
                    half //= 2
                for e in range(tid, sums, threads):
                    q = e // slots
                    if k0 + q < k_out:
                        part[I(k0 + q) * c_in + c, p, s, e - q * slots] = sm[e, 0]
                cuda.syncthreads()
            # the group's last block to finish adds the slices, in slice order
            cuda.threadfence()
            cuda.syncthreads()
            if tid == 0:
                last[0] = 1 if cuda.atomic.add(count, kc, 1) == slices - 1 else 0
            cuda.syncthreads()
            if last[0] == 1:
                for e in range(tid, kq * passes * slots, threads):
                    k = k0 + e // (passes * slots)
                    p = (e // slots) % passes
                    q = e % slots
                    if k < k_out:
                        total = 0.0
                        for s2 in range(slices):
                            total += part[k * c_in + c, p, s2, q]
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


_INT32_LIMIT = 2 ** 31 - 1


def _dims(x_shape, w_shape, out_hw):
    """The kernels' dims tuple (N, C, H, W, K, kh, kw, OH, OW) and whether it needs 64-bit indices."""
    n, c, h, wd = x_shape
    k, _, kh, kw = w_shape
    oh, ow = out_hw
    wide = max(n * c * h * wd, n * k * oh * ow, k * c * kh * kw) >= _INT32_LIMIT
    int_t = np.int64 if wide else np.int32
    return tuple(int_t(v) for v in (n, c, h, wd, k, kh, kw, oh, ow)), wide


def _staging(per, w_shape, channels, dtype) -> tuple[bool, int]:
    """(staged, channels a chunk): whether a block's weights go through shared memory, and for
    how many of the channels summed over at a time (all of them when not staged)."""
    per_channel = per * w_shape[2] * w_shape[3]  # the weights a block needs for one summed channel
    fits = W_TILE_BYTES // np.dtype(dtype).itemsize // per_channel
    return (True, min(fits, channels)) if fits else (False, channels)


def _ints(wide, *values):
    int_t = np.int64 if wide else np.int32
    return tuple(int_t(v) for v in values)


def conv2d_forward(x, w, b, stride, padding, dilation, out_hw, keep_columns=False):
    """y[n,k] = sum_c,i,j w[k,c,i,j] * x_pad[n,c,oy*s+i*d, ox*s+j*d] + b[k].

    Returns (y, None): the direct kernel keeps no column buffer for backward.
    """
    n, c, _, _ = x.shape
    k = w.shape[0]
    per = int(cfg.CUDA_CONV_CHANNELS)
    y = new((n, k) + tuple(out_hw), x.dtype)
    dims, wide = _dims(x.shape, w.shape, out_hw)
    staged, c_chunk = _staging(per, w.shape, c, x.dtype)
    launch_cells(_conv_kernel("forward", per, x.dtype.str, wide, staged), y.shape, per, x.buf, w.buf,
                 (b if b is not None else w).buf, b is not None, y.buf, dims,
                 *_ints(wide, _groups(k, per), c_chunk, *stride, *padding, *dilation))
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
    dims, wide = _dims(shape, w.shape, g.shape[2:])
    staged, k_chunk = _staging(per, w.shape, w.shape[0], dtype)
    launch_cells(_conv_kernel("input_grad", per, np.dtype(dtype).str, wide, staged), shape, per, g.buf, w.buf,
                 dx.buf, dims, *_ints(wide, _groups(shape[1], per), k_chunk, *stride, *padding, *dilation,
                                      *_tap_steps(stride, dilation)))
    return dx


_counters: list = [None]  # one int32 per group of weight planes, zero between launches (the last block resets its own)
_BLOCKS = 1024            # blocks the weight gradient aims for, so every SM has several


def _plane_counters(groups: int):
    if _counters[0] is None or _counters[0].size < groups:
        _counters[0] = zeros((max(groups, 256),), np.int32)
    return _counters[0]


def weight_grad(x, g, w_shape, stride, padding, dilation, bias=False):
    """dw of shape w_shape (and db if bias): blocks over (group of weight planes, slice of image rows)."""
    if x.size == 0 or g.size == 0:  # an empty batch: nothing to reduce (and no N-d view to index)
        return zeros(w_shape, x.dtype), zeros((w_shape[0],), x.dtype) if bias else None
    k_out, c_in, kh, kw = w_shape
    n, _, oh, ow = g.shape
    taps, threads = int(cfg.CUDA_CONV_TAPS), reduce_threads()
    nj = min(kw, taps)
    ni = max(1, min(kh, taps // nj))
    cols = min(ow, threads)
    row_step = threads // cols
    # output channels a thread sums for: CUDA_CONV_CHANNELS, as far as the block's reduction
    # buffer ((taps + 1) x kq x threads values) fits in the 48 KB a block may declare
    kq = max(1, min(int(cfg.CUDA_CONV_CHANNELS), k_out, 49152 // ((taps + 1) * threads * x.dtype.itemsize)))
    groups = -(-k_out // kq) * c_in
    slices = max(1, min(-(-_BLOCKS // groups), -(-(n * oh) // (4 * row_step)), 65535))
    passes = -(-kh // ni) * -(-kw // nj)
    part = new((k_out * c_in, passes, slices, taps + 1), np.float64)
    dw_ = new(w_shape, x.dtype)
    db = new((k_out,), x.dtype) if bias else dw_
    dims, wide = _dims(x.shape, w_shape, (oh, ow))
    kernel = _conv_weight_grad_kernel(taps, ni, nj, kq, threads, x.dtype.str, wide)
    cuda_array.launch(kernel, (min(groups, 1 << 30), slices), threads, x.buf, g.buf, dw_.nd(), db.buf, bias,
                      part.nd(), _plane_counters(groups).buf, dims,
                      *_ints(wide, cols, row_step, *stride, *padding, *dilation))
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
