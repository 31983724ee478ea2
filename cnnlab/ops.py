"""Differentiable tensor primitives: arithmetic, reductions, shapes, indexing, casts.

One Function per primitive, backward beside forward (the tape that calls them is
cnnlab/autograd.py). Derived operations (subtraction of a scalar, mean, flatten ...)
are built from these in tensor.py and need no backward of their own. Every rule calls
the backend through `ctx.backend`, never NumPy directly, so it runs unchanged on any
device (the few at the end that have no backend kernel say so and use `host`). Options (axes, shapes, exponents) are keywords; backward returns one gradient
per positional input.
"""
from __future__ import annotations

import itertools

import numpy as np

from .autograd import Function


class Binary(Function):
    """a <op> b with NumPy's broadcasting; each input's gradient is summed back to its own shape.

    A subclass gives `f(B, a, b)`, the gradients `da(B, g, a, b)`, `db(B, g, a, b)`, and
    `reads(need_a, need_b)`: which of a and b those gradients read, the only ones saved
    (as PyTorch: `y = a + b` saves nothing, so changing a in place afterwards is fine).
    """

    reads = staticmethod(lambda need_a, need_b: (False, False))

    @classmethod
    def forward(cls, ctx, a, b):
        keep_a, keep_b = cls.reads(*ctx.needs_input_grad)
        ctx.save_for_backward(a if keep_a else None, b if keep_b else None)
        ctx.shapes = (getattr(a, "shape", ()), getattr(b, "shape", ()))
        return cls.f(ctx.backend, a, b)

    @classmethod
    def backward(cls, ctx, g):
        B, (a, b), (sa, sb) = ctx.backend, ctx.saved, ctx.shapes
        need_a, need_b = ctx.needs_input_grad
        ga = B.sum_to_shape(cls.da(B, g, a, b), sa) if need_a else None
        gb = B.sum_to_shape(cls.db(B, g, a, b), sb) if need_b else None
        return ga, gb


class Add(Binary):
    f = staticmethod(lambda B, a, b: B.add(a, b))
    da = db = staticmethod(lambda B, g, a, b: g)


class Sub(Binary):
    f = staticmethod(lambda B, a, b: B.subtract(a, b))
    da = staticmethod(lambda B, g, a, b: g)
    db = staticmethod(lambda B, g, a, b: B.negative(g))


class Mul(Binary):
    f = staticmethod(lambda B, a, b: B.multiply(a, b))
    da = staticmethod(lambda B, g, a, b: B.multiply(g, b))
    db = staticmethod(lambda B, g, a, b: B.multiply(g, a))
    reads = staticmethod(lambda need_a, need_b: (need_b, need_a))


class Div(Binary):
    f = staticmethod(lambda B, a, b: B.divide(a, b))
    da = staticmethod(lambda B, g, a, b: B.divide(g, b))
    db = staticmethod(lambda B, g, a, b: B.negative(B.divide(B.multiply(g, a), B.multiply(b, b))))
    reads = staticmethod(lambda need_a, need_b: (need_b, True))


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return ctx.backend.negative(a)

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.negative(g),)


