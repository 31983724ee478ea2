"""Window arithmetic shared by the CPU convolution and pooling kernels: for a kernel
tap, which outputs read a real input cell rather than padding.

Along one axis, output o's tap t reads input o*stride - padding + t*dilation. The
kernels run each tap's valid outputs as one straight (vectorisable) loop instead of
testing every index, so they need the range [lo, hi) where that input lies in [0, n).

>>> valid_range(5, 1, -1, 5)   # stride 1, tap offset -1: output 0 would read input -1
(1, 5)
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._config import NJIT


@njit(**NJIT)
def valid_range(o_count, stride, offset, n):
    """Outputs o in [lo, hi) whose input index o*stride + offset lies in [0, n)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if n - 1 - offset >= 0:
        hi = (n - 1 - offset) // stride + 1
    if hi > o_count:
        hi = o_count
    if lo > hi:
        lo = hi
    return lo, hi


@njit(**NJIT)
def tap_ranges(k, d, p, o_count, s, n):
    """For each kernel tap t: outputs [lo[t], hi[t]) whose input index o*s - p + t*d is inside [0, n)."""
    lo = np.empty(k, np.int64)
    hi = np.empty(k, np.int64)
    for t in range(k):
        lo[t], hi[t] = valid_range(o_count, s, t * d - p, n)
    return lo, hi
