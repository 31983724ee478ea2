"""CUDA backend: numba.cuda kernels with the names and contracts of `cpu.py`.

Functions take and return `DeviceArray`s (a C-contiguous numba device array with
its shape and dtype) where cpu.py takes NumPy arrays. Data crosses the bus only in
`from_numpy`/`asarray` (host to device) and `to_numpy` (device to host); every
other function launches kernels on data already on the GPU, so a training step
moves the batch in and the loss out. One more read-back: `first_bad_target` reads
one integer so that a bad class label raises a clear error, not a device assert.

The file follows cpu.py section by section. Public wrappers validate and
allocate; kernels (`_name`) write into preallocated outputs and are launched by
`_launch`. Launch shapes are cnnlab._config's CUDA_* values, read at each launch.

Where the GPU twin differs from the CPU's algorithm, and why:
* convolution is direct (one thread per output cell, CUDA_CONV_CHANNELS output
  channels each; `cnnlab.cuda_layout` maps cells to blocks and threads), not
  im2col + sgemm: no column buffer, and the teaching map is one thread per cell.
  The weight gradient is one block per (out, in) channel pair reducing over the batch.
* max-pool backward adds with atomics (windows may overlap); the rest gather.
* sums accumulate in float64 and reduce as a tree, so they differ from NumPy's
  pairwise float32 sums in the last bits.
* dropout masks come from xoroshiro128+ generators on the device, seeded once from
  cnnlab's host generator: reproducible after manual_seed, but not the CPU's masks.

Host fallbacks (never in a training step): fancy indexing (integer or boolean
index arrays in `getitem`, `index_add` and item assignment) copies to the host and
back; `random_uniform`/`random_normal` draw on the host with the CPU's generator,
so a model initialised on 'cuda' gets the CPU's weights, and upload them.

NUMBA_ENABLE_CUDASIM=1 runs these kernels in numba's simulator on the CPU, which is
how tests/cuda checks each function against its cpu.py twin without a GPU.
"""
from __future__ import annotations

import builtins
import functools
import math
import sys

import numba
import numpy as np
from numba import cuda
from numba.core import config as _numba_config
from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_uniform_float32

from .. import _config as cfg
from ..cuda_layout import grid as _cell_grid

name = "cuda"
SIMULATOR = bool(_numba_config.ENABLE_CUDASIM)


# ----------------------------------------------------------------------------
# arrays
# ----------------------------------------------------------------------------
# Freed buffers go back to a pool keyed by (length, dtype): a training loop
# allocates the same sizes every step, and cudaMalloc per op would cost more than
# the small kernels themselves. Reuse is safe because every kernel runs on the
# default stream, in order.

_free: dict[tuple[int, str], list] = {}
_free_bytes = [0]


class _Block:
    """One device buffer; when the last DeviceArray viewing it dies, it returns to the pool."""

    __slots__ = ("buf", "key")

    def __init__(self, n: int, dtype: np.dtype):
        self.key = (max(int(n), 1), dtype.str)
        stack = _free.get(self.key)
        if stack:
            self.buf = stack.pop()
            _free_bytes[0] -= self.buf.nbytes
            return
        try:
            self.buf = cuda.device_array(self.key[0], dtype)
        except Exception:  # out of memory: drop the pool and try once more
            _free.clear()
            _free_bytes[0] = 0
            self.buf = cuda.device_array(self.key[0], dtype)

    def __del__(self):
        try:
            if _free_bytes[0] + self.buf.nbytes <= cfg.CUDA_POOL_BYTES:
                _free.setdefault(self.key, []).append(self.buf)
                _free_bytes[0] += self.buf.nbytes
        except Exception:  # interpreter shutdown
            pass


class DeviceArray:
    """A C-contiguous numba device array plus the few ndarray manners the engine's
    device-neutral code relies on (shape, dtype, astype, reshape, indexing, & | ~,
    comparisons, arithmetic), each done by a kernel of this module.

    NumPy never touches the data: `__array_ufunc__ = None` makes a stray np.add(...)
    raise instead of silently copying to the host.
    """

    __slots__ = ("block", "shape", "dtype", "size")
    __array_ufunc__ = None

    def __init__(self, block: _Block, shape, dtype):
        self.block = block
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.size = math.prod(self.shape)

    @property
    def buf(self):
        """The flat numba device array (at least one element long)."""
        return self.block.buf

    def nd(self):
        """The data as an N-d numba array, for kernels that index by axes."""
        return self.block.buf.reshape(self.shape) if self.shape and self.size else self.block.buf

    ndim = property(lambda self: len(self.shape))
    itemsize = property(lambda self: self.dtype.itemsize)
    nbytes = property(lambda self: self.size * self.dtype.itemsize)
    T = property(lambda self: transpose(self, tuple(reversed(range(self.ndim)))))

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype})"

    def reshape(self, *shape):
        return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def astype(self, dtype, copy: bool = True):
        return _cast(self, np.dtype(dtype)) if copy or np.dtype(dtype) != self.dtype else self

    def copy(self):
        return copy(self)

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return transpose(self, tuple(axes) or tuple(reversed(range(self.ndim))))

    def __getitem__(self, index):
        return getitem(self, index)

    def __setitem__(self, index, value):
        _setitem(self, index, value)

    # operators, for device-neutral code that writes `a & b` or `a >= b`
    __and__ = lambda self, o: _binary("bitwise_and", self, o)  # noqa: E731
    __or__ = lambda self, o: _binary("bitwise_or", self, o)  # noqa: E731
    __invert__ = lambda self: _unary("invert", self)  # noqa: E731
    __eq__ = lambda self, o: equal(self, o)  # noqa: E731
    __ne__ = lambda self, o: not_equal(self, o)  # noqa: E731
    __lt__ = lambda self, o: less(self, o)  # noqa: E731
    __le__ = lambda self, o: less_equal(self, o)  # noqa: E731
    __gt__ = lambda self, o: greater(self, o)  # noqa: E731
    __ge__ = lambda self, o: greater_equal(self, o)  # noqa: E731
    __add__ = __radd__ = lambda self, o: add(self, o)  # noqa: E731
    __sub__ = lambda self, o: subtract(self, o)  # noqa: E731
    __rsub__ = lambda self, o: subtract(o, self)  # noqa: E731
    __mul__ = __rmul__ = lambda self, o: multiply(self, o)  # noqa: E731
    __truediv__ = lambda self, o: divide(self, o)  # noqa: E731
    __rtruediv__ = lambda self, o: divide(o, self)  # noqa: E731
    __pow__ = lambda self, o: power(self, o)  # noqa: E731
    __neg__ = lambda self: negative(self)  # noqa: E731
    __hash__ = None


def _launch(kernel, grid, block, *args):
    """Every launch goes through here (tests wrap it to compile each kernel to PTX)."""
    kernel[grid, block](*args)


