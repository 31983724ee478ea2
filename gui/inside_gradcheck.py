"""GradCheckPanel: autograd's dL/dw for the picked weight beside a central difference
(the loss recomputed with the weight nudged by +eps and -eps, on one batch), and their
relative error, from `explain.gradcheck`.
"""
from __future__ import annotations

from html import escape
from typing import Any, Callable

from PySide6.QtWidgets import QComboBox, QLabel, QWidget

from cnnlab.explain import GradCheck

from .controls import button
from .inside_picker import WeightPage, full, table


class GradCheckPanel(WeightPage):
    """A button that checks the picked weight's gradient (`check` does the work)."""

    EPS = ("1e-2", "1e-3", "1e-4", "1e-5")

    def __init__(self, check: Callable[[str, tuple[int, ...], float], Any], parent: QWidget | None = None) -> None:
        self.eps = QComboBox()
        self.eps.addItems(self.EPS)
        self.eps.setCurrentText("1e-3")
        self.eps.setToolTip("How far to nudge the weight each way")
        self.check_button = button("Check gradient", "Nudge the weight by ±eps, recompute the loss on the same batch",
                                   lambda: check(self.picker.name, self.picker.index, float(self.eps.currentText())))
        super().__init__([QLabel("eps"), self.eps, self.check_button],
                         "Pick a weight and press 'Check gradient': the loss is recomputed with the weight nudged by "
                         "+eps and -eps, and the slope between them set beside autograd's dL/dw.", parent)
        self.result: GradCheck | None = None

    def show_check(self, gc: GradCheck, batch: str) -> None:
        self.result = gc
        where = f"{gc.param_name}[{', '.join(map(str, gc.index))}]"
        if gc.relative_error < 1e-5:
            verdict = "autograd and the central difference <b>agree</b>"
        else:
            verdict = (f"they <b>differ</b> by {gc.relative_error:.1e}: where max pooling or a ReLU sits, the "
                       "nudge may switch which input wins (a kink, where the loss has no single slope). "
                       "Try a smaller eps.")
        rows = [("L(w + eps)", f"{gc.loss_plus:.10g}"), ("L(w)", f"{gc.loss:.10g}"),
                ("L(w - eps)", f"{gc.loss_minus:.10g}"),
                ("central difference (L+ − L−) / 2eps", f"{gc.numeric:.8g}"),
                ("autograd dL/dw", f"{gc.autograd:.8g}"),
                ("relative error |a − n| / max(|a|, |n|)", f"{gc.relative_error:.2e}")]
        self.body.setHtml(
            f"<p><b>{escape(where)}</b> = {full(gc.weight)} · eps = {gc.eps:g} · {escape(batch)}, "
            "eval mode, float64</p>" + table(rows, ("", "value"))
            + f"<p style='font-size:large'>{verdict}</p>"
            + "<p style='font-family:monospace'>" + "<br>".join(escape(line) for line in gc.lines()) + "</p>")
