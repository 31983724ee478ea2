"""Issue 19: the conv kernels' variants give the same bits, and the 32-bit ones stay 32-bit.

The conv kernels index in 32 bits unless an array has 2**31 elements or more, and copy a
block's weights into shared memory (in chunks of summed channels) unless one channel's
weights do not fit. Checked: where the switch to 64 bits falls (host arithmetic), that every
variant gives the bits of the default one (in the simulator, or on a GPU; the default is
compared with the CPU backend in test_cuda_kernels.py), and, in the PTX numba's real compiler
makes (no GPU needed, only the `cuda` extra's NVVM), that the 32-bit kernels' innermost loops
do no 64-bit integer arithmetic but the address of each load.
"""
from __future__ import annotations

import collections
import re

import numpy as np
import pytest

from cuda_twins import SIMULATOR, cuda, rand, to_device, to_host


def _conv():
    from cnnlab.backends import cuda_conv

    return cuda_conv


@pytest.mark.without_cuda
@pytest.mark.parametrize("x_shape,w_shape,out_hw,wide", [
    ((1, 1, 46340, 46340), (1, 1, 1, 1), (46340, 46340), False),  # 2,147,395,600 elements: fits
    ((1, 1, 46341, 46341), (1, 1, 1, 1), (1, 1), True),            # 2,147,488,281 >= 2**31 - 1: the input
    ((2, 1, 8, 8), (1, 1, 3, 3), (32768, 32768), True),            # 2 * 2**30: the output
    ((1, 32768, 1, 1), (65536, 32768, 1, 1), (1, 1), True),        # 2**31: the weight
    ((256, 512, 128, 128), (512, 512, 3, 3), (128, 128), True),    # a big batch: 2**31 exactly
    ((128, 512, 128, 128), (512, 512, 3, 3), (128, 128), False),   # half of it
])
def test_64_bit_indices_only_from_2_31_elements(x_shape, w_shape, out_hw, wide):
    pytest.importorskip("numba.cuda")
    dims, got = _conv()._dims(x_shape, w_shape, out_hw)
    assert got is wide
    assert [int(v) for v in dims] == [*x_shape, w_shape[0], *w_shape[2:], *out_hw]
    assert {type(v) for v in dims} == {np.int64 if wide else np.int32}


CASES = [  # x shape, w shape, stride, padding, dilation
    ((1, 3, 5, 4), (5, 3, 3, 3), (1, 1), (1, 1), (1, 1)),  # staged in chunks: 2 + 1 input, 2 + 2 + 1 output channels
    ((1, 2, 7, 8), (3, 2, 2, 3), (2, 3), (2, 1), (2, 2)),
    ((1, 1, 7, 6), (2, 1, 5, 5), (1, 2), (2, 2), (1, 1)),  # 25 taps: several weight-gradient passes
]


