"""DrawingCanvas: draw a digit or a shape with the mouse (white on black, like MNIST);
`array(h, w)` gives it at the model's size, optionally framed the way MNIST digits are
(fitted into 20×20 and centred by their centre of mass in 28×28)."""
from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

SIDE = 224  # 8 screen pixels per MNIST pixel


def mnist_frame(a: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """A drawing (H, W) in 0..1 fitted into `box`×`box` and centred by mass in `size`×`size`."""
    ys, xs = np.nonzero(a > 0.05)
    out = np.zeros((size, size), np.float32)
    if ys.size == 0:
        return out
    crop = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    scale = box / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((w, h), Image.Resampling.LANCZOS),
                       np.float32) / 255
    small = small.clip(0, 1)
    total = small.sum()
    cy, cx = ((np.arange(h) @ small.sum(1)) / total, (np.arange(w) @ small.sum(0)) / total) if total else (h / 2, w / 2)
    top, left = int(round(size / 2 - cy)), int(round(size / 2 - cx))
    top, left = min(max(top, 0), size - h), min(max(left, 0), size - w)
    out[top:top + h, left:left + w] = small
    return out


class DrawingCanvas(QWidget):
    """sigChanged after every stroke segment; `is_empty()` until something is drawn."""

    sigChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(SIDE, SIDE)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw with the left mouse button; the right button erases")
        self.image = QImage(SIDE, SIDE, QImage.Format.Format_Grayscale8)
        self.pen_width = 18
        self._last: QPointF | None = None
        self._erase = False
        self.clear()

    def clear(self) -> None:
        self.image.fill(QColor("black"))
        self.update()
        self.sigChanged.emit()

    def is_empty(self) -> bool:
        return not self.grey().any()

    def grey(self) -> np.ndarray:
        """The canvas as (SIDE, SIDE) floats in 0..1."""
        ptr = self.image.constBits()
        a = np.frombuffer(ptr, np.uint8, self.image.sizeInBytes()).reshape(SIDE, self.image.bytesPerLine())
        return a[:, :SIDE].astype(np.float32) / 255

    def array(self, h: int = 28, w: int = 28, channels: int = 1, mnist: bool = True) -> np.ndarray:
        """The drawing as a (C, h, w) float32 image in 0..1, ready for the model."""
        g = self.grey()
        if mnist and h == w:
            small = mnist_frame(g, h, round(h * 20 / 28))
        else:
            small = np.asarray(Image.fromarray((g * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BOX),
                               np.float32) / 255
        return np.repeat(small[None], channels, axis=0).astype(np.float32)

    def set_array(self, image: np.ndarray) -> None:
        """Show an image (C, H, W) in 0..1, e.g. a dataset sample, as the starting picture (grey)."""
        a = np.asarray(image, np.float32).mean(axis=0)
        big = Image.fromarray((a.clip(0, 1) * 255).astype(np.uint8)).resize((SIDE, SIDE), Image.Resampling.NEAREST)
        pixels = np.ascontiguousarray(np.asarray(big, np.uint8))
        self.image = QImage(pixels.data, SIDE, SIDE, SIDE, QImage.Format.Format_Grayscale8).copy()
        self.update()

    def stroke(self, points: list[tuple[float, float]], erase: bool = False) -> None:
        """Draw a polyline in canvas pixels (what the mouse does; tests call it directly)."""
        p = QPainter(self.image)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor("black" if erase else "white"), self.pen_width, Qt.PenStyle.SolidLine,
                      Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        if len(points) == 1:
            p.drawPoint(QPointF(*points[0]))
        for a, b in zip(points, points[1:]):
            p.drawLine(QPointF(*a), QPointF(*b))
        p.end()
        self.update()
        self.sigChanged.emit()

    # ------------------------------------------------------------ Qt
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.drawImage(0, 0, self.image)
        p.setPen(QColor("#7f8c8d"))
        p.drawRect(0, 0, SIDE - 1, SIDE - 1)
        p.end()

    def mousePressEvent(self, event) -> None:
        self._erase = event.button() == Qt.MouseButton.RightButton
        self._last = event.position()
        self.stroke([(self._last.x(), self._last.y())], self._erase)

    def mouseMoveEvent(self, event) -> None:
        if self._last is None:
            return
        pos = event.position()
        self.stroke([(self._last.x(), self._last.y()), (pos.x(), pos.y())], self._erase)
        self._last = pos

    def mouseReleaseEvent(self, event) -> None:
        self._last = None
