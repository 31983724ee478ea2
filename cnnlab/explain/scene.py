"""What a teaching view shows after some steps of a trace, independent of any toolkit.

A `Scene` is a few labelled grids (`Panel`s) with highlighted cells and the
arithmetic of the current step. The Qt lab and the GIF renderer both draw scenes, so
the app, the command line and the exported animation show the same picture.

>>> from cnnlab.explain import conv2d_trace
>>> s = scene(conv2d_trace([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]]), done=1)
>>> [p.key for p in s.panels], s.caption
(['input0', 'kernel0', 'output'], '0×0 + 1×1 + 3×2 + 4×3 = 19')
>>> sorted(s.panel('input0').marks['window'])
[(0, 0), (0, 1), (1, 0), (1, 1)]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ..colormap import signed_rgb
from ._common import cell, num
from .conv import ConvBackwardTrace, ConvTrace, GradStep
from .narrate import plain_line
from .pool import PoolBackwardTrace, PoolTrace, RouteStep

Cell = tuple[int, int]

# Mark styles in drawing order (later ones drawn on top), with their colours. None is blue
# or red: those say a value's sign (cnnlab.colormap), so marks are outlines in other hues.
PALETTE: dict[str, str] = {
    "gap": "#e9e4d4",       # inside the window's span but skipped (dilation, uncounted padding)
    "window": "#00897b",    # cells the current step reads
    "tap": "#00897b",       # kernel weights the current step uses
    "target": "#6a3d9a",    # cells receiving gradient in this step
    "argmax": "#111111",    # the winner of a max-pool window
    "current": "#ff9f1c",   # the cell this step computes
    "hover": "#c21fc2",     # what the pointer is over and what it connects to
}
COLOURS: dict[str, str] = {
    "padding": "#dcdcdc", "blank": "#ffffff", "grid": "#9aa5b1", "text": "#1d2733",
    "background": "#fafbfc",
}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    """'#2f7ed8' -> (47, 126, 216)."""
    h = hex_colour.lstrip("#")
    return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))


def blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    """The colour a fraction t of the way from a to b."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def cell_colour(v: float, scale: float, padding: bool) -> tuple[int, int, int]:
    """Fill for one cell: white when blank, grey for padding, else the diverging map
    (cnnlab.colormap: negative blue, positive red) over -scale..+scale."""
    if math.isnan(v):
        return rgb(COLOURS["blank"])
    if padding:
        return rgb(COLOURS["padding"])
    if math.isinf(v):
        return rgb(COLOURS["blank"])
    return signed_rgb(v, scale or 1.0)


def panel_scale(values: np.ndarray) -> float:
    """What a panel's colours span: its largest |finite value| (0 when none)."""
    finite = values[np.isfinite(values)]
    return float(np.abs(finite).max()) if finite.size else 0.0


def is_padding(p: "Panel", r: int, c: int) -> bool:
    h, w = p.values.shape
    pr, pc = p.pad
    return r < pr or r >= h - pr or c < pc or c >= w - pc


@dataclass
class Panel:
    """One grid to draw: values (NaN = blank, not computed yet), a padding border of
    `pad` (rows, cols), named sets of marked cells and per-cell notes (the number a
    window cell is multiplied by, drawn small as '×w')."""

    key: str
    title: str
    group: str
    values: np.ndarray
    pad: tuple[int, int] = (0, 0)
    marks: dict[str, set[Cell]] = field(default_factory=dict)
    notes: dict[Cell, float] = field(default_factory=dict)

    def mark(self, style: str, cells: Iterable[Cell]) -> None:
        self.marks.setdefault(style, set()).update(cells)


@dataclass
class Scene:
    """Panels grouped in columns (by `Panel.group`, in order of first appearance),
    the current step's arithmetic (`caption`), a status line, the size derivation and
    `plain`: the step in one plain-language sentence (presenter mode)."""

    panels: list[Panel]
    caption: str
    status: str
    note: str
    done: int
    total: int
    plain: str = ""

    def panel(self, key: str) -> Panel:
        return next(p for p in self.panels if p.key == key)

    def groups(self) -> list[list[Panel]]:
        order: dict[str, list[Panel]] = {}
        for p in self.panels:
            order.setdefault(p.group, []).append(p)
        return list(order.values())


