"""Register-tiled 3x3 convolution kernels for float32, on the flat planes of cpu_conv_direct.py.

The scalar direct passes there keep their running sums in memory: every input channel
reloads and restores two output rows, and the weights they broadcast do not all fit in the
vector registers. Here each task holds a block of outputs in registers through all input
channels and taps, like a BLAS micro-kernel (simd.py's eight-lane vectors):

- conv3x3_tiled: 8 output channels x 16 positions of one output row (then 8, for the rest
  of the row; rows of 25-31 positions start with 24): per tap two input loads and eight
  broadcast weights feed 16 fused multiply-adds (three and eight feed 24), and each output
  is written once, straight into (N, K, OH, OW). Running
  along rows, it computes no padding column and needs no stacking of small images. It is
  the forward pass and (flipped, transposed weights over the padded output gradient) the
  stride-1 input gradient.
- conv3x3_tiled_wide: the same for rows of 16 or a multiple of 32 positions (16x16, 32x32
  planes; the stride-2 pass to 16x16): blocks of 4 output channels x 32 positions, so four
  broadcast weights feed 16 multiply-adds (0.85-0.90 of conv3x3_tiled's time from 16 input
  channels on).
- conv3x3_tiled_narrow: the same for outputs at most eight wide (8x8, 7x7 planes), where a
  row is one vector: blocks of 4 output channels x 4 rows, so four broadcast weights feed 16
  multiply-adds instead of eight feeding 8.
- conv3x3_tiled_dw: the weight gradient, 24 vector sums (8 output channels x the 3 taps of
  one kernel row) over the flat positions of every image of a chunk (or, on outputs at most
  eight wide, over each row's one vector), then summed across lanes eight sums at a time.

The flat layout is cpu_conv_direct's (padded_flat, parity_planes, tap_table): a tap is a
fixed offset into an image's channel plane, so stride 1, the stride-2 parity planes and
dilation run through the same kernels with different offsets. Weights are packed so a
block's eight weights for one (channel, tap) lie side by side (pack_taps).

The blocks need 32 vector registers (AVX-512); cpu_conv uses these kernels only where numba
compiles for such a CPU (wide_registers). There, 3x3 stride-1 padding-1 convolutions from 8
input channels on take cpu_conv_masked.py's kernels instead (no padded copy); these remain
for the stem's few channels, other paddings, dilation and stride 2. Every output is one task's sum in a fixed order,
so results do not depend on the thread count. float64 convolutions (the gradient checks)
keep the scalar kernels of cpu_conv_direct.py.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.core import config as numba_config

from .._config import NJIT, NJIT_PARALLEL
from .simd import vadd, vfma, vload, vsplat, vstore, vstore_first, vsum8, vzero

MR = 8           # output channels per register block (the forward pass and the stride-1 input gradient)
NR = 4           # output channels per block of conv3x3_tiled_narrow (outputs at most one vector wide)
NARROW_MIN_C = 16   # ... from this many input channels (below, its stores cost more than it saves)
WIDE_MIN_C = 8      # conv3x3_tiled_wide from this many (0.97 of conv3x3_tiled's time at 8, 1.0 at 3)


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


def pack_taps(w: np.ndarray, mr: int = MR) -> np.ndarray:
    """(K, C, 3, 3) weights as (ceil(K / mr), C, 9, mr): the mr output channels one block
    computes side by side for each (input channel, tap), zeros past K."""
    k, c = w.shape[:2]
    blocks = -(-k // mr)
    wp = np.zeros((blocks * mr, c, 9), np.float32)
    wp[:k] = w.reshape(k, c, 9)
    return np.ascontiguousarray(wp.reshape(blocks, mr, c, 9).transpose(0, 2, 3, 1))


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
            if ow >= 24 and ow % 16 > 8:   # 28-wide rows: 24 + 8 positions, not 16 + 8 + 8
                _block24(xv, wp, bias, y, offs, cstride, c_n, xb + oy * width, wb, d + oy * ow, kb * MR)
                ox = 24
            while ox + 16 <= ow:
                _block16(xv, wp, bias, y, offs, cstride, c_n, xb + oy * width + ox, wb, d + oy * ow + ox, kb * MR)
                ox += 16
            while ox < ow:
                # a short last vector may spill into the next row, which this task writes next
                _block8(xv, wp, bias, y, offs, cstride, c_n, xb + oy * width + ox, wb, d + oy * ow + ox, kb * MR,
                        8 if oy + 1 < oh else min(8, ow - ox))
                ox += 8


@njit(**NJIT)
def _block24(xv, wp, bias, y, offs, cstride, c_n, p, wb, d, k0):
    """MR channels x 24 positions of conv3x3_tiled: 24 vector sums; per (channel, tap) eight
    broadcast weights feed 24 multiply-adds (16 in _block16). For rows whose width leaves
    more than 8 over a multiple of 16 (28: 24 + 8 instead of 16 + 8 + 8)."""
    a0 = vzero(); a1 = vzero(); a2 = vzero(); a3 = vzero(); a4 = vzero(); a5 = vzero(); a6 = vzero(); a7 = vzero()  # noqa: E702
    b0 = vzero(); b1 = vzero(); b2 = vzero(); b3 = vzero(); b4 = vzero(); b5 = vzero(); b6 = vzero(); b7 = vzero()  # noqa: E702
    e0 = vzero(); e1 = vzero(); e2 = vzero(); e3 = vzero(); e4 = vzero(); e5 = vzero(); e6 = vzero(); e7 = vzero()  # noqa: E702
    for c in range(c_n):
        for t in range(9):
            q = p + c * cstride + offs[t]
            x0 = vload(xv, q)
            x1 = vload(xv, q + 8)
            x2 = vload(xv, q + 16)
            w = wb + (c * 9 + t) * MR
            v = vsplat(wp.flat[w]); a0 = vfma(v, x0, a0); b0 = vfma(v, x1, b0); e0 = vfma(v, x2, e0)  # noqa: E702
            v = vsplat(wp.flat[w + 1]); a1 = vfma(v, x0, a1); b1 = vfma(v, x1, b1); e1 = vfma(v, x2, e1)  # noqa: E702
            v = vsplat(wp.flat[w + 2]); a2 = vfma(v, x0, a2); b2 = vfma(v, x1, b2); e2 = vfma(v, x2, e2)  # noqa: E702
            v = vsplat(wp.flat[w + 3]); a3 = vfma(v, x0, a3); b3 = vfma(v, x1, b3); e3 = vfma(v, x2, e3)  # noqa: E702
            v = vsplat(wp.flat[w + 4]); a4 = vfma(v, x0, a4); b4 = vfma(v, x1, b4); e4 = vfma(v, x2, e4)  # noqa: E702
            v = vsplat(wp.flat[w + 5]); a5 = vfma(v, x0, a5); b5 = vfma(v, x1, b5); e5 = vfma(v, x2, e5)  # noqa: E702
            v = vsplat(wp.flat[w + 6]); a6 = vfma(v, x0, a6); b6 = vfma(v, x1, b6); e6 = vfma(v, x2, e6)  # noqa: E702
            v = vsplat(wp.flat[w + 7]); a7 = vfma(v, x0, a7); b7 = vfma(v, x1, b7); e7 = vfma(v, x2, e7)  # noqa: E702
    plane = y.shape[2] * y.shape[3]
    k_n = y.shape[1]
    for m, (ua, ub, ue) in enumerate(((a0, b0, e0), (a1, b1, e1), (a2, b2, e2), (a3, b3, e3), (a4, b4, e4),
                                      (a5, b5, e5), (a6, b6, e6), (a7, b7, e7))):
        if k0 + m < k_n:
            bv = vsplat(bias[k0 + m])
            vstore(y, d + m * plane, vadd(ua, bv))
            vstore(y, d + m * plane + 8, vadd(ub, bv))
            vstore(y, d + m * plane + 16, vadd(ue, bv))


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
            vstore_first(y, d + m * plane, vadd(u, vsplat(bias[k0 + m])), count)


@njit(**NJIT_PARALLEL)
def conv3x3_tiled_wide(xv, wp, bias, y, offs, cstride, width):
    """conv3x3_tiled for rows of 16 or a multiple of 32 positions (16x16, 32x32 planes), with wp
    packed NR (4) channels a block: a block is 4 output channels x 32 positions (one row's
    32, or 16 of two rows), so four broadcast weights and four loads feed 16 multiply-adds
    (eight broadcasts and two loads in conv3x3_tiled). With an odd number of 16-wide rows
    the last block computes the last row twice (and stores the same values twice)."""
    n, k_n, oh, ow = y.shape
    blocks, c_n = wp.shape[0], wp.shape[1]
    plane = oh * ow
    for task in prange(n * blocks):
        b = task // blocks
        kb = task % blocks
        xb = b * c_n * cstride
        wb = kb * c_n * 9 * NR
        d = (b * k_n + kb * NR) * plane
        if ow == 16:
            for oy in range(0, oh, 2):
                s = min(oy + 1, oh - 1) - oy
                _block4x32(xv, wp, bias, y, offs, cstride, c_n, xb + oy * width, s * width, wb, d + oy * ow, s * ow,
                           kb * NR)
        else:
            for oy in range(oh):
                for ox in range(0, ow, 32):
                    _block4x32(xv, wp, bias, y, offs, cstride, c_n, xb + oy * width + ox, 16, wb, d + oy * ow + ox, 16,
                               kb * NR)


@njit(**NJIT)
def _block4x32(xv, wp, bias, y, offs, cstride, c_n, p, r, wb, d, s, k0):
    """NR channels x positions p, p + 8, p + r, p + r + 8 (outputs d, d + 8, d + s, d + s + 8)
    of conv3x3_tiled_wide: sixteen vector sums. _rows4's twin on purpose: with two of its four
    offsets constant and plain stores it ran 5-10% faster than that block with four runtime
    offsets and masked stores (which on 16x16 and 32x32 planes gained nothing over _block16)."""
    a0 = vzero(); a1 = vzero(); a2 = vzero(); a3 = vzero(); b0 = vzero(); b1 = vzero(); b2 = vzero(); b3 = vzero()  # noqa: E702
    e0 = vzero(); e1 = vzero(); e2 = vzero(); e3 = vzero(); f0 = vzero(); f1 = vzero(); f2 = vzero(); f3 = vzero()  # noqa: E702
    for c in range(c_n):
        for t in range(9):
            q = p + c * cstride + offs[t]
            x0 = vload(xv, q); x1 = vload(xv, q + 8); x2 = vload(xv, q + r); x3 = vload(xv, q + r + 8)  # noqa: E702
            w = wb + (c * 9 + t) * NR
            v = vsplat(wp.flat[w]); a0 = vfma(v, x0, a0); a1 = vfma(v, x1, a1); a2 = vfma(v, x2, a2); a3 = vfma(v, x3, a3)  # noqa: E702,E501
            v = vsplat(wp.flat[w + 1]); b0 = vfma(v, x0, b0); b1 = vfma(v, x1, b1); b2 = vfma(v, x2, b2); b3 = vfma(v, x3, b3)  # noqa: E702,E501
            v = vsplat(wp.flat[w + 2]); e0 = vfma(v, x0, e0); e1 = vfma(v, x1, e1); e2 = vfma(v, x2, e2); e3 = vfma(v, x3, e3)  # noqa: E702,E501
            v = vsplat(wp.flat[w + 3]); f0 = vfma(v, x0, f0); f1 = vfma(v, x1, f1); f2 = vfma(v, x2, f2); f3 = vfma(v, x3, f3)  # noqa: E702,E501
    plane = y.shape[2] * y.shape[3]
    _store4(y, bias, k0, d, s, a0, a1, a2, a3)
    _store4(y, bias, k0 + 1, d + plane, s, b0, b1, b2, b3)
    _store4(y, bias, k0 + 2, d + 2 * plane, s, e0, e1, e2, e3)
    _store4(y, bias, k0 + 3, d + 3 * plane, s, f0, f1, f2, f3)


@njit(**NJIT)
def _store4(y, bias, k, d, s, u0, u1, u2, u3):
    """Output channel k's positions d, d + 8, d + s, d + s + 8, plus its bias."""
    if k < y.shape[1]:
        bv = vsplat(bias[k])
        vstore(y, d, vadd(u0, bv)); vstore(y, d + 8, vadd(u1, bv))  # noqa: E702
        vstore(y, d + s, vadd(u2, bv)); vstore(y, d + s + 8, vadd(u3, bv))  # noqa: E702


