"""The dense layer on the CPU backend: BLAS, and for a few rows a numba forward pass
that reads each weight row once.

With a handful of rows (the PyTorch CIFAR-10 tutorial trains at batch 4) the forward
product x @ w.T is bound by reading the weight, and OpenBLAS packs the transposed weight
for every call: (4, 4608) @ (4608, 64) took 130 us alone and 240 us inside a SimpleCNN
step, against about 85 us for PyTorch's. Up to SMALL_ROWS rows it is a numba kernel here
(one weight row per task, dotted with every input row; each output one thread's sum in a
fixed order, so the bits do not depend on the thread count): 62 us. The two gradient
products read w, or write dw, in BLAS's own order and measured as fast as this kernel
would be (52 and 65 us), so they stay BLAS; so does a forward pass of more rows, where the
packing pays for itself.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._config import NJIT_SUMS
from .cpu_threads import blas_on_caller, launch

SMALL_ROWS = 16


@njit(**NJIT_SUMS)
def _x_wt(x, w, y):
    """y[m, o] = sum_i x[m, i] * w[o, i]: one weight row per task, dotted with every row of x."""
    rows, n = x.shape
    for o in prange(w.shape[0]):
        wr = w[o]
        for m in range(rows):
            xr = x[m]
            s = xr[0] * wr[0]   # in the inputs' own precision, as BLAS sums (n >= 1)
            for i in range(1, n):
                s += xr[i] * wr[i]
            y[m, o] = s


def _few_rows(x2: np.ndarray, w: np.ndarray) -> bool:
    return (x2.shape[0] <= SMALL_ROWS and x2.shape[1] > 0 and x2.dtype == w.dtype
            and x2.dtype in (np.float32, np.float64))


@blas_on_caller
def linear_forward(x, w, b):
    x2 = x.reshape(-1, x.shape[-1])
    if not _few_rows(x2, w):
        y = x @ w.T
    else:
        y2 = np.empty((x2.shape[0], w.shape[0]), x.dtype)
        launch(_x_wt, w.size, np.ascontiguousarray(x2), np.ascontiguousarray(w), y2)
        y = y2.reshape(x.shape[:-1] + (w.shape[0],))
    if b is not None:
        y += b
    return y


@blas_on_caller
def linear_backward(x, w, g, need_x, need_w, need_b):
    x2 = x.reshape(-1, x.shape[-1])
    g2 = g.reshape(-1, g.shape[-1])
    dx = (g @ w) if need_x else None      # both read w (or write dw) in its own order: BLAS is fine
    dw = (g2.T @ x2) if need_w else None
    db = g2.sum(axis=0) if need_b else None
    return dx, dw, db
