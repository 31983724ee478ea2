"""TrainSettings: what to train and how — a zoo model or a layer list of your own, the
dataset, optimizer, learning rate, schedule, momentum, batch size, epochs, normalisation,
augmentation, device and seed, and in a collapsible "Advanced" section weight decay,
Nesterov momentum, label smoothing, a hold-out split and mirrored validation: the fields
of a `cnnlab.recipe.Recipe`.

It opens on the recipe's defaults, and the learning rate follows the model's best
(`cnnlab.recipe.best_lr`) until it is edited. Changing the model or the data (hold-out
included) emits sigArchitectureChanged; the learning rate emits sigLrChanged (it may
change while a run without a schedule trains); `session()` and `apply()` read and write
every setting at once, keeping the recipe fields the panel does not show (model_args,
size, channels, root and the session's probe).

Settings the recipe would refuse cannot be made: Nesterov is enabled only for SGD with
momentum > 0 (and a tick left on a disabled box does not reach the recipe), the spin
boxes keep within the recipe's bounds; a hold-out as large as the training split is reported
by the dashboard when it loads the data, like any other data problem.
"""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget)

import cnnlab
from cnnlab import data, models
from cnnlab.recipe import OPTIMIZERS, SCHEDULES, Recipe, best_lr

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
# the Recipe fields the Advanced section shows, named as its header's tip names them
ADVANCED = {"weight_decay": "weight decay", "nesterov": "Nesterov", "label_smoothing": "label smoothing",
            "holdout": "hold-out", "tta": "mirror TTA"}


