"""nn.ConvTranspose2d and F.conv_transpose2d: a hand-worked example, a scatter reference
in NumPy with float64 finite differences, PyTorch's layout, init and checks, and (where
PyTorch is installed) parity forward and backward over strides, paddings, output
paddings, dilations and groups."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab.errors import LayerError
from cnnlab.nn.geometry import conv_transpose_output_size
from helpers import check_grad, distinct


def scatter_reference(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """The definition, loop by loop: every input cell adds itself times its kernel to a canvas
    at (i*s + a*d, j*s + b*d); the output is the canvas cropped by padding (plus output_padding)."""
    s, p, op, d = (v if isinstance(v, tuple) else (v, v) for v in (stride, padding, output_padding, dilation))
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    oh = (h - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op[0] + 1
    ow = (wd - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op[1] + 1
    y = np.zeros((n, og * groups, oh, ow))
    cg = c // groups
    for bi, ci, i, j, a, bb in itertools.product(range(n), range(c), range(h), range(wd), range(kh), range(kw)):
        r, q = i * s[0] + a * d[0] - p[0], j * s[1] + bb * d[1] - p[1]
        if 0 <= r < oh and 0 <= q < ow:
            g = ci // cg
            y[bi, g * og:(g + 1) * og, r, q] += x[bi, ci, i, j] * w[ci, :, a, bb]
    if b is not None:
        y += np.asarray(b)[None, :, None, None]
    return y


def test_hand_worked_example():
    # input [[1, 2], [3, 4]], kernel [[1, 10], [100, 1000]], stride 2: each input cell
    # stamps its own copy of the kernel, side by side, nothing overlapping
    x = cnnlab.tensor([[[[1., 2.], [3., 4.]]]])
    k = cnnlab.tensor([[[[1., 10.], [100., 1000.]]]])
    assert F.conv_transpose2d(x, k, stride=2).tolist() == [[[[1., 10., 2., 20.],
                                                             [100., 1000., 200., 2000.],
                                                             [3., 30., 4., 40.],
                                                             [300., 3000., 400., 4000.]]]]
    # stride 1: the stamps overlap and add (centre: 1*1000 + 2*100 + 3*10 + 4*1); padding 1
    # crops the border away
    y = F.conv_transpose2d(x, k, stride=1)
    assert y.tolist() == [[[[1., 12., 20.], [103., 1234., 2040.], [300., 3400., 4000.]]]]
    assert F.conv_transpose2d(x, k, stride=1, padding=1).tolist() == [[[[1234.]]]]
    # a 1-D look: [1, 2] with a ones(3) kernel at stride 2 -> 1 1 (1+2) 2 2
    assert F.conv_transpose2d(cnnlab.tensor([[[[1., 2.]]]]), cnnlab.ones(1, 1, 1, 3), stride=2).tolist() == \
        [[[[1., 1., 3., 2., 2.]]]]


def test_output_size_rule():
    assert conv_transpose_output_size(3, 3, s=2) == 7
    assert conv_transpose_output_size(7, 4, s=2, p=1) == 14          # DCGAN's doubling layer
    assert conv_transpose_output_size(5, 3, s=2, p=1, output_padding=1) == 10
    assert conv_transpose_output_size(4, 3, s=1, p=0, d=2) == 8


GEOMETRIES = [  # stride, padding, output_padding, dilation
    (1, 0, 0, 1), (2, 0, 0, 1), (2, 1, 1, 1), (3, 1, 2, 1), (2, 2, 1, 1), (1, 1, 0, 2), (2, 0, 1, 2),
    (1, 2, 1, 2), ((2, 1), (1, 0), (1, 0), (1, 2)), (3, 0, 0, 2),
]


@pytest.mark.parametrize("stride,padding,output_padding,dilation", GEOMETRIES)
def test_against_scatter_reference_with_finite_differences(stride, padding, output_padding, dilation):
    x = distinct((2, 3, 3, 4), seed=1)
    w = distinct((3, 2, 3, 2), seed=2)
    b = distinct((2,), seed=3)
    check_grad(lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, output_padding, 1, dilation),
               x, w, b, ref=lambda x, w, b: scatter_reference(x, w, b, stride, padding, output_padding, dilation))


@pytest.mark.parametrize("kernel", [(3, 3), (1, 1), (2, 2), (4, 3)])
def test_every_cpu_kernel_path(kernel):
    # 3x3 stride 1 takes the direct kernel, 1x1 the matrix products, the rest im2col
    x = distinct((2, 4, 12, 13), seed=4)
    w = distinct((4, 3) + kernel, seed=5)
    for s, p in ((1, 1), (1, 0), (2, 1)):
        if p > kernel[0] - 1 and s == 1:
            continue
        got = F.conv_transpose2d(cnnlab.tensor(x), cnnlab.tensor(w), None, s, p).numpy()
        np.testing.assert_allclose(got, scatter_reference(x, w, None, s, p), atol=1e-12)


def test_groups_against_reference():
    x, w, b = distinct((2, 4, 3, 3), seed=6), distinct((4, 3, 2, 2), seed=7), distinct((6,), seed=8)
    check_grad(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 0, 1, 2),
               x, w, b, ref=lambda x, w, b: scatter_reference(x, w, b, 2, 0, 1, 1, groups=2))


def test_it_is_the_input_gradient_of_conv2d():
    # <conv2d(u, w), v> = <u, conv_transpose2d(v, w)>: the two are adjoint maps
    rng = np.random.default_rng(0)
    u, w = rng.standard_normal((1, 2, 9, 8)), rng.standard_normal((3, 2, 3, 3))
    cu = F.conv2d(cnnlab.tensor(u), cnnlab.tensor(w), stride=2, padding=1, dilation=1)
    v = rng.standard_normal(cu.shape)
    tv = F.conv_transpose2d(cnnlab.tensor(v), cnnlab.tensor(w), stride=2, padding=1, output_padding=(0, 1))
    assert tv.shape == u.shape
    assert math.isclose(float((cu.numpy() * v).sum()), float((u * tv.numpy()).sum()), rel_tol=1e-10)


def test_layer_layout_init_and_state_dict():
    cnnlab.manual_seed(0)
    m = nn.ConvTranspose2d(6, 4, kernel_size=(3, 2), stride=2, groups=2)
    assert tuple(m.weight.shape) == (6, 2, 3, 2) and tuple(m.bias.shape) == (4,)
    assert list(m.state_dict()) == ["weight", "bias"]
    bound = 1 / math.sqrt(2 * 3 * 2)          # PyTorch's fan-in: weight.size(1) * kh * kw
    for p in (m.weight, m.bias):
        v = p.numpy()
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.6 * bound
    assert repr(m) == "ConvTranspose2d(6, 4, kernel_size=(3, 2), stride=(2, 2), groups=2)"
    assert nn.ConvTranspose2d(2, 2, 3, bias=False).bias is None
    y = m(cnnlab.zeros(1, 6, 5, 5))
    assert tuple(y.shape) == (1, 4, 11, 10)
    assert tuple(m(cnnlab.zeros(6, 5, 5)).shape) == (4, 11, 10)   # unbatched, as PyTorch


def test_output_size_argument_picks_output_padding():
    m = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1)
    x = cnnlab.zeros(1, 1, 4, 4)
    assert tuple(m(x).shape[2:]) == (7, 7)
    assert tuple(m(x, output_size=[8, 8]).shape[2:]) == (8, 8)
    assert tuple(m(x, output_size=(1, 1, 7, 8)).shape[2:]) == (7, 8)
    with pytest.raises(LayerError, match="valid sizes range from 7 to 8"):
        m(x, output_size=[9, 9])


def test_pytorch_checks():
    x = cnnlab.zeros(1, 2, 3, 3)
    w = cnnlab.zeros(2, 1, 3, 3)
    with pytest.raises(LayerError, match="output_padding must be smaller than either stride or dilation"):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)
    F.conv_transpose2d(x, w, stride=1, output_padding=1, dilation=2)     # allowed: smaller than the dilation
    with pytest.raises(LayerError, match="output_padding must be smaller"):
        nn.ConvTranspose2d(2, 1, 3, stride=1, output_padding=1)
    with pytest.raises(LayerError, match="expected input with 2 channels"):
        F.conv_transpose2d(cnnlab.zeros(1, 3, 3, 3), w)
    with pytest.raises(LayerError, match="expected bias of shape"):
        F.conv_transpose2d(x, w, cnnlab.zeros(2))
    with pytest.raises(LayerError, match="crops more"):
        F.conv_transpose2d(cnnlab.zeros(1, 2, 1, 1), w, padding=2)
    with pytest.raises(LayerError, match="divisible by groups"):
        nn.ConvTranspose2d(3, 4, 3, groups=2)
    with pytest.raises(LayerError, match="int or a pair"):
        F.conv_transpose2d(x, w, padding="same")


def test_empty_batch():
    m = nn.ConvTranspose2d(3, 4, 3, stride=2)
    x = cnnlab.zeros(0, 3, 5, 5, requires_grad=True)
    y = m(x)
    assert tuple(y.shape) == (0, 4, 11, 11)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 3, 5, 5)
    assert not m.weight.grad.numpy().any() and not m.bias.grad.numpy().any()


# ------------------------------------------------------------------ PyTorch parity
PARITY = [(s, p, op, d) for s in (1, 2, 3) for p in (0, 1, 2) for op in (0, 1, 2) for d in (1, 2)
          if op < max(s, d)]


@pytest.mark.parametrize("stride,padding,output_padding,dilation", PARITY)
def test_torch_parity(stride, padding, output_padding, dilation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(stride * 100 + padding * 10 + output_padding + dilation)
    x = rng.standard_normal((2, 4, 5, 4)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride, padding, output_padding, 1, dilation)
    if min(ty.shape[2:]) < 1:
        return
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(g))
    cx, cw, cb = (cnnlab.tensor(a, requires_grad=True) for a in (x, w, b))
    cy = F.conv_transpose2d(cx, cw, cb, stride, padding, output_padding, 1, dilation)
    cy.backward(cnnlab.tensor(g))
    for got, want in ((cy, ty), (cx.grad, tx.grad), (cw.grad, tw.grad), (cb.grad, tb.grad)):
        np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-4, atol=1e-4)


def test_torch_parity_of_the_layer_with_groups():
    torch = pytest.importorskip("torch")
    t = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    m = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    m.load_state_dict({k: cnnlab.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 4, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(m(cnnlab.tensor(x)).numpy(), t(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
