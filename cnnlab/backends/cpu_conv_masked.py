"""3x3 stride-1 convolutions with padding 1 for float32, read straight from the unpadded planes.

The tiled kernels of cpu_conv_tiled.py read a padded copy of the input and run along output
rows in vectors of eight, so a row whose width is not a multiple of eight leaves lanes
unused (a 28-wide row: 24 + 8 positions for 28, an eighth of the work wasted), and the
padded copy costs a pass over memory of its own (0.4 ms of a 4.4 ms forward pass on
64x16x28x28 -> 32).

Here a block takes 8 output channels x 32 consecutive positions of the (N, C, H, W) plane
itself, rows and all, as sixteen 16-lane (AVX-512) vectors of sums, and every tap is a
fixed offset (i - 1) * W + (j - 1) into it. The lanes whose tap falls outside the image (a
column past either edge, a row above or below) are left out of the load
(simd.vload16_masked): they read as zeros, exactly as the padding would, and are not read
at all. So there is no padded copy, and no lane is wasted but in a plane's last block. The
masks come from a small table per plane size (wide_mask_table). A tap row that stays
inside the image for every lane of a block (all three, away from the first and last rows)
needs only the two column masks per vector, which stay in the CPU's mask registers through
all input channels (_cols); the others look each tap's masks up (_table).
The 16-lane vectors took 0.85-0.99x the time of four channels x four 8-lane vectors on two
threads (half the instructions per multiply-add), with the same bits.
A block also prefetches the output lines it will write (claim8) and, per input channel,
the input a few blocks ahead (_ahead): over a batch that outgrows the L2 the kernel
otherwise waited on memory along more streams than the CPU's own prefetchers follow.

This is the forward pass and, with the flipped, transposed weights over the output
gradient, the input gradient. Each output is summed in the tiled kernels' order (input
channel, then tap; a masked lane adds w * 0), so the results are the same bits as theirs
and do not depend on the thread count. The weight gradient reads the same planes
(conv3x3_masked_dw). cpu_conv uses these kernels on CPUs with 32 vector registers, like the
tiled ones (cpu_conv._unpadded says when).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit, prange

from .._config import NJIT, NJIT_PARALLEL
from .cpu_conv_direct import DW_CHUNKS
from .cpu_conv_tiled import MR, _fma3, pack_taps
from .simd import (prefetch, prefetch_for_write, vadd, vfma, vload, vload16, vload16_masked, vload_masked, vsplat16,
                   vstore, vstore_first, vsum8, vzero, vzero16)

MIN_C = 8       # input channels from which cpu_conv runs the forward pass alone on them (cpu_conv._unpadded)
BLOCK = 32      # positions per block: two 16-lane vectors (four of the weight gradient's 8-lane ones)
# How far ahead of a block's row below (in positions) _block asks for the input: each input
# channel is a stream of its own, more than the hardware prefetchers follow (claim8 says
# what it saved).
AHEAD = 3 * BLOCK


@lru_cache(maxsize=64)
def mask_table(h: int, w: int) -> np.ndarray:
    """(vectors, 9) uint8: bit l of [v, 3i + j] says whether tap (i, j) of position 8v + l of
    an h x w plane reads inside the image (positions past the plane read nothing)."""
    vectors = -(-h * w // BLOCK) * (BLOCK // 8)
    return _masks(np.arange(vectors * 8).reshape(vectors, 8), 0, h, w)


@lru_cache(maxsize=64)
def wide_mask_table(h: int, w: int) -> np.ndarray:
    """(vectors, 9) uint16: mask_table for 16-lane vectors (bit l of [v, t] for position 16v + l)."""
    m = mask_table(h, w).astype(np.uint16)
    return np.ascontiguousarray(m[0::2] | (m[1::2] << 8))


@lru_cache(maxsize=64)
def tail_masks(h: int, w: int) -> np.ndarray:
    """(9,) uint8: the masks of the vector of a plane's last eight positions, H * W - 8 on,
    with the lanes before the last multiple of eight (counted by the vector before) left out."""
    size = h * w
    return _masks(np.arange(size - 8, size)[None], size // 8 * 8, h, w)[0]


@lru_cache(maxsize=64)
def _dw_masks(h: int, w: int, rim: tuple | None = None) -> tuple:
    """conv3x3_masked_dw's masks for h x w planes: the table and the tail's (tap t from the
    stride-1 column rim[t]), whole[v, i] (all three taps of kernel row i keep every lane of
    vector v) and some_whole[i] (any vector does)."""
    cols = list(range(9) if rim is None else rim)
    masks = np.ascontiguousarray(mask_table(h, w)[:, cols])
    tail = np.ascontiguousarray(tail_masks(h, w)[cols])
    whole = np.ascontiguousarray((masks.reshape(-1, 3, 3) == 255).all(axis=2).astype(np.uint8))
    return masks, tail, whole, whole.any(axis=0).astype(np.uint8)


def _masks(p: np.ndarray, first: int, h: int, w: int) -> np.ndarray:
    """For rows of eight positions p: per tap, the lanes whose position lies in [first, h * w)
    and whose tap reads inside the image, as the bits of one byte."""
    row, col = p // w, p % w
    table = np.empty((p.shape[0], 9), np.uint8)
    for i in range(3):
        for j in range(3):
            inside = ((p >= first) & (p < h * w) & (row + i - 1 >= 0) & (row + i - 1 < h)
                      & (col + j - 1 >= 0) & (col + j - 1 < w))
            table[:, 3 * i + j] = (inside << np.arange(8)).sum(axis=1)
    return table


@njit(**NJIT_PARALLEL)
def conv3x3_masked(x, wp, bias, y, masks):
    """y[b, k, oy, ox] = bias[k] + sum over c, i, j of w[k, c, i, j] * x[b, c, oy + i - 1, ox + j - 1]
    (zero outside the image); x (N, C, H, W) and y (N, K, H, W) C-contiguous, wp the weights
    packed MR channels a block (cpu_conv_tiled.pack_taps(w, MR)), masks wide_mask_table(H, W)."""
    n, k_n, h, w = y.shape
    size = h * w
    blocks, c_n = wp.shape[0], wp.shape[1]
    per_plane = (size + BLOCK - 1) // BLOCK
    for task in prange(n * blocks):
        b = task // blocks
        kb = task % blocks
        xb = b * c_n * size
        wb = kb * c_n * 9 * MR
        d = (b * k_n + kb * MR) * size
        for j in range(per_plane):
            p = j * BLOCK
            top, bottom = p < w, p + BLOCK > size - w
            # which tap rows can fall outside the image for some lane: none (0), the row above
            # (1, a block in the first row), the row below (2, the last row), any (3: a block
            # in both, or past the plane's end, where no tap may read)
            rim = 3 if p + BLOCK > size or (top and bottom) else (1 if top else (2 if bottom else 0))
            if size - p <= 16:   # a last block of one vector's positions or fewer: half the work
                _last(x, wp, bias, y, masks, w, size, c_n, xb + p, 2 * j, wb, d + p, kb * MR, size - p)
            else:
                _block(x, wp, bias, y, masks, w, size, c_n, xb + p, 2 * j, wb, d + p, kb * MR, size - p, rim)


# inline='always' merges the block into the task loop in numba's own IR: as a call it took
# a reference on each array per block (NRT_incref / decref, atomic on memory both threads
# share) and kept the sums on the stack across the rim cases; 0.90x the time on one
# thread, 0.93x on two, the same bits.
@njit(inline='always', **NJIT)
def _block(x, wp, bias, y, masks, w, size, c_n, p, v, wb, d, k0, left, rim):
    """MR channels x BLOCK positions p.. (16-lane vectors v, v + 1) of conv3x3_masked. The tap
    rows inside the image for every lane need only the column masks (the lanes in column 0
    left out of the left taps, those in column W - 1 out of the right ones), four that stay
    in the CPU's mask registers through all input channels (_cols); the others look each
    tap's masks up (_table). The sums run in the order of c, then taps, whatever rim is."""
    l0, l1, r0, r1 = masks[v, 3], masks[v + 1, 3], masks[v, 5], masks[v + 1, 5]
    claim8(y, d, size)
    z = vzero16()
    a = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    if rim == 0:
        for c in range(c_n):
            q, u = p + c * size, wb + c * 9 * MR
            _ahead(x, q + w + AHEAD)
            a = _cols(x, wp, q - w, u, l0, l1, r0, r1, a)
            a = _cols(x, wp, q, u + 3 * MR, l0, l1, r0, r1, a)
            a = _cols(x, wp, q + w, u + 6 * MR, l0, l1, r0, r1, a)
    elif rim == 1:
        for c in range(c_n):
            q, u = p + c * size, wb + c * 9 * MR
            _ahead(x, q + w + AHEAD)
            a = _table(x, wp, q - w, u, masks, v, 0, a)
            a = _cols(x, wp, q, u + 3 * MR, l0, l1, r0, r1, a)
            a = _cols(x, wp, q + w, u + 6 * MR, l0, l1, r0, r1, a)
    elif rim == 2:
        for c in range(c_n):
            q, u = p + c * size, wb + c * 9 * MR
            _ahead(x, q + w + AHEAD)
            a = _cols(x, wp, q - w, u, l0, l1, r0, r1, a)
            a = _cols(x, wp, q, u + 3 * MR, l0, l1, r0, r1, a)
            a = _table(x, wp, q + w, u + 6 * MR, masks, v, 2, a)
    else:
        for c in range(c_n):
            q, u = p + c * size, wb + c * 9 * MR
            _ahead(x, q + w + AHEAD)
            a = _table(x, wp, q - w, u, masks, v, 0, a)
            a = _table(x, wp, q, u + 3 * MR, masks, v, 1, a)
            a = _table(x, wp, q + w, u + 6 * MR, masks, v, 2, a)
    store8(y, bias, k0, d, size, left, a)