def _launch_flat(kernel, n: int, *args):
    """One thread per element i < n, blocks of CUDA_THREADS."""
    if n > 0:
        t = cfg.CUDA_THREADS
        _launch(kernel, (n + t - 1) // t, t, *args)


def _launch_cells(kernel, out_shape, channels_per_thread, *args):
    """One thread per output cell of an (N, K, H, W) output; see cnnlab.cuda_layout."""
    if math.prod(out_shape) > 0:
        block = tuple(cfg.CUDA_BLOCK_2D)
        _launch(kernel, _cell_grid(out_shape, block, channels_per_thread), block, *args)


def _reduce_threads() -> int:
    t = int(cfg.CUDA_REDUCE_THREADS)
    return 1 << (t.bit_length() - 1)  # the tree halves: keep a power of two


def _kernel_factory(fn):
    """Cache a function that builds a kernel for some constants; tag each kernel with
    how to build it again (tests rebuild them outside the simulator to compile PTX)."""
    @functools.lru_cache(maxsize=None)
    def build(*args):
        kernel = fn(*args)
        kernel.cnnlab_rebuild = (fn.__name__, args)
        return kernel

    build.__name__ = fn.__name__
    return build


def _new(shape, dtype) -> DeviceArray:
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    return DeviceArray(_Block(math.prod(shape), dtype), shape, dtype)


def asarray(data, dtype=None) -> DeviceArray:
    if isinstance(data, DeviceArray):
        return data if dtype is None else astype(data, dtype)
    return from_numpy(np.asarray(data, dtype=dtype))


def to_numpy(a: DeviceArray) -> np.ndarray:
    if a.size == 0:
        return np.empty(a.shape, a.dtype)
    return a.buf.copy_to_host().reshape(a.shape)


def from_numpy(a) -> DeviceArray:
    if isinstance(a, DeviceArray):
        return a
    a = np.asarray(a)
    a = np.ascontiguousarray(a).reshape(a.shape)  # ascontiguousarray alone makes 0-d arrays 1-d
    if a.size == 0:
        return _new(a.shape, a.dtype)
    block = _Block.__new__(_Block)
    block.key = (a.size, a.dtype.str)
    block.buf = cuda.to_device(a.reshape(-1))
    return DeviceArray(block, a.shape, a.dtype)


def empty(shape, dtype) -> DeviceArray:
    return _new(shape, dtype)


def zeros(shape, dtype) -> DeviceArray:
    return full(shape, 0, dtype)


def full(shape, value, dtype) -> DeviceArray:
    out = _new(shape, dtype)
    _launch_flat(_fill, out.size, out.buf, out.dtype.type(value))
    return out


def copy(a: DeviceArray) -> DeviceArray:
    return _cast(a, a.dtype)


def astype(a: DeviceArray, dtype) -> DeviceArray:
    dtype = np.dtype(dtype)
    return a if dtype == a.dtype else _cast(a, dtype)


def _cast(a: DeviceArray, dtype) -> DeviceArray:
    out = _new(a.shape, dtype)
    _launch_flat(_unary_kernel("copy"), out.size, a.buf, out.buf)
    return out


@cuda.jit
def _fill(out, value):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = value


# ----------------------------------------------------------------------------
# elementwise, reductions, shapes (one kernel per op family; NumPy's dtype rules)
# ----------------------------------------------------------------------------

def _nan_max(a, b):
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


def _sign(a):
    return 1 if a > 0 else (-1 if a < 0 else a)  # 0 and NaN are their own sign


_BINARY = {
    "add": (np.add, lambda a, b: a + b),
    "subtract": (np.subtract, lambda a, b: a - b),
    "multiply": (np.multiply, lambda a, b: a * b),
    "divide": (np.divide, lambda a, b: a / b),
    "power": (np.power, lambda a, b: a ** b),
    "maximum": (np.maximum, _nan_max),
    "equal": (np.equal, lambda a, b: a == b),
    "not_equal": (np.not_equal, lambda a, b: a != b),
    "less": (np.less, lambda a, b: a < b),
    "less_equal": (np.less_equal, lambda a, b: a <= b),
    "greater": (np.greater, lambda a, b: a > b),
    "greater_equal": (np.greater_equal, lambda a, b: a >= b),
    "logical_and": (np.logical_and, lambda a, b: a != 0 and b != 0),
    "logical_or": (np.logical_or, lambda a, b: a != 0 or b != 0),
    "bitwise_and": (np.bitwise_and, lambda a, b: a & b),
    "bitwise_or": (np.bitwise_or, lambda a, b: a | b),
}

_UNARY = {
    "copy": (None, lambda a: a),
    "negative": (np.negative, lambda a: -a),
    "exp": (np.exp, lambda a: math.exp(a)),
    "log": (np.log, lambda a: math.log(a)),
    "sqrt": (np.sqrt, lambda a: math.sqrt(a)),
    "absolute": (np.abs, lambda a: abs(a)),
    "sign": (np.sign, _sign),
    "invert": (np.invert, lambda a: ~a),
    "logical_not": (np.logical_not, lambda a: not a),
}


@cuda.jit(device=True)
def _offset(i, shape, strides):
    """Element offset of flat index i of a strided view (C order over `shape`)."""
    o = 0
    for d in range(len(shape) - 1, -1, -1):
        q = i % shape[d]
        i //= shape[d]
        o += q * strides[d]
    return o


@_kernel_factory
def _binary_kernel(op, variant):
    f = cuda.jit(device=True)(_BINARY[op][1])
    if variant == "same":
        def kernel(a, b, out):
            i = cuda.grid(1)
            if i < out.size:
                out[i] = f(a[i], b[i])
    elif variant == "array_scalar":
        def kernel(a, s, out):
            i = cuda.grid(1)
            if i < out.size:
                out[i] = f(a[i], s)
    elif variant == "scalar_array":
        def kernel(s, b, out):
            i = cuda.grid(1)
            if i < out.size:
                out[i] = f(s, b[i])
    else:  # broadcast: each operand walks the output's shape with its own strides (0 where broadcast)
        def kernel(a, sa, b, sb, shape, out):
            i = cuda.grid(1)
            if i < out.size:
                out[i] = f(a[_offset(i, shape, sa)], b[_offset(i, shape, sb)])
    return cuda.jit(kernel)


@_kernel_factory
def _unary_kernel(op):
    f = cuda.jit(device=True)(_UNARY[op][1])

    def kernel(a, out):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = f(a[i])
    return cuda.jit(kernel)


def _operand(x):
    """DeviceArrays stay; scalars stay scalars (kernel arguments); host arrays are uploaded."""
    if isinstance(x, DeviceArray):
        return x
    if isinstance(x, (np.ndarray, list, tuple)):
        arr = np.asarray(x)
        return arr[()] if arr.ndim == 0 else from_numpy(arr)
    return x


def _dtype_of(x):
    return x.dtype if isinstance(x, DeviceArray) else x


def _ufunc_dtype(ufunc, *xs) -> np.dtype:
    """The dtype NumPy's ufunc would return for these operands (scalars keep NEP 50's weak typing)."""
    with np.errstate(all="ignore"):
        dummies = [np.ones(1, x.dtype) if isinstance(x, DeviceArray) else x for x in xs]
        return np.asarray(ufunc(*dummies)).dtype


def _kshape(shape):
    """Shapes handed to kernels: never empty (a 0-d array is one element)."""
    return tuple(shape) or (1,)


def _cstrides(shape):
    st, acc = [], 1
    for s in reversed(shape):
        st.append(acc)
        acc *= s
    return tuple(reversed(st))


def _bstrides(shape, out_shape):
    """Element strides of a C-contiguous `shape` read as `out_shape` (0 on broadcast axes)."""
    lead = len(out_shape) - len(shape)
    st = _cstrides(shape)
    out = [0] * lead + [0 if n == 1 and m != 1 else s for n, m, s in zip(shape, out_shape[lead:], st)]
    return tuple(out) or (0,)


def _binary(op, a, b):
    a, b = _operand(a), _operand(b)
    out_dtype = _ufunc_dtype(_BINARY[op][0], a, b)
    calc = np.result_type(_dtype_of(a), _dtype_of(b))
    if not isinstance(b, DeviceArray):
        out = _new(a.shape, out_dtype)
        _launch_flat(_binary_kernel(op, "array_scalar"), out.size, a.buf, calc.type(b), out.buf)
    elif not isinstance(a, DeviceArray):
        out = _new(b.shape, out_dtype)
        _launch_flat(_binary_kernel(op, "scalar_array"), out.size, calc.type(a), b.buf, out.buf)
    elif a.shape == b.shape:
        out = _new(a.shape, out_dtype)
        _launch_flat(_binary_kernel(op, "same"), out.size, a.buf, b.buf, out.buf)
    else:
        shape = np.broadcast_shapes(a.shape, b.shape)
        out = _new(shape, out_dtype)
        _launch_flat(_binary_kernel(op, "broadcast"), out.size, a.buf, _bstrides(a.shape, shape),
                     b.buf, _bstrides(b.shape, shape), _kshape(shape), out.buf)
    return out


def _unary(op, a):
    a = _operand(a)
    out = _new(a.shape, _ufunc_dtype(_UNARY[op][0], a))
    _launch_flat(_unary_kernel(op), out.size, a.buf, out.buf)
    return out


def _make_binary(op):
    def fn(a, b):
        return _binary(op, a, b)
    fn.__name__ = op
    fn.__doc__ = f"NumPy's {op}(a, b) with broadcasting, on the device."
    return fn


def _make_unary(op):
    def fn(a):
        return _unary(op, a)
    fn.__name__ = op
    fn.__doc__ = f"NumPy's {op}(a), on the device."
    return fn


add = _make_binary("add")
subtract = _make_binary("subtract")
multiply = _make_binary("multiply")
divide = _make_binary("divide")
negative = _make_unary("negative")
power = _make_binary("power")
exp = _make_unary("exp")
log = _make_unary("log")
sqrt = _make_unary("sqrt")
absolute = _make_unary("absolute")
sign = _make_unary("sign")
maximum = _make_binary("maximum")
equal = _make_binary("equal")
not_equal = _make_binary("not_equal")
less = _make_binary("less")
less_equal = _make_binary("less_equal")
greater = _make_binary("greater")
greater_equal = _make_binary("greater_equal")
logical_and = _make_binary("logical_and")
logical_or = _make_binary("logical_or")


@cuda.jit
def _where3(cond, sc, a, sa, b, sb, shape, out):
    i = cuda.grid(1)
    if i < out.size:
        if cond[_offset(i, shape, sc)]:
            out[i] = a[_offset(i, shape, sa)]
        else:
            out[i] = b[_offset(i, shape, sb)]


def where(cond, a, b):
    cond, a, b = (_operand(x) for x in (cond, a, b))
    out_dtype = np.result_type(_dtype_of(a), _dtype_of(b))
    a, b = (x if isinstance(x, DeviceArray) else full((), x, out_dtype) for x in (a, b))
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    out = _new(shape, out_dtype)
    _launch_flat(_where3, out.size, cond.buf, _bstrides(cond.shape, shape), a.buf, _bstrides(a.shape, shape),
                 b.buf, _bstrides(b.shape, shape), _kshape(shape), out.buf)
    return out


@cuda.jit
def _clip(a, lo, has_lo, hi, has_hi, out):
    i = cuda.grid(1)
    if i < out.size:
        v = a[i]
        if has_lo and v < lo:
            v = lo
        if has_hi and v > hi:
            v = hi
        out[i] = v


def clip(a, lo, hi):
    out = _new(a.shape, _ufunc_dtype(np.clip, a, lo, hi))
    calc = out.dtype.type
    _launch_flat(_clip, out.size, a.buf, calc(0 if lo is None else lo), lo is not None,
                 calc(0 if hi is None else hi), hi is not None, out.buf)
    return out


# --- matmul: a tiled shared-memory kernel over strided operands ------------

@_kernel_factory
def _gemm_kernel(tile, dtype_str):
    acc_t = numba.from_dtype(np.dtype(dtype_str))
    zero = np.dtype(dtype_str).type(0)

    def gemm(a, sa0, sa1, sa2, b, sb0, sb1, sb2, c, m, n, k, batch, bias, has_bias):
        # c[z, row, col] = sum_q a[z, row, q] * b[z, q, col] (+ bias[col]); operands strided,
        # so a transposed operand costs no copy. Each block computes one tile x tile tile
        # of c, staging tile x tile pieces of a and b in shared memory.
        ta = cuda.shared.array((tile, tile), acc_t)
        tb = cuda.shared.array((tile, tile), acc_t)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * tile + ty
        col = cuda.blockIdx.x * tile + tx
        for z in range(cuda.blockIdx.z, batch, cuda.gridDim.z):
            acc = zero
            for q0 in range(0, k, tile):
                qa = q0 + tx
                qb = q0 + ty
                ta[ty, tx] = a[z * sa0 + row * sa1 + qa * sa2] if row < m and qa < k else zero
                tb[ty, tx] = b[z * sb0 + qb * sb1 + col * sb2] if qb < k and col < n else zero
                cuda.syncthreads()
                for q in range(tile):
                    acc += ta[ty, q] * tb[q, tx]
                cuda.syncthreads()
            if row < m and col < n:
                c[(z * m + row) * n + col] = acc + bias[col] if has_bias else acc
    return cuda.jit(gemm)


def _gemm(a, sa, b, sb, m, n, k, batch, dtype, bias=None) -> DeviceArray:
    out = _new((batch, m, n), dtype)
    if out.size:
        t = cfg.CUDA_TILE
        grid = ((n + t - 1) // t, (m + t - 1) // t, min(batch, 65535))
        _launch(_gemm_kernel(t, out.dtype.str), grid, (t, t), a.buf, *sa, b.buf, *sb, out.buf, m, n, k, batch,
                (bias if bias is not None else out).buf, bias is not None)
    return out


def _batch_stride(x, batch, matrix):
    """(x, stride between matrices) for x (..., r, c) read as batch + (r, c)."""
    lead = x.shape[:-2]
    if math.prod(lead) == 1:
        return x, 0
    if lead != tuple(batch):
        x = broadcast_to(x, tuple(batch) + x.shape[-2:])
    return x, matrix


def matmul(a, b):
    a, b = _operand(a), _operand(b)
    dtype = np.result_type(a.dtype, b.dtype)
    a, b = astype(a, dtype), astype(b, dtype)
    a2 = reshape(a, (1, a.size)) if a.ndim == 1 else a
    b2 = reshape(b, (b.size, 1)) if b.ndim == 1 else b
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions")
    m, k = a2.shape[-2:]
    k2, n = b2.shape[-2:]
    if k != k2:
        raise ValueError(f"matmul: mismatch in its core dimension: {a.shape} @ {b.shape} ({k} != {k2})")
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    a2, sa = _batch_stride(a2, batch, m * k)
    b2, sb = _batch_stride(b2, batch, k * n)
    out = _gemm(a2, (sa, k, 1), b2, (sb, n, 1), m, n, k, math.prod(batch), dtype)
    shape = tuple(batch) + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    return reshape(out, shape)


# --- reductions: one block per output element, a tree in shared memory ------

@cuda.jit(device=True)
def _block_sum(sm, v):
    """Sum of v over the block's threads (all must call); sm has blockDim.x cells."""
    tid = cuda.threadIdx.x
    sm[tid] = v
    cuda.syncthreads()
    s = sm.shape[0] // 2
    while s > 0:
        if tid < s:
            sm[tid] += sm[tid + s]
        cuda.syncthreads()
        s //= 2
    total = sm[0]
    cuda.syncthreads()  # everyone has read sm[0] before the next call overwrites it
    return total


@cuda.jit(device=True)
def _better(v2, i2, v1, i1):
    """Does value v2 at index i2 beat v1 at i1 for NumPy's max/argmax: NaN, then larger, then earlier?"""
    if i2 < 0:
        return False
    if i1 < 0:
        return True
    nan1 = v1 != v1
    nan2 = v2 != v2
    if nan1 or nan2:
        return nan2 and (not nan1 or i2 < i1)
    return v2 > v1 or (v2 == v1 and i2 < i1)


@_kernel_factory
def _sum_kernel(acc_str, threads):
    acc_t = numba.from_dtype(np.dtype(acc_str))
    zero = np.dtype(acc_str).type(0)

    def reduce_sum(a, kshape, kstrides, rshape, rstrides, rcount, out):
        sm = cuda.shared.array(threads, acc_t)
        for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
            base = _offset(o, kshape, kstrides)
            acc = zero
            for r in range(cuda.threadIdx.x, rcount, threads):
                acc += a[base + _offset(r, rshape, rstrides)]
            total = _block_sum(sm, acc)
            if cuda.threadIdx.x == 0:
                out[o] = total
    return cuda.jit(reduce_sum)


@_kernel_factory
def _max_kernel(dtype_str, threads):
    val_t = numba.from_dtype(np.dtype(dtype_str))

    def reduce_max(a, kshape, kstrides, rshape, rstrides, rcount, values, indices):
        sv = cuda.shared.array(threads, val_t)
        si = cuda.shared.array(threads, numba.int64)
        tid = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, values.size, cuda.gridDim.x):
            base = _offset(o, kshape, kstrides)
            best = a[base]
            at = -1
            for r in range(tid, rcount, threads):
                v = a[base + _offset(r, rshape, rstrides)]
                if _better(v, r, best, at):
                    best = v
                    at = r
            sv[tid] = best
            si[tid] = at
            cuda.syncthreads()
            s = threads // 2
            while s > 0:
                if tid < s and _better(sv[tid + s], si[tid + s], sv[tid], si[tid]):
                    sv[tid] = sv[tid + s]
                    si[tid] = si[tid + s]
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                values[o] = sv[0]
                indices[o] = si[0]
            cuda.syncthreads()
    return cuda.jit(reduce_max)


def _reduction_layout(a, axis, keepdims):
    """Kept and reduced axes of `a` as (shape, strides) pairs, plus the output shape."""
    nd = a.ndim
    if axis is None:
        axes = tuple(range(nd))
    else:
        axes = tuple(sorted({ax % max(nd, 1) for ax in (axis if isinstance(axis, (tuple, list)) else (axis,))}))
    st = _cstrides(a.shape)
    kept = [d for d in range(nd) if d not in axes]
    if keepdims:
        out_shape = tuple(1 if d in axes else a.shape[d] for d in range(nd))
    else:
        out_shape = tuple(a.shape[d] for d in kept)
    kshape = tuple(a.shape[d] for d in kept) or (1,)
    kstr = tuple(st[d] for d in kept) or (0,)
    rshape = tuple(a.shape[d] for d in axes if d < nd) or (1,)
    rstr = tuple(st[d] for d in axes if d < nd) or (0,)
    return out_shape, kshape, kstr, rshape, rstr, math.prod(a.shape[d] for d in axes if d < nd)


def _launch_reduce(kernel, n_out, *args):
    if n_out > 0:
        _launch(kernel, min(n_out, 65535), _reduce_threads(), *args)


def sum(a, axis=None, keepdims=False):  # noqa: A001 - the backend contract's name
    a = _operand(a)
    out_dtype = np.zeros(1, a.dtype).sum().dtype  # NumPy's: bool and ints give int64, floats keep theirs
    acc = np.dtype(np.float64) if out_dtype.kind in "fc" else out_dtype
    out_shape, kshape, kstr, rshape, rstr, count = _reduction_layout(a, axis, keepdims)
    out = _new(out_shape, out_dtype)
    _launch_reduce(_sum_kernel(acc.str, _reduce_threads()), out.size, a.buf, kshape, kstr, rshape, rstr,
                   count, out.buf)
    return out


def _max_and_argmax(a, axis, keepdims):
    out_shape, kshape, kstr, rshape, rstr, count = _reduction_layout(a, axis, keepdims)
    if count == 0:
        raise ValueError("zero-size array to reduction operation maximum which has no identity")
    values = _new(out_shape, a.dtype)
    indices = _new(out_shape, np.int64)
    _launch_reduce(_max_kernel(a.dtype.str, _reduce_threads()), values.size, a.buf, kshape, kstr, rshape, rstr,
                   count, values.buf, indices.buf)
    return values, indices


def amax(a, axis=None, keepdims=False):
    return _max_and_argmax(a, axis, keepdims)[0]


def argmax(a, axis=None, keepdims=False):
    if axis is None:  # NumPy: the index into the flattened array
        return _max_and_argmax(reshape(a, (a.size,)), 0, False)[1]
    return _max_and_argmax(a, axis, keepdims)[1]


# --- shapes: reshape is free, everything else a strided copy ----------------

@cuda.jit
def _gather(src, offset, strides, shape, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = src[offset + _offset(i, shape, strides)]


@cuda.jit
def _scatter(dst, offset, strides, shape, src):
    i = cuda.grid(1)
    if i < src.size:
        dst[offset + _offset(i, shape, strides)] = src[i]


@cuda.jit
def _scatter_fill(dst, offset, strides, shape, count, value):
    i = cuda.grid(1)
    if i < count:
        dst[offset + _offset(i, shape, strides)] = value


def _strided_copy(a, offset, shape, strides) -> DeviceArray:
    out = _new(shape, a.dtype)
    _launch_flat(_gather, out.size, a.buf, offset, tuple(strides) or (0,), _kshape(shape), out.buf)
    return out


def reshape(a, shape):
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(a.size // known if s == -1 and known else s for s in shape)
    if math.prod(shape) != a.size:
        raise ValueError(f"cannot reshape array of size {a.size} into shape {shape}")
    return DeviceArray(a.block, shape, a.dtype)


def transpose(a, axes):
    axes = tuple(int(ax) % max(a.ndim, 1) for ax in axes)
    if axes == tuple(range(a.ndim)):
        return a
    st = _cstrides(a.shape)
    return _strided_copy(a, 0, tuple(a.shape[ax] for ax in axes), tuple(st[ax] for ax in axes))


def broadcast_to(a, shape):
    a = _operand(a)
    shape = tuple(int(s) for s in shape)
    if a.shape == shape:
        return a
    np.broadcast_shapes(a.shape, shape)  # raises NumPy's error when it cannot
    return _strided_copy(a, 0, shape, _bstrides(a.shape, shape))


def ascontiguous(a):
    return a  # DeviceArrays are always C-contiguous


def concatenate(arrays, axis):
    arrays = [_operand(x) for x in arrays]
    axis %= arrays[0].ndim
    shape = list(arrays[0].shape)
    shape[axis] = builtins.sum(x.shape[axis] for x in arrays)
    out = _new(shape, np.result_type(*(x.dtype for x in arrays)))
    start = 0
    for x in arrays:
        _setitem(out, (slice(None),) * axis + (slice(start, start + x.shape[axis]),), x)
        start += x.shape[axis]
    return out


def split(a, indices, axis):
    bounds = [0, *(int(i) for i in indices), a.shape[axis]]
    return [getitem(a, (slice(None),) * (axis % a.ndim) + (slice(s, e),)) for s, e in zip(bounds[:-1], bounds[1:])]


def pad2d(a, top, bottom, left, right, value=0.0):
    """Zero (or `value`) border around the last two axes."""
    h, w = a.shape[-2:]
    out = full(a.shape[:-2] + (h + top + bottom, w + left + right), value, a.dtype)
    _setitem(out, (Ellipsis, slice(top, top + h), slice(left, left + w)), a)
    return out


def unpad2d(a, top, bottom, left, right):
    h, w = a.shape[-2:]
    return getitem(a, (Ellipsis, slice(top, h - bottom), slice(left, w - right)))


# --- indexing: basic indices become strided views, computed by NumPy on a probe ---

_PROBE = np.zeros(1, np.uint8)


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, slice)
               or (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))) for i in items)


