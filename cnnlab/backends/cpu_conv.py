"""Convolution on the CPU backend: which path a convolution takes, and its gradients.

- 3x3, stride 1 (any padding up to the dilated kernel's reach, any dilation):
  the direct pass over "padded flat" planes (cpu_conv_direct.py), no im2col matrix.
  Its gradients are the same pass: the input gradient is this convolution of the
  padded output gradient with the kernel flipped and transposed, and the weight
  gradient nine dot products per channel pair.
  It pays on planes of about 80 flat positions or more (8x8 with padding 1); below
  that (7x7 and smaller, a ResNet's last stages) im2col + sgemm is faster.
- 3x3, stride 2, no dilation (a ResNet's downsampling): the same pass over the
  input's four parity planes, and the weight gradient likewise; the input gradient
  (a scatter) stays sgemm + col2im, which needs no column matrix. From 8x8 outputs on.
- 1x1, no padding: one matrix product per image, no im2col copy (a strided one
  first takes every s-th row and column).
- anything else: im2col (cpu_conv_im2col.py) followed by one sgemm per chunk of
  images, so the column buffer stays in cache.

Both direct passes stack small planes several images to a pass (_stack), which is what
lets them beat im2col down to 8x8 planes.

On a CPU with 32 vector registers (AVX-512), float32 takes the register-tiled kernels of
cpu_conv_tiled.py for the same passes (forward, stride-1 input gradient, weight gradient;
the stride-2 input gradient stays conv3x3_s2_dx): the same layouts, unstacked, each
block of outputs held in registers. The commonest case there, 3x3 stride 1 padding 1,
skips the padded layout altogether: cpu_conv_masked.py reads the planes as they are,
leaving the taps that fall outside the image out of its loads, for the forward pass and
both gradients (see _unpadded for when); 3x3 stride 2 padding 1 on even planes does the
same over the input's unpadded parity planes (cpu_conv_masked_s2.py, all three passes).
float64 (the gradient checks) always takes the scalar kernels of cpu_conv_direct.py.

Before choosing, a kernel is cropped to the taps that reach real input for some
output (window.live_taps): a 3x3 padding-1 convolution of a 1x1 plane is a 1x1 one,
and the cropped taps' weight gradients are zero.

The direct kernels let LLVM fuse multiply-adds, and the weight gradient's sums be
vectorised: their fastmath flags, and why, are in cnnlab/_config.py.
"""
from __future__ import annotations

import os

import numpy as np

from .cpu_threads import blas_on_caller, launch  # first: it starts numba's pool (a short spin)
from .cpu_conv_im2col import _col2im, _col2im_pn, _im2col, _im2col_pn
from .cpu_conv_direct import (  # noqa: I001
    DW_CHUNKS, conv3x3_flat, conv3x3_flat_dw, conv3x3_s2_dx, from_parity_planes, one_plane, padded_flat,
    parity_planes, stacked_output, tap_table, unstacked, vec_len,
)
from . import cpu_conv_masked as masked
from . import cpu_conv_masked_s2 as masked_s2
from . import cpu_conv_tiled as tiled
from .window import live_taps

# Columns up to this size are built once for the whole batch (and kept for the
# weight gradient); larger ones are built in chunks of images and rebuilt in backward.
_CONV_WHOLE_BYTES = int(os.environ.get("CNNLAB_CONV_WHOLE_BYTES", 48 << 20))
_CONV_CHUNK_BYTES = int(os.environ.get("CNNLAB_CONV_CHUNK_BYTES", 4 << 20))
_SHORT_ROWS = 16  # below this output width the batch-innermost layout wins


