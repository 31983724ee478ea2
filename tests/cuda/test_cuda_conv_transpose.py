"""The CUDA twins of conv_transpose2d (and the grouped and empty-batch paths of the
functional layer) against the CPU backend, on tiny shapes in the simulator."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn.functional as F
from cnnlab.nn.geometry import conv_transpose_output_size
from cuda_twins import rand, twin

F32 = dict(rtol=1e-4, atol=1e-5)

TRANSPOSED = [  # x shape, w shape (C, O, kh, kw), stride, padding, output_padding, dilation, bias
    ((2, 3, 3, 4), (3, 2, 3, 3), (1, 1), (0, 0), (0, 0), (1, 1), True),
    ((1, 2, 3, 3), (2, 3, 3, 2), (2, 2), (1, 0), (1, 1), (1, 1), False),
    ((2, 2, 2, 3), (2, 2, 2, 3), (3, 1), (0, 1), (2, 0), (1, 2), True),     # dilation, output padding
    ((1, 3, 3, 3), (3, 4, 1, 1), (2, 2), (0, 0), (1, 0), (1, 1), True),     # 1x1
]


def _out(xs, ws, s, p, op, d):
    return tuple(conv_transpose_output_size(n, k, st, pd, dl, o)
                 for n, k, st, pd, o, dl in zip(xs[2:], ws[2:], s, p, op, d))


@pytest.mark.parametrize("xs,ws,s,p,op,d,bias", TRANSPOSED)
def test_conv_transpose2d(xs, ws, s, p, op, d, bias):
    x, w = rand(*xs), rand(*ws)
    b = rand(ws[1]) if bias else None
    out_hw = _out(xs, ws, s, p, op, d)
    (y, _), _ = twin("conv_transpose2d_forward", x, w, b, s, p, d, out_hw, **F32)
    g = rand(*y.shape)
    twin("conv_transpose2d_backward", x, w, g, None, s, p, d, True, True, bias, **F32)
    twin("conv_transpose2d_backward", x, w, g, None, s, p, d, False, True, False, **F32)


def test_conv_transpose2d_float64():
    xs, ws, s, p, op, d = (1, 2, 3, 3), (2, 3, 3, 3), (2, 2), (1, 1), (1, 1), (1, 1)
    x, w = rand(*xs, dtype=np.float64), rand(*ws, dtype=np.float64)
    out_hw = _out(xs, ws, s, p, op, d)
    twin("conv_transpose2d_forward", x, w, rand(3, dtype=np.float64), s, p, d, out_hw, rtol=1e-12)
    g = rand(1, 3, *out_hw, dtype=np.float64)
    twin("conv_transpose2d_backward", x, w, g, None, s, p, d, True, True, True, rtol=1e-12)


def _both_devices(fn, *arrays):
    """fn on cpu and on cuda tensors: (outputs, gradients of every input) for each device."""
    results = []
    for device in ("cpu", "cuda"):
        leaves = [cnnlab.tensor(a, requires_grad=True, device=device) for a in arrays]
        y = fn(*leaves)
        y.backward(cnnlab.ones(*y.shape, device=device))
        results.append([y.cpu().numpy()] + [t.grad.cpu().numpy() for t in leaves])
    return results


@pytest.mark.parametrize("transposed", [False, True])
def test_grouped_and_empty_batches_on_the_device(transposed):
    for n in (2, 0):
        x = rand(n, 4, 4, 4)
        w = rand(4, 3, 3, 3) if transposed else rand(6, 2, 3, 3)
        b = rand(6)
        fn = ((lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 2)) if transposed
              else (lambda x, w, b: F.conv2d(x, w, b, 1, 1, 1, 2)))
        cpu, cuda = _both_devices(fn, x, w, b)
        for got, want in zip(cuda, cpu):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, **F32)