@njit(**NJIT_PARALLEL)
def conv3x3_tiled_narrow(xv, wp, bias, y, offs, cstride, width):
    """conv3x3_tiled for outputs at most eight wide (8x8 and 7x7 planes: one vector a row),
    with wp packed NR (4) channels a block: a task's block is 4 output channels x 4 rows.

    On such planes conv3x3_tiled's blocks are 8 channels x one row, whose eight broadcast
    weights per (channel, tap) feed 8 multiply-adds; here four broadcasts and four row loads
    feed 16, and the forward pass on 64x64x8x8 -> 64 took 0.78-0.83 of the time
    (benchmarks/RESULTS.md). Rows past OH (when OH is not a multiple of
    4) repeat the last row, which is then stored twice with the same values; lanes past OW
    are never stored."""
    n, k_n, oh, ow = y.shape
    blocks, c_n = wp.shape[0], wp.shape[1]
    plane = oh * ow
    for task in prange(n * blocks):
        b = task // blocks
        kb = task % blocks
        d = (b * k_n + kb * NR) * plane
        for oy in range(0, oh, 4):
            s1 = min(oy + 1, oh - 1) - oy
            s2 = min(oy + 2, oh - 1) - oy
            s3 = min(oy + 3, oh - 1) - oy
            _rows4(xv, wp, bias, y, offs, cstride, c_n, b * c_n * cstride + oy * width, s1, s2, s3, width,
                   kb * c_n * 9 * NR, d + oy * ow, kb * NR)


