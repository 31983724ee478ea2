"""The 3x3 stride-1 padding-1 float32 kernels that read unpadded planes through masked loads
(cnnlab/backends/cpu_conv_masked.py).

The forward pass and both gradients are checked through the engine's conv2d against
references written here from the definition in float64 (shifted windows of a zero-padded
copy): on planes whose rows are not a multiple of eight wide, whose sizes are not a
multiple of the 32-position block or of a vector (the weight gradient's last vector),
planes made only of first and last rows, output channels that leave a block part-used and
inputs that are not contiguous. The forward pass and the input gradient sum each output in
the order of the tiled kernels they replace, so they must give the same bits; and the
results must not depend on the thread count. The engine runs these kernels where the CPU
has 32 vector registers; the tests force them on, so they run on any machine.
"""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from cnnlab.backends import cpu_conv, cpu_conv_masked
from cnnlab.backends.simd import (prefetch, prefetch_for_write, vadd, vfma, vload16, vload16_masked, vload_masked,
                                  vsplat16, vstore, vstore_first, vzero16)

from helpers import check_conv3x3, conv3x3_reference, digests_per_thread_count, record_calls


@pytest.fixture(autouse=True)
def wide_register_kernels(monkeypatch):
    monkeypatch.setattr(cpu_conv, "_TILED", True)
    monkeypatch.setattr(cpu_conv, "_UNPADDED", True)
    monkeypatch.setattr(cpu_conv, "_TILED_MIN_SIDE", 0)


@njit
def _masked(a, out, at, bits):
    vstore(out, 0, vload_masked(a, at, bits))


def test_masked_load_keeps_the_chosen_lanes_and_zeros_the_rest():
    a = np.arange(1, 17, dtype=np.float32)
    out = np.full(8, -1.0, np.float32)
    _masked(a, out, 3, 0b10110101)
    np.testing.assert_array_equal(out, [4, 0, 6, 0, 8, 9, 0, 11])
    # lanes left out are not read: here they would lie before the array's first value
    _masked(a, out, -3, 0b11111000)
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 2, 3, 4, 5])


@njit
def _prefetched_sum(a, at):
    for i in at:
        prefetch(a, i)
        prefetch_for_write(a, i)
    return a.sum()


def test_prefetch_is_a_hint_that_never_faults():
    a = np.arange(1, 65, dtype=np.float32).reshape(8, 8)
    # inside the array, just past either end, and far outside it (unmapped memory): a
    # prefetch must neither fault nor change anything
    at = np.array([0, 63, 64, -1, -(1 << 28), 1 << 28], np.int64)
    assert _prefetched_sum(a, at) == 64 * 65 / 2
    np.testing.assert_array_equal(a, np.arange(1, 65, dtype=np.float32).reshape(8, 8))
    asm = _prefetched_sum.inspect_asm(_prefetched_sum.signatures[0]).lower()
    assert "prefetch" in asm or "prfm" in asm   # the hint reached the machine code (x86, ARM)


@njit
def _lanes16(a, out, at, bits, s):
    vstore(out, 0, vload16_masked(a, at, bits))
    vstore(out, 16, vfma(vload16(a, 1), vsplat16(s), vadd(vload16(a, 0), vzero16())))
    vstore_first(out, 32, vload16(a, 2), 11)


def test_sixteen_lane_vectors_against_numpy():
    a = np.arange(1, 21, dtype=np.float32) / 7
    out = np.full(48, -1.0, np.float32)
    bits = 0b1011_0000_0000_0100                  # lanes 2, 12, 13, 15
    _lanes16(a, out, -2, bits, np.float32(1.5))
    # the set lanes read a[lane - 2]; the others are zero, and lanes 0 and 1, which would lie
    # before the array, are not read
    expected = np.zeros(16, np.float32)
    expected[[2, 12, 13, 15]] = a[[0, 10, 11, 13]]
    np.testing.assert_array_equal(out[:16], expected)
    fused = (a[1:17].astype(np.float64) * 1.5 + a[:16]).astype(np.float32)   # one rounding, as an FMA
    np.testing.assert_array_equal(out[16:32], fused)
    np.testing.assert_array_equal(out[32:43], a[2:13])        # vstore_first: eleven lanes ...
    assert (out[43:] == -1.0).all()                           # ... and nothing past them