class Section(QWidget):
    """A titled body that folds away under a header button (the column is short of height)."""

    def __init__(self, title: str, body: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.body = title, body
        self.header = QToolButton()
        self.header.setCheckable(True)
        self.header.setAutoRaise(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        # reads like the group boxes' titles, not like a pressed button
        self.header.setStyleSheet("QToolButton { border: none; background: transparent; padding: 2px 0px; }")
        self.header.toggled.connect(self.set_open)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(body)
        self.set_open(False)
        self.set_summary([])

    def is_open(self) -> bool:
        return self.header.isChecked()

    def set_open(self, open_: bool) -> None:
        self.header.blockSignals(True)
        self.header.setChecked(open_)
        self.header.blockSignals(False)
        self.header.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)
        self.body.setVisible(open_)

    def set_summary(self, in_use: list[str]) -> None:
        """Say on the folded header how many settings differ from the default, and which in its tip."""
        self.header.setText(f"{self.title} ({len(in_use)} in use)" if in_use else self.title)
        self.header.setToolTip("In use: " + ", ".join(in_use) if in_use else "All at their defaults")


class TrainSettings(QWidget):
    sigArchitectureChanged = Signal()
    sigLrChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._editable = True  # False while a run trains (set_architecture_enabled)
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
        self._advanced_widgets()

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
        advanced_box = QGroupBox()
        af = QFormLayout(advanced_box)
        af.addRow("Weight decay", self.weight_decay)
        af.addRow(self.nesterov)
        af.addRow("Label smoothing", self.label_smoothing)
        af.addRow("Hold-out", self.holdout)
        af.addRow(self.tta)
        self.advanced = Section("Advanced", advanced_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for box in (model_box, data_box, hyper, self.advanced):
            layout.addWidget(box)

        self.model.currentIndexChanged.connect(self._model_changed)
        self.editor.sigChanged.connect(self._editor_changed)
        self.dataset.currentIndexChanged.connect(self._dataset_changed)
        for w in (self.limit, self.seed, self.holdout):  # the hold-out changes both splits
            w.setKeyboardTracking(False)  # reload the data once, not at every digit typed
            w.valueChanged.connect(lambda _: self.sigArchitectureChanged.emit())  # the signal carries no value
        for box in (self.normalize, self.augment):  # both change the data or the model's first layer
            box.toggled.connect(lambda _: self.sigArchitectureChanged.emit())
        self.lr.valueChanged.connect(self.sigLrChanged.emit)
        self.optimizer.currentIndexChanged.connect(self._optimizer_changed)
        self.momentum.valueChanged.connect(self._optimizer_changed)  # Nesterov needs momentum > 0
        for spin in (self.weight_decay, self.label_smoothing, self.holdout):
            spin.valueChanged.connect(self._show_in_use)
        for box in (self.nesterov, self.tta):
            box.toggled.connect(self._show_in_use)
        self._optimizer_changed()
        self._dataset_index = self.dataset.currentIndex()
        self._model = self.model_name()
        for combo in (self.model, self.dataset, self.optimizer, self.schedule, self.device):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)  # long names must not widen the panel

    def _advanced_widgets(self) -> None:
        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setDecimals(5)
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.weight_decay.setToolTip("L2 penalty on the weights, added to each gradient as decay × weight "
                                     "(AdamW: subtracted from the weights, and 0 means its default 0.01)")
        self.nesterov = QCheckBox("Nesterov momentum")
        self.nesterov.setToolTip("SGD with momentum > 0 only: each step adds the momentum to the fresh "
                                 "gradient once more, a look-ahead that often settles faster "
                                 "(PyTorch's nesterov=True)")
        self.label_smoothing = QDoubleSpinBox()
        self.label_smoothing.setDecimals(3)
        self.label_smoothing.setRange(0.0, 0.99)
        self.label_smoothing.setSingleStep(0.05)
        self.label_smoothing.setSpecialValueText("off")
        self.label_smoothing.setToolTip("Train against 1 − s on the true class plus s shared out over all "
                                        "classes, so the model is less sure of itself (0.1 is usual)")
        self.holdout = QSpinBox()
        self.holdout.setRange(0, 10_000_000)
        self.holdout.setSingleStep(1000)
        self.holdout.setGroupSeparatorShown(True)
        self.holdout.setSpecialValueText("off: the test split")
        self.holdout.setToolTip("Validate on the last N training images, which are then not trained on, "
                                "instead of the dataset's test split: tune on them and keep the test split "
                                "for the final word. 0: validate on the test split")
        self.tta = QCheckBox("Mirror test-time augmentation")
        self.tta.setToolTip("Validate on the mean of each image's logits and its left-right mirror's. Only "
                            "meaningful for data that is symmetric left to right, like CIFAR photos (not "
                            "digits); validation takes twice as long")

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
                       device=self.device.currentData(), seed=self.seed.value(), **self._advanced_values())

    def apply(self, s: Session) -> None:
        """Set every control from `s` (one sigArchitectureChanged at the end)."""
        s.check()
        widgets = (self.model, self.dataset, self.limit, self.seed, self.editor, self.lr, self.normalize, self.augment,
                   self.holdout)
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
            self.weight_decay.setValue(s.weight_decay)
            self.nesterov.setChecked(s.nesterov)
            self.label_smoothing.setValue(s.label_smoothing)
            self.holdout.setValue(s.holdout)
            self.tta.setChecked(s.tta)
            self._base = s
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._optimizer_changed()
        if self._in_use():  # a session that relies on them shows them
            self.advanced.set_open(True)
        self.sigArchitectureChanged.emit()

    def set_architecture_enabled(self, enabled: bool) -> None:
        """While a run trains only the learning rate may change (and only without a schedule,
        which would set it again at the next step)."""
        self._editable = enabled
        for w in (self.model, self.editor, self.dataset, self.limit, self.optimizer, self.momentum, self.batch,
                  self.epochs, self.device, self.seed, self.schedule, self.normalize, self.augment,
                  self.weight_decay, self.nesterov, self.label_smoothing, self.holdout, self.tta):
            w.setEnabled(enabled)
        self.lr.setEnabled(enabled or self.schedule.currentText() == "none")
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
        """Enable what the optimizer uses (while the settings may change at all)."""
        name = self.optimizer.currentText()
        if self._editable:
            self.momentum.setEnabled(name == "sgd")
            self.nesterov.setEnabled(self._nesterov_possible())
        # the recipe gives AdamW its own default decay when none is set
        self.weight_decay.setSpecialValueText("0.01 (AdamW's default)" if name == "adamw" else "none")
        self._show_in_use()

    def _nesterov_possible(self) -> bool:
        return self.optimizer.currentText() == "sgd" and self.momentum.value() > 0

    def _advanced_values(self) -> dict[str, object]:
        """The Advanced section's Recipe fields (Nesterov only where the optimizer takes it)."""
        return {"weight_decay": self.weight_decay.value(),
                "nesterov": self.nesterov.isChecked() and self._nesterov_possible(),
                "label_smoothing": self.label_smoothing.value(), "holdout": self.holdout.value(),
                "tta": self.tta.isChecked()}

    def _in_use(self) -> list[str]:
        """The advanced settings that differ from the recipe's defaults."""
        values, default = self._advanced_values(), Recipe()
        return [label for key, label in ADVANCED.items() if values[key] != getattr(default, key)]

    def _show_in_use(self) -> None:
        self.advanced.set_summary(self._in_use())

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
        self.sigArchitectureChanged.emit()