def _view(shape, index):
    """(offset, shape, strides), in elements, of a[index] for a C-contiguous `a` of `shape`.

    NumPy does the index arithmetic (bounds, negative steps, None, Ellipsis) on a
    one-byte probe viewed with element strides; the probe's memory is never read.
    """
    probe = np.lib.stride_tricks.as_strided(_PROBE, shape=shape, strides=_cstrides(shape), writeable=False)
    items = index if isinstance(index, tuple) else (index,)
    if not any(i is Ellipsis for i in items):
        items = items + (Ellipsis,)  # so that a full integer index gives a 0-d view, not a read
    v = probe[items]
    offset = v.__array_interface__["data"][0] - _PROBE.__array_interface__["data"][0]
    return offset, v.shape, v.strides


def _host_index(index):
    items = index if isinstance(index, tuple) else (index,)
    items = tuple(to_numpy(i) if isinstance(i, DeviceArray) else i for i in items)
    return items if isinstance(index, tuple) else items[0]


def getitem(a, index):
    """a[index] as a new array (a copy, where NumPy would give a view). Fancy indices: host fallback."""
    if not _is_basic(index):
        return from_numpy(to_numpy(a)[_host_index(index)])
    offset, shape, strides = _view(a.shape, index)
    if offset == 0 and shape == a.shape:
        return a
    return _strided_copy(a, offset, shape, strides)


