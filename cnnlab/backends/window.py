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


def live_taps(k: int, d: int, p: int, o_count: int, s: int, n: int) -> tuple[int, int]:
    """The kernel taps [first, stop) that read a real input cell for at least one output.

    The others see only padding: a 3x3 window with padding 1 over a 1x1 plane (a ResNet's
    last stage on small images) reads real input through its centre tap alone, so the
    convolution is a 1x1 one. Cropping a kernel to this range leaves its result unchanged
    (a dead tap inside the range, possible with strides over tiny inputs, just reads
    padding as before). Plain Python: it runs once per call, on shapes, not data.

    >>> live_taps(3, 1, 1, 1, 1, 1)
    (1, 2)
    """
    live = []
    for t in range(k):
        off = t * d - p
        lo = -(off // s) if off < 0 else 0          # ceil(-off / s) for a negative offset
        hi = min(o_count, (n - 1 - off) // s + 1) if n - 1 - off >= 0 else 0
        if lo < hi:
            live.append(t)
    return (live[0], live[-1] + 1) if live else (0, 0)
