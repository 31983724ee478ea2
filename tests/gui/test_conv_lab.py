"""The Convolution lab driven through its widgets with pytest-qt (offscreen)."""
from __future__ import annotations


import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from cnnlab import explain
from gui.app import MainWindow, main
from gui.conv_lab import ConvLab


@pytest.fixture
def lab(qtbot):
    w = ConvLab()
    qtbot.addWidget(w)
    w.resize(1300, 820)
    w.show()
    qtbot.waitExposed(w)
    return w


def move_to(view, point: QPoint) -> None:
    QApplication.sendEvent(view, QMouseEvent(QEvent.Type.MouseMove, QPointF(point), view.mapToGlobal(QPointF(point)),
                                             Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                             Qt.KeyboardModifier.NoModifier))


def filled(lab: ConvLab, key: str = "output") -> int:
    return int(np.count_nonzero(~np.isnan(lab.view.scene().panel(key).values)))


def test_settings_update_output_size_and_step_count(lab):
    s = lab.settings
    assert lab.output_shape() == (3, 3) and lab.step_count() == 9  # 5x5 input, 3x3 kernel
    s.stride[0].setValue(2)
    s.stride[1].setValue(2)
    assert lab.output_shape() == (2, 2) and lab.step_count() == 4
    s.padding[0].setValue(1)
    s.padding[1].setValue(1)
    assert lab.output_shape() == (3, 3) and lab.step_count() == 9
    assert "floor((5 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 3" in lab.derivation.text()
    s.dilation[1].setValue(2)  # a rectangular effect: only the columns shrink
    assert lab.output_shape() == (3, 2) and lab.step_count() == 6
    assert "cols: floor((5 + 2*1 - 2*(3-1) - 1) / 2) + 1 = 2" in lab.derivation.text()
    lab.kernel.cols.setValue(1)
    assert lab.output_shape() == (3, 4) and lab.step_count() == 12  # floor((5 + 2 - 0 - 1) / 2) + 1


def test_stepping_n_times_shows_the_nth_step(lab, qtbot):
    lab.settings.set_values(stride=2, padding=1)
    trace = lab.trace
    for n in range(1, 6):
        qtbot.mouseClick(lab.player.forward_button, Qt.MouseButton.LeftButton)
        assert lab.player.position == n
        assert lab.arithmetic.text() == trace.steps[n - 1].arithmetic()
        assert filled(lab) == n  # cells not reached yet stay blank
        assert lab.view.scene().panel("output").marks["current"] == {trace.steps[n - 1].out_pos}
    qtbot.mouseClick(lab.player.back_button, Qt.MouseButton.LeftButton)
    assert lab.arithmetic.text() == trace.steps[3].arithmetic() and filled(lab) == 4
    lab.player.slider.setValue(9)
    assert filled(lab) == 9 and lab.status.text().startswith("step 9 of 9")
    qtbot.mouseClick(lab.player.reset_button, Qt.MouseButton.LeftButton)
    assert filled(lab) == 0


def test_hover_shows_receptive_field_and_fed_outputs(lab):
    lab.settings.set_values(stride=2, padding=1)
    view = lab.view
    move_to(view, view.cell_center("output", 1, 2))
    want = {(r, c) for _, r, c in lab.trace.receptive_field(1, 2)}
    assert want == {(r, c) for r in (2, 3, 4) for c in (4, 5, 6)}
    assert view.scene().panel("input0").marks["hover"] == want
    assert "output[1,2]" in lab.hover_info.text()
    move_to(view, view.cell_center("input0", 2, 2))
    assert view.scene().panel("output").marks["hover"] == {(0, 0), (0, 1), (1, 0), (1, 1)}
    move_to(view, QPoint(2, 2))  # off every cell
    assert "hover" not in view.scene().panel("output").marks


@pytest.mark.parametrize("change,fragment", [
    (dict(stride=0), "stride height must be at least 1"),
    (dict(padding=-1), "padding height cannot be negative"),
    (dict(dilation=0), "dilation height must be at least 1"),
    (dict(dilation=3), "kernel spans 7 cells"),
])
def test_invalid_settings_show_their_explanation(lab, change, fragment):
    lab.settings.set_values(**change)
    assert fragment in lab.problems.text()
    assert lab.trace is None and lab.step_count() == 0 and lab.view.scene() is None
    lab.settings.set_values(stride=1, padding=0, dilation=1)
    assert lab.problems.text() == "" and lab.step_count() == 9


def test_kernel_larger_than_input_and_pool_padding_are_explained(lab):
    lab.kernel.set_kernel("box blur", 7)
    assert "kernel spans 7 cells" in lab.problems.text()
    lab.settings.set_values(padding=1)
    assert lab.problems.text() == "" and lab.output_shape() == (1, 1)
    lab.kernel.set_kernel("box blur", 2)
    lab.settings.set_values(mode="max", padding=2)
    assert "more than half the pooling window" in lab.problems.text()


def test_pooling_steps(lab, qtbot):
    lab.inputs.set_size(6, 6)
    lab.kernel.set_kernel("pattern", 2)
    lab.settings.set_values(mode="max", stride=2)
    assert lab.step_count() == 9 and not lab.kernel.table.isEnabled()
    qtbot.mouseClick(lab.player.forward_button, Qt.MouseButton.LeftButton)
    step = lab.trace.steps[0]
    assert lab.arithmetic.text() == step.arithmetic() and lab.arithmetic.text().startswith("max(")
    assert lab.view.scene().panel("input0").marks["argmax"] == {step.argmax[1:]}
    lab.settings.set_values(mode="avg")
    lab.player.set_position(1)
    assert lab.arithmetic.text().endswith(f"/ 4 = {explain._common.num(lab.trace.steps[0].value)}")