def test_wide_mask_table_is_the_byte_table_two_vectors_at_a_time():
    for h, w in ((3, 5), (28, 28), (7, 9)):
        narrow, wide = cpu_conv_masked.mask_table(h, w), cpu_conv_masked.wide_mask_table(h, w)
        assert wide.dtype == np.uint16 and wide.shape == (narrow.shape[0] // 2, 9)
        for lane in range(16):
            np.testing.assert_array_equal(wide >> lane & 1, narrow[lane // 8::2] >> (lane % 8) & 1)


def test_mask_table_marks_the_taps_inside_the_image():
    h, w = 3, 5
    table = cpu_conv_masked.mask_table(h, w)
    assert table.shape == (4, 9)                     # one block of 32 positions for 15
    for v in range(table.shape[0]):
        for t in range(9):
            i, j = divmod(t, 3)
            for lane in range(8):
                p = 8 * v + lane
                r, c = divmod(p, w)
                inside = p < h * w and 0 <= r + i - 1 < h and 0 <= c + j - 1 < w
                assert bool(table[v, t] >> lane & 1) == inside, (v, t, lane)


def _kernels_called(monkeypatch):
    return record_calls(monkeypatch, [(cpu_conv_masked, "conv3x3_masked"), (cpu_conv_masked, "conv3x3_masked_dw")])


CASES = [
    # (n, c, k, h, w)
    (2, 8, 5, 6, 28),     # rows of 28; five output channels: the second block of four part-used
    (3, 9, 8, 14, 14),    # 196 positions: a last block of 4, a last weight-gradient vector of 4
    (2, 16, 6, 7, 7),     # 49 positions: two blocks, both touch the first or last row
    (1, 8, 12, 6, 6),     # 36 positions
    (2, 8, 9, 40, 9),     # tall: inner blocks whose vectors straddle many rows
    (2, 10, 4, 5, 45),    # wide rows: blocks within one row
    (2, 8, 8, 8, 2),      # two columns: every vector holds four rows' edges
    (2, 12, 16, 32, 32),  # a CIFAR plane
    (3, 8, 8, 4, 4),      # 16 positions: half a block
    (2, 1, 8, 9, 28),     # a grey stem: one input channel (with a weight gradient to follow)
    (2, 3, 16, 10, 10),   # an RGB stem
]


@pytest.mark.parametrize("case", CASES, ids=["x".join(map(str, c)) for c in CASES])
def test_masked_conv_and_gradients_against_the_definition(case, monkeypatch):
    n, c, k, h, w = case
    calls = _kernels_called(monkeypatch)   # the test must reach them
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c, 3, 3)) / 6).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    g = rng.standard_normal((n, k, h, w)).astype(np.float32)
    check_conv3x3(x, wt, b, g, 1)
    # the forward pass and the input gradient (whatever k), then the weight gradient
    assert calls == ["conv3x3_masked", "conv3x3_masked", "conv3x3_masked_dw"]


def test_a_strided_view_of_the_input_gives_the_same_result():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((2, 12, 10, 10)).astype(np.float32)
    w = (rng.standard_normal((8, 9, 3, 3)) / 6).astype(np.float32)
    view = base[:, 2:11]                      # every image's channels: not contiguous
    y_view, _ = cpu_conv.conv2d_forward(view, w, None, (1, 1), (1, 1), (1, 1), (10, 10), True)
    y_copy, _ = cpu_conv.conv2d_forward(np.ascontiguousarray(view), w, None, (1, 1), (1, 1), (1, 1), (10, 10), True)
    np.testing.assert_array_equal(y_view, y_copy)
    np.testing.assert_allclose(y_view, conv3x3_reference(view, w, np.zeros(8, np.float32), np.zeros((2, 8, 10, 10)))[0],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 8, 6, 28), (2, 16, 16, 16), (2, 16, 7, 7)])
