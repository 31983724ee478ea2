"""Optimizer updates of the CUDA backend, in place on flat buffers, one thread per element."""
from __future__ import annotations

import math

from numba import cuda

from .cuda_array import launch_flat

@cuda.jit
def _sgd(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first, n):
    i = cuda.grid(1)
    if i < n:
        d = g[i]
        if weight_decay != 0.0:
            d += weight_decay * p[i]
        if momentum != 0.0:
            if first:
                b = d
            else:
                b = momentum * buf[i] + (1.0 - dampening) * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] -= lr * d


@cuda.jit
def _adam(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step_size, sq_bc2, amsgrad, n):
    i = cuda.grid(1)
    if i < n:
        d = g[i]
        if weight_decay != 0.0:
            if decoupled:
                p[i] *= 1.0 - lr * weight_decay
            else:
                d += weight_decay * p[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * d
        v[i] = beta2 * v[i] + (1.0 - beta2) * d * d
        if amsgrad:
            if v[i] > vmax[i]:
                vmax[i] = v[i]
            denom = math.sqrt(vmax[i]) / sq_bc2 + eps
        else:
            denom = math.sqrt(v[i]) / sq_bc2 + eps
        p[i] -= step_size * m[i] / denom


def sgd_step(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    launch_flat(_sgd, p.size, p.buf, g.buf, buf.buf, float(lr), float(momentum), float(dampening), bool(nesterov),
                float(weight_decay), bool(first), p.size)


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad):
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    launch_flat(_adam, p.size, p.buf, g.buf, m.buf, v.buf, vmax.buf, float(lr), float(beta1), float(beta2),
                float(eps), float(weight_decay), bool(decoupled), float(lr / bc1), float(math.sqrt(bc2)),
                bool(amsgrad), p.size)

