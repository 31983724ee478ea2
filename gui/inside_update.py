"""UpdatePanel: how the optimizer moved the picked weight in a step of the live run.

The numbers come from a `StepRecord` (gui/inside_capture.py), taken on the training
thread around a real `optimizer.step()`: the weight, its gradient and the optimizer's
state before, worked out again by `update_arithmetic`, and set beside the value and
state the optimizer actually left.
"""
from __future__ import annotations

from html import escape
from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from .controls import button
from .inside_capture import StepRecord
from .inside_picker import WeightPage, full, table

STATE_NAMES = {"momentum_buffer": "momentum buffer", "exp_avg": "m (1st moment)", "exp_avg_sq": "v (2nd moment)",
               "max_exp_avg_sq": "v_max", "step": "step t"}
HYPER = ("lr", "momentum", "dampening", "nesterov", "betas", "eps", "weight_decay", "amsgrad", "maximize")


def _setting(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class UpdatePanel(WeightPage):
    """`show_record(record)`: the update of the picked weight in that step. sigShown(bool)
    when the page appears or goes (a running run is recorded only while it shows)."""

    sigShown = Signal(bool)

    def __init__(self, step: Callable[[], Any], parent: QWidget | None = None) -> None:
        self.step_button = button("Step once and show", "Train one batch and write out its update of this weight",
                                  step)
        super().__init__([self.step_button], "Start or load a run, then press Step: the update of the weight "
                         "picked above is written out with that step's real numbers.", parent)
        self.record: StepRecord | None = None
        self.shown = None      # the last UpdateStep shown
        self.actual: float | None = None
        self.picker.sigChanged.connect(lambda *_: self.render())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.sigShown.emit(True)

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.sigShown.emit(False)

    def show_record(self, record: StepRecord | None) -> None:
        self.record = record
        self.render()

    def render(self) -> None:
        r, name, idx = self.record, self.picker.name, self.picker.index
        self.shown, self.actual = None, None
        if r is None or name is None:
            self.say(self.hint)
            return
        if name not in r.weight:
            self.say(f"Step {r.step} recorded other weights: press 'Step once and show' (or let the run go on) "
                     f"to record {name}.")
            return
        where = f"{name}[{', '.join(map(str, idx))}]"
        try:
            u, actual, actual_state = r.explain(name, idx)
        except ValueError as e:
            w0, w1 = float(r.weight[name][idx]), float(r.after[name][idx])
            self.say(f"{e}. Step {r.step}: {where} went from {full(w0)} to {full(w1)} "
                     f"(dL/dw = {full(float(r.grad[name][idx]))}).")
            return
        self.shown, self.actual = u, actual
        settings = " · ".join(f"{k} {_setting(u.hyper[k])}" for k in HYPER
                              if k in u.hyper and u.hyper[k] is not False)
        state_rows = [(STATE_NAMES.get(k, k), full(u.state_before.get(k, 0.0)) if k in u.state_before else "—",
                       full(v), full(actual_state.get(k, float("nan")))) for k, v in u.state_after.items()]
        diff = abs(u.new_value - actual)
        agree = diff <= 1e-5 * max(abs(actual), 1e-3)
        html = [f"<p><b>Step {r.step}</b> · {escape(u.optimizer)} · <b>{escape(where)}</b><br>"
                f"<span style='color:#555'>{escape(settings)}</span></p>",
                f"<p>w before the step = <b>{full(u.weight)}</b><br>"
                f"g = dL/dw from step {r.step}'s backward = <b>{full(u.grad)}</b><br>"
                f"<span style='font-size:large'>new w = <b>{full(u.new_value)}</b></span> · the optimizer wrote "
                f"<b>{full(actual)}</b> {'✓' if agree else '✗'} (difference {diff:.1e}; it computes in float32) · "
                f"change {full(actual - u.weight)}</p>",
                "<p style='font-family:monospace'>" + "<br>".join(escape(line) for line in u.lines) + "</p>"]
        if state_rows:
            html.append(table(state_rows, ("optimizer state", "before", "after (worked out)", "after (optimizer)")))
        self.body.setHtml("".join(html))


