"""NetworkView: the model's summary table (the torchinfo layout of `cnnlab.summary`),
the shape after every layer as a picture, and a table with the arithmetic behind each
shape (the output-size formula with the layer's numbers filled in).

A layer list that does not fit its data is shown too, never a stale table: the shapes up
to the failing layer, and that layer's arithmetic saying why it fails (`show_misfit`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QPlainTextEdit, QScrollArea,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)
from PySide6.QtCore import Qt

import cnnlab
from cnnlab import models, nn

from .shape_picture import ShapePicture
from .controls import ERROR_COLOR, error_style
from .shapes import LayerShape, check_layer, shape_text, spec_of


@dataclass
class LayerRow:
    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    derivation: list[str] = field(default_factory=list)
    params: int = 0


def trace_shapes(model: nn.Module, input_shape: Sequence[int]) -> list[LayerRow]:
    """Run zeros (1, C, H, W) through a copy of `model`; every leaf layer's input and output
    shapes in call order, with the arithmetic of the standard layers."""
    copy = models.from_description(models.describe(model))
    rows: list[LayerRow] = []
    names = {id(m): n for n, m in copy.named_modules()}
    leaves = [m for n, m in copy.named_modules() if n and not m._modules]

    def hook(m, inputs, output):
        spec = spec_of(m)
        in_shape = tuple(inputs[0].shape[1:])
        row = LayerRow(names[id(m)], type(m).__name__, in_shape, tuple(output.shape[1:]),
                       params=sum(p.numel() for p in m.parameters()))
        if spec is not None:
            row.derivation = check_layer(len(rows), spec, in_shape).derivation
        rows.append(row)

    handles = [m.register_forward_hook(hook) for m in leaves]
    copy.eval()
    try:
        with cnnlab.no_grad():
            copy(cnnlab.zeros((1, *input_shape)))
    finally:
        for h in handles:
            h.remove()
    return rows


TITLE_STYLE = "font-weight: bold; font-size: 14px"


class NetworkView(QWidget):
    """`set_model(model, input_shape, batch_size)`; `rows` and `summary` hold what is shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[LayerRow] = []
        self.summary: Any = None
        self.title = QLabel("No model yet")
        self.title.setStyleSheet(TITLE_STYLE)
        self.table_text = QPlainTextEdit()
        self.table_text.setReadOnly(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setPointSize(8)
        self.table_text.setFont(mono)
        self.table_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.picture = ShapePicture()
        self.picture.sigLayerClicked.connect(self._picture_clicked)
        picture_scroll = QScrollArea()
        picture_scroll.setWidget(self.picture)
        picture_scroll.setWidgetResizable(True)
        picture_scroll.setMinimumHeight(self.picture.minimumHeight() + 24)
        picture_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.shapes = QTableWidget(0, 6)
        self.shapes.setHorizontalHeaderLabels(["layer", "type", "in", "out", "parameters", "why this shape"])
        self.shapes.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.shapes.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.shapes.verticalHeader().setVisible(False)
        header = self.shapes.horizontalHeader()
        for i in range(5):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.shapes.setWordWrap(True)
        self.shapes.currentCellChanged.connect(lambda r, *_: self.picture.select(r + 1))

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("Shape after each layer (click one)"))
        rl.addWidget(picture_scroll)
        rl.addWidget(self.shapes, 1)
        split = QSplitter()
        split.addWidget(self.table_text)
        split.addWidget(right)
        split.setSizes([590, 770])
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(split, 1)

    def set_model(self, model: nn.Module, input_shape: Sequence[int], batch_size: int = 1,
                  label: str = "") -> None:
        input_shape = tuple(int(s) for s in input_shape)
        self.title.setStyleSheet(TITLE_STYLE)
        try:
            self.rows = trace_shapes(model, input_shape)
            self.summary = cnnlab.summary(models.from_description(models.describe(model)),
                                          input_size=(batch_size, *input_shape))
        except Exception as e:  # a model that does not run on this input: say why
            self.rows, self.summary = [], None
            self.title.setText(f"{label or type(model).__name__} cannot run on {shape_text(input_shape)}: {e}")
            self.table_text.setPlainText(str(e))
            self.picture.set_layers([])
            self.shapes.setRowCount(0)
            return
        total = self.summary.total_params
        self.title.setText(f"{label or type(model).__name__}: {total:,} parameters, input "
                           f"{shape_text(input_shape)} (the table uses a batch of {batch_size})")
        self.table_text.setPlainText(str(self.summary))
        self.picture.set_layers([("input", "input", input_shape, True)]
                                + [(r.name, r.kind, r.out_shape, True) for r in self.rows])
        self._fill_table([(r.name, r.kind, r.in_shape, r.out_shape, r.params,
                           "\n".join(r.derivation) or ("same shape" if r.in_shape == r.out_shape else ""))
                          for r in self.rows])

    def show_misfit(self, checks: Sequence[LayerShape], input_shape: Sequence[int], problems: str) -> None:
        """A layer list that does not fit: the shapes up to the first layer that fails, that
        layer in red with its arithmetic and the reason, the layers after it unreached."""
        input_shape = tuple(int(s) for s in input_shape)
        self.rows, self.summary = [], None
        failing = next((c.index for c in checks if not c.ok), len(checks))
        self.title.setStyleSheet(f"{TITLE_STYLE}; {error_style()}")
        where = (f"layer {failing} ({checks[failing].kind}) fails" if failing < len(checks)
                 else "the last layer's output does not fit the classes")
        self.title.setText(f"Your layer list does not fit {shape_text(input_shape)}: {where}")
        self.table_text.setPlainText("The layer list does not fit the data, so there is no model to summarise:\n\n"
                                     + problems)
        self.picture.set_layers([("input", "input", input_shape, True)]
                                + [(f"layer {c.index}", c.kind, c.out_shape or (), c.ok) for c in checks[:failing + 1]])
        rows = []
        for c in checks:
            if c.index < failing or c.ok:
                why = "\n".join(c.derivation) or ("same shape" if c.in_shape == c.out_shape else "")
            elif c.index == failing:
                why = "\n".join(c.derivation + [f"✗ {p}" for p in c.problems])
            else:
                why = "not reached: an earlier layer does not fit"
            rows.append((f"layer {c.index}", c.kind, c.in_shape, c.out_shape, c.params, why))
        self._fill_table(rows, failing)
        if failing < len(checks):
            self.shapes.selectRow(failing)

    def show_problem(self, text: str) -> None:
        """No model to show: say why (instead of keeping the last model's table)."""
        self.rows, self.summary = [], None
        self.title.setStyleSheet(f"{TITLE_STYLE}; {error_style()}")
        self.title.setText("No model: " + text.splitlines()[0] if text else "No model yet")
        self.table_text.setPlainText(text)
        self.picture.set_layers([])
        self.shapes.setRowCount(0)

    def _fill_table(self, rows: Sequence[tuple], failing: int = -1) -> None:
        """(name, kind, in shape, out shape, parameters, why) per layer; row `failing` in red."""
        self.shapes.setRowCount(len(rows))
        for i, (name, kind, in_shape, out_shape, params, why) in enumerate(rows):
            for j, text in enumerate((name, kind, shape_text(in_shape), shape_text(out_shape),
                                      f"{params:,}" if params else "–", why)):
                item = QTableWidgetItem(text)
                if j == 5:
                    item.setFont(QFont("monospace", 8))
                if i == failing:
                    item.setForeground(QColor(ERROR_COLOR))
                elif failing >= 0 and i > failing:
                    item.setForeground(QColor("#95a5a6"))
                self.shapes.setItem(i, j, item)
        self.shapes.resizeRowsToContents()

    def _picture_clicked(self, index: int) -> None:
        if index >= 1:
            self.shapes.selectRow(index - 1)
