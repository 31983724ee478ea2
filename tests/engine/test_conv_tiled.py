"""The register-tiled float32 3x3 kernels (cnnlab/backends/cpu_conv_tiled.py) and the vector
type under them (cnnlab/backends/simd.py).

The vector operations are checked lane by lane against NumPy. The kernels are checked
against the naive float64 loops of tests/engine/naive.py (forward, input and weight
gradients, through the engine's conv2d) on the geometries that stress their bookkeeping:
output channels that do not fill a block of eight, rows shorter than one vector, dilation,
stride 2 on parity planes (forward, and the input gradient gathered into them) and 4x4
planes; and for the
same bits on one and two threads. The engine picks these kernels only on CPUs with 32 vector
registers (AVX-512); the tests force them on, so they run on any machine.
"""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import cnnlab as torch
import cnnlab.nn.functional as F
from cnnlab.backends import cpu_conv, cpu_conv_tiled
from cnnlab.backends.simd import vadd, vfma, vload, vsplat, vstore, vstore_first, vsum, vsum8, vzero

import naive
from helpers import digests_per_thread_count, record_calls


@njit
def _lanes(a, b, c, out, s):
    vstore(out, 0, vfma(vload(a, 1), vsplat(s), vload(c, 0)))   # an unaligned load
    vstore(out, 8, vadd(vload(b, 0), vzero()))
    vstore_first(out, 16, vload(b, 0), 5)                       # lanes 0-4 only
    vstore(out, 24, vsum8(vload(b, 0), vload(c, 0), vload(a, 0), vload(a, 1), vload(b, 0), vload(c, 0),
                          vload(a, 0), vload(a, 1)))
    return vsum(vload(b, 0))


def _tree(v):
    """vsum's order in float32: lane pairs, then pairs of pairs."""
    p = v[0::2] + v[1::2]
    return (p[0] + p[1]) + (p[2] + p[3])


def test_vector_lanes_against_numpy():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(n).astype(np.float32) for n in (9, 8, 8))
    out = np.full(32, -7.0, np.float32)
    s = np.float32(1.5)
    total = _lanes(a, b, c, out, s)
    fused = (a[1:].astype(np.float64) * s + c).astype(np.float32)   # one rounding, as an FMA
    np.testing.assert_array_equal(out[:8], fused)
    np.testing.assert_array_equal(out[8:16], b)
    pairs = b[0::2] + b[1::2]                                       # the documented order
    assert total == (pairs[0] + pairs[1]) + (pairs[2] + pairs[3])
    np.testing.assert_array_equal(out[16:21], b[:5])                # vstore_first: five lanes ...
    assert (out[21:24] == -7.0).all()                               # ... and nothing past them
    scalar = [total] + [_tree(v) for v in (c[:8], a[:8], a[1:9])]   # vsum8: vsum's order, lane by lane
    np.testing.assert_array_equal(out[24:], np.array(scalar * 2, np.float32))


CASES = [
    # (n, c, k, h, w), stride, padding, dilation
    ((2, 3, 5, 9, 11), 1, 1, 1),     # five output channels: one block of eight, three unused
    ((3, 1, 4, 6, 5), 1, 1, 1),      # one input channel, rows of 7 (shorter than a vector)
    ((2, 2, 7, 12, 17), 1, (2, 1), (2, 1)),
    ((2, 4, 3, 14, 13), 1, 0, 1),    # 'valid': the input gradient needs padding 2
    ((4, 3, 6, 12, 12), 2, 1, 1),    # stride 2: parity planes
    ((2, 3, 10, 9, 11), 2, 0, 1),    # stride 2, odd sizes, no padding
    ((3, 2, 4, 7, 8), 2, 2, 1),      # stride 2, padding 2
    ((6, 2, 9, 4, 4), 1, 1, 1),      # 4x4 planes (the scalar kernels stack these)
    ((2, 3, 9, 7, 8), 1, 1, 1),      # rows of exactly one vector, an odd number of them
    ((2, 3, 10, 6, 28), 1, 1, 1),    # rows of 28: 24 + 8 positions, the last four past the row
    ((2, 2, 9, 5, 45), 1, 1, 1),     # rows of 45: 24 + 16 + 8
    # the weight gradient row by row (outputs at most eight wide, rows of at least eight):
    ((3, 3, 9, 6, 7), 1, 1, 1),      # rows of 7 in rows of 9: the eighth lane reads padding
    ((2, 3, 5, 16, 15), 2, 1, 1),    # stride 2 to 8x8 on parity planes
    ((2, 2, 3, 8, 8), 1, 2, 2),      # dilation 2: rows of 12
]