@njit(inline='always', **NJIT)
def _ahead(x, q):
    """Prefetch the two cache lines (or three, unaligned) of x from flat index q on: 32
    positions of one input channel a block further on will read."""
    prefetch(x, q)
    prefetch(x, q + 16)


@njit(inline='always', **NJIT)
def _last(x, wp, bias, y, masks, w, size, c_n, p, v, wb, d, k0, left):
    """_block for a plane's last positions p.. when at most 16 are left: one vector, every
    tap's masks from the table, the sums in _block's order."""
    z = vzero16()
    a = (z, z, z, z, z, z, z, z)
    for c in range(c_n):
        q, u = p + c * size, wb + c * 9 * MR
        for i in range(3):
            for j in range(3):
                t = 3 * i + j
                a = _tap1(wp, u + t * MR, vload16_masked(x, q + (i - 1) * w + j - 1, masks[v, t]), a)
    # left <= 16: the second vector of each channel stores nothing
    store8(y, bias, k0, d, size, left, (a[0], z, a[1], z, a[2], z, a[3], z, a[4], z, a[5], z, a[6], z, a[7], z))


@njit(**NJIT)
def _tap1(wp, u, x0, a):
    """_tap for one vector of positions: the 8 sums plus one tap."""
    return (vfma(vsplat16(wp.flat[u]), x0, a[0]), vfma(vsplat16(wp.flat[u + 1]), x0, a[1]),
            vfma(vsplat16(wp.flat[u + 2]), x0, a[2]), vfma(vsplat16(wp.flat[u + 3]), x0, a[3]),
            vfma(vsplat16(wp.flat[u + 4]), x0, a[4]), vfma(vsplat16(wp.flat[u + 5]), x0, a[5]),
            vfma(vsplat16(wp.flat[u + 6]), x0, a[6]), vfma(vsplat16(wp.flat[u + 7]), x0, a[7]))


