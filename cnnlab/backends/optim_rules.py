"""SGD's and Adam's update of one element, in PyTorch's order of operations: plain Python,
compiled by each backend for itself (numba.njit in cpu_optim.py, cuda.jit(device=True) in
cuda_optim.py), so both devices run the very same rule. Scalars arrive in the parameters'
dtype, so float32 parameters get float32 arithmetic everywhere.
"""
from __future__ import annotations

import math


def sgd(p, d, buf, lr, momentum, keep, nesterov, weight_decay, first):
    """-> (new p, new momentum buffer); `d` the gradient, `keep` 1 - dampening."""
    if weight_decay != 0:
        d = d + weight_decay * p
    if momentum != 0:
        if first:
            buf = d
        else:
            buf = buf * momentum + keep * d
        d = d + momentum * buf if nesterov else buf
    return p - lr * d, buf


def adam(p, d, m, v, vmax, w1, b1, b2, w2, step_size, bc2_sqrt, eps, weight_decay, decay_factor, decoupled,
         amsgrad):
    """-> (new p, m, v, vmax): weight decay L2 or decoupled (AdamW), optional amsgrad; m follows
    PyTorch's lerp, in the form that is exact at its nearer end; step_size is -lr / bias correction 1."""
    if decoupled:
        p = p * decay_factor
    elif weight_decay != 0:
        d = d + weight_decay * p
    if w1 < 0.5:
        m = m + w1 * (d - m)
    else:
        m = d - (d - m) * b1
    v = v * b2 + w2 * d * d
    if amsgrad and v > vmax:
        vmax = v
    return p + step_size * (m / (math.sqrt(vmax if amsgrad else v) / bc2_sqrt + eps)), m, v, vmax
