"""Words for what a scene shows: the name of a cell as the arithmetic writes it (unpadded
input coordinates, no internal panel keys) and each step in one plain sentence, for the
hover line and the lab's presenter mode.

>>> from cnnlab.explain import conv2d_trace, scene
>>> s = scene(conv2d_trace([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]], padding=1), 1)
>>> cell_label(s.panel("input0"), 1, 2), cell_label(s.panel("input0"), 0, 0)
('input x[0,0,1]', 'padding (outside the input)')
"""
from __future__ import annotations

from typing import Any

from ._common import cell, num
from .conv import GradStep
from .pool import RouteStep


def _idx(key: str, prefix: str) -> tuple[int, ...]:
    rest = key[len(prefix):]
    return tuple(int(v) for v in rest.split("_")) if rest else ()


def cell_label(panel: Any, row: int, col: int, channel: int = 0) -> str:
    """What a person calls cell (row, col) of `panel`: 'input x[0,1,2]', 'weight w[0,1,1]',
    'output[1,0]', 'dL/dw[0,0,1,2]'... in the coordinates the arithmetic uses."""
    key = panel.key
    pr, pc = panel.pad
    h, w = panel.values.shape
    if key.startswith("input"):
        if row < pr or row >= h - pr or col < pc or col >= w - pc:
            return "padding (outside the input)"
        (c,) = _idx(key, "input") or (channel,)
        return f"input x{cell((c, row - pr, col - pc))}"
    if key.startswith("kernel"):
        return f"weight w{cell((*_idx(key, 'kernel'), row, col))}"
    if key == "output":
        return f"output{cell((row, col))}"
    if key.startswith("grad_out"):
        return f"upstream dL/dy{cell((*_idx(key, 'grad_out'), row, col))}"
    if key.startswith("grad_in"):
        return f"dL/dx{cell((*(_idx(key, 'grad_in') or (channel,)), row, col))}"
    if key.startswith("grad_w"):
        return f"dL/dw{cell((*_idx(key, 'grad_w'), row, col))}"
    if key == "grad_b":
        return f"dL/db{cell((col,))}"
    return f"{panel.title}{cell((row, col))}"


def plain_line(step: Any, wrt: str = "input") -> str:
    """One sentence a learner can follow for any trace step."""
    if isinstance(step, RouteStep):
        return _route_line(step)
    if isinstance(step, GradStep):
        return _grad_line(step, wrt)
    if hasattr(step, "weights"):  # a conv forward step
        bias = f", then add the bias {num(step.bias)}" if step.bias else ""
        return (f"Multiply each of the {len(step.inputs)} numbers under the kernel by the weight on top of it "
                f"and add the products{bias}: output{cell(step.out_pos)} = {num(step.value)}.")
    n, out = len(step.inputs), f"output{cell(step.out_pos)}"
    if step.mode == "max":
        return f"Keep the largest of the {n} numbers in the window: {out} = {num(step.value)}."
    if step.mode == "avg":
        skipped = n - step.divisor
        how = f" ({skipped} padding cell(s) are not counted)" if skipped else ""
        return f"Add the numbers in the window and divide by {step.divisor}{how}: {out} = {num(step.value)}."
    return f"Add up the {n} numbers in the window: {out} = {num(step.value)}."


def _route_line(step: RouteStep) -> str:
    g = f"the upstream gradient {num(step.grad)} of output{cell(step.out_pos)}"
    if step.mode == "max":
        return f"Only the largest input in the window reached the output, so all of {g} goes back to it."
    if step.mode == "avg":
        return f"Each of the {step.divisor} cells averaged gets an equal share of {g}: 1/{step.divisor} of it."
    return f"Every cell in the window was added in, so each gets a copy of {g}."


def _grad_line(step: GradStep, wrt: str) -> str:
    if wrt == "weight":
        return (f"{step.name} adds up, over every place the kernel visited, the upstream gradient there times "
                f"the input value this weight touched: {num(step.value)}.")
    if wrt == "bias":
        return (f"The bias was added to every output of its filter, so {step.name} is the sum of their upstream "
                f"gradients: {num(step.value)}.")
    if not step.products:
        return f"No window covered this input cell, so {step.name} = 0."
    return (f"{step.name} collects the upstream gradient of each output this input cell fed, times the weight "
            f"that linked them: {num(step.value)}.")
