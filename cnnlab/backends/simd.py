"""Eight-lane float32 vectors for numba kernels: a value type and the handful of operations
the tiled convolution needs (cpu_conv_tiled.py).

Why: a fast convolution keeps a block of outputs (output channels x positions) in vector
registers while it runs through every input channel and tap, the way a BLAS micro-kernel
does. Written as scalar numba loops, LLVM keeps such accumulators in memory instead, and
the direct 3x3 pass then spent more time loading and storing its sums and weights than
multiplying (about 50% of the machine's sgemm peak). A numba variable of type `f32x8` is
one LLVM `<8 x float>` value, so a block of them stays in registers across the loop.

The type lowers to plain LLVM vector IR (load, store, shufflevector, llvm.fma), so it
compiles on any CPU numba supports: AVX2 and AVX-512 machines use one register per value,
SSE machines two, others scalar code. Loads and stores are unaligned (align 4) and index
a C-contiguous array's data by a flat element offset, which the caller keeps in bounds.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

LANES = 8
_VEC = ir.VectorType(ir.FloatType(), LANES)
_I32 = ir.IntType(32)


class F32x8(types.Type):
    """Eight float32 lanes held in one (vector) register."""

    def __init__(self) -> None:
        super().__init__(name="f32x8")


f32x8 = F32x8()


@register_model(F32x8)
class _F32x8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _address(context, builder, array_type, array, index):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), _VEC.as_pointer())


def _float32_array(a) -> bool:
    return isinstance(a, types.Array) and a.dtype == types.float32 and a.layout == "C"


@intrinsic
def vload(typingctx, array, index):
    """The eight float32 values array.flat[index:index + 8] (C-contiguous array, any rank)."""
    if not (_float32_array(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        return builder.load(_address(context, builder, sig.args[0], args[0], index), align=4)
    return f32x8(array, index), codegen


@intrinsic
def vstore(typingctx, array, index, value):
    """array.flat[index:index + 8] = value."""
    if not (_float32_array(array) and isinstance(index, types.Integer) and value == f32x8):
        return None

    def codegen(context, builder, sig, args):
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        builder.store(args[2], _address(context, builder, sig.args[0], args[0], index), align=4)
        return context.get_dummy_value()
    return types.none(array, index, value), codegen


def _splat(builder, value, vector_type):
    """`value` in every lane of a vector_type (an insert into lane 0, then a shuffle)."""
    one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(one, ir.Constant(vector_type, ir.Undefined),
                                  ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _masked_name(op: str) -> str:
    # LLVM names an intrinsic after its pointer type: typed pointers (LLVM < 15) spell the
    # pointee, opaque pointers do not
    from llvmlite import binding
    return f"llvm.masked.{op}.v8f32." + ("p0v8f32" if binding.llvm_version_info[0] < 15 else "p0")


@intrinsic
def vstore_first(typingctx, array, index, value, count):
    """array.flat[index:index + count] = the first `count` lanes of value (0 <= count <= 8);
    nothing past them is written (one masked store)."""
    if not (_float32_array(array) and isinstance(index, types.Integer) and value == f32x8
            and isinstance(count, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        lanes = ir.VectorType(_I32, LANES)
        n = _splat(builder, builder.trunc(context.cast(builder, args[3], sig.args[3], types.int64), _I32), lanes)
        mask = builder.icmp_signed("<", ir.Constant(lanes, list(range(LANES))), n)
        store = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [_VEC, _VEC.as_pointer(), _I32, ir.VectorType(ir.IntType(1), LANES)]),
            _masked_name("store"))
        builder.call(store, [args[2], _address(context, builder, sig.args[0], args[0], index), ir.Constant(_I32, 4), mask])
        return context.get_dummy_value()
    return types.none(array, index, value, count), codegen


@intrinsic
def vload_masked(typingctx, array, index, bits):
    """array.flat[index + i] in lane i where bit i of `bits` is set, 0.0 elsewhere. The lanes
    left out are not read (one masked load), so they may lie outside the array: a kernel
    reads a plane's neighbours this way without padding it first (cpu_conv_masked.py)."""
    if not (_float32_array(array) and isinstance(index, types.Integer) and isinstance(bits, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        byte = context.cast(builder, args[2], sig.args[2], types.uint8)
        mask = builder.bitcast(byte, ir.VectorType(ir.IntType(1), LANES))
        load = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_VEC, [_VEC.as_pointer(), _I32, mask.type, _VEC]), _masked_name("load"))
        return builder.call(load, [_address(context, builder, sig.args[0], args[0], index), ir.Constant(_I32, 4), mask,
                                   ir.Constant(_VEC, [0.0] * LANES)])
    return f32x8(array, index, bits), codegen


@intrinsic
def vsplat(typingctx, scalar):
    """A vector of eight copies of a float32."""
    if scalar != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return _splat(builder, args[0], _VEC)
    return f32x8(scalar), codegen


@intrinsic
def vzero(typingctx):
    """Eight zeros."""
    def codegen(context, builder, sig, args):
        return ir.Constant(_VEC, [0.0] * LANES)
    return f32x8(), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """a * b + c lane by lane, rounded once (a fused multiply-add)."""
    if not (a == b == c == f32x8):
        return None

    def codegen(context, builder, sig, args):
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3), "llvm.fma.v8f32")
        return builder.call(fma, args)
    return f32x8(a, b, c), codegen


@intrinsic
def vadd(typingctx, a, b):
    """a + b lane by lane."""
    if not (a == b == f32x8):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])
    return f32x8(a, b), codegen


@intrinsic
def vsum(typingctx, a):
    """The sum of the eight lanes, always in the same order (pairs, then pairs of pairs),
    so a kernel that uses it gives the same bits on every run."""
    if a != f32x8:
        return None

    def codegen(context, builder, sig, args):
        lanes = [builder.extract_element(args[0], ir.Constant(_I32, i)) for i in range(LANES)]
        while len(lanes) > 1:
            lanes = [builder.fadd(lanes[i], lanes[i + 1]) for i in range(0, len(lanes), 2)]
        return lanes[0]
    return types.float32(a), codegen


@intrinsic
def vsum8(typingctx, a0, a1, a2, a3, a4, a5, a6, a7):
    """Eight vectors' lane sums as one vector: lane m is vsum(a_m), added in vsum's order
    (lane pairs, then pairs of pairs), so the bits are the same. One vector of eight sums
    costs 7 adds and 14 shuffles where eight vsum calls cost 56 adds and 64 extractions."""
    if not all(a == f32x8 for a in (a0, a1, a2, a3, a4, a5, a6, a7)):
        return None

    def halves(builder, a, b):
        # the sums of a's neighbouring lanes, then b's: [a0+a1, a2+a3, ..., b0+b1, ...]
        even = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, LANES), list(range(0, 16, 2))))
        odd = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, LANES), list(range(1, 16, 2))))
        return builder.fadd(even, odd)

    def codegen(context, builder, sig, args):
        # level 1: [a0 pairs | a1 pairs], ...; level 2: [a0 quads, a1 quads | a2 ..., a3 ...];
        # level 3: [sum a0, sum a1, ..., sum a7] -- each lane sees vsum's tree
        v = [halves(builder, args[i], args[i + 1]) for i in range(0, 8, 2)]
        v = [halves(builder, v[i], v[i + 1]) for i in range(0, 4, 2)]
        return halves(builder, v[0], v[1])
    return f32x8(a0, a1, a2, a3, a4, a5, a6, a7), codegen