@njit(**NJIT)
def _rows4(xv, wp, bias, y, offs, cstride, c_n, p, s1, s2, s3, width, wb, d, k0):
    """NR channels x rows 0, s1, s2, s3 (after the one at p) of conv3x3_tiled_narrow: sixteen vector sums."""
    a0 = vzero(); a1 = vzero(); a2 = vzero(); a3 = vzero(); b0 = vzero(); b1 = vzero(); b2 = vzero(); b3 = vzero()  # noqa: E702
    e0 = vzero(); e1 = vzero(); e2 = vzero(); e3 = vzero(); f0 = vzero(); f1 = vzero(); f2 = vzero(); f3 = vzero()  # noqa: E702
    r1 = s1 * width
    r2 = s2 * width
    r3 = s3 * width
    for c in range(c_n):
        for t in range(9):
            q = p + c * cstride + offs[t]
            x0 = vload(xv, q); x1 = vload(xv, q + r1); x2 = vload(xv, q + r2); x3 = vload(xv, q + r3)  # noqa: E702
            w = wb + (c * 9 + t) * NR
            v = vsplat(wp.flat[w]); a0 = vfma(v, x0, a0); a1 = vfma(v, x1, a1); a2 = vfma(v, x2, a2); a3 = vfma(v, x3, a3)  # noqa: E702,E501
            v = vsplat(wp.flat[w + 1]); b0 = vfma(v, x0, b0); b1 = vfma(v, x1, b1); b2 = vfma(v, x2, b2); b3 = vfma(v, x3, b3)  # noqa: E702,E501
            v = vsplat(wp.flat[w + 2]); e0 = vfma(v, x0, e0); e1 = vfma(v, x1, e1); e2 = vfma(v, x2, e2); e3 = vfma(v, x3, e3)  # noqa: E702,E501
            v = vsplat(wp.flat[w + 3]); f0 = vfma(v, x0, f0); f1 = vfma(v, x1, f1); f2 = vfma(v, x2, f2); f3 = vfma(v, x3, f3)  # noqa: E702,E501
    ow = y.shape[3]
    plane = y.shape[2] * ow
    _store_rows(y, bias, k0, d, ow, s1, s2, s3, a0, a1, a2, a3)
    _store_rows(y, bias, k0 + 1, d + plane, ow, s1, s2, s3, b0, b1, b2, b3)
    _store_rows(y, bias, k0 + 2, d + 2 * plane, ow, s1, s2, s3, e0, e1, e2, e3)
    _store_rows(y, bias, k0 + 3, d + 3 * plane, ow, s1, s2, s3, f0, f1, f2, f3)


