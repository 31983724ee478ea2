"""The CUDA backend's array maths beyond elementwise: where and clip, matmul (a register-tiled
shared-memory gemm, also Linear's three products), reductions (sum, amax, argmax as
trees in shared memory, float64 accumulators), joins, pads and sum_to_shape.

Sums accumulate in float64 and reduce as a tree, so they differ from NumPy's
pairwise float32 sums in the last bits.
"""
from __future__ import annotations

import builtins
import math

import numba
import numpy as np
from numba import cuda

from .. import _config as cfg
from . import cuda_array, cuda_launch
from .cuda_array import (
    DeviceArray, astype, broadcast_strides, broadcast_to, c_strides, dtype_of, flat_offset, from_numpy, full,
    getitem, host_index, is_basic_index, kernel_factory, kernel_shape, launch_blocks, launch_flat, new, operand,
    reduce_threads, reshape, result_dtype, setitem, to_numpy, zeros,
)

# ----------------------------------------------------------------------------
# where, clip
# ----------------------------------------------------------------------------

@cuda.jit(**cfg.CUDA_JIT)
def _where3(cond, sc, a, sa, b, sb, shape, out):
    i = cuda.grid(1)
    if i < out.size:
        if cond[flat_offset(i, shape, sc)]:
            out[i] = a[flat_offset(i, shape, sa)]
        else:
            out[i] = b[flat_offset(i, shape, sb)]


def where(cond, a, b):
    cond, a, b = (operand(x) for x in (cond, a, b))
    out_dtype = np.result_type(dtype_of(a), dtype_of(b))
    a, b = (x if isinstance(x, DeviceArray) else full((), x, out_dtype) for x in (a, b))
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    out = new(shape, out_dtype)
    launch_flat(_where3, out.size, cond.buf, broadcast_strides(cond.shape, shape),
                a.buf, broadcast_strides(a.shape, shape), b.buf, broadcast_strides(b.shape, shape),
                kernel_shape(shape), out.buf)
    return out


@cuda.jit(**cfg.CUDA_JIT)
def _clip(a, lo, has_lo, hi, has_hi, out):
    i = cuda.grid(1)
    if i < out.size:
        v = a[i]
        if has_lo and v < lo:
            v = lo
        if has_hi and v > hi:
            v = hi
        out[i] = v


def clip(a, lo, hi):
    out = new(a.shape, result_dtype(np.clip, a, lo, hi))
    calc = out.dtype.type
    launch_flat(_clip, out.size, a.buf, calc(0 if lo is None else lo), lo is not None,
                calc(0 if hi is None else hi), hi is not None, out.buf)
    return out


# ----------------------------------------------------------------------------
# matmul: a register-tiled shared-memory kernel over strided operands -----

