"""WeightPicker: one entry of one parameter of the live model (a parameter, then its
flat index, shown as the full index), and WeightPage, the Inside view's page built
around one: the Update step and Gradient check pages.
"""
from __future__ import annotations

from html import escape

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QTextBrowser, QVBoxLayout, QWidget


def full(v: float) -> str:
    """Every digit a float32 weight has: an update is often smaller than 4 digits show."""
    return f"{v:.8g}"


def table(rows: list[tuple[str, ...]], head: tuple[str, ...]) -> str:
    """An HTML table with a header row (every cell escaped)."""
    th = "".join(f"<th align='left'>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table border='1' cellspacing='0' cellpadding='3'><tr>{th}</tr>{body}</table>"


class WeightPicker(QWidget):
    """A parameter and one of its entries. sigChanged(name, index) on every change."""

    sigChanged = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.param = QComboBox()
        self.param.setToolTip("Which parameter")
        self.flat = QSpinBox()
        self.flat.setToolTip("Which entry of it, counted row by row")
        self.where = QLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Weight:"))
        layout.addWidget(self.param, 1)
        layout.addWidget(QLabel("entry"))
        layout.addWidget(self.flat)
        layout.addWidget(self.where)
        self.param.currentIndexChanged.connect(self._param_changed)
        self.flat.valueChanged.connect(self._changed)

    def set_shapes(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """The model's parameters and their shapes; the choice stays when the name does."""
        if shapes == self.shapes:
            return
        keep = self.param.currentData()
        self.shapes = dict(shapes)
        self.param.blockSignals(True)
        self.param.clear()
        for name, shape in shapes.items():
            self.param.addItem(f"{name} {'×'.join(map(str, shape))}", name)
        i = self.param.findData(keep)
        self.param.setCurrentIndex(max(i, 0))
        self.param.blockSignals(False)
        self._param_changed()

    def choose(self, name: str, flat: int) -> None:
        self.param.setCurrentIndex(self.param.findData(name))
        self.flat.setValue(flat)

    @property
    def name(self) -> str | None:
        return self.param.currentData()

    @property
    def index(self) -> tuple[int, ...]:
        shape = self.shapes.get(self.name or "", ())
        return tuple(int(i) for i in np.unravel_index(self.flat.value(), shape)) if shape else ()

    def _param_changed(self) -> None:
        shape = self.shapes.get(self.name or "")
        self.flat.blockSignals(True)
        self.flat.setRange(0, max(int(np.prod(shape)) - 1, 0) if shape else 0)
        self.flat.blockSignals(False)
        self._changed()

    def _changed(self) -> None:
        self.where.setText(f"= {self.name}[{', '.join(map(str, self.index))}]" if self.name else "")
        if self.name:
            self.sigChanged.emit(self.name, self.index)


class WeightPage(QWidget):
    """A picker, a row of buttons and a page of HTML."""

    def __init__(self, buttons: list, hint: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picker = WeightPicker()
        self.body = QTextBrowser()
        self.hint = hint
        row = QHBoxLayout()
        for b in buttons:
            row.addWidget(b)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.picker)
        layout.addLayout(row)
        layout.addWidget(self.body, 1)
        self.body.setHtml(f"<p>{escape(hint)}</p>")

    def say(self, text: str) -> None:
        self.body.setHtml(f"<p>{escape(text)}</p>")


