"""The diverging colour map for signed values, in Qt: colours as QColor and the colour bar
that says which side is negative. The map itself lives in `cnnlab.colormap` (the GIFs use
it without Qt); every widget that colours signed numbers takes it from here.

>>> qcolor(signed_rgb(-1.0, 1.0)).name()
'#2166ac'
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from cnnlab.colormap import (DIVERGING, NEGATIVE, NEGATIVE_NAME, POSITIVE, POSITIVE_NAME, ZERO, ink_on,
                             signed_image, signed_index, signed_rgb, symmetric_scale)

__all__ = ["DIVERGING", "ColourBar", "qcolor", "signed_image", "signed_index", "signed_rgb", "symmetric_scale",
           "ink_on", "NEGATIVE", "POSITIVE", "ZERO"]


def qcolor(rgb: tuple[int, int, int]) -> QColor:
    return QColor(*rgb)


class ColourBar(QWidget):
    """A horizontal bar from negative (left, blue) through 0 to positive (right, red), labelled
    in words so the sign never has to be guessed; `note` says what the scale is."""

    def __init__(self, note: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = note
        self.point_size = 9
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._fit_height()

    def labels(self) -> tuple[str, str, str]:
        return (f"− negative ({NEGATIVE_NAME})", "0", f"positive ({POSITIVE_NAME}) +")

    def set_point_size(self, size: int) -> None:
        self.point_size = size
        self._fit_height()
        self.update()

    def _font(self) -> QFont:
        f = QFont(self.font())
        f.setPointSize(self.point_size)
        return f

    def _fit_height(self) -> None:
        from PySide6.QtGui import QFontMetrics
        line = QFontMetrics(self._font()).height()
        self.setFixedHeight(int(line * 2 + 14))

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(360, self.height())

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setFont(self._font())
        fm = p.fontMetrics()
        line = fm.height()
        bar = QRectF(4, 2, max(60, self.width() - 8), line)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for at, c in ((0.0, NEGATIVE), (0.5, ZERO), (1.0, POSITIVE)):
            grad.setColorAt(at, qcolor(c))
        p.fillRect(bar, grad)
        p.setPen(QPen(QColor("#555"), 1))
        p.drawRect(bar)
        left, mid, right = self.labels()
        text_y = bar.bottom() + 2
        p.setPen(QColor("#1d2733"))
        row = QRectF(bar.left(), text_y, bar.width(), line)
        p.drawText(row, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop), left)
        p.drawText(row, int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop), mid)
        p.drawText(row, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop), right)
        if self.note:  # in the bar itself, centred on the near-white middle
            p.drawText(bar, int(Qt.AlignmentFlag.AlignCenter), fm.elidedText(self.note, Qt.TextElideMode.ElideRight,
                                                                              int(bar.width() * 0.5)))
        p.end()
