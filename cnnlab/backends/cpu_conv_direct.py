"""The direct 3x3 convolution passes of the CPU backend, on flat planes (no im2col matrix).

Stride 1: each input plane is padded and laid out as one row of width Wp = W + 2*pw, so a
kernel tap (i, j) is a fixed offset i*dh*Wp + j*dw into it and one output plane is a
straight, vectorisable pass over Wp*OH positions (the 2*dw extra positions per row are
computed and dropped). Each pass feeds two output channels from the same nine loads.

Stride 2 (a ResNet's downsampling 3x3): the padded input is split into its four (row,
column) parity planes of (OH + 1) x (OW + 1) cells; input cell (2*oy + i, 2*ox + j) is
cell (oy + i//2, ox + j//2) of parity plane (i%2, j%2), so every tap is again a fixed
offset into one plane and the same kernels run with a different tap table (tap_table).
A stride-2 conv then does exactly its own multiply-adds, where im2col copies each input
cell into up to nine columns first.

Small planes (8x8, 16x16) are stacked: several images lie one above the other in one flat
plane, so a pass is long enough for the vector loop and its per-channel set-up (18 weight
loads, a rounded tail) is paid once for all of them; the rows across a seam are computed
and dropped like the columns past OW (padded_flat, parity_planes, stacked_output).

cpu_conv.py chooses between these, im2col + sgemm and the 1x1 products, and holds the
gradients' bookkeeping; the fastmath flags, and why, are in cnnlab/_config.py.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba import uint64 as _u  # an index known to be >= 0 skips the negative-index fix-up

from .._config import NJIT, NJIT_FMA, NJIT_FMA_SUMS, NJIT_PARALLEL
from .cpu_threads import launch   # the layout copies of small planes run on the calling thread


@njit(**NJIT_FMA)
def conv3x3_flat(xv, wt, bias, y, width, planes, offs, size):
    """y[b, k] = sum_c sum_t wt[k, c, t // 3, t % 3] * xv[b, c, planes[t], p + offs[t]] + bias[k],
    over flat positions p = oy*width + ox < size, keeping oy < OH and ox < OW.

    Tap t = 3i + j reads plane planes[t] at offset offs[t]: at stride 1 every tap reads the
    one padded plane (offset i*dh*width + j*dw); at stride 2 the input is split into its four
    (row, column) parity planes and each tap reads the plane of its parity, so every load is
    still a contiguous run (see tap_table)."""
    n, c = xv.shape[:2]
    k = wt.shape[0]
    o0, o1, o2, o3, o4, o5, o6, o7, o8 = offs[0], offs[1], offs[2], offs[3], offs[4], offs[5], offs[6], offs[7], offs[8]
    pairs = (k + 1) // 2
    for task in prange(n * pairs):
        b = task // pairs
        k0 = (task % pairs) * 2
        k1 = min(k0 + 1, k - 1)  # an odd last channel is computed twice and stored once
        a0 = np.zeros(size, y.dtype)
        a1 = np.zeros(size, y.dtype)
        for ci in range(c):
            pl = xv[b, ci]
            r0 = pl[planes[0]]; r1 = pl[planes[1]]; r2 = pl[planes[2]]  # noqa: E702
            r3 = pl[planes[3]]; r4 = pl[planes[4]]; r5 = pl[planes[5]]  # noqa: E702
            r6 = pl[planes[6]]; r7 = pl[planes[7]]; r8 = pl[planes[8]]  # noqa: E702
            u00, u01, u02, u10, u11, u12, u20, u21, u22 = _nine(wt, k0, ci)
            v00, v01, v02, v10, v11, v12, v20, v21, v22 = _nine(wt, k1, ci)
            for p in range(size):
                x00 = r0[_u(p + o0)]; x01 = r1[_u(p + o1)]; x02 = r2[_u(p + o2)]  # noqa: E702
                x10 = r3[_u(p + o3)]; x11 = r4[_u(p + o4)]; x12 = r5[_u(p + o5)]  # noqa: E702
                x20 = r6[_u(p + o6)]; x21 = r7[_u(p + o7)]; x22 = r8[_u(p + o8)]  # noqa: E702
                a0[p] += (u00 * x00 + u01 * x01 + u02 * x02 + u10 * x10 + u11 * x11 + u12 * x12
                          + u20 * x20 + u21 * x21 + u22 * x22)
                a1[p] += (v00 * x00 + v01 * x01 + v02 * x02 + v10 * x10 + v11 * x11 + v12 * x12
                          + v20 * x20 + v21 * x21 + v22 * x22)
        _store_cropped(a0, y[b, k0], bias[k0], width)
        if k1 != k0:
            _store_cropped(a1, y[b, k1], bias[k1], width)


@njit(**NJIT)
def _nine(wt, k, c):
    """The nine taps of wt[k, c], row by row, as scalars the vector loops keep in registers."""
    return (wt[k, c, 0, 0], wt[k, c, 0, 1], wt[k, c, 0, 2], wt[k, c, 1, 0], wt[k, c, 1, 1], wt[k, c, 1, 2],
            wt[k, c, 2, 0], wt[k, c, 2, 1], wt[k, c, 2, 2])


@njit(**NJIT)
def _store_cropped(acc, out, bias, width):
    oh, ow = out.shape
    for oy in range(oh):
        row = out[oy]
        base = oy * width
        for ox in range(ow):
            row[ox] = acc[base + ox] + bias


@njit(**NJIT_FMA_SUMS)
def conv3x3_flat_dw(xv, gp, goff, part, planes, offs, size):
    """part[t, k, c, i, j] = sum over the images b of chunk t of
    sum_p gp[b, k, goff + p] * xv[b, c, planes[3i+j], p + offs[3i+j]], p < size
    (the taps as in conv3x3_flat).

    gp holds the output gradient in rows of the forward pass's width with zeros past OW,
    so the dropped positions of the forward pass contribute nothing. Each chunk works
    image by image: one image's input and gradient planes stay in cache while every
    channel pair uses them.
    """
    n, c = xv.shape[:2]
    chunks, k = part.shape[0], part.shape[1]
    o0, o1, o2, o3, o4, o5, o6, o7, o8 = offs[0], offs[1], offs[2], offs[3], offs[4], offs[5], offs[6], offs[7], offs[8]
    zero = np.zeros(1, part.dtype)[0]
    for t in prange(chunks):
        acc = part[t]
        for b in range(t * n // chunks, (t + 1) * n // chunks):
            for k0 in range(0, k, 2):
                k1 = min(k0 + 1, k - 1)
                g0 = gp[b, k0, goff:]
                g1 = gp[b, k1, goff:]
                for ci in range(c):
                    pl = xv[b, ci]
                    r0 = pl[planes[0]]; r1 = pl[planes[1]]; r2 = pl[planes[2]]  # noqa: E702
                    r3 = pl[planes[3]]; r4 = pl[planes[4]]; r5 = pl[planes[5]]  # noqa: E702
                    r6 = pl[planes[6]]; r7 = pl[planes[7]]; r8 = pl[planes[8]]  # noqa: E702
                    s00 = zero; s01 = zero; s02 = zero; s10 = zero; s11 = zero; s12 = zero  # noqa: E702
                    s20 = zero; s21 = zero; s22 = zero  # noqa: E702
                    t00 = zero; t01 = zero; t02 = zero; t10 = zero; t11 = zero; t12 = zero  # noqa: E702
                    t20 = zero; t21 = zero; t22 = zero  # noqa: E702
                    for p in range(size):
                        x00 = r0[_u(p + o0)]; x01 = r1[_u(p + o1)]; x02 = r2[_u(p + o2)]  # noqa: E702
                        x10 = r3[_u(p + o3)]; x11 = r4[_u(p + o4)]; x12 = r5[_u(p + o5)]  # noqa: E702
                        x20 = r6[_u(p + o6)]; x21 = r7[_u(p + o7)]; x22 = r8[_u(p + o8)]  # noqa: E702
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


@njit(**NJIT_FMA)
def conv3x3_s2_dx(gp, wt, out, width, size):
    """The input gradient of a 3x3 stride-2 convolution, as its four (row, column) parity planes.

    Input cell (2a + r, 2b + s) of the padded input (r, s in {0, 1}) is read only by the taps
    (i, j) with i % 2 == r and j % 2 == s, by the output cell (a - i//2, b - j//2). So plane
    (r, s) gathers four, two, two or one taps, and every tap reads one of four neighbouring
    cells of g: out[t, c, 2r + s, p] = sum over k and those taps of wt[k, c, i, j] * g at flat
    offset p + (1 - i//2)*width + (1 - j//2) of gp, which holds g with a zero row above each
    image and a zero column on each side. Nine multiply-adds per gradient cell, like the
    forward pass; no scattering, so each output is one thread's sum in a fixed order.
    Output channels go in pairs that share the four loads; `out` starts zeroed."""
    groups, k = gp.shape[:2]
    c = out.shape[1]
    pairs = (c + 1) // 2
    for task in prange(groups * pairs):
        t = task // pairs
        c0 = (task % pairs) * 2
        c1 = min(c0 + 1, c - 1)
        a00 = out[t, c0, 0]; a01 = out[t, c0, 1]; a10 = out[t, c0, 2]; a11 = out[t, c0, 3]  # noqa: E702
        if c1 != c0:
            b00 = out[t, c1, 0]; b01 = out[t, c1, 1]; b10 = out[t, c1, 2]; b11 = out[t, c1, 3]  # noqa: E702
        else:  # an odd last channel: its twin's sums go to scratch
            scratch = np.zeros((4, out.shape[3]), out.dtype)
            b00 = scratch[0]; b01 = scratch[1]; b10 = scratch[2]; b11 = scratch[3]  # noqa: E702
        for kk in range(k):
            r = gp[t, kk]
            u00, u01, u02, u10, u11, u12, u20, u21, u22 = _nine(wt, kk, c0)
            v00, v01, v02, v10, v11, v12, v20, v21, v22 = _nine(wt, kk, c1)
            for p in range(size):
                g11 = r[_u(p + width + 1)]; g10 = r[_u(p + width)]  # noqa: E702
                g01 = r[_u(p + 1)]; g00 = r[_u(p)]  # noqa: E702
                a00[p] += u00 * g11 + u02 * g10 + u20 * g01 + u22 * g00
                a01[p] += u01 * g11 + u21 * g01
                a10[p] += u10 * g11 + u12 * g10
                a11[p] += u11 * g11
                b00[p] += v00 * g11 + v02 * g10 + v20 * g01 + v22 * g00
                b01[p] += v01 * g11 + v21 * g01
                b10[p] += v10 * g11 + v12 * g10
                b11[p] += v11 * g11


def from_parity_planes(planes, x_shape, padding, out_hw, stack):
    """The (N, C, H, W) gradient of the input from conv3x3_s2_dx's parity planes of `stack`
    images each (rows of OW + 2 cells, OH + 1 rows an image): interleaved back into the
    padded input's rows and columns, then cropped to the unpadded input."""
    dx = np.empty(x_shape, planes.dtype)
    launch(_interleave, dx.size, planes, dx, padding[0], padding[1], out_hw[0] + 1, out_hw[1] + 2, stack)
    return dx


@njit(**NJIT_PARALLEL)
def _interleave(planes, dx, ph, pw, rows, width, stack):
    """dx[b, c, y, x] = cell ((y + ph) // 2, (x + pw) // 2) of parity plane ((y + ph) % 2, (x + pw) % 2)
    of image b % stack of group b // stack: one (image, channel) per task. (A 7-axis NumPy
    transpose did this, at about 7% of a ResNet training step.)"""
    n, c, h, w = dx.shape
    for task in prange(n * c):
        b = task // c
        ci = task % c
        src = planes[b // stack, ci]
        base = (b % stack) * rows * width
        # even and odd columns of x come from the two planes of one parity row, read one cell
        # apart: one loop storing both (a pair of stores LLVM turns into vector shuffles)
        even, odd = pw % 2, (1 + pw) % 2
        e0, e1 = pw // 2, (1 + pw) // 2
        for y in range(h):
            yp = y + ph
            r = 2 * (yp % 2)
            at = base + (yp // 2) * width
            row = dx[b, ci, y]
            se, so = src[r + even], src[r + odd]
            for q in range(w // 2):
                row[_u(2 * q)] = se[_u(at + e0 + q)]
                row[_u(2 * q + 1)] = so[_u(at + e1 + q)]
            if w % 2:
                row[w - 1] = se[at + e0 + w // 2]


@njit(**NJIT)
def _add_taps(out, s00, s01, s02, s10, s11, s12, s20, s21, s22):
    out[0, 0] += s00; out[0, 1] += s01; out[0, 2] += s02  # noqa: E702
    out[1, 0] += s10; out[1, 1] += s11; out[1, 2] += s12  # noqa: E702
    out[2, 0] += s20; out[2, 1] += s21; out[2, 2] += s22  # noqa: E702


# The weight gradient sums over images in this many chunks (fixed, so the result
# does not depend on the thread count), then adds the chunks up.
DW_CHUNKS = 16


# LLVM's vector loop takes up to 64 floats an iteration (16 lanes, 4 interleaved) and
# leaves the remainder to a scalar loop, which on small planes (12x14 = 168 positions)
# would be a large share. The flat passes therefore run to a multiple of _VEC positions
# (the extra ones are dropped like the columns past OW; the buffers carry slack for them).
_VEC = 64


def vec_len(size: int) -> int:
    return -(-size // _VEC) * _VEC


def padded_flat(x, top, left, width, rows, dw, stack=1):
    """x padded into `rows` rows of `width`, with zeros after it for the rounded passes' reads.

    With stack > 1, `stack` consecutive images lie one above the other in one plane (the
    batch must divide by it): a small plane (8x8) then makes one long vector pass instead
    of many short ones whose rounding and per-channel set-up cost more than their work.
    The rows computed across two images' seam are dropped like the columns past OW."""
    n, c, h, w = x.shape
    out = np.empty((n // stack, c, stack * rows * width + width + _VEC + 2 * dw), x.dtype)
    launch(_pad_planes, out.size, np.ascontiguousarray(x), out, top, left, width, rows, stack)
    return out


@njit(**NJIT_PARALLEL)
def _pad_planes(x, out, top, left, width, rows, stack):
    """One (group, channel) plane per task: zeroed while it is in cache, then x's rows copied in.
    NumPy's zero fill of the whole buffer and then strided copy ran on one core and went
    through memory twice (about 7% of a VGG training step; this is 1.5-1.8x faster)."""
    n, c, h, w = x.shape
    groups = n // stack
    size = out.shape[2]
    xf = x.reshape(-1)
    of = out.reshape(-1)
    for task in prange(groups * c):
        t = task // c
        ci = task % c
        base = task * size
        of[base:base + size] = 0
        for j in range(stack):
            src = ((t * stack + j) * c + ci) * h * w
            dst = base + (j * rows + top) * width + left
            for r in range(h):
                of[dst + r * width:dst + r * width + w] = xf[src + r * w:src + r * w + w]


def stacked_output(n, k, rows, out_hw, stack, dtype):
    """(array, pass view): where a pass over planes of `stack` images writes its rows (the
    view) and the whole array, whose image j of group t is rows j*rows ... j*rows + OH - 1."""
    oh, ow = out_hw
    if stack == 1:
        y = np.empty((n, k, oh, ow), dtype)
        return y, y
    y = np.empty((n // stack, k, stack * rows, ow), dtype)
    return y, y[:, :, :stack * rows - (rows - oh)]


def unstacked(y, n, rows, out_hw):
    """The (N, K, OH, OW) images of stacked_output's array."""
    if y.shape[0] == n:
        return y
    groups, k = y.shape[:2]
    oh, ow = out_hw
    return np.ascontiguousarray(y.reshape(groups, k, n // groups, rows, ow)[:, :, :, :oh].transpose(0, 2, 1, 3, 4)
                                ).reshape(n, k, oh, ow)


def tap_table(width: int, dh: int = 1, dw: int = 1, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(planes, offsets) of the nine taps t = 3i + j over planes of `width` columns.

    Stride 1: one plane, tap (i, j) at offset i*dh*width + j*dw. Stride 2: the padded input's
    four parity planes (even rows and columns, even rows odd columns, ...), so input cell
    (2*oy + i, 2*ox + j) is cell (oy + i//2, ox + j//2) of plane 2*(i%2) + j%2."""
    taps = [(i, j) for i in range(3) for j in range(3)]
    if stride == 1:
        return np.zeros(9, np.int64), np.array([i * dh * width + j * dw for i, j in taps], np.int64)
    return (np.array([2 * (i % 2) + j % 2 for i, j in taps], np.int64),
            np.array([(i // 2) * width + j // 2 for i, j in taps], np.int64))


def one_plane(xp):
    """A padded flat stack (n, c, L) as the one-plane stack (n, c, 1, L) the kernels read."""
    return xp[:, :, None, :]


def parity_planes(x, padding, out_hw, stack=1):
    """The zero-padded input split into its four (row, column) parity planes, each of
    (OH + 1) x (OW + 1) cells laid out flat (`stack` images one above the other, as in
    padded_flat), with slack after them for the rounded passes."""
    n, c, h, w = x.shape
    (ph, pw), (oh, ow) = padding, out_hw
    hq, wq = oh + 1, ow + 1
    out = np.empty((n // stack, c, 4, stack * hq * wq + wq + _VEC + 2), x.dtype)
    launch(_split_parity, out.size, np.ascontiguousarray(x), out, ph, pw, hq, wq, stack)
    return out


@njit(**NJIT_PARALLEL)
def _split_parity(x, out, ph, pw, hq, wq, stack):
    """The inverse layout of _interleave (cells past 2*hq rows or 2*wq columns of the padded
    input are never read by a stride-2 3x3 window and are left out; the rest is zeros)."""
    n, c, h, w = x.shape
    for task in prange(n // stack * c):
        t = task // c
        ci = task % c
        dst = out[t, ci]
        dst[:, :] = 0
        for j in range(stack):
            src = x[t * stack + j, ci]
            base = j * hq * wq
            cols = min(w, 2 * wq - pw)
            even, odd = pw % 2, (1 + pw) % 2   # the planes of x's even and odd columns
            e0, e1 = pw // 2, (1 + pw) // 2
            for y in range(min(h, 2 * hq - ph)):
                yp = y + ph
                r = 2 * (yp % 2)
                at = base + (yp // 2) * wq
                row = src[y]
                de, do = dst[r + even], dst[r + odd]
                for q in range(cols // 2):   # one loop reading both: vector shuffles (see _interleave)
                    de[_u(at + e0 + q)] = row[_u(2 * q)]
                    do[_u(at + e1 + q)] = row[_u(2 * q + 1)]
                if cols % 2:
                    de[at + e0 + cols // 2] = row[cols - 1]
