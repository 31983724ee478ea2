"""The dense layer's forward pass for a few rows (cnnlab/backends/cpu_linear.py): a numba
kernel up to SMALL_ROWS rows, BLAS beyond; checked against float64 products, at the
boundary, on odd inputs (one row unbatched, no rows, infinities), and for the same bits on
one and two threads."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab as torch
import cnnlab.nn.functional as F
from cnnlab.backends import cpu_linear

from helpers import digests_per_thread_count


@pytest.mark.parametrize("rows", [1, 4, cpu_linear.SMALL_ROWS, cpu_linear.SMALL_ROWS + 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_gradients_against_float64(rows, dtype):
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 300)).astype(dtype)
    w = rng.standard_normal((37, 300)).astype(dtype)
    b = rng.standard_normal(37).astype(dtype)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.linear(tx, tw, tb)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(torch.tensor(g))
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    tol = 1e-4 if dtype == np.float32 else 1e-12
    assert y.dtype == tx.dtype
    np.testing.assert_allclose(y.numpy(), x64 @ w64.T + b, rtol=tol, atol=tol)
    np.testing.assert_allclose(tx.grad.numpy(), g64 @ w64, rtol=tol, atol=tol)
    np.testing.assert_allclose(tw.grad.numpy(), g64.T @ x64, rtol=tol, atol=tol)


def test_one_unbatched_row_no_rows_and_infinities():
    w = np.array([[2.0, 1.0, 0.5], [0.0, 1.0, 1.0]], np.float32)
    y = F.linear(torch.tensor(np.array([1.0, 2.0, 4.0], np.float32)), torch.tensor(w))
    assert y.shape == (2,)
    np.testing.assert_array_equal(y.numpy(), [6.0, 6.0])
    assert F.linear(torch.zeros(0, 3), torch.tensor(w)).shape == (0, 2)
    inf = F.linear(torch.tensor(np.array([[np.inf, 1.0, 1.0]], np.float32)), torch.tensor(w)).numpy()
    assert inf[0, 0] == np.inf          # inf * 2 + 1.5
    assert np.isnan(inf[0, 1])          # inf * 0, as IEEE (and BLAS) has it


DETERMINISM = r"""
import hashlib, numpy as np
import cnnlab as torch, cnnlab.nn.functional as F
rng = np.random.default_rng(0)
x = torch.tensor(rng.standard_normal((4, 4608)).astype(np.float32))
w = torch.tensor(rng.standard_normal((64, 4608)).astype(np.float32))
print(hashlib.sha256(F.linear(x, w).numpy().tobytes()).hexdigest())
"""


def test_the_same_bits_on_one_and_two_threads():
    assert len(digests_per_thread_count(DETERMINISM)) == 1