def _id(case):
    shape, s, p, d = case
    return f"{'x'.join(map(str, shape))}-s{s}-p{p}-d{d}"


@pytest.fixture(autouse=True)
def tiled_kernels(monkeypatch):
    monkeypatch.setattr(cpu_conv, "_TILED", True)
    # the 3x3 padding-1 convolutions otherwise run the unpadded kernels of cpu_conv_masked.py
    # (tested in test_conv_masked.py); these tests are for the tiled ones
    monkeypatch.setattr(cpu_conv, "_UNPADDED", False)


@pytest.fixture
def every_plane_direct(monkeypatch):
    monkeypatch.setattr(cpu_conv, "_DIRECT_MIN_PLANE", 0)
    monkeypatch.setattr(cpu_conv, "_TILED_MIN_SIDE", 0)
    monkeypatch.setattr(cpu_conv, "_STRIDED_MIN_PLANE", 0)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_tiled_conv_and_gradients_against_naive_float64(case, every_plane_direct, monkeypatch):
    shape, s, p, d = case
    n, c, k, h, w = shape
    calls = record_calls(monkeypatch, [(cpu_conv_tiled, name) for name in   # the test must reach them
                                       ("conv3x3_tiled", "conv3x3_tiled_dw", "conv3x3_s2_dx_tiled")])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c, 3, 3)) / 3).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    y = F.conv2d(tx, tw, tb, s, p, d)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(torch.tensor(g))

    x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, wt, b, g))
    ref = naive.conv2d(x64, w64, b64, s, p, d)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5)
    # the gradients from the definition: the convolution is linear in x and in w, so the
    # derivative of sum(g * y) along one weight (one input cell) is one convolution of a unit array
    dw_ref = np.zeros_like(w64)
    for idx in np.ndindex(w64.shape):
        e = np.zeros_like(w64)
        e[idx] = 1.0
        dw_ref[idx] = np.sum(g64 * naive.conv2d(x64, e, None, s, p, d))   # linear in w: exact
    np.testing.assert_allclose(tw.grad.numpy(), dw_ref, rtol=1e-4, atol=1e-4)
    dx_ref = np.zeros_like(x64)
    for idx in np.ndindex(x64.shape[1:]):
        e = np.zeros_like(x64)
        e[(slice(None),) + idx] = 1.0
        # conv is linear in x, so the gradient at one cell of every image is one convolution
        dx_ref[(slice(None),) + idx] = np.sum(g64 * naive.conv2d(e, w64, None, s, p, d), axis=(1, 2, 3))
    np.testing.assert_allclose(tx.grad.numpy(), dx_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tb.grad.numpy(), g64.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-4)
    assert "conv3x3_tiled" in calls and "conv3x3_tiled_dw" in calls
    assert ("conv3x3_s2_dx_tiled" in calls) == (s == 2)


def test_float64_keeps_the_scalar_kernels(every_plane_direct, monkeypatch):
    monkeypatch.setattr(cpu_conv_tiled, "conv3x3_tiled", None)   # would raise if called
    x = torch.tensor(np.ones((1, 2, 6, 6)), requires_grad=True)
    w = torch.tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    F.conv2d(x, w, None, 1, 1).sum().backward()
    assert x.grad.dtype == torch.float64


@pytest.mark.parametrize("stride", [1, 2])
def test_tiled_matches_the_scalar_direct_kernels_at_training_size(stride, monkeypatch):
    # a VGG stage (a ResNet downsampling) at batch 8: the same convolution through both float32 kernels
    rng = np.random.default_rng(2)
    out_side = 16 // stride
    x = rng.standard_normal((8, 16, 16, 16)).astype(np.float32)
    w = (rng.standard_normal((24, 16, 3, 3)) / 12).astype(np.float32)
    g = rng.standard_normal((8, 24, out_side, out_side)).astype(np.float32)
    s, o = (stride, stride), (out_side, out_side)
    out = {}
    for tiled in (True, False):
        monkeypatch.setattr(cpu_conv, "_TILED", tiled)
        y, saved = cpu_conv.conv2d_forward(x, w, None, s, (1, 1), (1, 1), o, True)
        dx, dw, _ = cpu_conv.conv2d_backward(x, w, g, saved, s, (1, 1), (1, 1), True, True, False)
        out[tiled] = (y, dx, dw)
    for name, a, e in zip(("output", "input grad", "weight grad"), out[True], out[False]):
        np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-4, err_msg=name)