class Pow(Function):
    """a ** e for a Python-number exponent e."""

    @staticmethod
    def forward(ctx, a, *, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return ctx.backend.power(a, a.dtype.type(exponent))

    @staticmethod
    def backward(ctx, g):
        B, (a,), e = ctx.backend, ctx.saved, ctx.exponent
        return B.multiply(g, B.multiply(a.dtype.type(e), B.power(a, a.dtype.type(e - 1))))


class Pointwise(Function):
    """y = f(a) element by element, whose gradient g * f'(a) is written from a or y.

    A subclass gives `f(B, a)` and `df(B, g, a, y)`, B being the backend, and sets
    `from_output` when df reads y (then a is not kept, and df gets None for it).
    """

    from_output = False

    @classmethod
    def forward(cls, ctx, a):
        y = cls.f(ctx.backend, a)
        ctx.save_for_backward(*((None, y) if cls.from_output else (a, None)))
        return y

    @classmethod
    def backward(cls, ctx, g):
        return cls.df(ctx.backend, g, *ctx.saved)


class Exp(Pointwise):
    from_output = True
    f = staticmethod(lambda B, a: B.exp(a))
    df = staticmethod(lambda B, g, a, y: B.multiply(g, y))  # e^a is its own derivative


class Log(Pointwise):
    f = staticmethod(lambda B, a: B.log(a))
    df = staticmethod(lambda B, g, a, y: B.divide(g, a))


class Abs(Pointwise):
    f = staticmethod(lambda B, a: B.absolute(a))
    df = staticmethod(lambda B, g, a, y: B.multiply(g, B.sign(a)))


class Clamp(Function):
    @staticmethod
    def forward(ctx, a, *, lo, hi):
        ctx.save_for_backward(a)
        ctx.bounds = (lo, hi)
        return ctx.backend.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, g):
        B, (a,), (lo, hi) = ctx.backend, ctx.saved, ctx.bounds
        inside = B.full(a.shape, True, bool)
        if lo is not None:
            inside = inside & B.greater_equal(a, lo)
        if hi is not None:
            inside = inside & B.less_equal(a, hi)
        return B.multiply(g, inside.astype(g.dtype))


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        B, (a, b) = ctx.backend, ctx.saved
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (B.multiply(g, b) if need_a else None), (B.multiply(g, a) if need_b else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = g2[..., None, :]
        if b.ndim == 1:
            g2 = g2[..., None]
        ga = gb = None
        if need_a:
            ga = B.sum_to_shape(B.matmul(g2, B.transpose(b2, _swap_last(b2.ndim))), a2.shape)
            ga = B.reshape(ga, a.shape)
        if need_b:
            gb = B.sum_to_shape(B.matmul(B.transpose(a2, _swap_last(a2.ndim)), g2), b2.shape)
            gb = B.reshape(gb, b.shape)
        return ga, gb


def _swap_last(ndim):
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, *, axis, keepdims):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return ctx.backend.sum(a, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        B = ctx.backend
        if ctx.axis is not None and not ctx.keepdims:
            axes = sorted(ax % len(ctx.shape) for ax in ctx.axis)
            shape = list(g.shape)
            for ax in axes:
                shape.insert(ax, 1)
            g = B.reshape(g, shape)
        return B.ascontiguous(B.broadcast_to(g, ctx.shape))


class Max(Function):
    """Max over axes; ties share the gradient equally (as PyTorch's amax)."""

    @staticmethod
    def forward(ctx, a, *, axis, keepdims):
        B = ctx.backend
        y = B.amax(a, axis=axis, keepdims=True)
        ctx.save_for_backward(a, y)
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else B.reshape(y, B.amax(a, axis=axis).shape if axis is not None else ())

    @staticmethod
    def backward(ctx, g):
        B, (a, y) = ctx.backend, ctx.saved
        mask = B.equal(a, y).astype(a.dtype)
        count = B.sum(mask, axis=ctx.axis, keepdims=True)
        g = B.reshape(g, y.shape)
        return B.divide(B.multiply(mask, g), count)


class Rearrange(Function):
    """Reshape, transpose or cast: backward is the same backend call, with the argument that undoes forward's.

    A subclass gives `call(B, array, arg)` and `undo(a, arg)`; its one option is `arg`, by its own name.
    """

    @classmethod
    def forward(cls, ctx, a, **option):
        [arg] = option.values()
        ctx.undo = cls.undo(a, arg)
        return cls.call(ctx.backend, a, arg)

    @classmethod
    def backward(cls, ctx, g):
        return cls.call(ctx.backend, g, ctx.undo)


class Reshape(Rearrange):  # option: shape
    call = staticmethod(lambda B, a, shape: B.reshape(a, shape))
    undo = staticmethod(lambda a, shape: a.shape)


class Permute(Rearrange):  # option: axes
    call = staticmethod(lambda B, a, axes: B.transpose(a, axes))
    undo = staticmethod(lambda a, axes: inverse_permutation(axes))


class Cast(Rearrange):  # option: dtype; only floating-point tensors take gradients, so g goes back to a float
    call = staticmethod(lambda B, a, dtype: B.astype(a, dtype))
    undo = staticmethod(lambda a, dtype: a.dtype)


def inverse_permutation(axes: tuple[int, ...]) -> tuple[int, ...]:
    """The axes that undo a transpose by `axes`."""
    inverse = [0] * len(axes)
    for i, ax in enumerate(axes):
        inverse[ax] = i
    return tuple(inverse)


class GetItem(Function):
    @staticmethod
    def forward(ctx, a, *, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return ctx.backend.getitem(a, index)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.index_add(ctx.shape, ctx.dtype, ctx.index, g)


class Where(Function):
    """a where cond holds, else b; cond (a boolean array) takes no gradient."""

    @staticmethod
    def forward(ctx, a, b, *, cond):
        ctx.cond, ctx.shapes = cond, (a.shape, b.shape)
        return ctx.backend.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        B = ctx.backend
        zero = B.zeros((), g.dtype)
        ga = B.sum_to_shape(B.where(ctx.cond, g, zero), ctx.shapes[0])
        gb = B.sum_to_shape(B.where(ctx.cond, zero, g), ctx.shapes[1])
        return ga, gb


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.splits = list(itertools.accumulate(a.shape[axis] for a in arrays[:-1]))
        return ctx.backend.concatenate(arrays, axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(ctx.backend.split(g, ctx.splits, ctx.axis))


class Assign(Function):
    """base with the part that `chain` selects replaced by value, written into base's own array.

    chain is a view's path from its base: steps ("index", i), ("reshape", shape),
    ("permute", axes); `x[i] = v` is the chain (("index", i),). base's gradient is g with
    that part zeroed (it was overwritten); value's is that part, summed to value's shape.
    """

    @staticmethod
    def forward(ctx, base, value, *, chain):
        ctx.chain, ctx.value_shape = chain, getattr(value, "shape", ())
        _write(ctx.backend, base, chain, value)
        return base

    @staticmethod
    def backward(ctx, g):
        B = ctx.backend
        need_base, need_value = ctx.needs_input_grad
        g_base = g_value = None
        if need_base:
            g_base = B.copy(g)
            _write(B, g_base, ctx.chain, g.dtype.type(0))
        if need_value:
            g_value = B.sum_to_shape(B.ascontiguous(follow(B, g, ctx.chain)), ctx.value_shape)
        return g_base, g_value


def _write(B, a, chain, value) -> None:
    # the last index is written by a's own __setitem__: on the GPU getitem copies, setitem does not
    *path, (kind, arg) = chain
    part = follow(B, a, path)
    if kind == "index":
        part[arg] = value
    else:
        follow(B, part, [(kind, arg)])[...] = value


def follow(B, a, chain):
    """The view of array a that the steps of chain select (NumPy's views on the CPU)."""
    for kind, arg in chain:
        a = B.getitem(a, arg) if kind == "index" else B.reshape(a, arg) if kind == "reshape" else B.transpose(a, arg)
    return a


# ----------------------------------------------------------- computed on the host
# The backend contract has no kernels for these (rare in CNN code): their arrays go to the
# host, NumPy computes, the result comes back -- correct on every device, fast on none.
def host(B, fn, *arrays):
    """fn on the host copies of arrays, the result back on B's device (a fresh C-ordered array)."""
    out = fn(*[B.to_numpy(a) for a in arrays])
    return B.from_numpy(np.array(out, order="C", copy=True))


class Sin(Pointwise):
    f = staticmethod(lambda B, a: host(B, np.sin, a))
    df = staticmethod(lambda B, g, a, y: B.multiply(g, host(B, np.cos, a)))


class Cos(Pointwise):
    f = staticmethod(lambda B, a: host(B, np.cos, a))
    df = staticmethod(lambda B, g, a, y: B.negative(B.multiply(g, host(B, np.sin, a))))


class Prod(Function):
    """Product over one axis (or all elements); the gradient of each element is the product of
    the others, from running products on both sides (exact where elements are zero)."""

    @staticmethod
    def forward(ctx, a, *, axis, keepdims):
        ctx.save_for_backward(a)
        ctx.axis, ctx.keepdims = axis, keepdims
        return host(ctx.backend, lambda x: np.prod(x, axis=axis, keepdims=keepdims), a)

    @staticmethod
    def backward(ctx, g):
        B, (a,), axis = ctx.backend, ctx.saved, ctx.axis

        def others(x, gy):
            flat = x.reshape(-1) if axis is None else np.moveaxis(x, axis, -1)
            ones = np.ones(flat.shape[:-1] + (1,), x.dtype)
            left = np.cumprod(np.concatenate([ones, flat[..., :-1]], -1), -1)
            right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], -1), -1)[..., ::-1]
            gy = gy.reshape(()) if axis is None else (gy if ctx.keepdims else np.expand_dims(gy, axis))
            gy = gy if axis is None else np.moveaxis(gy, axis, -1)
            d = left * right * gy
            return d.reshape(x.shape) if axis is None else np.moveaxis(d, -1, axis)

        return host(B, others, a, g)