def test_same_bits_as_the_tiled_kernels_it_replaces(shape, monkeypatch):
    # each output is summed in the same order (input channel, then tap); a masked lane adds w * 0
    rng = np.random.default_rng(6)
    n, c, h, w = shape
    x = rng.standard_normal(shape).astype(np.float32)
    wt = (rng.standard_normal((12, c, 3, 3)) / 6).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    g = rng.standard_normal((n, 12, h, w)).astype(np.float32)
    out = {}
    for unpadded in (True, False):   # these kernels, then the padded-plane tiled ones
        monkeypatch.setattr(cpu_conv, "_UNPADDED", unpadded)
        y, saved = cpu_conv.conv2d_forward(x, wt, b, (1, 1), (1, 1), (1, 1), (h, w), True)
        dx, _, _ = cpu_conv.conv2d_backward(x, wt, g, saved, (1, 1), (1, 1), (1, 1), True, False, False)
        out[unpadded] = (y, dx)
    masked, tiled = out.values()
    assert masked[0].tobytes() == tiled[0].tobytes()
    assert masked[1].tobytes() == tiled[1].tobytes()


@pytest.mark.parametrize("side, channels, unpadded", [(4, 64, True), (4, 128, False), (3, 16, False), (6, 512, True)])
def test_small_planes_take_these_kernels_up_to_64_channels(side, channels, unpadded, monkeypatch):
    # on 4x4 and 5x5 planes they beat im2col + sgemm up to 64 input channels (cpu_conv._MASKED_SMALL)
    monkeypatch.setattr(cpu_conv, "_TILED_MIN_SIDE", 6)
    calls = _kernels_called(monkeypatch)
    x = np.ones((1, channels, side, side), np.float32)
    w = np.ones((8, channels, 3, 3), np.float32)
    y, _ = cpu_conv.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), (side, side), True)
    assert bool(calls) is unpadded
    assert y[0, 0, 1, 1] == 9 * channels and y[0, 0, 0, 0] == 4 * channels   # an inner and a corner cell


def test_a_stem_takes_them_only_when_a_weight_gradient_follows(monkeypatch):
    # forward + weight gradient on 1-4 channels beat the tiled kernels; the forward pass alone did not
    calls = _kernels_called(monkeypatch)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    s = (1, 1)
    y_eval, saved = cpu_conv.conv2d_forward(x, w, None, s, s, s, (9, 9), False)
    assert calls == [] and saved is None
    y_train, saved = cpu_conv.conv2d_forward(x, w, None, s, s, s, (9, 9), True)
    assert calls == ["conv3x3_masked"] and saved is None
    np.testing.assert_array_equal(y_eval, y_train)   # the same sums in the same order
    _, dw, _ = cpu_conv.conv2d_backward(x, w, g, saved, s, s, s, False, True, False)
    assert calls[-1] == "conv3x3_masked_dw"
    # a forward pass that kept a padded copy of x (the tiled path) is followed by the tiled gradients
    monkeypatch.setattr(cpu_conv, "_UNPADDED", False)
    _, padded = cpu_conv.conv2d_forward(x, w, None, s, s, s, (9, 9), True)
    monkeypatch.setattr(cpu_conv, "_UNPADDED", True)
    _, dw_tiled, _ = cpu_conv.conv2d_backward(x, w, g, padded, s, s, s, False, True, False)
    assert padded is not None and calls.count("conv3x3_masked_dw") == 1
    np.testing.assert_allclose(dw, dw_tiled, rtol=1e-5, atol=1e-4)


DETERMINISM = r"""
import numpy as np, hashlib
from cnnlab.backends import cpu_conv
cpu_conv._TILED = True
rng = np.random.default_rng(0)
h = hashlib.sha256()
for shape, k in (((16, 8, 28, 28), 12), ((16, 16, 14, 14), 16), ((16, 16, 8, 8), 8)):
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((k, shape[1], 3, 3)).astype(np.float32)
    g = rng.standard_normal((shape[0], k) + shape[2:]).astype(np.float32)
    y, saved = cpu_conv.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), shape[2:], True)
    dx, dw, _ = cpu_conv.conv2d_backward(x, w, g, saved, (1, 1), (1, 1), (1, 1), True, True, False)
    h.update(y.tobytes() + dx.tobytes() + dw.tobytes())
print(h.hexdigest())
"""


def test_masked_results_are_the_same_bits_on_one_and_two_threads():
    assert len(digests_per_thread_count(DETERMINISM)) == 1
