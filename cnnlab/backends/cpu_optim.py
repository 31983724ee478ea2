"""Optimizer updates of the CPU backend, in place on flat views, in PyTorch's order of
operations. cpu.py re-exports the public functions; cuda_optim.py is the GPU twin.

`sgd_steps`/`adam_steps` update a list of parameters at once (on the GPU, one launch);
here they loop over the single-parameter kernels, so both forms give identical numbers.
A parameter under cpu_threads.SERIAL_BELOW elements (all but the widest convolutions' weights)
is updated on the calling thread: a step updates dozens of them, and each parallel call
would wait for the pool's workers (more so on a busy machine) for a few microseconds' work.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._config import NJIT, NJIT_PARALLEL
from . import optim_rules
from .cpu_threads import launch   # most parameters are small: one thread, no wake-up of the pool

_sgd_rule = njit(**NJIT, inline="always")(optim_rules.sgd)
_adam_rule = njit(**NJIT, inline="always")(optim_rules.adam)


@njit(**NJIT_PARALLEL)
def _sgd(p, g, buf, lr, momentum, keep, nesterov, weight_decay, first):
    """PyTorch's single-tensor SGD step, element by element, in the parameters' precision
    (`keep` is 1 - dampening)."""
    for i in prange(p.size):
        p[i], b = _sgd_rule(p[i], g[i], buf[i], lr, momentum, keep, nesterov, weight_decay, first)
        if momentum != 0.0:
            buf[i] = b


@njit(**NJIT, inline="always")
def _adam_moments(d, m, v, w1, b1, b2, w2):
    """The two moving averages, as PyTorch updates them: m.lerp_(g, w1), v.mul_(b2).addcmul_(g, g, w2)."""
    if w1 < 0.5:  # PyTorch's lerp uses the form that is exact at its nearer end
        m = m + w1 * (d - m)
    else:
        m = d - (d - m) * b1
    return m, v * b2 + w2 * d * d


@njit(**NJIT_PARALLEL)
def _adam_plain(p, g, m, v, w1, b1, b2, w2, step_size, bc2_sqrt, eps):
    """Adam without weight decay or amsgrad, in the parameters' own precision and in the
    order of PyTorch's single-tensor Adam (lerp, mul + addcmul, sqrt / bias + eps,
    addcdiv), so float32 parameters follow PyTorch's float32 arithmetic. Branch-free
    apart from the loop-invariant lerp form, so the loop vectorises."""
    for i in prange(p.size):
        mi, vi = _adam_moments(g[i], m[i], v[i], w1, b1, b2, w2)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] + step_size * (mi / (math.sqrt(vi) / bc2_sqrt + eps))


@njit(**NJIT_PARALLEL)
def _adam(p, g, m, v, vmax, w1, b1, b2, w2, step_size, bc2_sqrt, eps, weight_decay, decay_factor, decoupled,
          amsgrad):
    """The general case: weight decay (L2 or decoupled) and/or amsgrad; same order as above."""
    for i in prange(p.size):
        p[i], m[i], v[i], vm = _adam_rule(p[i], g[i], m[i], v[i], vmax[i] if amsgrad else v[i], w1, b1, b2, w2,
                                          step_size, bc2_sqrt, eps, weight_decay, decay_factor, decoupled, amsgrad)
        if amsgrad:
            vmax[i] = vm


def sgd_step(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    dt = p.dtype.type   # float32 parameters get float32 arithmetic, as in PyTorch
    launch(_sgd, p.size, p.reshape(-1), np.ascontiguousarray(g).reshape(-1), buf.reshape(-1), dt(lr), dt(momentum),
           dt(1.0 - dampening), nesterov, dt(weight_decay), first)


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad):
    # scalars are computed in float64 (as PyTorch does in Python) and handed to the
    # kernel in the parameters' dtype, so float32 parameters get float32 arithmetic
    dt = p.dtype.type
    step_size = -lr / (1.0 - beta1 ** step)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    flat = (p.reshape(-1), np.ascontiguousarray(g).reshape(-1), m.reshape(-1), v.reshape(-1))
    common = (dt(1.0 - beta1), dt(beta1), dt(beta2), dt(1.0 - beta2), dt(step_size), dt(bc2_sqrt), dt(eps))
    if weight_decay == 0.0 and not amsgrad:
        launch(_adam_plain, p.size, *flat, *common)
    else:
        launch(_adam, p.size, *flat, vmax.reshape(-1), *common, dt(weight_decay), dt(1.0 - lr * weight_decay),
               decoupled, amsgrad)


def sgd_steps(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, first, maximize):
    for p, g, buf in zip(params, grads, bufs):
        sgd_step(p, -g if maximize else g, buf, lr, momentum, dampening, nesterov, weight_decay, first)


def adam_steps(params, grads, ms, vs, vmaxs, lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad,
               maximize):
    for k, (p, g, m, v) in enumerate(zip(params, grads, ms, vs)):
        adam_step(p, -g if maximize else g, m, v, vmaxs[k] if amsgrad else v, lr, beta1, beta2, eps, weight_decay,
                  decoupled, step, amsgrad)

