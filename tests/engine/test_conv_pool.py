"""conv2d and pooling against the naive NumPy loops, and their gradients against finite differences."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cnnlab as torch
import cnnlab.nn as nn
import cnnlab.nn.functional as F

import naive
from helpers import check_grad, distinct

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 8))
    # up to 24 wide: the CPU backend picks another column layout for outputs 16 or more wide
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 24))
    n, c, k = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    bias = draw(st.booleans())
    return dict(shape=(n, c, h, w), weight=(k, c, kh, kw), stride=(sh, sw), padding=(ph, pw),
                dilation=(dh, dw), bias=bias, seed=draw(st.integers(0, 2**16)))


@SETTINGS
@given(conv_cases())
def test_conv2d_matches_naive_loops(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(np.float32)
    w = rng.standard_normal(case["weight"]).astype(np.float32)
    b = rng.standard_normal(case["weight"][0]).astype(np.float32) if case["bias"] else None
    y = F.conv2d(torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b),
                 case["stride"], case["padding"], case["dilation"])
    expected = naive.conv2d(x.astype(np.float64), w.astype(np.float64), b, case["stride"], case["padding"],
                            case["dilation"])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel, dilation", [((3, 3), (1, 1)), ((2, 2), (1, 1)), ((2, 3), (1, 1)),
                                              ((4, 1), (1, 1)), ((2, 2), (2, 1)), ((3, 2), (2, 3))])
@pytest.mark.parametrize("mode", ["same", "valid"])
def test_conv2d_string_padding(kernel, dilation, mode):
    """'same' keeps H x W, even kernels too (the odd pixel of padding goes bottom/right, as PyTorch)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 7, 6))
    w = rng.standard_normal((3, 2) + kernel)
    b = rng.standard_normal(3)
    y = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=mode, dilation=dilation)
    np.testing.assert_allclose(y.numpy(), naive.conv2d(x, w, b, 1, mode, dilation), rtol=1e-10, atol=1e-10)
    if mode == "same":
        assert tuple(y.shape[2:]) == (7, 6)
    layer = nn.Conv2d(2, 3, kernel, padding=mode, dilation=dilation).double()
    layer.load_state_dict({"weight": torch.tensor(w), "bias": torch.tensor(b)})
    np.testing.assert_allclose(layer(torch.tensor(x)).numpy(), y.numpy(), rtol=1e-12)


def test_conv2d_layer_matches_functional_and_unbatched_input():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    x = torch.randn(2, 3, 9, 8)
    ref = naive.conv2d(x.numpy().astype(np.float64), conv.weight.numpy().astype(np.float64),
                       conv.bias.numpy().astype(np.float64), (2, 1), (1, 2), (1, 2))
    np.testing.assert_allclose(conv(x).numpy(), ref, rtol=1e-4, atol=1e-5)
    # PyTorch accepts an unbatched (C, H, W) image
    np.testing.assert_allclose(conv(x[0]).numpy(), ref[0], rtol=1e-4, atol=1e-5)