@njit(**NJIT)
def _cols(x, wp, q, u, l0, l1, r0, r1, a):
    """One tap row (its three taps) read from row start q, inside the image for every lane."""
    a = _tap(wp, u, vload16_masked(x, q - 1, l0), vload16_masked(x, q + 15, l1), a)
    a = _tap(wp, u + MR, vload16(x, q), vload16(x, q + 16), a)
    return _tap(wp, u + 2 * MR, vload16_masked(x, q + 1, r0), vload16_masked(x, q + 17, r1), a)


@njit(**NJIT)
def _table(x, wp, q, u, masks, v, i, a):
    """One tap row (i) read from row start q, every load masked from the table."""
    for j in range(3):
        t = 3 * i + j
        a = _tap(wp, u + j * MR, vload16_masked(x, q + j - 1, masks[v, t]),
                 vload16_masked(x, q + j + 15, masks[v + 1, t]), a)
    return a


@njit(**NJIT)
def _tap(wp, u, x0, x1, a):
    """The block's 16 sums plus one tap: the MR weights at wp.flat[u:u + MR] times the two
    vectors of positions (sums channel-major, two vectors each)."""
    s = vsplat16(wp.flat[u])
    a0, a1 = vfma(s, x0, a[0]), vfma(s, x1, a[1])
    s = vsplat16(wp.flat[u + 1])
    b0, b1 = vfma(s, x0, a[2]), vfma(s, x1, a[3])
    s = vsplat16(wp.flat[u + 2])
    c0, c1 = vfma(s, x0, a[4]), vfma(s, x1, a[5])
    s = vsplat16(wp.flat[u + 3])
    d0, d1 = vfma(s, x0, a[6]), vfma(s, x1, a[7])
    s = vsplat16(wp.flat[u + 4])
    e0, e1 = vfma(s, x0, a[8]), vfma(s, x1, a[9])
    s = vsplat16(wp.flat[u + 5])
    f0, f1 = vfma(s, x0, a[10]), vfma(s, x1, a[11])
    s = vsplat16(wp.flat[u + 6])
    g0, g1 = vfma(s, x0, a[12]), vfma(s, x1, a[13])
    s = vsplat16(wp.flat[u + 7])
    h0, h1 = vfma(s, x0, a[14]), vfma(s, x1, a[15])
    return (a0, a1, b0, b1, c0, c1, d0, d1, e0, e1, f0, f1, g0, g1, h0, h1)


