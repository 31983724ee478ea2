"""Training, watched inline: a `fit` callback that draws a progress bar, the loss and accuracy
curves, feature maps of chosen layers for a probe image and the confusion matrix while `fit`
runs. It changes the values of widgets it displayed once (never clears and redraws the
cell's output) and at most every `every` seconds, so the notebook keeps up with any speed.

>>> mon = monitor(layers=["conv1", "conv2"], probe=val_images[0], classes=list("0123456789"))
>>> fit(model, loader, optimizer, epochs=1, val_loader=val, callbacks=[mon])   # doctest: +SKIP
"""
from __future__ import annotations

import base64
import html
import time
from typing import Any, Sequence

import ipywidgets as W
import numpy as np

from ..creation import tensor
from ..train import Callback, EpochMetrics, Run, StepMetrics
from .rich import grid, image_rgb, png_bytes, table, to_numpy


def _polyline(values: Sequence[float], x0: float, y0: float, w: float, h: float, lo: float, hi: float,
              count: int) -> str:
    pts = [(x0 + w * i / max(count - 1, 1), y0 + h - h * (v - lo) / ((hi - lo) or 1.0)) for i, v in enumerate(values)]
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)


def curve_svg(title: str, series: dict[str, tuple[Sequence[float], str]], count: int, lo: float | None = None,
              hi: float | None = None, w: int = 300, h: int = 150,
              points: tuple[str, Sequence[tuple[int, float]], str] | None = None) -> str:
    """A small line chart: each series (values, colour) drawn over `count` x positions, and
    optionally named dots at (x position, value) (e.g. the validation accuracy per epoch)."""
    vals = [v for s, _ in series.values() for v in s if np.isfinite(v)]
    lo = min(vals, default=0.0) if lo is None else lo
    hi = max(vals, default=1.0) if hi is None else hi
    pw, ph, left = w - 50, h - 40, 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             f'font-size="11"><text x="{left}" y="13" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{left}" y="20" width="{pw}" height="{ph}" fill="#fafbfc" stroke="#9aa5b1"/>',
             f'<text x="{left - 4}" y="26" text-anchor="end">{hi:.3g}</text>',
             f'<text x="{left - 4}" y="{20 + ph}" text-anchor="end">{lo:.3g}</text>']
    legend_x = left
    for name, (values, colour) in series.items():
        if len(values):
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                         f'points="{_polyline(values, left, 20, pw, ph, lo, hi, count)}"/>')
        parts.append(f'<text x="{legend_x}" y="{h - 6}" fill="{colour}">{html.escape(name)}</text>')
        legend_x += 8 + 7 * len(name)
    if points is not None:
        name, dots, colour = points
        for i, v in dots:
            x, y = _polyline([v], left + pw * i / max(count - 1, 1), 20, 0, ph, lo, hi, 1).split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="3.5" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x}" y="{h - 6}" fill="{colour}">● {html.escape(name)}</text>')
    return "".join(parts) + "</svg>"


def confusion_html(confusion: np.ndarray, classes: Sequence[str]) -> str:
    """confusion[true, predicted] as a table, each cell shaded by its share of its row."""
    rows = confusion.sum(1, keepdims=True).clip(min=1)
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in classes) + "</tr>"
    body = []
    for i, row in enumerate(confusion):
        cells = []
        for j, n in enumerate(row):
            share = n / rows[i, 0]
            colour = f"rgba(46,134,87,{share:.2f})" if i == j else f"rgba(192,57,43,{min(1.0, 3 * share):.2f})"
            cells.append(f"<td style='background:{colour};text-align:right;padding:1px 5px'>{n}</td>")
        body.append(f"<tr><th>{html.escape(str(classes[i]))}</th>{''.join(cells)}</tr>")
    return ("<table style='border-collapse:collapse;font-family:monospace;font-size:11px'>"
            "<caption style='text-align:left'><b>confusion matrix</b> (validation)</caption>"
            f"{head}{''.join(body)}</table>")


