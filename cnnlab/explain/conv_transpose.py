"""Transposed convolution, step by step, in its two readings.

The scatter reading (how the operation is defined): every input cell, in turn, is
multiplied by the kernel and the products are added onto an output canvas at
(row*stride, col*stride), taps `dilation` apart; the canvas is then cropped by
`padding` on every side (`output_padding` extra cells kept at the bottom and right).
A trace has one step per input cell, with the products and the running sum of every
cell it touches.

The gather reading (conv_arithmetic's "equivalent convolution"): insert stride-1 zeros
between the input cells, pad by dilation*(k-1) - padding (plus output_padding at the
bottom and right; a negative amount crops), and slide the kernel rotated 180 degrees
over it as an ordinary stride-1 convolution with the same dilation. The trace holds that
input and kernel as data, and `equivalent_trace()` traces that convolution.

Both give the engine's `F.conv_transpose2d` output, which is the trace's `.output`.

>>> t = conv_transpose2d_trace([[1, 2]], [[1, 1, 1]], stride=2)
>>> t.output.tolist()
[[1.0, 1.0, 3.0, 2.0, 2.0]]
>>> t.steps[1].arithmetic()
'x[0,1] = 2 scatters 2×kernel onto y[0,2..4]: y[0,2] = 1 + 2×1 = 3, y[0,3] = 2×1 = 2, y[0,4] = 2×1 = 2'
>>> explain_conv_transpose_output_size(3, 3, s=2).derivation
'(3-1)*2 - 2*0 + 1*(3-1) + 0 + 1 = 7'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..creation import tensor
from ..nn import functional as F
from ..nn.geometry import conv_transpose_output_size
from ._common import Displayed, as_array, as_image, cell, join_terms, num, paren
from . import _engine
from .conv import ConvTrace, _bias_vector, conv2d_trace
from .scene import Panel, Scene
from .sizes import AXES, Check, IntOrPair, SizeCheck, _safe_pairs, pair

Cell = tuple[int, int]


# ------------------------------------------------------------------ output size

def explain_conv_transpose_output_size(n: int, k: int, s: int = 1, p: int = 0, output_padding: int = 0,
                                       d: int = 1, axis: str = "") -> SizeCheck:
    """(n-1)*s - 2p + d(k-1) + output_padding + 1 with the user's numbers; settings that
    have no output come back as `problems` (never raised).

    >>> explain_conv_transpose_output_size(3, 3, s=2, output_padding=2).problems[0][:58]
    'the output_padding (2) must be smaller than the stride (2)'
    """
    where = f"{axis} " if axis else ""
    problems = [text for bad, text in (
        (n < 1, f"the input {where}must be at least 1 (got {n})"),
        (k < 1, f"the kernel {where}must be at least 1 (got {k})"),
        (s < 1, f"the stride {where}must be at least 1 (got {s})"),
        (p < 0, f"the padding {where}cannot be negative (got {p})"),
        (d < 1, f"the dilation {where}must be at least 1 (got {d})"),
        (output_padding < 0, f"the output_padding {where}cannot be negative (got {output_padding})"),
    ) if bad]
    if problems:
        return SizeCheck(axis, None, "", tuple(problems))
    size = conv_transpose_output_size(n, k, s, p, d, output_padding)
    text = f"({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {output_padding} + 1 = {size}"
    if output_padding >= s and output_padding >= d:
        problems.append(f"the output_padding ({output_padding}) must be smaller than the stride ({s}) or the "
                        f"dilation ({d}): it picks one of the {s} input sizes a stride-{s} convolution maps "
                        f"to the same output, so it adds at most {max(s, d) - 1} cell(s)")
    if size < 1:
        problems.append(f"the padding crops 2*{p} = {2 * p} cells {where}but the scattered windows cover only "
                        f"{size + 2 * p - output_padding} (+{output_padding} output padding)")
    return SizeCheck(axis, None if problems else size, text, tuple(problems))


def check_conv_transpose2d(input_shape: Sequence[int], kernel_size: IntOrPair, stride: IntOrPair = 1,
                           padding: IntOrPair = 0, output_padding: IntOrPair = 0, dilation: IntOrPair = 1,
                           kernel_channels: int | None = None) -> Check:
    """Check a transposed-conv setting for one (C, H, W) or (H, W) input without raising.

    >>> check_conv_transpose2d((1, 3, 3), 3, stride=2, padding=1, output_padding=1).out_shape
    (6, 6)
    """
    c, h, w = (1, *input_shape) if len(input_shape) == 2 else tuple(input_shape)
    pairs, problems = _safe_pairs(kernel_size=kernel_size, stride=stride, padding=padding,
                                  output_padding=output_padding, dilation=dilation)
    if kernel_channels is not None and kernel_channels != c:
        problems.insert(0, f"the kernel has {kernel_channels} input slice(s) but the input has {c} channels: "
                           "each input channel scatters its own kernel slice")
    axes = [explain_conv_transpose_output_size((h, w)[i], pairs["kernel_size"][i], pairs["stride"][i],
                                               pairs["padding"][i], pairs["output_padding"][i],
                                               pairs["dilation"][i], AXES[i]) for i in (0, 1)]
    for a in axes:
        problems += [q for q in a.problems if q not in problems]
    shape = (axes[0].size, axes[1].size) if not problems else None
    return Check(shape, (axes[0].derivation, axes[1].derivation), tuple(problems))  # type: ignore[arg-type]


# ------------------------------------------------------------------ the trace

@dataclass(frozen=True)
class ScatterStep:
    """One input cell scattered: `value` times each kernel tap added onto the canvas.

    `targets` are canvas cells (row, col) in kernel-tap order (canvas = output shifted by
    the padding: output cell (r, c) is canvas cell (r + ph, c + pw)); `totals` each
    target's running sum after this step (without the bias). `products` are exact.
    """

    index: int
    in_pos: tuple[int, int, int]
    value: float
    taps: tuple[Cell, ...]
    weights: tuple[float, ...]
    products: tuple[float, ...]
    targets: tuple[Cell, ...]
    totals: tuple[float, ...]
    padding: tuple[int, int]

    def output_cell(self, target: Cell) -> Cell:
        """A canvas cell in output coordinates (negative or past the end: cropped)."""
        return target[0] - self.padding[0], target[1] - self.padding[1]

    def arithmetic(self, max_terms: int | None = None) -> str:
        """E.g. 'x[0,1] = 2 scatters 2×kernel onto y[0,2..4]: y[0,2] = 1 + 2×1 = 3, ...'."""
        rows = sorted({self.output_cell(t)[0] for t in self.targets})
        cols = sorted({self.output_cell(t)[1] for t in self.targets})
        span = lambda v: str(v[0]) if len(v) == 1 else f"{v[0]}..{v[-1]}"  # noqa: E731
        head = f"x{cell(self.in_pos[1:] if self.in_pos[0] == 0 else self.in_pos)} = {num(self.value)} " \
               f"scatters {paren(self.value)}×kernel onto y[{span(rows)},{span(cols)}]"
        terms = []
        for t, w, total, prod in zip(self.targets, self.weights, self.totals, self.products):
            before = total - prod
            sum_text = f"{num(before)} + " if before else ""
            terms.append(f"y{cell(self.output_cell(t))} = {sum_text}{paren(self.value)}×{paren(w)} = {num(total)}")
        return f"{head}: {join_terms(terms, max_terms, ', ')}"


@dataclass(frozen=True)
class ConvTransposeTrace(Displayed):
    """A transposed convolution of one image (C, H, W) into one output channel.

    `kernel` is weight[:, out_channel], (C, kh, kw). `canvas_shape` is the uncropped
    output; the output is canvas[ph:ph+Ho, pw:pw+Wo]. `output` is the engine's.
    The gather reading: `zero_inserted` (C, ., .) correlated (stride 1, `dilation`)
    with `flipped_kernel` gives `output - bias`; `equivalent_padding` is how much of it
    is padding on each side (top, bottom, left, right), negative where it crops.
    """

    input: np.ndarray
    kernel: np.ndarray
    bias: float
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    out_channel: int
    check: Check
    canvas_shape: tuple[int, int]
    output: np.ndarray
    steps: tuple[ScatterStep, ...]
    zero_inserted: np.ndarray
    flipped_kernel: np.ndarray
    equivalent_padding: tuple[int, int, int, int]

    def canvas_after(self, done: int) -> np.ndarray:
        """The canvas after `done` steps: running sums, NaN where nothing has landed yet."""
        canvas = np.full(self.canvas_shape, np.nan)
        for step in self.steps[:done]:
            for t, total in zip(step.targets, step.totals):
                canvas[t] = total
        return canvas

    def output_region(self) -> tuple[slice, slice]:
        """The canvas cells that are the output (the rest is cropped by the padding)."""
        (ph, pw), (ho, wo) = self.padding, self.output.shape
        return slice(ph, ph + ho), slice(pw, pw + wo)

    def equivalent_trace(self) -> ConvTrace:
        """The gather reading as an ordinary convolution trace (stride 1, no padding:
        the zeros are already in `zero_inserted`), one output cell per step."""
        return conv2d_trace(self.zero_inserted, self.flipped_kernel[None], None, 1, 0, self.dilation)


def _kernel_bank(weight: Any, dtype: Any) -> np.ndarray:
    """(C, O, kh, kw) from that, a (C, kh, kw) bank with one output channel, or a (kh, kw) kernel."""
    w = as_array(weight, dtype)
    if w.ndim == 2:
        w = w[None, None]
    elif w.ndim == 3:
        w = w[:, None]
    if w.ndim != 4:
        raise ValueError(f"expected a weight shaped (C, O, kh, kw), (C, kh, kw) or (kh, kw), got {w.shape}")
    return w


def _zero_inserted(x: np.ndarray, s: tuple[int, int], pads: tuple[int, int, int, int]) -> np.ndarray:
    """x with s-1 zeros between neighbours, padded (or, for negative amounts, cropped)."""
    c, h, w = x.shape
    spread = np.zeros((c, (h - 1) * s[0] + 1, (w - 1) * s[1] + 1), x.dtype)
    spread[:, ::s[0], ::s[1]] = x
    top, bottom, left, right = pads
    spread = np.pad(spread, ((0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))))
    return spread[:, max(-top, 0):spread.shape[1] - max(-bottom, 0), max(-left, 0):spread.shape[2] - max(-right, 0)]


def conv_transpose2d_trace(input: Any, weight: Any, bias: Any = None, stride: IntOrPair = 1,
                           padding: IntOrPair = 0, output_padding: IntOrPair = 0, dilation: IntOrPair = 1,
                           out_channel: int = 0) -> ConvTransposeTrace:
    """Trace the transposed convolution of one image into one output channel, one input cell per step.

    Args:
        input: (C, H, W) or (H, W).
        weight: (C, O, kh, kw) as `nn.ConvTranspose2d.weight`, (C, kh, kw) or (kh, kw).
        bias: None, a scalar or (O,).
        stride, padding, output_padding, dilation: int or pair, as `F.conv_transpose2d`.
        out_channel: which of the O output channels to trace.

    Raises ValueError with the explanation for settings that have no output.
    """
    x = as_image(input)
    w = _kernel_bank(weight, x.dtype)
    s, p = pair(stride, "stride"), pair(padding, "padding")
    op, d = pair(output_padding, "output_padding"), pair(dilation, "dilation")
    check = check_conv_transpose2d(x.shape, w.shape[2:], s, p, op, d, kernel_channels=w.shape[0])
    if not check.ok:
        raise ValueError(check.message())
    c, o, kh, kw = w.shape
    if not 0 <= out_channel < o:
        raise ValueError(f"out_channel {out_channel} is out of range for {o} output channel(s)")
    b = _bias_vector(bias, o, x.dtype)
    y = F.conv_transpose2d(tensor(x[None]), tensor(np.ascontiguousarray(w)), None if b is None else tensor(b),
                           s, p, op, 1, d)
    out = y.numpy()[0, out_channel]
    kernel = np.ascontiguousarray(w[:, out_channel])
    spans = [(n - 1) * st + dl * (k - 1) + 1 for n, st, dl, k in zip(x.shape[1:], s, d, (kh, kw))]
    canvas_shape = tuple(max(span, pd + n) for span, pd, n in zip(spans, p, out.shape))
    steps, sums = [], np.zeros(canvas_shape)
    taps = tuple((a, bb) for a in range(kh) for bb in range(kw))
    for ch in range(c):
        weights = kernel[ch].reshape(-1).tolist()
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                v = float(x[ch, i, j])
                targets = tuple((i * s[0] + a * d[0], j * s[1] + bb * d[1]) for a, bb in taps)
                products = tuple(v * wt for wt in weights)  # float32 x float32: exact in a double
                for t, prod in zip(targets, products):
                    sums[t] += prod
                steps.append(ScatterStep(len(steps), (ch, i, j), v, taps, tuple(weights), products, targets,
                                         tuple(float(sums[t]) for t in targets), p))
    extra = [dl * (k - 1) - pd for dl, k, pd in zip(d, (kh, kw), p)]
    pads = (extra[0], extra[0] + op[0], extra[1], extra[1] + op[1])
    return ConvTransposeTrace(
        input=x, kernel=kernel, bias=float(b[out_channel]) if b is not None else 0.0, stride=s, padding=p,
        output_padding=op, dilation=d, out_channel=out_channel, check=check, canvas_shape=canvas_shape,
        output=out, steps=tuple(steps), zero_inserted=_zero_inserted(x, s, pads),
        flipped_kernel=np.ascontiguousarray(kernel[:, ::-1, ::-1]), equivalent_padding=pads)


# ------------------------------------------------------------------ the picture

def conv_transpose_scene(trace: ConvTransposeTrace, done: int, max_terms: int | None = None) -> Scene:
    """The scatter after `done` steps as a Scene (for the GIF renderer and the lab): the
    input with the current cell, the kernel slice it multiplies (each tap noted ×value)
    and the canvas of running sums, the cells outside the output (cropped) shaded."""
    steps = trace.steps
    done = max(0, min(done, len(steps)))
    step = steps[done - 1] if done else None
    c_n = trace.input.shape[0]
    name = lambda what, ch: what if c_n == 1 else f"{what} ch {ch}"  # noqa: E731
    inputs = [Panel(f"input{ch}", name("input", ch), "input", trace.input[ch].astype(np.float64))
              for ch in range(c_n)]
    kernels = [Panel(f"kernel{ch}", name("kernel", ch), "kernel", trace.kernel[ch].astype(np.float64))
               for ch in range(c_n)]
    canvas = trace.canvas_after(done)
    rows, cols = trace.output_region()
    if done == len(steps):  # output cells no window reached (output padding past the canvas) hold 0
        region = canvas[rows, cols]
        region[np.isnan(region)] = 0.0
    cropped = trace.canvas_shape != trace.output.shape
    title = "output canvas" + (" (shaded: cropped)" if cropped else "") + \
        (f", bias {num(trace.bias)} added after" if trace.bias else "")
    out = Panel("output", title, "output", canvas)
    inside = {(r, q) for r in range(rows.start, rows.stop) for q in range(cols.start, cols.stop)}
    out.mark("gap", set(np.ndindex(*trace.canvas_shape)) - inside)
    if step is not None:
        ch = step.in_pos[0]
        inputs[ch].mark("current", [step.in_pos[1:]])
        kernels[ch].mark("tap", step.taps)
        kernels[ch].notes.update({t: num(step.value) for t in step.taps})
        out.mark("target", step.targets)
    status = f"step {done} of {len(steps)}" + (f": input{cell(step.in_pos[1:])}" if step is not None else "")
    caption = step.arithmetic(max_terms) if step is not None else ""
    plain = "Nothing scattered yet: step forward to begin." if step is None else (
        f"Input cell row {step.in_pos[1]}, column {step.in_pos[2]} holds {num(step.value)}: multiply the whole "
        f"kernel by it and add the result onto the output, its corner at row {step.targets[0][0]}, "
        f"column {step.targets[0][1]} of the canvas.")
    return Scene([*inputs, *kernels, out], caption, status, trace.check.summary(), done, len(steps), plain)


def transpose_hover(sc: Scene, trace: ConvTransposeTrace, key: str, row: int, col: int) -> None:
    """Mark (style 'hover') what a cell of either reading connects to: an input cell's
    stamp on the canvas and the canvas cells' inputs (scatter); an output cell's window
    on z and the outputs a z cell's windows reach (gather)."""
    panels = {p.key: p for p in sc.panels}
    panels[key].mark("hover", [(row, col)])
    kh, kw = trace.kernel.shape[1:]
    d = trace.dilation
    if key.startswith("input"):
        step = next(s for s in trace.steps if s.in_pos == (int(key[5:]), row, col))
        panels["output"].mark("hover", step.targets)
    elif key == "output":
        for s in trace.steps:
            if (row, col) in s.targets:
                panels[f"input{s.in_pos[0]}"].mark("hover", [s.in_pos[1:]])
    elif key == "gather":
        for p in sc.panels:
            if p.key.startswith("z"):
                p.mark("hover", [(row + a * d[0], col + b * d[1]) for a in range(kh) for b in range(kw)])
    elif key.startswith("z"):
        h, w = panels["gather"].values.shape
        panels["gather"].mark("hover", [(row - a * d[0], col - b * d[1]) for a in range(kh) for b in range(kw)
                                        if 0 <= row - a * d[0] < h and 0 <= col - b * d[1] < w])