def _setitem(a, index, value):
    """a[index] = value (broadcast, cast to a.dtype)."""
    if not _is_basic(index):  # host fallback
        host = to_numpy(a)
        host[_host_index(index)] = to_numpy(value) if isinstance(value, DeviceArray) else value
        if a.size:
            a.buf.copy_to_device(host.reshape(-1))
        return
    offset, shape, strides = _view(a.shape, index)
    value = _operand(value)
    shape_k, strides_k = _kshape(shape), tuple(strides) or (0,)
    if not isinstance(value, DeviceArray):
        count = math.prod(shape)
        _launch_flat(_scatter_fill, count, a.buf, offset, strides_k, shape_k, count, a.dtype.type(value))
        return
    value = broadcast_to(value, shape)
    _launch_flat(_scatter, value.size, a.buf, offset, strides_k, shape_k, value.buf)


def index_add(shape, dtype, index, values):
    """zeros(shape)[index] += values, with repeated indices accumulating."""
    if not _is_basic(index):  # host fallback (np.add.at)
        out = np.zeros(shape, dtype)
        np.add.at(out, _host_index(index), to_numpy(values) if isinstance(values, DeviceArray) else values)
        return from_numpy(out)
    out = zeros(shape, dtype)
    _setitem(out, index, values)  # a basic index names each cell at most once
    return out


