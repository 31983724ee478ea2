"""Step-by-step traces of a 2-D convolution, forward and backward.

A forward trace has one step per output cell, in raster order: the window on the
padded input, the kernel taps it meets, their products and the sum plus bias. Each
step's `value` is the engine's own output number at that cell, so what a view shows
is exactly what `F.conv2d` computes; the products are the trace's own.

>>> import numpy as np
>>> t = conv2d_trace(np.arange(9).reshape(3, 3), [[0, 1], [2, 3]])
>>> t.output.tolist()
[[19.0, 25.0], [37.0, 43.0]]
>>> t.steps[0].arithmetic()
'0×0 + 1×1 + 3×2 + 4×3 = 19'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _engine
from ._common import (ProductSum, WindowLookup, WindowTrace, as_array, as_image, cell, join_terms, num,
                      paren)
from .sizes import IntOrPair, check_conv2d, pair

Pos = tuple[int, ...]


@dataclass(frozen=True)
class ConvStep(ProductSum):
    """One output cell of a convolution, written out as a person would compute it.

    `positions` are (channel, row, col) cells of the PADDED input in kernel order;
    `taps` the (channel, row, col) of the kernel weight each one meets (with
    `flip=True` these run backwards through the kernel). `value` is the engine's.
    """

    out_pos: tuple[int, int]
    positions: tuple[Pos, ...]
    taps: tuple[Pos, ...]
    inputs: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def arithmetic(self, max_terms: int | None = None) -> str:
        """The sum written out with the real numbers, e.g. '0×0 + 0×1 + 1×2 + 2×3 = 8'."""
        terms = self.product_terms(self.inputs, self.weights)
        channels = sorted({p[0] for p in self.positions})
        if len(channels) > 1 and max_terms is None:  # one bracket per channel: a 3-D filter's slices
            groups = [join_terms((t for t, p in zip(terms, self.positions) if p[0] == c), None)
                      for c in channels]
            text = " + ".join(f"({g})" for g in groups)
        else:
            text = join_terms(terms, max_terms)
        if self.bias:
            text += f" + {paren(self.bias)} (bias)"
        return f"{text} = {num(self.value)}"


@dataclass(frozen=True)
class ConvTrace(WindowTrace, WindowLookup):
    """The whole forward convolution of one image by one filter, step by step.

    `kernel` is the filter as applied, shape (C, kh, kw) (already rotated when
    `flip`); `output` is the engine's (Ho, Wo) map for `out_channel`.
    """

    kernel: np.ndarray
    bias: float
    flip: bool
    out_channel: int
    output: np.ndarray
    steps: tuple[ConvStep, ...]


def _filter_bank(weight: Any, dtype: Any) -> np.ndarray:
    w = as_array(weight, dtype)
    while w.ndim < 4:  # (kh, kw) or one filter (C, kh, kw) -> (K, C, kh, kw)
        w = w[None]
    if w.ndim != 4:
        raise ValueError(f"expected a weight shaped (K, C, kh, kw), (C, kh, kw) or (kh, kw), got {w.shape}")
    return w


def _bias_vector(bias: Any, k: int, dtype: Any) -> np.ndarray | None:
    if bias is None:
        return None
    b = as_array(bias, dtype).reshape(-1)
    if b.size == 1:
        b = np.full(k, b[0], dtype)
    if b.size != k:
        raise ValueError(f"bias has {b.size} values but the weight has {k} filters")
    return b


def _windows(xp: np.ndarray, ho: int, wo: int, kh: int, kw: int, s: tuple[int, int],
             d: tuple[int, int]) -> np.ndarray:
    """Every window of the padded input: (Ho, Wo, C, kh, kw), dilation gaps skipped."""
    rows = (np.arange(ho) * s[0])[:, None] + np.arange(kh) * d[0]
    cols = (np.arange(wo) * s[1])[:, None] + np.arange(kw) * d[1]
    return xp[:, rows[:, None, :, None], cols[None, :, None, :]].transpose(1, 2, 0, 3, 4)


def _prepare(input: Any, weight: Any, stride: IntOrPair, padding: IntOrPair, dilation: IntOrPair):
    x = as_image(input)
    w = _filter_bank(weight, x.dtype)
    s, p, d = pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")
    check = check_conv2d(x.shape, w.shape[2:], s, p, d, kernel_channels=w.shape[1])
    if not check.ok:
        raise ValueError(check.message())
    xp = np.pad(x, ((0, 0), (p[0], p[0]), (p[1], p[1])))
    return x, w, xp, s, p, d, check


def conv2d_trace(input: Any, weight: Any, bias: Any = None, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, out_channel: int = 0,
                 flip: bool = False) -> ConvTrace:
    """Trace the convolution of one image (C, H, W) by one filter, one output cell per step.

    Args:
        input: (C, H, W) or (H, W).
        weight: (K, C, kh, kw), one filter (C, kh, kw) or a single-channel (kh, kw).
        bias: None, a scalar or (K,).
        stride, padding, dilation: int or (height, width) pair, as `F.conv2d`.
        out_channel: which of the K filters to trace.
        flip: rotate the kernel 180 degrees first — true convolution, where deep
            learning frameworks compute cross-correlation.

    Shape: output (Ho, Wo) with Ho = floor((H + 2p - d(kh-1) - 1) / s) + 1.

    Raises ValueError with the explanation for settings that have no output.

    >>> t = conv2d_trace([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]], padding=1, stride=(3, 2))
    >>> t.output.tolist(), t.steps[1].arithmetic()
    ([[0.0, 8.0], [6.0, 8.0]], '0×0 + 0×1 + 1×2 + 2×3 = 8')
    """
    x, w, xp, s, p, d, check = _prepare(input, weight, stride, padding, dilation)
    k, c, kh, kw = w.shape
    if not 0 <= out_channel < k:
        raise ValueError(f"out_channel {out_channel} is out of range for {k} filter(s)")
    b = _bias_vector(bias, k, x.dtype)
    applied = np.ascontiguousarray(w[:, :, ::-1, ::-1]) if flip else w
    out = _engine.conv2d(x, applied, b, s, p, d)[out_channel]
    ho, wo = out.shape

    f = applied[out_channel]
    win = _windows(xp, ho, wo, kh, kw, s, d).reshape(ho, wo, -1)
    wflat = f.reshape(-1)
    # float32 x float32 is exact in float64, so the products shown are the true ones.
    prods = win.astype(np.float64) * wflat.astype(np.float64)
    offsets = [(ch, m * d[0], n * d[1]) for ch in range(c) for m in range(kh) for n in range(kw)]
    taps = tuple((ch, kh - 1 - m, kw - 1 - n) if flip else (ch, m, n)
                 for ch in range(c) for m in range(kh) for n in range(kw))
    weights = tuple(wflat.tolist())
    bias_value = float(b[out_channel]) if b is not None else 0.0
    win_l, prod_l, out_l = win.tolist(), prods.tolist(), out.tolist()
    steps = []
    for i in range(ho):
        r0 = i * s[0]
        for j in range(wo):
            c0 = j * s[1]
            steps.append(ConvStep(
                index=i * wo + j, out_pos=(i, j),
                positions=tuple((ch, r0 + dr, c0 + dc) for ch, dr, dc in offsets),
                taps=taps, inputs=tuple(win_l[i][j]), weights=weights,
                products=tuple(prod_l[i][j]), bias=bias_value, value=out_l[i][j]))
    return ConvTrace(input=x, padded=xp, stride=s, padding=p, dilation=d, check=check, kernel=f,
                     bias=bias_value, flip=flip, out_channel=out_channel, output=out, steps=tuple(steps))


# ---------------------------------------------------------------- backward

@dataclass(frozen=True)
class GradStep(ProductSum):
    """One gradient entry as a sum of products: sum(grads[i] * factors[i]) = value.

    For dL/dX the factors are kernel weights (positions (k, c, row, col) of the
    weight); for dL/dW they are padded-input cells (c, row, col); for dL/db they are
    all 1. `grad_positions` are the (k, row, col) cells of dL/dY. `value` is the
    engine's gradient.
    """

    name: str
    target: Pos
    grad_positions: tuple[Pos, ...]
    grads: tuple[float, ...]
    factor_positions: tuple[Pos, ...]
    factors: tuple[float, ...]

    def arithmetic(self, max_terms: int | None = None) -> str:
        """E.g. 'dL/dx[0,1,1] = 1×0.5 + (-1)×2 = -1.5'."""
        if not self.products:
            return f"{self.name} = 0 (no window covers this cell)"
        terms = self.product_terms(self.grads, self.factors)
        return f"{self.name} = {join_terms(terms, max_terms)} = {num(self.value)}"


@dataclass(frozen=True)
class ConvBackwardTrace(WindowTrace):
    """The backward pass of one image's convolution, one gradient entry per step.

    `input_steps`: one per input cell (c, row, col) in raster order — the full
    convolution of dL/dY with the rotated kernel. `weight_steps`: one per weight
    (k, c, row, col) — the correlation of the padded input with dL/dY.
    `bias_steps`: one per filter. `grad_*` are the engine's gradients.
    """

    weight: np.ndarray
    grad_output: np.ndarray
    grad_input: np.ndarray
    grad_weight: np.ndarray
    grad_bias: np.ndarray
    input_steps: tuple[GradStep, ...]
    weight_steps: tuple[GradStep, ...]
    bias_steps: tuple[GradStep, ...]

    def steps(self, wrt: str = "input") -> tuple[GradStep, ...]:
        """The steps for the gradient with respect to 'input', 'weight' or 'bias'."""
        return {"input": self.input_steps, "weight": self.weight_steps, "bias": self.bias_steps}[wrt]


def _axis_hits(n_padded: int, n_out: int, k: int, s: int, d: int) -> list[list[tuple[int, int]]]:
    """For each padded index, the (output index, kernel index) pairs whose tap lands on it."""
    hits: list[list[tuple[int, int]]] = [[] for _ in range(n_padded)]
    for i in range(n_out):
        for m in range(k):
            hits[i * s + m * d].append((i, m))
    return hits


def conv2d_backward_trace(input: Any, weight: Any, grad_output: Any = None, bias: Any = None,
                          stride: IntOrPair = 1, padding: IntOrPair = 0,
                          dilation: IntOrPair = 1) -> ConvBackwardTrace:
    """Trace dL/dX, dL/dW and dL/db of a convolution of one image, entry by entry.

    `grad_output` is dL/dY, shaped (K, Ho, Wo) (or (Ho, Wo) for one filter); None
    means all ones, i.e. L = Y.sum().

    >>> t = conv2d_backward_trace([[1, 2], [3, 4]], [[[[1, 10]]]])
    >>> t.weight_steps[1].arithmetic()
    'dL/dw[0,0,0,1] = 1×2 + 1×4 = 6'
    >>> t.input_steps[1].arithmetic()
    'dL/dx[0,0,1] = 1×10 = 10'
    """
    x, w, xp, s, p, d, check = _prepare(input, weight, stride, padding, dilation)
    k, c, kh, kw = w.shape
    ho, wo = check.out_shape  # type: ignore[misc]
    g = np.ones((k, ho, wo), x.dtype) if grad_output is None else as_array(grad_output, x.dtype)
    if g.ndim == 2:
        g = g[None]
    if g.shape != (k, ho, wo):
        raise ValueError(f"grad_output must be shaped {(k, ho, wo)} (the output's shape), got {g.shape}")
    b = _bias_vector(bias, k, x.dtype)
    gx, gw, gb = _engine.conv2d_grads(x, w, b, g, s, p, d)

    g_l, w_l, xp_l = g.tolist(), w.tolist(), xp.tolist()
    gx_l, gw_l, gb_l = gx.tolist(), gw.tolist(), gb.tolist()
    h, wd = x.shape[1:]

    # dL/dX: every (output cell, tap) pair whose tap lands on the input cell.
    row_hits = _axis_hits(xp.shape[1], ho, kh, s[0], d[0])
    col_hits = _axis_hits(xp.shape[2], wo, kw, s[1], d[1])
    input_steps = []
    for ch in range(c):
        for r in range(h):
            for q in range(wd):
                terms = [(kk, i, j, m, n) for kk in range(k)
                         for i, m in row_hits[r + p[0]] for j, n in col_hits[q + p[1]]]
                input_steps.append(_grad_step(
                    len(input_steps), "dL/dx", (ch, r, q),
                    [(kk, i, j) for kk, i, j, _, _ in terms], [g_l[kk][i][j] for kk, i, j, _, _ in terms],
                    [(kk, ch, m, n) for kk, _, _, m, n in terms], [w_l[kk][ch][m][n] for kk, _, _, m, n in terms],
                    gx_l[ch][r][q]))

    # dL/dW: the window of input cells this tap met, one per output cell.
    weight_steps = []
    for kk in range(k):
        gpos = [(kk, i, j) for i in range(ho) for j in range(wo)]
        grads = [g_l[kk][i][j] for i in range(ho) for j in range(wo)]
        for ch in range(c):
            for m in range(kh):
                for n in range(kw):
                    xpos = [(ch, i * s[0] + m * d[0], j * s[1] + n * d[1]) for i in range(ho) for j in range(wo)]
                    weight_steps.append(_grad_step(
                        len(weight_steps), "dL/dw", (kk, ch, m, n), gpos, grads,
                        xpos, [xp_l[a][r][q] for a, r, q in xpos], gw_l[kk][ch][m][n]))

    bias_steps = []
    for kk in range(k):
        gpos = [(kk, i, j) for i in range(ho) for j in range(wo)]
        bias_steps.append(_grad_step(kk, "dL/db", (kk,), gpos, [g_l[kk][i][j] for _, i, j in gpos],
                                     [(kk,)] * len(gpos), [1.0] * len(gpos), gb_l[kk]))

    return ConvBackwardTrace(input=x, padded=xp, stride=s, padding=p, dilation=d, check=check, weight=w,
                             grad_output=g, grad_input=gx, grad_weight=gw, grad_bias=gb,
                             input_steps=tuple(input_steps), weight_steps=tuple(weight_steps),
                             bias_steps=tuple(bias_steps))


def _grad_step(index: int, what: str, target: Pos, gpos: list, grads: list, fpos: list, factors: list,
               value: float) -> GradStep:
    # Python floats are doubles, so products of float32 numbers are exact here.
    products = tuple(a * b for a, b in zip(grads, factors))
    return GradStep(index=index, products=products, value=value, name=f"{what}{cell(target)}", target=target,
                    grad_positions=tuple(gpos), grads=tuple(grads), factor_positions=tuple(fpos),
                    factors=tuple(factors))
