"""Register-tiled 3x3 convolution kernels for float32, on the flat planes of cpu_conv_direct.py.

The direct passes there keep their running sums in memory: every input channel reloads and
restores two output rows and reloads eighteen weights, and on 64x16x28x28 -> 32 they ran at
about half of the machine's sgemm peak. Here each task holds a block of MR output channels x
NR flat positions (4 x 24: twelve eight-lane vectors, see simd.py) in registers through all
input channels and the nine taps, like a BLAS micro-kernel: per tap it loads three input
vectors and four weights (broadcast) for twelve fused multiply-adds, and it writes each
output once. Weights are packed so a block's four weights for one (channel, tap) lie
side by side (pack_taps).

The flat layout is unchanged (padded_flat, parity_planes, tap_table): a tap is a fixed
offset into an image's channel plane, so stride 1 and the stride-2 parity planes, dilation
and stacked small images all run through the same two kernels with different offsets.

- conv3x3_tiled: the forward pass, and (flipped, transposed weights over the padded output
  gradient) the stride-1 input gradient.
- conv3x3_tiled_dw: the weight gradient, twelve vector sums (4 output channels x 3 taps of
  one kernel row) over the positions of every image of a chunk, then summed across lanes.

Every output is one task's sum in a fixed order, so results do not depend on the thread
count. float64 convolutions (the gradient checks) keep the scalar kernels of
cpu_conv_direct.py.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._config import NJIT, NJIT_PARALLEL
from .simd import vadd, vfma, vload, vsplat, vstore, vsum, vzero

MR = 4           # output channels per register block
NR = 24          # flat positions per register block: three vectors of eight


def pack_taps(w: np.ndarray) -> np.ndarray:
    """(K, C, 3, 3) weights as (ceil(K / MR), C, 9, MR): the MR output channels one block
    computes side by side for each (input channel, tap), zeros past K."""
    k, c = w.shape[:2]
    blocks = -(-k // MR)
    wp = np.zeros((blocks * MR, c, 9), np.float32)
    wp[:k] = w.reshape(k, c, 9)
    return np.ascontiguousarray(wp.reshape(blocks, MR, c, 9).transpose(0, 2, 3, 1))


def flat_offsets(xv: np.ndarray, planes: np.ndarray, offs: np.ndarray) -> tuple[np.ndarray, int]:
    """(offsets, channel stride) of the nine taps into xv's flat data: one plane per channel
    (rank 3) or the four parity planes (rank 4, the plane index folded into the offset)."""
    if xv.ndim == 3:
        return np.ascontiguousarray(offs, np.int64), xv.shape[2]
    return (planes * xv.shape[3] + offs).astype(np.int64), xv.shape[2] * xv.shape[3]


@njit(**NJIT_PARALLEL)
def conv3x3_tiled(xv, wp, bias, y, rows, offs, cstride, width):
    """y[g, k, oy, ox] = bias[k] + sum over c and taps t of w[k, c, t] * xv[g, c][oy*width + ox + offs[t]]
    for oy < rows, ox < OW (y is (G, K, R, OW), C-contiguous; rows <= R; flat plane c of image
    group g starts at (g*C + c)*cstride in xv's data).

    The positions are computed in whole blocks of NR (past rows*width they are dropped, so
    xv needs NR slack after its last plane, which padded_flat and parity_planes leave);
    each task's block of MR channels goes through a scratch plane into y, cropped to OW."""
    groups, k_n, _, ow = y.shape
    blocks, c_n = wp.shape[0], wp.shape[1]
    size = -(-(rows * width) // NR) * NR
    for task in prange(groups * blocks):
        g = task // blocks
        kb = task % blocks
        tmp = np.empty(MR * size, np.float32)
        for p in range(0, size, NR):
            a00 = vzero(); a01 = vzero(); a02 = vzero()  # noqa: E702
            a10 = vzero(); a11 = vzero(); a12 = vzero()  # noqa: E702
            a20 = vzero(); a21 = vzero(); a22 = vzero()  # noqa: E702
            a30 = vzero(); a31 = vzero(); a32 = vzero()  # noqa: E702
            for c in range(c_n):
                xb = (g * c_n + c) * cstride + p
                wb = (kb * c_n + c) * 9 * MR
                for t in range(9):
                    q = xb + offs[t]
                    x0 = vload(xv, q); x1 = vload(xv, q + 8); x2 = vload(xv, q + 16)  # noqa: E702
                    wt = wb + t * MR
                    v = vsplat(wp.flat[wt])
                    a00 = vfma(v, x0, a00); a01 = vfma(v, x1, a01); a02 = vfma(v, x2, a02)  # noqa: E702
                    v = vsplat(wp.flat[wt + 1])
                    a10 = vfma(v, x0, a10); a11 = vfma(v, x1, a11); a12 = vfma(v, x2, a12)  # noqa: E702
                    v = vsplat(wp.flat[wt + 2])
                    a20 = vfma(v, x0, a20); a21 = vfma(v, x1, a21); a22 = vfma(v, x2, a22)  # noqa: E702
                    v = vsplat(wp.flat[wt + 3])
                    a30 = vfma(v, x0, a30); a31 = vfma(v, x1, a31); a32 = vfma(v, x2, a32)  # noqa: E702
            vstore(tmp, p, a00); vstore(tmp, p + 8, a01); vstore(tmp, p + 16, a02)  # noqa: E702
            q = size + p
            vstore(tmp, q, a10); vstore(tmp, q + 8, a11); vstore(tmp, q + 16, a12)  # noqa: E702
            q += size
            vstore(tmp, q, a20); vstore(tmp, q + 8, a21); vstore(tmp, q + 16, a22)  # noqa: E702
            q += size
            vstore(tmp, q, a30); vstore(tmp, q + 8, a31); vstore(tmp, q + 16, a32)  # noqa: E702
        for m in range(min(MR, k_n - kb * MR)):
            _store_rows(tmp, m * size, y, ((g * k_n + kb * MR + m) * y.shape[2]) * ow, bias[kb * MR + m],
                        rows, width, ow)


@njit(**NJIT)
def _store_rows(tmp, src, y, dst, bias, rows, width, ow):
    """y.flat[dst + oy*ow + ox] = tmp[src + oy*width + ox] + bias for oy < rows, ox < ow, eight
    lanes at a time: LLVM's own vector loop takes 32 floats an iteration, so it left rows of
    28 (MNIST, CIFAR's 32 minus nothing) to its scalar remainder loop."""
    b = vsplat(bias)
    for oy in range(rows):
        s = src + oy * width
        d = dst + oy * ow
        ox = 0
        while ox + 8 <= ow:
            vstore(y, d + ox, vadd(vload(tmp, s + ox), b))
            ox += 8
        while ox < ow:
            y.flat[d + ox] = tmp[s + ox] + bias
            ox += 1


@njit(**NJIT_PARALLEL)
def conv3x3_tiled_dw(xv, gp, goff, part, offs, cstride, size):
    """part[t, k, c, tap] = sum over the image groups b of chunk t and positions p < size of
    gp[b, k][goff + p] * xv[b, c][p + offs[tap]] (flat planes as in conv3x3_tiled; size a
    multiple of 8; gp holds zeros wherever the forward pass dropped a position).

    A task takes four output channels and one chunk; per (input channel, kernel row) it
    keeps twelve vector sums over all of the chunk's images, then adds up each one's lanes."""
    n, c_n = xv.shape[0], part.shape[2]
    chunks, k_n = part.shape[0], part.shape[1]
    gstride = gp.shape[2]
    blocks = -(-k_n // 4)
    for task in prange(chunks * blocks):
        t = task // blocks
        k0 = (task % blocks) * 4
        k1 = min(k0 + 1, k_n - 1); k2 = min(k0 + 2, k_n - 1); k3 = min(k0 + 3, k_n - 1)  # noqa: E702
        acc = part[t]
        for c in range(c_n):
            for i in range(3):
                s00 = vzero(); s01 = vzero(); s02 = vzero()  # noqa: E702
                s10 = vzero(); s11 = vzero(); s12 = vzero()  # noqa: E702
                s20 = vzero(); s21 = vzero(); s22 = vzero()  # noqa: E702
                s30 = vzero(); s31 = vzero(); s32 = vzero()  # noqa: E702
                for b in range(t * n // chunks, (t + 1) * n // chunks):
                    xb = (b * c_n + c) * cstride
                    oa = xb + offs[3 * i]; ob = xb + offs[3 * i + 1]; oc = xb + offs[3 * i + 2]  # noqa: E702
                    g0 = (b * k_n + k0) * gstride + goff; g1 = (b * k_n + k1) * gstride + goff  # noqa: E702
                    g2 = (b * k_n + k2) * gstride + goff; g3 = (b * k_n + k3) * gstride + goff  # noqa: E702
                    for p in range(0, size, 8):
                        xa = vload(xv, oa + p); xm = vload(xv, ob + p); xc = vload(xv, oc + p)  # noqa: E702
                        e = vload(gp, g0 + p)
                        s00 = vfma(e, xa, s00); s01 = vfma(e, xm, s01); s02 = vfma(e, xc, s02)  # noqa: E702
                        e = vload(gp, g1 + p)
                        s10 = vfma(e, xa, s10); s11 = vfma(e, xm, s11); s12 = vfma(e, xc, s12)  # noqa: E702
                        e = vload(gp, g2 + p)
                        s20 = vfma(e, xa, s20); s21 = vfma(e, xm, s21); s22 = vfma(e, xc, s22)  # noqa: E702
                        e = vload(gp, g3 + p)
                        s30 = vfma(e, xa, s30); s31 = vfma(e, xm, s31); s32 = vfma(e, xc, s32)  # noqa: E702
                j = 3 * i
                _add3(acc[k0, c], j, vsum(s00), vsum(s01), vsum(s02))
                if k1 > k0:   # a block past the last channel repeats it and stores nothing
                    _add3(acc[k1, c], j, vsum(s10), vsum(s11), vsum(s12))
                if k2 > k1:
                    _add3(acc[k2, c], j, vsum(s20), vsum(s21), vsum(s22))
                if k3 > k2:
                    _add3(acc[k3, c], j, vsum(s30), vsum(s31), vsum(s32))


@njit(**NJIT)
def _add3(row, j, a, b, c):
    row[j] += a
    row[j + 1] += b
    row[j + 2] += c


def forward(xv, w, bias, y, rows, width, planes, offs) -> None:
    """conv3x3_tiled with the weights packed and the taps as flat offsets (see tap_table)."""
    offsets, cstride = flat_offsets(xv, planes, offs)
    conv3x3_tiled(xv, pack_taps(w), np.ascontiguousarray(bias, np.float32), y, rows, offsets, cstride, width)


def weight_grad(xv, gflat, goff, chunks, w_shape, planes, offs, size) -> np.ndarray:
    """The (K, C, 3, 3) weight gradient: conv3x3_tiled_dw's chunks, then their sum."""
    offsets, cstride = flat_offsets(xv, planes, offs)
    k, c = w_shape[:2]
    part = np.zeros((chunks, k, c, 9), np.float32)
    conv3x3_tiled_dw(xv, gflat, goff, part, offsets, cstride, size)
    return part.sum(axis=0).reshape(w_shape)
