"""Confusion: the validation confusion matrix (rows: true class, columns: predicted),
shaded by the share of each true class and labelled with the counts."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from .mosaic import BLUES


class Confusion(pg.PlotWidget):
    """`set_matrix(matrix, classes, title)`; `matrix` holds what is shown (None before)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.matrix: np.ndarray | None = None
        self.setMinimumWidth(210)
        self.plotItem.setTitle("confusion matrix<br>(after each epoch)", size="9pt")
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.setLabel("left", "true")
        self.setLabel("bottom", "predicted")
        self._texts: list[pg.TextItem] = []
        self.clear_matrix()

    def set_matrix(self, matrix: np.ndarray, classes: Sequence[str] | None = None, title: str = "") -> None:
        m = np.asarray(matrix, np.int64)
        n = m.shape[0]
        classes = list(classes) if classes is not None and len(classes) == n else [str(i) for i in range(n)]
        self.matrix = m
        share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        self.image.setImage(BLUES[(share * 255).round().astype(np.intp)], autoLevels=False, levels=(0, 255))
        self.image.setRect(-0.5, -0.5, n, n)
        if len(self._texts) != n * n:
            for t in self._texts:
                self.removeItem(t)
            self._texts = [pg.TextItem(anchor=(0.5, 0.5)) for _ in range(n * n)]
            for i, t in enumerate(self._texts):
                t.setPos(i % n, i // n)
                self.addItem(t)
        small = n > 12  # counts would overlap: show them only on the diagonal
        for i, t in enumerate(self._texts):
            r, c = divmod(i, n)
            t.setText("" if small and r != c else str(m[r, c]))
            t.setColor((255, 255, 255) if share[r, c] > 0.55 else (40, 40, 40))
        ticks = [[(i, c[:6]) for i, c in enumerate(classes)]]
        self.getAxis("bottom").setTicks(ticks)
        self.getAxis("left").setTicks(ticks)
        self.setRange(xRange=(-0.5, n - 0.5), yRange=(-0.5, n - 0.5), padding=0.02)
        total = m.sum()
        acc = np.trace(m) / total if total else 0.0
        # two short lines: a long title would set the plot's minimum width
        self.plotItem.setTitle(f"confusion matrix<br>{title or f'accuracy {acc:.1%} of {total:,}'}", size="9pt")

    def clear_matrix(self) -> None:
        n = len(self._texts) and int(round(len(self._texts) ** 0.5)) or 10
        self.matrix = None
        self.image.clear()
        for t in self._texts:
            t.setText("")
        self.setRange(xRange=(-0.5, n - 0.5), yRange=(-0.5, n - 0.5), padding=0.02)
        self.plotItem.setTitle("confusion matrix<br>(after each epoch)", size="9pt")
