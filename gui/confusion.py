"""Confusion: the validation confusion matrix (rows: true class, columns: predicted),
shaded by the share of each true class and labelled with the counts."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QWidget

from .mosaic import BLUES

DARK, LIGHT = QColor(40, 40, 40), QColor(255, 255, 255)


class _Cell:
    """One cell's label: what `_Counts` draws there."""

    def __init__(self) -> None:
        self.text = ""
        self.colour = DARK

    def toPlainText(self) -> str:  # noqa: N802 - the name TextItem had, which tests read
        return self.text


class _Counts(pg.GraphicsObject):
    """Every cell's count drawn by one item in one paint call. A TextItem per cell cost
    about a millisecond each to update, so 100 of them blocked the GUI thread for 50-130 ms
    at every epoch end; this draws all of them in a few."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[_Cell] = []
        self.n = 0

    def set_size(self, n: int) -> None:
        self.prepareGeometryChange()
        self.n = n
        self.cells = [_Cell() for _ in range(n * n)]

    def boundingRect(self) -> QRectF:
        return QRectF(-0.5, -0.5, self.n, self.n)

    def paint(self, p, *args) -> None:
        if not self.n:
            return
        t = p.transform()  # data coordinates -> pixels; text is drawn in pixels, unscaled
        w, h = abs(t.m11()), abs(t.m22())
        widest = max((c.text for c in self.cells), key=len, default="")
        font = QFont(p.font())
        font.setPixelSize(max(6, min(12, int(h * 0.5))))
        while font.pixelSize() > 6 and QFontMetricsF(font).horizontalAdvance(widest) > w - 2:
            font.setPixelSize(font.pixelSize() - 1)  # counts always fit their cell
        p.save()
        p.resetTransform()
        p.setFont(font)
        for i, cell in enumerate(self.cells):
            if cell.text:
                r, c = divmod(i, self.n)
                centre = t.map(QPointF(c, r))
                p.setPen(cell.colour)
                p.drawText(QRectF(centre.x() - w / 2, centre.y() - h / 2, w, h), Qt.AlignmentFlag.AlignCenter,
                           cell.text)
        p.restore()


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
        self.counts = _Counts()
        self.addItem(self.counts)
        self.setLabel("left", "true")
        self.setLabel("bottom", "predicted")
        self._classes: list[str] = []
        self.clear_matrix()

    @property
    def _texts(self) -> list[_Cell]:
        return self.counts.cells

    def set_matrix(self, matrix: np.ndarray, classes: Sequence[str] | None = None, title: str = "") -> None:
        m = np.asarray(matrix, np.int64)
        n = m.shape[0]
        classes = list(classes) if classes is not None and len(classes) == n else [str(i) for i in range(n)]
        self.matrix = m
        share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        self.image.setImage(BLUES[(share * 255).round().astype(np.intp)], autoLevels=False, levels=(0, 255))
        self.image.setRect(-0.5, -0.5, n, n)
        if self.counts.n != n:
            self.counts.set_size(n)
        small = n > 12  # counts would overlap: show them only on the diagonal
        for i, cell in enumerate(self.counts.cells):
            r, c = divmod(i, n)
            cell.text = "" if small and r != c else str(m[r, c])
            cell.colour = LIGHT if share[r, c] > 0.55 else DARK
        self.counts.update()
        if classes != self._classes:  # the axes are laid out again only when the classes change
            self._classes = classes
            ticks = [[(i, c[:6]) for i, c in enumerate(classes)]]
            self.getAxis("bottom").setTicks(ticks)
            self.getAxis("left").setTicks(ticks)
            self.setRange(xRange=(-0.5, n - 0.5), yRange=(-0.5, n - 0.5), padding=0.02)
        total = m.sum()
        acc = np.trace(m) / total if total else 0.0
        # two short lines: a long title would set the plot's minimum width
        self.plotItem.setTitle(f"confusion matrix<br>{title or f'accuracy {acc:.1%} of {total:,}'}", size="9pt")

    def clear_matrix(self) -> None:
        n = self.counts.n or 10
        self.matrix = None
        self.image.clear()
        for cell in self.counts.cells:
            cell.text = ""
        self.counts.update()
        self.setRange(xRange=(-0.5, n - 0.5), yRange=(-0.5, n - 0.5), padding=0.02)
        self.plotItem.setTitle("confusion matrix<br>(after each epoch)", size="9pt")
