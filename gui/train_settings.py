"""TrainSettings: what to train and how — a zoo model or a layer list of your own, the
dataset, optimizer, learning rate, schedule, momentum, batch size, epochs, normalisation,
augmentation, device and seed: the fields of a `cnnlab.recipe.Recipe`.

It opens on the recipe's defaults, and the learning rate follows the model's best
(`cnnlab.recipe.best_lr`) until it is edited. Changing the model or the data emits
sigArchitectureChanged; the learning rate emits sigLrChanged (it may change while a run
without a schedule trains); `session()` and `apply()` read and write every setting at
once, keeping the recipe fields the panel does not show (model_args, weight_decay ...).
"""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QSpinBox, QVBoxLayout, QWidget)

import cnnlab
from cnnlab import data, models
from cnnlab.recipe import OPTIMIZERS, SCHEDULES, best_lr

from .layer_editor import LayerEditor
from .session import Session

MODEL_LABELS = {
    "convnet": "ConvNet (seed 004's CNN)",
    "fcnet": "FCNet (seed 004's fully connected)",
    "lenet5": "LeNet-5",
    "simplecnn": "SimpleCNN (seed 000)",
    "cifarcnn": "CIFAR CNN (seed 002)",
    "modern": "Modern CNN (BatchNorm, Dropout)",
    "vgg": "VGG-style (BatchNorm)",
    "cifarresnet": "Small CIFAR ResNet",
    "cifarfast": "Fast CIFAR net (speedrun-style)",
    "custom": "Your own layer list…",
}
FOLDER = "image folder…"


