"""The CUDA backend's array runtime: device memory, `DeviceArray`, kernel launches,
array creation, elementwise maths with NumPy's dtype rules, views and indexing.

Everything else in the CUDA backend (cuda_math, cuda_conv, cuda_pool, cuda_nn,
cuda_optim) allocates with `new` and launches through `launch_flat`,
`launch_cells` or `launch_blocks`, which all end in `launch`: one place where tests
wrap every launch. Launch shapes are cnnlab._config's CUDA_* values, read at each
launch. The backend's public surface is `cuda.py`.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda

from .. import _config as cfg
from ..cuda_layout import grid as _cell_grid

# ----------------------------------------------------------------------------
# device memory and launches
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
    """Every launch goes through here (tests wrap it to compile each kernel to PTX)."""
    kernel[grid, block](*args)


def launch_flat(kernel, n: int, *args):
    """One thread per element i < n, blocks of CUDA_THREADS."""
    if n > 0:
        t = cfg.CUDA_THREADS
        launch(kernel, (n + t - 1) // t, t, *args)


def launch_cells(kernel, out_shape, channels_per_thread, *args):
    """One thread per output cell of an (N, K, H, W) output; see cnnlab.cuda_layout."""
    if math.prod(out_shape) > 0:
        block = tuple(cfg.CUDA_BLOCK_2D)
        launch(kernel, _cell_grid(out_shape, block, channels_per_thread), block, *args)


def launch_blocks(kernel, n_out: int, *args):
    """One block of reduce_threads() threads per output element (or channel); blocks stride past 65,535."""
    if n_out > 0:
        launch(kernel, min(n_out, 65535), reduce_threads(), *args)


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
    return a.buf.copy_to_host().reshape(a.shape)


def from_numpy(a) -> DeviceArray:
    if isinstance(a, DeviceArray):
        return a
    a = np.asarray(a)
    a = np.ascontiguousarray(a).reshape(a.shape)  # ascontiguousarray alone makes 0-d arrays 1-d
    if a.size == 0:
        return new(a.shape, a.dtype)
    block = _Block.__new__(_Block)
    block.key = (a.size, a.dtype.str)
    block.buf = cuda.to_device(a.reshape(-1))
    return DeviceArray(block, a.shape, a.dtype)


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


@cuda.jit
def _fill(out, value):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = value


# ----------------------------------------------------------------------------
# elementwise (one kernel per op family; NumPy's dtype rules)
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
def flat_offset(i, shape, strides):
    """Element offset of flat index i of a strided view (C order over `shape`)."""
    o = 0
    for d in range(len(shape) - 1, -1, -1):
        q = i % shape[d]
        i //= shape[d]
        o += q * strides[d]
    return o


@kernel_factory
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
                out[i] = f(a[flat_offset(i, shape, sa)], b[flat_offset(i, shape, sb)])
    return cuda.jit(kernel)


@kernel_factory
def _unary_kernel(op):
    f = cuda.jit(device=True)(_UNARY[op][1])

    def kernel(a, out):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = f(a[i])
    return cuda.jit(kernel)


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
    out_dtype = result_dtype(_BINARY[op][0], a, b)
    calc = np.result_type(dtype_of(a), dtype_of(b))
    if not isinstance(b, DeviceArray):
        out = new(a.shape, out_dtype)
        launch_flat(_binary_kernel(op, "array_scalar"), out.size, a.buf, calc.type(b), out.buf)
    elif not isinstance(a, DeviceArray):
        out = new(b.shape, out_dtype)
        launch_flat(_binary_kernel(op, "scalar_array"), out.size, calc.type(a), b.buf, out.buf)
    elif a.shape == b.shape:
        out = new(a.shape, out_dtype)
        launch_flat(_binary_kernel(op, "same"), out.size, a.buf, b.buf, out.buf)
    else:
        shape = np.broadcast_shapes(a.shape, b.shape)
        out = new(shape, out_dtype)
        launch_flat(_binary_kernel(op, "broadcast"), out.size, a.buf, broadcast_strides(a.shape, shape),
                    b.buf, broadcast_strides(b.shape, shape), kernel_shape(shape), out.buf)
    return out


def _unary(op, a):
    a = operand(a)
    out = new(a.shape, result_dtype(_UNARY[op][0], a))
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

@cuda.jit
def _gather(src, offset, strides, shape, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = src[offset + flat_offset(i, shape, strides)]


@cuda.jit
def _scatter(dst, offset, strides, shape, src):
    i = cuda.grid(1)
    if i < src.size:
        dst[offset + flat_offset(i, shape, strides)] = src[i]


@cuda.jit
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

