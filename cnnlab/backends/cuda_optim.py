"""In-place training-state updates of the CUDA backend: optimizer steps over many
parameters in one launch, and batch norm's running statistics (twin of cpu_optim.py).

A step launches once per chunk of parameters, not once per parameter: the kernel takes
tuples of flat arrays (parameters, gradients, state) and a tuple of their sizes; block
row y of the grid updates parameter y, its blocks striding over that parameter's
elements. Tuples are padded to a fixed length with a one-element dummy of size 0, so
each (optimizer, dtype) compiles one kernel whatever the model. A chunk holds at most
_ARRAYS arrays: a numba array argument is 56 bytes and a launch's arguments must fit
in CUDA's 4 KiB.

The update of one element is optim_rules.py's, the CPU's own rule compiled for the GPU.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .. import _config as cfg
from . import cuda_array, optim_rules
from .cuda_array import new

_ARRAYS = 64        # array arguments per launch (56 bytes each; a launch has 4 KiB)
_BLOCKS_X = 1024    # blocks per parameter row at most; they stride over bigger parameters


_sgd_rule = cuda.jit(device=True)(optim_rules.sgd)
_adam_rule = cuda.jit(device=True)(optim_rules.adam)


@cuda.jit(**cfg.CUDA_JIT)
def _sgd_many(ps, gs, bufs, sizes, lr, momentum, keep, nesterov, weight_decay, first, sign):
    k = cuda.blockIdx.y
    p, g, buf = ps[k], gs[k], bufs[k]
    for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, sizes[k], cuda.gridDim.x * cuda.blockDim.x):
        p[i], b = _sgd_rule(p[i], g[i] * sign, buf[i], lr, momentum, keep, nesterov, weight_decay, first)
        if momentum != 0:
            buf[i] = b


@cuda.jit(**cfg.CUDA_JIT)
def _adam_many(ps, gs, ms, vs, vmaxs, sizes, w1, b1, b2, w2, step_size, bc2_sqrt, eps, weight_decay,
               decay_factor, decoupled, amsgrad, sign):
    k = cuda.blockIdx.y
    p, g, m, v, vmax = ps[k], gs[k], ms[k], vs[k], vmaxs[k]
    for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, sizes[k], cuda.gridDim.x * cuda.blockDim.x):
        p[i], m[i], v[i], vm = _adam_rule(p[i], g[i] * sign, m[i], v[i], vmax[i] if amsgrad else v[i], w1, b1, b2,
                                          w2, step_size, bc2_sqrt, eps, weight_decay, decay_factor, decoupled,
                                          amsgrad)
        if amsgrad:
            vmax[i] = vm


_dummies: dict[str, object] = {}


def _dummy(dtype):
    """A one-element buffer that pads a chunk's tuples (its size entry is 0: never touched)."""
    key = np.dtype(dtype).str
    if key not in _dummies:
        _dummies[key] = new((1,), dtype)  # the DeviceArray, not just its buffer: alive, so never pooled
    return _dummies[key].buf


def _launch_chunks(kernel, lists, scalars):
    """Launch `kernel` over the parameters of `lists` (equal-length lists of arrays, the
    first the parameters), in chunks that fit one launch's argument space."""
    per = max(1, _ARRAYS // len(lists))
    threads = int(cfg.CUDA_THREADS)
    params = lists[0]
    for start in range(0, len(params), per):
        rows = range(start, min(start + per, len(params)))
        sizes = np.zeros(per, np.int64)
        sizes[:len(rows)] = [params[i].size for i in rows]
        largest = int(sizes.max())
        if largest == 0:
            continue
        pad = _dummy(params[start].dtype)
        tuples = [tuple(arrays[i].buf for i in rows) + (pad,) * (per - len(rows)) for arrays in lists]
        grid = (min(-(-largest // threads), _BLOCKS_X), len(rows))  # no block rows for the padding
        cuda_array.launch(kernel, grid, threads, *tuples, tuple(int(s) for s in sizes), *scalars)


def sgd_steps(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, first, maximize):
    dt = params[0].dtype.type
    _launch_chunks(_sgd_many, [params, grads, bufs],
                   (dt(lr), dt(momentum), dt(1.0 - dampening), bool(nesterov), dt(weight_decay), bool(first),
                    dt(-1.0 if maximize else 1.0)))


def adam_steps(params, grads, ms, vs, vmaxs, lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad,
               maximize):
    dt = params[0].dtype.type
    step_size = -lr / (1.0 - beta1 ** step)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    _launch_chunks(_adam_many, [params, grads, ms, vs, vmaxs if amsgrad else ms],
                   (dt(1.0 - beta1), dt(beta1), dt(beta2), dt(1.0 - beta2), dt(step_size), dt(bc2_sqrt), dt(eps),
                    dt(weight_decay), dt(1.0 - lr * weight_decay), bool(decoupled), bool(amsgrad),
                    dt(-1.0 if maximize else 1.0)))


def sgd_step(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    sgd_steps([p], [g], [buf], lr, momentum, dampening, nesterov, weight_decay, first, False)


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad):
    adam_steps([p], [g], [m], [v], [vmax], lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad, False)
