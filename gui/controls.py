"""Small building blocks every tool's panel shares: the error style, a button with its tip,
the scrolling control column on the left of the lab and the dashboard, and a rows × cols
pair of spin boxes. One home each, so the tools look and behave alike.

>>> column = control_column(settings, button_row(start, stop))
>>> problems = error_label(bold=True)
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QFormLayout, QGridLayout, QHBoxLayout, QLabel, QLayout, QPushButton, QScrollArea,
                               QSpinBox, QVBoxLayout, QWidget)

ERROR_COLOR = "#8a1c1c"   # dark red: readable on light and grey backgrounds
CONTROL_WIDTH = 330       # the left column: wide enough for the spin boxes, narrow enough for a laptop


def error_style(bold: bool = False) -> str:
    return f"color: {ERROR_COLOR}" + ("; font-weight: bold" if bold else "")


def error_label(bold: bool = False) -> QLabel:
    """A word-wrapped label for what went wrong (empty until then)."""
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(error_style(bold))
    return label


def button(text: str, tip: str, slot: Callable[[], object] | None = None) -> QPushButton:
    b = QPushButton(text)
    b.setToolTip(tip)
    if slot is not None:
        b.clicked.connect(slot)
    return b


def button_grid(buttons: list[QPushButton], columns: int) -> QGridLayout:
    """Buttons laid out row by row, `columns` to a row."""
    grid = QGridLayout()
    for i, b in enumerate(buttons):
        grid.addWidget(b, i // columns, i % columns)
    return grid


def control_column(*parts: QWidget | QLayout) -> QScrollArea:
    """The fixed-width, vertically scrolling column of settings and buttons (top to bottom)."""
    controls = QWidget()
    column = QVBoxLayout(controls)
    for part in parts:
        if isinstance(part, QLayout):
            column.addLayout(part)
        else:
            column.addWidget(part)
    column.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidget(controls)
    scroll.setWidgetResizable(True)
    scroll.setFixedWidth(CONTROL_WIDTH)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return scroll


Row = tuple[str, QWidget | QLayout] | QWidget | QLayout


def form(parent: QWidget, *rows: Row) -> QFormLayout:
    """A form on `parent`: ("Label", widget or layout) pairs, or a widget or layout across both columns."""
    layout = QFormLayout(parent)
    for row in rows:
        if isinstance(row, tuple):
            layout.addRow(*row)
        else:
            layout.addRow(row)
    return layout


def size_spins(low: int, high: int, value: int,
               changed: Callable[[int], object] | None = None) -> tuple[QSpinBox, QSpinBox, QHBoxLayout]:
    """Two spin boxes for rows × cols (each calling `changed` on a new value), and the row that shows them."""
    rows, cols = QSpinBox(), QSpinBox()
    for spin in (rows, cols):
        spin.setRange(low, high)
        spin.setValue(value)
        if changed is not None:
            spin.valueChanged.connect(changed)
    row = QHBoxLayout()
    row.addWidget(rows)
    row.addWidget(QLabel("×"))
    row.addWidget(cols)
    return rows, cols, row