def sum_to_shape(g, shape):
    """Undo broadcasting: sum g down to `shape`."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    return reshape(sum(g, axis=axes, keepdims=True), shape)


def first_bad_target(target, classes, ignore_index):
    """The first class index outside 0..classes-1 (ignore_index allowed), or None.

    The one read-back besides the loss: a single int, so that a bad label raises a
    clear error instead of a device-side assert.
    """
    if target.size == 0:
        return None
    first = full((1,), target.size, np.int64)
    _launch_flat(_first_bad, target.size, target.buf, classes, ignore_index, first.buf)
    i = int(first.buf.copy_to_host()[0])
    return None if i >= target.size else int(to_numpy(target).reshape(-1)[i])


@cuda.jit
def _first_bad(t, classes, ignore, first):
    i = cuda.grid(1)
    if i < t.size:
        v = t[i]
        if v != ignore and (v < 0 or v >= classes):
            cuda.atomic.min(first, 0, np.int64(i))


def random_uniform(rng: np.random.Generator, shape, low, high, dtype):
    return from_numpy(rng.uniform(low, high, size=shape).astype(dtype))  # host draw: the CPU's numbers


def random_normal(rng: np.random.Generator, shape, mean, std, dtype):
    return from_numpy(rng.normal(mean, std, size=shape).astype(dtype))


_dropout_states: list = [None, None]  # (host generator they were seeded from, device states)


def dropout_mask(rng: np.random.Generator, shape, p: float, dtype):
    """Keep-mask already scaled by 1/(1-p), drawn on the device by xoroshiro128+ generators.

    The generators are seeded from `rng` once (and again after manual_seed makes a new one).
    """
    source, states = _dropout_states
    if source is not rng or states is None or states.size != cfg.CUDA_RNG_STATES:
        states = create_xoroshiro128p_states(cfg.CUDA_RNG_STATES, seed=int(rng.integers(2**63)))
        _dropout_states[:] = [rng, states]
    out = _new(shape, dtype)
    n = out.size
    streams = min(states.size, n)
    _launch_flat(_dropout, streams, states, streams, np.float32(p), out.dtype.type(1.0 / (1.0 - p)), out.buf)
    return out


@cuda.jit
def _dropout(states, streams, p, scale, out):
    t = cuda.grid(1)
    if t < streams:
        for i in range(t, out.size, streams):
            out[i] = scale if xoroshiro128p_uniform_float32(states, t) >= p else 0


# ----------------------------------------------------------------------------
# convolution: direct kernels, one thread per output (or input) cell
# ----------------------------------------------------------------------------

@_kernel_factory
def _conv_kernel(kind, per_thread, dtype_str):
    acc_t = numba.from_dtype(np.dtype(dtype_str))
    zero = np.dtype(dtype_str).type(0)

    def forward(x, w, b, has_bias, y, groups, sh, sw, ph, pw, dh, dw):
        # thread (ox, oy) of plane z = (image, group of `per_thread` output channels)
        n_img, c_in, h, wd = x.shape
        k_out, _, kh, kw = w.shape
        oh, ow = y.shape[2], y.shape[3]
        ox = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        oy = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
        if ox >= ow or oy >= oh:
            return
        acc = cuda.local.array(per_thread, acc_t)
        for z in range(cuda.blockIdx.z, n_img * groups, cuda.gridDim.z):
            n = z // groups
            k0 = (z % groups) * per_thread
            for q in range(per_thread):
                acc[q] = zero
            for c in range(c_in):
                for i in range(kh):
                    iy = oy * sh - ph + i * dh
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw - pw + j * dw
                        if ix < 0 or ix >= wd:
                            continue
                        v = x[n, c, iy, ix]
                        for q in range(per_thread):
                            if k0 + q < k_out:
                                acc[q] += v * w[k0 + q, c, i, j]
            for q in range(per_thread):
                k = k0 + q
                if k < k_out:
                    y[n, k, oy, ox] = acc[q] + b[k] if has_bias else acc[q]

    def input_grad(g, w, dx, groups, sh, sw, ph, pw, dh, dw):
        # thread (ix, iy) of plane z = (image, group of input channels): gathers every
        # output cell whose window covered it, so no two threads write one cell
        n_img, c_in, h, wd = dx.shape
        k_out, _, kh, kw = w.shape
        oh, ow = g.shape[2], g.shape[3]
        ix = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        iy = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
        if ix >= wd or iy >= h:
            return
        acc = cuda.local.array(per_thread, acc_t)
        for z in range(cuda.blockIdx.z, n_img * groups, cuda.gridDim.z):
            n = z // groups
            c0 = (z % groups) * per_thread
            for q in range(per_thread):
                acc[q] = zero
            for k in range(k_out):
                for i in range(kh):
                    ty = iy + ph - i * dh
                    if ty < 0 or ty % sh != 0 or ty // sh >= oh:
                        continue
                    oy = ty // sh
                    for j in range(kw):
                        tx = ix + pw - j * dw
                        if tx < 0 or tx % sw != 0 or tx // sw >= ow:
                            continue
                        gv = g[n, k, oy, tx // sw]
                        for q in range(per_thread):
                            if c0 + q < c_in:
                                acc[q] += gv * w[k, c0 + q, i, j]
            for q in range(per_thread):
                if c0 + q < c_in:
                    dx[n, c0 + q, iy, ix] = acc[q]

    return cuda.jit(forward if kind == "forward" else input_grad)


@_kernel_factory
def _conv_weight_grad_kernel(taps, threads, dtype_str):
    acc_t = numba.from_dtype(np.dtype(dtype_str))
    zero = np.dtype(dtype_str).type(0)

    def weight_grad(x, g, dwt, sh, sw, ph, pw, dh, dw):
        # one block per (out channel k, in channel c): its threads stride over every
        # (image, output cell), accumulate `taps` kernel taps at once, then reduce
        n_img, c_in, h, wd = x.shape
        k_out, _, kh, kw = dwt.shape
        oh, ow = g.shape[2], g.shape[3]
        sm = cuda.shared.array((taps, threads), numba.float64)
        acc = cuda.local.array(taps, acc_t)
        tid = cuda.threadIdx.x
        n_taps = kh * kw
        cells = n_img * oh * ow
        for kc in range(cuda.blockIdx.x, k_out * c_in, cuda.gridDim.x):
            k = kc // c_in
            c = kc % c_in
            for t0 in range(0, n_taps, taps):
                for q in range(taps):
                    acc[q] = zero
                for p in range(tid, cells, threads):
                    n = p // (oh * ow)
                    oy = (p // ow) % oh
                    ox = p % ow
                    gv = g[n, k, oy, ox]
                    for q in range(taps):
                        t = t0 + q
                        if t < n_taps:
                            iy = oy * sh - ph + (t // kw) * dh
                            ix = ox * sw - pw + (t % kw) * dw
                            if iy >= 0 and iy < h and ix >= 0 and ix < wd:
                                acc[q] += gv * x[n, c, iy, ix]
                # one tree reduces all taps of the pass together
                for q in range(taps):
                    sm[q, tid] = acc[q]
                cuda.syncthreads()
                s = threads // 2
                while s > 0:
                    if tid < s:
                        for q in range(taps):
                            sm[q, tid] += sm[q, tid + s]
                    cuda.syncthreads()
                    s //= 2
                for q in range(tid, taps, threads):
                    if t0 + q < n_taps:
                        dwt[k, c, (t0 + q) // kw, (t0 + q) % kw] = sm[q, 0]
                cuda.syncthreads()
    return cuda.jit(weight_grad)


def _groups(channels, per_thread):
    return -(-channels // per_thread)


def conv2d_forward(x, w, b, stride, padding, dilation, out_hw, keep_columns=False):
    """y[n,k] = sum_c,i,j w[k,c,i,j] * x_pad[n,c,oy*s+i*d, ox*s+j*d] + b[k].

    Returns (y, None): the direct kernel keeps no column buffer for backward.
    """
    n, c, _, _ = x.shape
    k = w.shape[0]
    per = int(cfg.CUDA_CONV_CHANNELS)
    y = _new((n, k) + tuple(out_hw), x.dtype)
    _launch_cells(_conv_kernel("forward", per, x.dtype.str), y.shape, per, x.nd(), w.nd(),
                  (b if b is not None else w).buf, b is not None, y.nd(), _groups(k, per),
                  *stride, *padding, *dilation)
    return y, None


def conv2d_backward(x, w, g, saved, stride, padding, dilation, need_x, need_w, need_b):
    """Gradients of conv2d_forward: (dx, dw, db), None where not needed."""
    per = int(cfg.CUDA_CONV_CHANNELS)
    dx = dw_ = db = None
    if need_x:
        dx = _new(x.shape, x.dtype)
        _launch_cells(_conv_kernel("input_grad", per, x.dtype.str), x.shape, per, g.nd(), w.nd(), dx.nd(),
                      _groups(x.shape[1], per), *stride, *padding, *dilation)
    if need_w:
        dw_ = _new(w.shape, x.dtype)
        threads = _reduce_threads()
        kernel = _conv_weight_grad_kernel(int(cfg.CUDA_CONV_TAPS), threads, x.dtype.str)
        _launch(kernel, min(w.shape[0] * w.shape[1], 65535), threads, x.nd(), g.nd(), dw_.nd(),
                *stride, *padding, *dilation)
    if need_b:
        db = sum(g, axis=(0, 2, 3))
    return dx, dw_, db


# ----------------------------------------------------------------------------
# pooling: one thread per output cell (forward) or input cell (backward gathers)
# ----------------------------------------------------------------------------

@cuda.jit
def _max_pool_fwd(x, y, kh, kw, sh, sw, ph, pw, dh, dw):
    n_img, c_in, h, wd = x.shape
    oh, ow = y.shape[2], y.shape[3]
    ox = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    oy = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if ox >= ow or oy >= oh:
        return
    for z in range(cuda.blockIdx.z, n_img * c_in, cuda.gridDim.z):
        n = z // c_in
        c = z % c_in
        best = -math.inf
        for i in range(kh):
            iy = oy * sh - ph + i * dh
            if iy < 0 or iy >= h:
                continue
            for j in range(kw):
                ix = ox * sw - pw + j * dw
                if ix < 0 or ix >= wd:
                    continue
                v = x[n, c, iy, ix]
                # NaN wins and then sticks, as in PyTorch, so a diverging net shows NaN
                if v > best or v != v:
                    best = v
        y[n, c, oy, ox] = best


@cuda.jit
def _max_pool_bwd(g, x, y, dx, kh, kw, sh, sw, ph, pw, dh, dw):
    # The gradient goes to the first window cell equal to the max, in scan order (as the
    # CPU); overlapping windows may pick one cell twice, hence the atomic add.
    n_img, c_in, h, wd = x.shape
    oh, ow = y.shape[2], y.shape[3]
    ox = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    oy = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if ox >= ow or oy >= oh:
        return
    for z in range(cuda.blockIdx.z, n_img * c_in, cuda.gridDim.z):
        n = z // c_in
        c = z % c_in
        m = y[n, c, oy, ox]
        nan = m != m
        done = False
        for i in range(kh):
            iy = oy * sh - ph + i * dh
            if done or iy < 0 or iy >= h:
                continue
            for j in range(kw):
                ix = ox * sw - pw + j * dw
                if done or ix < 0 or ix >= wd:
                    continue
                v = x[n, c, iy, ix]
                if v == m or (nan and v != v):
                    cuda.atomic.add(dx, (n, c, iy, ix), g[n, c, oy, ox])
                    done = True


def max_pool2d_forward(x, kernel, stride, padding, dilation, out_hw):
    """Returns (y, None): backward finds each window's maximum again (one thread per
    output cell re-reads its window, cheaper here than storing the arg-max)."""
    n, c, _, _ = x.shape
    y = _new((n, c) + tuple(out_hw), x.dtype)
    _launch_cells(_max_pool_fwd, y.shape, 1, x.nd(), y.nd(), *kernel, *stride, *padding, *dilation)
    return y, None


def max_pool2d_backward(g, x, y, saved, kernel, stride, padding, dilation):
    dx = zeros(x.shape, x.dtype)
    _launch_cells(_max_pool_bwd, y.shape, 1, g.nd(), x.nd(), y.nd(), dx.nd(), *kernel, *stride, *padding,
                  *dilation)
    return dx


@cuda.jit(device=True)
def _pool_count(o, s, p, k, n, include_pad):
    lo = o * s - p
    hi_pad = min(lo + k, n + p)
    if include_pad:
        return hi_pad - lo
    return min(hi_pad, n) - max(lo, 0)


@cuda.jit(device=True)
def _pool_scale(oy, ox, h, w, kh, kw, sh, sw, ph, pw, include_pad, divisor, summing):
    """1/divisor of one output cell: PyTorch's avg_pool2d rule (or 1 for sum pooling)."""
    if summing:
        return 1.0
    if divisor != 0:
        return 1.0 / divisor
    return 1.0 / (_pool_count(oy, sh, ph, kh, h, include_pad) * _pool_count(ox, sw, pw, kw, w, include_pad))


