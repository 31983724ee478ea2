"""The numbers a trace explains come from here: cnnlab's own engine when it is
importable, otherwise a plain NumPy computation so `explain` still works alone.

Each function takes and returns NumPy arrays for ONE image (C, H, W); pairs are
already (height, width) tuples.
"""
from __future__ import annotations

from typing import Any

import numpy as np

Pair = tuple[int, int]
_OPS = ("conv2d", "max_pool2d", "avg_pool2d", "sum_pool2d")


def engine() -> tuple[Any, Any] | None:
    """(cnnlab, cnnlab.nn.functional) when the engine is importable, else None."""
    try:
        import cnnlab
        import cnnlab.nn.functional as F
    except Exception:  # an engine that cannot even import must not take the lab down with it
        return None
    needed = (getattr(cnnlab, "tensor", None), *(getattr(F, n, None) for n in _OPS))
    return (cnnlab, F) if all(callable(f) for f in needed) else None


def source() -> str:
    """'cnnlab' when traces draw from the engine, 'numpy' for the fallback."""
    return "cnnlab" if engine() else "numpy"


def _tensor(cnn: Any, a: np.ndarray, grad: bool = False) -> Any:
    return cnn.tensor(np.ascontiguousarray(a), requires_grad=grad)


# ---------------------------------------------------------------- convolution

def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, s: Pair, p: Pair, d: Pair) -> np.ndarray:
    """(C,H,W) * (K,C,kh,kw) -> (K,Ho,Wo)."""
    eng = engine()
    if eng:
        cnn, F = eng
        out = F.conv2d(_tensor(cnn, x[None]), _tensor(cnn, w), None if b is None else _tensor(cnn, b),
                       stride=s, padding=p, dilation=d)
        return out.numpy()[0]
    return _np_conv2d(x, w, b, s, p, d)


def conv2d_grads(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: np.ndarray,
                 s: Pair, p: Pair, d: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dL/dx, dL/dw, dL/db of conv2d for the upstream gradient g (K,Ho,Wo)."""
    eng = engine()
    if eng:
        cnn, F = eng
        xt, wt = _tensor(cnn, x[None], True), _tensor(cnn, w, True)
        bt = _tensor(cnn, np.zeros(w.shape[0], x.dtype) if b is None else b, True)
        out = F.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d)
        out.backward(_tensor(cnn, g[None]))
        return xt.grad.numpy()[0], wt.grad.numpy(), bt.grad.numpy()
    return _np_conv2d_grads(x, w, g, s, p, d)


def _out_len(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _tap_slices(m: int, n: int, ho: int, wo: int, s: Pair, d: Pair) -> tuple[slice, slice]:
    return (slice(m * d[0], m * d[0] + s[0] * (ho - 1) + 1, s[0]),
            slice(n * d[1], n * d[1] + s[1] * (wo - 1) + 1, s[1]))


def _np_conv2d(x, w, b, s, p, d):
    k, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (p[0], p[0]), (p[1], p[1])))
    ho, wo = _out_len(x.shape[1], kh, s[0], p[0], d[0]), _out_len(x.shape[2], kw, s[1], p[1], d[1])
    out = np.zeros((k, ho, wo), np.float64)
    for m in range(kh):
        for n in range(kw):
            rows, cols = _tap_slices(m, n, ho, wo, s, d)
            out += np.einsum("kc,chw->khw", w[:, :, m, n], xp[:, rows, cols])
    if b is not None:
        out += np.asarray(b, np.float64)[:, None, None]
    return out.astype(x.dtype)


def _np_conv2d_grads(x, w, g, s, p, d):
    _, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (p[0], p[0]), (p[1], p[1]))).astype(np.float64)
    gxp = np.zeros_like(xp)
    gw = np.zeros(w.shape, np.float64)
    ho, wo = g.shape[1:]
    for m in range(kh):
        for n in range(kw):
            rows, cols = _tap_slices(m, n, ho, wo, s, d)
            gw[:, :, m, n] = np.einsum("khw,chw->kc", g, xp[:, rows, cols])
            gxp[:, rows, cols] += np.einsum("kc,khw->chw", w[:, :, m, n], g)
    gx = gxp[:, p[0]:p[0] + x.shape[1], p[1]:p[1] + x.shape[2]]
    return gx.astype(x.dtype), gw.astype(x.dtype), g.sum(axis=(1, 2)).astype(x.dtype)


# ---------------------------------------------------------------- pooling

def pool2d(x: np.ndarray, mode: str, k: Pair, s: Pair, p: Pair, d: Pair, ceil_mode: bool,
           count_include_pad: bool, fallback: Any) -> np.ndarray:
    """(C,H,W) -> (C,Ho,Wo) by max/avg/sum pooling; `fallback()` computes it without the engine."""
    eng = engine()
    if not eng:
        return fallback()
    cnn, F = eng
    return _pool(cnn, F, _tensor(cnn, x[None]), mode, k, s, p, d, ceil_mode, count_include_pad).numpy()[0]


def pool2d_grad(x: np.ndarray, g: np.ndarray, mode: str, k: Pair, s: Pair, p: Pair, d: Pair,
                ceil_mode: bool, count_include_pad: bool, fallback: Any) -> np.ndarray:
    """dL/dx of pooling for the upstream gradient g (C,Ho,Wo)."""
    eng = engine()
    if not eng:
        return fallback()
    cnn, F = eng
    xt = _tensor(cnn, x[None], True)
    out = _pool(cnn, F, xt, mode, k, s, p, d, ceil_mode, count_include_pad)
    out.backward(_tensor(cnn, g[None]))
    return xt.grad.numpy()[0]


def _pool(cnn, F, xt, mode, k, s, p, d, ceil_mode, count_include_pad):
    if mode == "max":
        return F.max_pool2d(xt, k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    if mode == "avg":
        return F.avg_pool2d(xt, k, stride=s, padding=p, ceil_mode=ceil_mode,
                            count_include_pad=count_include_pad)
    return F.sum_pool2d(xt, k, stride=s, padding=p, ceil_mode=ceil_mode)
