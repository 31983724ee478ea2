"""CPU backend: NumPy for plain array maths, numba.njit kernels for the CNN ops.

The contract every backend follows (each function with its signature, in
`contract.py`): functions take and return backend arrays (here numpy.ndarray),
never Tensors; `*_forward` returns what backward needs, `*_backward` returns
gradients. Kernels (`_name`) are private and write into preallocated outputs; the
public wrappers allocate. This file holds the array functions and re-exports the
rest, so `backends.get("cpu")` is the whole backend:

    cpu_conv.py    conv2d forward and backward (1x1 products, im2col + sgemm; routing)
    cpu_conv_direct.py  the direct 3x3 kernels (stride 1, and stride 2 on the even/odd sub-planes)
    cpu_conv_transpose.py  conv_transpose2d: the conv kernels run backwards
    cpu_pool.py    max and average pooling
    cpu_nn.py      linear (BLAS), activations, dropout, softmax, NLL, batch norm
    cpu_optim.py   SGD and Adam updates
    cpu_fused.py   the fused kernels (batch norm statistics, the NLL loss), composed from single ops
    window.py      which outputs a window tap reaches, which taps reach the input (conv and pooling)
    cpu_threads.py small arrays run on the calling thread alone (no worker wake-up)

Matrix products go to BLAS (sgemm through NumPy): no hand-written loop in
numba comes near it, and numba's own np.dot would call the same library. Tiny 2-D
products are the exception (see `matmul`): they are summed in order, as PyTorch does.
"""
from __future__ import annotations

import sys

import numpy as np
import numba

from .._config import NJIT, NJIT_PARALLEL, QUIET
from .cpu_conv import conv2d_backward, conv2d_forward  # noqa: F401 - the backend contract
from .cpu_conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward  # noqa: F401 - the contract
from .cpu_nn import (  # noqa: F401 - the backend contract
    batch_norm_backward, batch_norm_forward, batch_norm_relu_backward, batch_norm_relu_forward, batch_norm_stats,
    dropout_mask, first_bad_target, linear_backward, linear_forward, log_softmax_backward, log_softmax_forward,
    nll_backward, nll_forward, relu_backward, relu_forward, sigmoid_backward, sigmoid_forward, softmax_backward,
    softmax_forward, tanh_backward, tanh_forward,
)
from .cpu_fused import (  # noqa: F401 - the backend contract
    batch_norm_invstd, batch_norm_train_stats, nll_loss_backward, nll_loss_forward,
)
from .cpu_optim import adam_step, adam_steps, sgd_step, sgd_steps  # noqa: F401 - the backend contract
from .cpu_pool import (  # noqa: F401 - the backend contract
    avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
)
from .cpu_threads import launch as _launch

name = "cpu"


# ----------------------------------------------------------------------------
# arrays
# ----------------------------------------------------------------------------

def asarray(data, dtype=None) -> np.ndarray:
    return np.asarray(data, dtype=dtype)


def to_numpy(a: np.ndarray) -> np.ndarray:
    return a


def from_numpy(a: np.ndarray) -> np.ndarray:
    return a


def empty(shape, dtype) -> np.ndarray:
    return np.empty(shape, dtype)


def zeros(shape, dtype) -> np.ndarray:
    return np.zeros(shape, dtype)


def full(shape, value, dtype) -> np.ndarray:
    return np.full(shape, value, dtype)


def copy(a):
    return a.copy()


def astype(a, dtype):
    return a.astype(dtype, copy=False)


# ----------------------------------------------------------------------------
# elementwise, reductions, shapes (NumPy does these well; the GPU twin needs kernels)
# ----------------------------------------------------------------------------

def add(a, b):
    """NumPy's add; two large float arrays of one shape are added on numba's threads (a
    ResNet step's residual sums, forward and backward: NumPy adds on one core). The same
    bits either way: one IEEE addition per element."""
    if (type(a) is np.ndarray and type(b) is np.ndarray and a.shape == b.shape and a.dtype == b.dtype
            and a.size >= _THREADED_ADD and a.dtype in (np.float32, np.float64)
            and a.flags.c_contiguous and b.flags.c_contiguous):
        out = np.empty_like(a)
        _launch(_add_flat, a.size, a.reshape(-1), b.reshape(-1), out.reshape(-1))
        return out
    return np.add(a, b)


_THREADED_ADD = 1 << 18   # elements: at 1 << 16 the threads cost more than they saved (1.12x), from here 0.77x


@numba.njit(**NJIT_PARALLEL)
def _add_flat(a, b, out):
    for i in numba.prange(out.size):
        out[i] = a[i] + b[i]