@kernel_factory
def _gemm_kernel(tile, rm, rn, dtype_str):
    acc_t = numba.from_dtype(np.dtype(dtype_str))
    zero = np.dtype(dtype_str).type(0)
    one = np.dtype(dtype_str).type(1)
    bm = tile * rm  # rows of c per block
    bn = tile * rn  # columns of c per block
    threads = tile * tile
    # each shared tile gets one spare column: a warp storing down a column (the operand's
    # contiguous axis runs along q) then touches 32 different memory banks, not one
    bm_pad = bm + 1
    bn_pad = bn + 1

    def gemm(a, sa0, sa1, sa2, a_q_fast, b, sb0, sb1, sb2, b_col_fast, c, m, n, k, batch, bias, has_bias,
             row_sums, has_row_sums):
        # c[z, row, col] = sum_q a[z, row, q] * b[z, q, col] (+ bias[col]); operands strided, so a
        # transposed operand costs no copy. A block computes a bm x bn piece of c, each thread
        # rm x rn cells of it in registers (rows ty + i*tile, columns tx + j*tile: neighbouring
        # threads write neighbouring columns), from tile-deep slices of a and b staged in shared
        # memory. Each operand is loaded along whichever of its axes is contiguous (a_q_fast,
        # b_col_fast), so a warp reads consecutive addresses for the transposed weight too.
        # With has_row_sums, b gets an extra column of ones, and that column of c (row sums of
        # a: Linear's bias gradient) goes to row_sums. Row tiles stride by gridDim.y (at most
        # 65,535 blocks), so a million-row input still launches.
        ta = cuda.shared.array((tile, bm_pad), acc_t)  # [q, row]
        tb = cuda.shared.array((tile, bn_pad), acc_t)  # [q, col]
        acc = cuda.local.array((rm, rn), acc_t)
        ra = cuda.local.array(rm, acc_t)
        rb = cuda.local.array(rn, acc_t)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        t = ty * tile + tx
        # the cells of the a and b tiles this thread loads: its first (row, q) and (q, col), and
        # the step to the next, along the operand's contiguous axis so that a warp's loads coalesce
        if a_q_fast:
            ar, aq, adr, adq = t // tile, t % tile, tile, 0
        else:
            ar, aq, adr, adq = t % bm, t // bm, 0, tile // rm
        if b_col_fast:
            bq, bc, bdq, bdc = t // bn, t % bn, tile // rn, 0
        else:
            bq, bc, bdq, bdc = t % tile, t // tile, 0, tile
        a_step = adr * sa1 + adq * sa2
        b_step = bdq * sb1 + bdc * sb2
        cols = n + 1 if has_row_sums else n
        col0 = cuda.blockIdx.x * bn
        row_tiles = (m + bm - 1) // bm
        for z in range(cuda.blockIdx.z, batch, cuda.gridDim.z):
            for rt in range(cuda.blockIdx.y, row_tiles, cuda.gridDim.y):
                row0 = rt * bm
                for i in range(rm):
                    for j in range(rn):
                        acc[i, j] = zero
                for q0 in range(0, k, tile):
                    at = z * sa0 + (row0 + ar) * sa1 + (q0 + aq) * sa2
                    for l in range(rm):  # bm x tile cells of a, rm per thread
                        r = ar + l * adr
                        q = aq + l * adq
                        ta[q, r] = a[at + l * a_step] if row0 + r < m and q0 + q < k else zero
                    bt = z * sb0 + (q0 + bq) * sb1 + (col0 + bc) * sb2
                    for l in range(rn):  # tile x bn cells of b, rn per thread
                        q = bq + l * bdq
                        j = bc + l * bdc
                        v = zero
                        if q0 + q < k:
                            if col0 + j < n:
                                v = b[bt + l * b_step]
                            elif col0 + j == n and has_row_sums:
                                v = one
                        tb[q, j] = v
                    cuda.syncthreads()
                    for q in range(tile):
                        for i in range(rm):
                            ra[i] = ta[q, ty + i * tile]
                        for j in range(rn):
                            rb[j] = tb[q, tx + j * tile]
                        for i in range(rm):
                            for j in range(rn):
                                acc[i, j] += ra[i] * rb[j]
                    cuda.syncthreads()
                for i in range(rm):
                    row = row0 + ty + i * tile
                    if row < m:
                        for j in range(rn):
                            col = col0 + tx + j * tile
                            if col < n:
                                c[(z * m + row) * n + col] = acc[i, j] + bias[col] if has_bias else acc[i, j]
                            elif col < cols:
                                row_sums[z * m + row] = acc[i, j]
    return cuda.jit(gemm, **cfg.CUDA_JIT)


def gemm_grid(m: int, n: int, batch: int, rows: int, cols: int | None = None) -> tuple[int, int, int]:
    """Blocks along (x: column tiles, y: row tiles, z: matrices) for blocks of rows x cols cells of c
    (cols = rows when not given); y and z capped at the device's limits, the kernel's blocks stride
    over the rest."""
    cols = rows if cols is None else cols
    return (n + cols - 1) // cols, cuda_launch.capped((m + rows - 1) // rows, 1), cuda_launch.capped(batch, 2)


def gemm(a, sa, b, sb, m, n, k, batch, dtype, bias=None, row_sums=False):
    """c[z] = a[z] @ b[z] (+ bias) for z < batch, with a, b read through (batch, row, col) element
    strides sa, sb: a (m, k) and b (k, n) operand may be a transposed view at no cost.
    With row_sums, returns (c, the row sums of a (batch, m)) from the same launch."""
    out = new((batch, m, n), dtype)
    sums = new((batch, m), dtype) if row_sums else out
    if batch * m * (n + bool(row_sums)):
        t, (rm, rn) = int(cfg.CUDA_TILE), cfg.CUDA_TILE_OUTPUTS
        grid = gemm_grid(m, n + bool(row_sums), batch, t * rm, t * rn)
        # each operand is loaded along its contiguous axis (the one of stride 1, or the smaller stride)
        cuda_array.launch(_gemm_kernel(t, rm, rn, out.dtype.str), grid, (t, t), a.buf, *sa, sa[2] <= sa[1], b.buf,
                          *sb, sb[2] <= sb[1], out.buf, m, n, k, batch, (bias if bias is not None else out).buf,
                          bias is not None, sums.buf, bool(row_sums))
    return (out, sums) if row_sums else out


