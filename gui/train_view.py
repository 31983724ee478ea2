"""TrainView: the training dashboard. Pick a model (or build one from layers), a dataset and
the hyper-parameters; Start, Pause, Resume, Stop, Reset or Step one batch at a time;
change the learning rate while it runs; watch the loss and accuracy curves, the feature
maps of a probe image, the filters, the gradient sizes, the probe's probabilities and
the confusion matrix; compare finished runs; save and load checkpoints and sessions;
export to PyTorch; open a conv layer's real kernel and input in the Convolution lab.

Training is `cnnlab.train.Run`, run by a TrainWorker in its own thread; this widget
only draws what the worker sends. It reads or saves the live model only while no step
can run (before the start, once the run has ended, or after the worker said it is
paused); while training runs it uses the worker's NumPy snapshots.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QSizePolicy, QSpinBox, QSplitter, QTabWidget, QVBoxLayout, QWidget)

import cnnlab
from cnnlab import data, models, nn, optim
from cnnlab.train import Run, evaluate, load_checkpoint, probe, resume, save_checkpoint

from .confusion import Confusion
from .curves import Curves, RunCurves
from .export import export_for_pytorch
from .feature_maps import FeatureMaps
from .filters import Filters
from .grad_bars import GradBars
from .probabilities import Probabilities
from .probe_picker import ProbePicker
from .session import Session, load_session, save_session
from .train_settings import TrainSettings
from .worker import Refresh, Snapshot, TrainWorker, state_arrays

_DATA: dict[tuple[str, bool, int], Any] = {}  # datasets are loaded once per process


def dataset(name: str, train: bool, seed: int = 0, limit: int = 0):
    """A dataset split by name (cached), cut to `limit` samples spread over it like `cnnlab train --limit`."""
    key = (name, train, seed)
    if key not in _DATA:
        _DATA[key] = data.get_dataset(name, train=train, seed=seed)
    ds = _DATA[key]
    if limit and limit < len(ds):
        ds = data.Subset(ds, np.unique(np.linspace(0, len(ds) - 1, limit).astype(int)))
    return ds


def make_optimizer(s: Session, params) -> optim.Optimizer:
    if s.optimizer == "sgd":
        return optim.SGD(params, lr=s.lr, momentum=s.momentum)
    if s.optimizer == "adamw":
        return optim.AdamW(params, lr=s.lr)
    return optim.Adam(params, lr=s.lr)


def _button(text: str, tip: str, slot) -> QPushButton:
    b = QPushButton(text)
    b.setToolTip(tip)
    b.clicked.connect(slot)
    return b


class TrainView(QWidget):
    """States: 'idle' (no run trains), 'running', 'pausing' (asked, the step in flight
    finishing), 'paused' (waiting between steps) and 'stopping'."""

    sigStateChanged = Signal(str)
    sigModelChanged = Signal()       # another model, or its weights moved on (at most a few times a second)
    sigRunFinished = Signal(str)     # 'finished', 'stopped', 'diverged' or 'failed'
    sigStepInLab = Signal(dict)      # keyword arguments of ConvLab.load_layer

    def __init__(self, parent: QWidget | None = None, refresh: Refresh | None = None) -> None:
        super().__init__(parent)
        self.refresh = refresh or Refresh()
        self.state = "idle"
        self.model: nn.Module | None = None
        self.run: Run | None = None          # the current (or last) run
        self.worker: TrainWorker | None = None
        self._pending: Run | None = None     # a run loaded from a checkpoint, not yet started
        self._fresh = True                   # self.model has never trained
        self._version = 0                    # bumped whenever the weights shown change
        self.architecture = 0                # bumped whenever another model is built or loaded
        self._state: dict[str, np.ndarray] = {}
        self._state_step = 0
        self._copy: tuple[int, nn.Module] | None = None
        self.train_set = self.val_set = None
        self.classes: list[str] = []
        self.input_shape: tuple[int, ...] = (1, 28, 28)
        self.probe_image = np.zeros(self.input_shape, np.float32)
        self.probe_label: int | None = None
        self._samples: list[int] = []
        self._data_key: tuple | None = None

        self.settings = TrainSettings()
        self.start_button = _button("Start", "Train a new run (or continue a loaded checkpoint)", self.start)
        self.pause_button = _button("Pause", "Pause after the current batch", self.pause)
        self.resume_button = _button("Resume", "Go on training", self.resume)
        self.stop_button = _button("Stop", "End the run after the current batch (it stays listed)", self.stop)
        self.reset_button = _button("Reset", "Throw the run away and start again from fresh weights", self.reset)
        self.step_button = _button("Step", "Train on one batch, then pause", self.step)
        self.start_button.setStyleSheet("font-weight: bold")
        self.save_button = _button("Save checkpoint…", "Weights, optimizer, counters and history", self._save_dialog)
        self.load_button = _button("Load checkpoint…", "Continue or inspect a saved run", self._load_dialog)
        self.export_button = _button("Export for PyTorch…", "model.py with the architecture, and the weights",
                                     self._export_dialog)
        self.save_session_button = _button("Save session…", "These settings as a JSON file", self._save_session_dialog)
        self.open_session_button = _button("Open session…", "Settings from a JSON file", self._open_session_dialog)
        self.evaluate_button = _button("Evaluate now", "Confusion matrix of the model as it is now",
                                       self.evaluate_now)
        self.live = QLabel("Ready: press Start (or Step to train one batch at a time).")
        self.live.setStyleSheet("font-weight: bold")
        self.live.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # no re-layout per update
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #8a1c1c; font-weight: bold")

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
        self.lab_button = _button("Open in lab", "Open the Convolution lab on this layer's current "
                                  "kernel and its real input for the probe image", self._lab_clicked)
        self.lab_layer.currentIndexChanged.connect(self._lab_layer_changed)
        self._build_layout()

        self.settings.sigArchitectureChanged.connect(self._settings_changed)
        self.settings.sigLrChanged.connect(self._lr_changed)
        self.picker.sigChosen.connect(self.set_probe)
        self.picker.sigFileChosen.connect(self.load_probe_file)
        self.filters.sigLayerClicked.connect(self.step_in_lab)
        self.reload()

    def _build_layout(self) -> None:
        controls = QWidget()
        left = QVBoxLayout(controls)
        left.addWidget(self.settings)
        grid = QGridLayout()
        for i, b in enumerate((self.start_button, self.pause_button, self.resume_button, self.step_button,
                               self.stop_button, self.reset_button)):
            grid.addWidget(b, i // 3, i % 3)
        left.addLayout(grid)
        files = QGridLayout()
        for i, b in enumerate((self.save_button, self.load_button, self.export_button, self.evaluate_button,
                               self.save_session_button, self.open_session_button)):
            files.addWidget(b, i // 2, i % 2)
        left.addLayout(files)
        left.addWidget(self.message)
        left.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFixedWidth(330)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        top = QSplitter()
        top.addWidget(self.curves)
        top.addWidget(self.probabilities)
        top.addWidget(self.confusion)
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
        lab_row = QGridLayout()  # two rows, so a narrow window still fits
        lab_row.addWidget(QLabel("Step live:"), 0, 0)
        lab_row.addWidget(self.lab_layer, 0, 1)
        lab_row.addWidget(QLabel("filter"), 0, 2)
        lab_row.addWidget(self.lab_filter, 0, 3)
        lab_row.addWidget(QLabel("input"), 1, 0)
        lab_row.addWidget(self.lab_channel, 1, 1)
        lab_row.addWidget(self.lab_button, 1, 2, 1, 2)
        self.lab_layer.setToolTip("Conv layer to step in the Convolution lab")
        self.lab_filter.setToolTip("Which filter (output channel) of that layer")
        self.lab_channel.setToolTip("Which input channel(s): all of them when there are at most three")
        for combo in (self.lab_layer, self.lab_channel):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(5)
        fl.addLayout(lab_row)
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(filters_tab, "Filters")
        self.side_tabs.addTab(self.grad_bars, "Gradients")
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

    # ------------------------------------------------------------ preparing a model
    def reload(self) -> None:
        """Load the chosen data and build fresh weights for the chosen model (only when idle)."""
        if self.state != "idle":
            return
        s = self.settings.session()
        self._pending, self.run = None, None
        self.message.setText("")
        try:
            self._load_data(s)
            self.model = self._build_model(s)
        except (ValueError, data.DataError, OSError) as e:
            self.model = None
            self.message.setText(str(e))
            for view in (self.feature_maps, self.filters):  # pictures of no model would mislead
                view.clear()
            self.probabilities.clear_bars()
            self._fill_lab_layers()
            self._update_buttons()
            return
        self._fresh = True
        self.curves.start_run("", 0)
        self.confusion.clear_matrix()
        self.grad_bars.clear_bars()
        self._model_replaced()

    def _load_data(self, s: Session) -> None:
        if self._data_key == (s.dataset, s.seed, s.limit):  # the same data: keep the probe too
            return
        self._data_key = None
        self.train_set = dataset(s.dataset, True, s.seed, s.limit)
        self.val_set = dataset(s.dataset, False, s.seed, s.limit)
        if not len(self.train_set):
            raise ValueError(f"{s.dataset} has no training images")
        self.classes = list(getattr(self.train_set, "classes", [])) or [str(i) for i in range(10)]
        self.input_shape = tuple(int(n) for n in self.train_set[0][0].shape)
        # one validation image per class (the first of each) to click as the probe
        first: dict[int, int] = {}
        for i in range(min(len(self.val_set), 2000)):
            label = int(self.val_set[i][1])
            first.setdefault(label, i)
            if len(first) >= min(len(self.classes), 12):
                break
        self._samples = [first[k] for k in sorted(first)]
        images = [self.val_set[i][0] for i in self._samples]
        self.picker.set_samples(images, sorted(first), self.classes, min(s.probe, len(images) - 1))
        self._set_probe_array(*self.val_set[self._samples[min(s.probe, len(self._samples) - 1)]])
        self.settings.editor.blockSignals(True)  # the data's shape is an input of the editor, not an edit
        self.settings.editor.set_input(self.input_shape, len(self.classes))
        self.settings.editor.blockSignals(False)
        self._data_key = (s.dataset, s.seed, s.limit)

    def _build_model(self, s: Session) -> nn.Module:
        cnnlab.manual_seed(s.seed)
        c, h, w = self.input_shape
        if s.model == "custom":
            problems = self.settings.editor.message()
            if problems:
                raise ValueError("The layer list does not fit the data:\n" + problems)
            return models.build_sequential(self.settings.editor.layers())
        if h != w:
            raise ValueError(f"the zoo models expect square images; {s.dataset} has {h}×{w}")
        return models.create(s.model, in_channels=c, num_classes=len(self.classes), input_size=h)

    def _model_replaced(self) -> None:
        self.architecture += 1
        self._version += 1
        self._state = state_arrays(self.model)
        self._show_model_pictures()
        self._fill_lab_layers()
        self._update_buttons()
        self.sigModelChanged.emit()

    def _settings_changed(self) -> None:
        if self.state == "idle":
            self.reload()

    def label(self) -> str:
        s = self.settings.session()
        name = "layers" if s.model == "custom" else s.model
        return f"{name} · {Path(s.dataset).name} · {s.optimizer} {s.lr:g}"

    def param_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters()) if self.model is not None else 0

    # ------------------------------------------------------------ the probe
    def _set_probe_array(self, image: np.ndarray, label: int | None) -> None:
        self.probe_image = np.asarray(image, np.float32)
        self.probe_label = None if label is None else int(label)

    def set_probe(self, index: int) -> None:
        """Use sample `index` of the picker's row as the probe."""
        self._set_probe_array(*self.val_set[self._samples[index]])
        self._probe_changed()

    def load_probe_file(self, path: str) -> None:
        c, h, w = self.input_shape
        try:
            image = data.load_image(path, (h, w), c)
        except data.DataError as e:
            self.message.setText(str(e))
            return
        self._set_probe_array(image, None)
        self._probe_changed()

    def _probe_changed(self) -> None:
        if self.worker is not None and self.state in ("running", "pausing", "stopping"):
            self.worker.forwarder.probe_images = cnnlab.from_numpy(self.probe_image[None].copy())
        else:
            self._show_model_pictures()

    def _model_device(self) -> Any:
        """None for the CPU, else the device the model's weights are on (after a GPU run)."""
        p = next(iter(self.model.parameters()), None)
        return None if p is None or p.device.type == "cpu" else p.device

    def _show_model_pictures(self) -> None:
        """Probe and show the model directly (only while no step can run)."""
        if self.model is None:
            return
        acts = probe(self.model, cnnlab.from_numpy(self.probe_image[None].copy()), device=self._model_device())
        self._show_probe(acts, None if self._fresh else self._state_step)
        params = {k: p.detach().cpu().numpy() for k, p in self.model.named_parameters()}  # copies off a GPU
        self.filters.set_params(params)
        grads = {k: p.grad.cpu().numpy() for k, p in self.model.named_parameters() if p.grad is not None}
        if grads:
            self.grad_bars.set_grads(grads)

    def _show_probe(self, acts: dict[str, np.ndarray], step: int | None) -> None:
        kinds = {n: type(m).__name__ for n, m in self.model.named_modules() if n}
        self.feature_maps.set_activations(self.probe_image, acts, kinds, step)
        self.probabilities.set_logits(acts["output"][0], self.classes, self.probe_label)

    # ------------------------------------------------------------ controls
    def start(self) -> None:
        """Start a new run from fresh weights (or continue a loaded checkpoint)."""
        if self.state != "idle" or self.model is None:
            return
        run = self._next_run()
        if run is not None:
            self._launch(run, "running")

    def step(self) -> None:
        """Train on one batch then pause (starting a run first when none is going)."""
        if self.state == "paused":
            self.run.step_once(1)
            self._set_state("pausing")
        elif self.state == "idle" and self.model is not None:
            run = self._next_run()
            if run is not None:
                run.pause()
                run.step_once(1)
                self._launch(run, "pausing")

    def train_steps(self, n: int) -> None:
        """Start a run that pauses after `n` steps (for scripted screenshots and demos)."""
        if self.state == "idle" and self.model is not None:
            run = self._next_run()
            if run is not None:
                run.pause()
                run.step_once(n)
                self._launch(run, "pausing")

    def pause(self) -> None:
        if self.state == "running":
            self.run.pause()
            self._set_state("pausing")

    def resume(self) -> None:
        if self.state in ("paused", "pausing"):
            self.run.resume()
            self._set_state("running")

    def stop(self) -> None:
        if self.state in ("running", "pausing", "paused"):
            self.run.stop()
            self._set_state("stopping")

    def reset(self) -> None:
        """Stop and forget the current run, then fresh weights (finished runs stay listed)."""
        self.shutdown(keep=False)
        self.reload()

    def is_training(self) -> bool:
        return self.worker is not None

    def shutdown(self, keep: bool = True) -> Run | None:
        """Stop the worker between steps and join its thread; the run is listed unless keep=False."""
        worker = self.worker
        if worker is None:
            return self.run
        worker.shutdown()
        self._finish(worker.status, keep)
        return self.run

    def _next_run(self) -> Run | None:
        s = self.settings.session()
        if s.device == "cuda" and not cnnlab.cuda.is_available():
            self.message.setText(f"GPU: {cnnlab.cuda.unavailable_reason()}; choose the CPU")
            return None
        if self._pending is not None:  # continue the loaded checkpoint for `epochs` more epochs
            run, self._pending = self._pending, None
            run.epochs = run.epoch + s.epochs
            run.set_lr(s.lr)
            self.curves.set_epochs(run.epochs)
            return run
        if not self._fresh:
            self.reload()
            if self.model is None:
                return None
        cnnlab.manual_seed(s.seed)
        train_loader = data.DataLoader(self.train_set, s.batch_size, shuffle=True, seed=s.seed)
        val_loader = data.DataLoader(self.val_set, max(256, s.batch_size))
        device = None if s.device == "cpu" else s.device
        run = Run(self.model, train_loader, make_optimizer(s, self.model.parameters()), epochs=s.epochs,
                  val_loader=val_loader, device=device)
        self.curves.start_run(self.label(), self.param_count(), s.epochs)
        self.confusion.clear_matrix()
        return run

    def _launch(self, run: Run, state: str) -> None:
        self.run, self.model = run, run.model
        self._fresh = False
        self._state, self._state_step = state_arrays(run.model), run.step
        w = TrainWorker(run, cnnlab.from_numpy(self.probe_image[None].copy()), (), self.refresh, parent=self)
        w.sigSteps.connect(self._on_steps)
        w.sigEpoch.connect(self._on_epoch)
        w.sigProbe.connect(self._on_probe)
        w.sigSnapshot.connect(self._on_snapshot)
        w.sigPaused.connect(self._on_paused)
        w.sigFailed.connect(self._on_failed)
        w.sigFinished.connect(self._on_finished)
        self.worker = w
        self.message.setText("")
        self._set_state(state)
        w.start()

    def _lr_changed(self, lr: float) -> None:
        if self.run is not None and self.worker is not None:
            self.run.set_lr(lr)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.settings.set_architecture_enabled(state == "idle")
        self._update_buttons()
        self.sigStateChanged.emit(state)

    def _update_buttons(self) -> None:
        s, ready = self.state, self.model is not None
        self.start_button.setEnabled(s == "idle" and ready)
        self.start_button.setText("Continue" if self._pending is not None else "Start")
        self.pause_button.setEnabled(s == "running")
        self.resume_button.setEnabled(s in ("paused", "pausing"))
        self.step_button.setEnabled((s == "idle" and ready) or s == "paused")
        self.stop_button.setEnabled(s in ("running", "pausing", "paused"))
        quiet = s in ("idle", "paused") and ready
        for b in (self.save_button, self.evaluate_button, self.export_button):
            b.setEnabled(quiet)
        self.export_button.setEnabled(ready)
        self.load_button.setEnabled(s == "idle")
        self.open_session_button.setEnabled(s == "idle")
        self.lab_button.setEnabled(ready and self.lab_layer.count() > 0)

    # ------------------------------------------------------------ worker events
    def _mine(self) -> bool:
        return self.worker is not None and self.sender() is self.worker

    def _on_steps(self, steps: list[dict[str, Any]]) -> None:
        if not self._mine():
            return
        self.curves.add_steps(steps)
        m = steps[-1]
        self.live.setText(f"epoch {m['epoch']}/{self.run.epochs} · batch {m['batch']}/{m['batches']} · "
                          f"loss {m['loss']:.4f} · batch accuracy {m['accuracy']:.0%} · "
                          f"{m['images_per_s']:,.0f} img/s · {m['elapsed']:.1f} s · lr {m['lr']:g}")

    def _on_epoch(self, m) -> None:
        if not self._mine():
            return
        self.curves.add_epoch(m.epoch, m.val_loss, m.val_accuracy)
        if m.confusion is not None:
            self.confusion.set_matrix(m.confusion, self.classes,
                                      f"epoch {m.epoch} · val acc {m.val_accuracy:.1%}")

    def _on_probe(self, step: int, acts: dict[str, np.ndarray]) -> None:
        if self._mine():
            self._show_probe(acts, step)

    def _on_snapshot(self, snap: Snapshot) -> None:
        if not self._mine():
            return
        self.filters.set_params(snap.params)
        if snap.grads:
            self.grad_bars.set_grads(snap.grads)
        self._state, self._state_step = snap.state, snap.step
        self._version += 1
        self.sigModelChanged.emit()

    def _on_paused(self, step: int) -> None:
        if self._mine() and self.state in ("pausing", "running") and self.run.paused:
            self._set_state("paused")
            self.live.setText(self.live.text().split(" · lr")[0] + f" · paused after step {step}")

    def _on_failed(self, text: str) -> None:
        if self._mine():
            self.message.setText(text)

    def _on_finished(self, status: str) -> None:
        if self._mine():
            self._finish(status)

    def _finish(self, status: str, keep: bool = True) -> None:
        worker, self.worker = self.worker, None
        worker.wait()
        worker.deleteLater()
        if keep:
            self.curves.finish_run(status)
        self._set_state("idle")
        self.live.setText(f"{status} after {self.run.step} steps ({self.run.epoch} epochs, "
                          f"{self.run.elapsed:.1f} s of training)")
        self._version += 1
        self.sigRunFinished.emit(status)
        self.sigModelChanged.emit()

    # ------------------------------------------------------------ the model for other views
    def model_copy(self) -> nn.Module | None:
        """A copy of the current model with its latest weights (eval mode), safe to use in the
        GUI thread whatever the worker does. Cached until the weights change."""
        if self.model is None:
            return None
        if self._copy is not None and self._copy[0] == self._version:
            return self._copy[1]
        state = self._state if self.worker is not None and self.state != "paused" else state_arrays(self.model)
        m = models.from_description(models.describe(self.model))
        m.load_state_dict(state)
        m.eval()
        self._copy = (self._version, m)
        return m

    def predictor(self) -> tuple[nn.Module, tuple[int, ...], list[str]] | None:
        """(model copy, input shape, class names) for the Predict view."""
        m = self.model_copy()
        return None if m is None else (m, self.input_shape, self.classes)

    # ------------------------------------------------------------ evaluation, checkpoints, files
    def evaluate_now(self) -> None:
        """The confusion matrix of the model as it is now (idle or paused)."""
        if self.state not in ("idle", "paused") or self.model is None:
            return
        r = evaluate(self.model, data.DataLoader(self.val_set, 500), device=self._model_device(),
                     num_classes=len(self.classes))
        step = self.run.step if self.run is not None else 0
        self.confusion.set_matrix(r.confusion, self.classes, f"step {step} · val acc {r.accuracy:.1%}")

    def _extra(self) -> dict[str, Any]:
        s = self.settings.session()
        return {"data": s.dataset, "seed": s.seed, "batch_size": s.batch_size, "limit": s.limit,
                "input_shape": list(self.input_shape), "classes": self.classes, "session": vars(s)}

    def save_checkpoint(self, path: str | Path) -> None:
        """Save the run (idle or paused only: no step may run meanwhile)."""
        if self.state not in ("idle", "paused"):
            raise RuntimeError("pause the run before saving a checkpoint")
        run = self.run or self._pending
        if run is None:  # a model that has not trained yet
            s = self.settings.session()
            run = Run(self.model, data.DataLoader(self.train_set, s.batch_size), make_optimizer(s, self.model.parameters()))
        save_checkpoint(path, run, self._extra())

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a checkpoint: its model, weights, history and settings; Start continues it."""
        if self.state != "idle":
            raise RuntimeError("stop the run before loading a checkpoint")
        ckpt = load_checkpoint(path)
        if ckpt.get("extra", {}).get("normalize"):
            raise ValueError(f"{path} was trained on normalized inputs (cnnlab train --normalize); the app trains "
                             f"and predicts on plain 0..1 pixels, so it would see other inputs than the model "
                             f"learned on. Use `cnnlab evaluate` and `cnnlab predict` for this checkpoint.")
        try:
            run, s = self._resume(path, ckpt)
        except Exception:
            self.reload()  # back to a consistent state: the chosen settings, fresh weights
            raise
        self._pending, self.run, self.model = run, None, run.model
        self._fresh = False
        self._state_step = run.step
        self.settings.lr.blockSignals(True)
        self.settings.lr.setValue(run.lr)
        self.settings.lr.blockSignals(False)
        params = sum(p.numel() for p in run.model.parameters())
        self.curves.show_run(RunCurves.from_history(f"{Path(path).name} · {s.model}", params, ckpt["history"]))
        self.confusion.clear_matrix()
        self.live.setText(f"loaded {Path(path).name}: {run.epoch} epochs, {run.step} steps done; "
                          f"Continue trains {s.epochs} more epoch(s)")
        self._model_replaced()

    def _resume(self, path: str | Path, ckpt: dict[str, Any]) -> tuple[Run, Session]:
        extra = ckpt.get("extra", {})
        known = set(vars(Session()))
        s = Session(**{**vars(self.settings.session()),
                       **{k: v for k, v in (extra.get("session") or {}).items() if k in known}})
        for key, field_name in (("data", "dataset"), ("seed", "seed"), ("batch_size", "batch_size"), ("limit", "limit")):
            if key in extra:
                setattr(s, field_name, extra[key])
        desc = ckpt["model"]
        s.model = "custom" if desc["name"] == "sequential" else desc["name"]
        s.layers = desc.get("layers") if s.model == "custom" else None
        self.settings.blockSignals(True)
        try:
            self.settings.apply(s)
        finally:
            self.settings.blockSignals(False)
        self._load_data(s)
        want = tuple(extra.get("input_shape", ())) or self.input_shape
        if want != self.input_shape or len(extra.get("classes", self.classes)) != len(self.classes):
            raise ValueError(f"{path} was trained on images {list(want)} with {len(extra.get('classes', []))} "
                             f"classes; {s.dataset} has {list(self.input_shape)} and {len(self.classes)}")
        train_loader = data.DataLoader(self.train_set, s.batch_size, shuffle=True, seed=s.seed)
        val_loader = data.DataLoader(self.val_set, max(256, s.batch_size))
        run = resume(path, train_loader, int(ckpt["epoch"]) + s.epochs, val_loader,
                     device=None if s.device == "cpu" else s.device)
        return run, s

    def export(self, folder: str | Path) -> list[Path]:
        """model.py + weights.npz (+ weights.pt with PyTorch) of the current model."""
        return export_for_pytorch(folder, self.model_copy(), class_name="Net")

    def save_session(self, path: str | Path) -> None:
        s = self.settings.session()
        s.probe = self.picker.group.checkedId() if self.picker.group.checkedId() >= 0 else 0
        save_session(path, s)

    def open_session(self, path: str | Path) -> None:
        if self.state != "idle":
            raise RuntimeError("stop the run before opening a session")
        s = load_session(path)
        self.settings.blockSignals(True)
        try:
            self.settings.apply(s)
        finally:
            self.settings.blockSignals(False)
        self.reload()
        if self._samples:
            self.picker.choose(min(s.probe, len(self._samples) - 1))

    def _dialog(self, job, *args) -> None:
        try:
            job(*args)
        except (ValueError, RuntimeError, OSError, KeyError) as e:
            self.message.setText(str(e))

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", "checkpoint.npz", "Checkpoints (*.npz)")
        if path:
            self._dialog(self.save_checkpoint, path)
            self.live.setText(f"saved {path}")

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load checkpoint", "", "Checkpoints (*.npz);;All files (*)")
        if path:
            self._dialog(self.load_checkpoint, path)

    def _export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export for PyTorch into")
        if folder:
            try:
                files = self.export(folder)
            except (ValueError, OSError) as e:
                self.message.setText(str(e))
                return
            self.live.setText("exported " + ", ".join(f.name for f in files) + f" to {folder}")

    def _save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", "session.json", "Sessions (*.json)")
        if path:
            self._dialog(self.save_session, path)

    def _open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", "", "Sessions (*.json)")
        if path:
            self._dialog(self.open_session, path)

    # ------------------------------------------------------------ the Convolution lab
    def _fill_lab_layers(self) -> None:
        self.lab_layer.blockSignals(True)
        self.lab_layer.clear()
        for name, m in self.model.named_modules() if self.model is not None else ():
            if isinstance(m, nn.Conv2d):
                self.lab_layer.addItem(name, tuple(m.weight.shape))
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
        ch = self.lab_channel.currentData()
        self.step_in_lab(self.lab_layer.currentText(), self.lab_filter.value(), None if ch == -1 else ch)

    def lab_request(self, layer: str, index: int, channel: int | None = None) -> dict[str, Any]:
        """Keyword arguments of ConvLab.load_layer for filter `index` of conv layer `layer`:
        its current kernel and the real input that reaches it for the probe image. All input
        channels when `channel` is None (and there are at most three), else that one alone."""
        model = self.model_copy()
        conv = dict(model.named_modules())[layer]
        seen: dict[str, np.ndarray] = {}
        handle = conv.register_forward_hook(lambda m, i, o: seen.__setitem__("x", i[0].detach().cpu().numpy()))
        try:
            with cnnlab.no_grad():
                model(cnnlab.from_numpy(self.probe_image[None].copy()))
        finally:
            handle.remove()
        x = seen["x"][0]
        w = conv.weight.detach().cpu().numpy()[index]
        b = float(conv.bias.detach().cpu().numpy()[index]) if conv.bias is not None else 0.0
        step = f"step {self._state_step}" if not self._fresh else "before training"
        if channel is None and x.shape[0] > 3:
            channel = 0
        if channel is None:
            what = f"{layer} filter {index} on the probe image ({step})"
        else:
            x, w = x[channel:channel + 1], w[channel:channel + 1]
            what = (f"{layer} filter {index}, input channel {channel} of {conv.in_channels} on the probe image "
                    f"({step}); the layer adds up all {conv.in_channels} channels' results and the bias {b:.4g}")
            b = 0.0
        padding = conv.padding
        if isinstance(padding, str):  # 'valid' or 'same' (odd kernels: the same on both sides)
            padding = (0, 0) if padding == "valid" else tuple(d * (k - 1) // 2 for d, k in
                                                              zip(conv.dilation, conv.kernel_size))
        return dict(x=x, weight=w, bias=b, stride=tuple(conv.stride), padding=tuple(padding),
                    dilation=tuple(conv.dilation), title=what)

    def step_in_lab(self, layer: str, index: int, channel: int | None = None) -> None:
        if self.model is None:
            return
        i = self.lab_layer.findText(layer)
        if i >= 0:
            self.lab_layer.setCurrentIndex(i)
            self.lab_filter.setValue(index)
        self.sigStepInLab.emit(self.lab_request(layer, index, None if channel == -1 else channel))

    # ------------------------------------------------------------ Qt
    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)
