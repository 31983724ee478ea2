"""Transposed convolution on the CPU: the convolution kernels of cpu_conv.py, run backwards.

A transposed convolution with weight W (C_in, C_out, kh, kw) is, by definition, the
input gradient of the convolution with the same W read as (K=C_in, C=C_out, kh, kw),
stride, padding and dilation: every input cell scatters itself times the kernel onto
the output. So there is no new loop here, only the conv kernels used in the other
direction (this is also how PyTorch computes it):

    forward         = conv2d_backward's input gradient (W^T @ x, then col2im; or the
                      direct 3x3 pass with the flipped kernel), with x as the "output gradient"
    input gradient  = conv2d_forward of the output gradient (a plain convolution)
    weight gradient = conv2d_backward's weight gradient with input and output swapped
"""
from __future__ import annotations

import numpy as np

from .cpu_conv import conv2d_backward, conv2d_forward


def _shape_only(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A read-only zero array of `shape` that owns no memory: conv2d_backward asked only
    for the input gradient reads nothing but its x's shape and dtype."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def conv_transpose2d_forward(x, w, b, stride, padding, dilation, out_hw):
    """y[n,o] = sum_c,i,j x[n,c,i,j] * w[c,o,:,:] scattered at (i*s - p, j*s - p), dilated by d, + b[o].

    Returns (y, None): backward needs only x and w.
    """
    n = x.shape[0]
    like = _shape_only((n, w.shape[1]) + tuple(out_hw), x.dtype)
    y, _, _ = conv2d_backward(like, w, x, None, stride, padding, dilation, True, False, False)
    if b is not None:
        y += b[None, :, None, None]
    return y, None


def conv_transpose2d_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    """Gradients of conv_transpose2d_forward: (dx, dw, db), None where not needed."""
    dx = conv2d_forward(g, w, None, stride, padding, dilation, x.shape[2:])[0] if need_x else None
    dw = conv2d_backward(g, w, x, None, stride, padding, dilation, False, True, False)[1] if need_w else None
    db = g.sum(axis=(0, 2, 3)) if need_b else None
    return dx, dw, db
