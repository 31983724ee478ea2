"""InsideView: the Train tab's "Inside" side tab, the live run's numbers worked out.

- Neuron: click a feature-map cell; its computation steps through, and its receptive
  field is outlined on the input and every map in between (gui/inside_neuron.py).
- Update step: how the optimizer moved a chosen weight in a step that really ran.
- Gradient check: autograd's dL/dw beside a central difference on one fixed batch.
- Softmax: the probe's logits to probabilities to its cross-entropy loss.

Nothing here touches the live model: the neuron and the gradient check run on
`TrainController.model_copy()` (the weights of the last snapshot, the same step as the
pictures), the update on a `StepRecord` the training thread took itself, the softmax on
the probe's logits. A refresh waits until the pictures and the weights of one step have
both arrived, so the neuron's result is the number the feature map shows.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QTabWidget, QWidget

import cnnlab
from cnnlab.explain import gradcheck

from .feature_maps import FeatureMaps
from .inside_capture import StepRecord
from .inside_gradcheck import GradCheckPanel
from .inside_neuron import NO_RUN, NeuronPanel
from .inside_softmax import SoftmaxPanel
from .inside_update import UpdatePanel

CHECK_BATCH = 32  # images in the gradient check's batch


class InsideView(QTabWidget):
    """The four pages, fed by the controller's signals and the feature maps' clicks."""

    def __init__(self, controller: Any, feature_maps: FeatureMaps, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.maps = feature_maps
        self.neuron = NeuronPanel()
        self.update_page = UpdatePanel(self._step_and_show)
        self.check = GradCheckPanel(self.run_check)
        self.softmax = SoftmaxPanel()
        for page, title in ((self.neuron, "Neuron"), (self.update_page, "Update step"), (self.check, "Gradient check"),
                            (self.softmax, "Softmax")):
            self.addTab(page, title)
        self.selected: tuple[str, int, int, int] | None = None
        self.acts: dict[str, np.ndarray] = {}
        self.step: int | None = None
        self._queued = False
        self.neuron.sigRegions.connect(feature_maps.set_highlight)
        feature_maps.sigCellClicked.connect(self.select_cell)
        self.update_page.picker.sigChanged.connect(self._picked)
        self.check.picker.sigChanged.connect(self._picked)
        c = controller
        c.sigPictures.connect(self._pictures)
        c.sigModelChanged.connect(self._schedule)
        c.sigModelReplaced.connect(self._model_replaced)
        c.sigStateChanged.connect(lambda _: self._buttons())
        c.recorder.sigRecorded.connect(self.update_page.show_record)
        self.update_page.sigShown.connect(lambda shown: setattr(c.recorder, "live", shown))
        self._model_replaced()

    # ------------------------------------------------------------ events
    def _model_replaced(self) -> None:
        model = self.controller.model
        self.selected = None
        self.update_page.show_record(None)
        self.neuron.clear(NO_RUN if model is not None else self.controller.problem or NO_RUN)
        shapes = {} if model is None else {n: tuple(p.shape) for n, p in model.named_parameters()}
        for picker in (self.update_page.picker, self.check.picker):
            picker.set_shapes(shapes)
        self._buttons()

    def _picked(self, name: str, index: tuple[int, ...]) -> None:
        self.controller.recorder.watched = name
        flat = int(np.ravel_multi_index(index, self.update_page.picker.shapes[name])) if index else 0
        for picker in (self.update_page.picker, self.check.picker):  # the two pages share the choice
            if (picker.name, picker.index) != (name, tuple(index)):
                picker.blockSignals(True)
                picker.choose(name, flat)
                picker.blockSignals(False)
        self.update_page.render()

    def _buttons(self) -> None:
        c = self.controller
        self.update_page.step_button.setEnabled(c.model is not None and (c.state == "paused" or c.state == "idle"))
        self.check.check_button.setEnabled(c.model is not None)

    def _pictures(self, step: int | None, acts: dict[str, np.ndarray]) -> None:
        self.acts, self.step = acts, step
        c = self.controller
        self.softmax.show_logits(acts["output"][0], c.classes, c.probe_label, self._when())
        self._schedule()

    def _when(self) -> str:
        return "before training" if self.step is None else f"at step {self.step}"

    def _schedule(self) -> None:
        """Refresh the neuron once the pictures and weights of one step are both here."""
        if not self._queued:
            self._queued = True
            QTimer.singleShot(0, self._refresh)

    def _refresh(self) -> None:
        self._queued = False
        c = self.controller
        same_step = (self.step is None and c.fresh) or self.step == c.state_step
        if self.selected is not None and same_step and self.isVisible():
            self._trace()

    # ------------------------------------------------------------ the neuron
    def select_cell(self, layer: str, channel: int, row: int, col: int) -> None:
        """Work out cell (row, col) of `channel` in `layer` (channel -1: unit `row` of a vector layer)."""
        self.selected = (layer, channel, row, col)
        self.setCurrentWidget(self.neuron)
        self._trace()

    def _trace(self) -> None:
        layer, channel, row, col = self.selected
        model = self.controller.model_copy()
        if model is None or layer not in self.acts:
            self.neuron.clear()
            return
        a = self.acts[layer][0]
        shown = float(a[row]) if channel < 0 else float(a[channel, row, col])
        kinds = {n: type(m).__name__ for n, m in model.named_modules() if n}
        self.neuron.show_cell(model, np.asarray(self.controller.probe_image), kinds, layer, channel, row, col, shown,
                              self._when())

    # ------------------------------------------------------------ the update step and the gradient check
    def _step_and_show(self) -> None:
        c = self.controller
        if c.model is None:
            return
        c.recorder.watched = self.update_page.picker.name
        c.step()  # idle: starts a run that pauses after one step; paused: one more step

    def check_batch(self) -> tuple[np.ndarray, np.ndarray, str]:
        """The gradient check's batch: the first CHECK_BATCH training images, the same every time."""
        ds = self.controller.train_set
        n = min(CHECK_BATCH, len(ds))
        items = [ds[i] for i in range(n)]
        return (np.stack([np.asarray(x, np.float32) for x, _ in items]), np.array([int(y) for _, y in items]),
                f"loss on the first {n} training images")

    def run_check(self, name: str | None, index: tuple[int, ...], eps: float) -> None:
        c = self.controller
        model = c.model_copy()
        if model is None or name is None:
            self.check.say(NO_RUN)
            return
        x, y, batch = self.check_batch()
        loss_fn = c.run.loss_fn if c.run is not None else None
        gc = gradcheck(model, x, cnnlab.from_numpy(y), name, index, eps=eps, loss_fn=loss_fn)
        self.check.show_check(gc, f"{batch}, {self._weights()}")

    def _weights(self) -> str:
        c = self.controller
        return "fresh weights" if c.fresh else f"weights after step {c.state_step}"

    def record(self) -> StepRecord | None:
        return self.update_page.record
