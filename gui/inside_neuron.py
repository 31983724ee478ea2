"""NeuronPanel: one cell of a live layer worked out step by step, and the receptive field
of the cell clicked, for the Train tab's Inside view.

A click on a feature-map cell gives (layer, channel, row, col). The panel traces it on a
copy of the model with the probe image (`explain.neuron_trace`): one step per input
channel (its window times its kernel, the running sum), then + bias, then each batch
norm and activation up to the layer clicked, ending on the number the feature map
shows. `field_regions` turns `explain.receptive_field` into the outlines the feature
maps draw: on the input and on every layer in between.
"""
from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QTextBrowser, QVBoxLayout, QWidget

from cnnlab.explain import NeuronTrace, ReceptiveField, format_number as num, neuron_trace, receptive_field

from .controls import button
from .feature_maps import Region

NO_RUN = "Start or load a run (or press Step), then click a cell of a feature map on the left."
CHANNEL_WISE = {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "GELU", "SiLU", "ReLU6", "Hardtanh", "BatchNorm2d",
                "MaxPool2d", "AvgPool2d", "SumPool2d", "AdaptiveAvgPool2d", "Dropout", "Dropout2d", "Identity"}


def field_regions(rf: ReceptiveField, kinds: dict[str, str], channel: int) -> dict[str, Region]:
    """{layer or 'input': (rows, cols, channel)} to outline for a cell of channel `channel`:
    from the last layer that mixes channels (a conv) on, only that channel's maps feed the
    cell; before it, every channel's."""
    regions: dict[str, Region] = {"input": (rf.input_rows, rf.input_cols, None)}
    own = True
    for f in reversed(rf.layers):
        regions[f.name] = (f.rows, f.cols, channel if own else None)
        if kinds.get(f.name, f.kind) not in CHANNEL_WISE:
            own = False
    return regions


def _grid(values: np.ndarray, kernel: np.ndarray) -> str:
    """The window times the kernel, cell by cell, as an HTML table."""
    rows = []
    for vr, kr in zip(values, kernel):
        cells = "".join(f"<td>{escape(num(v))}&nbsp;×&nbsp;{escape(num(k))}<br><b>{escape(num(v * k))}</b></td>"
                        for v, k in zip(vr, kr))
        rows.append(f"<tr>{cells}</tr>")
    return "<table border='1' cellspacing='0' cellpadding='3'>" + "".join(rows) + "</table>"


