"""3x3 stride-2 convolutions with padding 1 for float32 on even-sized planes, read from the
input's four parity planes without padding (cpu_conv_masked.py's approach for stride 2).

A stride-2 window at output (oy, ox) reads input rows 2oy - 1, 2oy, 2oy + 1 and the same
columns. Split the (H, W) input into its four parity planes of OH x OW cells (even or odd
rows x even or odd columns, OH = H / 2): then every tap is one plane read at a fixed offset
from the output position, one row up for the top tap row (odd rows, the row before), one
column left for the left tap column, and the taps that would read the padding are exactly
those whose offset leaves the plane through its first row or first column. So the forward
pass is cpu_conv_masked's kernel over four planes: blocks of 8 output channels x 32
positions, the lanes whose tap falls outside the image left out of the load (masked loads
read them as zeros, as the padding would), and away from the first row and a plane's last
block only the left column's masks are needed, which stay in mask registers.

The padded parity planes of cpu_conv_direct.parity_planes leave a column and a row of each
plane to padding (rows of 17 cells for 16 outputs: the tiled kernels' vectors wasted a
third of their lanes); the unpadded split takes 0.23-0.64x their time (the CIFAR ResNet's
two shapes, operands in cache or not) and no lane is wasted but in a plane's last block. The forward pass
keeps the planes for the weight gradient, cpu_conv_masked.conv3x3_masked_dw with this
layout's tap offsets. The input gradient is gathered into the input's four parity planes
(conv3x3_s2_masked_dx: one, two or four taps each), then merged back. The forward pass
sums each output over c, then the taps in row-major order, and the input gradient over k,
then each plane's taps, as the tiled stride-2 kernels do: both give the same bits as theirs.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit, prange

from .._config import NJIT, NJIT_PARALLEL
from .cpu_conv_masked import BLOCK, _tap, claim8, store8, summed_weight_grad, wide_mask_table
from .cpu_conv_tiled import MR, pack_taps
from .cpu_threads import launch
from .simd import vload16, vload16_masked, vzero16


def usable(x: np.ndarray, w_shape, stride, padding, dilation) -> bool:
    """Whether conv3x3_s2 computes this convolution (cpu_conv also requires the CPU)."""
    return (x.dtype == np.float32 and tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (2, 2)
            and tuple(padding) == (1, 1) and tuple(dilation) == (1, 1)
            and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
            and x.shape[2] * x.shape[3] >= 32)   # planes of at least 8 cells: the weight gradient's vector


def split_parity(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) with H, W even -> (N, C, 4, H/2, W/2): plane 2a + b holds x[2r + a, 2c + b]."""
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    out = np.empty((n, c, 4, h // 2, w // 2), x.dtype)
    launch(_split, x.size, x, out)
    return out


@njit(**NJIT_PARALLEL)
def _split(x, out):
    n, c, h, w = x.shape
    oh, ow = h // 2, w // 2
    for task in prange(n * c):
        src = x[task // c, task % c]
        dst = out[task // c, task % c]
        for r in range(oh):
            top, bottom = src[2 * r], src[2 * r + 1]
            d0, d1, d2, d3 = dst[0, r], dst[1, r], dst[2, r], dst[3, r]
            for q in range(ow):   # one loop, four stores: LLVM turns them into vector shuffles
                d0[q] = top[2 * q]
                d1[q] = top[2 * q + 1]
                d2[q] = bottom[2 * q]
                d3[q] = bottom[2 * q + 1]


# tap (i, j) of a stride-2 window leaves the image where the stride-1 tap (i > 0, j > 0) of
# the output plane does: the top row reads the row before, the left column the column before
_RIM = tuple(3 * (i != 0) + (j != 0) for i in range(3) for j in range(3))


@lru_cache(maxsize=64)
def tap_offsets(oh: int, ow: int) -> np.ndarray:
    """(3, 3) int64: tap (i, j)'s offset from an output position into its image-channel's four
    planes (plane 2a + b at a * 2 * P + b * P, P = OH * OW cells each)."""
    size = oh * ow
    rows = [(1, -1), (0, 0), (1, 0)]   # tap row i: (the plane's row parity, its row offset)
    return np.array([[(2 * rows[i][0] + rows[j][0]) * size + rows[i][1] * ow + rows[j][1] for j in range(3)]
                     for i in range(3)], np.int64)


@njit(**NJIT_PARALLEL)
def conv3x3_s2_masked(xs, wp, bias, y, masks, offs):
    """y[b, k, oy, ox] = bias[k] + sum over c, i, j of w[k, c, i, j] * x[b, c, 2oy + i - 1, 2ox + j - 1]
    (zero outside the image); xs split_parity(x), y (N, K, OH, OW) C-contiguous, wp the
    weights packed MR channels a block (pack_taps(w, MR)), masks wide_mask_table(OH, OW),
    offs tap_offsets(OH, OW). A tap of the top row reads a plane's row before (outside the
    image in row 0: the table's tap above), one of the left column a plane's column before
    (the table's tap to the left); the others the output position itself (the table's
    centre: inside the plane)."""
    n, k_n, oh, ow = y.shape
    size = oh * ow
    blocks, c_n = wp.shape[0], wp.shape[1]
    per_plane = (size + BLOCK - 1) // BLOCK
    for task in prange(n * blocks):
        b = task // blocks
        kb = task % blocks
        xb = b * c_n * 4 * size
        wb = kb * c_n * 9 * MR
        d = (b * k_n + kb * MR) * size
        for j in range(per_plane):
            p = j * BLOCK
            edge = p < ow or p + BLOCK > size   # the first row, or past the plane's end: all from the table
            _block(xs, wp, bias, y, masks, offs, size, c_n, xb + p, 2 * j, wb, d + p, kb * MR, size - p, edge)


@njit(inline='always', **NJIT)
def _block(xs, wp, bias, y, masks, offs, size, c_n, p, v, wb, d, k0, left, edge):
    """MR channels x BLOCK positions p.. of conv3x3_s2_masked (vectors v, v + 1)."""
    claim8(y, d, size)   # 0.73-0.90x the time of the forward pass without (split_parity's copy included)
    z = vzero16()
    a = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    if edge:
        for c in range(c_n):
            q, u = p + c * 4 * size, wb + c * 9 * MR
            for i in range(3):
                for j in range(3):
                    t = _RIM[3 * i + j]   # the stride-1 table's tap with the same rim
                    at = q + offs[i, j]
                    a = _tap(wp, u + (3 * i + j) * MR, vload16_masked(xs, at, masks[v, t]),
                             vload16_masked(xs, at + 16, masks[v + 1, t]), a)
    else:
        l0, l1 = masks[v, 3], masks[v + 1, 3]   # the left column's lanes left out
        o00, o01, o02, o10, o11, o12, o20, o21, o22 = (offs[0, 0], offs[0, 1], offs[0, 2], offs[1, 0], offs[1, 1],
                                                       offs[1, 2], offs[2, 0], offs[2, 1], offs[2, 2])
        for c in range(c_n):
            q, u = p + c * 4 * size, wb + c * 9 * MR
            a = _tap(wp, u, vload16_masked(xs, q + o00, l0), vload16_masked(xs, q + o00 + 16, l1), a)
            a = _tap(wp, u + MR, vload16(xs, q + o01), vload16(xs, q + o01 + 16), a)
            a = _tap(wp, u + 2 * MR, vload16(xs, q + o02), vload16(xs, q + o02 + 16), a)
            a = _tap(wp, u + 3 * MR, vload16_masked(xs, q + o10, l0), vload16_masked(xs, q + o10 + 16, l1), a)
            a = _tap(wp, u + 4 * MR, vload16(xs, q + o11), vload16(xs, q + o11 + 16), a)
            a = _tap(wp, u + 5 * MR, vload16(xs, q + o12), vload16(xs, q + o12 + 16), a)
            a = _tap(wp, u + 6 * MR, vload16_masked(xs, q + o20, l0), vload16_masked(xs, q + o20 + 16, l1), a)
            a = _tap(wp, u + 7 * MR, vload16(xs, q + o21), vload16(xs, q + o21 + 16), a)
            a = _tap(wp, u + 8 * MR, vload16(xs, q + o22), vload16(xs, q + o22 + 16), a)
    store8(y, bias, k0, d, size, left, a)


@njit(**NJIT_PARALLEL)
def conv3x3_s2_masked_dx(g, wq, out, masks):
    """The input gradient as its four parity planes: out[b, c, 2a + e, r, q] = dx[b, c, 2r + a,
    2q + e] (N, C, 4, OH, OW), from g (N, K, OH, OW) and wq the transposed weights packed MR
    input channels a block (pack_taps(w.transpose(1, 0, 2, 3), MR)); masks wide_mask_table(OH, OW).

    Cell (2r + a, 2q + e) of the input is read by the taps whose row i has i - 1 = a - 2(oy - r)
    for some output row oy: plane row a = 0 by tap row 1 (output row r), a = 1 by tap rows 0
    (output row r + 1) and 2 (row r); columns alike. So plane 0 gathers one tap, planes 1 and 2
    two, plane 3 four, each at an offset of 0 or +1 row and column into g's planes, outside
    them where the stride-1 table's tap to the right, below or diagonally below leaves the
    plane. Each plane is then cpu_conv_masked's forward kernel with K input channels and those
    taps: blocks of 8 channels x 32 positions summed over k, then the plane's taps in order."""
    n, k_n, oh, ow = g.shape
    size = oh * ow
    blocks, c_n = wq.shape[0], out.shape[1]
    per_plane = (size + BLOCK - 1) // BLOCK
    zero = np.zeros(c_n, np.float32)
    for task in prange(n * blocks * 4):
        b = task // (blocks * 4)
        cb = (task // 4) % blocks
        plane = task % 4
        gb = b * k_n * size
        wb = cb * k_n * 9 * MR
        d = ((b * c_n + cb * MR) * 4 + plane) * size
        for j in range(per_plane):
            p = j * BLOCK
            _dx_block(g, wq, out, zero, masks, ow, size, k_n, gb + p, 2 * j, wb, d + p, cb * MR, size - p, plane)


@njit(inline='always', **NJIT)
def _dx_block(g, wq, out, zero, masks, ow, size, k_n, q0, v, wb, d, c0, left, plane):
    """MR input channels x BLOCK positions of one parity plane of conv3x3_s2_masked_dx."""
    claim8(out, d, 4 * size)   # 0.92-0.95x the time without
    z = vzero16()
    a = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    c0m, c1m = masks[v, 4], masks[v + 1, 4]   # inside the plane (its last block)
    if plane == 0:     # tap (1, 1) at g's own position
        for k in range(k_n):
            q, u = q0 + k * size, wb + k * 9 * MR
            a = _tap(wq, u + 4 * MR, vload16_masked(g, q, c0m), vload16_masked(g, q + 16, c1m), a)
    elif plane == 1:   # taps (1, 0) one column right, (1, 2) at the position
        r0, r1 = masks[v, 5], masks[v + 1, 5]
        for k in range(k_n):
            q, u = q0 + k * size, wb + k * 9 * MR
            a = _tap(wq, u + 3 * MR, vload16_masked(g, q + 1, r0), vload16_masked(g, q + 17, r1), a)
            a = _tap(wq, u + 5 * MR, vload16_masked(g, q, c0m), vload16_masked(g, q + 16, c1m), a)
    elif plane == 2:   # taps (0, 1) one row below, (2, 1) at the position
        b0, b1 = masks[v, 7], masks[v + 1, 7]
        for k in range(k_n):
            q, u = q0 + k * size, wb + k * 9 * MR
            a = _tap(wq, u + MR, vload16_masked(g, q + ow, b0), vload16_masked(g, q + ow + 16, b1), a)
            a = _tap(wq, u + 7 * MR, vload16_masked(g, q, c0m), vload16_masked(g, q + 16, c1m), a)
    else:              # taps (0, 0) diagonally below, (0, 2) below, (2, 0) right, (2, 2) at the position
        e0, e1 = masks[v, 8], masks[v + 1, 8]
        b0, b1 = masks[v, 7], masks[v + 1, 7]
        r0, r1 = masks[v, 5], masks[v + 1, 5]
        for k in range(k_n):
            q, u = q0 + k * size, wb + k * 9 * MR
            a = _tap(wq, u, vload16_masked(g, q + ow + 1, e0), vload16_masked(g, q + ow + 17, e1), a)
            a = _tap(wq, u + 2 * MR, vload16_masked(g, q + ow, b0), vload16_masked(g, q + ow + 16, b1), a)
            a = _tap(wq, u + 6 * MR, vload16_masked(g, q + 1, r0), vload16_masked(g, q + 17, r1), a)
            a = _tap(wq, u + 8 * MR, vload16_masked(g, q, c0m), vload16_masked(g, q + 16, c1m), a)
    store8(out, zero, c0, d, 4 * size, left, a)


@njit(**NJIT_PARALLEL)
def _merge(planes, dx):
    """dx[b, c, 2r + a, 2q + e] = planes[b, c, 2a + e, r, q]: split_parity's inverse."""
    n, c, h, w = dx.shape
    oh, ow = h // 2, w // 2
    for task in prange(n * c):
        src = planes[task // c, task % c]
        dst = dx[task // c, task % c]
        for r in range(oh):
            top, bottom = dst[2 * r], dst[2 * r + 1]
            s0, s1, s2, s3 = src[0, r], src[1, r], src[2, r], src[3, r]
            for q in range(ow):
                top[2 * q] = s0[q]
                top[2 * q + 1] = s1[q]
                bottom[2 * q] = s2[q]
                bottom[2 * q + 1] = s3[q]


def input_grad_s2(g: np.ndarray, w: np.ndarray, x_shape) -> np.ndarray:
    """The (N, C, H, W) input gradient of conv3x3_s2 for the output gradient g (N, K, H/2, W/2)."""
    g = np.ascontiguousarray(g)
    n, _, oh, ow = g.shape
    c = w.shape[1]
    planes = np.empty((n, c, 4, oh, ow), np.float32)
    conv3x3_s2_masked_dx(g, pack_taps(np.asarray(w, np.float32).transpose(1, 0, 2, 3), MR), planes,
                         wide_mask_table(oh, ow))
    dx = np.empty(x_shape, np.float32)
    launch(_merge, dx.size, planes, dx)
    return dx


def conv3x3_s2(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3, stride-2, padding-1 convolution of x (N, C, H, W) float32, H and W even, with
    w (K, C, 3, 3): (y (N, K, H/2, W/2), the parity planes weight_grad_s2 reads)."""
    xs = split_parity(x)
    n, _, _, oh, ow = xs.shape
    k = w.shape[0]
    y = np.empty((n, k, oh, ow), np.float32)
    bias = np.zeros(k, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    conv3x3_s2_masked(xs, pack_taps(np.asarray(w, np.float32), MR), bias, y, wide_mask_table(oh, ow),
                      tap_offsets(oh, ow))
    return y, xs


def weight_grad_s2(xs: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The (K, C, 3, 3) weight gradient of conv3x3_s2 from its parity planes xs and the output
    gradient g (N, K, OH, OW)."""
    _, c, _, oh, ow = xs.shape
    return summed_weight_grad(xs, g, c, 4 * oh * ow, tap_offsets(oh, ow), _RIM)

