"""SceneView: draws an explain `Scene` — grids of numbers with the window, kernel
taps and the cell being computed highlighted — and reports the cell under the mouse.

The same scenes become GIF frames in `cnnlab.render`; this widget is their Qt twin,
with hover and mouse drawing on top. Cells are coloured by the one diverging map
(gui.colormap); each panel's numbers take the most precise format whose every value,
sign included, fits its cell (cnnlab.explain.cellfit); the exact value is on hover.
The largest cells that let every panel and title fit are chosen; when even the smallest
do not, the view grows and the scroll area around it scrolls.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QAbstractScrollArea, QScrollArea, QSizePolicy, QWidget

from cnnlab.explain import PALETTE, Panel, Scene
from cnnlab.explain.cellfit import CellFormat, SUFFIX_ROOM, fit_format, note_text
from cnnlab.explain.scene import COLOURS, blend, cell_colour, is_padding, panel_scale, rgb

from .colormap import ink_on, qcolor
from .controls import ERROR_COLOR

MARGIN, GAP, MIN_CELL = 10, 26, 4
PAD_INK = (90, 90, 90)
_OUTLINES = (("window", 2), ("tap", 2), ("target", 3), ("argmax", 3), ("current", 3), ("hover", 3))


@dataclass
class Drawn:
    """One number as painted (the tests check that it fits its cell and reads back right)."""

    key: str
    row: int
    col: int
    text: str
    value: float
    box: QRectF
    width: int
    fmt: CellFormat


def scrolling(view: "SceneView", min_w: int = 320, min_h: int = 220) -> QScrollArea:
    """A scroll area around a view: it scrolls only when even the smallest cells do not fit."""
    area = QScrollArea()
    area.setWidget(view)
    area.setWidgetResizable(True)
    area.setMinimumSize(min_w, min_h)
    return area


class SceneView(QWidget):
    """Paints the panels of a scene in columns (or rows) and tracks the pointer.

    Signals: sigCellHovered(key, row, col) when the pointer enters a cell,
    sigHoverLeft() when it leaves every cell, sigCellPainted(key, row, col, on)
    while dragging over a panel listed in `paintable` (left button: on, right: off).
    """

    sigCellHovered = Signal(str, int, int)
    sigHoverLeft = Signal()
    sigCellPainted = Signal(str, int, int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.paintable: set[str] = set()
        # groups as columns (False) and/or as rows (True): the largest cells win
        self.arrangements: tuple[bool, ...] = (False, True)
        self.presenter = False
        self.drawn: list[Drawn] = []
        self._scene: Scene | None = None
        self._message = ""
        self._placed: list[tuple[Panel, QRectF]] = []
        self._titles: dict[str, QRectF] = {}
        self._cell = 20.0
        self._hovered: tuple[str, int, int] | None = None

    # ------------------------------------------------------------ content
    def set_scene(self, scene: Scene | None) -> None:
        self._scene = scene
        self._message = ""
        self._relayout()
        self.update()

    def set_message(self, text: str) -> None:
        """Show a message (e.g. why the settings are invalid) instead of grids."""
        self._scene, self._message, self._placed, self._titles = None, text, [], {}
        self.setMinimumSize(0, 0)
        self.update()

    def set_presenter(self, on: bool) -> None:
        """Projector style: bigger cells and fonts, darker lines."""
        self.presenter = on
        self._relayout()
        self.update()

    def scene(self) -> Scene | None:
        return self._scene

    def cell_size(self) -> float:
        return self._cell

    def panel_rects(self) -> dict[str, QRectF]:
        """Each panel's grid with its title, in widget coordinates."""
        return {p.key: rect.united(self._titles[p.key]) for p, rect in self._placed}

    def cell_center(self, key: str, row: int, col: int) -> QPoint:
        """The widget point at the middle of a panel's cell (for tests and tools)."""
        for panel, rect in self._placed:
            if panel.key == key:
                return QPoint(int(rect.left() + (col + 0.5) * self._cell),
                              int(rect.top() + (row + 0.5) * self._cell))
        raise KeyError(key)

    def cell_at(self, point: QPointF | QPoint) -> tuple[str, int, int] | None:
        for panel, rect in self._placed:
            if rect.contains(QPointF(point)):
                r = int((point.y() - rect.top()) // self._cell)
                c = int((point.x() - rect.left()) // self._cell)
                h, w = panel.values.shape
                if 0 <= r < h and 0 <= c < w:
                    return panel.key, r, c
        return None

    # ------------------------------------------------------------ layout
    def _title_font(self) -> QFont:
        f = QFont(self.font().family())
        f.setPointSize(14 if self.presenter else 10)
        f.setBold(self.presenter)
        return f

    def _title_h(self) -> int:
        return QFontMetrics(self._title_font()).height() + 6

    def _available(self) -> QSize:
        """The room to fit into: the scroll area's viewport when inside one, else our own size."""
        area = self.parent().parent() if self.parent() is not None else None
        if isinstance(area, QAbstractScrollArea):
            return area.maximumViewportSize()
        return self.size()

    def _relayout(self) -> None:
        """The biggest cells (up to a cap) at which every panel and its title fit, with the
        groups as columns or as rows (several channels often fit better in rows)."""
        self._placed, self._titles = [], {}
        if self._scene is None:
            return
        groups = self._scene.groups()
        fm = QFontMetrics(self._title_font())
        title_w = {p.key: fm.horizontalAdvance(p.title + SUFFIX_ROOM) + 4 for g in groups for p in g}
        avail = self._available()
        cap = 90 if self.presenter else 60
        best = None
        for transpose in self.arrangements:
            cell = self._largest_fit(groups, transpose, title_w, avail, cap)
            if cell is not None and (best is None or cell > best[0]):
                best = (cell, transpose)
        overflow = best is None
        if overflow:  # nothing fits: the smallest cells, in whichever arrangement needs less room
            sizes = {t: self._arrange(groups, t, MIN_CELL, title_w)[1] for t in self.arrangements}
            t = min(sizes, key=lambda k: sizes[k].width() * sizes[k].height())
            best = (MIN_CELL, t)
        cell, transpose = best
        placed, extent, titles = self._arrange(groups, transpose, cell, title_w)
        self._cell, self._placed, self._titles = float(cell), placed, titles
        self.setMinimumSize(extent if overflow else QSize(0, 0))

    def _largest_fit(self, groups, transpose: bool, title_w: dict[str, int], avail: QSize, cap: int) -> int | None:
        lo, hi = MIN_CELL, cap
        if not self._fits(groups, transpose, lo, title_w, avail):
            return None
        while lo < hi:  # the extent grows with the cell size: bisect for the largest that fits
            mid = (lo + hi + 1) // 2
            if self._fits(groups, transpose, mid, title_w, avail):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _fits(self, groups, transpose: bool, cell: int, title_w: dict[str, int], avail: QSize) -> bool:
        extent = self._arrange(groups, transpose, cell, title_w)[1]
        return extent.width() <= avail.width() and extent.height() <= avail.height()

    def _arrange(self, groups: list[list[Panel]], transpose: bool, cell: int, title_w: dict[str, int]
                 ) -> tuple[list[tuple[Panel, QRectF]], QSize, dict[str, QRectF]]:
        """Panel rectangles at this cell size, the room they need, and each title's rectangle."""
        th = self._title_h()
        placed, titles = [], {}
        a, far = MARGIN, MARGIN  # a: along the groups; far: the widest cross extent seen
        for g in groups:
            b = MARGIN
            if transpose:  # a row of panels side by side
                row_h = max(p.values.shape[0] for p in g) * cell
                for p in g:
                    h, w = p.values.shape
                    width = max(w * cell, title_w[p.key])
                    titles[p.key] = QRectF(b, a, width, th)
                    placed.append((p, QRectF(b, a + th, w * cell, h * cell)))
                    b += width + GAP
                a += th + row_h + GAP
            else:  # a column of panels stacked
                col_w = max(max(p.values.shape[1] * cell, title_w[p.key]) for p in g)
                for p in g:
                    h, w = p.values.shape
                    titles[p.key] = QRectF(a, b, col_w, th)
                    placed.append((p, QRectF(a, b + th, w * cell, h * cell)))
                    b += th + h * cell + GAP // 2
                b += GAP - GAP // 2
                a += col_w + GAP
            far = max(far, b - GAP)
        along = a - GAP + MARGIN
        cross = far + MARGIN
        extent = QSize(int(cross), int(along)) if transpose else QSize(int(along), int(cross))
        return placed, extent, titles

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._relayout()
        super().resizeEvent(event)

    # ------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.fillRect(self.rect(), qcolor(rgb(COLOURS["background"])))
        self.drawn = []
        if self._scene is None:
            painter.setPen(QColor(ERROR_COLOR))
            painter.drawText(self.rect().adjusted(20, 20, -20, -20),
                             int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self._message)
            return
        for panel, rect in self._placed:
            fmt = self._paint_panel(painter, panel, rect)
            painter.setPen(qcolor(rgb(COLOURS["text"])))
            painter.setFont(self._title_font())
            title = panel.title + (fmt.title_suffix() if fmt is not None else "")
            painter.drawText(self._titles[panel.key], int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                             title)
        painter.end()

    def _value_font(self, cell: float) -> list[QFont]:
        """Fonts to try for a panel's numbers, largest first (never below 7 px)."""
        top = max(7, int(cell * (0.4 if self.presenter else 0.32)))
        fonts = []
        for px in sorted({max(7, int(top * f)) for f in (1.0, 0.85, 0.72)}, reverse=True):
            f = QFont(self.font().family())
            f.setPixelSize(px)
            f.setBold(self.presenter)
            fonts.append(f)
        return fonts

    def _fit(self, values, cell: float, fonts: list[QFont], wrap=lambda s: s) -> tuple[QFont, CellFormat] | None:
        room = cell - 6
        for font in fonts:
            fm = QFontMetrics(font)
            fmt = fit_format(values, lambda s: fm.horizontalAdvance(wrap(s)) <= room)
            if fmt is not None:
                return font, fmt
        return None

    def _paint_panel(self, painter: QPainter, p: Panel, rect: QRectF) -> CellFormat | None:
        cell = self._cell
        h, w = p.values.shape
        scale = panel_scale(p.values)
        shown = [v for v in p.values.ravel() if np.isfinite(v)]
        fitted = self._fit(shown, cell, self._value_font(cell)) if cell >= 16 else None
        note_fit = None
        if cell >= 34 and p.notes:
            note_font = QFont(self.font().family())
            note_font.setPixelSize(max(7, int(cell * 0.22)))
            note_fit = self._fit(list(p.notes.values()), cell, [note_font], note_text)
        grid_pen = QPen(QColor(40, 40, 40) if self.presenter else qcolor(rgb(COLOURS["grid"])), 1)
        for r in range(h):
            for c in range(w):
                v = float(p.values[r, c])
                pad = is_padding(p, r, c)
                box = QRectF(rect.left() + c * cell, rect.top() + r * cell, cell, cell)
                fill = cell_colour(v, scale, pad)
                if (r, c) in p.marks.get("gap", ()):
                    fill = rgb(PALETTE["gap"])
                if (r, c) in p.marks.get("current", ()):  # a light orange, whatever the value's colour
                    fill = blend(rgb(COLOURS["blank"]), rgb(PALETTE["current"]), 0.45)
                painter.fillRect(box, qcolor(fill))
                painter.setPen(grid_pen)
                painter.drawRect(box)
                ink = qcolor(PAD_INK if pad else ink_on(fill))
                if fitted is not None and not math.isnan(v):
                    font, fmt = fitted
                    text = fmt.text(v)
                    lift = cell * 0.12 if (r, c) in p.notes and note_fit is not None else 0
                    painter.setFont(font)
                    painter.setPen(ink)
                    painter.drawText(box.adjusted(0, -lift, 0, -lift), int(Qt.AlignmentFlag.AlignCenter), text)
                    self.drawn.append(Drawn(p.key, r, c, text, v, box, QFontMetrics(font).horizontalAdvance(text),
                                            fmt))
                if note_fit is not None and (r, c) in p.notes:
                    font, fmt = note_fit
                    painter.setFont(font)
                    painter.setPen(ink)
                    painter.drawText(box.adjusted(3, 2, -3, -2),
                                     int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom),
                                     note_text(fmt.text(p.notes[(r, c)])))
        self._paint_outlines(painter, p, rect)
        return fitted[1] if fitted is not None else None

    def _paint_outlines(self, painter: QPainter, p: Panel, rect: QRectF) -> None:
        cell = self._cell
        h, w = p.values.shape
        extra = 1 if self.presenter else 0
        for style, width in _OUTLINES:
            pen = QPen(QColor(PALETTE[style]), width + extra)
            if style == "hover":
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            for r, c in p.marks.get(style, ()):
                if 0 <= r < h and 0 <= c < w:  # a mark left from a bigger grid is not drawn
                    painter.drawRect(QRectF(rect.left() + c * cell, rect.top() + r * cell, cell, cell)
                                     .adjusted(1, 1, -1, -1))
        pr, pc = p.pad
        if pr or pc:  # the edge of the real input inside the padding border
            painter.setPen(QPen(QColor(50, 50, 50), 2))
            painter.drawRect(QRectF(rect.left() + pc * cell, rect.top() + pr * cell,
                                    (w - 2 * pc) * cell, (h - 2 * pr) * cell))

    # ------------------------------------------------------------ mouse
    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        hit = self.cell_at(event.position())
        if hit != self._hovered:
            self._hovered = hit
            if hit is None:
                self.sigHoverLeft.emit()
            else:
                self.sigCellHovered.emit(*hit)
        self._maybe_paint(event, hit)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._maybe_paint(event, self.cell_at(event.position()))

    def leaveEvent(self, event) -> None:  # noqa: N802
        if self._hovered is not None:
            self._hovered = None
            self.sigHoverLeft.emit()
        super().leaveEvent(event)

    def _maybe_paint(self, event: QMouseEvent, hit: tuple[str, int, int] | None) -> None:
        if hit is None or hit[0] not in self.paintable:
            return
        buttons = event.buttons()
        if buttons & Qt.MouseButton.LeftButton:
            self.sigCellPainted.emit(*hit, True)
        elif buttons & Qt.MouseButton.RightButton:
            self.sigCellPainted.emit(*hit, False)
