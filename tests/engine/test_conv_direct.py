"""The CPU backend's direct 3x3 stride-1 convolution (cnnlab/backends/cpu_conv.py).

It is checked three ways: against the naive NumPy loops and central finite
differences in float64, and against the backend's other path (im2col + sgemm)
on the same float32 data.
"""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab as torch
import cnnlab.nn.functional as F
from cnnlab.backends import cpu_conv

import naive
from helpers import check_grad

# the engine sends planes under this many flat positions to im2col; the tests below use
# small planes, so they lift the limit to reach the direct kernel itself
_MIN_PLANE = cpu_conv._DIRECT_MIN_PLANE


@pytest.fixture(autouse=True)
def _direct_on_every_plane(monkeypatch):
    monkeypatch.setattr(cpu_conv, "_DIRECT_MIN_PLANE", 0)
    monkeypatch.setattr(cpu_conv, "_TILED_MIN_SIDE", 0)

CASES = [
    # (n, c, k, h, w), padding, dilation
    ((2, 3, 5, 7, 9), (1, 1), (1, 1)),      # 'same', an odd number of output channels
    ((1, 2, 3, 6, 5), (0, 0), (1, 1)),      # 'valid': the input gradient needs padding 2
    ((2, 1, 4, 9, 8), (2, 2), (1, 1)),      # padding = 2d: the input gradient needs none
    ((1, 2, 2, 9, 11), (1, 2), (2, 1)),     # different padding and dilation per axis
    ((3, 4, 1, 5, 5), (0, 1), (2, 2)),      # one output channel, dilated window as big as the input
    ((1, 3, 3, 10, 17), (1, 0), (1, 3)),    # wider than 16
]


def _ids(case):
    shape, p, d = case
    return f"{'x'.join(map(str, shape))}-p{p[0]}{p[1]}-d{d[0]}{d[1]}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_cases_take_the_direct_path(case):
    _, p, d = case
    assert cpu_conv._direct_ok(np.empty((1, 1, 3, 3)), (1, 1), p, d)


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    ((3, 3), (2, 1), (1, 1), (1, 1)),   # strided
    ((5, 5), (1, 1), (2, 2), (1, 1)),   # another kernel size
    ((3, 2), (1, 1), (1, 1), (1, 1)),
    ((3, 3), (1, 1), (3, 1), (1, 1)),   # padding beyond the kernel's reach
])
def test_other_geometries_take_im2col(kernel, stride, padding, dilation):
    assert not cpu_conv._direct_ok(np.empty((1, 1) + kernel), stride, padding, dilation)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_direct_conv_against_naive_loops_and_finite_differences(case, bias):
    (n, c, k, h, w), p, d = case
    rng = np.random.default_rng(sum((n, c, k, h, w)))
    args = [rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 3, 3))]
    if bias:
        args.append(rng.standard_normal(k))

    check_grad(lambda x, wt, b=None: F.conv2d(x, wt, b, 1, p, d), *args,
               ref=lambda x, wt, b=None: naive.conv2d(x, wt, b, 1, p, d))


def _run(monkeypatch, direct, x, w, b, p, d, g):
    monkeypatch.setattr(cpu_conv, "_DIRECT", direct)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(tx, tw, tb, 1, p, d)
    y.backward(torch.tensor(g))
    return y.numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("padding, dilation", [((1, 1), (1, 1)), ((0, 0), (1, 1)), ((2, 1), (1, 2))])
def test_direct_conv_matches_im2col_in_float32(monkeypatch, padding, dilation):
    # a layer of seed 004's size, where the kernels run their vector loops and threads
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 16, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((33, 16, 3, 3)) / 12).astype(np.float32)
    b = rng.standard_normal(33).astype(np.float32)
    oh = 14 + 2 * padding[0] - 2 * dilation[0]
    ow = 14 + 2 * padding[1] - 2 * dilation[1]
    g = rng.standard_normal((8, 33, oh, ow)).astype(np.float32)
    direct = _run(monkeypatch, True, x, w, b, padding, dilation, g)
    im2col = _run(monkeypatch, False, x, w, b, padding, dilation, g)
    for name, a, e in zip(("output", "input grad", "weight grad", "bias grad"), direct, im2col):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-4, err_msg=name)


def test_direct_conv_propagates_nan_and_inf():
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 3, 3] = np.inf
    y = F.conv2d(torch.tensor(x), torch.ones(1, 1, 3, 3), padding=1).numpy()[0, 0]
    # the NaN reaches the four outputs whose windows cover (0, 0); the inf the four around (3, 3)
    assert np.isnan(y[:2, :2]).all() and np.isinf(y[2:, 2:]).all()
    assert np.isfinite(y[:2, 2:]).all() and np.isfinite(y[2:, :2]).all()


def test_weight_gradient_without_input_gradient_and_without_kept_input():
    # under no_grad the forward keeps nothing; backward rebuilds the padded input itself
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal((2, 4, 6, 6))
    dx, dw, db = cpu_conv.conv2d_backward(x, w, g, None, (1, 1), (1, 1), (1, 1), False, True, True)
    assert dx is None
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.stack([np.einsum("nkhw,nchw->kc", g, xp[:, :, i:i + 6, j:j + 6])
                         for i in range(3) for j in range(3)], -1).reshape(4, 3, 3, 3)
    np.testing.assert_allclose(dw, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, g.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("hw, padding, direct", [
    ((28, 28), (1, 1), True), ((14, 14), (1, 1), True), ((14, 14), (0, 0), True),   # seed 004's planes
    ((7, 7), (1, 1), False), ((4, 4), (1, 1), False), ((2, 2), (1, 1), False),     # a ResNet's later stages
])
def test_small_planes_leave_the_direct_kernel(monkeypatch, hw, padding, direct):
    monkeypatch.setattr(cpu_conv, "_DIRECT_MIN_PLANE", _MIN_PLANE)
    out_hw = tuple(n + 2 * p - 2 for n, p in zip(hw, padding))
    assert cpu_conv._direct_pays((16, 64) + hw, padding, out_hw) is direct


@pytest.mark.parametrize("out_hw, direct", [((28, 28), True), ((8, 8), True), ((7, 7), True), ((6, 9), True),
                                             ((4, 4), False), ((9, 5), False), ((2, 2), False)])
def test_the_tiled_kernels_leave_only_rows_under_six(monkeypatch, out_hw, direct):
    monkeypatch.setattr(cpu_conv, "_TILED_MIN_SIDE", 6)
    assert cpu_conv._direct_pays((16, 64) + out_hw, (1, 1), out_hw, tiled=True) is direct


def test_small_planes_agree_between_the_two_paths(monkeypatch):
    """The routing changes only speed: on a 7x7 plane both paths give the same float32 values."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 24, 7, 7)).astype(np.float32)
    w = (rng.standard_normal((20, 24, 3, 3)) / 14).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    g = rng.standard_normal((4, 20, 7, 7)).astype(np.float32)
    direct = _run(monkeypatch, True, x, w, b, (1, 1), (1, 1), g)
    monkeypatch.setattr(cpu_conv, "_DIRECT_MIN_PLANE", _MIN_PLANE)
    monkeypatch.setattr(cpu_conv, "_TILED_MIN_SIDE", 8)   # so 7x7 goes to im2col with either kernel family
    routed = _run(monkeypatch, True, x, w, b, (1, 1), (1, 1), g)
    for name, a, e in zip(("output", "input grad", "weight grad", "bias grad"), routed, direct):
        np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-4, err_msg=name)
