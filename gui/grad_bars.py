"""GradBars: how large each layer's gradient is (root mean square over its weights and
biases), on a log scale — vanishing or exploding gradients show at once."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget


def layer_rms(grads: dict[str, np.ndarray]) -> dict[str, float]:
    """{layer name: RMS of all its parameters' gradients}, in the order first seen."""
    sums: dict[str, list[float]] = {}
    for name, g in grads.items():
        layer = name.rsplit(".", 1)[0] if "." in name else name
        s = sums.setdefault(layer, [0.0, 0.0])
        s[0] += float(np.square(g, dtype=np.float64).sum())
        s[1] += g.size
    return {k: (v[0] / max(v[1], 1)) ** 0.5 for k, v in sums.items()}


class GradBars(pg.PlotWidget):
    """`set_grads(grads)`; `values` holds the last {layer: RMS}."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.values: dict[str, float] = {}
        self._names: list[str] = []
        self._span: tuple[float, float] = (0.0, 0.0)
        self.plotItem.setTitle("gradient size per layer (RMS, log scale)", size="9pt")
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.invertY(True)
        self.getAxis("left").setStyle(autoExpandTextSpace=True)
        self.bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.7, brush=(41, 128, 185))
        self.addItem(self.bars)

    def set_grads(self, grads: dict[str, np.ndarray]) -> None:
        self.values = layer_rms(grads)
        if not self.values:
            return
        names = list(self.values)
        logs = np.log10(np.maximum(np.array([self.values[n] for n in names]), 1e-12))
        lo = np.floor(logs.min()) - 0.5
        hi = max(np.ceil(logs.max()), lo + 1.5)
        if names != self._names:
            self._names = names
            self.getAxis("left").setTicks([[(i, n) for i, n in enumerate(names)]])
            self.setYRange(-0.5, len(names) - 0.5, padding=0.02)
        if (lo, hi) != self._span:  # whole decades: the axis changes only when a gradient crosses one
            self._span = (lo, hi)
            self.getAxis("bottom").setTicks([[(e, f"1e{int(e)}") for e in np.arange(np.ceil(lo), hi + 1)]])
            self.setXRange(lo, hi, padding=0.02)
        self.bars.setOpts(x0=np.full(len(names), lo), y=np.arange(len(names)), width=logs - lo, height=0.7)

    def clear_bars(self) -> None:
        self.values = {}
        self.bars.setOpts(x0=[], y=[], width=[])