def gather_recipe(t: ConvTransposeTrace) -> str:
    """How the gather reading's input is made, with the trace's numbers."""
    (sh, sw), (ph, pw), (dh, dw) = t.stride, t.padding, t.dilation
    kh, kw = t.kernel.shape[1:]
    top, bottom, left, right = t.equivalent_padding
    zeros = f"{sh - 1}" if sh == sw else f"{sh - 1}/{sw - 1}"
    pad = f"{dh}*({kh}-1)-{ph} = {top}" if (dh, kh, ph) == (dw, kw, pw) else \
        f"{dh}*({kh}-1)-{ph} = {top} / {dw}*({kw}-1)-{pw} = {left}"
    extra = f" (+{t.output_padding[0]}/{t.output_padding[1]} bottom/right)" if any(t.output_padding) else ""
    return (f"{zeros} zero(s) between input cells, pad d*(k-1)-p = {pad}{extra}, "
            f"correlate with the kernel rotated 180° (stride 1)")


def gather_scene(trace: ConvTransposeTrace, done: int, max_terms: int | None = 12) -> Scene:
    """The gather reading in step with the scatter: after `done` steps, z (the input with
    zeros inserted and padded) holds the input cells scattered so far, the rest blank
    (still 0 to the sum), and z correlated with the flipped kernel by the engine's
    `conv2d` gives the scatter's running sums, cell for cell. Inserted and padding
    zeros are shaded; an output cell's window is z[r + a*d, c + b*d]."""
    t, steps = trace, trace.steps
    done = max(0, min(done, len(steps)))
    step = steps[done - 1] if done else None
    placed = np.zeros_like(t.input)
    waiting = np.ones(t.input.shape)
    for st in steps[:done]:
        placed[st.in_pos] = st.value
        waiting[st.in_pos] = 0
    pads = t.equivalent_padding
    z = _zero_inserted(placed, t.stride, pads).astype(np.float64)
    z[_zero_inserted(waiting, t.stride, pads) != 0] = np.nan  # input cells still to come
    holds_input = _zero_inserted(np.ones(t.input.shape), t.stride, pads) != 0
    sums = _engine.conv2d(_zero_inserted(placed, t.stride, pads), t.flipped_kernel[None], None, (1, 1), (0, 0),
                          t.dilation)[0].astype(np.float64)
    rows, cols = t.output_region()
    reached = ~np.isnan(t.canvas_after(done)[rows, cols])
    shown = sums if done == len(steps) else np.where(reached, sums, np.nan)
    c_n = t.input.shape[0]
    name = lambda what, ch: what if c_n == 1 else f"{what} ch {ch}"  # noqa: E731
    zs = [Panel(f"z{ch}", name("z (zeros in, padded)", ch), "input", z[ch]) for ch in range(c_n)]
    flips = [Panel(f"flipped{ch}", name("kernel rot. 180°", ch), "kernel", t.flipped_kernel[ch].astype(np.float64))
             for ch in range(c_n)]
    out = Panel("gather", "z ⋆ rot. kernel" + (f", bias {num(t.bias)} added after" if t.bias else ""),
                "output", shown)
    for ch, panel in enumerate(zs):
        panel.mark("gap", [(int(r), int(c)) for r, c in np.argwhere(~holds_input[ch])])
    caption = ""
    if step is not None:
        ch, i, j = step.in_pos
        at = (i * t.stride[0] + pads[0], j * t.stride[1] + pads[2])
        zs[ch].mark("current", [at])
        inside = [step.output_cell(tg) for tg in step.targets]
        inside = [q for q in inside if 0 <= q[0] < shown.shape[0] and 0 <= q[1] < shown.shape[1]]
        out.mark("target", inside)
        if inside:
            caption = _window_sum(t, z, inside[0], float(sums[inside[0]]), max_terms)
    status = f"step {done} of {len(steps)}" + (f": input{cell(step.in_pos[1:])} placed in z" if step else "")
    return Scene([*zs, *flips, out], caption, status, gather_recipe(t), done, len(steps))


def _window_sum(t: ConvTransposeTrace, z: np.ndarray, at: Cell, value: float, max_terms: int | None) -> str:
    """'y[0,2] = z window · rotated kernel = 1×1 + 2×1 = 3 (zeros skipped)': the input
    cells placed so far that the window meets, each times the rotated kernel's tap."""
    kh, kw = t.flipped_kernel.shape[1:]
    terms = []
    for ch in range(z.shape[0]):
        for a in range(kh):
            for b in range(kw):
                v = z[ch, at[0] + a * t.dilation[0], at[1] + b * t.dilation[1]]
                if v == v and v != 0:  # NaN (not placed yet) and zeros add nothing
                    terms.append(f"{paren(v)}×{paren(t.flipped_kernel[ch, a, b])}")
    body = join_terms(terms, max_terms) if terms else "0"
    return f"y{cell(at)} = z window · rotated kernel = {body} = {num(value)} (zeros skipped)"