def _batch_stride(x, batch, matrix):
    """(x, stride between matrices) for x (..., r, c) read as batch + (r, c)."""
    lead = x.shape[:-2]
    if math.prod(lead) == 1:
        return x, 0
    if lead != tuple(batch):
        x = broadcast_to(x, tuple(batch) + x.shape[-2:])
    return x, matrix


def matmul(a, b):
    a, b = operand(a), operand(b)
    dtype = np.result_type(a.dtype, b.dtype)
    a, b = astype(a, dtype), astype(b, dtype)
    a2 = reshape(a, (1, a.size)) if a.ndim == 1 else a
    b2 = reshape(b, (b.size, 1)) if b.ndim == 1 else b
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions")
    m, k = a2.shape[-2:]
    k2, n = b2.shape[-2:]
    if k != k2:
        raise ValueError(f"matmul: mismatch in its core dimension: {a.shape} @ {b.shape} ({k} != {k2})")
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    a2, sa = _batch_stride(a2, batch, m * k)
    b2, sb = _batch_stride(b2, batch, k * n)
    out = gemm(a2, (sa, k, 1), b2, (sb, n, 1), m, n, k, math.prod(batch), dtype)
    shape = tuple(batch) + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    return reshape(out, shape)


# ----------------------------------------------------------------------------
# reductions: one block per output element, a tree in shared memory ------

@cuda.jit(device=True)
def block_sum(sm, v):
    """Sum of v over the block's threads (all must call); sm has blockDim.x cells."""
    tid = cuda.threadIdx.x
    sm[tid] = v
    cuda.syncthreads()
    s = sm.shape[0] // 2
    while s > 0:
        if tid < s:
            sm[tid] += sm[tid + s]
        cuda.syncthreads()
        s //= 2
    total = sm[0]
    cuda.syncthreads()  # everyone has read sm[0] before the next call overwrites it
    return total


@cuda.jit(device=True)
def _better(v2, i2, v1, i1):
    """Does value v2 at index i2 beat v1 at i1 for NumPy's max/argmax: NaN, then larger, then earlier?"""
    if i2 < 0:
        return False
    if i1 < 0:
        return True
    nan1 = v1 != v1
    nan2 = v2 != v2
    if nan1 or nan2:
        return nan2 and (not nan1 or i2 < i1)
    return v2 > v1 or (v2 == v1 and i2 < i1)


@kernel_factory
def _sum_kernel(acc_str, threads):
    acc_t = numba.from_dtype(np.dtype(acc_str))
    zero = np.dtype(acc_str).type(0)

    def reduce_sum(a, kshape, kstrides, rshape, rstrides, rcount, out):
        sm = cuda.shared.array(threads, acc_t)
        for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            base = flat_offset(o, kshape, kstrides)
            acc = zero
            for r in range(cuda.threadIdx.x, rcount, threads):
                acc += a[base + flat_offset(r, rshape, rstrides)]
            total = block_sum(sm, acc)
            if cuda.threadIdx.x == 0:
                out[o] = total
    return cuda.jit(reduce_sum, **cfg.CUDA_JIT)


@kernel_factory
def _max_kernel(dtype_str, threads):
    val_t = numba.from_dtype(np.dtype(dtype_str))

    def reduce_max(a, kshape, kstrides, rshape, rstrides, rcount, values, indices):
        sv = cuda.shared.array(threads, val_t)
        si = cuda.shared.array(threads, numba.int64)
        tid = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, values.size, cuda.gridDim.x):
            base = flat_offset(o, kshape, kstrides)
            best = a[base]
            at = -1
            for r in range(tid, rcount, threads):
                v = a[base + flat_offset(r, rshape, rstrides)]
                if _better(v, r, best, at):
                    best = v
                    at = r
            sv[tid] = best
            si[tid] = at
            cuda.syncthreads()
            s = threads // 2
            while s > 0:
                if tid < s and _better(sv[tid + s], si[tid + s], sv[tid], si[tid]):
                    sv[tid] = sv[tid + s]
                    si[tid] = si[tid + s]
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                values[o] = sv[0]
                indices[o] = si[0]
            cuda.syncthreads()
    return cuda.jit(reduce_max, **cfg.CUDA_JIT)


