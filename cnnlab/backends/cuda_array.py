"""The CUDA backend's array runtime: `DeviceArray`, kernel launches, array creation,
elementwise maths with NumPy's dtype rules, views and indexing.

Everything else in the CUDA backend (cuda_math, cuda_conv, cuda_pool, cuda_nn,
cuda_optim) allocates with `new` (pooled buffers, cuda_alloc.py) and launches through
`launch_flat`, `launch_cells` or `launch_blocks`, which all end in `launch`: one place
that counts, checks (cuda_launch.py) and that tests wrap. Launch shapes are
cnnlab._config's CUDA_* values, read at each launch. The public surface is `cuda.py`.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda

from .. import _config as cfg
from ..cuda_layout import grid as _cell_grid
from . import cuda_alloc, cuda_launch

# ----------------------------------------------------------------------------
# device memory (pooled, cuda_alloc.py) and launches (checked, cuda_launch.py)
# ----------------------------------------------------------------------------
# COUNTS / counts(): launches, device-to-host and host-to-device copies, allocations and
# pool reuses since import (see cuda_alloc.COUNTS); tests subtract two snapshots.
COUNTS, counts = cuda_alloc.COUNTS, cuda_alloc.counts
_Block = cuda_alloc.Block


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
        setitem(self, index, value)

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


def launch(kernel, grid, block, *args):
    """Every launch goes through here: counted (COUNTS["launches"]), checked against the device's
    limits, failures made readable (cuda_launch.run). Tests wrap it to record or count launches."""
    COUNTS["launches"] += 1
    cuda_launch.run(kernel, grid, block, args)


def launch_flat(kernel, n: int, *args):
    """One thread per element i < n, blocks of CUDA_THREADS."""
    if n > 0:
        t = cfg.CUDA_THREADS
        launch(kernel, (n + t - 1) // t, t, *args)  # x: up to 2**31 - 1 blocks, past any array here


def launch_cells(kernel, out_shape, channels_per_thread, *args):
    """One thread per output cell of an (N, K, H, W) output; see cnnlab.cuda_layout."""
    if math.prod(out_shape) > 0:
        block = tuple(cfg.CUDA_BLOCK_2D)
        launch(kernel, _cell_grid(out_shape, block, channels_per_thread), block, *args)


def launch_blocks(kernel, n_out: int, *args):
    """One block of reduce_threads() threads per output element (or channel); blocks stride past the grid's x limit."""
    if n_out > 0:
        launch(kernel, cuda_launch.capped(n_out, 0), reduce_threads(), *args)


def reduce_threads() -> int:
    t = int(cfg.CUDA_REDUCE_THREADS)
    return 1 << (t.bit_length() - 1)  # the tree halves: keep a power of two


def kernel_factory(fn):
    """Cache a function that builds a kernel for some constants; tag each kernel with
    how to build it again (tests rebuild them outside the simulator to compile PTX)."""
    @functools.lru_cache(maxsize=None)
    def build(*args):
        kernel = fn(*args)
        kernel.cnnlab_rebuild = (fn.__name__, args)
        return kernel

    build.__name__ = fn.__name__
    return build


def new(shape, dtype) -> DeviceArray:
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
    return cuda_alloc.download(a.buf).reshape(a.shape)


def from_numpy(a) -> DeviceArray:
    if isinstance(a, DeviceArray):
        return a
    a = np.asarray(a)
    a = np.ascontiguousarray(a).reshape(a.shape)  # ascontiguousarray alone makes 0-d arrays 1-d
    if a.size == 0:
        return new(a.shape, a.dtype)
    return DeviceArray(cuda_alloc.upload(a), a.shape, a.dtype)  # into a pooled buffer: the batch's size recurs


def empty(shape, dtype) -> DeviceArray:
    return new(shape, dtype)


def zeros(shape, dtype) -> DeviceArray:
    return full(shape, 0, dtype)


def full(shape, value, dtype) -> DeviceArray:
    out = new(shape, dtype)
    launch_flat(_fill, out.size, out.buf, out.dtype.type(value))
    return out