@njit(inline='always', **NJIT)
def claim8(y, d, cstride):
    """Prefetch for writing the lines store8(y, .., d, cstride, ..) will write (eight
    channels' 32 positions: two lines each, three unaligned), at the start of a block: a
    store to a line not in the cache waits for it, and a block's sixteen stores wait on
    eight planes at once. With _ahead's prefetch of the input 0.86x the time of neither on
    64x16x28x28 -> 32 on two threads (each alone 0.91x), 0.92x on one, the same bits."""
    for k in range(MR):
        prefetch_for_write(y, d + k * cstride)
        prefetch_for_write(y, d + k * cstride + 16)
        prefetch_for_write(y, d + k * cstride + BLOCK - 1)


@njit(inline='always', **NJIT)
def store8(y, bias, k0, d, cstride, left, a):
    """The 16 sums of a block (channel-major, two vectors each) into channels k0.. k0 + 7,
    cstride apart from position d on (_store each)."""
    _store(y, bias, k0, d, left, a[0], a[1])
    _store(y, bias, k0 + 1, d + cstride, left, a[2], a[3])
    _store(y, bias, k0 + 2, d + 2 * cstride, left, a[4], a[5])
    _store(y, bias, k0 + 3, d + 3 * cstride, left, a[6], a[7])
    _store(y, bias, k0 + 4, d + 4 * cstride, left, a[8], a[9])
    _store(y, bias, k0 + 5, d + 5 * cstride, left, a[10], a[11])
    _store(y, bias, k0 + 6, d + 6 * cstride, left, a[12], a[13])
    _store(y, bias, k0 + 7, d + 7 * cstride, left, a[14], a[15])


@njit(**NJIT)
def _store(y, bias, k, d, left, u0, u1):
    """Output channel k's positions d..d + 31, plus its bias; of a plane's last block only
    the `left` positions inside the plane (the rest would be the next plane's)."""
    if k < y.shape[1]:
        bv = vsplat16(bias[k])
        if left >= BLOCK:
            vstore(y, d, vadd(u0, bv))
            vstore(y, d + 16, vadd(u1, bv))
        else:
            vstore_first(y, d, vadd(u0, bv), max(0, min(16, left)))
            vstore_first(y, d + 16, vadd(u1, bv), max(0, min(16, left - 16)))