WIDE = [
    # (n, c, k, h, w), stride, padding, dilation: rows of 16 or 32k positions, 8+ input channels
    ((2, 8, 6, 6, 32), 1, 1, 1),      # rows of 32; six output channels: the second block of four half used
    ((2, 9, 5, 7, 16), 1, 1, 1),      # 16-wide rows in pairs, the seventh row computed twice
    ((2, 8, 4, 9, 64), 1, 1, 1),      # rows of 64: two blocks a row
    ((2, 10, 8, 32, 31), 2, 1, 1),    # stride 2 to 16x16 on parity planes (rows of 17)
]


@pytest.mark.parametrize("case", WIDE, ids=[_id(c) for c in WIDE])
def test_wide_kernel_against_naive_and_the_scalar_kernels(case, every_plane_direct, monkeypatch):
    _against_naive_and_scalar(case, "conv3x3_tiled_wide", monkeypatch)


NARROW = [
    # (n, c, k, h, w), stride, padding, dilation: outputs at most eight wide, 16+ input channels
    ((3, 16, 6, 8, 8), 1, 1, 1),      # 8x8; six output channels: the second block of four half used
    ((2, 16, 8, 7, 7), 1, 1, 1),      # 7x7: rows 4-7 repeat row 6, lanes past 7 are not stored
    ((2, 17, 5, 16, 15), 2, 1, 1),    # stride 2 to 8x8 on parity planes
    ((2, 16, 4, 8, 8), 1, 2, 2),      # dilation 2: rows of 12 in the padded plane
]


@pytest.mark.parametrize("case", NARROW, ids=[_id(c) for c in NARROW])
def test_narrow_kernel_against_naive_and_the_scalar_kernels(case, every_plane_direct, monkeypatch):
    _against_naive_and_scalar(case, "conv3x3_tiled_narrow", monkeypatch)


def _against_naive_and_scalar(case, name, monkeypatch):
    shape, s, p, d = case
    n, c, k, h, w = shape
    calls = []
    kernel = getattr(cpu_conv_tiled, name)
    monkeypatch.setattr(cpu_conv_tiled, name, lambda *a: (calls.append(1), kernel(*a))[1])
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c, 3, 3)) / 12).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    ref = naive.conv2d(*(a.astype(np.float64) for a in (x, wt, b)), s, p, d)
    st, pd, dl = ((v, v) for v in (s, p, d))
    out_hw = ref.shape[2:]
    g = rng.standard_normal(ref.shape).astype(np.float32)
    out = {}
    for tiled in (True, False):
        monkeypatch.setattr(cpu_conv, "_TILED", tiled)
        y, saved = cpu_conv.conv2d_forward(x, wt, b, st, pd, dl, out_hw, True)
        dx, _, _ = cpu_conv.conv2d_backward(x, wt, g, saved, st, pd, dl, True, False, False)
        out[tiled] = (y, dx)
    assert calls   # the forward pass (and, at stride 1 on 8-wide inputs, the input gradient) ran it
    np.testing.assert_allclose(out[True][0], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[True][1], out[False][1], rtol=2e-5, atol=2e-5)


DETERMINISM = r"""
import numpy as np, hashlib
from cnnlab.backends import cpu_conv
rng = np.random.default_rng(0)
h = hashlib.sha256()
for shape, k, stride, out in (((16, 8, 16, 16), 12, 1, 16), ((16, 8, 16, 16), 12, 2, 8),
                              ((16, 16, 8, 8), 12, 1, 8)):
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((k, shape[1], 3, 3)).astype(np.float32)
    g = rng.standard_normal((shape[0], k, out, out)).astype(np.float32)
    s = (stride, stride)
    y, saved = cpu_conv.conv2d_forward(x, w, None, s, (1, 1), (1, 1), (out, out), True)
    dx, dw, _ = cpu_conv.conv2d_backward(x, w, g, saved, s, (1, 1), (1, 1), True, True, False)
    h.update(y.tobytes() + dx.tobytes() + dw.tobytes())
print(h.hexdigest())
"""


def test_tiled_results_are_the_same_bits_on_one_and_two_threads():
    assert len(digests_per_thread_count(DETERMINISM, CNNLAB_CONV_TILED="1")) == 1


def test_the_tiled_kernels_are_chosen_where_the_cpu_has_32_vector_registers(monkeypatch):
    monkeypatch.setattr(cpu_conv_tiled.numba_config, "CPU_NAME", "znver2")
    monkeypatch.setattr(cpu_conv_tiled.numba_config, "CPU_FEATURES", "")
    assert not cpu_conv_tiled.wide_registers()
    monkeypatch.setattr(cpu_conv_tiled.numba_config, "CPU_FEATURES", "+avx2,+avx512f,+fma")
    assert cpu_conv_tiled.wide_registers()
