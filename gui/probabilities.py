"""Probabilities: a model's class probabilities for one image as horizontal bars, the
predicted class in orange and the true class (when known) named in the title; with
values=True each bar is labelled with its percentage."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

PREDICTED, OTHER = (230, 126, 34), (127, 140, 141)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64).ravel()
    e = np.exp(z - z.max())
    return e / e.sum()


class Probabilities(pg.PlotWidget):
    """`set_logits(logits, classes, true_label=None)`; `probabilities` holds the last ones."""

    MAX_LABELLED = 20  # more classes than this: bars only (the labels would overlap)

    def __init__(self, title: str = "probe: class probabilities", parent: QWidget | None = None,
                 values: bool = False) -> None:
        super().__init__(parent, background="w")
        self._title = title
        self.setMinimumWidth(150)
        self.probabilities = np.zeros(0)
        self.predicted: int | None = None
        self.title = title
        self._classes: list[str] = []
        self.plotItem.setTitle(title, size="9pt")
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.setXRange(0, 1, padding=0.02)
        self.getAxis("bottom").setTicks([[(0, "0"), (0.5, "50%"), (1, "100%")]])
        self.getAxis("left").setStyle(tickTextWidth=80, autoExpandTextSpace=True)
        self.bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.7)
        self.addItem(self.bars)
        self.invertY(True)
        self.values = values
        self.labels: list[pg.TextItem] = []  # each bar's percentage (values=True)

    def set_logits(self, logits: np.ndarray, classes: Sequence[str] | None = None,
                   true_label: int | None = None) -> None:
        p = softmax(logits)
        n = p.size
        classes = list(classes) if classes is not None and len(classes) == n else [str(i) for i in range(n)]
        self.probabilities, self.predicted = p, int(p.argmax())
        brushes = [pg.mkBrush(PREDICTED if i == self.predicted else OTHER) for i in range(n)]
        self.bars.setOpts(x0=np.zeros(n), y=np.arange(n), width=p, height=0.7, brushes=brushes, pens=[None] * n)
        if classes != self._classes:  # the axis is redrawn only when the classes change
            self._classes = classes
            self.getAxis("left").setTicks([[(i, c[:14]) for i, c in enumerate(classes)]])
            self.setYRange(-0.5, n - 0.5, padding=0.02)
        if self.values:
            self._label_bars(p)
        title = f"predicted {classes[self.predicted][:16]} ({p[self.predicted]:.0%})"
        if true_label is not None and 0 <= true_label < n:
            mark = "✓" if true_label == self.predicted else "✗"
            title = f"true {classes[true_label][:16]} {mark}<br>{title}"  # two lines: see Confusion
        if title != self.title:
            self.title = title
            self.plotItem.setTitle(title, size="9pt")

    def _label_bars(self, p: np.ndarray) -> None:
        n = p.size if p.size <= self.MAX_LABELLED else 0
        if len(self.labels) != n:
            for t in self.labels:
                self.removeItem(t)
            self.labels = [pg.TextItem(color=(40, 40, 40), anchor=(0, 0.5)) for _ in range(n)]
            for t in self.labels:
                self.addItem(t)
            self.setXRange(0, 1.25 if n else 1, padding=0.02)  # room for "100%" beside a full bar
        for i, t in enumerate(self.labels):
            t.setText(f"{p[i]:.1%}" if p[i] < 0.995 else f"{p[i]:.0%}")
            t.setPos(float(p[i]) + 0.01, i)

    def clear_bars(self) -> None:
        self.probabilities, self.predicted = np.zeros(0), None
        self.bars.setOpts(x0=[], y=[], width=[])
        for t in self.labels:
            t.setText("")
        self.title = self._title
        self.plotItem.setTitle(self._title, size="9pt")