def copy(a: DeviceArray) -> DeviceArray:
    return _cast(a, a.dtype)


def astype(a: DeviceArray, dtype) -> DeviceArray:
    dtype = np.dtype(dtype)
    return a if dtype == a.dtype else _cast(a, dtype)


def _cast(a: DeviceArray, dtype) -> DeviceArray:
    out = new(a.shape, dtype)
    launch_flat(_unary_kernel("copy"), out.size, a.buf, out.buf)
    return out


@cuda.jit(**cfg.CUDA_JIT)
def _fill(out, value):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = value


# ----------------------------------------------------------------------------
# elementwise (one kernel per op family; NumPy's dtype rules)
# ----------------------------------------------------------------------------

@cuda.jit(device=True)
def _nan_max(a, b):
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@cuda.jit(device=True)
def _sign(a):
    return 1 if a > 0 else (-1 if a < 0 else a)  # 0 and NaN are their own sign


# op name -> NumPy's ufunc (for the result dtype); an op's code in the kernels is its position
_BINARY = dict(add=np.add, subtract=np.subtract, multiply=np.multiply, divide=np.divide, power=np.power,
               maximum=np.maximum, equal=np.equal, not_equal=np.not_equal, less=np.less, less_equal=np.less_equal,
               greater=np.greater, greater_equal=np.greater_equal, logical_and=np.logical_and,
               logical_or=np.logical_or, bitwise_and=np.bitwise_and, bitwise_or=np.bitwise_or)
_UNARY = dict(copy=None, negative=np.negative, exp=np.exp, log=np.log, sqrt=np.sqrt, absolute=np.abs,
              sign=np.sign, invert=np.invert, logical_not=np.logical_not)
_VARIANTS = ("same", "array_scalar", "scalar_array", "broadcast")


@cuda.jit(device=True)
def flat_offset(i, shape, strides):
    """Element offset of flat index i of a strided view (C order over `shape`)."""
    o = 0
    for d in range(len(shape) - 1, -1, -1):
        q = i % shape[d]
        i //= shape[d]
        o += q * strides[d]
    return o


# The elementwise kernels close over plain integer codes, not over a device function per
# op: numba files a closure in its disk cache under the pickled cells, and a pickled
# function (cloudpickle, by value) can differ with how the process was started (numba's
# own caveat), which would recompile it in every process; two ints cannot. The codes are
# compile-time constants, so numba's dead-branch pruning types and compiles only the op's
# own branch (a float kernel never sees `&`).

@kernel_factory
def _binary_kernel(op, variant):
    code, var = list(_BINARY).index(op), _VARIANTS.index(variant)

    def binary(a, sa, b, sb, shape, out):
        # sa, sb, shape: the broadcast variant's strides (0 where broadcast); unused otherwise
        i = cuda.grid(1)
        if i < out.size:
            if var == 0:
                x, y = a[i], b[i]
            elif var == 1:
                x, y = a[i], b
            elif var == 2:
                x, y = a, b[i]
            else:
                x, y = a[flat_offset(i, shape, sa)], b[flat_offset(i, shape, sb)]
            if code == 0:
                out[i] = x + y
            elif code == 1:
                out[i] = x - y
            elif code == 2:
                out[i] = x * y
            elif code == 3:
                out[i] = x / y
            elif code == 4:
                out[i] = x ** y
            elif code == 5:
                out[i] = _nan_max(x, y)
            elif code == 6:
                out[i] = x == y
            elif code == 7:
                out[i] = x != y
            elif code == 8:
                out[i] = x < y
            elif code == 9:
                out[i] = x <= y
            elif code == 10:
                out[i] = x > y
            elif code == 11:
                out[i] = x >= y
            elif code == 12:
                out[i] = x != 0 and y != 0
            elif code == 13:
                out[i] = x != 0 or y != 0
            elif code == 14:
                out[i] = x & y
            else:
                out[i] = x | y
    return cuda.jit(binary, **cfg.CUDA_JIT)


