"""ImageGrid: titled RGB pictures side by side in one pyqtgraph canvas — the base of the
feature-map and filter views. Panels are reused while their keys stay the same, so a
refresh is one `ImageItem.setImage` per panel.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QWidget

Ticks = list[tuple[float, str]]  # (x in picture pixels, label)


class LabelAxis(pg.AxisItem):
    """A bottom axis of named cells (a layer's classes) under a picture: each label is cut
    to the room its cell has at the current width, so neighbours never overlap; the full
    name is in the hover text."""

    def __init__(self, ticks: Ticks, font: QFont) -> None:
        super().__init__("bottom")
        self.full = list(ticks)
        self._font = font
        self.setStyle(tickFont=font, tickLength=0, tickTextOffset=1, autoExpandTextSpace=False)
        self.setPen(pg.mkPen(0, 0, 0, 0))  # names only: a line would run on past the picture
        self.setTickPen(pg.mkPen(0, 0, 0, 0))
        self.setTextPen(pg.mkPen("#333"))
        self.setHeight(QFontMetrics(font).height() + 5)
        self.shown: Ticks = []
        self._fit()

    def resizeEvent(self, event=None) -> None:
        super().resizeEvent(event)
        self._fit()

    def linkedViewChanged(self, view, newRange=None) -> None:
        super().linkedViewChanged(view, newRange)
        self._fit()

    def _fit(self) -> None:
        if not getattr(self, "full", None):  # AxisItem's own __init__ resizes it before ours has run
            return
        xs = [x for x, _ in self.full]
        lo, hi = self.range
        per_cell = self.width() * (max(xs) - min(xs) + 1) / max(hi - lo, 1e-9) / len(self.full)
        metrics = QFontMetrics(self._font)
        shown = []
        for x, name in self.full:
            while len(name) > 1 and metrics.horizontalAdvance(name) > per_cell - 2:
                name = name[:-1]
            shown.append((x, name))
        if shown != getattr(self, "shown", None):
            self.shown = shown
            self.setTicks([shown, []])


class ImageGrid(pg.GraphicsLayoutWidget):
    """`set_panels([(key, title, rgb), ...])`; emits sigPanelClicked(key, row, col) with the
    pixel clicked in that panel's picture."""

    sigPanelClicked = Signal(str, int, int)
    sigHover = Signal(str)  # the hover text of the pixel under the pointer ('' on leaving)
    CELL_MARGIN = 6  # what a titled cell needs beside its title (layout margins, found by looking)
    TITLE_LINE = 14  # pixels per line of an 8 pt title

    def __init__(self, columns: int = 4, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.max_columns = columns  # fewer when the titles would not fit side by side
        self.columns = columns
        self._panels: list[tuple[str, str, np.ndarray]] = []
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.ci.setSpacing(6)
        self._font = QFont(self.font())
        self._font.setPointSize(8)
        self._keys: list[str] = []
        self.items: dict[str, pg.ImageItem] = {}
        self.titles: dict[str, pg.LabelItem] = {}
        self.views: dict[str, pg.ViewBox] = {}
        self._texts: dict[str, str] = {}
        self.frames: dict[str, np.ndarray] = {}  # what each panel shows now
        self.axes: dict[str, LabelAxis] = {}
        self.cells: dict[str, pg.GraphicsLayout] = {}
        self.hover: dict[str, Callable[[int, int], str]] = {}  # key -> (row, col) -> what that pixel is

    def set_panels(self, panels: Sequence[tuple[str, str, np.ndarray]]) -> None:
        keys = [k for k, _, _ in panels]
        self._panels = list(panels)
        if keys != self._keys:
            self._build(keys)
            self._reflow()
            if keys != self._keys:  # _reflow rebuilt and filled everything
                return
        for key, title, rgb in panels:
            old = self.frames.get(key)
            self.items[key].setImage(rgb, autoLevels=False, levels=(0, 255))
            if old is None or old.shape != rgb.shape:  # fit the view only when the picture's size changes
                self.views[key].autoRange(padding=0.02)
            if self._texts.get(key) != title:  # re-laying out a label costs more than the picture
                self.titles[key].setMaximumHeight(self.TITLE_LINE * (1 + title.count("<br>")) + 6)
                self.titles[key].setText(title, size="8pt")
                self._texts[key] = title
            self.frames[key] = rgb

    def set_ticks(self, key: str, ticks: Ticks | None) -> None:
        """Name cells under panel `key`'s picture (None: no axis)."""
        axis = self.axes.get(key)
        if axis is not None and (not ticks or axis.full != list(ticks)):
            self.cells[key].removeItem(axis)
            del self.axes[key]
            axis = None
        if axis is None and ticks and key in self.views:
            axis = LabelAxis(ticks, self._font)
            axis.linkToView(self.views[key])
            self.cells[key].addItem(axis, row=2, col=0)
            self.axes[key] = axis

    def hover_text(self, key: str, row: int, col: int) -> str:
        """What panel `key`'s pixel (row, col) shows, as its hover text says."""
        describe = self.hover.get(key)
        h, w = self.frames[key].shape[:2] if key in self.frames else (0, 0)
        return describe(row, col) if describe is not None and 0 <= row < h and 0 <= col < w else ""

    def clear_panels(self) -> None:
        self._panels = []
        self._build([])

    def _build(self, keys: list[str]) -> None:
        self.clear()
        self.items.clear()
        self.titles.clear()
        self.views.clear()
        self._texts.clear()
        self.frames.clear()
        self.axes.clear()
        self.cells.clear()
        self._keys = keys
        for i, key in enumerate(keys):
            r, c = divmod(i, self.columns)
            cell = self.addLayout(row=r, col=c)
            cell.setContentsMargins(2, 2, 2, 2)  # the default 9-pixel margins would eat small windows
            cell.setSpacing(1)
            self.cells[key] = cell
            self.titles[key] = cell.addLabel("", row=0, col=0)
            self.titles[key].setMaximumHeight(self.TITLE_LINE + 6)  # the picture gets the rest of the cell
            view = cell.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
            view.setMouseEnabled(False, False)
            view.disableAutoRange()  # fitted by hand: on a new picture size and when resized
            view.sigResized.connect(self._fit)
            self.views[key] = view
            item = pg.ImageItem(axisOrder="row-major")
            item.mouseClickEvent = lambda ev, k=key: self._clicked(ev, k)
            item.hoverEvent = lambda ev, k=key: self._hovered(ev, k)
            view.addItem(item)
            self.items[key] = item

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not hasattr(self, "max_columns"):  # Qt resizes it while __init__ runs
            return
        self._reflow()

    def _reflow(self) -> None:
        """As many columns as fit (pyqtgraph clips a layout wider than its widget, titles included)."""
        if not self._panels:
            return
        width = self.viewport().width()
        columns = self.max_columns
        while columns > 1 and self._min_width(columns) > width:
            columns -= 1
        if columns != self.columns:
            self.columns = columns
            panels, self._keys = self._panels, []
            self.set_panels(panels)
            # the layout kept the size forced on it by the old, wider minimum: fit it to the view again
            self.ci.setGeometry(self.range)

    def _min_width(self, columns: int) -> float:
        """The layout's minimum width with `columns` columns: the widest title per column, plus spacing."""
        metrics = QFontMetrics(self._font)
        widths = [max(metrics.horizontalAdvance(line) for line in title.split("<br>")) for _, title, _ in self._panels]
        per_column = [max(widths[c::columns]) + 2 * self.CELL_MARGIN for c in range(min(columns, len(widths)))]
        return sum(per_column) + self.ci.layout.horizontalSpacing() * (len(per_column) - 1) + 2 * self.CELL_MARGIN

    @staticmethod
    def _fit(view: pg.ViewBox) -> None:
        view.autoRange(padding=0.02)

    def _hovered(self, ev, key: str) -> None:
        text = "" if ev.isExit() else self.hover_text(key, int(ev.pos().y()), int(ev.pos().x()))
        self.items[key].setToolTip(text)
        self.sigHover.emit(text)

    def _clicked(self, ev, key: str) -> None:
        p = ev.pos()
        self.sigPanelClicked.emit(key, int(p.y()), int(p.x()))