def test_backward_views(lab):
    lab.settings.set_values(backward=True, stride=2, padding=1)
    assert lab.step_count() == 25  # one per input cell
    lab.player.set_position(7)
    step = lab.trace.input_steps[6]
    assert lab.arithmetic.text() == step.arithmetic() and step.value == lab.trace.grad_input[step.target]
    lab.settings.set_values(wrt="weight")
    assert lab.step_count() == 9
    lab.player.set_position(2)
    assert lab.arithmetic.text().startswith("dL/dw[0,0,0,1] = ")
    lab.settings.set_values(mode="max", wrt="input")
    lab.kernel.set_kernel("pattern", 2)
    lab.settings.set_values(padding=0)
    assert lab.step_count() == 4  # one routing step per output cell
    lab.player.set_position(1)
    assert "goes to the max" in lab.arithmetic.text()


def test_three_channels_and_kernel_edits(lab):
    lab.inputs.set_size(5, 5, channels=3)
    assert lab.kernel.weight().shape == (3, 3, 3)
    keys = [p.key for p in lab.view.scene().panels]
    assert {"input0", "input1", "input2", "kernel0", "kernel1", "kernel2", "output"} <= set(keys)
    before = lab.trace.output.copy()
    lab.kernel.slice.setCurrentIndex(2)
    lab.kernel.table.item(0, 0).setText("10")
    assert lab.kernel.weight()[2, 0, 0] == 10 and lab.kernel.weight()[0, 0, 0] != 10
    assert not np.array_equal(before, lab.trace.output)
    lab.player.set_position(1)
    assert lab.arithmetic.text().count("(") >= 3  # per-channel products, one bracket each


def test_typed_numbers_reproduce_the_worked_example(lab):
    lab.inputs.set_source("typed numbers")
    lab.inputs.text.setPlainText("0 1 2\n3 4 5\n6 7 8")
    lab.kernel.set_weights(np.array([[0, 1], [2, 3]], np.float32))
    assert lab.trace.output.tolist() == [[19, 25], [37, 43]]
    lab.player.set_position(1)
    assert lab.arithmetic.text() == "0×0 + 1×1 + 3×2 + 4×3 = 19"
    lab.inputs.text.setPlainText("1 2\n3")
    assert "same count" in lab.inputs.error.text() and lab.trace is not None  # keeps the last good input


def test_drawing_with_the_mouse(lab):
    lab.inputs.set_source("drawn with the mouse")
    lab.settings.set_values(padding=1)
    view = lab.view
    point = QPointF(view.cell_center("input0", 2, 3))  # padded (2, 3) is input (1, 2)
    QApplication.sendEvent(view, QMouseEvent(QEvent.Type.MouseButtonPress, point, view.mapToGlobal(point),
                                             Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                                             Qt.KeyboardModifier.NoModifier))
    assert lab.inputs.array()[0, 1, 2] == 1 and lab.inputs.array().sum() == 1
    assert lab.trace.input[0, 1, 2] == 1


def test_sample_and_dataset_images(lab):
    lab.inputs.set_source("MNIST digit 3")
    lab.inputs.set_size(12, 12)
    x = lab.trace.input
    assert x.shape == (1, 12, 12) and 0 <= x.min() and x.max() <= 1 and x.max() > 0.5
    lab.inputs.set_source("picture: checkerboard")
    assert set(np.unique(lab.trace.input)) == {0.0, 1.0}


def test_play_runs_to_the_end(lab, qtbot):
    lab.settings.set_values(stride=2)
    lab.player.speed.setValue(60)
    lab.player.play()
    assert lab.player.is_playing()
    qtbot.waitUntil(lambda: not lab.player.is_playing(), timeout=3000)
    assert lab.player.position == lab.step_count() == 4


def test_export_writes_one_frame_per_step(lab, tmp_path):
    lab.settings.set_values(stride=2, padding=1)
    assert lab.export(gif=tmp_path / "lab.gif", frames_dir=tmp_path / "frames") == 9
    with Image.open(tmp_path / "lab.gif") as im:
        assert im.n_frames == 9
    assert len(list((tmp_path / "frames").glob("*.png"))) == 9


def test_main_window_and_screenshot(qtbot, tmp_path):
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.tabs.widget(0) is window.conv_lab  # the lab stays the first tab
    shot = tmp_path / "shot.png"
    assert main(["--view", "pool", "--screenshot", str(shot), "--size", "1000x700"]) == 0
    with Image.open(shot) as im:
        assert im.size == (1000, 700)


def test_cnnlab_gui_command_screenshot(tmp_path):
    from cnnlab.cli import main as cli
    from cnnlab.commands import gui as command
    from gui.conv_lab import VIEWS

    assert set(command.VIEWS) == set(VIEWS)

    shot = tmp_path / "cli.png"
    assert cli(["gui", "--view", "backward", "--screenshot", str(shot)]) == 0
    assert shot.stat().st_size > 10_000


def test_changing_the_bias_tells_the_lab(qtbot):
    from gui.kernel_editor import KernelEditor

    editor = KernelEditor()
    qtbot.addWidget(editor)
    with qtbot.waitSignal(editor.sigChanged, timeout=1000):
        editor.bias.setValue(editor.bias.value() + 1.0)
