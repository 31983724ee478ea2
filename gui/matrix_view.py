"""MatrixView: the lab's convolution read as one matrix product, stepped by the lab's player.

Forward convolution (im2col): the kernel as a row times the unrolled input X (a row per
kernel tap, a column per output cell) gives the output as a row, reshaped to the grid;
each step outlines the column its output cell reads. Transposed convolution: the input
as a row times C (row k = input cell k's kernel stamp), i.e. output = Cᵀx, the running
sums growing one row per step as in the scatter. The matrices are built by the engine
(`explain.matrix_of`); this widget only draws `explain.matrix_scene`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from cnnlab import explain
from cnnlab.explain.narrate import cell  # "[r,c]", as every caption writes a position
from cnnlab.explain.cellfit import exact
from cnnlab.explain.im2col import MAX_ENTRIES

from .scene_view import SceneView, scrolling

FORMULAS = {
    "conv": "im2col: output (as a row) = w · X + b. Column n of X is the window output cell n reads, so each "
            "output cell is one column dotted with the kernel row; the engine's CPU backend computes strided "
            "convolutions exactly so (one matrix product).",
    "transpose": "The transposed convolution is the transposed matrix: if conv2d (same kernel, stride, padding, "
                 "dilation) maps the output grid to the input grid by y = C·z, this maps back by output = Cᵀ·x, "
                 "drawn as rows xᵀ·C. Row k of C is input cell k's kernel stamp (col2im adds the stamps).",
}


class MatrixView(QWidget):
    """`formula` (what the product is), `view` (a SceneView: row vector, matrix, product,
    output grid), `caption` (this step's dot product) and `hover_info`. Call
    `set_trace(trace)` then `show_step(done)`; `product` is the engine-built
    MatrixProduct (None when the trace has no matrix reading or is too big to draw)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.product: explain.MatrixProduct | None = None
        self.trace: Any = None
        self._done = 0
        self._hover: tuple[str, int, int] | None = None
        self.formula = QLabel()
        self.formula.setWordWrap(True)
        self.formula.setStyleSheet("color: #1f618d; font-weight: bold")
        self.view = SceneView()
        self.view.arrangements = (False,)  # the row, X and the product stacked, so columns line up
        self.scroll = scrolling(self.view)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("font-family: monospace; color: #000")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hover_info = QLabel()
        self.hover_info.setStyleSheet("color: #8e1b8e")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for part, stretch in ((self.formula, 0), (self.scroll, 1), (self.caption, 0), (self.hover_info, 0)):
            layout.addWidget(part, stretch)
        self.view.sigCellHovered.connect(self._hovered)
        self.view.sigHoverLeft.connect(self._unhovered)

    def set_trace(self, trace: Any) -> None:
        """Build the matrices for a trace (nothing to do when it is the one shown)."""
        if trace is self.trace:
            return
        self.trace, self.product, self._hover = trace, None, None
        kind = type(trace).__name__
        if trace is None:
            self._say("These settings have no output (the lab says why).")
        elif kind not in ("ConvTrace", "ConvTransposeTrace"):
            self._say("The matrix view shows the forward convolution (im2col) and the transposed convolution "
                      "(the transposed matrix). Choose one of them, forward, in the Operation settings.")
        else:
            product = explain.matrix_of(trace)
            if product.matrix.size > MAX_ENTRIES:
                k, n = product.matrix.shape
                self._say(f"The matrix would be {k}×{n} = {k * n} entries, too many to read. Choose a smaller "
                          "input (e.g. 5×5) to see it.")
            else:
                self.product = product
                self.formula.setText(FORMULAS[product.kind])

    def _say(self, text: str) -> None:
        self.formula.setText("")
        self.caption.setText("")
        self.view.set_message(text)

    def show_step(self, done: int) -> None:
        self._done = done
        if self.product is None:
            return
        sc = explain.matrix_scene(self.product, done)
        self.hover_info.setText("")
        if self._hover is not None:
            key, r, c = self._hover
            panel = next((p for p in sc.panels if p.key == key), None)
            if panel is not None and r < panel.values.shape[0] and c < panel.values.shape[1]:
                panel.mark("hover", [(r, c)])
                self.hover_info.setText(self._describe(key, r, c, float(panel.values[r, c])))
        self.view.set_scene(sc)
        self.caption.setText(sc.caption or "Press play or step forward to begin.")

    def _describe(self, key: str, r: int, c: int, v: float) -> str:
        """An entry in the product's terms, with its exact value."""
        mp = self.product
        value = "not computed yet" if np.isnan(v) else exact(v)
        out = lambda q: f"output y{cell(divmod(q, mp.out_shape[1]))}"  # noqa: E731
        if key == "matrix":
            row = mp.rows[r]
            if mp.kind == "conv":
                return f"X[{r},{c}] = {value}: what kernel tap w{cell(row)} meets for {out(c)}"
            return f"C[{r},{c}] = {value}: input x{cell(row)}'s stamp on {out(c)}"
        if key == "left":
            return (f"w{cell(mp.rows[c])}" if mp.kind == "conv" else f"x{cell(mp.rows[c])}") + f" = {value}"
        q = c if key == "product" else r * mp.out_shape[1] + c
        return f"{out(q)} = {value}"

    def _hovered(self, key: str, row: int, col: int) -> None:
        self._hover = (key, row, col)
        self.show_step(self._done)

    def _unhovered(self) -> None:
        self._hover = None
        self.show_step(self._done)
