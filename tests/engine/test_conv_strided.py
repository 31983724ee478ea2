"""The CPU backend's direct stride-2 3x3 convolution (parity planes, cnnlab/backends/cpu_conv_direct.py).

Checked against the naive NumPy loops and central finite differences in float64, against
the backend's im2col + sgemm path on the same float32 data, and for the same bits on
every run and thread count.
"""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab as torch
import cnnlab.nn.functional as F
from cnnlab.backends import cpu_conv

import naive
from helpers import check_grad, digests_per_thread_count

_MIN_PLANE = cpu_conv._STRIDED_MIN_PLANE   # the engine's own limit, before the fixture lifts it

CASES = [
    # (n, c, k, h, w), padding
    ((2, 3, 5, 9, 9), (1, 1)),      # odd sizes, an odd number of output channels
    ((1, 2, 3, 8, 8), (1, 1)),      # even sizes: the last parity row and column are padding
    ((2, 2, 4, 10, 7), (0, 0)),     # no padding; different height and width
    ((1, 3, 2, 7, 11), (2, 1)),     # padding 2 on one axis
    ((1, 1, 1, 5, 5), (0, 2)),      # one channel in and out
]


@pytest.fixture(autouse=True)
def _strided_on_every_plane(monkeypatch):
    # the engine sends small planes to im2col; these cases are small, so lift the limit
    monkeypatch.setattr(cpu_conv, "_STRIDED_MIN_PLANE", 0)


def _ids(case):
    shape, p = case
    return f"{'x'.join(map(str, shape))}-p{p[0]}{p[1]}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_cases_take_the_strided_path(case):
    (n, c, k, h, w), p = case
    oh, ow = (h + 2 * p[0] - 3) // 2 + 1, (w + 2 * p[1] - 3) // 2 + 1
    assert cpu_conv._strided_ok(np.empty((k, c, 3, 3)), (2, 2), p, (1, 1), (oh, ow))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_strided_conv_against_naive_loops_and_finite_differences(case, bias):
    (n, c, k, h, w), p = case
    rng = np.random.default_rng(sum((n, c, k, h, w)))
    args = [rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 3, 3))]
    if bias:
        args.append(rng.standard_normal(k))
    check_grad(lambda x, wt, b=None: F.conv2d(x, wt, b, 2, p), *args,
               ref=lambda x, wt, b=None: naive.conv2d(x, wt, b, 2, p))


def _run(monkeypatch, strided, x, w, b, g):
    monkeypatch.setattr(cpu_conv, "_STRIDED", strided)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(tx, tw, tb, 2, 1)
    y.backward(torch.tensor(g))
    return y.numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


def test_strided_conv_matches_im2col_in_float32(monkeypatch):
    # a ResNet's first downsampling block at batch 8, where the kernels run their vector loops
    rng = np.random.default_rng(5)
    shapes_and_scales = [((8, 16, 32, 32), 1.0), ((33, 16, 3, 3), 1 / 12), ((33,), 1.0), ((8, 33, 16, 16), 1.0)]
    x, w, b, g = ((rng.standard_normal(shape) * scale).astype(np.float32) for shape, scale in shapes_and_scales)
    direct = _run(monkeypatch, True, x, w, b, g)
    im2col = _run(monkeypatch, False, x, w, b, g)
    for name, a, e in zip(("output", "input grad", "weight grad", "bias grad"), direct, im2col):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-4, err_msg=name)


def test_the_resnet_shapes_take_the_path_the_measurements_chose(monkeypatch):
    monkeypatch.setattr(cpu_conv, "_STRIDED_MIN_PLANE", _MIN_PLANE)
    w = np.empty((32, 16, 3, 3))
    assert cpu_conv._strided_ok(w, (2, 2), (1, 1), (1, 1), (16, 16))        # 32x32 -> 16x16: direct
    assert cpu_conv._strided_ok(w, (2, 2), (1, 1), (1, 1), (8, 8))          # 16x16 -> 8x8: direct, stacked
    assert not cpu_conv._strided_ok(w, (2, 2), (1, 1), (1, 1), (4, 4))      # 8x8 -> 4x4: im2col
    assert not cpu_conv._strided_ok(w, (2, 2), (1, 1), (2, 2), (16, 16))    # dilated: im2col
    assert not cpu_conv._strided_ok(np.empty((4, 4, 5, 5)), (2, 2), (1, 1), (1, 1), (16, 16))


DETERMINISM = r"""
import numpy as np, hashlib
from cnnlab.backends import cpu_conv
rng = np.random.default_rng(0)
x = rng.standard_normal((16, 8, 32, 32)).astype(np.float32)
w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
g = rng.standard_normal((16, 16, 16, 16)).astype(np.float32)
h = hashlib.sha256()
for _ in range(2):
    y, saved = cpu_conv.conv2d_forward(x, w, None, (2, 2), (1, 1), (1, 1), (16, 16), True)
    dx, dw, _ = cpu_conv.conv2d_backward(x, w, g, saved, (2, 2), (1, 1), (1, 1), True, True, False)
    h.update(y.tobytes() + dx.tobytes() + dw.tobytes())
print(h.hexdigest())
"""


def test_strided_results_are_the_same_bits_on_every_run_and_thread_count():
    assert len(digests_per_thread_count(DETERMINISM)) == 1
