"""FeatureMaps: what every layer makes of the probe image — one mosaic per layer, flat
vectors as one tile read row by row, the model's output as one row of classes.

Maps that can be negative (a convolution's or a linear layer's output before any
activation) use the shared diverging colour map, one symmetric scale per layer, with the
colour bar below; non-negative maps are grey, each channel stretched to its own range
(as ConvNetJS shows them). The caption names the layers whose values have not been
through an activation yet, "before activation" (seed 004's ConvNet has none at all), and so
does each such map's own title. Cells past a vector's end are drawn in PAD_COLOUR and every
picture is framed, so neither padding nor a largest value can pass for the minimum or the
white background. The last layer's cells are named by class on an axis below it; hovering
any cell names it (channel and position, or unit and class) with its value. Clicking a
cell sends sigCellClicked; `set_highlight` outlines regions (a receptive field) on the
maps, drawn over the pictures so they survive every refresh.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PySide6.QtCore import QRectF, QTimer, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QSizePolicy, QVBoxLayout, QWidget

from .colormap import ColourBar
from .image_grid import ImageGrid
from .mosaic import DIVERGING, framed, grid, mosaic, vector_tiles

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


def tile_at(row: int, col: int, tiles: int, h: int, w: int, frame: int = 0) -> tuple[int, int, int] | None:
    """(tile, r, c) under pixel (row, col) of `mosaic`'s picture of `tiles` h x w tiles (inside
    a `frame`-pixel frame); None on a gap, the frame or past the last tile."""
    cols = grid(tiles)[1]
    row, col = row - frame, col - frame
    if row < 0 or col < 0:
        return None
    (tr, r), (tc, c) = divmod(row, h + 1), divmod(col, w + 1)
    tile = tr * cols + tc
    return None if r >= h or c >= w or tc >= cols or tile >= tiles else (tile, r, c)


# (rows, cols) of a layer's map to outline, and its channel (None: on every channel's tile)
Range = tuple[int, int]
Region = tuple[Range, Range, int | None]
FIELD_PEN = QColor(0, 200, 83)     # the receptive field: green, apart from grey, blue-red and orange
CELL_PEN = QColor(213, 0, 249)     # the cell clicked: magenta


def tile_origin(tile: int, tiles: int, h: int, w: int, frame: int = 0) -> tuple[int, int]:
    """Pixel (row, col) of tile `tile`'s first cell in `mosaic`'s picture (the inverse of tile_at)."""
    tr, tc = divmod(tile, grid(tiles)[1])
    return frame + tr * (h + 1), frame + tc * (w + 1)


def _value(v: float) -> str:
    return f"{v:.4g}"


class FeatureMaps(QWidget):
    """`set_activations(input_image, activations, kinds, step, order, classes)`; `grid.frames`
    holds the pictures. sigLayerClicked(layer name) when a layer's mosaic is clicked. Hovering
    a cell names it and its value (`grid.hover_text`), also in the line under the maps."""

    sigLayerClicked = Signal(str)
    sigCellClicked = Signal(str, int, int, int)  # layer, channel, row, col (a vector's unit: channel -1, row = unit)
    HINT = "Hover a cell to read it: channel and position, or unit (and class) and value."

    def __init__(self, columns: int = 5, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = ImageGrid(columns)
        self.caption = QLabel("Feature maps of the probe image: press Start, or Step.")
        self.caption.setStyleSheet("color: #555")
        self.caption.setWordWrap(True)  # the "before activation" note must never be cut off
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout = QLabel(self.HINT)
        self.readout.setStyleSheet("color: #555")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.colour_bar = ColourBar("signed maps: one scale per layer")
        self.colour_bar.setVisible(False)
        self.updates = 0
        self.step: int | None = None
        self.signed: set[str] = set()  # the layers drawn with the diverging map
        self.raw: set[str] = set()     # the layers whose maps are before activation
        self.tiles: dict[str, tuple[int, int, int, int]] = {}  # layer: (tiles, h, w, frame) of its picture
        self.vectors: set[str] = set()  # layers drawn as one tile of units
        self.highlight: dict[str, Region] = {}
        self.cell: tuple[str, int, int, int] | None = None
        self.marks: list[tuple[str, int, Range, Range]] = []
        self._overlays: list[tuple[object, QGraphicsRectItem]] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.readout)
        layout.addWidget(self.colour_bar)
        self.grid.sigPanelClicked.connect(self._clicked)
        self.grid.sigHover.connect(lambda text: self.readout.setText(text or self.HINT))

    def set_activations(self, image: np.ndarray, activations: dict[str, np.ndarray],
                        kinds: dict[str, str] | None = None, step: int | None = None,
                        order: Sequence[str] | None = None, classes: Sequence[str] | None = None) -> None:
        """image (C, H, W); activations {layer: (1, C, H, W) or (1, F)} from `cnnlab.train.probe`."""
        kinds = kinds or {}
        image = np.asarray(image)
        panels = [("input", f"input {'×'.join(map(str, image.shape))}",
                   mosaic(image[None] if image.shape[0] == 3 else image, mode="all"))]
        self.grid.hover = {"input": self._input_hover(image)}
        c, h, w = image.shape
        self.tiles = {"input": (1, h, w, 0) if c == 3 else (c, h, w, 0)}
        self.vectors = set()
        names = [n for n in (order or [k for k in activations if k != "output"]) if n in activations]
        self.raw = before_activation(names, kinds)
        last = names[-1] if names else None
        ticks: dict[str, list[tuple[float, str]]] = {}
        self.signed = set()
        for name in names:
            a = np.asarray(activations[name])[0]
            shape = "×".join(map(str, a.shape))
            signed = bool(a.size and np.nanmin(a, initial=0.0) < 0)  # all-NaN (diverged) counts as unsigned
            named = classes if name == last and classes is not None and len(classes) == a.size else None
            if a.ndim == 3:
                tiles, title = a, f"{name} {shape}"
            elif named is not None:
                tiles = vector_tiles(a, side=a.size)  # one row: the classes left to right, named below
                title = f"{name}: classes {named[0]}…{named[-1]}"
                ticks[name] = [(i + 1.5, str(c)) for i, c in enumerate(named)]  # cell i lies at 1+i..2+i
            else:
                tiles, title = vector_tiles(a), f"{name} {a.size} units, row by row"
            if name in self.raw:  # a line of its own: a longer title would cost the grid its columns
                title += "<br>before activation"
            if signed:
                self.signed.add(name)
                picture = mosaic(tiles, mode="symmetric", lut=DIVERGING)
            else:
                picture = mosaic(tiles, mode="tile" if a.ndim == 3 else "all")
            panels.append((name, title, framed(picture)))
            self.tiles[name] = (tiles.shape[0], tiles.shape[1], tiles.shape[2], 1)
            if a.ndim != 3:
                self.vectors.add(name)
            self.grid.hover[name] = self._map_hover(name, a, tiles.shape, named)
        self.grid.set_panels(panels)
        for name in names:
            self.grid.set_ticks(name, ticks.get(name))
        self.colour_bar.setVisible(bool(self.signed))
        self._draw_highlight()
        self.updates += 1
        self.step = step
        when = f" · step {step}" if step is not None else " · before training"
        if self.raw and not any(kinds.get(n) in ACTIVATIONS for n in names):
            note = " · no activation in this model: every map is before activation"
        else:
            note = f" · before activation: {', '.join(n for n in names if n in self.raw)}" if self.raw else ""
        self.caption.setText("Feature maps of the probe image" + when + note
                             + " · grey: each channel stretched to its own range; colour: signed, one scale per layer")
        self.caption.setToolTip(self.caption.text())

    @staticmethod
    def _input_hover(image: np.ndarray):
        c, h, w = image.shape

        def describe(row: int, col: int) -> str:
            if c == 3:  # one colour tile, no frame
                return f"input ({row}, {col}) = " + ", ".join(_value(v) for v in image[:, row, col]) \
                    if row < h and col < w else ""
            at = tile_at(row, col, c, h, w)
            if at is None:
                return ""
            k, r, cc = at
            return f"input{f' channel {k}' if c > 1 else ''} ({r}, {cc}) = {_value(image[k, r, cc])}"
        return describe

    @staticmethod
    def _map_hover(name: str, a: np.ndarray, tiles_shape: tuple[int, ...], classes: Sequence[str] | None):
        n, h, w = tiles_shape

        def describe(row: int, col: int) -> str:
            at = tile_at(row, col, n, h, w, frame=1)
            if at is None:
                return ""
            k, r, c = at
            if a.ndim == 3:
                return f"{name} channel {k} ({r}, {c}) = {_value(a[k, r, c])}"
            unit = r * w + c
            if unit >= a.size:
                return f"{name}: padding, no unit (the layer has {a.size})"
            label = f" ({classes[unit]})" if classes is not None else ""
            return f"{name} unit {unit}{label} = {_value(a[unit])}"
        return describe

    def clear(self) -> None:
        self.grid.clear_panels()
        self.grid.hover = {}
        self.tiles, self.vectors, self._overlays = {}, set(), []
        self.highlight, self.cell, self.marks = {}, None, []
        self.updates = 0

    # ------------------------------------------------------------ clicks and the receptive field
    def _clicked(self, key: str, row: int, col: int) -> None:
        self.sigLayerClicked.emit(key)
        if key == "input" or key not in self.tiles:
            return
        n, h, w, frame = self.tiles[key]
        at = tile_at(row, col, n, h, w, frame)
        if at is None:
            return
        k, r, c = at
        if key in self.vectors:
            self.sigCellClicked.emit(key, -1, r * w + c, -1)
        else:
            self.sigCellClicked.emit(key, k, r, c)

    def click_cell(self, layer: str, channel: int, row: int, col: int) -> None:
        """Click cell (row, col) of `channel`'s tile of `layer`, as a pointer would."""
        n, h, w, frame = self.tiles[layer]
        r0, c0 = tile_origin(channel, n, h, w, frame)
        self._clicked(layer, r0 + row, c0 + col)

    def set_highlight(self, regions: dict[str, Region], cell: tuple[str, int, int, int] | None = None,
                      marks: Sequence[tuple[str, int, Range, Range]] = ()) -> None:
        """Outline `regions` ({layer or 'input': (rows, cols, channel)}) in green, and in
        magenta the cell (layer, channel, row, col) with its tile and the `marks`
        (layer, channel, rows, cols); empty ones clear the outlines."""
        self.highlight, self.cell, self.marks = dict(regions), cell, list(marks)
        self._draw_highlight()

    def _draw_highlight(self) -> None:
        for view, item in self._overlays:
            if self.grid.views.get(self._key_of(view)) is view:  # a rebuilt grid dropped the old views
                view.removeItem(item)
        self._overlays = []
        boxes = [(layer, rows, cols, ch, FIELD_PEN, 2) for layer, (rows, cols, ch) in self.highlight.items()]
        boxes += [(layer, rows, cols, ch, CELL_PEN, 3) for layer, ch, rows, cols in self.marks]
        if self.cell is not None:
            layer, ch, r, c = self.cell
            if layer in self.tiles:
                _, h, w, _ = self.tiles[layer]
                boxes.append((layer, (0, h), (0, w), ch, CELL_PEN, 1))  # which tile
            boxes.append((layer, (r, r + 1), (c, c + 1), ch, CELL_PEN, 3))
        for layer, rows, cols, ch, colour, width in boxes:
            view = self.grid.views.get(layer)
            if view is None or layer not in self.tiles or layer in self.vectors:
                continue
            n, h, w, frame = self.tiles[layer]
            for tile in range(n) if ch is None or n == 1 else [ch]:
                r0, c0 = tile_origin(tile, n, h, w, frame)
                item = QGraphicsRectItem(QRectF(c0 + cols[0], r0 + rows[0], cols[1] - cols[0], rows[1] - rows[0]))
                pen = QPen(colour, width)
                pen.setCosmetic(True)  # screen pixels whatever the zoom
                item.setPen(pen)
                view.addItem(item)
                self._overlays.append((view, item))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # the grid may lay its panels out again at the new width (new views): outline them afterwards
        if self.highlight or self.cell is not None:
            QTimer.singleShot(0, self._draw_highlight)

    def _key_of(self, view) -> str | None:
        return next((k for k, v in self.grid.views.items() if v is view), None)

