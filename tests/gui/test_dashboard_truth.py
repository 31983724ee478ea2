"""What the Train, Network and Predict tabs show is true: the compare legend never hides
or covers the curves, a layer list that does not fit is shown up to its failing layer
with the reason, Predict says when the model is untrained, the confusion matrix redraws
cheaply, the status and error lines never go stale (issue 15)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect

from gui.confusion import Confusion
from gui.curves import Curves, RunCurves
from gui.predict_view import verdict
from gui.session import Session
from test_app_tabs import window  # noqa: F401 - the main window, shown, on a tiny slice

LONG = "a run with a very long name: convnet · mnist-sample · sgd 0.05 · cosine · augment · seed 12345 " * 2


def shown(qtbot, widget, w: int = 560, h: int = 330):
    qtbot.addWidget(widget)
    widget.resize(w, h)
    widget.show()
    return widget


def rect_in(widget, ancestor) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def data_area(plot, ancestor) -> QRect:
    """Where a pyqtgraph plot draws its curves, in `ancestor`'s coordinates."""
    vb = plot.plotItem.vb
    scene = vb.mapRectToScene(vb.boundingRect())
    corner = plot.mapFromScene(scene.topLeft())
    return QRect(plot.mapTo(ancestor, corner), scene.size().toSize())


def test_the_compare_legend_stays_visible_and_off_the_curves(qtbot, spin):
    curves = shown(qtbot, Curves())
    curves.start_run("current", 10, epochs=1)
    curves.add_steps([dict(epoch=1, batch=b, batches=4, loss=1.0 / b, accuracy=0.2 * b) for b in range(1, 5)])
    curves.add_finished(RunCurves.from_history(LONG, 13_686, {"steps": [dict(epoch=1, loss=1.0, accuracy=0.5)],
                                                              "epochs": []}))
    curves.set_compared([0])
    spin(50)
    legend = rect_in(curves.legend, curves)
    assert curves.legend.isVisible() and curves.rect().contains(legend)
    assert legend.height() <= curves.legend.heightForWidth(legend.width()) + 2  # all its lines shown
    for plot in (curves.loss_plot, curves.acc_plot):
        assert not legend.intersects(data_area(plot, curves))
    texts = [t for t, _, _ in curves.legend_entries()]
    assert texts[:3] == ["train (per batch)", "train (smoothed)", "validation"]
    assert texts[3].endswith("…") and len(texts[3]) <= 60 and LONG[:40] in texts[3]  # cut, whole in the tooltip
    assert LONG.strip()[:40] in curves.legend.toolTip()
    curves.set_compared([])
    assert len(curves.legend_entries()) == 3


def test_the_confusion_matrix_redraws_in_a_few_milliseconds(qtbot):
    """100 TextItems took 40-130 ms of the GUI thread at an epoch end; one item draws them all."""
    view = shown(qtbot, Confusion(), 260, 330)
    m = np.random.default_rng(0).integers(0, 50, (10, 10))
    costs = []
    for k in range(3):
        start = time.thread_time()
        view.set_matrix(m + k, [str(i) for i in range(10)], f"epoch {k}")
        view.grab()  # the paint too
        costs.append(time.thread_time() - start)
    assert max(costs) < 0.025, costs
    assert [c.toPlainText() for c in view._texts] == [str(v) for v in (m + 2).ravel()]


@pytest.mark.parametrize("steps, val, trusted, words", [
    (0, None, False, "Untrained model"), (30, None, False, "Barely trained"), (500, None, True, "It looks like"),
    (900, 0.42, False, "Barely trained"), (900, 0.97, True, "It looks like")])
def test_predict_never_sounds_surer_than_the_model_is(steps, val, trusted, words):
    answer, basis, ok = verdict("6", 0.12, steps, val)
    assert answer.startswith(words) and ok == trusted and "6 (12%)" in answer
    if val is not None:
        assert f"{val:.1%}" in basis


@pytest.fixture
def win(window):
    window.train_view.settings.epochs.setValue(1)  # runs here go to their end
    return window


def test_predict_on_fresh_weights_says_untrained_and_shows_every_class(win):
    win.show_view("predict")
    pv = win.predict_view
    pv.draw_example()
    assert pv.answer.text().startswith("Untrained model") and "random" in pv.trust.text()
    assert pv.bars.probabilities.size == 10 and len(pv.bars.labels) == 10
    assert [t.toPlainText() for t in pv.bars.labels] == [f"{p:.1%}" for p in pv.bars.probabilities]


def test_predict_after_training_names_steps_and_accuracy(qtbot, win):
    tv = win.train_view
    with qtbot.waitSignal(tv.sigRunFinished, timeout=60_000):
        tv.start()
    win.show_view("predict")
    win.predict_view.draw_example()
    acc = tv.run.history.epochs[-1]["val_accuracy"]
    assert f"{tv.run.step:,} training steps" in win.predict_view.trust.text()
    assert f"{acc:.1%}" in win.predict_view.trust.text()


CONV = {"type": "Conv2d", "args": {"in_channels": 1, "out_channels": 8, "kernel_size": 5}}
POOL = {"type": "MaxPool2d", "args": {"kernel_size": 2}}
TOO_BIG = {"type": "Conv2d", "args": {"in_channels": 8, "out_channels": 8, "kernel_size": 15}}
FLAT, LINEAR = {"type": "Flatten"}, {"type": "Linear", "args": {"in_features": 8, "out_features": 10}}


def test_network_tab_shows_the_shapes_up_to_the_failing_layer_and_why(win):
    win.show_view("network")
    nv = win.network_view
    assert [r.name for r in nv.rows][:1] == ["normalize"]  # the default model first
    win.train_view.settings.apply(Session(limit=256, model="custom", layers=[CONV, POOL, TOO_BIG, FLAT, LINEAR]))
    assert win.train_view.model is None
    assert "layer 2 (Conv2d) fails" in nv.title.text() and nv.rows == []
    assert [name for name, *_ in nv.picture.layers] == ["input", "layer 0", "layer 1", "layer 2"]
    assert nv.picture.layers[2][2] == (8, 12, 12) and nv.picture.layers[3][3] is False  # the failing one in red
    assert nv.shapes.rowCount() == 5 and nv.shapes.item(1, 3).text() == "8×12×12"
    why = nv.shapes.item(2, 5).text()
    assert "H: floor((12 + 2*0 - 1*(15-1) - 1) / 1) + 1 = -2" in why  # the arithmetic, and the reason
    assert "the kernel spans 15 cells" in why and "only 12 cells" in why
    assert "not reached" in nv.shapes.item(3, 5).text()
    win.train_view.settings.apply(Session(limit=256, model="convnet"))  # fits again: the model's table
    assert nv.rows and "parameters" in nv.title.text()


def test_errors_clear_after_a_later_success_and_reset_refreshes_the_status(qtbot, win, tmp_path):
    tv = win.train_view
    (tmp_path / "a file").write_text("not a folder")
    tv._save_checkpoint_to(str(tmp_path / "a file" / "x.npz"))
    assert tv.message.text()  # could not write there
    tv._save_checkpoint_to(str(tmp_path / "ok.npz"))
    assert tv.message.text() == "" and "saved" in tv.live.text()
    with qtbot.waitSignal(tv.sigRunFinished, timeout=60_000):
        tv.start()
    assert "finished after" in tv.live.text()
    tv.reset()
    assert "finished" not in tv.live.text() and "fresh weights" in tv.live.text()
