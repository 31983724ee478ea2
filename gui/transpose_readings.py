"""GatherReading: the second reading of a transposed convolution, shown beside the lab's
scatter and stepped by the same player.

The scatter (the lab's main view) adds each input cell times the kernel onto the output.
This widget shows the same result read as an ordinary convolution: zeros inserted
between the input cells, padding of dilation*(k-1)-padding, and a stride-1 correlation
with the kernel rotated 180° (`explain.gather_scene`, the sums by the engine's conv2d;
the lab's derivation line says how z is made).
After every step its output equals the scatter's running sums, cell for cell, and a line
below says so (or shows where they differ). Hover an output cell for its whole window sum.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from cnnlab import explain
from cnnlab.explain.narrate import cell  # "[r,c]", as every caption writes a position
from cnnlab.explain.cellfit import exact

from .scene_view import SceneView, scrolling

SCATTER_TITLE = "(a) scatter: each input cell × the kernel, added onto the output"
GATHER_TITLE = "(b) gather: insert zeros, pad, correlate with the rotated kernel"


def reading_title(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("font-weight: bold; color: #1f618d")
    label.setWordWrap(True)
    return label


def canvas_label(trace: Any, row: int, col: int) -> str:
    """A scatter canvas cell in the output's coordinates (the canvas is shifted by the padding)."""
    r, c = row - trace.padding[0], col - trace.padding[1]
    ho, wo = trace.output.shape
    if 0 <= r < ho and 0 <= c < wo:
        return f"output y{cell((r, c))}"
    return f"canvas{cell((row, col))}, cropped by the padding"


class GatherReading(QWidget):
    """`view` (a SceneView of `explain.gather_scene`), `caption` (one output cell's window
    sum this step), `agreement` (the check against the scatter) and `hover_info`.
    Call `show_step(trace, done, scatter_output)`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trace: Any = None
        self._done = 0
        self._scatter: np.ndarray | None = None
        self._hover: tuple[str, int, int] | None = None
        self._equivalent: Any = None
        self.title = reading_title(GATHER_TITLE)
        self.view = SceneView()
        self.scroll = scrolling(self.view, 260)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("font-family: monospace; color: #000")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.agreement = QLabel()
        self.agreement.setWordWrap(True)
        self.hover_info = QLabel()
        self.hover_info.setWordWrap(True)
        self.hover_info.setStyleSheet("color: #8e1b8e")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.scroll, 1)
        for part in (self.caption, self.agreement, self.hover_info):
            layout.addWidget(part)
        self.view.sigCellHovered.connect(self._hovered)
        self.view.sigHoverLeft.connect(self._unhovered)

    def show_step(self, trace: Any, done: int, scatter_output: np.ndarray) -> None:
        """Draw the gather reading after `done` steps; `scatter_output` is the scatter
        scene's output region at the same step (NaN where nothing landed yet)."""
        if trace is not self.trace:
            self.trace, self._equivalent, self._hover = trace, None, None
        self._done, self._scatter = done, scatter_output
        sc = explain.gather_scene(trace, done)
        self.hover_info.setText("")
        if self._hover is not None:
            key, r, c = self._hover
            explain.hover(sc, trace, key, r, c)
            self.hover_info.setText(self._describe(sc, key, r, c))
        self.view.set_scene(sc)
        self.caption.setText(sc.caption or "Step forward: each input cell is placed into z as the scatter uses it.")
        self._compare(sc.panel("gather").values, scatter_output)

    def _compare(self, gather: np.ndarray, scatter: np.ndarray) -> None:
        both = ~np.isnan(gather) & ~np.isnan(scatter)
        same = bool(np.array_equal(np.isnan(gather), np.isnan(scatter))) and \
            bool(np.allclose(gather[both], scatter[both], rtol=1e-5, atol=1e-6))
        if same:
            self.agreement.setText(f"✓ the same numbers as the scatter in all {int(both.sum())} output cell(s) "
                                   "reached so far")
            self.agreement.setStyleSheet("color: #1e7b34; font-weight: bold")
        else:
            self.agreement.setText("✗ the two readings differ here (please report this)")
            self.agreement.setStyleSheet("color: #b00020; font-weight: bold")

    def _describe(self, sc: explain.Scene, key: str, r: int, c: int) -> str:
        panel = sc.panel(key)
        v = float(panel.values[r, c])
        shown = "not placed yet" if np.isnan(v) else exact(v)
        t = self.trace
        if key == "gather":
            if self._equivalent is None:  # the whole gather reading as an ordinary conv trace
                self._equivalent = t.equivalent_trace()
            step = self._equivalent.steps[r * t.output.shape[1] + c]
            return f"output y{cell((r, c))} when every cell is placed = {step.arithmetic(max_terms=12)}"
        if key.startswith("z"):
            what = "an inserted or padding zero" if (r, c) in panel.marks.get("gap", ()) else "an input cell"
            return f"z{cell((r, c))} = {shown} ({what})"
        kh, kw = t.kernel.shape[1:]
        return f"rotated kernel{cell((r, c))} = {shown} (w{cell((kh - 1 - r, kw - 1 - c))})"

    def _hovered(self, key: str, row: int, col: int) -> None:
        self._hover = (key, row, col)
        if self.trace is not None and self._scatter is not None:
            self.show_step(self.trace, self._done, self._scatter)

    def _unhovered(self) -> None:
        self._hover = None
        if self.trace is not None and self._scatter is not None:
            self.show_step(self.trace, self._done, self._scatter)
