"""Curves: training and validation loss and accuracy against epochs, and finished runs
kept in a list to overlay on the same axes (with their parameter counts), so two
models trained on the same data can be compared at a glance.

The x axis counts epochs (step k of n in epoch e sits at e - 1 + k/n), which lines up
runs with different batch sizes. The legend is a wrapped line below the plots, never on
them: a long run name inside the plot covered the curves and pushed the rest off it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import html

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout,
                               QWidget)

PALETTE = [(142, 68, 173), (39, 174, 96), (192, 57, 43), (22, 160, 133), (211, 84, 0), (44, 62, 80),
           (241, 196, 15), (127, 140, 141)]
TRAIN, SMOOTH, VAL = (160, 190, 225), (31, 97, 171), (230, 126, 34)
SMOOTHING = 0.9  # exponential moving average of the per-batch values
NAME_CHARS = 60  # a compared run's name in the legend is cut here (the tooltip has it whole)


@dataclass
class RunCurves:
    """One run's points; `label` and `params` name it in the comparison."""

    label: str = ""
    params: int = 0
    x: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    acc: list[float] = field(default_factory=list)
    smooth_loss: list[float] = field(default_factory=list)
    smooth_acc: list[float] = field(default_factory=list)
    val_x: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    status: str = ""

    def add_step(self, x: float, loss: float, acc: float) -> None:
        self.x.append(x)
        self.loss.append(loss)
        self.acc.append(acc)
        for raw, smooth in ((loss, self.smooth_loss), (acc, self.smooth_acc)):
            smooth.append(raw if not smooth else SMOOTHING * smooth[-1] + (1 - SMOOTHING) * raw)

    def add_epoch(self, epoch: int, val_loss: float | None, val_acc: float | None) -> None:
        if val_loss is not None:
            self.val_x.append(float(epoch))
            self.val_loss.append(val_loss)
            self.val_acc.append(val_acc if val_acc is not None else float("nan"))

    @property
    def name(self) -> str:
        val = f" · val {self.val_acc[-1]:.1%}" if self.val_acc else ""
        return f"{self.label} · {self.params:,} params{val}" + (f" ({self.status})" if self.status not in
                                                                 ("", "finished") else "")

    @classmethod
    def from_history(cls, label: str, params: int, history: dict[str, Any]) -> "RunCurves":
        """Rebuild the curves of a saved run (`History.to_dict()`, e.g. from a checkpoint)."""
        run = cls(label, params)
        steps = history.get("steps", [])
        per_epoch: dict[int, int] = {}
        for s in steps:
            per_epoch[s["epoch"]] = per_epoch.get(s["epoch"], 0) + 1
        n_full = max(per_epoch.values()) if per_epoch else 1
        seen: dict[int, int] = {}
        for s in steps:
            e = s["epoch"]
            seen[e] = seen.get(e, 0) + 1
            run.add_step(e - 1 + seen[e] / n_full, s["loss"], s["accuracy"])
        for e in history.get("epochs", []):
            run.add_epoch(e["epoch"], e.get("val_loss"), e.get("val_accuracy"))
        return run