def step_count(trace: Any, wrt: str = "input") -> int:
    """How many steps a trace has (for a conv backward trace, those of `wrt`)."""
    return len(_steps(trace, wrt))


def _steps(trace: Any, wrt: str) -> tuple:
    return trace.steps(wrt) if isinstance(trace, ConvBackwardTrace) else trace.steps


def _filled(values: np.ndarray, done: int, order: Iterable[tuple] | None = None) -> np.ndarray:
    """A float copy of values where only the first `done` cells (raster or `order`) show."""
    out = np.full(values.shape, np.nan)
    cells = list(order) if order is not None else list(np.ndindex(values.shape))
    for idx in cells[:done]:
        out[idx] = values[idx]
    return out


def _gaps(positions: Iterable[tuple]) -> set[Cell]:
    """Cells inside the bounding box of a window that the window skips (dilation gaps)."""
    cells = {(p[-2], p[-1]) for p in positions}
    if not cells:
        return set()
    r0, c0 = min(r for r, _ in cells), min(c for _, c in cells)
    r1, c1 = max(r for r, _ in cells), max(c for _, c in cells)
    return {(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)} - cells


def _ch(n: int, c: int, what: str) -> str:
    return what if n == 1 else f"{what} ch {c}"


def scene(trace: Any, done: int, wrt: str = "input", max_terms: int | None = None) -> Scene:
    """The picture after `done` steps (0 = nothing computed yet) of any trace.

    `wrt` picks which gradient a `ConvBackwardTrace` shows: 'input', 'weight' or 'bias'.
    """
    from .conv_transpose import ConvTransposeTrace, conv_transpose_scene  # it draws with our Panel and Scene

    if isinstance(trace, ConvTransposeTrace):
        return conv_transpose_scene(trace, done, max_terms)
    steps = _steps(trace, wrt)
    done = max(0, min(done, len(steps)))
    step = steps[done - 1] if done else None
    if isinstance(trace, ConvTrace):
        panels = _conv_panels(trace, done, step)
    elif isinstance(trace, PoolTrace):
        panels = _pool_panels(trace, done, step)
    elif isinstance(trace, ConvBackwardTrace):
        panels = _conv_back_panels(trace, done, step, wrt)
    elif isinstance(trace, PoolBackwardTrace):
        panels = _pool_back_panels(trace, done, step)
    else:
        raise TypeError(f"not a trace: {type(trace).__name__}")
    caption = step.arithmetic(max_terms) if step is not None else ""
    status = f"step {done} of {len(steps)}" + (f": {_what(step)}" if step is not None else "")
    check = trace.forward.check if isinstance(trace, PoolBackwardTrace) else trace.check
    plain = plain_line(step, wrt) if step is not None else "Nothing computed yet: step forward to begin."
    return Scene(panels, caption, status, check.summary(), done, len(steps), plain)


def _what(step: Any) -> str:
    if isinstance(step, RouteStep):
        return f"routing dL/dy{cell(step.out_pos)}"
    if isinstance(step, GradStep):
        return step.name
    return f"output{cell(step.out_pos)}"


# ------------------------------------------------------------------ forward

def _input_panels(padded: np.ndarray, pad: tuple[int, int], channels: Iterable[int], title: str) -> list[Panel]:
    n = padded.shape[0]
    return [Panel(f"input{c}", _ch(n, c, title), "input", padded[c], pad) for c in channels]


def _conv_panels(t: ConvTrace, done: int, step: Any) -> list[Panel]:
    c_n = t.padded.shape[0]
    pad_title = "input (padded)" if any(t.padding) else "input"
    inputs = _input_panels(t.padded, t.padding, range(c_n), pad_title)
    ktitle = "kernel rotated 180°" if t.flip else "kernel"
    kernels = [Panel(f"kernel{c}", _ch(c_n, c, ktitle), "kernel", t.kernel[c]) for c in range(c_n)]
    out = Panel("output", "output" + (f" (bias {num(t.bias)})" if t.bias else ""), "output",
                _filled(t.output, done))
    if step is not None:
        for c, panel in enumerate(inputs):
            pos = [p for p in step.positions if p[0] == c]
            panel.mark("window", [(r, q) for _, r, q in pos])
            panel.mark("gap", _gaps(pos))
            # each window cell carries the weight it is multiplied by
            panel.notes.update({(r, q): w for (ch, r, q), w in zip(step.positions, step.weights) if ch == c})
        for panel in kernels:
            panel.mark("tap", np.ndindex(*t.kernel.shape[1:]))
        out.mark("current", [step.out_pos])
    return [*inputs, *kernels, out]


