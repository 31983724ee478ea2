"""Grouped convolution (Conv2d(..., groups=g)): each block of C/g input channels meets its
own K/g filters. Checked against the definition (g separate convolutions, concatenated),
with float64 finite differences, on empty batches, and against PyTorch where installed
(including d2l's ResNeXt block, the reason grouped convolutions are in the lab)."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab.errors import LayerError
from helpers import check_grad, distinct
from naive import conv2d as naive_conv2d


def grouped_reference(x, w, b, groups, **kw):
    cg, kg = x.shape[1] // groups, w.shape[0] // groups
    parts = [naive_conv2d(x[:, g * cg:(g + 1) * cg], w[g * kg:(g + 1) * kg], None, **kw) for g in range(groups)]
    y = np.concatenate(parts, axis=1)
    return y if b is None else y + b[None, :, None, None]


@pytest.mark.parametrize("groups,stride,padding,dilation", [(2, 1, 1, 1), (3, 2, 0, 1), (6, 1, 2, 2), (2, 2, 1, 1)])
def test_against_separate_convolutions_with_finite_differences(groups, stride, padding, dilation):
    x = distinct((2, 6, 5, 5), seed=1)
    w = distinct((6, 6 // groups, 3, 3), seed=2)
    b = distinct((6,), seed=3)
    check_grad(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups), x, w, b,
               ref=lambda x, w, b: grouped_reference(x, w, b, groups, stride=stride, padding=padding,
                                                     dilation=dilation))


def test_depthwise_and_large_planes():
    # depthwise (groups = channels) on planes big enough for the direct 3x3 kernel
    x = distinct((2, 4, 16, 16), seed=4)
    w = distinct((8, 1, 3, 3), seed=5)
    got = F.conv2d(cnnlab.tensor(x), cnnlab.tensor(w), padding=1, groups=4).numpy()
    np.testing.assert_allclose(got, grouped_reference(x, w, None, 4, padding=1), atol=1e-12)


def test_layer_shapes_and_checks():
    m = nn.Conv2d(8, 16, 3, padding=1, groups=4)
    assert tuple(m.weight.shape) == (16, 2, 3, 3)
    assert repr(m) == "Conv2d(8, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=4)"
    assert tuple(m(cnnlab.zeros(2, 8, 6, 6)).shape) == (2, 16, 6, 6)
    with pytest.raises(LayerError, match="in_channels must be divisible by groups"):
        nn.Conv2d(6, 8, 3, groups=4)
    with pytest.raises(LayerError, match="out_channels must be divisible by groups"):
        nn.Conv2d(8, 6, 3, groups=4)
    with pytest.raises(LayerError, match=r"expected input with 8 channels \(weight \[16, 2, 3, 3\] \(groups=4\)\)"):
        F.conv2d(cnnlab.zeros(1, 6, 5, 5), m.weight, groups=4)
    with pytest.raises(LayerError, match="groups=3 must divide"):
        F.conv2d(cnnlab.zeros(1, 6, 5, 5), cnnlab.zeros(4, 2, 3, 3), groups=3)
    with pytest.raises(LayerError, match="groups must be a positive int"):
        F.conv2d(cnnlab.zeros(1, 2, 5, 5), cnnlab.zeros(4, 2, 3, 3), groups=0)


@pytest.mark.parametrize("kernel,padding", [(3, 1), (3, 0), (1, 0), (5, 2)])
def test_empty_batch(kernel, padding):
    for groups in (1, 2):
        m = nn.Conv2d(4, 6, kernel, padding=padding, groups=groups)
        x = cnnlab.zeros(0, 4, 20, 20, requires_grad=True)
        y = m(x)
        assert tuple(y.shape) == (0, 6) + (20 - kernel + 1 + 2 * padding,) * 2
        y.sum().backward()
        assert tuple(x.grad.shape) == (0, 4, 20, 20)
        assert tuple(m.weight.grad.shape) == tuple(m.weight.shape) and not m.weight.grad.numpy().any()
        assert not m.bias.grad.numpy().any()


@pytest.mark.parametrize("groups,stride,padding,dilation", [(2, 1, 1, 1), (4, 2, 1, 1), (8, 1, 2, 2)])
def test_torch_parity(groups, stride, padding, dilation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    w = rng.standard_normal((8, 8 // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(g))
    cx, cw, cb = (cnnlab.tensor(a, requires_grad=True) for a in (x, w, b))
    cy = F.conv2d(cx, cw, cb, stride, padding, dilation, groups)
    cy.backward(cnnlab.tensor(g))
    for got, want in ((cy, ty), (cx.grad, tx.grad), (cw.grad, tw.grad), (cb.grad, tb.grad)):
        np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-4, atol=1e-4)


def _resnext_block(lib, nn_):
    """d2l's ResNeXtBlock (use_1x1conv, strides 2), written once for either library."""

    class ResNeXtBlock(nn_.Module):
        def __init__(self, num_channels, groups, bot_mul, in_channels):
            super().__init__()
            bot = int(round(num_channels * bot_mul))
            self.conv1 = nn_.Conv2d(in_channels, bot, kernel_size=1, stride=1)
            self.conv2 = nn_.Conv2d(bot, bot, kernel_size=3, stride=2, padding=1, groups=bot // groups)
            self.conv3 = nn_.Conv2d(bot, num_channels, kernel_size=1, stride=1)
            self.bn1, self.bn2, self.bn3 = nn_.BatchNorm2d(bot), nn_.BatchNorm2d(bot), nn_.BatchNorm2d(num_channels)
            self.conv4 = nn_.Conv2d(in_channels, num_channels, kernel_size=1, stride=2)
            self.bn4 = nn_.BatchNorm2d(num_channels)

        def forward(self, X):
            relu = lib.nn.functional.relu
            Y = relu(self.bn1(self.conv1(X)))
            Y = relu(self.bn2(self.conv2(Y)))
            Y = self.bn3(self.conv3(Y))
            return relu(Y + self.bn4(self.conv4(X)))

    return ResNeXtBlock(32, 16, 1, 64)


def test_resnext_block_matches_pytorch():
    torch = pytest.importorskip("torch")
    tb, cb = _resnext_block(torch, torch.nn), _resnext_block(cnnlab, nn)
    cb.load_state_dict({k: cnnlab.tensor(v.detach().numpy()) for k, v in tb.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 64, 8, 8)).astype(np.float32)
    tx, cx = torch.tensor(x, requires_grad=True), cnnlab.tensor(x, requires_grad=True)
    ty, cy = tb(tx), cb(cx)
    assert tuple(cy.shape) == (4, 32, 4, 4)
    np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    ty.sum().backward()
    cy.sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(cb.conv2.weight.grad.numpy(), tb.conv2.weight.grad.numpy(), rtol=1e-3, atol=1e-3)