@cuda.jit
def _window_sum_fwd(x, y, kh, kw, sh, sw, ph, pw, include_pad, divisor, summing):
    n_img, c_in, h, wd = x.shape
    oh, ow = y.shape[2], y.shape[3]
    ox = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    oy = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if ox >= ow or oy >= oh:
        return
    scale = _pool_scale(oy, ox, h, wd, kh, kw, sh, sw, ph, pw, include_pad, divisor, summing)
    for z in range(cuda.blockIdx.z, n_img * c_in, cuda.gridDim.z):
        n = z // c_in
        c = z % c_in
        s = 0.0
        for i in range(kh):
            iy = oy * sh - ph + i
            if iy < 0 or iy >= h:
                continue
            for j in range(kw):
                ix = ox * sw - pw + j
                if ix >= 0 and ix < wd:
                    s += x[n, c, iy, ix]
        y[n, c, oy, ox] = s * scale


@cuda.jit
def _window_sum_bwd(g, dx, kh, kw, sh, sw, ph, pw, include_pad, divisor, summing):
    n_img, c_in, h, wd = dx.shape
    oh, ow = g.shape[2], g.shape[3]
    ix = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    iy = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if ix >= wd or iy >= h:
        return
    for z in range(cuda.blockIdx.z, n_img * c_in, cuda.gridDim.z):
        n = z // c_in
        c = z % c_in
        s = 0.0
        for i in range(kh):
            ty = iy + ph - i
            if ty < 0 or ty % sh != 0 or ty // sh >= oh:
                continue
            oy = ty // sh
            for j in range(kw):
                tx = ix + pw - j
                if tx < 0 or tx % sw != 0 or tx // sw >= ow:
                    continue
                ox = tx // sw
                s += g[n, c, oy, ox] * _pool_scale(oy, ox, h, wd, kh, kw, sh, sw, ph, pw, include_pad, divisor,
                                                   summing)
        dx[n, c, iy, ix] = s