@njit(**NJIT)
def _store_rows(y, bias, k, d, ow, s1, s2, s3, u0, u1, u2, u3):
    """Output channel k's four rows (0, s1, s2, s3 after d) plus its bias, OW lanes each."""
    if k < y.shape[1]:
        bv = vsplat(bias[k])
        vstore_first(y, d, vadd(u0, bv), ow)
        vstore_first(y, d + s1 * ow, vadd(u1, bv), ow)
        vstore_first(y, d + s2 * ow, vadd(u2, bv), ow)
        vstore_first(y, d + s3 * ow, vadd(u3, bv), ow)


@njit(**NJIT_PARALLEL)
def conv3x3_tiled_dw(xv, gp, goff, part, offs, cstride, count, step):
    """part[t, c, tap, k] = sum over the images b of chunk t and the eight positions from each
    p = r * step (r < count) of gp[b, k][goff + p] * xv[b, c][p + offs[tap]] (flat planes as
    in conv3x3_tiled; gp holds zeros wherever the forward pass dropped a position, and K is
    a multiple of MR (8): weight_grad pads it). step 8 runs through the flat plane; step =
    the row width, on planes at most eight wide, reads each output row once and skips the
    padding columns between them (a fifth of the flat positions on 8x8 planes).

    A task takes eight output channels and one chunk; per (input channel, kernel row) it
    keeps 24 vector sums (8 channels x 3 taps) over all of the chunk's images: per eight
    positions 11 loads feed 24 multiply-adds. Then each tap's eight sums are added up lane
    by lane into one vector (vsum8) and stored as eight neighbouring values of part: on 8x8
    planes, where a chunk has few positions, adding up each sum on its own cost about a
    third of the kernel."""
    n, c_n = xv.shape[0], part.shape[1]
    chunks, k_n = part.shape[0], part.shape[3]
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
                    for r in range(count):
                        p = r * step
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
                d = ((t * c_n + c) * 9 + 3 * i) * k_n + k0
                vstore(part, d, vsum8(s00, s10, s20, s30, s40, s50, s60, s70))
                vstore(part, d + k_n, vsum8(s01, s11, s21, s31, s41, s51, s61, s71))
                vstore(part, d + 2 * k_n, vsum8(s02, s12, s22, s32, s42, s52, s62, s72))


