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

`f32x16` is the sixteen-lane twin for kernels that run only where the CPU has AVX-512
(cpu_conv_masked.py): one zmm register per value, half the instructions per multiply-add
of the eight-lane code. vload16, vload16_masked, vsplat16 and vzero16 make one; vfma,
vadd, vstore and vstore_first take either width.

prefetch and prefetch_for_write ask for a cache line ahead of its use and touch no
register; unlike the loads, their index may lie outside the array.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

LANES = 8
_VEC = ir.VectorType(ir.FloatType(), LANES)
_VEC16 = ir.VectorType(ir.FloatType(), 16)
_I32 = ir.IntType(32)


class F32x8(types.Type):
    """Eight float32 lanes held in one (vector) register."""

    def __init__(self) -> None:
        super().__init__(name="f32x8")


f32x8 = F32x8()


class F32x16(types.Type):
    """Sixteen float32 lanes held in one (AVX-512) vector register."""

    def __init__(self) -> None:
        super().__init__(name="f32x16")


f32x16 = F32x16()
_IR = {f32x8: _VEC, f32x16: _VEC16}   # each vector type's LLVM type


@register_model(F32x8)
class _F32x8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


@register_model(F32x16)
class _F32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC16)


def _address(context, builder, array_type, array, index, vec=_VEC):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), vec.as_pointer())


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
def vload16(typingctx, array, index):
    """The sixteen float32 values array.flat[index:index + 16] (vload's twin)."""
    if not (_float32_array(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        return builder.load(_address(context, builder, sig.args[0], args[0], index, _VEC16), align=4)
    return f32x16(array, index), codegen


@intrinsic
def vstore(typingctx, array, index, value):
    """array.flat[index:index + lanes] = value (either width)."""
    if not (_float32_array(array) and isinstance(index, types.Integer) and value in _IR):
        return None

    def codegen(context, builder, sig, args):
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        builder.store(args[2], _address(context, builder, sig.args[0], args[0], index, _IR[sig.args[2]]), align=4)
        return context.get_dummy_value()
    return types.none(array, index, value), codegen


def _splat(builder, value, vector_type):
    """`value` in every lane of a vector_type (an insert into lane 0, then a shuffle)."""
    one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(one, ir.Constant(vector_type, ir.Undefined),
                                  ir.Constant(ir.VectorType(_I32, vector_type.count), [0] * vector_type.count))


def _masked_name(op: str, lanes: int = LANES) -> str:
    # LLVM names an intrinsic after its pointer type: typed pointers (LLVM < 15) spell the
    # pointee, opaque pointers do not
    from llvmlite import binding
    return f"llvm.masked.{op}.v{lanes}f32." + (f"p0v{lanes}f32" if binding.llvm_version_info[0] < 15 else "p0")


@intrinsic
def vstore_first(typingctx, array, index, value, count):
    """array.flat[index:index + count] = the first `count` lanes of value (0 <= count <= its
    lanes, either width); nothing past them is written (one masked store)."""
    if not (_float32_array(array) and isinstance(index, types.Integer) and value in _IR
            and isinstance(count, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        vec = _IR[sig.args[2]]
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        lanes = ir.VectorType(_I32, vec.count)
        n = _splat(builder, builder.trunc(context.cast(builder, args[3], sig.args[3], types.int64), _I32), lanes)
        mask = builder.icmp_signed("<", ir.Constant(lanes, list(range(vec.count))), n)
        store = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [vec, vec.as_pointer(), _I32, mask.type]),
            _masked_name("store", vec.count))
        where = _address(context, builder, sig.args[0], args[0], index, vec)
        builder.call(store, [args[2], where, ir.Constant(_I32, 4), mask])
        return context.get_dummy_value()
    return types.none(array, index, value, count), codegen


def _masked_load(vtype, bits_type):
    """vload_masked for one width: lane i is array.flat[index + i] where bit i of `bits`
    is set, else 0.0, and the lanes left out are not read."""
    vec = _IR[vtype]

    def typer(typingctx, array, index, bits):
        if not (_float32_array(array) and isinstance(index, types.Integer) and isinstance(bits, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            index = context.cast(builder, args[1], sig.args[1], types.intp)
            word = context.cast(builder, args[2], sig.args[2], bits_type)
            mask = builder.bitcast(word, ir.VectorType(ir.IntType(1), vec.count))
            load = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vec, [vec.as_pointer(), _I32, mask.type, vec]),
                _masked_name("load", vec.count))
            return builder.call(load, [_address(context, builder, sig.args[0], args[0], index, vec),
                                       ir.Constant(_I32, 4), mask, ir.Constant(vec, [0.0] * vec.count)])
        return vtype(array, index, bits), codegen
    return typer


vload_masked = intrinsic(_masked_load(f32x8, types.uint8))
vload_masked.__doc__ = """array.flat[index + i] in lane i where bit i of `bits` (a byte) is set, 0.0 elsewhere.
The lanes left out are not read (one masked load), so they may lie outside the array: a
kernel reads a plane's neighbours this way without padding it first (cpu_conv_masked.py)."""
vload16_masked = intrinsic(_masked_load(f32x16, types.uint16))
vload16_masked.__doc__ = "vload_masked's sixteen-lane twin: bit i of `bits` (16 bits) keeps lane i."


def _prefetch_name() -> str:
    # named after its pointer type, as _masked_name says
    from llvmlite import binding
    return "llvm.prefetch." + ("p0i8" if binding.llvm_version_info[0] < 15 else "p0")


def _prefetcher(write: int):
    """prefetch (write 0) or prefetch_for_write (1)."""
    def typer(typingctx, array, index):
        if not (isinstance(array, types.Array) and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            index = context.cast(builder, args[1], sig.args[1], types.intp)
            data = context.make_array(sig.args[0])(context, builder, args[0]).data
            where = builder.bitcast(builder.gep(data, [index]), ir.IntType(8).as_pointer())
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [where.type, _I32, _I32, _I32]), _prefetch_name())
            # read or write, keep in every cache level (locality 3), data cache (1)
            builder.call(fn, [where, ir.Constant(_I32, write), ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
            return context.get_dummy_value()
        return types.none(array, index), codegen
    return typer


prefetch = intrinsic(_prefetcher(0))
prefetch.__doc__ = """Ask the CPU to bring the cache line of array.flat[index] into its caches for a read
soon (a hint: nothing is loaded into a register, and an index outside the array is allowed,
since a prefetch never faults). For a kernel whose loads run along more streams than the
hardware prefetchers follow (cpu_conv_masked.py)."""
prefetch_for_write = intrinsic(_prefetcher(1))
prefetch_for_write.__doc__ = """prefetch for a line the kernel will write: the CPU fetches it with the right to
modify it, so the store later neither waits for the line nor asks for it a second time."""


@intrinsic
def vsplat(typingctx, scalar):
    """A vector of eight copies of a float32."""
    if scalar != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return _splat(builder, args[0], _VEC)
    return f32x8(scalar), codegen


@intrinsic
def vsplat16(typingctx, scalar):
    """A vector of sixteen copies of a float32."""
    if scalar != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return _splat(builder, args[0], _VEC16)
    return f32x16(scalar), codegen


@intrinsic
def vzero(typingctx):
    """Eight zeros."""
    def codegen(context, builder, sig, args):
        return ir.Constant(_VEC, [0.0] * LANES)
    return f32x8(), codegen


@intrinsic
def vzero16(typingctx):
    """Sixteen zeros."""
    def codegen(context, builder, sig, args):
        return ir.Constant(_VEC16, [0.0] * 16)
    return f32x16(), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """a * b + c lane by lane, rounded once (a fused multiply-add; either width)."""
    if not (a == b == c and a in _IR):
        return None

    def codegen(context, builder, sig, args):
        vec = _IR[sig.args[0]]
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                             f"llvm.fma.v{vec.count}f32")
        return builder.call(fma, args)
    return a(a, b, c), codegen


@intrinsic
def vadd(typingctx, a, b):
    """a + b lane by lane (either width)."""
    if not (a == b and a in _IR):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])
    return a(a, b), codegen


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