def avg_pool2d_forward(x, kernel, stride, padding, out_hw, count_include_pad=True,
                       divisor_override=0, summing=False):
    n, c, _, _ = x.shape
    y = _new((n, c) + tuple(out_hw), x.dtype)
    _launch_cells(_window_sum_fwd, y.shape, 1, x.nd(), y.nd(), *kernel, *stride, *padding,
                  bool(count_include_pad), int(divisor_override or 0), bool(summing))
    return y


def avg_pool2d_backward(g, x_shape, dtype, kernel, stride, padding, count_include_pad=True,
                        divisor_override=0, summing=False):
    dx = _new(x_shape, dtype)
    _launch_cells(_window_sum_bwd, dx.shape, 1, g.nd(), dx.nd(), *kernel, *stride, *padding,
                  bool(count_include_pad), int(divisor_override or 0), bool(summing))
    return dx


# ----------------------------------------------------------------------------
# dense layer (the tiled gemm, operands transposed by strides)
# ----------------------------------------------------------------------------

def linear_forward(x, w, b):
    out_f, in_f = w.shape
    rows = x.size // in_f
    y = _gemm(x, (0, in_f, 1), w, (0, 1, in_f), rows, out_f, in_f, 1, x.dtype, bias=b)
    return reshape(y, x.shape[:-1] + (out_f,))


def linear_backward(x, w, g, need_x, need_w, need_b):
    out_f, in_f = w.shape
    rows = x.size // in_f
    dx = dw = db = None
    if need_x:  # g @ w
        dx = reshape(_gemm(g, (0, out_f, 1), w, (0, in_f, 1), rows, in_f, out_f, 1, x.dtype), x.shape)
    if need_w:  # g2.T @ x2
        dw = reshape(_gemm(g, (0, 1, out_f), x, (0, in_f, 1), out_f, in_f, rows, 1, x.dtype), w.shape)
    if need_b:
        db = sum(reshape(g, (rows, out_f)), axis=0)
    return dx, dw, db


# ----------------------------------------------------------------------------
# activations (flat, elementwise)
# ----------------------------------------------------------------------------

@cuda.jit
def _relu_fwd(x, y, slope):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        y[i] = v if v > 0 else v * slope


@cuda.jit
def _relu_bwd(g, x, dx, slope):
    i = cuda.grid(1)
    if i < x.size:
        dx[i] = g[i] if x[i] > 0 else g[i] * slope