@njit(**NJIT_PARALLEL)
def conv3x3_masked_dw(x, g, part, masks, tail, whole, some_whole, taps, cstride):
    """part[t, c, 3i + j, k] = sum over the images b of chunk t and the positions p of g's
    planes of g[b, k][p] * x.flat[(b * C + c) * cstride + taps[i, j] + p] where the tap reads
    inside the image (bit p % 8 of masks[p // 8, 3i + j]); g (N, K, OH, OW) with K a multiple
    of MR (8), masks mask_table(OH, OW), tail tail_masks(OH, OW), whole[v, i] whether vector
    v's three taps of row i keep every lane (_dw_masks), some_whole[i] whether any does.
    Those vectors load without masks: reading three masks from the table per 24
    multiply-adds cost ~10% of the time; on 28-wide rows 4 vectors in 7 need none (0.95-0.97x
    the time, the same bits; rows of 16 have none, and skip the test). Stride 1 (weight_grad): x
    the (N, C, H, W) input, cstride H * W, taps (i - 1) * W + j - 1. Stride 2
    (cpu_conv_masked_s2): x the input's parity planes, cstride 4 * OH * OW, each tap an
    offset into one of the four planes.

    cpu_conv_tiled.conv3x3_tiled_dw's blocking on the unpadded planes: a task takes eight
    output channels and one chunk and, per (input channel, kernel row), keeps 24 vector sums
    (8 channels x 3 taps) over all of the chunk's images; per eight positions three masked
    loads of x and eight plain loads of g feed 24 multiply-adds (masked loads of g ran at a
    third of the speed). A plane of OH * OW positions not a multiple of eight ends with the
    vector of its last eight positions, whose lanes already counted the tail masks leave out
    of x. Each sum runs in a fixed order over a fixed chunk, so the result does not depend
    on the thread count."""
    n, k_n, oh, ow = g.shape
    size = oh * ow
    full = size // 8
    chunks, c_n = part.shape[0], part.shape[1]
    blocks = k_n // MR
    for task in prange(chunks * blocks):
        t = task // blocks
        k0 = (task % blocks) * MR
        for c in range(c_n):
            for i in range(3):
                s = (vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(),
                     vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(),
                     vzero(), vzero())
                ta, tm, tc = taps[i, 0], taps[i, 1], taps[i, 2]
                for b in range(t * n // chunks, (t + 1) * n // chunks):
                    xb = (b * c_n + c) * cstride
                    gb = (b * k_n + k0) * size
                    if some_whole[i]:
                        for v in range(full):
                            if whole[v, i]:   # no lane left out: constant masks, plain loads
                                s = _dw8(x, g, xb + ta, xb + tm, xb + tc, gb, 8 * v, size, 255, 255, 255, s)
                            else:
                                s = _dw8(x, g, xb + ta, xb + tm, xb + tc, gb, 8 * v, size,
                                         masks[v, 3 * i], masks[v, 3 * i + 1], masks[v, 3 * i + 2], s)
                    else:
                        for v in range(full):
                            s = _dw8(x, g, xb + ta, xb + tm, xb + tc, gb, 8 * v, size,
                                     masks[v, 3 * i], masks[v, 3 * i + 1], masks[v, 3 * i + 2], s)
                    if full * 8 < size:
                        s = _dw8(x, g, xb + ta, xb + tm, xb + tc, gb, size - 8, size,
                                 tail[3 * i], tail[3 * i + 1], tail[3 * i + 2], s)
                d = ((t * c_n + c) * 9 + 3 * i) * k_n + k0
                vstore(part, d, vsum8(s[0], s[3], s[6], s[9], s[12], s[15], s[18], s[21]))
                vstore(part, d + k_n, vsum8(s[1], s[4], s[7], s[10], s[13], s[16], s[19], s[22]))
                vstore(part, d + 2 * k_n, vsum8(s[2], s[5], s[8], s[11], s[14], s[17], s[20], s[23]))


@njit(**NJIT)
def _dw8(x, g, xa, xm, xc, gb, p, size, ma, mb, mc, s):
    """Positions p..p + 7 of conv3x3_masked_dw: the three taps of x read from xa, xm and xc
    on (masks ma, mb, mc) times eight channels of g, added to the 24 sums s (channel-major,
    three taps each)."""
    ya = vload_masked(x, xa + p, ma)
    ym = vload_masked(x, xm + p, mb)
    yc = vload_masked(x, xc + p, mc)
    q = gb + p
    s00, s01, s02 = _fma3(vload(g, q), ya, ym, yc, s[0], s[1], s[2])
    s10, s11, s12 = _fma3(vload(g, q + size), ya, ym, yc, s[3], s[4], s[5])
    s20, s21, s22 = _fma3(vload(g, q + 2 * size), ya, ym, yc, s[6], s[7], s[8])
    s30, s31, s32 = _fma3(vload(g, q + 3 * size), ya, ym, yc, s[9], s[10], s[11])
    s40, s41, s42 = _fma3(vload(g, q + 4 * size), ya, ym, yc, s[12], s[13], s[14])
    s50, s51, s52 = _fma3(vload(g, q + 5 * size), ya, ym, yc, s[15], s[16], s[17])
    s60, s61, s62 = _fma3(vload(g, q + 6 * size), ya, ym, yc, s[18], s[19], s[20])
    s70, s71, s72 = _fma3(vload(g, q + 7 * size), ya, ym, yc, s[21], s[22], s[23])
    return (s00, s01, s02, s10, s11, s12, s20, s21, s22, s30, s31, s32, s40, s41, s42, s50, s51, s52,
            s60, s61, s62, s70, s71, s72)


def usable(x: np.ndarray, w_shape, stride, padding, dilation) -> bool:
    """Whether conv3x3 below computes this convolution (cpu_conv also requires the CPU)."""
    return (x.dtype == np.float32 and tuple(w_shape[2:]) == (3, 3)
            and x.shape[2] * x.shape[3] >= 8   # the weight gradient's last vector lies inside the plane
            and tuple(stride) == (1, 1) and tuple(padding) == (1, 1) and tuple(dilation) == (1, 1))


def conv3x3(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """The 3x3, stride-1, padding-1 convolution of x (N, C, H, W) float32 with w (K, C, 3, 3):
    (N, K, H, W)."""
    x = np.ascontiguousarray(x)
    n, _, h, wd = x.shape
    k = w.shape[0]
    y = np.empty((n, k, h, wd), np.float32)
    bias = np.zeros(k, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    conv3x3_masked(x, pack_taps(np.asarray(w, np.float32), MR), bias, y, wide_mask_table(h, wd))
    return y


def weight_grad(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The (K, C, 3, 3) weight gradient of conv3x3(x, w) for the output gradient g."""
    x = np.ascontiguousarray(x)
    _, c, h, wd = x.shape
    return summed_weight_grad(x, g, c, h * wd, _stride1_taps(wd))


@lru_cache(maxsize=64)
def _stride1_taps(w: int) -> np.ndarray:
    """Tap (i, j)'s offset from an output position into its input plane of width w."""
    return np.array([[(i - 1) * w + j - 1 for j in range(3)] for i in range(3)], np.int64)


def summed_weight_grad(x: np.ndarray, g: np.ndarray, c: int, cstride: int, taps: np.ndarray,
                       rim: tuple | None = None) -> np.ndarray:
    """conv3x3_masked_dw over the images in min(N, DW_CHUNKS) fixed chunks, then the chunks
    added up: the (K, C, 3, 3) weight gradient. Tap t's masks are the stride-1 table's
    column rim[t] (by default t itself). g gets zero planes up to a multiple of MR channels
    (one copy, only when K is not)."""
    g = np.ascontiguousarray(g)
    n, k, oh, ow = g.shape
    k8 = -(-k // MR) * MR
    if k8 != k:
        padded = np.zeros((n, k8, oh, ow), np.float32)
        padded[:, :k] = g
        g = padded
    part = np.empty((min(n, DW_CHUNKS), c, 9, k8), np.float32)   # the kernel writes every value
    conv3x3_masked_dw(x, g, part, *_dw_masks(oh, ow, rim), taps, cstride)
    return np.ascontiguousarray(part.sum(axis=0)[:, :, :k].transpose(2, 0, 1)).reshape(k, c, 3, 3)