def test_conv2d_float64_stays_float64_and_exact():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 2, 6, 5)), rng.standard_normal((2, 2, 3, 3))
    y = F.conv2d(torch.tensor(x), torch.tensor(w), padding=1)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.numpy(), naive.conv2d(x, w, None, 1, 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("width", [5, 20])
def test_conv2d_batch_split_into_chunks(monkeypatch, width):
    """The CPU backend may build its columns in chunks of images; the result must not depend on it."""
    from cnnlab.backends import cpu_conv

    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 2, 5, width)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    monkeypatch.setattr(cpu_conv, "_DIRECT", False)             # 3x3 stride 1 would skip im2col
    monkeypatch.setattr(cpu_conv, "_CONV_CHUNK_BYTES", 1)       # one image per chunk
    monkeypatch.setattr(cpu_conv, "_CONV_WHOLE_BYTES", 1)
    y = F.conv2d(tx, tw, padding=1)
    y.backward(torch.ones_like(y))
    np.testing.assert_allclose(y.numpy(), naive.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, 1),
                               rtol=1e-4, atol=1e-4)
    # d(sum y)/dw[k, c, i, j] = sum of the input cells that tap (i, j) touches
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    dw = np.stack([xp[:, :, i:i + 5, j:j + width].sum(axis=(0, 2, 3)) for i in range(3) for j in range(3)], -1)
    np.testing.assert_allclose(tw.grad.numpy(), np.broadcast_to(dw.reshape(2, 3, 3), (3, 2, 3, 3)), rtol=1e-4,
                               atol=1e-4)
    # d(sum y)/dx[n, c, y, x] = sum of the weights whose tap lands on that cell
    ones = np.ones((1, 3, 5, width))
    dx = naive.conv2d(ones, np.flip(w.astype(np.float64), (2, 3)).transpose(1, 0, 2, 3), None, 1, 1)
    np.testing.assert_allclose(tx.grad.numpy(), np.broadcast_to(dx, x.shape), rtol=1e-4, atol=1e-4)


CONV_GRAD_CASES = [
    # kernel, stride, padding, dilation, bias
    ((3, 3), (1, 1), (0, 0), (1, 1), True),
    ((2, 3), (1, 1), (1, 0), (1, 1), True),
    ((3, 2), (2, 1), (1, 2), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (2, 2), True),
    ((1, 3), (3, 2), (0, 1), (1, 2), False),
    ((2, 2), (1, 2), (2, 2), (3, 1), True),
    ((4, 4), (3, 3), (1, 1), (1, 1), True),   # stride leaves some input cells untouched
]


@pytest.mark.parametrize("width", [6, 19])
@pytest.mark.parametrize("kernel, stride, padding, dilation, bias", CONV_GRAD_CASES)
def test_conv2d_gradients(kernel, stride, padding, dilation, bias, width):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 7, width) if width < 10 else (1, 2, 4, width))
    w = rng.standard_normal((3, 2) + kernel)
    args = [x, w] + ([rng.standard_normal(3)] if bias else [])

    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride, padding, dilation)

    def ref(x, w, b=None):
        return naive.conv2d(x, w, b, stride, padding, dilation)

    check_grad(fn, *args, ref=ref)


@pytest.mark.parametrize("mode", ["same", "valid"])
def test_conv2d_string_padding_gradients(mode):
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((1, 2, 5, 6)), rng.standard_normal((2, 2, 2, 3)), rng.standard_normal(2)
    check_grad(lambda x, w, b: F.conv2d(x, w, b, padding=mode, dilation=(2, 1)), x, w, b,
               ref=lambda x, w, b: naive.conv2d(x, w, b, 1, mode, (2, 1)))


def test_conv2d_gradient_of_only_the_weight():
    """Frozen input (an image): backward must still fill the weight and bias gradients."""
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((2, 1, 5, 5)), rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)
    check_grad(lambda x, w, b: F.conv2d(x, w, b, padding=1), x, w, b, wrt=[1, 2])


# a textbook ResNet-18 on 28x28 images: its stem, shortcuts and later stages, where planes
# are tiny and kernels hang over the edges (n, c, h, w), k, kernel, stride, padding
RESNET_CASES = [
    ((2, 2, 8, 8), 3, 7, 2, 3),     # 7x7 stride-2 stem
    ((2, 3, 7, 7), 2, 1, 2, 0),     # 1x1 stride-2 shortcut, odd plane
    ((2, 3, 4, 4), 2, 1, 2, 0),     # 1x1 stride-2 shortcut, even plane
    ((2, 3, 7, 7), 2, 3, 2, 1),     # 3x3 stride-2 downsampling
    ((2, 3, 4, 4), 3, 3, 1, 1),     # 3x3 on a 4x4 plane (im2col, not the direct kernel)
    ((2, 3, 2, 2), 4, 3, 2, 1),     # 3x3 stride 2 on 2x2 -> 1x1: the top row and left column never reach input
    ((3, 4, 1, 1), 2, 3, 1, 1),     # 3x3 on 1x1: only the centre tap is live
    ((1, 2, 3, 1), 2, 5, 1, 2),     # 5x5 on a 3x1 plane: the columns crop to one tap, the rows to three
]


