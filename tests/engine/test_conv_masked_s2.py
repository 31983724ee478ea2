"""The 3x3 stride-2 padding-1 float32 kernels over unpadded parity planes
(cnnlab/backends/cpu_conv_masked_s2.py): the parity split and its inverse, then the
forward pass and both gradients through the engine's conv2d against references written
here from the definition in float64 (every second window of a zero-padded copy), on planes of even
sides whose output planes are not a multiple of the 32-position block or of a vector,
one-row and one-column-of-blocks planes, output channels that leave a block part-used;
the forward pass and the input gradient against the tiled parity-plane kernels they
replace (the same bits), odd
sides left to those, and the bits on one and two threads. The engine runs these kernels
where the CPU has 32 vector registers; the tests force them on, so they run on any machine.
"""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab.backends import cpu_conv, cpu_conv_masked, cpu_conv_masked_s2

from helpers import check_conv3x3, conv3x3_reference, digests_per_thread_count, record_calls


@pytest.fixture(autouse=True)
def wide_register_kernels(monkeypatch):
    monkeypatch.setattr(cpu_conv, "_TILED", True)
    monkeypatch.setattr(cpu_conv, "_UNPADDED", True)
    monkeypatch.setattr(cpu_conv, "_STRIDED_MIN_PLANE", 0)   # small output planes too (im2col's by default)


def _kernels_called(monkeypatch):
    return record_calls(monkeypatch, [(cpu_conv_masked_s2, "conv3x3_s2_masked"),
                                      (cpu_conv_masked_s2, "conv3x3_s2_masked_dx"),
                                      (cpu_conv_masked, "conv3x3_masked_dw")])


def test_split_parity_puts_each_cell_in_its_plane_and_merge_puts_it_back():
    x = np.arange(2 * 3 * 6 * 8, dtype=np.float32).reshape(2, 3, 6, 8)
    planes = cpu_conv_masked_s2.split_parity(x)
    assert planes.shape == (2, 3, 4, 3, 4)
    for a in range(2):
        for b in range(2):
            np.testing.assert_array_equal(planes[:, :, 2 * a + b], x[:, :, a::2, b::2])
    back = np.full_like(x, -1.0)
    cpu_conv_masked_s2._merge(planes, back)
    np.testing.assert_array_equal(back, x)


def test_tap_offsets_point_at_the_cell_each_tap_reads():
    oh, ow = 3, 5
    offs = cpu_conv_masked_s2.tap_offsets(oh, ow)
    x = np.arange(2 * oh * 2 * ow, dtype=np.float32).reshape(1, 1, 2 * oh, 2 * ow)
    flat = cpu_conv_masked_s2.split_parity(x).ravel()
    for oy, ox in ((1, 1), (2, 4), (1, 3)):   # windows inside the image
        for i in range(3):
            for j in range(3):
                assert flat[oy * ow + ox + offs[i, j]] == x[0, 0, 2 * oy + i - 1, 2 * ox + j - 1]


CASES = [
    # (n, c, k, h, w)
    (2, 8, 5, 28, 28),    # 14x14 out: a last block of 4; five output channels, a block part-used
    (3, 16, 32, 32, 32),  # the CIFAR ResNet's first downsampling
    (2, 32, 16, 16, 16),  # 8x8 out: two blocks, the first in the first row
    (2, 5, 9, 6, 10),     # 3x5 out: one block, past the plane's end
    (1, 3, 8, 8, 64),     # wide rows: 4x32, the first block all first row
    (2, 4, 8, 40, 6),     # tall: 20x3 out
    (2, 1, 8, 12, 12),    # one input channel
]