@kernel_factory
def _unary_kernel(op):
    code = list(_UNARY).index(op)

    def unary(a, out):
        i = cuda.grid(1)
        if i < out.size:
            x = a[i]
            if code == 0:
                out[i] = x
            elif code == 1:
                out[i] = -x
            elif code == 2:
                out[i] = math.exp(x)
            elif code == 3:
                out[i] = math.log(x)
            elif code == 4:
                out[i] = math.sqrt(x)
            elif code == 5:
                out[i] = abs(x)
            elif code == 6:
                out[i] = _sign(x)
            elif code == 7:
                out[i] = ~x
            else:
                out[i] = not x
    return cuda.jit(unary, **cfg.CUDA_JIT)


def operand(x):
    """DeviceArrays stay; scalars stay scalars (kernel arguments); host arrays are uploaded."""
    if isinstance(x, DeviceArray):
        return x
    if isinstance(x, (np.ndarray, list, tuple)):
        arr = np.asarray(x)
        return arr[()] if arr.ndim == 0 else from_numpy(arr)
    return x


def dtype_of(x):
    return x.dtype if isinstance(x, DeviceArray) else x


def result_dtype(ufunc, *xs) -> np.dtype:
    """The dtype NumPy's ufunc would return for these operands (scalars keep NEP 50's weak typing)."""
    with np.errstate(all="ignore"):
        dummies = [np.ones(1, x.dtype) if isinstance(x, DeviceArray) else x for x in xs]
        return np.asarray(ufunc(*dummies)).dtype


def kernel_shape(shape):
    """Shapes handed to kernels: never empty (a 0-d array is one element)."""
    return tuple(shape) or (1,)


def c_strides(shape):
    st, acc = [], 1
    for s in reversed(shape):
        st.append(acc)
        acc *= s
    return tuple(reversed(st))


def broadcast_strides(shape, out_shape):
    """Element strides of a C-contiguous `shape` read as `out_shape` (0 on broadcast axes)."""
    lead = len(out_shape) - len(shape)
    st = c_strides(shape)
    out = [0] * lead + [0 if n == 1 and m != 1 else s for n, m, s in zip(shape, out_shape[lead:], st)]
    return tuple(out) or (0,)


def _binary(op, a, b):
    a, b = operand(a), operand(b)
    out_dtype = result_dtype(_BINARY[op], a, b)
    calc = np.result_type(dtype_of(a), dtype_of(b))
    flat = ((0,), (0,), (1,))  # the broadcast variant's strides and shape, unused by the others
    if not isinstance(b, DeviceArray):
        out = new(a.shape, out_dtype)
        launch_flat(_binary_kernel(op, "array_scalar"), out.size, a.buf, flat[0], calc.type(b), *flat[1:], out.buf)
    elif not isinstance(a, DeviceArray):
        out = new(b.shape, out_dtype)
        launch_flat(_binary_kernel(op, "scalar_array"), out.size, calc.type(a), flat[0], b.buf, *flat[1:], out.buf)
    elif a.shape == b.shape:
        out = new(a.shape, out_dtype)
        launch_flat(_binary_kernel(op, "same"), out.size, a.buf, flat[0], b.buf, *flat[1:], out.buf)
    else:
        shape = np.broadcast_shapes(a.shape, b.shape)
        out = new(shape, out_dtype)
        launch_flat(_binary_kernel(op, "broadcast"), out.size, a.buf, broadcast_strides(a.shape, shape),
                    b.buf, broadcast_strides(b.shape, shape), kernel_shape(shape), out.buf)
    return out


def _unary(op, a):
    a = operand(a)
    out = new(a.shape, result_dtype(_UNARY[op], a))
    launch_flat(_unary_kernel(op), out.size, a.buf, out.buf)
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

# --- shapes: reshape is free, everything else a strided copy ----------------