class TrainSettings(QWidget):
    sigArchitectureChanged = Signal()
    sigLrChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = QComboBox()
        for name in [n for n in MODEL_LABELS if n in models.names() or n == "custom"]:
            self.model.addItem(MODEL_LABELS[name], name)
        self.editor = LayerEditor()
        self.editor.setVisible(False)

        self.dataset = QComboBox()
        for info in data.available():
            self.dataset.addItem(info.name if info.ready else f"{info.name} ({info.detail})", info.name)
            if not info.ready:  # listed so people know it exists; `cnnlab datasets` downloads it
                self.dataset.model().item(self.dataset.count() - 1).setEnabled(False)
            self.dataset.setItemData(self.dataset.count() - 1, info.description, Qt.ItemDataRole.ToolTipRole)
        self.dataset.addItem(FOLDER, FOLDER)
        self._folder: str | None = None
        self.limit = QSpinBox()
        self.limit.setRange(0, 1_000_000)
        self.limit.setSingleStep(500)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("Train on only N images (and validate on N), spread over the set: a quick try")

        self._base = Session()  # the recipe fields the panel does not show
        self.optimizer = QComboBox()
        self.optimizer.addItems(list(OPTIMIZERS))
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 5.0)
        self.lr.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.lr.setValue(best_lr(self.model_name()))
        self.lr.setToolTip("Learning rate (the model's best to start with): may be changed while a run "
                           "without a schedule trains")
        self.schedule = QComboBox()
        self.schedule.addItems(list(SCHEDULES))
        self.schedule.setCurrentText(self._base.schedule)
        self.schedule.setToolTip("cosine: a short warm-up, then down to 0 at the end of the run; "
                                 "step: x0.1 after every third of the epochs")
        self.momentum = QDoubleSpinBox()
        self.momentum.setRange(0.0, 0.999)
        self.momentum.setDecimals(3)
        self.momentum.setSingleStep(0.05)
        self.momentum.setValue(self._base.momentum)
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(self._base.batch_size)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(self._base.epochs)
        self.normalize = QCheckBox("Normalize inputs")
        self.normalize.setChecked(self._base.normalize)
        self.normalize.setToolTip("The model's first layer subtracts the training images' channel mean "
                                  "and divides by their std")
        self.augment = QCheckBox("Augment")
        self.augment.setToolTip("Random shifts (grey images) or crops and flips (colour) of the training images")
        self.device = QComboBox()
        self.device.addItem("CPU", "cpu")
        self.device.addItem("GPU (CUDA)", "cuda")
        if not cnnlab.cuda.is_available():
            self.device.model().item(1).setEnabled(False)
            self.device.setItemData(1, cnnlab.cuda.unavailable_reason(), Qt.ItemDataRole.ToolTipRole)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)

        model_box = QGroupBox("Model")
        mf = QVBoxLayout(model_box)
        mf.addWidget(self.model)
        mf.addWidget(self.editor)
        data_box = QGroupBox("Data")
        df = QFormLayout(data_box)
        df.addRow("Dataset", self.dataset)
        df.addRow("Images", self.limit)
        hyper = QGroupBox("Training")
        hf = QFormLayout(hyper)
        hf.addRow("Optimizer", self.optimizer)
        hf.addRow("Learning rate", self.lr)
        hf.addRow("Schedule", self.schedule)
        hf.addRow("Momentum", self.momentum)
        hf.addRow("Batch size", self.batch)
        hf.addRow("Epochs", self.epochs)
        hf.addRow(self.normalize)
        hf.addRow(self.augment)
        hf.addRow("Device", self.device)
        hf.addRow("Seed", self.seed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for box in (model_box, data_box, hyper):
            layout.addWidget(box)

        self.model.currentIndexChanged.connect(self._model_changed)
        self.editor.sigChanged.connect(self._editor_changed)
        self.dataset.currentIndexChanged.connect(self._dataset_changed)
        for w in (self.limit, self.seed):
            w.valueChanged.connect(self.sigArchitectureChanged.emit)
        for box in (self.normalize, self.augment):  # both change the data or the model's first layer
            box.toggled.connect(lambda _: self.sigArchitectureChanged.emit())
        self.lr.valueChanged.connect(self.sigLrChanged.emit)
        self.optimizer.currentIndexChanged.connect(self._optimizer_changed)
        self._optimizer_changed()
        self._dataset_index = self.dataset.currentIndex()
        self._model = self.model_name()
        for combo in (self.model, self.dataset, self.optimizer, self.schedule, self.device):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)  # long names must not widen the panel

    # ------------------------------------------------------------ values
    def model_name(self) -> str:
        return self.model.currentData()

    def dataset_name(self) -> str:
        d = self.dataset.currentData()
        return self._folder if d == FOLDER and self._folder else d

    def session(self) -> Session:
        return replace(self._base, model=self.model_name(),
                       layers=self.editor.layers() if self.model_name() == "custom" else None,
                       data=self.dataset_name(), limit=self.limit.value(), optimizer=self.optimizer.currentText(),
                       lr=self.lr.value(), schedule=self.schedule.currentText(), momentum=self.momentum.value(),
                       batch_size=self.batch.value(), epochs=self.epochs.value(),
                       normalize=self.normalize.isChecked(), augment=self.augment.isChecked(),
                       device=self.device.currentData(), seed=self.seed.value())

    def apply(self, s: Session) -> None:
        """Set every control from `s` (one sigArchitectureChanged at the end)."""
        s.check()
        widgets = (self.model, self.dataset, self.limit, self.seed, self.editor, self.lr, self.normalize, self.augment)
        for w in widgets:
            w.blockSignals(True)
        try:
            i = self.model.findData(s.model)
            if i < 0:
                raise ValueError(f"unknown model {s.model!r}")
            self.model.setCurrentIndex(i)
            self._model = s.model
            self.editor.setVisible(s.model == "custom")
            if s.layers:
                self.editor.set_layers(s.layers)
            i = self.dataset.findData(s.data)
            if i < 0:  # a folder
                self._folder = s.data
                i = self.dataset.findData(FOLDER)
                self.dataset.setItemText(i, f"folder: {s.data}")
            self.dataset.setCurrentIndex(i)
            self._dataset_index = i
            self.limit.setValue(s.limit)
            self.seed.setValue(s.seed)
            self.optimizer.setCurrentText(s.optimizer)
            self.lr.setValue(s.resolved_lr())
            self.schedule.setCurrentText(s.schedule)
            self.momentum.setValue(s.momentum)
            self.batch.setValue(s.batch_size)
            self.epochs.setValue(s.epochs)
            self.normalize.setChecked(s.normalize)
            self.augment.setChecked(s.augment)
            i = self.device.findData(s.device)
            self.device.setCurrentIndex(max(i, 0))
            self._base = s
        finally:
            for w in widgets:
                w.blockSignals(False)
        self.sigArchitectureChanged.emit()

    def set_architecture_enabled(self, enabled: bool) -> None:
        """While a run trains only the learning rate may change (and only without a schedule,
        which would set it again at the next step)."""
        for w in (self.model, self.editor, self.dataset, self.limit, self.optimizer, self.momentum, self.batch,
                  self.epochs, self.device, self.seed, self.schedule, self.normalize, self.augment):
            w.setEnabled(enabled)
        self.lr.setEnabled(enabled or self.schedule.currentText() == "none")
        if enabled:
            self._optimizer_changed()

    # ------------------------------------------------------------ internals
    def _model_changed(self) -> None:
        if self.lr.value() == best_lr(self._model):  # not edited: follow the model's best
            self.lr.setValue(best_lr(self.model_name()))
        self._model = self.model_name()
        self.editor.setVisible(self.model_name() == "custom")
        self.sigArchitectureChanged.emit()

    def _editor_changed(self) -> None:
        if self.model_name() == "custom":
            self.sigArchitectureChanged.emit()

    def _optimizer_changed(self) -> None:
        self.momentum.setEnabled(self.optimizer.currentText() == "sgd")

    def _dataset_changed(self) -> None:
        if self.dataset.currentData() == FOLDER:
            folder = QFileDialog.getExistingDirectory(self, "A folder with one sub-folder of images per class")
            if not folder:
                self.dataset.blockSignals(True)
                self.dataset.setCurrentIndex(self._dataset_index)
                self.dataset.blockSignals(False)
                return
            self._folder = folder
            self.dataset.setItemText(self.dataset.currentIndex(), f"folder: {folder}")
        self._dataset_index = self.dataset.currentIndex()
        self._model = self.model_name()
        for combo in (self.model, self.dataset, self.optimizer, self.schedule, self.device):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)  # long names must not widen the panel
        self.sigArchitectureChanged.emit()
