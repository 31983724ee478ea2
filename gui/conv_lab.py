"""ConvLab: the Convolution lab. Pick an input, a kernel and the settings; step through
the convolution, transposed convolution or pooling — forward or backward — one
multiply-add at a time. A transposed convolution shows its two readings side by side
(the scatter and the zero-inserted gather); "Matrix view" shows the same step as one
matrix product (im2col, or the transposed matrix).

Everything shown comes from `cnnlab.explain` traces (whose numbers are the engine's);
this widget only wires the editors, the player and the scene view together.

Keys (anywhere in the lab but a text field): Space play/pause, Left/Right step, Home/End,
+/- speed, F5 presenter mode (large fonts, high contrast, one plain sentence per step).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QSizePolicy, QStackedWidget, QVBoxLayout, QWidget)

from cnnlab import explain, render
from cnnlab.explain import presets
from cnnlab.explain.cellfit import exact
from cnnlab.explain.narrate import cell_label

from .colormap import ColourBar
from .controls import button_grid, control_column, error_label
from .input_editor import InputEditor
from .kernel_editor import KernelEditor
from .matrix_view import MatrixView
from .player import Player
from .scene_view import SceneView, scrolling
from .settings_panel import SettingsPanel
from .transpose_readings import SCATTER_TITLE, GatherReading, canvas_label, reading_title

# Ready-made set-ups: the README screenshots and `--view NAME`.
VIEWS: dict[str, dict[str, Any]] = {
    "forward": dict(size=(5, 5), kernel=("pattern", 3), mode="conv", stride=2, padding=1, step=5),
    "pool": dict(size=(7, 7), kernel=("pattern", 3), mode="max", stride=2, padding=1, step=5, seed=3,
                 high=10),
    "backward": dict(size=(5, 5), kernel=("sobel-x", 3), mode="conv", stride=2, padding=1, backward=True,
                     step=7),
    "rgb": dict(size=(8, 8), channels=3, source="picture: disk", kernel=("edge", 3), mode="conv", padding=1,
                step=20),
    "dilation": dict(size=(7, 7), kernel=("pattern", 3), mode="conv", dilation=2, step=4),
    "transpose": dict(size=(3, 3), kernel=("pattern", 3), mode="transpose", stride=2, padding=1, output_padding=1,
                      step=5),
    "im2col": dict(size=(5, 5), kernel=("pattern", 3), mode="conv", stride=2, padding=1, step=5, matrix=True),
    "transpose-matrix": dict(size=(3, 3), kernel=("pattern", 3), mode="transpose", stride=2, padding=1,
                             output_padding=1, step=5, matrix=True),
}


class ConvLab(QWidget):
    """The lab. Attributes the tests and the app use: `inputs`, `kernel`, `settings`,
    `player`, `view` (the SceneView), `arithmetic`, `derivation`, `problems`, `hover_info`,
    `gather` (the transposed convolution's second reading), `matrix` (the MatrixView, shown
    while `matrix_button` is checked) and `trace` (None while the settings are invalid)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trace: Any = None
        self._hover: tuple[str, int, int] | None = None
        self._batching = False

        self.inputs = InputEditor()
        self.kernel = KernelEditor()
        self.settings = SettingsPanel()
        self.export_button = QPushButton("Export GIF…")
        self.export_button.setToolTip("Save the animation as a GIF (one frame per step)")
        self.frames_button = QPushButton("Export PNG frames…")
        self.export_button.clicked.connect(self._export_gif_dialog)
        self.frames_button.clicked.connect(self._export_frames_dialog)

        self.view = SceneView()
        self.view_scroll = scrolling(self.view)
        self.scatter_title = reading_title(SCATTER_TITLE)
        self.gather = GatherReading()
        self.matrix = MatrixView()
        self.matrix_button = QPushButton("Matrix view (im2col)")
        self.matrix_button.setCheckable(True)
        self.matrix_button.setToolTip("The same steps as one matrix product: the unrolled input times the kernel "
                                      "row (im2col), or the transposed matrix for a transposed convolution")
        self.matrix_button.toggled.connect(self.set_matrix_view)
        self.colour_bar = ColourBar("each grid: its largest |value|")
        self.status = QLabel()
        self.arithmetic = QLabel()
        self.arithmetic.setWordWrap(True)
        self.arithmetic.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.arithmetic.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.arith_scroll = arith_scroll = QScrollArea()
        arith_scroll.setWidget(self.arithmetic)
        arith_scroll.setWidgetResizable(True)
        arith_scroll.setFixedHeight(76)
        self.plain = QLabel()  # the step in words, shown in presenter mode
        self.plain.setWordWrap(True)
        self.plain.setVisible(False)
        self.presenter_button = QPushButton("Presenter mode")
        self.presenter_button.setCheckable(True)
        self.presenter_button.setToolTip("Large fonts, high contrast and each step in one plain sentence (F5)")
        self.presenter_button.toggled.connect(self.set_presenter)
        self.derivation = QLabel()
        self.derivation.setStyleSheet("font-family: monospace; color: #34495e")
        self.derivation.setWordWrap(True)  # a long derivation wraps instead of widening the window
        self.derivation.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.problems = error_label(bold=True)
        self.hover_info = QLabel()
        self.hover_info.setStyleSheet("color: #8e1b8e")
        self.origin = QLabel()  # where the numbers came from, when a real layer was loaded
        self.origin.setWordWrap(True)
        self.origin.setStyleSheet("color: #1f618d")
        self.origin.setVisible(False)
        self.player = Player()

        self.controls = scroll = control_column(self.inputs, self.kernel, self.settings,
                                                button_grid([self.export_button, self.frames_button], 2))

        right = QVBoxLayout()
        right.addWidget(self.origin)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.matrix_button)
        top.addWidget(self.presenter_button)
        right.addLayout(top)
        right.addWidget(self._stage(), 1)  # the grids take the room that is left
        for part in (self.colour_bar, self.plain, arith_scroll, self.hover_info, self.derivation, self.problems,
                     self.player):
            right.addWidget(part)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addLayout(right, 1)

        self.inputs.sigChanged.connect(self.rebuild)
        self.kernel.sigChanged.connect(self.rebuild)
        self.settings.sigChanged.connect(self.rebuild)
        self.player.sigPositionChanged.connect(self._show)
        self.view.sigCellHovered.connect(self._hovered)
        self.view.sigHoverLeft.connect(self._unhovered)
        self.view.sigCellPainted.connect(self._painted)
        self.player.reset_button.clicked.connect(lambda: self._show(self.player.position))
        self._shortcuts()
        self._style_text(False)
        self.rebuild()

    # ------------------------------------------------------------ keys and presenter mode
    def _shortcuts(self) -> None:
        p = self.player
        speed = p.speed
        keys = ((Qt.Key.Key_Space, p.toggle), (Qt.Key.Key_Right, p.step_forward), (Qt.Key.Key_Left, p.step_back),
                (Qt.Key.Key_Home, p.reset), (Qt.Key.Key_End, p.to_end),
                (Qt.Key.Key_Plus, speed.stepUp), (Qt.Key.Key_Equal, speed.stepUp), (Qt.Key.Key_Minus, speed.stepDown),
                (Qt.Key.Key_F5, self.presenter_button.toggle))
        self.shortcuts = []
        for key, slot in keys:
            sc = QShortcut(QKeySequence(key), self)
            # text fields and spin boxes keep their keys (they claim them first); elsewhere in the lab these act
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
            self.shortcuts.append(sc)

    def presenter(self) -> bool:
        return self.presenter_button.isChecked()

    def set_presenter(self, on: bool) -> None:
        """Projector style: the controls fold away, big high-contrast text and grids, and
        one plain-language sentence explaining each step."""
        if self.presenter_button.isChecked() != on:
            self.presenter_button.setChecked(on)  # comes back here through toggled
            return
        self.controls.setVisible(not on)
        self.plain.setVisible(on)
        for view in (self.view, self.gather.view, self.matrix.view):
            view.set_presenter(on)
        self.colour_bar.set_point_size(13 if on else 9)
        self._style_text(on)
        self._show(self.player.position)

    def _style_text(self, big: bool) -> None:
        self.status.setStyleSheet(f"font-weight: bold; font-size: {20 if big else 13}px; color: #000")
        self.arithmetic.setStyleSheet(f"font-size: {22 if big else 15}px; font-family: monospace; color: #000")
        self.arith_scroll.setFixedHeight(120 if big else 76)
        self.plain.setStyleSheet("font-size: 24px; color: #000; background: #fff8d0; padding: 6px")
        self.player.setStyleSheet("font-size: 18px" if big else "")

    def _stage(self) -> QStackedWidget:
        """The grids (for a transposed convolution: both readings side by side) or the matrix view."""
        scatter = QWidget()
        column = QVBoxLayout(scatter)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.scatter_title)
        column.addWidget(self.view_scroll, 1)
        grids = QWidget()
        row = QHBoxLayout(grids)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(scatter, 2)
        row.addWidget(self.gather, 3)  # z is the bigger grid
        self.stage = QStackedWidget()
        self.stage.addWidget(grids)
        self.stage.addWidget(self.matrix)
        return self.stage

    def set_matrix_view(self, on: bool) -> None:
        """Show the steps as a matrix product instead of the grids (the player stays in step)."""
        if self.matrix_button.isChecked() != on:
            self.matrix_button.setChecked(on)  # comes back here through toggled
            return
        self.stage.setCurrentWidget(self.matrix if on else self.stage.widget(0))
        if on:
            self.matrix.set_trace(self.trace)
        self._show(self.player.position)

    def matrix_shown(self) -> bool:
        return self.matrix_button.isChecked()

    # ------------------------------------------------------------ queries
    @property
    def wrt(self) -> str:
        """Which gradient a conv backward trace shows ('input' otherwise)."""
        s = self.settings
        return s.wrt() if s.mode() == "conv" and s.backward() else "input"

    def step_count(self) -> int:
        return self.player.count

    def output_shape(self) -> tuple[int, int] | None:
        """The forward output's (rows, cols), None while the settings are invalid."""
        return self._check().out_shape

    # ------------------------------------------------------------ building
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Change many controls and rebuild once at the end."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self.rebuild()

    def _check(self) -> explain.Check:
        s, x = self.settings, self.inputs.array()
        if s.mode() == "transpose":
            return explain.check_conv_transpose2d(x.shape, self.kernel.kernel_size(), s.strides(), s.paddings(),
                                                  s.output_paddings(), s.dilations())
        if s.mode() == "conv":
            return explain.check_conv2d(x.shape, self.kernel.kernel_size(), s.strides(), s.paddings(), s.dilations())
        dil = s.dilations() if s.mode() == "max" else 1
        return explain.check_pool2d(x.shape, self.kernel.kernel_size(), s.strides(), s.paddings(), dil,
                                    mode=s.mode())

    def rebuild(self) -> None:
        """Recompute the trace from the controls; show the problems instead if invalid."""
        if self._batching:
            return
        x = self.inputs.array()
        c = x.shape[0]
        self.kernel.set_channels(c)
        self.settings.set_channels(c)
        s = self.settings
        self.kernel.set_weights_enabled(s.mode() in ("conv", "transpose"))
        transpose = s.mode() == "transpose"
        self.scatter_title.setVisible(transpose)
        self.view.paintable = {f"input{ch}" for ch in range(c)} if self.inputs.is_drawing() else set()
        check = self._check()
        self.derivation.setText(check.summary())
        self.trace = None
        if check.ok:
            try:
                self.trace = self._make_trace(x, check)
            except ValueError as e:  # the engine's own verdict, shown like ours
                check = explain.Check(None, check.derivations, (str(e),))
        self.problems.setText(check.message())
        self.gather.setVisible(transpose and self.trace is not None)
        if transpose and self.trace is not None:  # the equivalent convolution's recipe, with these numbers
            self.derivation.setText(check.summary() + "\ngather: " + explain.gather_recipe(self.trace))
        if self.matrix_shown():
            self.matrix.set_trace(self.trace)
        if self.trace is None:
            self.view.set_message("These settings have no output:\n\n" + check.message())
            self.player.set_count(0)
            self.arithmetic.setText("")
            self.status.setText("invalid settings")
            return
        self.player.set_count(explain.step_count(self.trace, self.wrt))
        self._show(self.player.position)

    def _make_trace(self, x: np.ndarray, check: explain.Check) -> Any:
        s, k = self.settings, self.kernel
        mode, back = s.mode(), s.backward()
        if mode == "transpose":
            return explain.conv_transpose2d_trace(x, k.weight(), k.bias_value() or None, s.strides(), s.paddings(),
                                                  s.output_paddings(), s.dilations())
        if mode == "conv":
            w, b = k.weight(), (k.bias_value() or None)
            if back:
                g = presets.upstream_gradient((1, *check.out_shape), s.upstream_kind())
                return explain.conv2d_backward_trace(x, w, g, b, s.strides(), s.paddings(), s.dilations())
            return explain.conv2d_trace(x, w, b, s.strides(), s.paddings(), s.dilations(), flip=s.flip.isChecked())
        dil = s.dilations() if mode == "max" else 1
        kw = dict(channel=s.channel.value(), count_include_pad=s.count_include_pad())
        if back:
            g = presets.upstream_gradient(check.out_shape, s.upstream_kind())
            return explain.pool2d_backward_trace(x, g, k.kernel_size(), s.strides(), s.paddings(), mode, dil, **kw)
        return explain.pool2d_trace(x, k.kernel_size(), s.strides(), s.paddings(), mode, dil, **kw)

    # ------------------------------------------------------------ showing
    def _show(self, position: int) -> None:
        if self.trace is None:
            return
        sc = explain.scene(self.trace, position, self.wrt)
        self.hover_info.setText("")
        if self._hover is not None:
            key, r, c = self._hover
            panel = next((p for p in sc.panels if p.key == key), None)
            if panel is None or not (0 <= r < panel.values.shape[0] and 0 <= c < panel.values.shape[1]):
                self._hover = None  # the grid changed under the pointer: no stale outline
            else:
                cells = explain.hover(sc, self.trace, key, r, c, wrt=self.wrt)
                self.hover_info.setText(self._describe_hover(sc, cells))
        self.view.set_scene(sc)
        self.status.setText(sc.status)
        self.plain.setText(sc.plain)
        self.arithmetic.setText(sc.caption or "Press play or step forward to begin.")
        if isinstance(self.trace, explain.ConvTransposeTrace):
            self.gather.show_step(self.trace, position, sc.panel("output").values[self.trace.output_region()])
        if self.matrix_shown():
            self.matrix.show_step(position)

    def _channel(self) -> int:
        t = self.trace
        return getattr(t, "channel", getattr(getattr(t, "forward", None), "channel", 0))

    def _describe_hover(self, sc: explain.Scene, cells: list[tuple[str, tuple[int, int]]]) -> str:
        """'input x[0,1,2] = -0.1008 connects to 4 cell(s): output[0,0], ...' with the exact value."""
        key, r, c = self._hover  # type: ignore[misc]
        panel, ch = sc.panel(key), self._channel()
        v = float(panel.values[r, c])

        def label(p: explain.Panel, a: int, b: int) -> str:
            if p.key == "output" and isinstance(self.trace, explain.ConvTransposeTrace):
                return canvas_label(self.trace, a, b)  # the scatter's canvas is shifted by the padding
            return cell_label(p, a, b, ch)

        text = label(panel, r, c) + ("" if np.isnan(v) else f" = {exact(v)}")
        others = [label(sc.panel(k), a, b) for k, (a, b) in cells if (k, (a, b)) != (key, (r, c))]
        names = list(dict.fromkeys(others))  # padding cells share one name
        if names:
            text += (f" · connects to {len(others)} cell(s): " + ", ".join(names[:12])
                     + (" …" if len(names) > 12 else ""))
        return text

    def _hovered(self, key: str, row: int, col: int) -> None:
        self._hover = (key, row, col)
        self._show(self.player.position)

    def _unhovered(self) -> None:
        self._hover = None
        self._show(self.player.position)

    def _painted(self, key: str, row: int, col: int, on: bool) -> None:
        pr, pc = self.settings.paddings()
        self.inputs.paint(row - max(pr, 0), col - max(pc, 0), on)

    # ------------------------------------------------------------ presets and export
    def apply_view(self, name: str, step: int | None = None) -> None:
        """Set up one of VIEWS (forward, pool, backward, rgb, dilation, transpose, im2col, transpose-matrix)."""
        if name not in VIEWS:
            raise KeyError(f"unknown view {name!r}; choose from {', '.join(VIEWS)}")
        v = VIEWS[name]
        with self.batch():
            self.inputs.set_source(v.get("source", "small integers"))
            self.inputs.set_size(*v["size"], v.get("channels", 1))
            self.inputs.set_integers(v.get("seed", 0), v.get("high", 4))
            self.kernel.set_kernel(*v["kernel"])
            self.settings.set_values(mode=v["mode"], backward=v.get("backward", False), wrt="input",
                                     stride=v.get("stride", 1), padding=v.get("padding", 0),
                                     dilation=v.get("dilation", 1), flip=False,
                                     output_padding=v.get("output_padding", 0))
        self.set_matrix_view(v.get("matrix", False))
        self.player.set_position(v.get("step", 0) if step is None else step)

    def load_layer(self, x: np.ndarray, weight: np.ndarray, bias: float = 0.0, stride=1, padding=0,
                   dilation=1, title: str = "", origin: str = "") -> None:
        """Step a real layer: input `x` (C, H, W), one filter's `weight` (C, kh, kw) and `bias`,
        with the layer's stride, padding and dilation (ints or pairs). The input is typed in
        exactly (shortest float32 digits), so the trace's output is the layer's own. `origin`
        (e.g. 'conv2 filter 5') names the kernel preset: 'from layer conv2 filter 5'."""
        x = np.asarray(x, np.float32)
        text = "\n\n".join("\n".join(" ".join(exact(v) for v in row) for row in ch) for ch in x)
        with self.batch():
            self.inputs.set_source("typed numbers")
            self.inputs.text.setPlainText(text)  # the size and channel controls follow the typed shape
            self.kernel.set_channels(x.shape[0])
            self.kernel.set_weights(np.asarray(weight, np.float32), origin=origin)
            self.kernel.bias.blockSignals(True)  # the batch rebuilds once at the end
            self.kernel.bias.setDecimals(max(self.kernel.bias.decimals(), 6))
            self.kernel.bias.setValue(float(bias))
            self.kernel.bias.blockSignals(False)
            self.settings.set_values(mode="conv", backward=False, stride=stride, padding=padding,
                                     dilation=dilation, flip=False)
        self.origin.setText(title)
        self.origin.setVisible(bool(title))
        self.player.set_position(0)

    def export(self, gif: str | Path | None = None, frames_dir: str | Path | None = None, fps: float | None = None) -> int:
        """Write the current trace as a GIF and/or PNG frames; returns the frame count."""
        if self.trace is None:
            return 0
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            frames = render.render_frames(self.trace, self.wrt)
            if gif:
                render.save_gif(frames, gif, fps or self.player.speed.value())
            if frames_dir:
                render.save_frames(frames, frames_dir)
        finally:
            QGuiApplication.restoreOverrideCursor()
        return len(frames)

    def _export_gif_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export GIF", "convolution.gif", "GIF (*.gif)")
        if path:
            self._report_export(lambda: self.export(gif=path), path)

    def _export_frames_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export PNG frames into")
        if folder:
            self._report_export(lambda: self.export(frames_dir=folder), folder)

    def _report_export(self, job, where: str) -> None:
        """Say how the export went: an error stays until a later export succeeds."""
        try:
            n = job()
        except (OSError, ValueError) as e:
            self.problems.setText(f"Export failed: could not write {where}: {e}")
            return
        if n == 0:
            self.problems.setText("Nothing exported: these settings have no output (the view says why).")
            return
        self.problems.setText("")
        self.status.setText(f"exported {n} frames to {where}")
