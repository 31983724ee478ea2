"""KernelEditor: a preset (identity, box blur, Gaussian, sharpen, edge, Sobel x/y,
emboss, or small integers), the size (1 to 7 per side, rectangular allowed), every
cell editable, one slice per input channel, and the bias. Weights typed by hand or set
from a real layer show as the preset 'custom' or 'from layer …', never as a preset they
are not."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QGroupBox, QHeaderView, QTableWidget,
                               QTableWidgetItem, QWidget)

from cnnlab.explain import presets
from cnnlab.explain.cellfit import exact

from .controls import error_label, form, size_spins

MIN_K, MAX_K = 1, 7
CUSTOM = "custom"


class KernelEditor(QGroupBox):
    """Emits sigChanged when the weights, size or bias change; `weight()` is (C, kh, kw)."""

    sigChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Kernel", parent)
        self._weight = presets.make_kernel("pattern", 3)[None]
        self.preset = QComboBox()
        self.preset.addItems([*presets.KERNEL_PRESETS, CUSTOM])
        self.preset.setCurrentText("pattern")
        self.rows, self.cols, size_row = size_spins(MIN_K, MAX_K, 3, self._apply_preset)
        self.slice = QComboBox()
        self.slice.addItem("channel 0")
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed
                                   | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(120)
        self.table.setMaximumHeight(200)
        self.bias = QDoubleSpinBox()
        self.bias.setRange(-100, 100)
        self.bias.setDecimals(3)
        self.bias.setSingleStep(0.5)
        self.note = error_label()

        form(self, ("Preset", self.preset), ("Size", size_row), ("Slice", self.slice), self.table, ("Bias", self.bias),
             self.note)

        self.preset.currentIndexChanged.connect(self._apply_preset)
        self.slice.currentIndexChanged.connect(self._fill_table)
        self.table.itemChanged.connect(self._cell_edited)
        self.bias.valueChanged.connect(lambda _value: self.sigChanged.emit())
        self._fill_table()

    # ------------------------------------------------------------ public
    def weight(self) -> np.ndarray:
        return self._weight.copy()

    def kernel_size(self) -> tuple[int, int]:
        return self.rows.value(), self.cols.value()

    def bias_value(self) -> float:
        return float(self.bias.value())

    def set_channels(self, channels: int) -> None:
        """One weight slice per input channel; new slices copy slice 0."""
        if channels == self._weight.shape[0]:
            return
        self._weight = np.repeat(self._weight[:1], channels, axis=0)
        self.slice.blockSignals(True)
        self.slice.clear()
        self.slice.addItems([f"channel {c}" for c in range(channels)])
        self.slice.blockSignals(False)
        self.slice.setEnabled(channels > 1)
        self._fill_table()

    def set_kernel(self, preset: str, rows: int = 3, cols: int | None = None) -> None:
        """Choose a preset and size in one go (one sigChanged)."""
        for w in (self.preset, self.rows, self.cols):
            w.blockSignals(True)
        self.preset.setCurrentText(preset)
        self.rows.setValue(rows)
        self.cols.setValue(rows if cols is None else cols)
        for w in (self.preset, self.rows, self.cols):
            w.blockSignals(False)
        self._apply_preset()

    def set_weights(self, weights: np.ndarray, origin: str = "") -> None:
        """Set the weights directly: (kh, kw) for every slice or (C, kh, kw). The preset
        then reads 'from layer <origin>' when given, else 'custom'."""
        w = np.asarray(weights, np.float32)
        w = np.repeat(w[None], self._weight.shape[0], axis=0) if w.ndim == 2 else w
        for spin, n in ((self.rows, w.shape[1]), (self.cols, w.shape[2])):
            spin.blockSignals(True)
            spin.setRange(min(MIN_K, n), max(MAX_K, n))
            spin.setValue(n)
            spin.blockSignals(False)
        self._weight = w.copy()
        self._show_custom(f"from layer {origin}" if origin else CUSTOM)
        self._fill_table()
        self.sigChanged.emit()

    def preset_name(self) -> str:
        return self.preset.currentText()

    def _show_custom(self, label: str) -> None:
        """Select the last preset entry, the one for weights no preset made, named `label`."""
        self.preset.blockSignals(True)
        self.preset.setItemText(self.preset.count() - 1, label)
        self.preset.setCurrentIndex(self.preset.count() - 1)
        self.preset.blockSignals(False)

    def set_weights_enabled(self, enabled: bool) -> None:
        """Pooling uses only the size: grey out the weights and bias."""
        for w in (self.preset, self.table, self.bias, self.slice):
            w.setEnabled(enabled)
        self.slice.setEnabled(enabled and self._weight.shape[0] > 1)
        self.setTitle("Kernel" if enabled else "Pooling window (only its size is used)")

    # ------------------------------------------------------------ internals
    def _apply_preset(self) -> None:
        kh, kw = self.kernel_size()
        if self.preset.currentIndex() == self.preset.count() - 1:  # custom: keep what fits of the weights
            old = self._weight
            self._weight = np.zeros((old.shape[0], kh, kw), np.float32)
            h, w = min(kh, old.shape[1]), min(kw, old.shape[2])
            self._weight[:, :h, :w] = old[:, :h, :w]
            self._fill_table()
            self.sigChanged.emit()
            return
        self.preset.setItemText(self.preset.count() - 1, CUSTOM)
        try:
            k = presets.make_kernel(self.preset.currentText(), kh, kw)
            self.note.setText("")
        except ValueError as e:  # e.g. Sobel on a 2x2 kernel: keep the size, fill with the pattern
            self.note.setText(str(e))
            k = presets.make_kernel("pattern", kh, kw)
        self._weight = np.repeat(k[None], self._weight.shape[0], axis=0)
        self._fill_table()
        self.sigChanged.emit()

    def _fill_table(self) -> None:
        c = max(0, self.slice.currentIndex())
        k = self._weight[c]
        self.table.blockSignals(True)
        self.table.setRowCount(k.shape[0])
        self.table.setColumnCount(k.shape[1])
        # 0-based headers, like the indices in the arithmetic
        self.table.setHorizontalHeaderLabels([str(i) for i in range(k.shape[1])])
        self.table.setVerticalHeaderLabels([str(i) for i in range(k.shape[0])])
        for r in range(k.shape[0]):
            for q in range(k.shape[1]):
                self.table.setItem(r, q, QTableWidgetItem(exact(k[r, q])))
        self.table.blockSignals(False)

    def _cell_edited(self, item: QTableWidgetItem) -> None:
        c = max(0, self.slice.currentIndex())
        try:
            value = float(item.text().replace(",", "."))
        except ValueError:
            self.note.setText(f"{item.text()!r} is not a number")
            self._fill_table()
            return
        self.note.setText("")
        self._weight[c, item.row(), item.column()] = value
        if self.preset.currentIndex() != self.preset.count() - 1:
            self._show_custom(CUSTOM)
        self.sigChanged.emit()
