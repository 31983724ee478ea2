"""The main window's Train, Network and Predict tabs together: closing during training,
stepping a live layer in the lab, the shape view, predictions, and headless screenshots."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab.train import load_checkpoint, probe
from gui.app import MainWindow, main
from gui.session import Session
from gui.worker import Refresh


@pytest.fixture
def window(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.train_view.refresh = Refresh(curves=0.02, pictures=0.05)
    w.train_view.settings.apply(Session(limit=256, batch_size=32, epochs=200))
    w.show()
    return w


def start_training(qtbot, w: MainWindow) -> None:
    w.train_view.start()
    qtbot.waitUntil(lambda: w.train_view.curves.point_count() > 0, timeout=30_000)


def test_opens_on_the_train_tab_with_the_lab_first(window):
    assert window.tabs.tabText(0) == "Convolution lab"
    assert [window.tabs.tabText(i) for i in range(4)] == ["Convolution lab", "Train", "Network", "Predict"]
    assert window.tabs.currentWidget() is window.train_view


def test_closing_during_training_can_save_a_checkpoint(qtbot, window, tmp_path):
    start_training(qtbot, window)
    window.ask_on_close = lambda: "save"
    window.ask_checkpoint_path = lambda: str(tmp_path / "closing.npz")
    window.close()
    tv = window.train_view
    assert not tv.is_training() and tv.run.status == "stopped"
    ckpt = load_checkpoint(tmp_path / "closing.npz")
    assert ckpt["step"] == tv.run.step > 0 and ckpt["extra"]["data"] == "mnist-sample"


def test_closing_during_training_can_be_cancelled_or_discarded(qtbot, window):
    start_training(qtbot, window)
    window.ask_on_close = lambda: "cancel"
    window.close()
    tv = window.train_view
    assert window.isVisible() and tv.is_training() and tv.state == "running"  # it goes on
    step = tv.run.step
    qtbot.waitUntil(lambda: tv.run.step > step, timeout=10_000)
    window.ask_on_close = lambda: "discard"
    window.close()
    assert not tv.is_training() and not window.isVisible()


def test_step_the_live_model_in_the_lab(qtbot, window):
    tv, lab = window.train_view, window.conv_lab
    tv.step()
    qtbot.waitUntil(lambda: tv.state == "paused", timeout=30_000)
    with qtbot.waitSignal(tv.sigStepInLab, timeout=10_000):  # read on the training thread, between steps
        tv.step_in_lab("conv1", 3)  # one input channel: the whole filter
    assert window.tabs.currentWidget() is lab and lab.trace is not None
    model = tv.model_copy()
    acts = probe(model, cnnlab.from_numpy(tv.probe_image[None].copy()), ["conv1", "max1"])
    np.testing.assert_allclose(lab.trace.output, acts["conv1"][0, 3], atol=1e-5)
    np.testing.assert_array_equal(lab.kernel.weight(), model.conv1.weight.numpy()[3])
    assert "conv1 filter 3" in lab.origin.text() and "step 1" in lab.origin.text()

    with qtbot.waitSignal(tv.sigStepInLab, timeout=10_000):
        tv.step_in_lab("conv2", 5, channel=7)  # 16 input channels: one at a time, its real input
    np.testing.assert_allclose(lab.inputs.array()[0], acts["max1"][0, 7], rtol=1e-6)
    assert lab.output_shape() == (12, 12) and "input channel 7 of 16" in lab.origin.text()
    with qtbot.waitSignal(tv.sigRunFinished, timeout=10_000):
        tv.stop()


def test_clicking_a_kernel_opens_it_in_the_lab(qtbot, window):
    window.train_view.filters.sigLayerClicked.emit("conv1", 2, -1)
    assert window.tabs.currentWidget() is window.conv_lab
    assert "conv1 filter 2" in window.conv_lab.origin.text()


def test_network_tab_shows_shapes_and_why(window):
    window.train_view.settings.normalize.setChecked(False)  # seed 004's ConvNet exactly
    window.tabs.setCurrentWidget(window.network_view)
    nv = window.network_view
    assert [r.name for r in nv.rows] == ["conv1", "max1", "conv2", "max2", "conv3", "conv4", "flatten", "linear1"]
    assert nv.rows[3].out_shape == (32, 7, 7)
    assert "H: floor((12 + 2*1 - 1*(2-1) - 1) / 2) + 1 = 7" in nv.shapes.item(3, 5).text()
    assert "Total params: 13,686" in nv.table_text.toPlainText()
    assert len(nv.picture.layers) == 9  # the input, then each layer
    window.train_view.settings.model.setCurrentIndex(window.train_view.settings.model.findData("lenet5"))
    assert [r.name for r in nv.rows][:2] == ["conv1", "pool1"] and "61,706 parameters" in nv.title.text()
    window.train_view.settings.normalize.setChecked(True)  # the normalisation is the model's first layer
    assert [r.name for r in nv.rows][:2] == ["normalize", "conv1"] and nv.rows[0].out_shape == (1, 28, 28)


def test_predict_tab_classifies_drawings_and_samples(qtbot, window):
    window.tabs.setCurrentWidget(window.predict_view)
    pv = window.predict_view
    pv.canvas.stroke([(110, 40), (112, 110), (111, 190)])  # a "1"
    qtbot.waitUntil(lambda: pv.bars.probabilities.size == 10, timeout=5_000)
    assert pv.bars.probabilities.sum() == pytest.approx(1.0)
    assert pv.image.shape == (1, 28, 28) and pv.image.max() > 0.5
    ys, xs = np.nonzero(pv.image[0] > 0.05)
    assert 4 <= ys.min() and ys.max() <= 24  # framed like MNIST: 20 pixels tall, centred
    pv.show_sample(window.train_view.val_set, 0)
    assert "validation label" in pv.note.text() and pv.bars.predicted is not None
    before = pv.bars.probabilities.copy()
    tv = window.train_view
    with qtbot.waitSignal(tv.sigRunFinished, timeout=60_000):
        tv.settings.epochs.setValue(1)
        tv.start()
    assert not np.allclose(before, pv.bars.probabilities)  # the trained weights answer now


@pytest.mark.parametrize("view", ["network", "predict"])
def test_screenshot_after_a_short_run(qtbot, tmp_path, view):
    path = tmp_path / f"{view}.png"
    assert main(["--view", view, "--train-steps", "3", "--screenshot", str(path), "--size", "1000x700"]) == 0
    assert Image.open(path).size == (1000, 700)


def test_cnnlab_gui_trains_then_renders_the_dashboard(qtbot, tmp_path, capsys):
    from cnnlab.cli import main as cli
    from cnnlab.commands import gui as command
    from gui import app

    assert set(command.TABS) == set(app.TABS)
    path = tmp_path / "train.png"
    assert cli(["gui", "--view", "train", "--train-steps", "5", "--screenshot", str(path), "--size", "1000x700"]) == 0
    assert Image.open(path).size == (1000, 700) and f"saved {path}" in capsys.readouterr().out
