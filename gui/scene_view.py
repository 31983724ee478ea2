"""SceneView: draws an explain `Scene` — grids of numbers with the window, kernel
taps and the cell being computed highlighted — and reports the cell under the mouse.

The same scenes become GIF frames in `cnnlab.render`; this widget is their Qt twin,
with hover and mouse drawing on top.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from cnnlab.explain import PALETTE, Panel, Scene
from cnnlab.explain import format_number as num
from cnnlab.explain.scene import COLOURS, blend, cell_colour, rgb

from .controls import ERROR_COLOR

MARGIN, GAP, TITLE_H, MAX_CELL = 10, 26, 20, 60

# Fill tints and outline widths per mark style; later entries are drawn on top.
_TINTS = (("window", 0.25), ("tap", 0.25), ("hover", 0.25))
_OUTLINES = (("window", 2), ("tap", 2), ("target", 3), ("argmax", 3), ("current", 3), ("hover", 3))


def _qcolor(c: tuple[int, int, int]) -> QColor:
    return QColor(*c)


class SceneView(QWidget):
    """Paints the panels of a scene in columns and tracks the pointer.

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
        self.setMinimumSize(320, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.paintable: set[str] = set()
        self._scene: Scene | None = None
        self._message = ""
        self._placed: list[tuple[Panel, QRectF]] = []
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
        self._scene, self._message, self._placed = None, text, []
        self.update()

    def scene(self) -> Scene | None:
        return self._scene

    def cell_size(self) -> float:
        return self._cell

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
    def _relayout(self) -> None:
        """Place the groups as columns (panels stacked) or as rows (panels side by side),
        whichever gives the bigger cells — several channels fit better in rows."""
        self._placed = []
        if self._scene is None:
            return
        groups = self._scene.groups()
        columns, rows = self._arrange(groups, transpose=False), self._arrange(groups, transpose=True)
        self._cell, self._placed = max(columns, rows, key=lambda a: a[0])

    def _arrange(self, groups: list[list[Panel]], transpose: bool) -> tuple[float, list[tuple[Panel, QRectF]]]:
        # Lengths along the main axis (across groups) and the cross axis (within a group), in cells.
        def extent(p: Panel, along: bool) -> int:
            h, w = p.values.shape
            return (h if transpose else w) if along else (w if transpose else h)

        main = [max(extent(p, True) for p in g) for g in groups]
        cross = [sum(extent(p, False) for p in g) for g in groups]
        n_cross = [len(g) for g in groups]
        if transpose:  # groups are rows: titles and gaps eat height per group, gaps width per panel
            avail_h = self.height() - 2 * MARGIN - len(groups) * TITLE_H - GAP * (len(groups) - 1)
            fit = min(avail_h / max(sum(main), 1),
                      min((self.width() - 2 * MARGIN - GAP * (n - 1)) / max(c, 1) for c, n in zip(cross, n_cross)))
        else:
            avail_w = self.width() - 2 * MARGIN - GAP * (len(groups) - 1)
            fit = min(avail_w / max(sum(main), 1),
                      min((self.height() - 2 * MARGIN - n * TITLE_H - (n - 1) * GAP // 2) / max(c, 1)
                          for c, n in zip(cross, n_cross)))
        cell = max(4.0, min(MAX_CELL, math.floor(fit)))
        placed = []
        a = MARGIN  # position along the main axis
        for g, length in zip(groups, main):
            b = MARGIN
            for p in g:
                h, w = p.values.shape
                if transpose:
                    placed.append((p, QRectF(b, a + TITLE_H, w * cell, h * cell)))
                    b += max(w * cell, 90) + GAP
                else:
                    placed.append((p, QRectF(a, b + TITLE_H, w * cell, h * cell)))
                    b += TITLE_H + h * cell + GAP // 2
            a += (TITLE_H + length * cell + GAP) if transpose else (max(length * cell, 90) + GAP)
        return cell, placed

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._relayout()
        super().resizeEvent(event)

    # ------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.fillRect(self.rect(), _qcolor(rgb(COLOURS["background"])))
        if self._scene is None:
            painter.setPen(QColor(ERROR_COLOR))
            painter.drawText(self.rect().adjusted(20, 20, -20, -20),
                             int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self._message)
            return
        for panel, rect in self._placed:
            painter.setPen(_qcolor(rgb(COLOURS["text"])))
            painter.setFont(QFont(self.font().family(), 10))
            painter.drawText(QRectF(rect.left(), rect.top() - TITLE_H, max(rect.width(), 200), TITLE_H),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), panel.title)
            self._paint_panel(painter, panel, rect)
        painter.end()

    def _paint_panel(self, painter: QPainter, p: Panel, rect: QRectF) -> None:
        cell = self._cell
        h, w = p.values.shape
        finite = p.values[np.isfinite(p.values)]
        scale = float(np.abs(finite).max()) if finite.size else 0.0
        pr, pc = p.pad
        value_font = QFont(self.font().family())
        value_font.setPixelSize(max(7, int(cell * 0.32)))
        note_font = QFont(self.font().family())
        note_font.setPixelSize(max(6, int(cell * 0.22)))
        grid_pen = QPen(_qcolor(rgb(COLOURS["grid"])), 1)
        for r in range(h):
            for c in range(w):
                v = float(p.values[r, c])
                is_pad = r < pr or r >= h - pr or c < pc or c >= w - pc
                box = QRectF(rect.left() + c * cell, rect.top() + r * cell, cell, cell)
                fill = cell_colour(v, scale, is_pad)
                if (r, c) in p.marks.get("gap", ()):
                    fill = rgb(PALETTE["gap"])
                for style, t in _TINTS:
                    if (r, c) in p.marks.get(style, ()):
                        fill = blend(fill, rgb(PALETTE[style]), t)
                if (r, c) in p.marks.get("current", ()):  # a light orange, whatever the value's colour
                    fill = blend(rgb(COLOURS["blank"]), rgb(PALETTE["current"]), 0.45)
                painter.fillRect(box, _qcolor(fill))
                painter.setPen(grid_pen)
                painter.drawRect(box)
                if cell >= 20 and not math.isnan(v):
                    painter.setFont(value_font)
                    painter.setPen(QColor(140, 140, 140) if is_pad else _qcolor(rgb(COLOURS["text"])))
                    text = ("-∞" if v < 0 else "∞") if math.isinf(v) else num(v)
                    lift = cell * 0.1 if (r, c) in p.notes and cell >= 34 else 0
                    painter.drawText(box.adjusted(1, 1 - lift, -1, -1 - lift), int(Qt.AlignmentFlag.AlignCenter), text)
                if cell >= 34 and (r, c) in p.notes:
                    painter.setFont(note_font)
                    painter.setPen(QColor(PALETTE["window"]))
                    painter.drawText(box.adjusted(2, 2, -3, -2),
                                     int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom),
                                     "×" + p.notes[(r, c)])
        for style, width in _OUTLINES:
            pen = QPen(QColor(PALETTE[style]), width)
            if style == "hover":
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            for r, c in p.marks.get(style, ()):
                painter.drawRect(QRectF(rect.left() + c * cell, rect.top() + r * cell, cell, cell)
                                 .adjusted(1, 1, -1, -1))
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