class Curves(QWidget):
    """Loss and accuracy plots plus the list of finished runs (tick one to overlay it)."""

    sigRunsChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.current = RunCurves()
        self.finished: list[RunCurves] = []
        self.loss_plot = self._plot("loss", "cross-entropy loss")
        self.acc_plot = self._plot("accuracy", "accuracy")
        self._epochs = 1
        self._loss_top = 0.0
        self._lines: dict[str, pg.PlotDataItem] = {}
        for key, plot, pen, name in (
                ("loss", self.loss_plot, pg.mkPen(TRAIN, width=1), None),
                ("smooth_loss", self.loss_plot, pg.mkPen(SMOOTH, width=2), "train (smoothed)"),
                ("val_loss", self.loss_plot, pg.mkPen(VAL, width=2), "validation"),
                ("acc", self.acc_plot, pg.mkPen(TRAIN, width=1), None),
                ("smooth_acc", self.acc_plot, pg.mkPen(SMOOTH, width=2), None),
                ("val_acc", self.acc_plot, pg.mkPen(VAL, width=2), None)):
            symbol = dict(symbol="o", symbolSize=6, symbolBrush=VAL, symbolPen=None) if key.startswith("val") else {}
            item = plot.plot([], [], pen=pen, name=name, **symbol)
            if not key.startswith("val"):
                item.setDownsampling(auto=True, method="mean")
                item.setClipToView(True)
            self._lines[key] = item
        self._overlays: list[tuple[pg.PlotWidget, pg.PlotDataItem]] = []

        self.runs = QListWidget()
        self.runs.setToolTip("Finished runs: tick one to draw its curves beside the current run")
        self.runs.setMaximumHeight(58)
        self.runs.itemChanged.connect(self._redraw_overlays)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setStyleSheet("font-size: 8pt")
        self.clear_button = QPushButton("Forget runs")
        self.clear_button.clicked.connect(self.forget_runs)
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        below = QHBoxLayout()
        label = QLabel("Compare:")
        label.setAlignment(Qt.AlignmentFlag.AlignTop)
        below.addWidget(label)
        below.addWidget(self.runs, 1)
        below.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(plots, 1)
        layout.addWidget(self.legend)
        layout.addLayout(below)
        self._draw_legend()

    @staticmethod
    def _plot(title: str, ylabel: str) -> pg.PlotWidget:
        p = pg.PlotWidget(background="w")
        p.plotItem.setTitle(title, size="9pt")
        p.setLabel("bottom", "epoch")
        p.setMenuEnabled(False)
        p.hideButtons()
        p.disableAutoRange()  # ranges are set by hand, so the axes redraw only when they change
        return p

    # ------------------------------------------------------------ the current run
    def start_run(self, label: str, params: int, epochs: int = 1) -> None:
        self.current = RunCurves(label, params)
        self._epochs = max(1, epochs)
        self._loss_top = 0.0
        self._draw_current()

    def set_epochs(self, epochs: int) -> None:
        """The x axis spans this many epochs (a continued run may need more)."""
        self._epochs = max(1, epochs)
        self._fit_ranges()

    def show_run(self, run: RunCurves) -> None:
        """Show a run's points as the current one (e.g. a loaded checkpoint's history)."""
        self.current = run
        self._epochs = max([1] + [round(v) for v in run.x[-1:]])
        self._loss_top = 0.0
        self._draw_current()

    def add_steps(self, steps: Iterable[dict[str, Any]]) -> None:
        for m in steps:
            self.current.add_step(m["epoch"] - 1 + m["batch"] / m["batches"], m["loss"], m["accuracy"])
        self._draw_current()

    def add_epoch(self, epoch: int, val_loss: float | None, val_acc: float | None) -> None:
        self.current.add_epoch(epoch, val_loss, val_acc)
        self._draw_current()

    def point_count(self) -> int:
        return len(self.current.x)

    def _fit_ranges(self) -> None:
        runs = [self.current] + [self.finished[i] for i in self.compared()]
        right = max([self._epochs] + [r.x[-1] for r in runs if r.x] + [r.val_x[-1] for r in runs if r.val_x])
        tops = [max(r.loss + r.val_loss) for r in runs if r.x]
        top = max(tops) if tops else 2.5  # about ln(10), where ten classes start
        self.loss_plot.setXRange(0, right, padding=0.02)
        self.acc_plot.setXRange(0, right, padding=0.02)
        self.acc_plot.setYRange(0, 1, padding=0.02)
        if top > self._loss_top or top < 0.5 * self._loss_top:  # rarely: the axis is redrawn
            self._loss_top = top * 1.1
            self.loss_plot.setYRange(0, self._loss_top, padding=0)

    def _draw_current(self) -> None:
        self._fit_ranges()
        c = self.current
        for key in ("loss", "smooth_loss", "acc", "smooth_acc"):
            self._lines[key].setData(c.x, getattr(c, key))
        self._lines["val_loss"].setData(c.val_x, c.val_loss)
        self._lines["val_acc"].setData(c.val_x, c.val_acc)

    # ------------------------------------------------------------ finished runs
    def finish_run(self, status: str) -> RunCurves | None:
        """Keep the current run in the list of finished runs (if it took any step)."""
        if not self.current.x:
            return None
        self.current.status = status
        self.add_finished(self.current)
        return self.current

    def add_finished(self, run: RunCurves) -> None:
        self.finished.append(run)
        item = QListWidgetItem(run.name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Unchecked)
        colour = PALETTE[(len(self.finished) - 1) % len(PALETTE)]
        item.setForeground(pg.mkColor(colour))
        self.runs.addItem(item)
        self.sigRunsChanged.emit()

    def set_compared(self, indices: Iterable[int]) -> None:
        wanted = set(indices)
        self.runs.blockSignals(True)
        for i in range(self.runs.count()):
            self.runs.item(i).setCheckState(Qt.CheckState.Checked if i in wanted else Qt.CheckState.Unchecked)
        self.runs.blockSignals(False)
        self._redraw_overlays()

    def compared(self) -> list[int]:
        return [i for i in range(self.runs.count()) if self.runs.item(i).checkState() == Qt.CheckState.Checked]

    def forget_runs(self) -> None:
        self.finished.clear()
        self.runs.clear()
        self._redraw_overlays()
        self.sigRunsChanged.emit()

    def _redraw_overlays(self, *_: Any) -> None:
        for plot, item in self._overlays:
            plot.removeItem(item)
        self._overlays.clear()
        for i in self.compared():
            run = self.finished[i]
            colour = PALETTE[i % len(PALETTE)]
            dashed = pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine)
            marks = dict(pen=pg.mkPen(colour, width=1), symbol="s", symbolSize=6, symbolBrush=colour, symbolPen=None)
            self._overlays += [
                (self.loss_plot, self.loss_plot.plot(run.x, run.smooth_loss, pen=dashed, name=run.name)),
                (self.loss_plot, self.loss_plot.plot(run.val_x, run.val_loss, **marks)),
                (self.acc_plot, self.acc_plot.plot(run.x, run.smooth_acc, pen=dashed)),
                (self.acc_plot, self.acc_plot.plot(run.val_x, run.val_acc, **marks)),
            ]
        self._loss_top = 0.0
        self._fit_ranges()
        self._draw_legend()

    def legend_entries(self) -> list[tuple[str, tuple[int, int, int], bool]]:
        """(text, colour, dashed) of each line the plots draw, as the legend lists them."""
        entries = [("train (per batch)", TRAIN, False), ("train (smoothed)", SMOOTH, False), ("validation", VAL, False)]
        for i in self.compared():
            name = self.finished[i].name
            entries.append((name if len(name) <= NAME_CHARS else name[:NAME_CHARS - 1] + "…",
                            PALETTE[i % len(PALETTE)], True))
        return entries

    def _draw_legend(self) -> None:
        parts = []
        for text, (r, g, b), dashed in self.legend_entries():
            mark = "╍╍" if dashed else "━━"
            parts.append(f"<span style='color: rgb({r},{g},{b})'>{mark}</span>&nbsp;{html.escape(text)}")
        self.legend.setText(" &nbsp; ".join(parts))
        self.legend.setToolTip("\n".join(self.finished[i].name for i in self.compared()))