class Normal(Function):
    """mean + std * noise (noise drawn beforehand, N(0, 1)): PyTorch's normal(mean, std), whose
    gradient to mean and std is zero (a draw, not a reparameterisation)."""

    @staticmethod
    def forward(ctx, mean, std, *, noise):
        B = ctx.backend
        ctx.shapes = (getattr(mean, "shape", ()), getattr(std, "shape", ()))
        return B.add(B.multiply(std, noise), mean)

    @staticmethod
    def backward(ctx, g):
        return tuple(ctx.backend.zeros(shape, g.dtype) if need else None
                     for shape, need in zip(ctx.shapes, ctx.needs_input_grad))


class Einsum(Function):
    """NumPy's einsum; operand i's gradient is the einsum of g with the other operands, spread
    over the letters only operand i has (they were summed out)."""

    @staticmethod
    def forward(ctx, *arrays, equation, inputs, output):
        ctx.save_for_backward(*arrays)
        ctx.inputs, ctx.output = inputs, output
        return host(ctx.backend, lambda *xs: np.einsum(equation, *xs), *arrays)

    @staticmethod
    def backward(ctx, g):
        B, subs = ctx.backend, ctx.inputs
        grads = []
        for i, need in enumerate(ctx.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            s, others = subs[i], [x for j, x in enumerate(subs) if j != i]
            if "." in s or len(set(s)) != len(s):
                raise RuntimeError(f"einsum: cnnlab has no gradient for an operand with '...' or a repeated "
                                   f"letter ({s!r}); write that part with other tensor ops")
            seen = set(ctx.output).union(*others)
            keep = "".join(c for c in s if c in seen)
            eq = ",".join([ctx.output] + others) + "->" + keep
            arrays = [x for j, x in enumerate(ctx.saved) if j != i]

            def grad(gy, *xs, s=s, seen=seen, eq=eq):
                shape = xs[-1].shape
                r = np.einsum(eq, gy, *xs[:-1]).reshape([n if c in seen else 1 for c, n in zip(s, shape)])
                return np.broadcast_to(r, shape)

            grads.append(host(B, grad, g, *arrays, ctx.saved[i]))
        return tuple(grads)
