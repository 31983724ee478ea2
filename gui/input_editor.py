"""InputEditor: where the lab's input comes from — small integers, typed numbers, a
picture drawn with the mouse, a sample or dataset image from cnnlab/assets/, or any image
file — and its size (3 to 32 per side) and channels (1 or 3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGroupBox, QHBoxLayout,
                               QPlainTextEdit, QPushButton, QWidget)

from cnnlab.assets import SAMPLE_IMAGES_DIR
from cnnlab.explain import presets

from .controls import error_label, form, size_spins

SAMPLES_DIR = SAMPLE_IMAGES_DIR
MIN_SIZE, MAX_SIZE = 3, 32


def dataset_samples(folder: Path = SAMPLES_DIR) -> list[tuple[str, Path]]:
    """(label, path) of the dataset images shipped in cnnlab/assets/samples."""
    found = []
    for path in sorted(folder.glob("*.png")) if folder.is_dir() else []:
        stem = path.stem
        if stem.startswith("mnist_"):
            found.append((f"MNIST digit {stem.split('_')[-1]}", path))
        elif stem.startswith("cifar10_"):
            found.append((f"CIFAR-10 {stem.split('_', 1)[1].replace('_', ' ')}", path))
    return found


class InputEditor(QGroupBox):
    """Emits sigChanged whenever the input array changes; `array()` returns it (C, H, W)."""

    sigChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Input", parent)
        self._seed = 0
        self._high = 4
        self._file: Path | None = None
        self._drawn = np.zeros((1, 7, 7), np.float32)
        self._typed = np.zeros((1, 3, 3), np.float32)
        self._chosen = (5, 5, "1")  # the size picked for generated inputs, kept while typed numbers show theirs

        self.source = QComboBox()
        self.source.addItem("small integers", ("integers", None))
        self.source.addItem("typed numbers", ("typed", None))
        self.source.addItem("drawn with the mouse", ("drawn", None))
        for name in presets.SYNTHETIC:
            self.source.addItem(f"picture: {name}", ("synthetic", name))
        for label, path in dataset_samples():
            self.source.addItem(label, ("file", path))
        self.source.addItem("image file…", ("open", None))
        self.rows, self.cols, size_row = size_spins(MIN_SIZE, MAX_SIZE, 5, self._changed)
        self.channels = QComboBox()
        self.channels.addItems(["1", "3"])
        self.reroll = QPushButton("New numbers")
        self.reroll.clicked.connect(self._new_numbers)
        self.clear = QPushButton("Clear drawing")
        self.clear.clicked.connect(self._clear_drawing)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("one row per line, e.g.\n0 1 2\n3 4 5\n6 7 8\n(blank line between channels)")
        self.text.setMaximumHeight(110)
        self.error = error_label()

        buttons = QHBoxLayout()
        buttons.addWidget(self.reroll)
        buttons.addWidget(self.clear)
        form(self, ("Source", self.source), ("Size", size_row), ("Channels", self.channels), buttons, self.text,
             self.error)

        self.source.currentIndexChanged.connect(self._source_changed)
        self.channels.currentIndexChanged.connect(self._changed)
        self.text.textChanged.connect(self._text_changed)
        self.text.setPlainText("0 1 2\n3 4 5\n6 7 8")
        self._source_changed()

    # ------------------------------------------------------------ public
    def kind(self) -> str:
        return self.source.currentData()[0]

    def is_drawing(self) -> bool:
        return self.kind() == "drawn"

    def set_source(self, label_start: str) -> None:
        """Pick the first source whose label starts with `label_start`."""
        for i in range(self.source.count()):
            if self.source.itemText(i).startswith(label_start):
                self.source.setCurrentIndex(i)
                return
        raise KeyError(label_start)

    def set_size(self, rows: int, cols: int, channels: int = 1) -> None:
        for w in (self.rows, self.cols, self.channels):
            w.blockSignals(True)
        self.rows.setValue(rows)
        self.cols.setValue(cols)
        self.channels.setCurrentText(str(channels))
        for w in (self.rows, self.cols, self.channels):
            w.blockSignals(False)
        self._changed()

    def set_integers(self, seed: int, high: int = 4) -> None:
        """The 'small integers' source: random integers 0..high-1 drawn with `seed`."""
        self._seed, self._high = seed, high
        self._changed()

    def n_channels(self) -> int:
        return int(self.channels.currentText())

    def _show_shape(self, shape: tuple[int, ...]) -> None:
        """Make the (disabled) size and channel controls describe typed numbers' own shape."""
        c, h, w = shape
        for spin, n in ((self.rows, h), (self.cols, w)):
            spin.blockSignals(True)
            spin.setRange(min(MIN_SIZE, n), max(MAX_SIZE, n))
            spin.setValue(n)
            spin.blockSignals(False)
        self.channels.blockSignals(True)
        if self.channels.findText(str(c)) < 0:
            self.channels.addItem(str(c))
        self.channels.setCurrentText(str(c))
        self.channels.blockSignals(False)

    def array(self) -> np.ndarray:
        """The input as (C, H, W) float32."""
        kind, arg = self.source.currentData()
        h, w, c = self.rows.value(), self.cols.value(), self.n_channels()
        if kind == "typed":
            return self._typed
        if kind == "drawn":
            return self._drawn
        if kind == "synthetic":
            return presets.synthetic_image(arg, h, w, c)
        if kind in ("file", "open") and (arg or self._file):
            try:
                return presets.load_image(arg or self._file, h, w, c)
            except OSError as e:
                self.error.setText(f"cannot read the image: {e}")
        return presets.small_integers(h, w, c, seed=self._seed, high=self._high)

    def paint(self, row: int, col: int, on: bool) -> None:
        """Set one drawn cell (all channels) to 1 (on) or 0, from the mouse."""
        if not self.is_drawing():
            return
        value = 1.0 if on else 0.0
        if 0 <= row < self._drawn.shape[1] and 0 <= col < self._drawn.shape[2] and self._drawn[0, row, col] != value:
            self._drawn[:, row, col] = value
            self.sigChanged.emit()

    # ------------------------------------------------------------ internals
    def _source_changed(self) -> None:
        kind = self.kind()
        if kind == "open":
            path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", "Images (*.png *.jpg *.jpeg *.bmp *.gif)")
            if path:
                self._file = Path(path)
                self.source.setItemText(self.source.currentIndex(), f"image file: {self._file.name}")
        typed = kind == "typed"
        self.text.setVisible(typed)
        self.reroll.setVisible(kind == "integers")
        self.clear.setVisible(kind == "drawn")
        for w in (self.rows, self.cols, self.channels):
            w.setEnabled(not typed)
        if typed:
            self._show_shape(self._typed.shape)
        else:  # back to the ranges and the size chosen for generated inputs
            h, w, c = self._chosen
            for wdg in (self.rows, self.cols, self.channels):
                wdg.blockSignals(True)
            for spin, n in ((self.rows, h), (self.cols, w)):
                spin.setRange(MIN_SIZE, MAX_SIZE)
                spin.setValue(n)
            for i in range(self.channels.count() - 1, -1, -1):
                if self.channels.itemText(i) not in ("1", "3"):
                    self.channels.removeItem(i)
            self.channels.setCurrentText(c)
            for wdg in (self.rows, self.cols, self.channels):
                wdg.blockSignals(False)
        self._changed()

    def _text_changed(self) -> None:
        try:
            self._typed = presets.parse_numbers(self.text.toPlainText())
            self.error.setText("")
        except ValueError as e:
            self.error.setText(str(e))
            return
        if self.kind() == "typed":
            self._show_shape(self._typed.shape)
            self.sigChanged.emit()

    def _new_numbers(self) -> None:
        self._seed += 1
        self._changed()

    def _clear_drawing(self) -> None:
        self._drawn[:] = 0
        self.sigChanged.emit()

    def _changed(self) -> None:
        h, w, c = self.rows.value(), self.cols.value(), self.n_channels()
        if self.kind() != "typed":
            self._chosen = (h, w, str(c))
        if self._drawn.shape != (c, h, w):  # keep what was drawn where it still fits
            old = self._drawn
            self._drawn = np.zeros((c, h, w), np.float32)
            hh, ww = min(h, old.shape[1]), min(w, old.shape[2])
            self._drawn[:, :hh, :ww] = old[:1, :hh, :ww]
        if self.kind() != "typed":
            self.error.setText("")
        self.sigChanged.emit()
