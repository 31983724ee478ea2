"""Plain NumPy references written as the textbook loops: one output cell at a time.

They follow PyTorch's documented definitions (torch.nn.Conv2d, MaxPool2d, AvgPool2d)
and share no code with cnnlab.
"""
from __future__ import annotations

import math

import numpy as np


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """floor((n + 2p - d(k-1) - 1)/s) + 1; with ceil_mode PyTorch rounds up but drops a last
    window that would start in the right padding."""
    span = n + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return math.floor(span / s) + 1
    out = math.ceil(span / s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return out


def same_padding(k: int, d: int) -> tuple[int, int]:
    """PyTorch's padding='same': total d*(k-1), the odd pixel going to the end (bottom/right)."""
    total = d * (k - 1)
    return total // 2, total - total // 2


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """y[n, k, oy, ox] = b[k] + sum_{c,i,j} w[k, c, i, j] * xpad[n, c, oy*sh + i*dh, ox*sw + j*dw]."""
    n, c, h, wd = x.shape
    k, c2, kh, kw = w.shape
    assert c == c2
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    if padding == "valid":
        pads = (0, 0), (0, 0)
    elif padding == "same":
        pads = same_padding(kh, dh), same_padding(kw, dw)
    else:
        ph, pw = pair(padding)
        pads = (ph, ph), (pw, pw)
    xp = np.zeros((n, c, h + sum(pads[0]), wd + sum(pads[1])), x.dtype)
    xp[:, :, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + wd] = x
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, k, oh, ow), np.result_type(x, w))
    for oy in range(oh):
        for ox in range(ow):
            for i in range(kh):
                for j in range(kw):
                    patch = xp[:, :, oy * sh + i * dh, ox * sw + j * dw]      # (n, c)
                    y[:, :, oy, ox] += patch @ w[:, :, i, j].T                # (n, k)
    if b is not None:
        y += b[None, :, None, None]
    return y


def pool2d(x, mode, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
           count_include_pad=True, divisor_override=None):
    """mode 'max', 'avg' or 'sum'. Max ignores padding (it is -inf); avg divides by the window
    clipped to the padded input (count_include_pad) or to the real input; sum adds the real cells."""
    n, c, h, w = x.shape
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    oh = out_size(h, kh, sh, ph, dh, ceil_mode)
    ow = out_size(w, kw, sw, pw, dw, ceil_mode)
    y = np.zeros((n, c, oh, ow), x.dtype)
    for oy in range(oh):
        for ox in range(ow):
            if mode == "max":
                cells = [x[:, :, iy, ix]
                         for iy in (oy * sh - ph + i * dh for i in range(kh)) if 0 <= iy < h
                         for ix in (ox * sw - pw + j * dw for j in range(kw)) if 0 <= ix < w]
                y[:, :, oy, ox] = np.max(cells, axis=0)
                continue
            y0, x0 = oy * sh - ph, ox * sw - pw
            y1, x1 = min(y0 + kh, h + ph), min(x0 + kw, w + pw)
            padded_count = (y1 - y0) * (x1 - x0)
            y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
            total = x[:, :, y0:y1, x0:x1].sum(axis=(2, 3))
            if mode == "sum":
                y[:, :, oy, ox] = total
            elif divisor_override:
                y[:, :, oy, ox] = total / divisor_override
            else:
                y[:, :, oy, ox] = total / (padded_count if count_include_pad else (y1 - y0) * (x1 - x0))
    return y