@cuda.jit
def _sigmoid_fwd(x, y):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        # two branches so exp never overflows
        if v >= 0:
            y[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            y[i] = e / (1.0 + e)


@cuda.jit
def _sigmoid_bwd(g, y, dx):
    i = cuda.grid(1)
    if i < y.size:
        dx[i] = g[i] * y[i] * (1.0 - y[i])


@cuda.jit
def _tanh_fwd(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = math.tanh(x[i])


@cuda.jit
def _tanh_bwd(g, y, dx):
    i = cuda.grid(1)
    if i < y.size:
        dx[i] = g[i] * (1.0 - y[i] * y[i])


def _elementwise(kernel, first, *rest):
    out = _new(first.shape, first.dtype)
    _launch_flat(kernel, out.size, *(a.buf if isinstance(a, DeviceArray) else a for a in (first, *rest)), out.buf)
    return out


def relu_forward(x, negative_slope=0.0):
    y = _new(x.shape, x.dtype)
    _launch_flat(_relu_fwd, y.size, x.buf, y.buf, x.dtype.type(negative_slope))
    return y


def relu_backward(g, x, negative_slope=0.0):
    out = _new(x.shape, x.dtype)
    _launch_flat(_relu_bwd, out.size, g.buf, x.buf, out.buf, x.dtype.type(negative_slope))
    return out


def sigmoid_forward(x):
    return _elementwise(_sigmoid_fwd, x)


def sigmoid_backward(g, y):
    return _elementwise(_sigmoid_bwd, g, y)


def tanh_forward(x):
    return _elementwise(_tanh_fwd, x)


def tanh_backward(g, y):
    return _elementwise(_tanh_bwd, g, y)


# ----------------------------------------------------------------------------
# softmax family, over the last axis of a 2-D (rows, classes) array: a thread per row
# ----------------------------------------------------------------------------

@cuda.jit
def _log_softmax_rows(x, y):
    r = cuda.grid(1)
    if r < x.shape[0]:
        m = -math.inf
        for j in range(x.shape[1]):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(x.shape[1]):
            s += math.exp(x[r, j] - m)
        lse = m + math.log(s)
        for j in range(x.shape[1]):
            y[r, j] = x[r, j] - lse


@cuda.jit
def _log_softmax_rows_bwd(g, y, dx):
    r = cuda.grid(1)
    if r < y.shape[0]:
        s = 0.0
        for j in range(y.shape[1]):
            s += g[r, j]
        for j in range(y.shape[1]):
            dx[r, j] = g[r, j] - math.exp(y[r, j]) * s


@cuda.jit
def _softmax_rows_bwd(g, y, dx):
    r = cuda.grid(1)
    if r < y.shape[0]:
        s = 0.0
        for j in range(y.shape[1]):
            s += g[r, j] * y[r, j]
        for j in range(y.shape[1]):
            dx[r, j] = y[r, j] * (g[r, j] - s)


def _rows(kernel, *arrays):
    out = _new(arrays[-1].shape, arrays[-1].dtype)
    _launch_flat(kernel, out.shape[0] if out.size else 0, *(a.nd() for a in arrays), out.nd())
    return out


def log_softmax_forward(x2d):
    return _rows(_log_softmax_rows, x2d)


def log_softmax_backward(g2d, y2d):
    return _rows(_log_softmax_rows_bwd, g2d, y2d)


def softmax_forward(x2d):
    return exp(log_softmax_forward(x2d))


def softmax_backward(g2d, y2d):
    return _rows(_softmax_rows_bwd, g2d, y2d)


@cuda.jit
def _nll(logp, target, weight, ignore_index, losses, wsel):
    r = cuda.grid(1)
    if r < logp.shape[0]:
        t = target[r]
        if t == ignore_index:
            losses[r] = 0.0
            wsel[r] = 0.0
        else:
            wsel[r] = weight[t]
            losses[r] = -logp[r, t] * weight[t]


@cuda.jit
def _nll_bwd(g_rows, target, wsel, dx):
    r = cuda.grid(1)
    if r < dx.shape[0] and wsel[r] != 0:
        dx[r, target[r]] = -(g_rows[r] * wsel[r])


def nll_forward(logp2d, target, weight, ignore_index):
    """Per-row losses -w[t]*logp[r, t] and the weights used (0 where ignored)."""
    rows = logp2d.shape[0]
    losses = _new((rows,), logp2d.dtype)
    wsel = _new((rows,), logp2d.dtype)
    _launch_flat(_nll, rows, logp2d.nd(), astype(target, np.int64).buf, weight.buf, ignore_index, losses.buf,
                 wsel.buf)
    return losses, wsel


def nll_backward(g_rows, target, wsel, shape, dtype):
    dx = zeros(shape, dtype)
    _launch_flat(_nll_bwd, shape[0], g_rows.buf, astype(target, np.int64).buf, wsel.buf, dx.nd())
    return dx


# ----------------------------------------------------------------------------
# batch norm over (N, C, L): one block per channel for the statistics
# ----------------------------------------------------------------------------

@_kernel_factory
def _bn_kernel(kind, threads):
    def stats(x, mean, var):
        n, c, l = x.shape
        cnt = n * l
        sm = cuda.shared.array(threads, numba.float64)
        for ci in range(cuda.blockIdx.x, c, cuda.gridDim.x):
            s = 0.0
            for r in range(cuda.threadIdx.x, cnt, threads):
                s += x[r // l, ci, r % l]
            m = _block_sum(sm, s) / cnt
            q = 0.0
            for r in range(cuda.threadIdx.x, cnt, threads):
                d = x[r // l, ci, r % l] - m
                q += d * d
            v = _block_sum(sm, q) / cnt
            if cuda.threadIdx.x == 0:
                mean[ci] = m
                var[ci] = v

    def backward(g, x, mean, invstd, gamma, dx, dgamma, dbeta, training):
        n, c, l = x.shape
        cnt = n * l
        sm = cuda.shared.array(threads, numba.float64)
        for ci in range(cuda.blockIdx.x, c, cuda.gridDim.x):
            sg = 0.0
            sgx = 0.0
            for r in range(cuda.threadIdx.x, cnt, threads):
                gv = g[r // l, ci, r % l]
                sg += gv
                sgx += gv * (x[r // l, ci, r % l] - mean[ci]) * invstd[ci]
            sg = _block_sum(sm, sg)
            sgx = _block_sum(sm, sgx)
            if cuda.threadIdx.x == 0:
                dgamma[ci] = sgx
                dbeta[ci] = sg
            a = gamma[ci] * invstd[ci]
            for r in range(cuda.threadIdx.x, cnt, threads):
                b = r // l
                i = r % l
                if training:
                    xh = (x[b, ci, i] - mean[ci]) * invstd[ci]
                    dx[b, ci, i] = a * (g[b, ci, i] - sg / cnt - xh * sgx / cnt)
                else:
                    dx[b, ci, i] = a * g[b, ci, i]

    return cuda.jit(stats if kind == "stats" else backward)


@cuda.jit
def _bn_apply(x, mean, invstd, gamma, beta, y, c, l):
    i = cuda.grid(1)
    if i < x.size:
        ci = (i // l) % c
        a = invstd[ci] * gamma[ci]
        y[i] = x[i] * a + (beta[ci] - mean[ci] * a)


def batch_norm_stats(x3):
    """Per-channel mean and biased variance of an (N, C, L) array."""
    c = x3.shape[1]
    mean, var = _new((c,), x3.dtype), _new((c,), x3.dtype)
    threads = _reduce_threads()
    _launch(_bn_kernel("stats", threads), min(c, 65535), threads, x3.nd(), mean.buf, var.buf)
    return mean, var


def batch_norm_forward(x3, mean, invstd, gamma, beta):
    y = _new(x3.shape, x3.dtype)
    _launch_flat(_bn_apply, y.size, x3.buf, mean.buf, invstd.buf, gamma.buf, beta.buf, y.buf, x3.shape[1],
                 x3.shape[2])
    return y


def batch_norm_backward(g3, x3, mean, invstd, gamma, training):
    c = x3.shape[1]
    dx = _new(x3.shape, x3.dtype)
    dgamma, dbeta = _new((c,), x3.dtype), _new((c,), x3.dtype)
    threads = _reduce_threads()
    _launch(_bn_kernel("backward", threads), min(c, 65535), threads, g3.nd(), x3.nd(), mean.buf, invstd.buf,
            gamma.buf, dx.nd(), dgamma.buf, dbeta.buf, bool(training))
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------
# optimizer updates, in place on flat buffers
# ----------------------------------------------------------------------------

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
    _launch_flat(_sgd, p.size, p.buf, g.buf, buf.buf, float(lr), float(momentum), float(dampening), bool(nesterov),
                 float(weight_decay), bool(first), p.size)


def adam_step(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step, amsgrad):
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    _launch_flat(_adam, p.size, p.buf, g.buf, m.buf, v.buf, vmax.buf, float(lr), float(beta1), float(beta2),
                 float(eps), float(weight_decay), bool(decoupled), float(lr / bc1), float(math.sqrt(bc2)),
                 bool(amsgrad), p.size)


# ----------------------------------------------------------------------------
# first-run notice
# ----------------------------------------------------------------------------

if not cfg.QUIET and not SIMULATOR:
    print("cnnlab: CUDA kernels compile on first use in each process (a few seconds per layer type)...",
          file=sys.stderr, flush=True)
