"""ImageGrid: titled RGB pictures side by side in one pyqtgraph canvas — the base of the
feature-map and filter views. Panels are reused while their keys stay the same, so a
refresh is one `ImageItem.setImage` per panel.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QWidget


class ImageGrid(pg.GraphicsLayoutWidget):
    """`set_panels([(key, title, rgb), ...])`; emits sigPanelClicked(key, row, col) with the
    pixel clicked in that panel's picture."""

    sigPanelClicked = Signal(str, int, int)
    CELL_MARGIN = 6  # what a titled cell needs beside its title (layout margins, found by looking)

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
                self.titles[key].setText(title, size="8pt")
                self._texts[key] = title
            self.frames[key] = rgb

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
        self._keys = keys
        for i, key in enumerate(keys):
            r, c = divmod(i, self.columns)
            cell = self.addLayout(row=r, col=c)
            cell.setContentsMargins(2, 2, 2, 2)  # the default 9-pixel margins would eat small windows
            cell.setSpacing(1)
            self.titles[key] = cell.addLabel("", row=0, col=0)
            self.titles[key].setMaximumHeight(20)  # the picture gets the rest of the cell
            view = cell.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
            view.setMouseEnabled(False, False)
            view.disableAutoRange()  # fitted by hand: on a new picture size and when resized
            view.sigResized.connect(self._fit)
            self.views[key] = view
            item = pg.ImageItem(axisOrder="row-major")
            item.mouseClickEvent = lambda ev, k=key: self._clicked(ev, k)
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

    def _clicked(self, ev, key: str) -> None:
        p = ev.pos()
        self.sigPanelClicked.emit(key, int(p.y()), int(p.x()))