subtract = np.subtract
multiply = np.multiply
divide = np.divide
negative = np.negative
power = np.power
exp = np.exp
log = np.log
sqrt = np.sqrt
absolute = np.abs
sign = np.sign
maximum = np.maximum
where = np.where
equal = np.equal
not_equal = np.not_equal
less = np.less
less_equal = np.less_equal
greater = np.greater
greater_equal = np.greater_equal
logical_and = np.logical_and
logical_or = np.logical_or
clip = np.clip

# Tiny products are summed in order, one rounding per multiply and per add, as PyTorch's CPU build
# (MKL) does below its fused-multiply-add tiles and as a loop of `+= a * b` does (d2l's channels
# chapter asserts matmul == that loop to 1e-6). Above, BLAS's FMA tiles are used by both libraries
# and np.matmul already equals PyTorch bit for bit (measured 16^3, 32^3, 64^3). MKL's tiles start at
# 4 rows x 12 columns; past 4096 multiply-adds the in-order loop would also start to cost time.
_ORDERED_MAX_MACS = 4096


@numba.njit(**NJIT)  # no fastmath: LLVM must not fuse a * b + s into one rounding
def _ordered_matmul(a, b, out):
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            s = a[i, 0] * b[0, j]
            for p in range(1, a.shape[1]):
                s += a[i, p] * b[p, j]
            out[i, j] = s


def matmul(a, b):
    if a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype.kind != "f" or a.dtype.itemsize < 4:
        return np.matmul(a, b)
    (m, k), n = a.shape, b.shape[1]
    if k == 0 or k != b.shape[0] or m * k * n > _ORDERED_MAX_MACS or (m >= 4 and n >= 12):
        return np.matmul(a, b)  # also for NumPy's shape error
    out = np.empty((m, n), a.dtype)
    _ordered_matmul(a, b, out)
    return out


def sum(a, axis=None, keepdims=False):  # noqa: A001 - the backend contract's name
    return np.sum(a, axis=axis, keepdims=keepdims)


def amax(a, axis=None, keepdims=False):
    return np.max(a, axis=axis, keepdims=keepdims)


def argmax(a, axis=None, keepdims=False):
    return np.argmax(a, axis=axis, keepdims=keepdims)


def reshape(a, shape):
    return np.reshape(a, shape)


def transpose(a, axes):
    return np.transpose(a, axes)


def broadcast_to(a, shape):
    return np.broadcast_to(a, shape)


def ascontiguous(a):
    return a if a.flags.c_contiguous else np.array(a, order="C")  # keeps 0-d arrays 0-d


def concatenate(arrays, axis):
    return np.concatenate(arrays, axis=axis)


def split(a, indices, axis):
    return np.split(a, indices, axis=axis)


def pad2d(a, top, bottom, left, right, value=0.0):
    """Zero (or `value`) border around the last two axes."""
    widths = [(0, 0)] * (a.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(a, widths, constant_values=value)


def unpad2d(a, top, bottom, left, right):
    h, w = a.shape[-2:]
    return np.ascontiguousarray(a[..., top:h - bottom, left:w - right])


def getitem(a, index):
    return a[index]


def index_add(shape, dtype, index, values):
    """zeros(shape)[index] += values, with repeated indices accumulating."""
    out = np.zeros(shape, dtype)
    np.add.at(out, index, values)
    return out


def sum_to_shape(g, shape):
    """Undo broadcasting: sum g down to `shape`."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)



def random_uniform(rng: np.random.Generator, shape, low, high, dtype):
    return rng.uniform(low, high, size=shape).astype(dtype)


def random_normal(rng: np.random.Generator, shape, mean, std, dtype):
    return rng.normal(mean, std, size=shape).astype(dtype)



# ----------------------------------------------------------------------------
# first-run notice
# ----------------------------------------------------------------------------

def _announce_compiles() -> None:
    """Say once, on stderr, when numba starts compiling one of these kernels.

    Loading a kernel from numba's cache raises no compile event, so a warm
    start stays silent; a cold one (first run, new numba, changed source) says why it waits.
    """
    try:
        from numba.core import event
    except ImportError:  # numba moved its event API: stay silent rather than break
        return

    class _Once(event.Listener):
        told = False

        def on_start(self, ev):
            disp = getattr(ev, "data", {}).get("dispatcher") if isinstance(getattr(ev, "data", None), dict) else None
            module = getattr(getattr(disp, "py_func", None), "__module__", "")
            if not self.told and module.startswith(__name__):
                self.told = True
                print("cnnlab: compiling CPU kernels (first run only, up to a minute; cached afterwards)...",
                      file=sys.stderr, flush=True)

        def on_end(self, ev):
            pass

    event.register("numba:compile", _Once())


if not QUIET:
    _announce_compiles()