def _reduction_layout(a, axis, keepdims):
    """Kept and reduced axes of `a` as (shape, strides) pairs, plus the output shape."""
    nd = a.ndim
    if axis is None:
        axes = tuple(range(nd))
    else:
        axes = tuple(sorted({ax % max(nd, 1) for ax in (axis if isinstance(axis, (tuple, list)) else (axis,))}))
    st = c_strides(a.shape)
    kept = [d for d in range(nd) if d not in axes]
    if keepdims:
        out_shape = tuple(1 if d in axes else a.shape[d] for d in range(nd))
    else:
        out_shape = tuple(a.shape[d] for d in kept)
    kshape = tuple(a.shape[d] for d in kept) or (1,)
    kstr = tuple(st[d] for d in kept) or (0,)
    rshape = tuple(a.shape[d] for d in axes if d < nd) or (1,)
    rstr = tuple(st[d] for d in axes if d < nd) or (0,)
    return out_shape, kshape, kstr, rshape, rstr, math.prod(a.shape[d] for d in axes if d < nd)


def sum(a, axis=None, keepdims=False):  # noqa: A001 - the backend contract's name
    a = operand(a)
    out_dtype = np.zeros(1, a.dtype).sum().dtype  # NumPy's: bool and ints give int64, floats keep theirs
    acc = np.dtype(np.float64) if out_dtype.kind in "fc" else out_dtype
    out_shape, kshape, kstr, rshape, rstr, count = _reduction_layout(a, axis, keepdims)
    out = new(out_shape, out_dtype)
    launch_blocks(_sum_kernel(acc.str, reduce_threads()), out.size, a.buf, kshape, kstr, rshape, rstr,
                  count, out.buf)
    return out


def _max_and_argmax(a, axis, keepdims):
    out_shape, kshape, kstr, rshape, rstr, count = _reduction_layout(a, axis, keepdims)
    if count == 0:
        raise ValueError("zero-size array to reduction operation maximum which has no identity")
    values = new(out_shape, a.dtype)
    indices = new(out_shape, np.int64)
    launch_blocks(_max_kernel(a.dtype.str, reduce_threads()), values.size, a.buf, kshape, kstr, rshape, rstr,
                  count, values.buf, indices.buf)
    return values, indices


def amax(a, axis=None, keepdims=False):
    return _max_and_argmax(a, axis, keepdims)[0]


def argmax(a, axis=None, keepdims=False):
    if axis is None:  # NumPy: the index into the flattened array
        return _max_and_argmax(reshape(a, (a.size,)), 0, False)[1]
    return _max_and_argmax(a, axis, keepdims)[1]


# ----------------------------------------------------------------------------
# joins, pads and scatter-adds, built on the runtime's views
# ----------------------------------------------------------------------------

def concatenate(arrays, axis):
    arrays = [operand(x) for x in arrays]
    axis %= arrays[0].ndim
    shape = list(arrays[0].shape)
    shape[axis] = builtins.sum(x.shape[axis] for x in arrays)
    out = new(shape, np.result_type(*(x.dtype for x in arrays)))
    start = 0
    for x in arrays:
        setitem(out, (slice(None),) * axis + (slice(start, start + x.shape[axis]),), x)
        start += x.shape[axis]
    return out


def split(a, indices, axis):
    bounds = [0, *(int(i) for i in indices), a.shape[axis]]
    return [getitem(a, (slice(None),) * (axis % a.ndim) + (slice(s, e),)) for s, e in zip(bounds[:-1], bounds[1:])]


def pad2d(a, top, bottom, left, right, value=0.0):
    """Zero (or `value`) border around the last two axes."""
    h, w = a.shape[-2:]
    out = full(a.shape[:-2] + (h + top + bottom, w + left + right), value, a.dtype)
    setitem(out, (Ellipsis, slice(top, top + h), slice(left, left + w)), a)
    return out


def unpad2d(a, top, bottom, left, right):
    h, w = a.shape[-2:]
    return getitem(a, (Ellipsis, slice(top, h - bottom), slice(left, w - right)))



def index_add(shape, dtype, index, values):
    """zeros(shape)[index] += values, with repeated indices accumulating."""
    if not is_basic_index(index):  # host fallback (np.add.at)
        out = np.zeros(shape, dtype)
        np.add.at(out, host_index(index), to_numpy(values) if isinstance(values, DeviceArray) else values)
        return from_numpy(out)
    out = zeros(shape, dtype)
    setitem(out, index, values)  # a basic index names each cell at most once
    return out


def sum_to_shape(g, shape):
    """Undo broadcasting: sum g down to `shape`."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    return reshape(sum(g, axis=axes, keepdims=True), shape)

