"""ShapePicture: the shape after each layer drawn as a stack of sheets — one sheet per
channel (up to eight drawn), its side proportional to the image side — and flat vectors
as bars, so the shrinking images and growing channels of a CNN show at a glance."""
from __future__ import annotations

import math
from typing import Sequence

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

COLUMN, TOP, SIDE = 74, 14, 92  # COLUMN: the narrowest a layer's column gets
COLOURS = {"Conv2d": "#2e86c1", "MaxPool2d": "#28b463", "AvgPool2d": "#28b463", "Linear": "#af601a",
           "Flatten": "#7f8c8d", "input": "#34495e"}


class ShapePicture(QWidget):
    """`set_layers([(name, kind, shape, ok), ...])`; sigLayerClicked(index)."""

    sigLayerClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layers: list[tuple[str, str, tuple[int, ...], bool]] = []
        self.selected = -1
        self.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(TOP + SIDE + 30 + 56)

    def set_layers(self, layers: Sequence[tuple[str, str, tuple[int, ...], bool]]) -> None:
        self.layers = list(layers)
        self.setMinimumWidth(COLUMN * max(1, len(self.layers)) + 10)
        self.update()

    def select(self, index: int) -> None:
        self.selected = index
        self.update()

    def _column(self) -> float:
        return max(COLUMN, min(110, self.width() / max(1, len(self.layers))))

    def mousePressEvent(self, event) -> None:
        i = int(event.position().x() // self._column())
        if 0 <= i < len(self.layers):
            self.select(i)
            self.sigLayerClicked.emit(i)

    def paintEvent(self, event) -> None:
        if not self.layers:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("white"))
        sides = [s[1] for _, _, s, _ in self.layers if len(s) == 3]
        biggest = max(sides) if sides else 1
        features = [s[0] for _, _, s, _ in self.layers if len(s) == 1]
        most = max(features) if features else 1
        base = TOP + SIDE + 20
        col = self._column()
        small = QFont(self.font())
        small.setPointSizeF(max(6.5, small.pointSizeF() - 1.5))
        for i, (name, kind, shape, ok) in enumerate(self.layers):
            x0 = i * col + 8
            colour = QColor(COLOURS.get(kind, "#95a5a6") if ok else "#c0392b")
            if i == self.selected:
                p.fillRect(QRectF(i * col, 0, col, self.height()), QColor("#fef5e7"))
            if len(shape) == 3:
                c, h, w = shape
                side = 10 + (SIDE - 26) * math.sqrt(h / biggest)
                sheets = min(c, 8)
                for k in range(sheets):  # back to front
                    off = (sheets - 1 - k) * 3
                    r = QRectF(x0 + off, base - side - off, side * w / max(h, 1), side)
                    p.setPen(QPen(colour.darker(130), 1))
                    p.setBrush(colour.lighter(100 + 12 * (sheets - k)))
                    p.drawRect(r)
            elif len(shape) == 1:
                height = 6 + (SIDE - 6) * math.log1p(shape[0]) / math.log1p(most)
                p.setPen(QPen(colour.darker(130), 1))
                p.setBrush(colour.lighter(140))
                p.drawRect(QRectF(x0 + 10, base - height, 10, height))
            p.setPen(QColor("#1c2833") if ok else colour)
            p.setFont(small)
            text = "×".join(map(str, shape)) if shape else "?"
            p.drawText(QRectF(i * col, base + 4, col, 16), Qt.AlignmentFlag.AlignHCenter, text)
            p.drawText(QRectF(i * col, base + 20, col, 16), Qt.AlignmentFlag.AlignHCenter, name[:14])
            p.setPen(QColor("#7f8c8d"))
            p.drawText(QRectF(i * col, base + 36, col, 16), Qt.AlignmentFlag.AlignHCenter, kind[:14])
            if i + 1 < len(self.layers):
                p.setPen(QPen(QColor("#95a5a6"), 1))
                ax = (i + 1) * col - 4
                p.drawLine(int(ax - 8), int(base - 8), int(ax), int(base - 8))
        p.end()
