"""ProbePicker: a row of validation images to click as the probe (the image whose feature
maps and probabilities the dashboard shows), or load your own picture."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QButtonGroup, QFileDialog, QHBoxLayout, QPushButton, QToolButton, QWidget


def pixmap(image: np.ndarray, side: int = 40) -> QPixmap:
    """A (C, H, W) float image in 0..1 (grey or RGB) as a pixmap `side` pixels high."""
    a = np.asarray(image, np.float32)
    a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    if a.shape[0] == 3:
        rgb = np.ascontiguousarray(a.transpose(1, 2, 0))
        q = QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format.Format_RGB888)
    else:
        grey = np.ascontiguousarray(a[0])
        q = QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0], QImage.Format.Format_Grayscale8)
    return QPixmap.fromImage(q.copy()).scaledToHeight(side)


class ProbePicker(QWidget):
    """sigChosen(index) when a sample is clicked; sigFileChosen(path) from 'Load image…'."""

    sigChosen = Signal(int)
    sigFileChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: list[QToolButton] = []
        self.row = QHBoxLayout()
        self.row.setSpacing(2)
        self.load_button = QPushButton("Load image…")
        self.load_button.setToolTip("Use your own picture as the probe (resized to the dataset's images)")
        self.load_button.clicked.connect(self._load)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.row)
        layout.addStretch(1)
        layout.addWidget(self.load_button)
        self.group.idClicked.connect(self.sigChosen.emit)

    def set_samples(self, images: Sequence[np.ndarray], labels: Sequence[int], classes: Sequence[str],
                    chosen: int = 0) -> None:
        for b in self.buttons:  # out of the row now: deleteLater alone waits for the event loop
            self.group.removeButton(b)
            self.row.removeWidget(b)
            b.hide()
            b.deleteLater()
        self.buttons = []
        for i, (image, label) in enumerate(zip(images, labels)):
            b = QToolButton()
            b.setCheckable(True)
            b.setIcon(QIcon(pixmap(image, 28)))
            b.setIconSize(QSize(28, 28))
            b.setToolTip(f"probe: validation image of class {classes[label] if label < len(classes) else label}")
            self.group.addButton(b, i)
            self.row.addWidget(b)
            self.buttons.append(b)
        if 0 <= chosen < len(self.buttons):
            self.buttons[chosen].setChecked(True)

    def choose(self, index: int) -> None:
        """Click sample `index` from code."""
        self.buttons[index].click()

    def _load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Probe image", "", "Images (*.png *.jpg *.jpeg *.bmp *.gif)")
        if path:
            checked = self.group.checkedButton()
            if checked is not None:
                self.group.setExclusive(False)
                checked.setChecked(False)
                self.group.setExclusive(True)
            self.sigFileChosen.emit(path)
