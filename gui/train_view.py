"""TrainView: the training dashboard. Pick a model (or build one from layers), a dataset and
the hyper-parameters; Start, Pause, Resume, Stop, Reset or Step one batch at a time;
change the learning rate while it runs; watch the loss and accuracy curves, the feature
maps of a probe image, the filters, the gradient sizes, the probe's probabilities and
the confusion matrix; compare finished runs; save and load checkpoints and sessions;
export to PyTorch; open a conv layer's real kernel and input in the Convolution lab; and,
in the Inside tab, a clicked cell's neuron and receptive field, the optimizer's update of
a weight, a gradient check and the probe's softmax worked out (gui/inside_view.py).

This widget only draws and forwards the user's actions: what they do is
`TrainController`'s (the state machine, the run and its worker thread, the data, the
file actions). The names tests and the main window use (`start`, `state`, `model`,
`save_checkpoint` ...) are the controller's, reached through this view.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QScrollArea, QSizePolicy,
                               QSpinBox, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from .confusion import Confusion
from .controls import button, button_grid, control_column, error_label
from .curves import Curves, RunCurves
from .feature_maps import FeatureMaps
from .filters import Filters
from .grad_bars import GradBars
from .inside_view import InsideView
from .lab_bridge import conv_layers
from .probabilities import Probabilities
from .probe_picker import ProbePicker
from .session import Session
from .train_controller import TrainController
from .train_settings import TrainSettings
from .worker import Refresh

# what the view hands on to its controller unchanged
FORWARDED = ("state", "model", "run", "train_set", "val_set", "classes", "input_shape", "probe_image",
             "probe_label", "architecture", "start", "step", "train_steps", "pause", "resume", "stop", "reset",
             "shutdown", "is_training", "label", "param_count", "model_copy", "predictor", "evaluate_now",
             "save_checkpoint", "load_checkpoint", "export", "save_session", "open_session", "set_probe",
             "load_probe_file")


class TrainView(QWidget):
    sigStateChanged = Signal(str)
    sigModelChanged = Signal()       # another model, or its weights moved on (at most a few times a second)
    sigRunFinished = Signal(str)     # 'finished', 'stopped', 'diverged' or 'failed'
    sigStepInLab = Signal(dict)      # keyword arguments of ConvLab.load_layer

    def __init__(self, parent: QWidget | None = None, refresh: Refresh | None = None) -> None:
        super().__init__(parent)
        self.settings = TrainSettings()
        self.controller = TrainController(self.settings.session, refresh)
        self.start_button = button("Start", "Train a new run (or continue a loaded checkpoint)", self.start)
        self.pause_button = button("Pause", "Pause after the current batch", self.pause)
        self.resume_button = button("Resume", "Go on training", self.resume)
        self.stop_button = button("Stop", "End the run after the current batch (it stays listed)", self.stop)
        self.reset_button = button("Reset", "Throw the run away and start again from fresh weights", self.reset)
        self.step_button = button("Step", "Train on one batch, then pause", self.step)
        self.start_button.setStyleSheet("font-weight: bold")
        self.save_button = button("Save checkpoint…", "Weights, optimizer, counters and history", self._save_dialog)
        self.load_button = button("Load checkpoint…", "Continue or inspect a saved run", self._load_dialog)
        self.export_button = button("Export for PyTorch…", "model.py with the architecture, and the weights",
                                    self._export_dialog)
        self.save_session_button = button("Save session…", "These settings as a JSON file", self._save_session_dialog)
        self.open_session_button = button("Open session…", "Settings from a JSON file", self._open_session_dialog)
        self.evaluate_button = button("Evaluate now", "Confusion matrix of the model as it is now", self.evaluate_now)
        self.live = QLabel("Ready: press Start (or Step to train one batch at a time).")
        self.live.setStyleSheet("font-weight: bold")
        self.live.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # no re-layout per update
        self.message = error_label(bold=True)

        self.curves = Curves()
        self.probabilities = Probabilities()
        self.confusion = Confusion()
        self.picker = ProbePicker()
        self.feature_maps = FeatureMaps()
        self.filters = Filters()
        self.grad_bars = GradBars()
        self.lab_layer = QComboBox()
        self.lab_filter = QSpinBox()
        self.lab_channel = QComboBox()
        self.lab_button = button("Open in lab", "Open the Convolution lab on this layer's current "
                                 "kernel and its real input for the probe image", self._lab_clicked)
        self.lab_layer.currentIndexChanged.connect(self._lab_layer_changed)
        self._kinds: dict[str, str] = {}
        self.inside = InsideView(self.controller, self.feature_maps)
        self._build_layout()
        self._connect()
        self.controller.reload()

    def __getattr__(self, name: str) -> Any:
        # only reached for names the view does not have itself
        if name in FORWARDED:
            return getattr(self.__dict__["controller"] if "controller" in self.__dict__ else None, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def refresh(self) -> Refresh:
        return self.controller.refresh

    @refresh.setter
    def refresh(self, value: Refresh) -> None:
        self.controller.refresh = value

    # ------------------------------------------------------------ layout and wiring
    def _build_layout(self) -> None:
        scroll = control_column(
            self.settings,
            button_grid([self.start_button, self.pause_button, self.resume_button, self.step_button,
                         self.stop_button, self.reset_button], 3),
            button_grid([self.save_button, self.load_button, self.export_button, self.evaluate_button,
                         self.save_session_button, self.open_session_button], 2),
            self.message)
        top = QSplitter()
        for w in (self.curves, self.probabilities, self.confusion):
            top.addWidget(w)
        top.setSizes([560, 230, 260])
        maps = QWidget()
        ml = QVBoxLayout(maps)
        ml.setContentsMargins(0, 0, 0, 0)
        probe_row = QHBoxLayout()
        probe_row.addWidget(QLabel("Probe:"))
        picker_scroll = QScrollArea()  # the thumbnails scroll rather than widen the window
        picker_scroll.setWidget(self.picker)
        picker_scroll.setWidgetResizable(True)
        picker_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        picker_scroll.setFixedHeight(self.picker.sizeHint().height() + 16)
        picker_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        probe_row.addWidget(picker_scroll, 1)
        ml.addLayout(probe_row)
        ml.addWidget(self.feature_maps, 1)
        filters_tab = QWidget()
        fl = QVBoxLayout(filters_tab)
        fl.setContentsMargins(2, 2, 2, 2)
        fl.addWidget(self.filters, 1)
        fl.addLayout(self._lab_row())
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(filters_tab, "Filters")
        self.side_tabs.addTab(self.grad_bars, "Gradients")
        self.side_tabs.addTab(self.inside, "Inside")
        self.side_tabs.setTabToolTip(2, "A neuron worked out (click a feature-map cell), the optimizer's update "
                                        "of a weight, a gradient check, softmax and cross-entropy")
        bottom = QSplitter()
        bottom.addWidget(maps)
        bottom.addWidget(self.side_tabs)
        bottom.setSizes([600, 450])
        rows = QSplitter(Qt.Orientation.Vertical)
        rows.addWidget(top)
        rows.addWidget(bottom)
        rows.setSizes([330, 470])
        right = QVBoxLayout()
        right.addWidget(self.live)
        right.addWidget(rows, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addLayout(right, 1)

    def _lab_row(self) -> QGridLayout:
        row = QGridLayout()  # two rows, so a narrow window still fits
        row.addWidget(QLabel("Step live:"), 0, 0)
        row.addWidget(self.lab_layer, 0, 1)
        row.addWidget(QLabel("filter"), 0, 2)
        row.addWidget(self.lab_filter, 0, 3)
        row.addWidget(QLabel("input"), 1, 0)
        row.addWidget(self.lab_channel, 1, 1)
        row.addWidget(self.lab_button, 1, 2, 1, 2)
        self.lab_layer.setToolTip("Conv layer to step in the Convolution lab")
        self.lab_filter.setToolTip("Which filter (output channel) of that layer")
        self.lab_channel.setToolTip("Which input channel(s): all of them when there are at most three")
        for combo in (self.lab_layer, self.lab_channel):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(5)
        return row

    def _connect(self) -> None:
        c = self.controller
        self.settings.sigArchitectureChanged.connect(self._settings_changed)
        self.settings.sigLrChanged.connect(c.set_lr)
        self.picker.sigChosen.connect(c.set_probe)
        self.picker.sigFileChosen.connect(c.load_probe_file)
        self.filters.sigLayerClicked.connect(self.step_in_lab)
        self.feature_maps.sigCellClicked.connect(lambda *_: self.side_tabs.setCurrentWidget(self.inside))
        wiring = (
            (c.sigStateChanged, self._state_changed), (c.sigSettings, self._show_settings),
            (c.sigDataChanged, self._data_changed), (c.sigModelReplaced, self._model_replaced),
            (c.sigPictures, self._show_probe), (c.sigWeights, self._show_weights),
            (c.sigRunStarted, self.curves.start_run), (c.sigEpochs, self.curves.set_epochs),
            (c.sigRunLoaded, lambda name, params, history:
                self.curves.show_run(RunCurves.from_history(name, params, history))),
            (c.sigSteps, self._show_steps), (c.sigEpoch, lambda m: self.curves.add_epoch(m.epoch, m.val_loss,
                                                                                         m.val_accuracy)),
            (c.sigConfusion, self._show_confusion), (c.sigPaused, self._show_paused),
            (c.sigRunEnded, lambda status, keep: self.curves.finish_run(status) if keep else None),
            (c.sigLive, self.live.setText), (c.sigMessage, self.message.setText),
            # the view's own signals, for the main window
            (c.sigModelChanged, self.sigModelChanged), (c.sigRunFinished, self.sigRunFinished),
            (c.sigStepInLab, self.sigStepInLab))
        for signal, slot in wiring:
            signal.connect(slot)

    # ------------------------------------------------------------ drawing what the controller says
    def _settings_changed(self) -> None:
        if self.controller.state == "idle":
            self.controller.reload()

    def _show_settings(self, s: Session) -> None:
        self.settings.blockSignals(True)  # the controller loads what the settings say itself
        try:
            self.settings.apply(s)
        finally:
            self.settings.blockSignals(False)

    def _data_changed(self, probe: int) -> None:
        c = self.controller
        images = [c.val_set[i][0] for i in c.samples]
        labels = [int(c.val_set[i][1]) for i in c.samples]
        self.picker.set_samples(images, labels, c.classes, probe)
        self.settings.editor.blockSignals(True)  # the data's shape is an input of the editor, not an edit
        self.settings.editor.set_input(c.input_shape, len(c.classes))
        self.settings.editor.blockSignals(False)

    def _model_replaced(self) -> None:
        model = self.controller.model
        if model is None:  # pictures of no model would mislead
            for view in (self.feature_maps, self.filters):
                view.clear()
            self.probabilities.clear_bars()
        else:
            self._kinds = {n: type(m).__name__ for n, m in model.named_modules() if n}
            self.grad_bars.clear_bars()
        self._fill_lab_layers()
        self._update_buttons()

    def _show_probe(self, step: int | None, acts: dict[str, np.ndarray]) -> None:
        c = self.controller
        self.feature_maps.set_activations(c.probe_image, acts, self._kinds, step, classes=c.classes)
        self.probabilities.set_logits(acts["output"][0], c.classes, c.probe_label)

    def _show_weights(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.filters.set_params(params)
        if grads:
            self.grad_bars.set_grads(grads)

    def _show_steps(self, steps: list[dict[str, Any]]) -> None:
        self.curves.add_steps(steps)
        m = steps[-1]
        self.live.setText(f"epoch {m['epoch']}/{self.controller.run.epochs} · batch {m['batch']}/{m['batches']} · "
                          f"loss {m['loss']:.4f} · batch accuracy {m['accuracy']:.0%} · "
                          f"{m['images_per_s']:,.0f} img/s · {m['elapsed']:.1f} s · lr {m['lr']:g}")

    def _show_paused(self, step: int) -> None:
        self.live.setText(self.live.text().split(" · lr")[0] + f" · paused after step {step}")

    def _show_confusion(self, matrix: np.ndarray | None, title: str) -> None:
        if matrix is None:
            self.confusion.clear_matrix()
        else:
            self.confusion.set_matrix(matrix, self.controller.classes, title)

    def _state_changed(self, state: str) -> None:
        self.settings.set_architecture_enabled(state == "idle")
        self._update_buttons()
        self.sigStateChanged.emit(state)

    def _update_buttons(self) -> None:
        c = self.controller
        s, ready = c.state, c.model is not None
        self.start_button.setEnabled(s == "idle" and ready)
        self.start_button.setText("Continue" if c.loaded else "Start")
        self.pause_button.setEnabled(s == "running")
        self.resume_button.setEnabled(s in ("paused", "pausing"))
        self.step_button.setEnabled((s == "idle" and ready) or s == "paused")
        self.stop_button.setEnabled(s in ("running", "pausing", "paused"))
        for b in (self.save_button, self.evaluate_button):
            b.setEnabled(s in ("idle", "paused") and ready)
        self.export_button.setEnabled(ready)
        self.load_button.setEnabled(s == "idle")
        self.open_session_button.setEnabled(s == "idle")
        self.lab_button.setEnabled(ready and self.lab_layer.count() > 0)

    # ------------------------------------------------------------ the Convolution lab
    def _fill_lab_layers(self) -> None:
        self.lab_layer.blockSignals(True)
        self.lab_layer.clear()
        for name, shape in conv_layers(self.controller.model):
            self.lab_layer.addItem(name, shape)
        self.lab_layer.blockSignals(False)
        self._lab_layer_changed()

    def _lab_layer_changed(self) -> None:
        shape = self.lab_layer.currentData()
        self.lab_channel.clear()
        if shape is not None:
            filters, channels = shape[0], shape[1]
            self.lab_filter.setRange(0, filters - 1)
            if channels <= 3:
                self.lab_channel.addItem("all", -1)
            for c in range(channels):
                self.lab_channel.addItem(f"channel {c}", c)
        self._update_buttons()

    def _lab_clicked(self) -> None:
        self.step_in_lab(self.lab_layer.currentText(), self.lab_filter.value(), self.lab_channel.currentData())

    def step_in_lab(self, layer: str, index: int, channel: int | None = None):
        """Open filter `index` of conv layer `layer` in the lab (sigStepInLab, once the
        training thread has read it): channel None or -1 for all input channels."""
        i = self.lab_layer.findText(layer)
        if i >= 0:
            self.lab_layer.setCurrentIndex(i)
            self.lab_filter.setValue(index)
        return self.controller.step_in_lab(layer, index, None if channel == -1 else channel)

    # ------------------------------------------------------------ file dialogs
    def _dialog(self, job, *args) -> bool:
        """job(*args); its error in the message line, or that line cleared: an old error must
        not sit beside a later success."""
        try:
            job(*args)
        except (ValueError, RuntimeError, OSError, KeyError) as e:
            self.message.setText(str(e))
            return False
        self.message.setText("")
        return True

    def _written(self, path: str | Path, what: str) -> None:
        """Say `what` was saved only when the file is there and not empty."""
        p = Path(path)
        if p.is_file() and p.stat().st_size > 0:
            self.live.setText(f"saved {what} {p}")
        else:
            self.message.setText(f"{what} {p} was not written")

    def _save_checkpoint_to(self, path: str) -> None:
        if self._dialog(self.save_checkpoint, path):
            self._written(path, "checkpoint")

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", "checkpoint.npz", "Checkpoints (*.npz)")
        if path:
            self._save_checkpoint_to(path)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load checkpoint", "", "Checkpoints (*.npz);;All files (*)")
        if path:
            self._dialog(self.load_checkpoint, path)

    def _export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export for PyTorch into")
        if folder:
            self._dialog(self.export, folder)  # the controller names the files it wrote, or raises

    def _save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", "session.json", "Sessions (*.json)")
        if path and self._dialog(self.save_session, path):
            self._written(path, "session")

    def _open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", "", "Sessions (*.json)")
        if path:
            self._dialog(self.open_session, path)

    # ------------------------------------------------------------ Qt
    def closeEvent(self, event) -> None:
        self.controller.shutdown()
        super().closeEvent(event)