def _conv_plan(n, ckk, p, ow, itemsize):
    """(layout, images per chunk): 'pn' for small outputs, else 'np' in chunks."""
    if ow < _SHORT_ROWS or ckk * p * n * itemsize <= _CONV_WHOLE_BYTES:
        return ("pn" if ow < _SHORT_ROWS else "np"), max(1, n)  # an empty batch: one empty chunk
    return "np", max(1, min(n, _CONV_CHUNK_BYTES // max(1, ckk * p * itemsize)))


def _columns(x, layout, s, e, geom):
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geom
    ckk = x.shape[1] * kh * kw
    m = e - s
    if layout == "pn":
        cols = np.empty((ckk, oh * ow, m), x.dtype)
        launch(_im2col_pn, cols.size, np.ascontiguousarray(x[s:e].transpose(1, 2, 3, 0)), cols, kh, kw, sh, sw,
               ph, pw, dh, dw, oh, ow)
    else:
        cols = np.empty((ckk, m, oh * ow), x.dtype)
        launch(_im2col, cols.size, x[s:e], cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return cols.reshape(ckk, -1)


def _im2col_forward(x, w, b, stride, padding, dilation, out_hw, keep_columns):
    """Any geometry: columns, then one sgemm per chunk of images. `saved` is the
    column buffer when it was built whole and keep_columns asked for it, else None."""
    n, c, _, _ = x.shape
    k, _, kh, kw = w.shape
    oh, ow = out_hw
    p = oh * ow
    ckk = c * kh * kw
    geom = (kh, kw, *stride, *padding, *dilation, oh, ow)
    w2 = w.reshape(k, ckk)
    layout, step = _conv_plan(n, ckk, p, ow, x.itemsize)
    y = np.empty((n, k, p), x.dtype)
    saved = None
    for s in range(0, n, step):
        e = min(n, s + step)
        cols = _columns(x, layout, s, e, geom)
        out = (w2 @ cols).reshape(k, -1, e - s) if layout == "pn" else (w2 @ cols).reshape(k, e - s, p)
        out = out.transpose(2, 0, 1) if layout == "pn" else out.transpose(1, 0, 2)
        if b is not None:  # the bias rides along with the copy into NCHW order
            np.add(out, b[None, :, None], out=y[s:e])
        else:
            y[s:e] = out
        if keep_columns and step == n:
            saved = cols
    return y.reshape(n, k, oh, ow), saved


def _im2col_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    n, c, _, _ = x.shape
    k, _, kh, kw = w.shape
    _, _, oh, ow = g.shape
    p = oh * ow
    ckk = c * kh * kw
    geom = (kh, kw, *stride, *padding, *dilation, oh, ow)
    w2 = w.reshape(k, ckk)
    gv = g.reshape(n, k, p)
    layout, step = _conv_plan(n, ckk, p, ow, x.itemsize)
    dx = np.zeros_like(x) if need_x else None
    dw_ = np.zeros((k, ckk), x.dtype) if need_w else None
    db = gv.sum(axis=(0, 2)) if need_b else None
    if need_x or need_w:
        for s in range(0, n, step):
            e = min(n, s + step)
            axes = (1, 2, 0) if layout == "pn" else (1, 0, 2)
            gk = np.ascontiguousarray(gv[s:e].transpose(axes)).reshape(k, -1)
            if need_w:
                cols = saved if saved is not None else _columns(x, layout, s, e, geom)
                dw_ += gk @ cols.T
            if need_x:
                dcols = w2.T @ gk
                if layout == "pn":
                    dxt = np.zeros((c,) + x.shape[2:] + (e - s,), x.dtype)
                    launch(_col2im_pn, dcols.size, dcols.reshape(ckk, p, e - s), dxt, *geom)
                    dx[s:e] = dxt.transpose(3, 0, 1, 2)
                else:
                    launch(_col2im, dcols.size, dcols.reshape(ckk, e - s, p), dx[s:e], *geom)
    return dx, (dw_.reshape(w.shape) if need_w else None), db





# CNNLAB_CONV_DIRECT=0 sends every convolution through im2col (to compare the two);
# CNNLAB_CONV_STRIDED=0 only the stride-2 ones.
_DIRECT = os.environ.get("CNNLAB_CONV_DIRECT", "1") != "0"
_STRIDED = os.environ.get("CNNLAB_CONV_STRIDED", "1") != "0"
# float32 runs the register-tiled kernels where the CPU has the registers for them
# (cpu_conv_tiled.wide_registers); CNNLAB_CONV_TILED=1 or 0 forces them on or off (to compare).
_TILED = {"1": True, "0": False}.get(os.environ.get("CNNLAB_CONV_TILED", ""), None)
if _TILED is None:
    _TILED = tiled.wide_registers()
# There, 3x3 stride-1 padding-1 convolutions take the kernels that read unpadded planes
# (cpu_conv_masked.py, see _unpadded), and stride-2 ones on even planes the kernels over
# unpadded parity planes (cpu_conv_masked_s2.py, all three passes);
# CNNLAB_CONV_UNPADDED=0 keeps both on the tiled ones (_UNPADDED_S2 = False the stride-2 ones alone).
_UNPADDED = os.environ.get("CNNLAB_CONV_UNPADDED", "1") != "0"
_UNPADDED_S2 = True
# The stride-2 pass stacks small planes like the stride-1 one. Measured with
# benchmarks/bench_conv_paths.py (load 30-50 on 2 cores, alternated in one process): on
# 64x16x32x32 -> 32 (16x16 out) forward+backward 19.3 ms against im2col's 25.0, on
# 64x32x16x16 -> 64 (8x8 out, 72 flat positions, 8 images a pass) 14.1 against 17.5;
# smaller outputs (4x4 and below) were not measured and stay with im2col.
_STRIDED_MIN_PLANE = 72


def _direct_ok(w, stride, padding, dilation) -> bool:
    """3x3, stride 1, and padding no wider than the dilated kernel's reach
    (so the input gradient is again a convolution with non-negative padding)."""
    return (_DIRECT and w.shape[2:] == (3, 3) and tuple(stride) == (1, 1)
            and padding[0] <= 2 * dilation[0] and padding[1] <= 2 * dilation[1])


# The direct kernel's fixed cost per channel pair (18 weight loads, a rounded vector pass)
# outweighs its work on small planes: on 16x64x7x7 -> 64 (63 flat positions) im2col +
# sgemm took 0.74 ms forward and 1.6 ms backward against the direct kernel's 1.0 and 7.1
# (one thread), and on 4x4, 2x2 and 1x1 planes the direct kernel was 10-100x slower; from
# 14x14 (224 positions) on the direct kernel wins. The rule counts positions, not widths.
# Since small planes are stacked several images to a pass (_stack), an 8x8 plane (80
# positions with padding 1) also wins: on 64x64x8x8 -> 64 forward 8.1 ms against im2col's
# 12.9, forward+backward 33.9 against 39.2; 7x7 (63) was a tie and 4x4 lost 3x
# (benchmarks/bench_conv_paths.py, one loaded 2-core machine).
_DIRECT_MIN_PLANE = 80


# Planes of fewer flat positions than this are stacked, several images to a pass
# (cpu_conv_direct.padded_flat), up to this many positions a pass.
_STACK_POSITIONS = 1024


def _stack(n: int, positions: int) -> int:
    """Images per pass: the largest divisor of the batch that keeps a pass under _STACK_POSITIONS."""
    m = max(1, min(n, _STACK_POSITIONS // max(1, positions)))
    while n % m:
        m -= 1
    return m


def _images_per_pass(x, positions: int) -> int:
    """The register-tiled kernels run along output rows and need no stacking (cpu_conv_tiled.py)."""
    return 1 if _tiled(x) else _stack(x.shape[0], positions)


# The tiled kernels run along output rows in vectors of 8, so what counts is the row: on
# 64x32x7x7 -> 32 they took 0.90 ms forward and 2.58 ms forward+backward against im2col's
# 1.48-1.62 and 4.33-4.44, on 64x64x4x4 -> 64 1.72 and 6.01 against 1.74 and 4.82
# (benchmarks/bench_conv_paths.py --only s1, AVX-512 VM): from 6x6 outputs on they win.
_TILED_MIN_SIDE = 6


# cpu_conv_masked's blocks of 32 positions fill only half on 4x4 planes, and still beat
# im2col there up to 64 channels: forward+backward on 64xCx4x4 -> C 0.43x im2col's time at
# C = 16, 0.74-1.00x at 64 (three runs), but 1.3-1.5x at 128 and 1.2x at 256 (64x32x5x5 ->
# 32: 0.56x).
_MASKED_SMALL = (4, 64)   # (smallest side, most input channels) below _TILED_MIN_SIDE


def _direct_pays(x_shape, padding, out_hw, tiled=False, unpadded=False) -> bool:
    if unpadded and min(out_hw) >= _MASKED_SMALL[0] and x_shape[1] <= _MASKED_SMALL[1]:
        return True
    if tiled:
        return min(out_hw) >= _TILED_MIN_SIDE
    return out_hw[0] * (x_shape[3] + 2 * padding[1]) >= _DIRECT_MIN_PLANE


def _unpadded(x, w, stride, padding, dilation, keep: bool, saved=None) -> bool:
    """Whether cpu_conv_masked's kernels, which read the planes unpadded, take this float32
    3x3 stride-1 padding-1 convolution on a CPU with 32 vector registers. The forward pass:
    when the weight gradient will follow (keep), from any number of input channels (on 1-4
    channel stems, forward + weight gradient took 0.73-0.81x the tiled kernels' time), else
    from masked.MIN_C (below it the forward pass alone took 1.0-1.3x theirs). The backward
    pass (keep=True): unless the forward pass kept a padded copy of x, which only the tiled
    path does (either path gives the right gradients)."""
    return (_UNPADDED and _tiled(x) and masked.usable(x, w.shape, stride, padding, dilation) and saved is None
            and (keep or x.shape[1] >= masked.MIN_C))


def _unpadded_s2(x, w, stride, padding, dilation) -> bool:
    """Whether cpu_conv_masked_s2's kernels take this stride-2 convolution: forward pass,
    input gradient and weight gradient 0.56-0.68x, 0.50-0.71x and 0.75-0.77x the time of
    the padded parity planes' on the CIFAR ResNet's two shapes, the first two with the same
    bits."""
    return _UNPADDED and _UNPADDED_S2 and _tiled(x) and masked_s2.usable(x, w.shape, stride, padding, dilation)


def _direct_forward(x, w, b, stride, padding, dilation, out_hw, keep):
    if _unpadded(x, w, stride, padding, dilation, keep):
        return masked.conv3x3(x, w, b), None   # nothing to keep: the backward pass reads x as it is
    if stride[0] == 2 and _unpadded_s2(x, w, stride, padding, dilation):
        y, planes = masked_s2.conv3x3_s2(x, w, b)
        return y, (planes if keep else None)
    n, c, h, wd = x.shape
    (ph, pw), (dh, dw) = padding, dilation
    if stride[0] == 2:
        width, rows = out_hw[1] + 1, out_hw[0] + 1
        m = _images_per_pass(x, out_hw[0] * width)
        xv = parity_planes(x, padding, out_hw, m)
        taps = tap_table(width, stride=2)
    else:
        width, rows = wd + 2 * pw, h + 2 * ph
        m = _images_per_pass(x, out_hw[0] * width)
        xv = one_plane(padded_flat(x, ph, pw, width, rows, dw, m))
        taps = tap_table(width, dh, dw)
    y, view = stacked_output(n, w.shape[0], rows, out_hw, m, x.dtype)
    bias = b if b is not None else np.zeros(w.shape[0], x.dtype)
    if _tiled(x):
        tiled.forward(xv, w, bias, y, width, *taps)
    else:
        conv3x3_flat(xv, w, bias, view, width, *taps, vec_len(view.shape[2] * width))
    return unstacked(y, n, rows, out_hw), (xv if keep else None)


def _strided_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    """Stride 2: the weight gradient on the parity planes; the input gradient gathered into
    the input's four parity planes (conv3x3_s2_dx, or cpu_conv_masked_s2's), then
    interleaved back."""
    n, k, oh, ow = g.shape
    width = ow + 1
    dx = None
    unpadded = _unpadded_s2(x, w, stride, padding, dilation)
    if need_x and unpadded:
        dx = masked_s2.input_grad_s2(g, w, x.shape)
    elif need_x:
        rows, gwidth = oh + 1, ow + 2
        m = _stack(n, rows * gwidth)
        gp = padded_flat(g, 1, 1, gwidth, rows, 1, m)   # a zero row above each image, a zero column each side
        size = vec_len(m * rows * gwidth)
        if _tiled(x):   # writes every position
            planes = np.empty((n // m, x.shape[1], 4, size), x.dtype)
            tiled.s2_input_grad(gp, w, planes, gwidth, size)
        else:
            planes = np.zeros((n // m, x.shape[1], 4, size), x.dtype)
            conv3x3_s2_dx(gp, w, planes, gwidth, size)
        dx = from_parity_planes(planes, x.shape, padding, (oh, ow), m)
    dwt = None
    if need_w and unpadded:
        # the forward pass kept the unpadded planes (5 axes; the padded ones have 4)
        planes = saved if saved is not None and saved.ndim == 5 else masked_s2.split_parity(x)
        dwt = masked_s2.weight_grad_s2(planes, g)
    elif need_w:
        m = _images_per_pass(x, oh * width)   # as the forward pass stacked its images
        xv = saved if saved is not None and saved.ndim == 4 else parity_planes(x, padding, (oh, ow), m)
        # g in blocks of OH + 1 rows per image: the seam row and the column past OW hold zeros
        dwt = _weight_grad(xv, padded_flat(g, 0, 0, width, oh + 1, 0, m), 0, w, tap_table(width, stride=2),
                           (m * (oh + 1) - 1) * width, (oh, ow), width)
    db = g.sum(axis=(0, 2, 3)) if need_b else None
    return dx, dwt, db


def _tiled(x) -> bool:
    """float32 runs the register-tiled kernels (cpu_conv_tiled.py); float64 the scalar ones."""
    return _TILED and x.dtype == np.float32


def _weight_grad(xv, gflat, goff, w, taps, positions, out_hw=(0, 0), width=0):
    """The direct passes' weight gradient over the first `positions` flat positions of each
    plane (rounded up: gflat holds zeros past them): sums over images in DW_CHUNKS fixed
    chunks (so the result does not depend on the thread count), then the chunks added up.
    Outputs at most eight wide in rows of at least eight (gflat's zeros fill each row's
    vector) go row by row: no padding column is computed."""
    chunks = min(xv.shape[0], DW_CHUNKS)
    if _tiled(xv):
        rows = out_hw[0] if out_hw[1] <= 8 <= width and positions <= out_hw[0] * width else 0
        return tiled.weight_grad(xv, gflat, goff, chunks, w.shape, *taps, -(-positions // 8) * 8, rows, width)
    part = np.zeros((chunks,) + w.shape, w.dtype)
    conv3x3_flat_dw(xv, gflat, goff, part, *taps, vec_len(positions))
    return part.sum(axis=0)


def _flipped(w):
    """The kernel of the stride-1 input gradient: w with its channel axes swapped and its taps reversed."""
    return np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])


def _direct_backward(x, w, g, saved, padding, dilation, need_x, need_w, need_b):
    if _unpadded(x, w, (1, 1), padding, dilation, True, saved):
        return _unpadded_backward(x, w, g, need_x, need_w, need_b)
    n, c, h, wd = x.shape
    k = w.shape[0]
    _, _, oh, ow = g.shape
    (ph, pw), (dh, dw) = padding, dilation
    width, rows = wd + 2 * pw, h + 2 * ph
    m = _images_per_pass(x, oh * width)   # as the forward pass stacked its images
    # dx is the 3x3 convolution of g padded by (2d - p) with the flipped, transposed kernel
    qh, qw = 2 * dh - ph, 2 * dw - pw
    gwidth, grows = ow + 2 * qw, oh + 2 * qh
    reuse = gwidth == width and (m == 1 or grows == rows)   # gp then also serves the weight gradient
    gp = None
    if need_x or (need_w and reuse):
        gp = padded_flat(g, qh, qw, gwidth, grows, dw, m)
    dx = dwt = None
    if need_x:
        wt = _flipped(w)
        dxs, view = stacked_output(n, c, grows, (h, wd), m, x.dtype)
        if _tiled(x):
            tiled.forward(one_plane(gp), wt, np.zeros(c, x.dtype), dxs, gwidth,
                          *tap_table(gwidth, dh, dw))
        else:
            conv3x3_flat(one_plane(gp), wt, np.zeros(c, x.dtype), view, gwidth, *tap_table(gwidth, dh, dw),
                         vec_len(view.shape[2] * gwidth))
        dx = unstacked(dxs, n, grows, (h, wd))
    if need_w:
        xv = saved if saved is not None else one_plane(padded_flat(x, ph, pw, width, rows, dw, m))
        if gp is not None and reuse:
            # g sits at (qh, qw) in gp, and the 2*qw = 2*dw columns between rows are zeros
            gflat, goff = gp, qh * width + qw
        else:
            gflat, goff = padded_flat(g, 0, 0, width, rows if m > 1 else oh, dw, m), 0
        # past OH*width (and between stacked images) gflat holds zeros, so those positions add nothing
        dwt = _weight_grad(xv, gflat, goff, w, tap_table(width, dh, dw), (m * rows - (rows - oh)) * width,
                           (oh, ow), width)
    db = g.sum(axis=(0, 2, 3)) if need_b else None
    return dx, dwt, db


def _unpadded_backward(x, w, g, need_x, need_w, need_b):
    """cpu_conv_masked's passes: the input gradient is the convolution of g with the flipped,
    transposed kernel (padding 1 again), the weight gradient reads x and g as they are."""
    dx = masked.conv3x3(g, _flipped(w), None) if need_x else None
    dw = masked.weight_grad(x, g) if need_w else None
    db = g.sum(axis=(0, 2, 3)) if need_b else None
    return dx, dw, db


def _pointwise_ok(w, padding) -> bool:
    """1x1, no padding: per image a plain product W (K x C) @ x (C x OH*OW)."""
    return w.shape[2:] == (1, 1) and tuple(padding) == (0, 0)


def _subsampled(x, stride, out_hw):
    """The input cells a 1x1 kernel reads: every stride-th row and column (x itself at stride 1)."""
    (sh, sw), (oh, ow) = stride, out_hw
    if (sh, sw) == (1, 1) and x.shape[2:] == (oh, ow):
        return x
    return np.ascontiguousarray(x[:, :, :oh * sh:sh, :ow * sw:sw])


def _pointwise_forward(x, w, b, stride, out_hw, keep):
    xs = _subsampled(x, stride, out_hw)
    n, c, oh, ow = xs.shape
    k = w.shape[0]
    y = np.matmul(w.reshape(k, c), xs.reshape(n, c, oh * ow))
    if b is not None:
        y += b[None, :, None]
    return y.reshape(n, k, oh, ow), (xs if keep and xs is not x else None)


def _pointwise_backward(x, w, g, saved, stride, need_x, need_w, need_b):
    n, k, oh, ow = g.shape
    c = x.shape[1]
    xs = saved if saved is not None else _subsampled(x, stride, (oh, ow))
    g3 = g.reshape(n, k, oh * ow)
    dx = None
    if need_x:
        dxs = np.matmul(w.reshape(k, c).T, g3).reshape(n, c, oh, ow)
        if xs is x:
            dx = dxs
        else:  # the cells no output read get zero
            dx = np.zeros_like(x)
            dx[:, :, :oh * stride[0]:stride[0], :ow * stride[1]:stride[1]] = dxs
    dw = (np.tensordot(g3, xs.reshape(n, c, oh * ow), axes=([0, 2], [0, 2])).reshape(w.shape)
          .astype(w.dtype, copy=False) if need_w else None)
    db = g3.sum(axis=(0, 2)) if need_b else None
    return dx, dw, db


def _live_kernel(w_shape, x_shape, stride, padding, dilation, out_hw):
    """(rows, cols, padding): the kernel's live taps and the padding that keeps them
    reading the same cells; None when every tap is live (or cropping would need a
    negative padding, which only odd dilated geometries reach)."""
    rows = live_taps(w_shape[2], dilation[0], padding[0], out_hw[0], stride[0], x_shape[2])
    cols = live_taps(w_shape[3], dilation[1], padding[1], out_hw[1], stride[1], x_shape[3])
    if rows == (0, w_shape[2]) and cols == (0, w_shape[3]) or rows[0] == rows[1] or cols[0] == cols[1]:
        return None
    pad = (padding[0] - rows[0] * dilation[0], padding[1] - cols[0] * dilation[1])
    return (slice(*rows), slice(*cols), pad) if min(pad) >= 0 else None


def _strided_ok(w, stride, padding, dilation, out_hw) -> bool:
    """3x3, stride 2, no dilation (a ResNet's downsampling conv): the parity-plane pass."""
    return (_DIRECT and _STRIDED and w.shape[2:] == (3, 3) and tuple(stride) == (2, 2)
            and tuple(dilation) == (1, 1) and max(padding) <= 2 and out_hw[0] * (out_hw[1] + 1) >= _STRIDED_MIN_PLANE)


def _forward(x, w, b, stride, padding, dilation, out_hw, keep):
    if _direct_ok(w, stride, padding, dilation) and _direct_pays(x.shape, padding, out_hw, _tiled(x),
                                                                 _unpadded(x, w, stride, padding, dilation, keep)):
        return _direct_forward(x, w, b, stride, padding, dilation, out_hw, keep)
    if _strided_ok(w, stride, padding, dilation, out_hw):
        return _direct_forward(x, w, b, stride, padding, dilation, out_hw, keep)
    if _pointwise_ok(w, padding):
        return _pointwise_forward(x, w, b, stride, out_hw, keep)
    return _im2col_forward(x, w, b, stride, padding, dilation, out_hw, keep)


def _backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    if _direct_ok(w, stride, padding, dilation) and _direct_pays(x.shape, padding, g.shape[2:], _tiled(x),
                                                                 _unpadded(x, w, stride, padding, dilation, True, saved)):
        return _direct_backward(x, w, g, saved, padding, dilation, need_x, need_w, need_b)
    if _strided_ok(w, stride, padding, dilation, g.shape[2:]):
        return _strided_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b)
    if _pointwise_ok(w, padding):
        return _pointwise_backward(x, w, g, saved, stride, need_x, need_w, need_b)
    return _im2col_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b)


@blas_on_caller
def conv2d_forward(x, w, b, stride, padding, dilation, out_hw, keep_columns=False):
    """y[n,k] = sum_c,i,j w[k,c,i,j] * x_pad[n,c,oy*s+i*d, ox*s+j*d] + b[k].

    Returns (y, saved): `saved` goes back to conv2d_backward (what the weight
    gradient can reuse when keep_columns asks for it, else None).
    """
    live = _live_kernel(w.shape, x.shape, stride, padding, dilation, out_hw)
    if live is not None:
        rows, cols, padding = live
        w = np.ascontiguousarray(w[:, :, rows, cols])
    return _forward(x, w, b, stride, padding, dilation, out_hw, keep_columns)


@blas_on_caller
def conv2d_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    """Gradients of conv2d_forward: (dx, dw, db), None where not needed."""
    live = _live_kernel(w.shape, x.shape, stride, padding, dilation, g.shape[2:])
    if live is None:
        return _backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b)
    rows, cols, pad = live
    dx, dw_live, db = _backward(x, np.ascontiguousarray(w[:, :, rows, cols]), g, saved, stride, pad, dilation,
                                need_x, need_w, need_b)
    dw = None
    if dw_live is not None:  # the taps that only ever read padding get zero
        dw = np.zeros_like(w)
        dw[:, :, rows, cols] = dw_live
    return dx, dw, db
