"""PredictView: classify a drawn or loaded image — or a validation sample — with the
current model (while it trains, with its latest weights), every class's probability as
a labelled bar.

It never sounds surer than the model is: with fresh weights it says the model is
untrained and its answer chance; while it is barely trained (under BARELY_STEPS steps
with no validation yet, or a validation accuracy under TRUSTED) it says so beside the
guess; otherwise it names the steps and the accuracy the answer rests on."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

import cnnlab
from cnnlab import data

from .drawing_canvas import DrawingCanvas
from .controls import error_style
from .probabilities import Probabilities
from .probe_picker import pixmap

# (model in eval mode, input shape (C, H, W), class names, its Training: steps and the last
# validation accuracy), or None when there is no model
Predictor = Callable[[], "tuple[Any, tuple[int, ...], list[str], Any] | None"]
BARELY_STEPS = 200   # before any validation: fewer steps than this is barely trained
TRUSTED = 0.8        # a validation accuracy under this: barely trained (one answer in five wrong)


def verdict(guess: str, p: float, steps: int, val_accuracy: float | None) -> tuple[str, str, bool]:
    """(the answer, what it rests on, whether to trust it) for a top class `guess` at probability p."""
    if steps == 0:
        return (f"Untrained model: its top class, {guess} ({p:.0%}), is chance",
                "The weights are random: press Start or Step on the Train tab first.", False)
    trained = f"{steps:,} training step{'s' if steps != 1 else ''}"
    if val_accuracy is None:
        if steps < BARELY_STEPS:
            return (f"Barely trained: it guesses {guess} ({p:.0%})",
                    f"Only {trained}, no validation yet: do not trust this answer.", False)
        return f"It looks like {guess} ({p:.0%})", f"{trained}; not validated yet.", True
    if val_accuracy < TRUSTED:
        return (f"Barely trained: it guesses {guess} ({p:.0%})",
                f"{trained}, validation accuracy {val_accuracy:.1%}: often wrong.", False)
    return f"It looks like {guess} ({p:.0%})", f"{trained}, validation accuracy {val_accuracy:.1%}.", True


class PredictView(QWidget):
    """`classify()` runs the model on the current picture; `image` is what the model got."""

    def __init__(self, predictor: Predictor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictor = predictor
        self.image: np.ndarray | None = None     # the model's input (C, H, W)
        self._picture: np.ndarray | None = None  # a loaded or sample image, until the user draws
        self._true: int | None = None
        self.canvas = DrawingCanvas()
        self.mnist = QCheckBox("frame the drawing like MNIST digits")
        self.mnist.setToolTip("Fit the drawing into 20×20 and centre it by its centre of mass, as MNIST was made")
        self.mnist.setChecked(True)
        self.clear_button = QPushButton("Clear")
        self.load_button = QPushButton("Load image…")
        self.sample_button = QPushButton("Validation sample")
        self.sample_button.setToolTip("A random image from the validation set")
        self.preview = QLabel()
        self.preview.setFixedSize(168, 168)
        self.preview.setStyleSheet("border: 1px solid #7f8c8d; background: black")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.answer = QLabel("Draw a digit or a shape on the black square.")
        self.answer.setStyleSheet("font-size: 20px; font-weight: bold")
        self.answer.setWordWrap(True)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555")
        self.trust = QLabel()
        self.trust.setWordWrap(True)
        self.bars = Probabilities("class probabilities", values=True)
        self._timer = QTimer(self)  # classify at most ~30 times a second while drawing
        self._timer.setSingleShot(True)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self.classify)
        self._rng = np.random.default_rng(0)

        left = QGridLayout()
        left.addWidget(QLabel("Draw here (right button erases):"), 0, 0, 1, 3)
        left.addWidget(self.canvas, 1, 0, 1, 3)
        left.addWidget(self.clear_button, 2, 0)
        left.addWidget(self.load_button, 2, 1)
        left.addWidget(self.sample_button, 2, 2)
        left.addWidget(self.mnist, 3, 0, 1, 3)
        left.setRowStretch(4, 1)
        middle = QVBoxLayout()
        middle.addWidget(QLabel("What the model sees:"))
        middle.addWidget(self.preview)
        middle.addWidget(self.answer)
        middle.addWidget(self.trust)
        middle.addWidget(self.note)
        middle.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addLayout(left)
        layout.addSpacing(16)
        layout.addLayout(middle)
        self.bars.setMaximumWidth(640)
        layout.addWidget(self.bars, 1)
        layout.addStretch(0)

        self.canvas.sigChanged.connect(self._drawn)
        self.clear_button.clicked.connect(self._clear)
        self.load_button.clicked.connect(self._load_dialog)
        self.sample_button.clicked.connect(self._random_sample)
        self.mnist.toggled.connect(self.classify)
        self.sample_dataset = None

    # ------------------------------------------------------------ pictures
    def _drawn(self) -> None:
        self._picture, self._true = None, None
        self._timer.start()

    def _clear(self) -> None:
        self.canvas.clear()

    def show_picture(self, image: np.ndarray, true_label: int | None = None) -> None:
        """Classify an image (C, H, W) in 0..1 as it is (it is also shown on the canvas)."""
        self.canvas.blockSignals(True)
        self.canvas.set_array(image)
        self.canvas.blockSignals(False)
        self._picture, self._true = np.asarray(image, np.float32), true_label
        self.classify()

    def show_sample(self, dataset: Any, index: int) -> None:
        self.sample_dataset = dataset
        image, label = dataset[index]
        self.show_picture(image, int(label))

    def draw_example(self) -> None:
        """Draw a 7 as a hand would (for demonstrations and screenshots)."""
        self.canvas.clear()
        self.canvas.stroke([(62, 52), (118, 48), (168, 46), (150, 92), (126, 140), (104, 188)])
        self.classify()

    def load_file(self, path: str) -> None:
        got = self.predictor()
        c, h, w = got[1] if got else (1, 28, 28)
        try:
            self.show_picture(data.load_image(path, (h, w), c))
        except data.DataError as e:
            self.note.setText(str(e))

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Image to classify", "", "Images (*.png *.jpg *.jpeg *.bmp *.gif)")
        if path:
            self.load_file(path)

    def _random_sample(self) -> None:
        if self.sample_dataset is not None:
            self.show_sample(self.sample_dataset, int(self._rng.integers(len(self.sample_dataset))))

    # ------------------------------------------------------------ the model
    def classify(self) -> None:
        got = self.predictor()
        if got is None:
            self.answer.setText("No model: choose one on the Train tab.")
            self.trust.setText("")
            self.bars.clear_bars()
            return
        model, (c, h, w), classes, training = got
        if self._picture is not None and self._picture.shape == (c, h, w):
            x = self._picture
        else:
            if self._picture is not None:
                self._picture = None  # made for another dataset's shape: use the canvas
            x = self.canvas.array(h, w, c, mnist=self.mnist.isChecked())
        self.image = x
        self.preview.setPixmap(pixmap(x, 160))
        if self._picture is None and self.canvas.is_empty():
            self.answer.setText("Draw a digit or a shape on the black square.")
            self.answer.setStyleSheet("font-size: 20px; font-weight: bold")
            self.trust.setText("")
            self.bars.clear_bars()
            return
        with cnnlab.no_grad():
            logits = model(cnnlab.from_numpy(x[None].copy())).numpy()[0]
        self.bars.set_logits(logits, classes, self._true)
        p, k = self.bars.probabilities, self.bars.predicted
        answer, basis, trusted = verdict(str(classes[k] if k < len(classes) else k), float(p[k]),
                                         training.steps, training.val_accuracy)
        self.answer.setText(answer)
        self.answer.setStyleSheet("font-size: 20px; font-weight: bold" + ("" if trusted else f"; {error_style()}"))
        self.trust.setText(basis)
        self.note.setText("" if self._true is None else f"(the validation label is {classes[self._true]})")
