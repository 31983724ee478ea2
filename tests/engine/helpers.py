"""The one helper every engine test uses: forward against a reference, gradients against
central finite differences in float64.

>>> check_grad(lambda a, b: a * b, np.random.rand(3), np.random.rand(3), ref=np.multiply)
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable, Sequence

import numpy as np

import cnnlab


def as_leaf(a: np.ndarray, requires_grad: bool = True) -> cnnlab.Tensor:
    """A float64 tensor that owns a copy of `a` (so nudging `a` later cannot leak in)."""
    return cnnlab.tensor(np.array(a, dtype=np.float64), requires_grad=requires_grad)


def check_grad(fn: Callable, *inputs, ref: Callable | None = None, wrt: Sequence[int] | None = None,
               eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0):
    """Check `fn` (Tensors -> Tensor) forward against `ref` (arrays -> array) and its backward
    against central finite differences, all in float64.

    inputs: floating NumPy arrays become float64 leaves; integer arrays become constant
    tensors (labels); anything else is passed through unchanged. `wrt` picks which of the
    floating inputs are differentiated (default: all). The output is contracted with a
    random upstream gradient R, so every output element's gradient path is exercised:
    d/dx sum(fn(x) * R) is compared with backward(gradient=R).

    Returns the analytic gradients (NumPy arrays) of the differentiated inputs.
    """
    arrays = [np.array(a, dtype=np.float64) if _is_float(a) else a for a in inputs]
    floats = [i for i, a in enumerate(arrays) if _is_float(a)]
    wrt = floats if wrt is None else list(wrt)

    def tensors(arrs, grad: bool):
        out = []
        for i, a in enumerate(arrs):
            if _is_float(a):
                out.append(as_leaf(a, requires_grad=grad and i in wrt))
            elif isinstance(a, np.ndarray):
                out.append(cnnlab.tensor(a))
            else:
                out.append(a)
        return out

    leaves = tensors(arrays, grad=True)
    out = fn(*leaves)
    assert isinstance(out, cnnlab.Tensor), f"fn returned {type(out).__name__}, not a Tensor"
    assert out.dtype == np.float64, f"float64 inputs gave a {out.dtype} output"
    y = out.numpy().copy()
    if ref is not None:
        expected = np.asarray(ref(*arrays), dtype=np.float64)
        assert y.shape == expected.shape, f"forward shape {y.shape}, reference {expected.shape}"
        np.testing.assert_allclose(y, expected, atol=atol, rtol=rtol, err_msg="forward differs from reference")

    upstream = np.random.default_rng(seed).standard_normal(y.shape)
    # reshape: the upstream of a 0-d output must be 0-d too (see test_zero_dim_tensors)
    out.backward(gradient=cnnlab.tensor(upstream).reshape(y.shape))

    def objective(arrs) -> float:
        with cnnlab.no_grad():
            return float(np.sum(fn(*tensors(arrs, grad=False)).numpy() * upstream))

    grads = []
    for i in wrt:
        g = leaves[i].grad
        assert g is not None, f"input {i} got no gradient"
        g = g.numpy()
        assert g.shape == arrays[i].shape, f"input {i}: gradient shape {g.shape}, input {arrays[i].shape}"
        numeric = np.zeros_like(arrays[i])
        flat = arrays[i].reshape(-1)  # a view: nudging flat nudges arrays[i]
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + eps
            plus = objective(arrays)
            flat[j] = keep - eps
            minus = objective(arrays)
            flat[j] = keep
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(g, numeric, atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {i} differs from finite differences")
        grads.append(g)
    return grads


def _is_float(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def distinct(shape, seed: int = 0, spread: float = 1.0) -> np.ndarray:
    """Values in [-spread, spread] at least 2*spread/size apart: no ties for max/relu to
    trip finite differences, and none exactly at 0."""
    n = int(np.prod(shape))
    values = (np.arange(n) + 0.5) / n * 2 - 1
    return np.random.default_rng(seed).permutation(values).reshape(shape) * spread


def digests_per_thread_count(script: str, counts: Sequence[str] = ("1", "2"), **env: str) -> set[str]:
    """Run `script` (which prints a digest of its results) in a fresh process per numba thread
    count, with `env` added to the environment; the set of what they printed (one element
    when the bits do not depend on the thread count)."""
    digests = set()
    for threads in counts:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                             env={**os.environ, **env, "NUMBA_NUM_THREADS": threads})
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    return digests


def record_calls(monkeypatch, kernels) -> list[str]:
    """Wrap each (module, name) kernel so a call appends its name to the returned list (a
    test must show it reached the kernels it checks); the kernels still run."""
    calls: list[str] = []
    for module, name in kernels:
        kernel = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _k=kernel, _n=name: (calls.append(_n), _k(*a))[1])
    return calls


def conv3x3_reference(x, w, b, g, stride: int = 1):
    """Forward pass, input and weight gradients of the 3x3, padding-1 convolution at
    `stride`, in float64 from the definition: y = sum over taps (i, j) of w[:, :, i, j]
    applied to the padded input's window that starts at (i, j), every stride-th cell."""
    x, w, b, g = (a.astype(np.float64) for a in (x, w, b, g))
    n, c, h, wd = x.shape
    oh, ow = (h - 1) // stride + 1, (wd - 1) // stride + 1
    xp = np.zeros((n, c, h + 2, wd + 2))
    xp[:, :, 1:-1, 1:-1] = x
    y = np.broadcast_to(b[None, :, None, None], (n, w.shape[0], oh, ow)).copy()
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(3):
        for j in range(3):
            cells = (slice(None), slice(None), slice(i, i + stride * oh, stride), slice(j, j + stride * ow, stride))
            y += np.einsum("kc,ncyx->nkyx", w[:, :, i, j], xp[cells])
            dw[:, :, i, j] = np.einsum("nkyx,ncyx->kc", g, xp[cells])
            dxp[cells] += np.einsum("kc,nkyx->ncyx", w[:, :, i, j], g)
    return y, dxp[:, :, 1:-1, 1:-1], dw


def check_conv3x3(x, w, b, g, stride: int = 1) -> None:
    """F.conv2d (padding 1) forward and backward with output gradient g, against
    conv3x3_reference."""
    import cnnlab.nn.functional as F
    tx, tw, tb = (cnnlab.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(tx, tw, tb, stride, 1)
    y.backward(cnnlab.tensor(g))
    y_ref, dx_ref, dw_ref = conv3x3_reference(x, w, b, g, stride)
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tx.grad.numpy(), dx_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tw.grad.numpy(), dw_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tb.grad.numpy(), g.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-4)
