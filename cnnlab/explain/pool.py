"""Step-by-step traces of 2-D max/avg/sum pooling, forward and backward.

Pooling works on each channel alone, so a trace follows one `channel`. Forward:
one step per output cell with its window (max records the arg-max). Backward: one
step per output cell too, showing where its upstream gradient goes — all of it to
the arg-max (max), an equal share to every cell (avg), a copy to every cell (sum).

>>> import numpy as np
>>> t = pool2d_trace(np.arange(16).reshape(4, 4), 2)
>>> t.output.tolist(), t.steps[0].arithmetic()
([[5.0, 7.0], [13.0, 15.0]], 'max(0, 1, 4, 5) = 5')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _engine
from ._common import Displayed, WindowLookup, WindowTrace, as_array, as_image, cell, join_terms, num
from .sizes import IntOrPair, check_pool2d, pair

Pos = tuple[int, ...]
MODES = ("max", "avg", "sum")


@dataclass(frozen=True)
class PoolStep:
    """One pooled output cell. `positions` are (channel, row, col) of the PADDED input
    inside the window (max pooling sees padding as -inf, avg/sum as 0); `argmax` is the
    winning position for max pooling; `divisor` what avg divides by (the whole window with
    count_include_pad, as PyTorch by default, else only its real input cells); `in_input`
    whether each position is a real input cell rather than padding. `value` is the engine's.
    """

    index: int
    out_pos: tuple[int, int]
    mode: str
    positions: tuple[Pos, ...]
    inputs: tuple[float, ...]
    argmax: Pos | None
    divisor: int
    value: float
    in_input: tuple[bool, ...] = ()

    def arithmetic(self, max_terms: int | None = None) -> str:
        """E.g. 'max(0, 1, 4, 5) = 5', '(0 + 1 + 4 + 5) / 4 = 2.5', '0 + 1 + 4 + 5 = 10'.
        An average says whether the window's padding cells are counted."""
        inputs = self.inputs
        padding = len(self.in_input) - sum(self.in_input)
        if self.mode == "avg" and self.divisor < len(inputs):  # count_include_pad=False: real cells only
            inputs = tuple(v for v, real in zip(inputs, self.in_input) if real)
        terms = join_terms((num(v) for v in inputs), max_terms, ", " if self.mode == "max" else " + ")
        if self.mode == "max":
            return f"max({terms}) = {num(self.value)}"
        if self.mode == "avg":
            tail = ""
            if padding:
                tail = (f" ({padding} padding zero(s) counted: count_include_pad=True)"
                        if self.divisor == len(self.inputs) else
                        f" ({padding} padding cell(s) not counted: count_include_pad=False)")
            return f"({terms}) / {self.divisor} = {num(self.value)}{tail}"
        return f"{terms} = {num(self.value)}"


@dataclass(frozen=True)
class PoolTrace(WindowTrace, WindowLookup):
    """Pooling of one channel of one image, step by step. `padded` holds every channel,
    padded with -inf (max) or 0 (avg, sum); `output` is the engine's (Ho, Wo) map."""

    mode: str
    kernel_size: tuple[int, int]
    ceil_mode: bool
    count_include_pad: bool
    channel: int
    output: np.ndarray
    steps: tuple[PoolStep, ...]


def _in_input(pos: Pos, padding: tuple[int, int], hw: tuple[int, ...]) -> bool:
    """Whether padded-input cell (channel, row, col) is a real input cell, not padding."""
    return padding[0] <= pos[1] < padding[0] + hw[0] and padding[1] <= pos[2] < padding[1] + hw[1]


def _settings(input, kernel_size, stride, padding, dilation, mode, ceil_mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    x = as_image(input)
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    p, d = pair(padding, "padding"), pair(dilation, "dilation")
    check = check_pool2d(x.shape, k, s, p, d, ceil_mode, mode)
    if not check.ok:
        raise ValueError(check.message())
    return x, k, s, p, d, check


def pool2d_trace(input: Any, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, mode: str = "max", dilation: IntOrPair = 1,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 channel: int = 0) -> PoolTrace:
    """Trace max/avg/sum pooling of one channel of an image (C, H, W) or (H, W).

    Arguments follow `F.max_pool2d` / `F.avg_pool2d` (stride defaults to the kernel
    size; dilation is for max pooling only). Raises ValueError with the explanation
    for settings that have no output.

    Shape: output (Ho, Wo), Ho = floor((H + 2p - d(k-1) - 1) / s) + 1 (ceil with ceil_mode).

    >>> pool2d_trace([[1, 2], [3, 4]], 2, mode="avg").steps[0].arithmetic()
    '(1 + 2 + 3 + 4) / 4 = 2.5'
    """
    x, k, s, p, d, check = _settings(input, kernel_size, stride, padding, dilation, mode, ceil_mode)
    if not 0 <= channel < x.shape[0]:
        raise ValueError(f"channel {channel} is out of range for {x.shape[0]} channel(s)")
    ho, wo = check.out_shape  # type: ignore[misc]
    pad_value = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=pad_value)
    hp, wp = xp.shape[1:]
    h, w = x.shape[1:]
    xp_l = xp[channel].tolist()

    out = _engine.pool2d(x, mode, k, s, p, d, ceil_mode, count_include_pad)[channel]
    out_l = out.tolist()
    steps = []
    for i in range(ho):
        for j in range(wo):
            # With ceil_mode the last window may run past the padded input; those cells do not exist.
            pos = [(channel, i * s[0] + m * d[0], j * s[1] + n * d[1])
                   for m in range(k[0]) for n in range(k[1])
                   if i * s[0] + m * d[0] < hp and j * s[1] + n * d[1] < wp]
            vals = [xp_l[r][c] for _, r, c in pos]
            real = [(q, v) for q, v in zip(pos, vals) if _in_input(q, p, (h, w))]
            argmax, divisor = None, 1
            if mode == "max":
                argmax, best = real[0]
                for q, v in real[1:]:
                    if v > best:  # the first maximum wins, as in PyTorch
                        argmax, best = q, v
            elif mode == "avg":
                divisor = len(pos) if count_include_pad else len(real)
            steps.append(PoolStep(len(steps), (i, j), mode, tuple(pos), tuple(vals), argmax, divisor,
                                  out_l[i][j], tuple(_in_input(q, p, (h, w)) for q in pos)))
    return PoolTrace(input=x, padded=xp, stride=s, padding=p, dilation=d, check=check, mode=mode,
                     kernel_size=k, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                     channel=channel, output=out, steps=tuple(steps))


