"""The numbers a trace explains come from here: cnnlab's own `nn.functional`, so a trace
shows exactly what the engine computes (there is no second implementation to drift).

Each function takes and returns NumPy arrays for ONE image (C, H, W); pairs are
already (height, width) tuples.
"""
from __future__ import annotations

import numpy as np

from ..nn import functional as F
from ..creation import tensor
from ..tensor import Tensor

Pair = tuple[int, int]


def _tensor(a: np.ndarray, grad: bool = False) -> Tensor:
    return tensor(np.ascontiguousarray(a), requires_grad=grad)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, s: Pair, p: Pair, d: Pair) -> np.ndarray:
    """(C,H,W) * (K,C,kh,kw) -> (K,Ho,Wo)."""
    out = F.conv2d(_tensor(x[None]), _tensor(w), None if b is None else _tensor(b),
                   stride=s, padding=p, dilation=d)
    return out.numpy()[0]


def conv2d_grads(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: np.ndarray,
                 s: Pair, p: Pair, d: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dL/dx, dL/dw, dL/db of conv2d for the upstream gradient g (K,Ho,Wo)."""
    xt, wt = _tensor(x[None], True), _tensor(w, True)
    bt = _tensor(np.zeros(w.shape[0], x.dtype) if b is None else b, True)
    F.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d).backward(_tensor(g[None]))
    return xt.grad.numpy()[0], wt.grad.numpy(), bt.grad.numpy()


def pool2d(x: np.ndarray, mode: str, k: Pair, s: Pair, p: Pair, d: Pair, ceil_mode: bool,
           count_include_pad: bool) -> np.ndarray:
    """(C,H,W) -> (C,Ho,Wo) by max/avg/sum pooling."""
    return _pool(_tensor(x[None]), mode, k, s, p, d, ceil_mode, count_include_pad).numpy()[0]


def pool2d_grad(x: np.ndarray, g: np.ndarray, mode: str, k: Pair, s: Pair, p: Pair, d: Pair,
                ceil_mode: bool, count_include_pad: bool) -> np.ndarray:
    """dL/dx of pooling for the upstream gradient g (C,Ho,Wo)."""
    xt = _tensor(x[None], True)
    _pool(xt, mode, k, s, p, d, ceil_mode, count_include_pad).backward(_tensor(g[None]))
    return xt.grad.numpy()[0]


def _pool(xt: Tensor, mode: str, k: Pair, s: Pair, p: Pair, d: Pair, ceil_mode: bool,
          count_include_pad: bool) -> Tensor:
    if mode == "max":
        return F.max_pool2d(xt, k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    if mode == "avg":
        return F.avg_pool2d(xt, k, stride=s, padding=p, ceil_mode=ceil_mode,
                            count_include_pad=count_include_pad)
    return F.sum_pool2d(xt, k, stride=s, padding=p, ceil_mode=ceil_mode)
