"""FeatureMaps: what every layer makes of the probe image — one mosaic per layer, each
channel stretched to its own range (as ConvNetJS shows them), flat vectors as a block."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from .image_grid import ImageGrid
from .mosaic import mosaic, vector_tiles


class FeatureMaps(QWidget):
    """`set_activations(input_image, activations, kinds)`; `grid.frames` holds the pictures.
    sigLayerClicked(layer name) when a layer's mosaic is clicked."""

    sigLayerClicked = Signal(str)

    def __init__(self, columns: int = 5, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = ImageGrid(columns)
        self.caption = QLabel("Feature maps of the probe image: press Start, or Step.")
        self.caption.setStyleSheet("color: #555")
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.updates = 0
        self.step: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.grid, 1)
        self.grid.sigPanelClicked.connect(lambda key, r, c: self.sigLayerClicked.emit(key))

    def set_activations(self, image: np.ndarray, activations: dict[str, np.ndarray],
                        kinds: dict[str, str] | None = None, step: int | None = None,
                        order: Sequence[str] | None = None) -> None:
        """image (C, H, W); activations {layer: (1, C, H, W) or (1, F)} from `cnnlab.train.probe`."""
        kinds = kinds or {}
        image = np.asarray(image)
        panels = [("input", f"input {'×'.join(map(str, image.shape))}",
                   mosaic(image[None] if image.shape[0] == 3 else image, mode="all"))]
        for name in order or [k for k in activations if k != "output"]:
            a = activations.get(name)
            if a is None:
                continue
            a = np.asarray(a)[0]
            shape = "×".join(map(str, a.shape))
            tiles = a if a.ndim == 3 else vector_tiles(a)
            title = f"{name} {shape}"  # one short line: more pictures fit (the Network tab names the types)
            panels.append((name, title, mosaic(tiles, mode="tile" if a.ndim == 3 else "all")))
        self.grid.set_panels(panels)
        self.updates += 1
        self.step = step
        self.caption.setText("Feature maps of the probe image (each channel stretched to its own range)"
                             + (f" · step {step}" if step is not None else " · before training"))

    def clear(self) -> None:
        self.grid.clear_panels()
        self.updates = 0