def maps_html(activations: dict[str, np.ndarray], layers: Sequence[str], max_maps: int) -> str:
    """The probe image's feature maps, one row of tiles per layer (signed maps in the diverging map)."""
    rows = []
    for name in layers:
        a = activations.get(name)
        if a is None or a.ndim != 4:
            continue
        maps = a[0, :max_maps]
        tiles = [image_rgb(m) for m in maps]
        scale = max(1, 56 // max(maps.shape[1], 1))
        data = base64.b64encode(png_bytes(_pil(grid(tiles, max_maps, scale)))).decode()
        part = f", the first {len(maps)}" if len(maps) < a.shape[1] else ""
        rows.append(f"<div><code>{html.escape(name)}</code> {list(a.shape[1:])}{part}<br>"
                    f"<img src='data:image/png;base64,{data}' style='image-rendering:pixelated'></div>")
    return "".join(rows)


def _pil(array: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(array)


class Monitor(Callback):
    """Draws the run while it trains (see the module's docstring). The numbers it keeps
    (`losses`, `accuracies`, `epochs`, `confusion`, `activations`) are the run's own."""

    def __init__(self, layers: Sequence[str] = (), probe: Any = None, classes: Sequence[str] | None = None,
                 every: float = 0.5, probes_per_epoch: int = 10, max_maps: int = 8, smooth: int = 20) -> None:
        self.probe_layers = list(layers)
        self.probe_images = None if probe is None else tensor(np.asarray(to_numpy(probe), np.float32).reshape(
            (1,) * (4 - np.ndim(to_numpy(probe))) + np.shape(to_numpy(probe))))
        self.classes, self.every, self.max_maps, self.smooth = classes, every, max_maps, smooth
        self.probes_per_epoch = probes_per_epoch
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self.epochs: list[EpochMetrics] = []
        self.confusion: np.ndarray | None = None
        self.activations: dict[str, np.ndarray] = {}
        self.draws = 0
        self._last, self._total, self._shown, self._text = 0.0, 1, False, ""
        self._step, self._epoch_ends = 0, []   # the run's step count; len(losses) at each epoch's end
        self.bar = W.IntProgress(value=0, min=0, max=1, description="training", bar_style="info",
                                 layout=W.Layout(width="360px"))
        self.label = W.HTML()
        self.curves = W.HTML()
        self.maps = W.HTML()
        self.matrix = W.HTML()
        self.widget = W.VBox([W.HBox([self.bar, self.label]), self.curves, W.HBox([self.maps, self.matrix])])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self._shown = True
        display(self.widget)

    # ----- fit's events
    def on_run_start(self, run: Run) -> None:
        batches = len(run.train_loader)
        self._total = max(1, run.epochs * batches)
        self.bar.max, self._step = self._total, run.step
        if self.probe_images is not None and self.probe_layers:
            self.probe_every = max(1, batches // max(1, self.probes_per_epoch))
        if not self._shown:
            self._ipython_display_()
        self.draw()

    def on_step_end(self, run: Run, m: StepMetrics) -> None:
        self._step = m.step
        self.losses.append(m.loss)
        self.accuracies.append(m.accuracy)
        self._text = (f"epoch {m.epoch}/{run.epochs} · batch {m.batch}/{m.batches} · loss {m.loss:.4f} · "
                      f"accuracy {100 * m.accuracy:.1f}% · {m.images_per_s:,.0f} img/s")
        if time.monotonic() - self._last >= self.every:
            self.draw()

    def on_probe(self, run: Run, activations: dict[str, np.ndarray]) -> None:
        self.activations = activations

    def on_epoch_end(self, run: Run, m: EpochMetrics) -> None:
        self.epochs.append(m)
        self._epoch_ends.append(len(self.losses))
        if m.confusion is not None:
            self.confusion = m.confusion
        val = "" if m.val_accuracy is None else f" · validation accuracy {100 * m.val_accuracy:.2f}%"
        self._text = f"epoch {m.epoch}/{run.epochs} done · train loss {m.train_loss:.4f}{val}"
        self.draw()

    def on_run_end(self, run: Run, status: str) -> None:
        self.bar.bar_style = {"finished": "success", "stopped": "warning"}.get(status, "danger")
        self.bar.description = status
        self.draw()

    # ----- drawing
    def _smoothed(self, values: list[float]) -> list[float]:
        if len(values) < 2:
            return values
        c = np.cumsum(np.insert(np.asarray(values, np.float64), 0, 0.0))
        k = np.minimum(np.arange(1, len(values) + 1), self.smooth)
        return ((c[1:] - c[np.arange(1, len(values) + 1) - k]) / k).tolist()

    def draw(self) -> None:
        """Push the current numbers into the widgets (fit calls this, throttled)."""
        self._last = time.monotonic()
        self.draws += 1
        n = len(self.losses)
        self.bar.value = min(self.bar.max, self._step)
        self.label.value = html.escape(self._text)
        count = max(n, 2)
        loss = curve_svg(f"loss (per step, mean of the last {self.smooth})",
                         {"train": (self._smoothed(self.losses), "#c0392b")}, count, lo=0.0)
        # each epoch's validation accuracy sits at the step that ended the epoch
        dots = [(self._epoch_ends[i] - 1, e.val_accuracy) for i, e in enumerate(self.epochs)
                if e.val_accuracy is not None]
        acc = curve_svg("accuracy", {"train": (self._smoothed(self.accuracies), "#2471a3")}, count, lo=0.0, hi=1.0,
                        points=("validation", dots, "#1e8449") if dots else None)
        self.curves.value = f"<div style='display:flex;gap:12px'>{loss}{acc}</div>"
        if self.activations:
            self.maps.value = maps_html(self.activations, self.probe_layers, self.max_maps)
        if self.confusion is not None:
            classes = self.classes or [str(i) for i in range(len(self.confusion))]
            self.matrix.value = confusion_html(self.confusion, classes)

    def summary(self) -> str:
        """The epochs as an HTML table (what the run's metrics table shows)."""
        rows = [(e.epoch, round(e.train_loss, 4), f"{100 * e.train_accuracy:.2f}%",
                 "-" if e.val_accuracy is None else f"{100 * e.val_accuracy:.2f}%") for e in self.epochs]
        return table(("epoch", "train loss", "train accuracy", "validation accuracy"), rows)


def monitor(layers: Sequence[str] = (), probe: Any = None, classes: Sequence[str] | None = None,
            every: float = 0.5, **options: Any) -> Monitor:
    """A callback for `cnnlab.train.fit` that draws the run live in the notebook.

    Args:
        layers: module names (as in `model.named_modules()`) whose feature maps to show.
        probe: one image (C, H, W) whose feature maps are drawn (None: no maps).
        classes: names for the confusion matrix's rows and columns.
        every: the most often, in seconds, the widgets are redrawn while steps run.
        options: probes_per_epoch, max_maps (maps per layer), smooth (steps in the running mean).
    """
    return Monitor(layers, probe, classes, every, **options)
