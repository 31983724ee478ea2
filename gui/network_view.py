"""NetworkView: the model's summary table (the torchinfo layout of `cnnlab.summary`),
the shape after every layer as a picture, and a table with the arithmetic behind each
shape (the output-size formula with the layer's numbers filled in)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QPlainTextEdit, QScrollArea,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)
from PySide6.QtCore import Qt

import cnnlab
from cnnlab import models, nn

from .shape_picture import ShapePicture
from .shapes import check_layer, shape_text, spec_of


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


class NetworkView(QWidget):
    """`set_model(model, input_shape, batch_size)`; `rows` and `summary` hold what is shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[LayerRow] = []
        self.summary: Any = None
        self.title = QLabel("No model yet")
        self.title.setStyleSheet("font-weight: bold; font-size: 14px")
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
        self.shapes.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            why = "\n".join(r.derivation) or ("same shape" if r.in_shape == r.out_shape else "")
            for j, text in enumerate((r.name, r.kind, shape_text(r.in_shape), shape_text(r.out_shape),
                                      f"{r.params:,}" if r.params else "–", why)):
                item = QTableWidgetItem(text)
                if j == 5:
                    item.setFont(QFont("monospace", 8))
                self.shapes.setItem(i, j, item)
        self.shapes.resizeRowsToContents()

    def _picture_clicked(self, index: int) -> None:
        if index >= 1:
            self.shapes.selectRow(index - 1)
