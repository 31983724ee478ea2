"""FeatureMaps: what every layer makes of the probe image — one mosaic per layer, flat
vectors as one tile read row by row, the model's output as one row of classes.

Maps that can be negative (a convolution's or a linear layer's output before any
activation) use the shared diverging colour map, one symmetric scale per layer, with the
colour bar below; non-negative maps are grey, each channel stretched to its own range
(as ConvNetJS shows them). The caption names the layers whose values have not been
through an activation yet, "before activation" (seed 004's ConvNet has none at all). Cells past a
vector's end are drawn in PAD_COLOUR and every picture is framed, so neither padding nor
a largest value can pass for the minimum or the white background.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from .colormap import ColourBar
from .image_grid import ImageGrid
from .mosaic import DIVERGING, framed, mosaic, vector_tiles

ACTIVATIONS = {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "GELU", "SiLU", "ReLU6", "Hardtanh", "Softmax",
               "LogSoftmax", "Softplus", "Mish", "PReLU"}
AFFINE = {"Conv2d", "Linear", "BatchNorm2d", "BatchNorm1d", "Normalize", "LazyConv2d", "LazyLinear"}


def before_activation(names: Sequence[str], kinds: dict[str, str]) -> set[str]:
    """The layers (in call order) whose output has not been through an activation since
    the last affine layer (conv, linear, batch norm): its values may have either sign."""
    out, fresh = set(), False
    for name in names:
        kind = kinds.get(name, "")
        if kind in ACTIVATIONS:
            fresh = False
        elif kind in AFFINE:
            fresh = True
        if fresh:
            out.add(name)
    return out


class FeatureMaps(QWidget):
    """`set_activations(input_image, activations, kinds, step, order, classes)`; `grid.frames`
    holds the pictures. sigLayerClicked(layer name) when a layer's mosaic is clicked."""

    sigLayerClicked = Signal(str)

    def __init__(self, columns: int = 5, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = ImageGrid(columns)
        self.caption = QLabel("Feature maps of the probe image: press Start, or Step.")
        self.caption.setStyleSheet("color: #555")
        self.caption.setWordWrap(True)  # the "before activation" note must never be cut off
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.colour_bar = ColourBar("signed maps: one scale per layer")
        self.colour_bar.setVisible(False)
        self.updates = 0
        self.step: int | None = None
        self.signed: set[str] = set()  # the layers drawn with the diverging map
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.colour_bar)
        self.grid.sigPanelClicked.connect(lambda key, r, c: self.sigLayerClicked.emit(key))

    def set_activations(self, image: np.ndarray, activations: dict[str, np.ndarray],
                        kinds: dict[str, str] | None = None, step: int | None = None,
                        order: Sequence[str] | None = None, classes: Sequence[str] | None = None) -> None:
        """image (C, H, W); activations {layer: (1, C, H, W) or (1, F)} from `cnnlab.train.probe`."""
        kinds = kinds or {}
        image = np.asarray(image)
        panels = [("input", f"input {'×'.join(map(str, image.shape))}",
                   mosaic(image[None] if image.shape[0] == 3 else image, mode="all"))]
        names = [n for n in (order or [k for k in activations if k != "output"]) if n in activations]
        raw = before_activation(names, kinds)
        last = names[-1] if names else None
        self.signed = set()
        for name in names:
            a = np.asarray(activations[name])[0]
            shape = "×".join(map(str, a.shape))
            signed = bool(np.nanmin(a) < 0) if a.size else False
            if a.ndim == 3:
                tiles, title = a, f"{name} {shape}"
            elif name == last and classes is not None and len(classes) == a.size:
                tiles = vector_tiles(a, side=a.size)  # one row: the classes left to right
                title = f"{name}: classes {classes[0]}…{classes[-1]}"
            else:
                tiles, title = vector_tiles(a), f"{name} {a.size} units, row by row"
            if signed:
                self.signed.add(name)
                picture = mosaic(tiles, mode="symmetric", lut=DIVERGING)
            else:
                picture = mosaic(tiles, mode="tile" if a.ndim == 3 else "all")
            panels.append((name, title, framed(picture)))
        self.grid.set_panels(panels)
        self.colour_bar.setVisible(bool(self.signed))
        self.updates += 1
        self.step = step
        when = f" · step {step}" if step is not None else " · before training"
        if raw and not any(kinds.get(n) in ACTIVATIONS for n in names):
            note = " · no activation in this model: every map is before activation"
        else:
            note = f" · before activation: {', '.join(n for n in names if n in raw)}" if raw else ""
        self.caption.setText("Feature maps of the probe image" + when + note
                             + " · grey: each channel stretched to its own range; colour: signed, one scale per layer")
        self.caption.setToolTip(self.caption.text())

    def clear(self) -> None:
        self.grid.clear_panels()
        self.updates = 0