@njit(**NJIT)
def _fma3(e, xa, xm, xc, s0, s1, s2):
    """One output channel's gradient vector e times the three taps of a kernel row, added to its sums."""
    return vfma(e, xa, s0), vfma(e, xm, s1), vfma(e, xc, s2)


@njit(**NJIT_PARALLEL)
def conv3x3_s2_dx_tiled(gp, wk, out, width, size):
    """cpu_conv_direct.conv3x3_s2_dx for float32 in registers: the input gradient of a 3x3
    stride-2 convolution as its four parity planes, out[t, c, 2r + s, p] (see there for which
    taps each plane gathers), with wk the weights as (C, K, 9).

    The scalar kernel adds into the four planes in memory for every gradient channel k (8
    loads and 8 stores of running sums per 18 multiply-adds). Here a task takes one image and
    one input channel and, for 32 flat positions at a time, keeps the four planes' sums in 16
    vectors through all K: per k, 16 loads of g and 9 broadcast weights feed 36 multiply-adds.
    Positions run to `size` (a multiple of 32, within out's rows); each is one task's sum in
    the order of k, so the result does not depend on the thread count."""
    groups, k_n = gp.shape[:2]
    c_n = out.shape[1]
    gstride = gp.shape[2]
    for task in prange(groups * c_n):
        t = task // c_n
        c = task % c_n
        for p in range(0, size, 32):
            _s2_block(gp, wk, out, t, c, k_n, gstride, width, p)