class NeuronPanel(QWidget):
    """`show_cell(model, image, layer, channel, row, col, shown)`: trace it (shown = the
    number the feature map shows there). Prev/Next (or the slider) step through it."""

    # regions to outline, the cell (layer, channel, row, col), marks (the window being summed); {} clears
    sigRegions = Signal(object, object, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trace: NeuronTrace | None = None
        self.layer = ""                 # the layer clicked
        self.shown: float | None = None  # the feature map's number for the cell
        self.field: ReceptiveField | None = None
        self.cell: tuple[str, int, int, int] | None = None
        self.when = ""
        self.regions: dict[str, Region] = {}
        self.head = QLabel(NO_RUN)
        self.head.setWordWrap(True)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Which step of the sum to show")
        self.prev_button = button("◀ Prev", "The step before", lambda: self.slider.setValue(self.slider.value() - 1))
        self.next_button = button("Next ▶", "The next step", lambda: self.slider.setValue(self.slider.value() + 1))
        self.end_button = button("Result", "Jump to the last step", lambda: self.slider.setValue(self.slider.maximum()))
        self.body = QTextBrowser()
        self.body.setOpenLinks(False)
        self.slider.valueChanged.connect(self._render)
        row = QHBoxLayout()
        for w in (self.prev_button, self.slider, self.next_button, self.end_button):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.head)
        layout.addLayout(row)
        layout.addWidget(self.body, 1)
        self._enable(False)

    def _enable(self, on: bool) -> None:
        for w in (self.slider, self.prev_button, self.next_button, self.end_button):
            w.setEnabled(on)

    def clear(self, text: str = NO_RUN) -> None:
        self.trace, self.field, self.cell = None, None, None
        self.head.setText(text)
        self.body.clear()
        self._enable(False)
        self.sigRegions.emit({}, None, [])

    # ------------------------------------------------------------ computing
    def show_cell(self, model: Any, image: np.ndarray, kinds: dict[str, str], layer: str, channel: int, row: int,
                  col: int, shown: float | None, when: str = "") -> None:
        """Trace cell (row, col) of `channel` in `layer` (channel -1: unit `row` of a vector
        layer) on `model` (a copy: it runs here) with the probe `image`."""
        same = self.cell == (layer, channel, row, col) and self.trace is not None
        self.layer, self.shown, self.cell = layer, shown, (layer, channel, row, col)
        self.when = when
        kind = kinds.get(layer, "?")
        if channel < 0:
            self.trace, self.field = None, None
            self.head.setText(f"<b>{escape(layer)} unit {row}</b> ({kind}) = {escape(num(shown or 0))}: "
                              f"a unit of a flat layer depends on every cell of the layers before it, "
                              f"so its receptive field is the whole image.")
            self.body.clear()
            self._enable(False)
            self.sigRegions.emit({}, None, [])
            return
        try:
            self.field = receptive_field(model, layer, (row, col), image.shape)
            self.regions = field_regions(self.field, kinds, channel)
        except ValueError:
            self.field, self.regions = None, {}
        self.sigRegions.emit(self.regions, self.cell, [])
        try:
            self.trace = neuron_trace(model, image, layer, channel, row, col)
        except ValueError as e:
            self.trace = None
            pooled = {"MaxPool2d": "the largest value", "AvgPool2d": "the mean"}.get(kind)
            why = (f"{escape(layer)} is a {kind}: its cell is {pooled} of the window outlined in green on the map "
                   f"before it." if pooled else escape(str(e)) + ".")
            self.head.setText(f"<b>{escape(layer)} channel {channel} ({row}, {col})</b> = "
                              f"{escape(num(shown or 0))} · {self._field_text()}<br>{why} The step-by-step "
                              f"sum is for a conv layer's cell (and the batch norm and activation after it).")
            self.body.clear()
            self._enable(False)
            return
        steps = len(self.trace.channels) + 1 + len(self.stages())
        at = self.slider.value() if same else 0
        self.slider.blockSignals(True)
        self.slider.setRange(0, steps - 1)
        self.slider.setValue(min(at, steps - 1))
        self.slider.blockSignals(False)
        self._enable(True)
        self._render()

    def stages(self) -> tuple:
        """The batch norm / activation stages up to the layer clicked (none when it is the conv)."""
        t = self.trace
        return () if t is None or self.layer == t.layer else t.stages

    def result(self) -> float | None:
        """The trace's number for the cell clicked."""
        if self.trace is None:
            return None
        stages = self.stages()
        return stages[-1].value if stages else self.trace.pre_activation

    def _field_text(self) -> str:
        f = self.field
        if f is None:
            return "receptive field: not followed through this model"
        (r0, r1), (c0, c1) = f.input_rows, f.input_cols
        return (f"receptive field on the input: rows {r0}–{r1 - 1}, cols {c0}–{c1 - 1} "
                f"({r1 - r0}×{c1 - c0}; {f.size[0]}×{f.size[1]} before clipping to the image)")

    # ------------------------------------------------------------ drawing
    def _render(self) -> None:
        t = self.trace
        if t is None:
            return
        k = self.slider.value()
        n = len(t.channels)
        stages = self.stages()
        out_c, row, col = t.out_pos
        self.head.setText(
            f"<b>{escape(self.layer)}</b> channel {out_c}, cell ({row}, {col}) {escape(self.when)} · "
            f"step {k + 1} of {n + 1 + len(stages)} · <span style='color:#00a040'>{self._field_text()}</span>")
        rows, total = [], 0.0
        for i, (c, part) in enumerate(zip(t.channels, t.partials)):
            if i > k:
                break
            total += part
            rows.append((i == k, f"input channel {c}", f"Σ window × kernel = {num(part)}", num(total)))
        if k >= n:
            rows.append((k == n, f"+ bias {num(t.bias)}", "", num(t.pre_activation)))
        for j, s in enumerate(stages):
            if k >= n + 1 + j:
                rows.append((k == n + 1 + j, s.layer, s.formula, num(s.value)))
        html = []
        self.sigRegions.emit(self.regions, self.cell, self._window_mark(k))
        if k < n:
            c = t.channels[k]
            kh, kw = t.kernel.shape[1:]
            mark = self._window_mark(k)
            source = f"{mark[0][0]} channel {c}" if mark else f"the input of {t.layer}, channel {c}"
            html.append(f"<p>Input channel {c} of {t.kernel.shape[0]}: the {kh}×{kw} window it reads on "
                        f"<b>{escape(source)}</b> (magenta on the maps; 0 where it overhangs into the padding) "
                        f"times the kernel <b>{escape(t.layer)}.weight[{out_c}, {c - t.channels[0]}]</b>, "
                        f"products in bold:</p>")
            html.append(_grid(t.windows[k], t.kernel[k]))
            html.append(f"<p>sum = <b>{escape(num(t.partials[k]))}</b></p>")
        if k == self.slider.maximum():
            got = self.result()
            shown = self.shown
            agree = shown is not None and abs(got - shown) <= 1e-4 * max(1.0, abs(shown))
            mark = "✓ the same number" if agree else "✗ differs" if shown is not None else ""
            html.append(f"<p style='font-size:large'>= <b>{escape(num(got))}</b> · the feature map shows "
                        f"<b>{escape(num(shown)) if shown is not None else '?'}</b> at {escape(self.layer)} channel "
                        f"{out_c} ({row}, {col}) {mark}</p>")
        html.append("<table cellspacing='0' cellpadding='2'><tr><th align='left'>step</th><th align='left'>"
                    "</th><th align='left'>running value</th></tr>"
                    + "".join(self._row(*r) for r in reversed(rows)) + "</table>")
        self.body.setHtml("".join(html))

    def _window_mark(self, k: int) -> list[tuple[str, int, tuple[int, int], tuple[int, int]]]:
        """The window input channel k's sum reads, on the map the conv reads (its layer before)."""
        t, f = self.trace, self.field
        if f is None or k >= len(t.channels):
            return []
        names = [x.name for x in f.layers]
        at = names.index(t.layer)
        rows, cols = (f.layers[at - 1].rows, f.layers[at - 1].cols) if at else (f.input_rows, f.input_cols)
        return [(names[at - 1] if at else "input", t.channels[k], rows, cols)]

    @staticmethod
    def _row(current: bool, what: str, how: str, running: str) -> str:
        style = " style='color:#b000d0; font-weight:bold'" if current else ""
        return f"<tr{style}><td>{escape(what)}</td><td>{escape(how)}</td><td align='right'>{escape(running)}</td></tr>"