def _pool_panels(t: PoolTrace, done: int, step: Any) -> list[Panel]:
    title = "input"
    if any(t.padding):
        title = {"max": "input (padded, -inf)", "sum": "input (padded)",
                 "avg": "input (padded; padding counted)" if t.count_include_pad
                 else "input (padded; padding not counted)"}[t.mode]
    if t.input.shape[0] > 1:
        title += f" ch {t.channel}"
    inp = Panel(f"input{t.channel}", title, "input", t.padded[t.channel], t.padding)
    out = Panel("output", f"{t.mode} pool output", "output", _filled(t.output, done))
    if step is not None:
        _mark_window(inp, step)
        out.mark("current", [step.out_pos])
    return [inp, out]


def _mark_window(panel: Panel, step: Any) -> None:
    """A pooling window on the input panel: its cells, dilation gaps and (max) the winner."""
    panel.mark("window", [(r, c) for _, r, c in step.positions])
    panel.mark("gap", _gaps(step.positions))
    if step.mode == "avg" and step.divisor < len(step.positions):  # count_include_pad=False
        panel.mark("gap", [(r, c) for _, r, c in step.positions if is_padding(panel, r, c)])
    if step.argmax is not None:
        panel.mark("argmax", [step.argmax[1:]])


# ------------------------------------------------------------------ backward

def _conv_back_panels(t: ConvBackwardTrace, done: int, step: Any, wrt: str) -> list[Panel]:
    k_n, c_n = t.weight.shape[:2]
    gouts = [Panel(f"grad_out{k}", _ch(k_n, k, "dL/dY (upstream)"), "grad_out", t.grad_output[k])
             for k in range(k_n)]
    if wrt == "input":
        kernels = [Panel(f"kernel{k}_{c}", _ch(c_n, c, "kernel" if k_n == 1 else f"w[{k}]"), "kernel",
                         t.weight[k, c]) for k in range(k_n) for c in range(c_n)]
        order = [s.target for s in t.input_steps]
        grads = [Panel(f"grad_in{c}", _ch(c_n, c, "dL/dX"), "result",
                       _filled(t.grad_input, done, order)[c]) for c in range(c_n)]
        if step is not None:
            _mark_grad_step(t, step, wrt, gouts, kernels, grads, "window")
        return [*gouts, *kernels, *grads]
    if wrt == "weight":
        pad_title = "input (padded)" if any(t.padding) else "input"
        inputs = _input_panels(t.padded, t.padding, range(c_n), pad_title)
        order = [s.target for s in t.weight_steps]
        filled = _filled(t.grad_weight, done, order)
        grads = [Panel(f"grad_w{k}_{c}", _ch(c_n, c, "dL/dW" if k_n == 1 else f"dL/dW[{k}]"), "result",
                       filled[k, c]) for k in range(k_n) for c in range(c_n)]
        if step is not None:
            _mark_grad_step(t, step, wrt, gouts, inputs, grads, "window")
        return [*inputs, *gouts, *grads]
    grads = [Panel("grad_b", "dL/db", "result", _filled(t.grad_bias[None, :], done))]
    if step is not None:
        _mark_grad_step(t, step, wrt, gouts, [], grads, "window")
    return [*gouts, *grads]