@njit(**NJIT)
def _s2_block(gp, wk, out, t, c, k_n, gstride, width, p):
    """32 positions of the four parity planes of input channel c (conv3x3_s2_dx_tiled)."""
    a0 = vzero(); a1 = vzero(); a2 = vzero(); a3 = vzero()  # noqa: E702   plane (0, 0): four taps
    b0 = vzero(); b1 = vzero(); b2 = vzero(); b3 = vzero()  # noqa: E702   plane (0, 1): two
    e0 = vzero(); e1 = vzero(); e2 = vzero(); e3 = vzero()  # noqa: E702   plane (1, 0): two
    f0 = vzero(); f1 = vzero(); f2 = vzero(); f3 = vzero()  # noqa: E702   plane (1, 1): one
    q = t * k_n * gstride + p
    w = c * k_n * 9
    for k in range(k_n):
        u00 = vsplat(wk.flat[w]); u01 = vsplat(wk.flat[w + 1]); u02 = vsplat(wk.flat[w + 2])  # noqa: E702
        u10 = vsplat(wk.flat[w + 3]); u11 = vsplat(wk.flat[w + 4]); u12 = vsplat(wk.flat[w + 5])  # noqa: E702
        u20 = vsplat(wk.flat[w + 6]); u21 = vsplat(wk.flat[w + 7]); u22 = vsplat(wk.flat[w + 8])  # noqa: E702
        # g at p + width + 1, p + width, p + 1, p: the taps whose row (column) index is 0, 1, 2
        # read one row (column) further down (right) as i // 2 (j // 2) grows
        g = vload(gp, q + width + 1)
        a0 = vfma(u00, g, a0); b0 = vfma(u01, g, b0); e0 = vfma(u10, g, e0); f0 = vfma(u11, g, f0)  # noqa: E702
        g = vload(gp, q + width + 9)
        a1 = vfma(u00, g, a1); b1 = vfma(u01, g, b1); e1 = vfma(u10, g, e1); f1 = vfma(u11, g, f1)  # noqa: E702
        g = vload(gp, q + width + 17)
        a2 = vfma(u00, g, a2); b2 = vfma(u01, g, b2); e2 = vfma(u10, g, e2); f2 = vfma(u11, g, f2)  # noqa: E702
        g = vload(gp, q + width + 25)
        a3 = vfma(u00, g, a3); b3 = vfma(u01, g, b3); e3 = vfma(u10, g, e3); f3 = vfma(u11, g, f3)  # noqa: E702
        g = vload(gp, q + width)
        a0 = vfma(u02, g, a0); e0 = vfma(u12, g, e0)  # noqa: E702
        g = vload(gp, q + width + 8)
        a1 = vfma(u02, g, a1); e1 = vfma(u12, g, e1)  # noqa: E702
        g = vload(gp, q + width + 16)
        a2 = vfma(u02, g, a2); e2 = vfma(u12, g, e2)  # noqa: E702
        g = vload(gp, q + width + 24)
        a3 = vfma(u02, g, a3); e3 = vfma(u12, g, e3)  # noqa: E702
        g = vload(gp, q + 1)
        a0 = vfma(u20, g, a0); b0 = vfma(u21, g, b0)  # noqa: E702
        g = vload(gp, q + 9)
        a1 = vfma(u20, g, a1); b1 = vfma(u21, g, b1)  # noqa: E702
        g = vload(gp, q + 17)
        a2 = vfma(u20, g, a2); b2 = vfma(u21, g, b2)  # noqa: E702
        g = vload(gp, q + 25)
        a3 = vfma(u20, g, a3); b3 = vfma(u21, g, b3)  # noqa: E702
        a0 = vfma(u22, vload(gp, q), a0); a1 = vfma(u22, vload(gp, q + 8), a1)  # noqa: E702
        a2 = vfma(u22, vload(gp, q + 16), a2); a3 = vfma(u22, vload(gp, q + 24), a3)  # noqa: E702
        q += gstride
        w += 9
    d = (t * out.shape[1] + c) * 4 * out.shape[3] + p
    plane = out.shape[3]
    vstore(out, d, a0); vstore(out, d + 8, a1); vstore(out, d + 16, a2); vstore(out, d + 24, a3)  # noqa: E702
    d += plane
    vstore(out, d, b0); vstore(out, d + 8, b1); vstore(out, d + 16, b2); vstore(out, d + 24, b3)  # noqa: E702
    d += plane
    vstore(out, d, e0); vstore(out, d + 8, e1); vstore(out, d + 16, e2); vstore(out, d + 24, e3)  # noqa: E702
    d += plane
    vstore(out, d, f0); vstore(out, d + 8, f1); vstore(out, d + 16, f2); vstore(out, d + 24, f3)  # noqa: E702


