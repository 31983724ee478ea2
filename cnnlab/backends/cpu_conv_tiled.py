"""Register-tiled 3x3 convolution kernels for float32, on the flat planes of cpu_conv_direct.py.

The scalar direct passes there keep their running sums in memory: every input channel
reloads and restores two output rows, and the weights they broadcast do not all fit in the
vector registers. Here each task holds a block of outputs in registers through all input
channels and taps, like a BLAS micro-kernel (simd.py's eight-lane vectors):

- conv3x3_tiled: 8 output channels x 16 positions of one output row (then 8, for the rest
  of the row): per tap two input loads and eight broadcast weights feed 16 fused
  multiply-adds, and each output is written once, straight into (N, K, OH, OW). Running
  along rows, it computes no padding column and needs no stacking of small images. It is
  the forward pass and (flipped, transposed weights over the padded output gradient) the
  stride-1 input gradient.
- conv3x3_tiled_dw: the weight gradient, 24 vector sums (8 output channels x the 3 taps of
  one kernel row) over the flat positions of every image of a chunk, then summed across lanes.

The flat layout is cpu_conv_direct's (padded_flat, parity_planes, tap_table): a tap is a
fixed offset into an image's channel plane, so stride 1, the stride-2 parity planes and
dilation run through the same kernels with different offsets. Weights are packed so a
block's eight weights for one (channel, tap) lie side by side (pack_taps).

The blocks need 32 vector registers (AVX-512); cpu_conv uses these kernels only where numba
compiles for such a CPU (wide_registers). Every output is one task's sum in a fixed order,
so results do not depend on the thread count. float64 convolutions (the gradient checks)
keep the scalar kernels of cpu_conv_direct.py.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.core import config as numba_config

from .._config import NJIT, NJIT_PARALLEL
from .simd import vadd, vfma, vlane, vload, vsplat, vstore, vsum, vzero

MR = 8           # output channels per register block (the forward pass and the stride-1 input gradient)


def wide_registers() -> bool:
    """Whether numba compiles for a CPU with 32 vector registers (AVX-512), which these
    kernels' blocks (16 and 24 vector sums, plus the loads) need. With AVX2's 16 they spill,
    and on the VGG and CIFAR ResNet steps they measured 3-4% slower than the scalar direct
    kernels (cifarfast 4% faster; benchmarks/RESULTS.md), so cpu_conv chooses them only here.
    A CPU named through NUMBA_CPU_NAME counts as not having them."""
    if numba_config.CPU_NAME:
        return "+avx512f" in (numba_config.CPU_FEATURES or "")
    try:
        from llvmlite import binding
        return bool(binding.get_host_cpu_features().get("avx512f", False))
    except (RuntimeError, AttributeError):   # features unknown: the safe choice
        return False


def pack_taps(w: np.ndarray) -> np.ndarray:
    """(K, C, 3, 3) weights as (ceil(K / MR), C, 9, MR): the MR output channels one block
    computes side by side for each (input channel, tap), zeros past K."""
    k, c = w.shape[:2]
    blocks = -(-k // MR)
    wp = np.zeros((blocks * MR, c, 9), np.float32)
    wp[:k] = w.reshape(k, c, 9)
    return np.ascontiguousarray(wp.reshape(blocks, MR, c, 9).transpose(0, 2, 3, 1))


def flat_offsets(xv: np.ndarray, planes: np.ndarray, offs: np.ndarray) -> tuple[np.ndarray, int]:
    """(offsets, channel stride) of the nine taps into the flat data of xv, an (N, C, P, L) stack
    of P planes per channel (one padded plane, or the four parity planes): the plane index is
    folded into the offset."""
    return (planes * xv.shape[3] + offs).astype(np.int64), xv.shape[2] * xv.shape[3]


@njit(**NJIT_PARALLEL)
def conv3x3_tiled(xv, wp, bias, y, offs, cstride, width):
    """y[b, k, oy, ox] = bias[k] + sum over c and taps t of w[k, c, t] * xv[b, c][oy*width + ox + offs[t]]
    (y is (N, K, OH, OW), C-contiguous; flat plane c of image b starts at (b*C + c)*cstride in
    xv's data).

    Blocks run along output rows, 16 positions (two vectors) at a time and then 8, so no
    position past OW and no padding column is computed (the flat pass of cpu_conv_direct.py
    computes both: a fifth more work on 16x16 planes, more on 8x8). A row's last vector may
    run past OW: it reads the padding and the next row (xv has slack after its last plane);
    all its lanes are stored, into the start of the next row, which the same task overwrites
    right after, except on the last row, where it stores only its first lanes."""
    n, k_n, oh, ow = y.shape
    blocks, c_n = wp.shape[0], wp.shape[1]
    for task in prange(n * blocks):
        b = task // blocks
        kb = task % blocks
        xb = b * c_n * cstride
        wb = kb * c_n * 9 * MR
        d = (b * k_n + kb * MR) * oh * ow
        for oy in range(oh):
            ox = 0
            while ox + 16 <= ow:
                _block16(xv, wp, bias, y, offs, cstride, c_n, xb + oy * width + ox, wb, d + oy * ow + ox, kb * MR)
                ox += 16
            while ox < ow:
                # a short last vector may spill into the next row, which this task writes next
                _block8(xv, wp, bias, y, offs, cstride, c_n, xb + oy * width + ox, wb, d + oy * ow + ox, kb * MR,
                        8 if oy + 1 < oh else min(8, ow - ox))
                ox += 8


@njit(**NJIT)
def _block16(xv, wp, bias, y, offs, cstride, c_n, p, wb, d, k0):
    """MR channels x 16 positions of conv3x3_tiled: sixteen vector sums, held in registers."""
    a0 = vzero(); a1 = vzero(); a2 = vzero(); a3 = vzero(); a4 = vzero(); a5 = vzero(); a6 = vzero(); a7 = vzero()  # noqa: E702
    b0 = vzero(); b1 = vzero(); b2 = vzero(); b3 = vzero(); b4 = vzero(); b5 = vzero(); b6 = vzero(); b7 = vzero()  # noqa: E702
    for c in range(c_n):
        for t in range(9):
            q = p + c * cstride + offs[t]
            x0 = vload(xv, q)
            x1 = vload(xv, q + 8)
            w = wb + (c * 9 + t) * MR
            v = vsplat(wp.flat[w]); a0 = vfma(v, x0, a0); b0 = vfma(v, x1, b0)  # noqa: E702
            v = vsplat(wp.flat[w + 1]); a1 = vfma(v, x0, a1); b1 = vfma(v, x1, b1)  # noqa: E702
            v = vsplat(wp.flat[w + 2]); a2 = vfma(v, x0, a2); b2 = vfma(v, x1, b2)  # noqa: E702
            v = vsplat(wp.flat[w + 3]); a3 = vfma(v, x0, a3); b3 = vfma(v, x1, b3)  # noqa: E702
            v = vsplat(wp.flat[w + 4]); a4 = vfma(v, x0, a4); b4 = vfma(v, x1, b4)  # noqa: E702
            v = vsplat(wp.flat[w + 5]); a5 = vfma(v, x0, a5); b5 = vfma(v, x1, b5)  # noqa: E702
            v = vsplat(wp.flat[w + 6]); a6 = vfma(v, x0, a6); b6 = vfma(v, x1, b6)  # noqa: E702
            v = vsplat(wp.flat[w + 7]); a7 = vfma(v, x0, a7); b7 = vfma(v, x1, b7)  # noqa: E702
    plane = y.shape[2] * y.shape[3]
    k_n = y.shape[1]
    for m, (ua, ub) in enumerate(((a0, b0), (a1, b1), (a2, b2), (a3, b3), (a4, b4), (a5, b5), (a6, b6), (a7, b7))):
        if k0 + m < k_n:
            bv = vsplat(bias[k0 + m])
            vstore(y, d + m * plane, vadd(ua, bv))
            vstore(y, d + m * plane + 8, vadd(ub, bv))


@njit(**NJIT)
def _block8(xv, wp, bias, y, offs, cstride, c_n, p, wb, d, k0, count):
    """MR channels x 8 positions of conv3x3_tiled, of which the first `count` are stored."""
    a0 = vzero(); a1 = vzero(); a2 = vzero(); a3 = vzero(); a4 = vzero(); a5 = vzero(); a6 = vzero(); a7 = vzero()  # noqa: E702
    for c in range(c_n):
        for t in range(9):
            x0 = vload(xv, p + c * cstride + offs[t])
            w = wb + (c * 9 + t) * MR
            a0 = vfma(vsplat(wp.flat[w]), x0, a0); a1 = vfma(vsplat(wp.flat[w + 1]), x0, a1)  # noqa: E702
            a2 = vfma(vsplat(wp.flat[w + 2]), x0, a2); a3 = vfma(vsplat(wp.flat[w + 3]), x0, a3)  # noqa: E702
            a4 = vfma(vsplat(wp.flat[w + 4]), x0, a4); a5 = vfma(vsplat(wp.flat[w + 5]), x0, a5)  # noqa: E702
            a6 = vfma(vsplat(wp.flat[w + 6]), x0, a6); a7 = vfma(vsplat(wp.flat[w + 7]), x0, a7)  # noqa: E702
    plane = y.shape[2] * y.shape[3]
    k_n = y.shape[1]
    for m, u in enumerate((a0, a1, a2, a3, a4, a5, a6, a7)):
        if k0 + m < k_n:
            u = vadd(u, vsplat(bias[k0 + m]))
            if count == 8:
                vstore(y, d + m * plane, u)
            else:
                for i in range(count):
                    y.flat[d + m * plane + i] = vlane(u, i)


@njit(**NJIT_PARALLEL)
def conv3x3_tiled_dw(xv, gp, goff, part, offs, cstride, size):
    """part[t, k, c, tap] = sum over the images b of chunk t and positions p < size of
    gp[b, k][goff + p] * xv[b, c][p + offs[tap]] (flat planes as in conv3x3_tiled; size a
    multiple of 8; gp holds zeros wherever the forward pass dropped a position, and K is a
    multiple of MR (8): weight_grad pads it).

    A task takes eight output channels and one chunk; per (input channel, kernel row) it
    keeps 24 vector sums (8 channels x 3 taps) over all of the chunk's images, then adds up
    each one's lanes: per eight positions 11 loads feed 24 multiply-adds."""
    n, c_n = xv.shape[0], part.shape[2]
    chunks, k_n = part.shape[0], part.shape[1]
    gstride = gp.shape[2]
    blocks = k_n // MR
    for task in prange(chunks * blocks):
        t = task // blocks
        k0 = (task % blocks) * MR
        for c in range(c_n):
            for i in range(3):
                s00 = vzero(); s01 = vzero(); s02 = vzero()  # noqa: E702
                s10 = vzero(); s11 = vzero(); s12 = vzero()  # noqa: E702
                s20 = vzero(); s21 = vzero(); s22 = vzero()  # noqa: E702
                s30 = vzero(); s31 = vzero(); s32 = vzero()  # noqa: E702
                s40 = vzero(); s41 = vzero(); s42 = vzero()  # noqa: E702
                s50 = vzero(); s51 = vzero(); s52 = vzero()  # noqa: E702
                s60 = vzero(); s61 = vzero(); s62 = vzero()  # noqa: E702
                s70 = vzero(); s71 = vzero(); s72 = vzero()  # noqa: E702
                for b in range(t * n // chunks, (t + 1) * n // chunks):
                    xb = (b * c_n + c) * cstride
                    oa = xb + offs[3 * i]; ob = xb + offs[3 * i + 1]; oc = xb + offs[3 * i + 2]  # noqa: E702
                    gb = (b * k_n + k0) * gstride + goff
                    for p in range(0, size, 8):
                        xa = vload(xv, oa + p); xm = vload(xv, ob + p); xc = vload(xv, oc + p)  # noqa: E702
                        q = gb + p
                        s00, s01, s02 = _fma3(vload(gp, q + 0 * gstride), xa, xm, xc, s00, s01, s02)
                        s10, s11, s12 = _fma3(vload(gp, q + 1 * gstride), xa, xm, xc, s10, s11, s12)
                        s20, s21, s22 = _fma3(vload(gp, q + 2 * gstride), xa, xm, xc, s20, s21, s22)
                        s30, s31, s32 = _fma3(vload(gp, q + 3 * gstride), xa, xm, xc, s30, s31, s32)
                        s40, s41, s42 = _fma3(vload(gp, q + 4 * gstride), xa, xm, xc, s40, s41, s42)
                        s50, s51, s52 = _fma3(vload(gp, q + 5 * gstride), xa, xm, xc, s50, s51, s52)
                        s60, s61, s62 = _fma3(vload(gp, q + 6 * gstride), xa, xm, xc, s60, s61, s62)
                        s70, s71, s72 = _fma3(vload(gp, q + 7 * gstride), xa, xm, xc, s70, s71, s72)
                _add3(part, t, k0 + 0, c, 3 * i, vsum(s00), vsum(s01), vsum(s02))
                _add3(part, t, k0 + 1, c, 3 * i, vsum(s10), vsum(s11), vsum(s12))
                _add3(part, t, k0 + 2, c, 3 * i, vsum(s20), vsum(s21), vsum(s22))
                _add3(part, t, k0 + 3, c, 3 * i, vsum(s30), vsum(s31), vsum(s32))
                _add3(part, t, k0 + 4, c, 3 * i, vsum(s40), vsum(s41), vsum(s42))
                _add3(part, t, k0 + 5, c, 3 * i, vsum(s50), vsum(s51), vsum(s52))
                _add3(part, t, k0 + 6, c, 3 * i, vsum(s60), vsum(s61), vsum(s62))
                _add3(part, t, k0 + 7, c, 3 * i, vsum(s70), vsum(s71), vsum(s72))


@njit(**NJIT)
def _fma3(e, xa, xm, xc, s0, s1, s2):
    """One output channel's gradient vector e times the three taps of a kernel row, added to its sums."""
    return vfma(e, xa, s0), vfma(e, xm, s1), vfma(e, xc, s2)


@njit(**NJIT)
def _add3(part, t, k, c, j, a, b, d):
    part[t, k, c, j] += a
    part[t, k, c, j + 1] += b
    part[t, k, c, j + 2] += d


def forward(xv, w, bias, y, width, planes, offs) -> None:
    """conv3x3_tiled with the weights packed and the taps as flat offsets (see tap_table)."""
    offsets, cstride = flat_offsets(xv, planes, offs)
    conv3x3_tiled(xv, pack_taps(w), np.ascontiguousarray(bias, np.float32), y, offsets, cstride, width)


def weight_grad(xv, gflat, goff, chunks, w_shape, planes, offs, size) -> np.ndarray:
    """The (K, C, 3, 3) weight gradient: conv3x3_tiled_dw's chunks, then their sum. The gradient
    planes get zero planes up to a multiple of MR channels (one copy, only when K is not)."""
    offsets, cstride = flat_offsets(xv, planes, offs)
    k, c = w_shape[:2]
    k8 = -(-k // MR) * MR
    if k8 != k:
        padded = np.zeros((gflat.shape[0], k8, gflat.shape[2]), np.float32)
        padded[:, :k] = gflat
        gflat = padded
    part = np.zeros((chunks, k8, c, 9), np.float32)
    conv3x3_tiled_dw(xv, gflat, goff, part, offsets, cstride, size)
    return part[:, :k].sum(axis=0).reshape(w_shape)
