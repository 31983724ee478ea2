"""Filters: the learned kernels of every conv layer, blue for negative and red for positive
weights (white is zero). A layer with one input channel shows one tile per filter, three
input channels a colour tile per filter; deeper layers a matrix of kernels with a row
per filter and a column per input channel."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .image_grid import ImageGrid
from .colormap import DIVERGING
from .mosaic import mosaic


def conv_weights(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{layer name: (O, I, kh, kw) weights} of the conv layers in `params` (by its order)."""
    return {k.rsplit(".", 1)[0]: v for k, v in params.items() if k.endswith("weight") and np.ndim(v) == 4}


def filter_picture(w: np.ndarray) -> np.ndarray:
    o, i, kh, kw = w.shape
    if i == 1:
        return mosaic(w[:, 0], mode="symmetric", lut=DIVERGING)
    if i == 3:
        return mosaic(w, mode="tile")
    gap = 0 if kh * kw == 1 else 1
    return mosaic(w.reshape(o * i, kh, kw), cols=i, gap=gap, mode="symmetric", lut=DIVERGING)


class Filters(QWidget):
    """`set_params(params)` with NumPy parameters by name; `grid.frames` holds the pictures.
    sigLayerClicked(layer, filter index, input channel or -1 for a whole filter) on a click."""

    sigLayerClicked = Signal(str, int, int)

    def __init__(self, columns: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = ImageGrid(columns)
        self.caption = QLabel("Kernels (blue < 0 < red); deeper layers: a row per filter, a column per "
                              "input channel. Click one to step it in the lab.")
        self.caption.setStyleSheet("color: #555")
        self.caption.setWordWrap(True)
        self.updates = 0
        self._shapes: dict[str, tuple[int, ...]] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.grid, 1)
        self.grid.sigPanelClicked.connect(self._clicked)

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        panels = []
        self._shapes.clear()
        for name, w in conv_weights(params).items():
            o, i, kh, kw = w.shape
            self._shapes[name] = w.shape
            panels.append((name, f"{name} {o}×{i}×{kh}×{kw}", filter_picture(w)))
        self.grid.set_panels(panels)
        self.updates += 1

    def _clicked(self, name: str, row: int, col: int) -> None:
        o, i, kh, kw = self._shapes[name]
        if i in (1, 3):  # a grid of whole filters
            cols = (self.grid.frames[name].shape[1] + 1) // (kw + 1)
            index, channel = (row // (kh + 1)) * cols + col // (kw + 1), -1
        else:
            gap = 0 if kh * kw == 1 else 1
            index, channel = row // (kh + gap), col // (kw + gap)
        if 0 <= index < o and -1 <= channel < i:
            self.sigLayerClicked.emit(name, index, channel)

    def clear(self) -> None:
        self.grid.clear_panels()
        self.updates = 0