def _mark_grad_step(t: ConvBackwardTrace, step: Any, wrt: str, gouts: list[Panel], factors: list[Panel],
                    results: list[Panel], style: str) -> None:
    k_n, c_n = t.weight.shape[:2]
    note = style == "window"
    for k, panel in enumerate(gouts):
        hits = [(gp[1], gp[2]) for gp in step.grad_positions if gp[0] == k]
        panel.mark(style, hits)
        if note and wrt == "input":  # which weight each upstream gradient meets
            panel.notes.update({(gp[1], gp[2]): f for gp, f in zip(step.grad_positions, step.factors)
                                if gp[0] == k})
    if wrt == "input":
        ch = step.target[0]
        for k in range(k_n):
            factors[k * c_n + ch].mark("tap" if note else style,
                                       [(fp[2], fp[3]) for fp in step.factor_positions if fp[0] == k])
        results[ch].mark("current" if note else style, [step.target[1:]])
    elif wrt == "weight":
        k, ch = step.target[:2]
        factors[ch].mark(style, [(fp[1], fp[2]) for fp in step.factor_positions])
        if note:
            factors[ch].notes.update({(fp[1], fp[2]): g for fp, g in zip(step.factor_positions, step.grads)})
        results[k * c_n + ch].mark("current" if note else style, [step.target[2:]])
    else:
        results[0].mark("current" if note else style, [(0, step.target[0])])


def _pool_back_panels(t: PoolBackwardTrace, done: int, step: Any) -> list[Panel]:
    f = t.forward
    inp, _ = _pool_panels(f, 0, None)
    gout = Panel("grad_out", "dL/dY (upstream)", "grad_out", t.grad_output)
    gin = Panel("grad_in", f"dL/dX ({f.mode} pool)", "result", t.accumulated(done))
    if step is not None:
        _mark_window(inp, step)
        gout.mark("current", [step.out_pos])
        gin.mark("target", [tg[1:] for tg in step.targets])
    return [inp, gout, gin]


# ------------------------------------------------------------------ hover

def _grad_target(key: str, row: int, col: int) -> tuple[int, ...]:
    """The gradient entry a result panel's cell holds: grad_in{c}, grad_w{k}_{c} or grad_b."""
    if key.startswith("grad_in"):
        return (int(key[len("grad_in"):]), row, col)
    if key.startswith("grad_w"):
        k, c = key[len("grad_w"):].split("_")
        return (int(k), int(c), row, col)
    return (col,)


def hover(sc: Scene, trace: Any, key: str, row: int, col: int, wrt: str = "input") -> list[tuple[str, Cell]]:
    """Mark (style 'hover') what the cell under the pointer connects to and return those cells.

    Over an output cell: its receptive field; over an input cell: the outputs it
    feeds; over a gradient entry: the cells its sum reads.
    """
    before = {p.key: set(p.marks.get("hover", ())) for p in sc.panels}
    panels = {p.key: p for p in sc.panels}
    if key not in panels:
        return []
    panels[key].mark("hover", [(row, col)])
    from .conv_transpose import ConvTransposeTrace, transpose_hover

    if isinstance(trace, ConvTransposeTrace):
        transpose_hover(sc, trace, key, row, col)
    elif isinstance(trace, (ConvTrace, PoolTrace)):
        ins = [p for p in sc.panels if p.group == "input"]
        if key == "output":
            pos = trace.receptive_field(row, col)
            for p in ins:
                c = int(p.key[len("input"):])
                p.mark("hover", [(r, q) for ch, r, q in pos if ch == c])
        elif key.startswith("input"):
            panels["output"].mark("hover", trace.feeds(row, col))
    elif isinstance(trace, ConvBackwardTrace) and key.startswith(("grad_in", "grad_w", "grad_b")):
        target = _grad_target(key, row, col)
        step = next((s for s in trace.steps(wrt) if s.target == target), None)
        if step is not None:
            gouts = [p for p in sc.panels if p.group == "grad_out"]
            facs = [p for p in sc.panels if p.group in ("kernel", "input")]
            results = [p for p in sc.panels if p.group == "result"]
            _mark_grad_step(trace, step, wrt, gouts, facs, results, "hover")
    elif isinstance(trace, PoolBackwardTrace):
        if key == "grad_out":
            step = trace.steps[row * trace.grad_output.shape[1] + col]
            panels["grad_in"].mark("hover", [tg[1:] for tg in step.targets])
            panels[f"input{trace.forward.channel}"].mark("hover", [(r, c) for _, r, c in step.positions])
        elif key == "grad_in":
            panels["grad_out"].mark("hover", [s.out_pos for s in trace.steps
                                              if any(tg[1:] == (row, col) for tg in s.targets)])
    return [(p.key, c) for p in sc.panels for c in sorted(p.marks.get("hover", set()) - before[p.key])]