@pytest.mark.parametrize("shape, k, kernel, stride, padding", RESNET_CASES)
def test_conv2d_small_planes_against_naive_loops_and_finite_differences(shape, k, kernel, stride, padding):
    rng = np.random.default_rng(sum(shape) + kernel)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((k, shape[1], kernel, kernel)), rng.standard_normal(k)
    grads = check_grad(lambda x, w, b: F.conv2d(x, w, b, stride, padding), x, w, b,
                       ref=lambda x, w, b: naive.conv2d(x, w, b, stride, padding))
    if shape[2:] == (1, 1):   # the taps that only read padding get exactly zero
        dead = np.ones((kernel, kernel), bool)
        dead[1, 1] = False
        assert (grads[1][:, :, dead] == 0).all()


@pytest.mark.parametrize("shape, k, kernel, stride, padding", RESNET_CASES)
def test_conv2d_small_planes_match_torch_in_float32(shape, k, kernel, stride, padding):
    real = pytest.importorskip("torch")
    rng = np.random.default_rng(len(shape) + kernel)
    shape = (8, 16 * shape[1]) + shape[2:]   # wide enough for the sgemm and vector paths
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((4 * k, shape[1], kernel, kernel)) / (shape[1] * kernel)).astype(np.float32)
    b = rng.standard_normal(4 * k).astype(np.float32)
    ours = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [real.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ours, stride, padding)
    ty = real.nn.functional.conv2d(*theirs, stride=stride, padding=padding)
    g = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.tensor(g))
    ty.backward(real.tensor(g))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    for name, a, t in zip(("input", "weight", "bias"), ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


# ------------------------------------------------------------------------- pooling
POOL_CASES = [
    # kernel, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False),
    (3, 2, 1, 1, False),
    ((2, 3), (1, 2), (1, 1), 1, False),
    (3, 2, 0, 1, True),
    ((3, 2), (2, 3), (1, 0), 1, True),
    (2, 3, 1, 1, True),        # ceil mode whose last window would start in the right padding
    (2, 2, 1, 1, True),
]
MAX_ONLY_CASES = [(2, 1, 0, 2, False), ((2, 3), 2, 1, (2, 1), True), (3, 1, 1, 2, False)]


def _pool_input(shape=(2, 2, 7, 6), seed=7):
    return distinct(shape, seed=seed, spread=3.0)


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil", POOL_CASES + MAX_ONLY_CASES)
def test_max_pool_forward_and_gradient(kernel, stride, padding, dilation, ceil):
    x = _pool_input()
    check_grad(lambda x: F.max_pool2d(x, kernel, stride, padding, dilation, ceil), x,
               ref=lambda x: naive.pool2d(x, "max", kernel, stride, padding, dilation, ceil))


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil", POOL_CASES)
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool_forward_and_gradient(kernel, stride, padding, dilation, ceil, include_pad):
    x = _pool_input()
    check_grad(lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil, include_pad), x,
               ref=lambda x: naive.pool2d(x, "avg", kernel, stride, padding, 1, ceil, include_pad))


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil", POOL_CASES)
def test_sum_pool_forward_and_gradient(kernel, stride, padding, dilation, ceil):
    x = _pool_input()
    check_grad(lambda x: F.sum_pool2d(x, kernel, stride, padding, ceil), x,
               ref=lambda x: naive.pool2d(x, "sum", kernel, stride, padding, 1, ceil))