@cuda.jit(**cfg.CUDA_JIT)
def _gather(src, offset, strides, shape, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = src[offset + flat_offset(i, shape, strides)]


@cuda.jit(**cfg.CUDA_JIT)
def _scatter(dst, offset, strides, shape, src):
    i = cuda.grid(1)
    if i < src.size:
        dst[offset + flat_offset(i, shape, strides)] = src[i]


@cuda.jit(**cfg.CUDA_JIT)
def _scatter_fill(dst, offset, strides, shape, count, value):
    i = cuda.grid(1)
    if i < count:
        dst[offset + flat_offset(i, shape, strides)] = value


def _strided_copy(a, offset, shape, strides) -> DeviceArray:
    out = new(shape, a.dtype)
    launch_flat(_gather, out.size, a.buf, offset, tuple(strides) or (0,), kernel_shape(shape), out.buf)
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
    st = c_strides(a.shape)
    return _strided_copy(a, 0, tuple(a.shape[ax] for ax in axes), tuple(st[ax] for ax in axes))


def broadcast_to(a, shape):
    a = operand(a)
    shape = tuple(int(s) for s in shape)
    if a.shape == shape:
        return a
    np.broadcast_shapes(a.shape, shape)  # raises NumPy's error when it cannot
    return _strided_copy(a, 0, shape, broadcast_strides(a.shape, shape))


def ascontiguous(a):
    return a  # DeviceArrays are always C-contiguous


# --- indexing: basic indices become strided views, computed by NumPy on a probe ---

_PROBE = np.zeros(1, np.uint8)


def is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, slice)
               or (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))) for i in items)


def _view(shape, index):
    """(offset, shape, strides), in elements, of a[index] for a C-contiguous `a` of `shape`.

    NumPy does the index arithmetic (bounds, negative steps, None, Ellipsis) on a
    one-byte probe viewed with element strides; the probe's memory is never read.
    """
    probe = np.lib.stride_tricks.as_strided(_PROBE, shape=shape, strides=c_strides(shape), writeable=False)
    items = index if isinstance(index, tuple) else (index,)
    if not any(i is Ellipsis for i in items):
        items = items + (Ellipsis,)  # so that a full integer index gives a 0-d view, not a read
    v = probe[items]
    offset = v.__array_interface__["data"][0] - _PROBE.__array_interface__["data"][0]
    return offset, v.shape, v.strides


def host_index(index):
    items = index if isinstance(index, tuple) else (index,)
    items = tuple(to_numpy(i) if isinstance(i, DeviceArray) else i for i in items)
    return items if isinstance(index, tuple) else items[0]


def getitem(a, index):
    """a[index] as a new array (a copy, where NumPy would give a view). Fancy indices: host fallback."""
    if not is_basic_index(index):
        return from_numpy(to_numpy(a)[host_index(index)])
    offset, shape, strides = _view(a.shape, index)
    if offset == 0 and shape == a.shape:
        return a
    return _strided_copy(a, offset, shape, strides)


def setitem(a, index, value):
    """a[index] = value (broadcast, cast to a.dtype)."""
    if not is_basic_index(index):  # host fallback
        host = to_numpy(a)
        host[host_index(index)] = to_numpy(value) if isinstance(value, DeviceArray) else value
        if a.size:
            a.buf.copy_to_device(host.reshape(-1))
            COUNTS["to_device"] += 1
        return
    offset, shape, strides = _view(a.shape, index)
    value = operand(value)
    shape_k, strides_k = kernel_shape(shape), tuple(strides) or (0,)
    if not isinstance(value, DeviceArray):
        count = math.prod(shape)
        launch_flat(_scatter_fill, count, a.buf, offset, strides_k, shape_k, count, a.dtype.type(value))
        return
    value = broadcast_to(value, shape)
    launch_flat(_scatter, value.size, a.buf, offset, strides_k, shape_k, value.buf)


def random_uniform(rng: np.random.Generator, shape, low, high, dtype):
    return from_numpy(rng.uniform(low, high, size=shape).astype(dtype))  # host draw: the CPU's numbers


def random_normal(rng: np.random.Generator, shape, mean, std, dtype):
    return from_numpy(rng.normal(mean, std, size=shape).astype(dtype))

