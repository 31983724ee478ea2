"""CUDA backend: numba.cuda kernels with the names and contracts of `cpu.py`
(listed, with signatures, in `contract.py`).

Functions take and return `DeviceArray`s (a C-contiguous numba device array with
its shape and dtype) where cpu.py takes NumPy arrays. Data crosses the bus only in
`from_numpy`/`asarray` (host to device) and `to_numpy` (device to host); every
other function launches kernels on data already on the GPU, so a training step
moves the batch in and the loss out. Class labels are checked on the host, from the
copy they were uploaded from (cuda_nn.py), so a bad label raises a clear error without
a read-back; cuda_alloc.COUNTS counts launches and copies, and tests hold them down.

The backend is split like the CPU one, file by file:

    cuda_array.py   DeviceArray, launches, creation, elementwise, views, indexing
    cuda_alloc.py   device memory: the buffer pool, traffic counters (launches, copies, allocations)
    cuda_launch.py  launch checks against the device's limits, readable launch errors, compile notice
    cuda_math.py    where, clip, matmul (tiled gemm), reductions, joins and pads
    cuda_conv.py    conv2d and conv_transpose2d, forward and backward (twin of cpu_conv*.py)
    cuda_pool.py    max and average pooling              (twin of cpu_pool.py)
    cuda_nn.py      linear, activations, dropout, softmax, NLL, batch norm (twin of cpu_nn.py)
    cuda_optim.py   SGD and Adam updates                 (twin of cpu_optim.py)

Public wrappers validate and allocate; kernels (`_name`) write into preallocated
outputs. Where the GPU twin differs from the CPU's algorithm, each file says why.

Host fallbacks (never in a training step): fancy indexing (integer or boolean
index arrays in `getitem`, `index_add` and item assignment) copies to the host and
back; `random_uniform`/`random_normal` draw on the host with the CPU's generator,
so a model initialised on 'cuda' gets the CPU's weights, and upload them.

NUMBA_ENABLE_CUDASIM=1 runs these kernels in numba's simulator on the CPU, which is
how tests/cuda checks each function against its cpu.py twin without a GPU.
"""
from __future__ import annotations

from numba.core import config as _numba_config

from .cuda_array import (  # noqa: F401 - the backend contract
    DeviceArray, absolute, add, ascontiguous, asarray, astype, broadcast_to, copy, divide, empty, equal, exp,
    full, getitem, greater, greater_equal, less, less_equal, log, logical_and, logical_or, maximum,
    multiply, negative, not_equal, power, random_normal, random_uniform, reshape, sign, sqrt, subtract, to_numpy,
    transpose, zeros,
)
from .cuda_conv import (  # noqa: F401 - the backend contract
    conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward,
)
from .cuda_math import (  # noqa: F401 - the backend contract
    amax, argmax, clip, concatenate, index_add, matmul, pad2d, split, sum, sum_to_shape, unpad2d, where,
)
from .cuda_nn import (  # noqa: F401 - the backend contract
    batch_norm_backward, batch_norm_forward, batch_norm_invstd, batch_norm_relu_backward, batch_norm_relu_forward,
    batch_norm_stats, batch_norm_train_stats, dropout_mask, first_bad_target, from_numpy, linear_backward, linear_forward, log_softmax_backward,
    log_softmax_forward, nll_backward, nll_forward, nll_loss_backward, nll_loss_forward, relu_backward,
    relu_forward, sigmoid_backward, sigmoid_forward, softmax_backward, softmax_forward, tanh_backward, tanh_forward,
)
from .cuda_optim import adam_step, adam_steps, sgd_step, sgd_steps  # noqa: F401 - the backend contract
from .cuda_pool import (  # noqa: F401 - the backend contract
    avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
)

name = "cuda"
SIMULATOR = bool(_numba_config.ENABLE_CUDASIM)
# The compile notice prints once, before the first kernel that numba's disk cache does not
# hold compiles (cuda_launch.before_compile): the first run only, not at every import.