@pytest.mark.parametrize("case", CASES, ids=["x".join(map(str, c)) for c in CASES])
def test_strided_conv_and_gradients_against_the_definition(case, monkeypatch):
    n, c, k, h, w = case
    calls = _kernels_called(monkeypatch)   # the test must reach them
    rng = np.random.default_rng(8)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c, 3, 3)) / 6).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    g = rng.standard_normal((n, k, h // 2, w // 2)).astype(np.float32)
    check_conv3x3(x, wt, b, g, 2)
    assert calls == ["conv3x3_s2_masked", "conv3x3_s2_masked_dx", "conv3x3_masked_dw"]


@pytest.mark.parametrize("shape", [(3, 16, 32, 32), (2, 8, 14, 14), (2, 4, 6, 10)])
def test_same_bits_as_the_tiled_parity_kernels_they_replace(shape, monkeypatch):
    # each output of the forward pass is summed in the same order (input channel, then the taps row by row)
    rng = np.random.default_rng(9)
    n, c, h, w = shape
    x = rng.standard_normal(shape).astype(np.float32)
    wt = (rng.standard_normal((12, c, 3, 3)) / 6).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    g = rng.standard_normal((n, 12, h // 2, w // 2)).astype(np.float32)
    out = {}
    for unpadded in (True, False):
        monkeypatch.setattr(cpu_conv, "_UNPADDED", unpadded)
        y, saved = cpu_conv.conv2d_forward(x, wt, b, (2, 2), (1, 1), (1, 1), (h // 2, w // 2), True)
        dx, dw, _ = cpu_conv.conv2d_backward(x, wt, g, saved, (2, 2), (1, 1), (1, 1), True, True, False)
        out[unpadded] = (y, dx, dw, saved.ndim)
    (y_new, dx_new, dw_new, kept_new), (y_old, dx_old, dw_old, kept_old) = out.values()
    assert (kept_new, kept_old) == (5, 4)   # the unpadded planes, then the padded ones
    assert y_new.tobytes() == y_old.tobytes()
    assert dx_new.tobytes() == dx_old.tobytes()   # over k, then the plane's taps, as conv3x3_s2_dx_tiled
    np.testing.assert_allclose(dw_new, dw_old, rtol=1e-5, atol=1e-4)   # the same terms, other lanes


def test_odd_sides_and_a_backward_pass_without_kept_planes(monkeypatch):
    calls = _kernels_called(monkeypatch)
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 8, 15, 15)).astype(np.float32)    # odd: the padded parity path
    w = (rng.standard_normal((8, 8, 3, 3)) / 6).astype(np.float32)
    y, _ = cpu_conv.conv2d_forward(x, w, None, (2, 2), (1, 1), (1, 1), (8, 8), True)
    assert calls == []
    np.testing.assert_allclose(y, conv3x3_reference(x, w, np.zeros(8, np.float32), np.zeros((2, 8, 8, 8)), 2)[0],
                               rtol=1e-5, atol=1e-5)
    # no planes kept (an evaluation-mode forward pass, say): the backward pass splits x itself
    x = rng.standard_normal((2, 8, 16, 16)).astype(np.float32)
    g = rng.standard_normal((2, 8, 8, 8)).astype(np.float32)
    _, dw, _ = cpu_conv.conv2d_backward(x, w, g, None, (2, 2), (1, 1), (1, 1), False, True, False)
    assert calls == ["conv3x3_masked_dw"]
    np.testing.assert_allclose(dw, conv3x3_reference(x, w, np.zeros(8, np.float32), g, 2)[2], rtol=1e-4, atol=1e-4)


DETERMINISM = r"""
import numpy as np, hashlib
from cnnlab.backends import cpu_conv
cpu_conv._TILED = True
rng = np.random.default_rng(0)
h = hashlib.sha256()
for shape, k in (((16, 16, 32, 32), 32), ((16, 32, 16, 16), 24)):
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((k, shape[1], 3, 3)).astype(np.float32)
    g = rng.standard_normal((shape[0], k, shape[2] // 2, shape[3] // 2)).astype(np.float32)
    y, saved = cpu_conv.conv2d_forward(x, w, None, (2, 2), (1, 1), (1, 1), (shape[2] // 2, shape[3] // 2), True)
    assert saved.ndim == 5
    dx, dw, _ = cpu_conv.conv2d_backward(x, w, g, saved, (2, 2), (1, 1), (1, 1), True, True, False)
    h.update(y.tobytes() + dx.tobytes() + dw.tobytes())
print(h.hexdigest())
"""


def test_strided_results_are_the_same_bits_on_one_and_two_threads():
    assert len(digests_per_thread_count(DETERMINISM)) == 1
