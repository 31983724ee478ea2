"""Differentiable tensor primitives: arithmetic, reductions, shapes, indexing.

One Function per primitive, backward beside forward. Derived operations
(subtraction of a scalar, mean, flatten ...) are built from these in tensor.py
and need no backward of their own. Every rule calls the backend through
`ctx.backend`, never NumPy directly, so it runs unchanged on any device.
"""
from __future__ import annotations

from .autograd import Function


def _unbroadcast(B, g, shape):
    return None if g is None else B.sum_to_shape(g, shape)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, getattr(b, "shape", ()))
        return ctx.backend.add(a, b)

    @staticmethod
    def backward(ctx, g):
        B = ctx.backend
        return _unbroadcast(B, g, ctx.shapes[0]), _unbroadcast(B, g, ctx.shapes[1])


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, getattr(b, "shape", ()))
        return ctx.backend.subtract(a, b)

    @staticmethod
    def backward(ctx, g):
        B = ctx.backend
        return _unbroadcast(B, g, ctx.shapes[0]), _unbroadcast(B, B.negative(g), ctx.shapes[1])


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.multiply(a, b)

    @staticmethod
    def backward(ctx, g):
        B, (a, b) = ctx.backend, ctx.saved
        need_a, need_b = ctx.needs_input_grad
        ga = _unbroadcast(B, B.multiply(g, b), a.shape) if need_a else None
        gb = _unbroadcast(B, B.multiply(g, a), b.shape) if need_b else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.divide(a, b)

    @staticmethod
    def backward(ctx, g):
        B, (a, b) = ctx.backend, ctx.saved
        need_a, need_b = ctx.needs_input_grad
        ga = _unbroadcast(B, B.divide(g, b), a.shape) if need_a else None
        gb = None
        if need_b:
            gb = _unbroadcast(B, B.negative(B.divide(B.multiply(g, a), B.multiply(b, b))), b.shape)
        return ga, gb


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
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return ctx.backend.power(a, a.dtype.type(exponent))

    @staticmethod
    def backward(ctx, g):
        B, (a,), e = ctx.backend, ctx.saved, ctx.exponent
        return B.multiply(g, B.multiply(a.dtype.type(e), B.power(a, a.dtype.type(e - 1)))), None


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        y = ctx.backend.exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.multiply(g, ctx.saved[0]),)


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.log(a)

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.divide(g, ctx.saved[0]),)


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.absolute(a)

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.multiply(g, ctx.backend.sign(ctx.saved[0])),)


class Clamp(Function):
    @staticmethod
    def forward(ctx, a, lo, hi):
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
        return B.multiply(g, inside.astype(g.dtype)), None, None


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
    def forward(ctx, a, axis, keepdims):
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
        return B.ascontiguous(B.broadcast_to(g, ctx.shape)), None, None


class Max(Function):
    """Max over axes; ties share the gradient equally (as PyTorch's amax)."""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
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
        return B.divide(B.multiply(mask, g), count), None, None


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return ctx.backend.reshape(a, shape)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.reshape(g, ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return ctx.backend.transpose(a, axes)

    @staticmethod
    def backward(ctx, g):
        inverse = [0] * len(ctx.axes)
        for i, ax in enumerate(ctx.axes):
            inverse[ax] = i
        return ctx.backend.transpose(g, tuple(inverse)), None


class GetItem(Function):
    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return ctx.backend.getitem(a, index)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.index_add(ctx.shape, ctx.dtype, ctx.index, g), None


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond, ctx.shapes = cond, (a.shape, b.shape)
        return ctx.backend.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        B = ctx.backend
        zero = B.zeros((), g.dtype)
        ga = _unbroadcast(B, B.where(ctx.cond, g, zero), ctx.shapes[0])
        gb = _unbroadcast(B, B.where(ctx.cond, zero, g), ctx.shapes[1])
        return None, ga, gb


class Cat(Function):
    @staticmethod
    def forward(ctx, axis, *arrays):
        import numpy as np  # concatenation sizes only; the arrays go through the backend

        ctx.axis = axis
        ctx.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return ctx.backend.concatenate(arrays, axis)

    @staticmethod
    def backward(ctx, g):
        return (None, *ctx.backend.split(g, ctx.splits, ctx.axis))