def test_avg_pool_divisor_override():
    x = _pool_input()
    check_grad(lambda x: F.avg_pool2d(x, 3, 2, 1, divisor_override=5), x,
               ref=lambda x: naive.pool2d(x, "avg", 3, 2, 1, divisor_override=5))


def test_pool_layers_match_functional():
    x = torch.tensor(_pool_input().astype(np.float32))
    np.testing.assert_array_equal(nn.MaxPool2d(3, 2, 1, ceil_mode=True)(x).numpy(),
                                  F.max_pool2d(x, 3, 2, 1, ceil_mode=True).numpy())
    np.testing.assert_allclose(nn.AvgPool2d(3, 2, 1, count_include_pad=False)(x).numpy(),
                               naive.pool2d(x.numpy(), "avg", 3, 2, 1, count_include_pad=False), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nn.SumPool2d(2)(x).numpy(), naive.pool2d(x.numpy(), "sum", 2), rtol=1e-5, atol=1e-6)


def test_max_pool_gradient_goes_to_the_maximum_only():
    # one 2x2 window [[1, 4], [3, 2]]: all of the gradient lands on the 4
    x = torch.tensor([[[[1.0, 4.0], [3.0, 2.0]]]], requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    assert x.grad.numpy()[0, 0].tolist() == [[0, 1], [0, 0]]


def test_overlapping_max_windows_accumulate():
    # 3x3 windows with stride 1 over a 4x4 input whose maximum (9) sits in all four windows
    x = torch.tensor(np.array([[0, 1, 2, 0], [3, 9, 4, 0], [5, 6, 7, 0], [0, 0, 0, 0]], np.float32)
                     .reshape(1, 1, 4, 4), requires_grad=True)
    F.max_pool2d(x, 3, 1).sum().backward()
    expected = np.zeros((4, 4))
    expected[1, 1] = 4
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


def test_max_pool_propagates_nan():
    x = torch.tensor([[[[1.0, float("nan")], [3.0, 2.0]]]])
    assert np.isnan(F.max_pool2d(x, 2).item())


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", [
    ((2, 3, 9, 8), 2, 2, 0, 1),   # the unrolled 2x2 kernel; odd height leaves a row in no window
    ((1, 2, 6, 7), 2, 2, 0, 1),   # odd width
    ((2, 2, 7, 7), 3, 2, 1, 1),   # the general kernel, padded
    ((1, 2, 8, 8), 2, 1, 0, 2),   # the general kernel, dilated, overlapping windows
])
def test_max_pool_ties_and_nan_go_to_the_first_in_scan_order(shape, kernel, stride, padding, dilation):
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, shape).astype(np.float32)   # three values: ties in most windows
    x[rng.random(shape) < 0.06] = np.nan
    tx = torch.tensor(x, requires_grad=True)
    y = F.max_pool2d(tx, kernel, stride, padding, dilation)
    g = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.tensor(g))

    n, c, h, w = shape
    oh, ow = y.shape[2:]
    want_y = np.empty((n, c, oh, ow), np.float32)
    want_dx = np.zeros(shape, np.float32)
    for b, ch, oy, ox in np.ndindex(n, c, oh, ow):
        cells = [(oy * stride - padding + i * dilation, ox * stride - padding + j * dilation)
                 for i in range(kernel) for j in range(kernel)]
        cells = [(iy, ix) for iy, ix in cells if 0 <= iy < h and 0 <= ix < w]
        vals = [x[b, ch, iy, ix] for iy, ix in cells]
        nans = [k for k, v in enumerate(vals) if np.isnan(v)]
        win = nans[0] if nans else int(np.argmax(vals))   # argmax: the first of equal maxima
        want_y[b, ch, oy, ox] = vals[win]
        want_dx[(b, ch) + cells[win]] += g[b, ch, oy, ox]
    np.testing.assert_array_equal(y.numpy(), want_y)
    np.testing.assert_allclose(tx.grad.numpy(), want_dx, rtol=1e-6)