VARIANTS = {  # module setting to change: value, and what the launches must show
    "64-bit indices": ("_INT32_LIMIT", 0),
    "weights staged in chunks": ("W_TILE_BYTES", None),  # room for two summed channels (set below)
    "weights read from global memory": ("W_TILE_BYTES", 4),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("xs,ws,s,p,d", CASES)
def test_every_kernel_variant_gives_the_same_bits(monkeypatch, xs, ws, s, p, d, variant):
    from cnnlab import _config
    from cnnlab.backends import cuda_array

    C, conv = cuda(), _conv()
    x, w, b = rand(*xs), rand(*ws), rand(ws[0])
    out_hw = tuple((n + 2 * pd - dl * (k - 1) - 1) // st + 1 for n, k, st, pd, dl in zip(xs[2:], ws[2:], s, p, d))
    g = rand(xs[0], ws[0], *out_hw)

    def run():
        xd, wd, bd, gd = to_device((x, w, b, g))
        y, _ = C.conv2d_forward(xd, wd, bd, s, p, d, out_hw)
        return [to_host(y), *(to_host(a) for a in C.conv2d_backward(xd, wd, gd, None, s, p, d, True, True, True))]

    seen = []  # (kernel, wide, staged, channels a chunk) of each conv launch
    original = cuda_array.launch

    def launch(kernel, grid, block, *args):
        rebuild = getattr(kernel, "cnnlab_rebuild", None)
        if rebuild and rebuild[0] == "_conv_kernel":  # (kind, per, dtype, wide, staged)
            kind, _, _, wide, staged = rebuild[1]
            seen.append((kind, wide, staged, int(args[7 if kind == "forward" else 5])))
        elif rebuild and rebuild[0] == "_conv_weight_grad_kernel":  # (taps, ni, nj, kq, threads, dtype, wide)
            seen.append(("weight_grad", rebuild[1][6], None, None))
        original(kernel, grid, block, *args)

    monkeypatch.setattr(cuda_array, "launch", launch)
    default = run()
    setting, value = VARIANTS[variant]
    per = _config.CUDA_CONV_CHANNELS
    if value is None:  # a block's weights for two summed channels, float32
        value = 2 * per * ws[2] * ws[3] * 4
    monkeypatch.setattr(conv, setting, value)
    other = run()
    summed = {"forward": xs[1], "input_grad": ws[0]}  # the channels each kernel sums over
    assert [k[:3] for k in seen[:3]] == [("forward", False, True), ("input_grad", False, True),
                                         ("weight_grad", False, None)]
    assert all(chunk == summed[kind] for kind, _, _, chunk in seen[:2])  # the default fits in one chunk
    if variant == "64-bit indices":
        assert [k[1] for k in seen[3:]] == [True] * 3
    elif variant == "weights staged in chunks":
        for kind, _, staged, chunk in seen[3:5]:
            assert staged and chunk == min(2, summed[kind]), (kind, chunk)
    else:
        assert [k[2] for k in seen[3:5]] == [False, False]
    for a, b_ in zip(default, other):
        np.testing.assert_array_equal(a, b_)


def _innermost_fma_loop(ptx: str) -> list[str]:
    """The shortest stretch of PTX from a label to a branch back to it that holds an FMA."""
    lines = [line.strip() for line in ptx.splitlines()]
    labels = {line[:-1]: k for k, line in enumerate(lines) if re.match(r"^\$L__BB\d+_\d+:$", line)}
    best: list[str] = []
    for k, line in enumerate(lines):
        m = re.search(r"\bbra(?:\.uni)?\s+(\$L__BB\d+_\d+);", line)
        if m and labels.get(m.group(1), k) < k:
            body = lines[labels[m.group(1)]:k + 1]
            if any(re.match(r"^(@!?%p\d+\s+)?fma\.rn\.f32", b) for b in body) and (not best or len(body) < len(best)):
                best = body
    return best


def _ops64(body: list[str]) -> collections.Counter:
    """The loop's instructions that work on 64-bit integers (or widen to them)."""
    ops = (re.sub(r"^@!?%p\d+\s+", "", b).split()[0] for b in body if b and not b.endswith(":"))
    return collections.Counter(o for o in ops if re.search(r"\.(s64|u64|b64)$|\.wide\.", o))


@pytest.mark.without_cuda
@pytest.mark.skipif(SIMULATOR, reason="compiles PTX with numba's real CUDA target (the main test pass does)")
def test_32_bit_loops_do_no_64_bit_integer_arithmetic_but_addresses(monkeypatch):
    pytest.importorskip("numba.cuda")
    from numba import cuda as numba_cuda
    from numba import types
    from numba.cuda import dispatcher

    try:
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()
    except Exception as e:  # noqa: BLE001 - any failure to load NVVM means: not installed here
        pytest.skip(f"NVVM is not usable here (the `cuda` extra brings it): {e}")

    class NoGPU:
        compute_capability = (9, 0)

    monkeypatch.setattr(dispatcher, "get_current_device", NoGPU)
    conv = _conv()
    f32 = types.Array(types.float32, 1, "C")
    for wide in (False, True):
        i = types.int64 if wide else types.int32
        dims = types.UniTuple(i, 9)
        kernels = {
            "forward": (conv._conv_kernel("forward", 4, "<f4", wide, True), (f32, f32, f32, types.boolean, f32, dims) + (i,) * 8),
            "input gradient": (conv._conv_kernel("input_grad", 4, "<f4", wide, True), (f32, f32, f32, dims) + (i,) * 12),
            "weight gradient": (conv._conv_weight_grad_kernel(9, 3, 3, 4, 256, "<f4", wide),
                                (f32, f32, types.Array(types.float32, 4, "C"), f32, types.boolean,
                                 types.Array(types.float64, 4, "C"), types.Array(types.int32, 1, "C"), dims) + (i,) * 8),
        }
        for name, (kernel, sig) in kernels.items():
            ptx, _ = numba_cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
            ops = _ops64(_innermost_fma_loop(ptx))
            if wide:  # the check sees 64-bit index arithmetic where there is some
                assert any(o.startswith("setp.") for o in ops), (name, ops)
            else:  # one zero-extended offset times the element size, plus the base, per load (and at
                # most a conversion of an array's base pointer to the global address space)
                addresses = {"mul.wide.u32", "add.s64", "cvta.to.global.u64"}
                assert set(ops) - {"cvta.to.global.u64"} == {"mul.wide.u32", "add.s64"}, (name, ops)
                assert set(ops) <= addresses and ops["mul.wide.u32"] == ops["add.s64"], (name, ops)
