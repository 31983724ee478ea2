"""SettingsPanel: the operation (convolution, transposed convolution or max/avg/sum
pooling), forward or backward, and stride, padding, dilation and (transposed
convolution only) output padding per axis.

The spin boxes deliberately allow a few invalid values (stride 0, padding -1,
dilation 0) so the lab can explain why they do not work."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QSpinBox, QWidget)

OPERATIONS = {"convolution": "conv", "transposed convolution": "transpose", "max pooling": "max",
              "avg pooling": "avg", "sum pooling": "sum"}
GRADIENTS = {"dL/dX (input)": "input", "dL/dW (weight)": "weight", "dL/db (bias)": "bias"}
UPSTREAM = {"dL/dY = small integers": "pattern", "dL/dY = ones": "ones"}


def _pair_spins(low: int, high: int, value: int, tip: str) -> tuple[QSpinBox, QSpinBox]:
    spins = []
    for axis in ("rows", "columns"):
        s = QSpinBox()
        s.setRange(low, high)
        s.setValue(value)
        s.setToolTip(f"{tip} ({axis})")
        spins.append(s)
    return spins[0], spins[1]


class SettingsPanel(QGroupBox):
    """Emits sigChanged on any change."""

    sigChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Operation", parent)
        self.operation = QComboBox()
        self.operation.addItems(list(OPERATIONS))
        self.direction = QComboBox()
        self.direction.addItems(["forward", "backward"])
        self.gradient = QComboBox()
        self.gradient.addItems(list(GRADIENTS))
        self.upstream = QComboBox()
        self.upstream.addItems(list(UPSTREAM))
        self.flip = QCheckBox("true convolution (kernel rotated 180°)")
        self.flip.setToolTip("Deep-learning 'convolution' is cross-correlation; tick to rotate the kernel first")
        self.stride = _pair_spins(0, 8, 1, "How far the window moves per step")
        self.padding = _pair_spins(-1, 8, 0, "Zero border added around the input")
        self.dilation = _pair_spins(0, 6, 1, "Spacing between kernel taps (1 = touching)")
        self.output_padding = _pair_spins(-1, 8, 0, "Transposed convolution: extra output cells at the bottom "
                                          "and right (smaller than the stride or the dilation)")
        self.channel = QSpinBox()
        self.channel.setRange(0, 0)
        self.channel.setToolTip("Pooling works per channel: the channel to trace")
        self.include_pad = QCheckBox("average counts padding cells")
        self.include_pad.setChecked(True)  # PyTorch's default
        self.include_pad.setToolTip("PyTorch's count_include_pad (default on): divide by the whole window, "
                                    "padding zeros included; off: divide by the real input cells only")

        form = QFormLayout(self)
        form.addRow("Operation", self.operation)
        form.addRow("Pass", self.direction)
        form.addRow("Gradient", self.gradient)
        form.addRow("Upstream", self.upstream)
        form.addRow(self.flip)
        for label, (a, b) in (("Stride", self.stride), ("Padding", self.padding), ("Dilation", self.dilation)):
            row = QHBoxLayout()
            row.addWidget(a)
            row.addWidget(QLabel("×"))
            row.addWidget(b)
            form.addRow(label, row)
        out_pad = QHBoxLayout()
        for widget in (self.output_padding[0], QLabel("×"), self.output_padding[1]):
            out_pad.addWidget(widget)
        form.addRow("Output padding", out_pad)
        self._output_padding_row = out_pad
        self._form = form
        form.addRow("Pool channel", self.channel)
        form.addRow(self.include_pad)

        for w in (self.operation, self.direction, self.gradient, self.upstream):
            w.currentIndexChanged.connect(self._changed)
        for s in (*self.stride, *self.padding, *self.dilation, *self.output_padding, self.channel):
            s.valueChanged.connect(self._changed)
        self.flip.toggled.connect(self._changed)
        self.include_pad.toggled.connect(self._changed)
        self._enable()

    # ------------------------------------------------------------ values
    def mode(self) -> str:
        """'conv', 'transpose', 'max', 'avg' or 'sum'."""
        return OPERATIONS[self.operation.currentText()]

    def backward(self) -> bool:
        """The backward pass is chosen (the transposed convolution is stepped forward only)."""
        return self.direction.currentText() == "backward" and self.mode() != "transpose"

    def wrt(self) -> str:
        return GRADIENTS[self.gradient.currentText()]

    def upstream_kind(self) -> str:
        return UPSTREAM[self.upstream.currentText()]

    def count_include_pad(self) -> bool:
        """Whether average pooling divides by the whole window, padding included (PyTorch's default)."""
        return self.include_pad.isChecked()

    def strides(self) -> tuple[int, int]:
        return self.stride[0].value(), self.stride[1].value()

    def paddings(self) -> tuple[int, int]:
        return self.padding[0].value(), self.padding[1].value()

    def dilations(self) -> tuple[int, int]:
        return self.dilation[0].value(), self.dilation[1].value()

    def output_paddings(self) -> tuple[int, int]:
        return self.output_padding[0].value(), self.output_padding[1].value()

    # ------------------------------------------------------------ setters
    def set_values(self, mode: str | None = None, backward: bool | None = None, wrt: str | None = None,
                   stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] | None = None,
                   dilation: int | tuple[int, int] | None = None, flip: bool | None = None,
                   count_include_pad: bool | None = None, output_padding: int | tuple[int, int] | None = None) -> None:
        """Change several settings with a single sigChanged."""
        self.blockSignals(True)
        try:
            if mode is not None:
                self.operation.setCurrentText(next(k for k, v in OPERATIONS.items() if v == mode))
            if backward is not None:
                self.direction.setCurrentText("backward" if backward else "forward")
            if wrt is not None:
                self.gradient.setCurrentText(next(k for k, v in GRADIENTS.items() if v == wrt))
            for spins, value in ((self.stride, stride), (self.padding, padding), (self.dilation, dilation),
                                 (self.output_padding, output_padding)):
                if value is not None:
                    a, b = (value, value) if isinstance(value, int) else value
                    spins[0].setValue(a)
                    spins[1].setValue(b)
            if flip is not None:
                self.flip.setChecked(flip)
            if count_include_pad is not None:
                self.include_pad.setChecked(count_include_pad)
        finally:
            self.blockSignals(False)
        self._changed()

    def set_channels(self, channels: int) -> None:
        """The input's channel count bounds the pooled channel (no sigChanged: the caller rebuilds)."""
        self.channel.blockSignals(True)
        self.channel.setRange(0, channels - 1)
        self.channel.blockSignals(False)

    def _enable(self) -> None:
        mode, back = self.mode(), self.backward()
        conv, transpose = mode == "conv", mode == "transpose"
        self.direction.setEnabled(not transpose)
        self.gradient.setEnabled(conv and back)
        self.upstream.setEnabled(back)
        self.flip.setEnabled(conv and not back)
        self.channel.setEnabled(mode in ("max", "avg", "sum"))
        self.include_pad.setEnabled(mode == "avg")
        for s in self.dilation:
            s.setEnabled(mode in ("conv", "max", "transpose"))
        self._form.setRowVisible(self._output_padding_row, transpose)

    def _changed(self) -> None:
        self._enable()
        self.sigChanged.emit()