def s2_input_grad(gp, w, planes, width, size) -> None:
    """conv3x3_s2_dx_tiled with the weights as (C, K, 9)."""
    wk = np.ascontiguousarray(w.transpose(1, 0, 2, 3), np.float32).reshape(w.shape[1], w.shape[0], 9)
    conv3x3_s2_dx_tiled(gp, wk, planes, width, size)


def forward(xv, w, bias, y, width, planes, offs) -> None:
    """conv3x3_tiled (for outputs at most eight wide conv3x3_tiled_narrow, for rows of 16 or
    32k conv3x3_tiled_wide) with the weights packed and the taps as flat offsets (see tap_table)."""
    offsets, cstride = flat_offsets(xv, planes, offs)
    bias = np.ascontiguousarray(bias, np.float32)
    ow, c = y.shape[3], w.shape[1]
    if ow <= 8 and c >= NARROW_MIN_C:
        conv3x3_tiled_narrow(xv, pack_taps(w, NR), bias, y, offsets, cstride, width)
    elif (ow == 16 or ow % 32 == 0) and c >= WIDE_MIN_C:
        conv3x3_tiled_wide(xv, pack_taps(w, NR), bias, y, offsets, cstride, width)
    else:
        conv3x3_tiled(xv, pack_taps(w), bias, y, offsets, cstride, width)


def weight_grad(xv, gflat, goff, chunks, w_shape, planes, offs, size, rows=0, width=0) -> np.ndarray:
    """The (K, C, 3, 3) weight gradient: conv3x3_tiled_dw's chunks, then their sum, over the
    first `size` flat positions (a multiple of 8), or with rows > 0 over the first eight
    positions of `rows` rows of `width` (outputs at most eight wide). The gradient planes get
    zero planes up to a multiple of MR channels (one copy, only when K is not)."""
    offsets, cstride = flat_offsets(xv, planes, offs)
    k, c = w_shape[:2]
    k8 = -(-k // MR) * MR
    if k8 != k:
        padded = np.zeros((gflat.shape[0], k8, gflat.shape[2]), np.float32)
        padded[:, :k] = gflat
        gflat = padded
    part = np.empty((chunks, c, 9, k8), np.float32)   # the kernel writes every value
    count, step = (rows, width) if rows else (size // 8, 8)
    conv3x3_tiled_dw(xv, gflat, goff, part, offsets, cstride, count, step)
    return np.ascontiguousarray(part.sum(axis=0)[:, :, :k].transpose(2, 0, 1)).reshape(w_shape)