# ---------------------------------------------------------------- backward

@dataclass(frozen=True)
class RouteStep:
    """Where one output cell's upstream gradient goes. `targets` are (channel, row, col)
    of the UNPADDED input and `shares` what each receives; shares that would land on
    padding are dropped (padding is not an input)."""

    index: int
    out_pos: tuple[int, int]
    mode: str
    grad: float
    positions: tuple[Pos, ...]
    argmax: Pos | None
    divisor: int
    targets: tuple[Pos, ...]
    shares: tuple[float, ...]

    def arithmetic(self, max_terms: int | None = None) -> str:
        """E.g. 'dL/dy[0,1] = 2 goes to the max, x[0,1,3]: dL/dx[0,1,3] += 2'."""
        g = f"dL/dy{cell(self.out_pos)} = {num(self.grad)}"
        if self.mode == "max":
            (t,) = self.targets
            return f"{g} goes to the max, x{cell(t)}: dL/dx{cell(t)} += {num(self.grad)}"
        dropped = len(self.positions) - len(self.targets)
        tail = f" ({dropped} share(s) fall on padding and are dropped)" if dropped else ""
        if self.mode == "avg":
            return (f"{g} is spread over the {self.divisor} cells averaged: "
                    f"each += {num(self.grad)} / {self.divisor} = {num(self.grad / self.divisor)}{tail}")
        return f"{g} is copied to each of the {len(self.positions)} cells summed: each += {num(self.grad)}{tail}"


@dataclass(frozen=True)
class PoolBackwardTrace(Displayed):
    """The backward pass of pooling one channel: one routing step per output cell.
    `grad_input` (H, W) is the engine's dL/dX for the traced channel."""

    forward: PoolTrace
    grad_output: np.ndarray
    grad_input: np.ndarray
    steps: tuple[RouteStep, ...]

    def accumulated(self, done: int) -> np.ndarray:
        """dL/dX (H, W) after the first `done` steps. A cell shows once a window holding it
        has been routed (0 if its share was nothing, e.g. not the max); cells no window
        has reached yet are NaN, and after the last step every cell shows."""
        f = self.forward
        acc = np.full(f.input.shape[1:], np.nan)
        if done >= len(self.steps):
            acc[:] = 0.0
        p = f.padding
        h, w = acc.shape
        for step in self.steps[:done]:
            for _, r, c in step.positions:
                r, c = r - p[0], c - p[1]
                if 0 <= r < h and 0 <= c < w and np.isnan(acc[r, c]):
                    acc[r, c] = 0.0
            for (_, r, c), share in zip(step.targets, step.shares):
                acc[r, c] += share
        return acc


def pool2d_backward_trace(input: Any, grad_output: Any, kernel_size: IntOrPair,
                          stride: IntOrPair | None = None, padding: IntOrPair = 0, mode: str = "max",
                          dilation: IntOrPair = 1, ceil_mode: bool = False,
                          count_include_pad: bool = True, channel: int = 0) -> PoolBackwardTrace:
    """Trace how pooling sends dL/dY back to the input of one channel.

    `grad_output` is (Ho, Wo) for the traced channel or (C, Ho, Wo); None means ones.

    >>> t = pool2d_backward_trace([[1, 5], [3, 2]], [[2.0]], 2)
    >>> t.steps[0].arithmetic(), t.grad_input.tolist()
    ('dL/dy[0,0] = 2 goes to the max, x[0,0,1]: dL/dx[0,0,1] += 2', [[0.0, 2.0], [0.0, 0.0]])
    """
    fwd = pool2d_trace(input, kernel_size, stride, padding, mode, dilation, ceil_mode, count_include_pad, channel)
    x = fwd.input
    ho, wo = fwd.output.shape
    g = np.ones((ho, wo), x.dtype) if grad_output is None else as_array(grad_output, x.dtype)
    if g.ndim == 3:
        g = g[channel]
    if g.shape != (ho, wo):
        raise ValueError(f"grad_output must be shaped {(ho, wo)} (the output's shape), got {g.shape}")
    g_all = np.zeros((x.shape[0], ho, wo), x.dtype)
    g_all[channel] = g
    p = fwd.padding
    h, w = x.shape[1:]

    steps = []
    for st, gv in zip(fwd.steps, g.reshape(-1).tolist()):
        if mode == "max":
            targets = [st.argmax]
        else:
            targets = [q for q in st.positions if _in_input(q, p, (h, w))]
        share = gv / st.divisor if mode == "avg" else gv
        steps.append(RouteStep(st.index, st.out_pos, mode, gv, st.positions, st.argmax, st.divisor,
                               tuple((c, r - p[0], q - p[1]) for c, r, q in targets),  # type: ignore[misc]
                               (share,) * len(targets)))

    gx = _engine.pool2d_grad(x, g_all, mode, fwd.kernel_size, fwd.stride, p, fwd.dilation, ceil_mode,
                             count_include_pad)[channel]
    return PoolBackwardTrace(fwd, g, gx, tuple(steps))
