"""LayerEditor: build a model as a list of layers — add, remove and reorder Conv2d,
pooling, BatchNorm, activations, Dropout, Flatten and Linear and set their numbers.
Every edit re-derives the shape after each layer; a layer that does not fit turns red
at once, with the output-size arithmetic or the mismatch that explains why.

`layers()` is the list `cnnlab.models.build_sequential` takes.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QMenu, QPushButton, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)

from .controls import error_label
from .shapes import INPUT_ARG, LAYER_DEFAULTS, LayerShape, check_layers, fill_inputs, fit_problems, shape_text

# Seed 004's ConvNet written as a layer list: the editor's starting point.
CONVNET_LAYERS: list[dict[str, Any]] = [
    {"type": "Conv2d", "args": dict(in_channels=1, out_channels=16, kernel_size=3, stride=1, padding=1)},
    {"type": "MaxPool2d", "args": dict(kernel_size=2, stride=2, padding=0)},
    {"type": "Conv2d", "args": dict(in_channels=16, out_channels=32, kernel_size=3, stride=1, padding=0)},
    {"type": "MaxPool2d", "args": dict(kernel_size=2, stride=2, padding=1)},
    {"type": "Conv2d", "args": dict(in_channels=32, out_channels=64, kernel_size=1, stride=1, padding=0)},
    {"type": "Conv2d", "args": dict(in_channels=64, out_channels=4, kernel_size=5, stride=1, padding=0)},
    {"type": "Flatten", "args": {}},
    {"type": "Linear", "args": dict(in_features=36, out_features=10)},
]
_RANGES = {"in_channels": (1, 4096), "out_channels": (1, 4096), "kernel_size": (1, 15), "stride": (0, 8),
           "padding": (0, 8), "dilation": (0, 6), "in_features": (1, 1_000_000), "out_features": (1, 100_000),
           "num_features": (1, 100_000)}


def _scalar(v: Any) -> Any:
    """Int-or-pair arguments are edited as one number (square kernels)."""
    return v[0] if isinstance(v, (list, tuple)) else v


def _short(spec: dict[str, Any]) -> str:
    a = {k: _scalar(v) for k, v in spec.get("args", {}).items()}
    kind = spec["type"]
    if kind == "Conv2d":
        extra = "".join(f" {n[0]}{a[k]}" for k, n in (("stride", "s"), ("padding", "p"), ("dilation", "d"))
                        if a.get(k, 1 if k != "padding" else 0) != (1 if k != "padding" else 0))
        return f"Conv2d {a.get('in_channels')}→{a.get('out_channels')} {a.get('kernel_size')}×{a.get('kernel_size')}{extra}"
    if kind in ("MaxPool2d", "AvgPool2d"):
        return f"{kind} {a.get('kernel_size')} s{a.get('stride', a.get('kernel_size'))} p{a.get('padding', 0)}"
    if kind == "Linear":
        return f"Linear {a.get('in_features')}→{a.get('out_features')}"
    if kind in ("BatchNorm2d", "BatchNorm1d"):
        return f"{kind} {a.get('num_features')}"
    if kind == "Dropout":
        return f"Dropout p={a.get('p', 0.5)}"
    return kind


class LayerEditor(QGroupBox):
    """Emits sigChanged after every edit. `checks()` gives each layer's LayerShape."""

    sigChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Layers", parent)
        self._layers: list[dict[str, Any]] = []
        self._input_shape: tuple[int, ...] = (1, 28, 28)
        self._classes = 10
        self._checks: list[LayerShape] = []

        self.list = QListWidget()
        self.list.setMinimumHeight(150)
        self.list.currentRowChanged.connect(self._selected)
        self.add_button = QToolButton()
        self.add_button.setText("Add ▾")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.add_button)
        for kind in LAYER_DEFAULTS:
            menu.addAction(kind, lambda k=kind: self.add_layer(k))
        self.add_button.setMenu(menu)
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("↑")
        self.down_button = QPushButton("↓")
        for b in (self.up_button, self.down_button):
            b.setFixedWidth(34)
        self.up_button.setToolTip("Move the selected layer up")
        self.down_button.setToolTip("Move the selected layer down")
        self.remove_button.clicked.connect(lambda: self.remove_layer(self.list.currentRow()))
        self.up_button.clicked.connect(lambda: self.move_layer(self.list.currentRow(), -1))
        self.down_button.clicked.connect(lambda: self.move_layer(self.list.currentRow(), +1))
        self.auto = QCheckBox("input sizes follow the previous layer")
        self.auto.setToolTip("Fill in in_channels, in_features and num_features from what flows in")
        self.auto.setChecked(True)
        self.auto.toggled.connect(self._auto_toggled)
        self.form_box = QWidget()
        self.form = QFormLayout(self.form_box)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.derivation = QLabel()
        self.derivation.setWordWrap(True)
        self.derivation.setStyleSheet("font-family: monospace; color: #34495e")
        self.problems = error_label(bold=True)

        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addWidget(self.auto)
        layout.addWidget(self.form_box)
        layout.addWidget(self.derivation)
        layout.addWidget(self.problems)
        self.set_layers(CONVNET_LAYERS)

    # ------------------------------------------------------------ public
    def layers(self) -> list[dict[str, Any]]:
        """The layer list as `cnnlab.models.build_sequential` takes it."""
        return copy.deepcopy(self._layers)

    def set_layers(self, layers: Sequence[dict[str, Any]]) -> None:
        self._layers = [{"type": s["type"], "args": {k: _scalar(v) for k, v in s.get("args", {}).items()}}
                        for s in layers]
        self._refresh(select=0)

    def set_input(self, shape: Sequence[int], num_classes: int) -> None:
        """The dataset's image shape (C, H, W) and class count."""
        new = tuple(int(s) for s in shape), int(num_classes)
        if new != (self._input_shape, self._classes):
            self._input_shape, self._classes = new
            self._refresh()

    def checks(self) -> list[LayerShape]:
        return list(self._checks)

    def message(self) -> str:
        """Every problem, one per line (empty when the model fits the data)."""
        return fit_problems(self._checks, self._classes)

    def ok(self) -> bool:
        return not self.message()

    def add_layer(self, kind: str, index: int | None = None) -> None:
        """Insert a layer of `kind` after the selected one (or at `index`)."""
        at = (self.list.currentRow() + 1 if self.list.currentRow() >= 0 else len(self._layers)) if index is None else index
        self._layers.insert(at, {"type": kind, "args": dict(LAYER_DEFAULTS[kind])})
        self._refresh(select=at)

    def remove_layer(self, index: int) -> None:
        if 0 <= index < len(self._layers):
            del self._layers[index]
            self._refresh(select=min(index, len(self._layers) - 1))

    def move_layer(self, index: int, by: int) -> None:
        to = index + by
        if 0 <= index < len(self._layers) and 0 <= to < len(self._layers):
            self._layers[index], self._layers[to] = self._layers[to], self._layers[index]
            self._refresh(select=to)

    def set_arg(self, index: int, name: str, value: Any) -> None:
        """Change one argument of layer `index`; the form shows the new value."""
        self._layers[index]["args"][name] = value
        self._refresh()

    def _arg_edited(self, index: int, name: str, value: Any) -> None:
        # from the form itself: keep its widgets (one of them is sending this very signal)
        self._layers[index]["args"][name] = value
        self._refresh(rebuild_form=False)

    # ------------------------------------------------------------ internals
    def _auto_toggled(self) -> None:
        self._refresh()

    def _refresh(self, select: int | None = None, rebuild_form: bool = True) -> None:
        if self.auto.isChecked():
            self._layers = fill_inputs(self._layers, self._input_shape)
        self._checks = check_layers(self._layers, self._input_shape)
        row = self.list.currentRow() if select is None else select
        self.list.blockSignals(True)
        self.list.clear()
        for spec, check in zip(self._layers, self._checks):
            bad = bool(check.problems)
            item = QListWidgetItem(f"{check.index}. {_short(spec)}  →  {shape_text(check.out_shape)}"
                                   + ("   ⚠" if bad else ""))
            if bad:
                item.setForeground(QColor(138, 28, 28))
                item.setBackground(QColor(253, 237, 236))
            self.list.addItem(item)
        self.list.setCurrentRow(max(-1, min(row, len(self._layers) - 1)))
        self.list.blockSignals(False)
        self.problems.setText(self.message())
        self._show_selected(rebuild_form)
        self.sigChanged.emit()

    def _selected(self, row: int) -> None:
        self._show_selected(True)

    def _show_selected(self, rebuild_form: bool) -> None:
        row = self.list.currentRow()
        if rebuild_form:
            while self.form.rowCount():
                self.form.removeRow(0)
        if not 0 <= row < len(self._layers):
            self.derivation.setText("")
            return
        check = self._checks[row]
        text = f"in {shape_text(check.in_shape)} → out {shape_text(check.out_shape)}"
        self.derivation.setText("\n".join([text, *check.derivation]))
        if rebuild_form:
            self._build_form(row)

    def _build_form(self, row: int) -> None:
        spec = self._layers[row]
        auto = self.auto.isChecked()
        for name, default in LAYER_DEFAULTS[spec["type"]].items():
            value = spec["args"].get(name, default)
            if isinstance(default, bool):
                w = QCheckBox()
                w.setChecked(bool(value))
                w.toggled.connect(lambda v, n=name, r=row: self._arg_edited(r, n, bool(v)))
            elif isinstance(default, float):
                w = QDoubleSpinBox()
                w.setRange(0.0, 0.99 if name == "p" else 10.0)
                w.setDecimals(3)
                w.setSingleStep(0.05 if name == "p" else 0.01)
                w.setValue(float(value))
                w.valueChanged.connect(lambda v, n=name, r=row: self._arg_edited(r, n, float(v)))
            else:
                w = QSpinBox()
                w.setRange(*_RANGES.get(name, (0, 100_000)))
                w.setValue(int(value if value is not None else default))
                w.valueChanged.connect(lambda v, n=name, r=row: self._arg_edited(r, n, int(v)))
                if auto and INPUT_ARG.get(spec["type"]) == name:
                    w.setEnabled(False)
                    w.setToolTip("set from the previous layer (untick 'input sizes follow' to edit)")
            self.form.addRow(name, w)
