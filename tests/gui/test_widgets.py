"""Every leaf widget of the app on its own (offscreen): built alone, fed real data, and
checked for what it shows -- values, labels, sizes and signals."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QFontMetrics, QImage

from cnnlab import explain
from cnnlab.explain import presets
from gui.confusion import Confusion
from gui.curves import Curves, RunCurves
from gui.drawing_canvas import SIDE, DrawingCanvas
from gui.feature_maps import FeatureMaps
from gui.filters import Filters
from gui.grad_bars import GradBars
from gui.image_grid import ImageGrid
from gui.input_editor import InputEditor
from gui.kernel_editor import KernelEditor
from gui.mosaic import PAD_COLOUR, mosaic
from gui.player import Player
from gui.probabilities import Probabilities
from gui.probe_picker import ProbePicker
from gui.scene_view import SceneView
from gui.settings_panel import SettingsPanel
from gui.shape_picture import ShapePicture


def shown(qtbot, widget, w: int = 500, h: int = 400):
    qtbot.addWidget(widget)
    widget.resize(w, h)
    widget.show()
    return widget


def step(epoch: int, batch: int, batches: int, loss: float, acc: float) -> dict:
    return dict(epoch=epoch, batch=batch, batches=batches, step=(epoch - 1) * batches + batch, loss=loss,
                accuracy=acc, lr=1e-3, images_per_s=100.0, elapsed=0.1)


def test_curves_plot_steps_and_epochs_and_list_finished_runs(qtbot):
    curves = shown(qtbot, Curves())
    curves.start_run("convnet · mnist", 13_686, epochs=2)
    curves.add_steps([step(1, b, 4, 2.0 / b, 0.2 * b) for b in range(1, 5)])
    assert curves.point_count() == 4
    assert curves.current.loss == pytest.approx([2.0, 1.0, 2 / 3, 0.5])
    curves.add_epoch(1, 0.4, 0.9)
    assert curves.current.val_x == [1] and curves.current.val_acc == [0.9]
    done = curves.finish_run("finished")
    assert done is not None and len(curves.finished) == 1
    assert "convnet · mnist" in curves.runs.item(0).text() and "13,686 params" in curves.runs.item(0).text()
    loaded = RunCurves.from_history("loaded", 10, {"steps": [step(1, 1, 2, 1.5, 0.5), step(1, 2, 2, 1.0, 0.75)],
                                                   "epochs": [{"epoch": 1, "val_loss": 0.9, "val_accuracy": 0.8}]})
    curves.show_run(loaded)
    assert curves.point_count() == 2 and curves.current.val_acc == [0.8]


def test_confusion_shows_counts_and_accuracy(qtbot):
    view = shown(qtbot, Confusion())
    m = np.array([[5, 1, 0], [0, 3, 1], [2, 0, 8]])
    view.set_matrix(m, ["a", "b", "c"])
    assert np.array_equal(view.matrix, m)
    assert [t.toPlainText() for t in view._texts] == [str(v) for v in m.ravel()]
    assert "accuracy 80.0% of 20" in view.plotItem.titleLabel.text  # 16 of 20 on the diagonal
    view.set_matrix(m, ["a", "b", "c"], "epoch 2 · val acc 80.0%")
    assert "epoch 2" in view.plotItem.titleLabel.text
    view.clear_matrix()
    assert view.matrix is None and all(t.toPlainText() == "" for t in view._texts)


def test_image_grid_shows_each_panel_and_reports_the_pixel_clicked(qtbot):
    grid = shown(qtbot, ImageGrid(columns=2), 600, 400)
    red = np.zeros((4, 6, 3), np.uint8)
    red[..., 0] = 255
    grid.set_panels([("a", "first", red), ("b", "second", np.full((3, 3, 3), 9, np.uint8))])
    assert list(grid.frames) == ["a", "b"] and np.array_equal(grid.frames["a"], red)
    assert grid.titles["b"].text == "second" and grid.items["a"].image.shape == (4, 6, 3)

    class Click:
        def pos(self):
            return QPointF(5.2, 2.7)

    with qtbot.waitSignal(grid.sigPanelClicked) as clicked:
        grid.items["a"].mouseClickEvent(Click())
    assert clicked.args == ["a", 2, 5]  # row, column
    grid.clear_panels()
    assert grid.frames == {} and grid.items == {}


def test_feature_maps_show_the_input_and_each_layer(qtbot):
    maps = shown(qtbot, FeatureMaps(), 700, 400)
    image = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8)
    acts = {"conv1": np.arange(2 * 4 * 4, dtype=np.float32).reshape(1, 2, 4, 4),
            "linear1": np.array([[0.5, -1.0, 2.0]], np.float32), "output": np.zeros((1, 3))}
    maps.set_activations(image, acts, {"conv1": "Conv2d", "linear1": "Linear"}, step=7)
    assert list(maps.grid.frames) == ["input", "conv1", "linear1"]  # not the output
    assert maps.grid.titles["conv1"].text == "conv1 2×4×4<br>before activation" and maps.step == 7 and maps.updates == 1
    assert np.array_equal(maps.grid.frames["input"], mosaic(image, mode="all"))
    assert "step 7" in maps.caption.text()
    maps.set_activations(image, acts, step=None)
    assert "before training" in maps.caption.text()


def test_flat_maps_name_their_units_and_the_last_layer_its_classes(qtbot):
    maps = shown(qtbot, FeatureMaps(), 900, 500)
    rng = np.random.default_rng(3)
    conv = rng.normal(size=(1, 2, 4, 4)).astype(np.float32)
    fc1, fc2 = rng.normal(size=(1, 5)).astype(np.float32), np.array([[0.5, -1.25, 2.0]], np.float32)
    acts = {"conv1": conv, "relu1": np.maximum(conv, 0), "flatten": np.maximum(conv, 0).reshape(1, -1),
            "fc1": fc1, "relu2": np.maximum(fc1, 0), "fc2": fc2, "output": fc2}
    kinds = {"conv1": "Conv2d", "relu1": "ReLU", "flatten": "Flatten", "fc1": "Linear", "relu2": "ReLU", "fc2": "Linear"}
    maps.set_activations(np.zeros((1, 8, 8), np.float32), acts, kinds, step=1, classes=["cat", "dog", "bird"])
    titles = {k: t.text for k, t in maps.grid.titles.items()}
    assert [k for k, t in titles.items() if t.endswith("<br>before activation")] == ["conv1", "fc1", "fc2"]
    assert titles["fc2"] == "fc2: classes cat…bird<br>before activation"
    # the last layer's cells are named on an axis, each name under its own cell
    assert list(maps.grid.axes) == ["fc2"] and maps.grid.axes["fc2"].full == [(1.5, "cat"), (2.5, "dog"), (3.5, "bird")]
    axis = maps.grid.axes["fc2"]
    lo, hi = axis.range
    cell_px = axis.width() / (hi - lo)
    metrics = QFontMetrics(axis._font)
    for (x, full), (_, shown_name) in zip(axis.full, axis.shown):
        assert full.startswith(shown_name) and metrics.horizontalAdvance(shown_name) <= max(cell_px - 2, metrics.horizontalAdvance(shown_name[:1]))
    # hover: every flat unit by index (and class), its value read back; padding said to be padding
    hover = maps.grid.hover_text
    assert hover("fc2", 1, 2) == "fc2 unit 1 (dog) = -1.25"
    fc1_side = 3  # 5 units: 2 rows of 3, framed by one pixel
    for unit in range(5):
        text = hover("fc1", 1 + unit // fc1_side, 1 + unit % fc1_side)
        assert text.startswith(f"fc1 unit {unit} = ") and float(text.split("= ")[1]) == pytest.approx(fc1[0, unit], rel=1e-3)
    assert hover("fc1", 2, 3).startswith("fc1: padding") and tuple(maps.grid.frames["fc1"][2, 3]) == tuple(PAD_COLOUR)
    assert hover("flatten", 1 + 2, 1 + 3).startswith("flatten unit 15 = ")  # 32 units, 6 a row: 2 * 6 + 3
    text = hover("conv1", 1 + 2, 1 + 5 + 1)  # channel 1 is the second 4x4 tile, after a 1-pixel gap
    assert text.startswith("conv1 channel 1 (2, 1) = ") and float(text.split("= ")[1]) == pytest.approx(conv[0, 1, 2, 1], rel=1e-3)
    assert hover("conv1", 0, 0) == "" and hover("conv1", 1, 5) == ""  # the frame, a gap

    class Hover:
        def isExit(self):
            return False

        def pos(self):
            return QPointF(2.5, 1.5)

    maps.grid._hovered(Hover(), "fc2")
    assert maps.readout.text() == "fc2 unit 1 (dog) = -1.25" == maps.grid.items["fc2"].toolTip()


def test_filters_draw_kernels_and_name_the_one_clicked(qtbot):
    filters = shown(qtbot, Filters(), 500, 500)
    w1 = np.arange(4 * 1 * 3 * 3, dtype=np.float32).reshape(4, 1, 3, 3) - 18
    w2 = np.ones((2, 4, 3, 3), np.float32)
    filters.set_params({"conv1.weight": w1, "conv1.bias": np.zeros(4), "conv2.weight": w2,
                        "fc.weight": np.ones((3, 5))})
    assert list(filters.grid.frames) == ["conv1", "conv2"]  # conv weights only
    assert filters.grid.titles["conv2"].text == "conv2 2×4×3×3"
    got = []
    filters.sigLayerClicked.connect(lambda *a: got.append(a))
    filters._clicked("conv2", 5, 9)  # row 5: filter 1; column 9: input channel 2 (3 cells + 1 gap each)
    cols = (filters.grid.frames["conv1"].shape[1] + 1) // 4
    filters._clicked("conv1", 0, 4)  # the second whole filter of the first row
    assert got == [("conv2", 1, 2), ("conv1", 1 if cols > 1 else 0, -1)]


def test_grad_bars_show_each_layers_rms(qtbot):
    bars = shown(qtbot, GradBars())
    grads = {"conv1.weight": np.full((2, 2), 3.0), "conv1.bias": np.full(2, 3.0), "fc.weight": np.full(4, 0.01)}
    bars.set_grads(grads)
    assert bars.values == pytest.approx({"conv1": 3.0, "fc": 0.01})
    assert list(bars.bars.opts["y"]) == [0, 1]
    widths = bars.bars.opts["width"]
    assert widths[0] - widths[1] == pytest.approx(np.log10(3.0 / 0.01))  # log scale
    bars.clear_bars()
    assert bars.values == {}


def test_probabilities_show_softmax_and_the_verdict(qtbot):
    probs = shown(qtbot, Probabilities())
    probs.set_logits(np.log([0.1, 0.7, 0.2]), ["cat", "dog", "bird"], true_label=2)
    assert probs.probabilities == pytest.approx([0.1, 0.7, 0.2]) and probs.predicted == 1
    assert probs.title == "true bird ✗<br>predicted dog (70%)"
    assert list(probs.bars.opts["width"]) == pytest.approx([0.1, 0.7, 0.2])
    probs.set_logits(np.log([0.1, 0.7, 0.2]), ["cat", "dog", "bird"], true_label=1)
    assert probs.title.startswith("true dog ✓")
    probs.clear_bars()
    assert probs.probabilities.size == 0 and probs.predicted is None


def test_probe_picker_shows_a_button_per_sample_and_says_which_is_chosen(qtbot):
    picker = shown(qtbot, ProbePicker(), 500, 60)
    images = [np.full((1, 8, 8), v, np.float32) for v in (0.0, 0.5, 1.0)]
    picker.set_samples(images, [3, 1, 7], [str(i) for i in range(10)], chosen=1)
    assert len(picker.buttons) == 3 and picker.group.checkedId() == 1
    assert picker.buttons[2].toolTip().endswith("class 7")
    icon = picker.buttons[2].icon().pixmap(28, 28).toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    assert icon.pixelColor(14, 14).value() == 255  # the white sample
    with qtbot.waitSignal(picker.sigChosen) as chosen:
        qtbot.mouseClick(picker.buttons[2], Qt.MouseButton.LeftButton)
    assert chosen.args == [2] and picker.group.checkedId() == 2
    picker.set_samples(images[:1], [0], ["zero"])
    assert len(picker.buttons) == 1


def test_drawing_canvas_turns_strokes_into_a_framed_image(qtbot):
    canvas = shown(qtbot, DrawingCanvas(), SIDE, SIDE)
    assert canvas.is_empty()
    with qtbot.waitSignal(canvas.sigChanged):
        canvas.stroke([(SIDE / 2, 40), (SIDE / 2, SIDE - 40)])  # a vertical bar
    a = canvas.array(28, 28)
    assert a.shape == (1, 28, 28) and a.dtype == np.float32 and not canvas.is_empty()
    ys, xs = np.nonzero(a[0] > 0.1)
    assert ys.max() - ys.min() >= 18 and xs.max() - xs.min() <= 10  # tall and thin, 20 pixels like MNIST
    assert abs(xs.mean() - 13.5) < 2
    assert canvas.array(10, 20, channels=3, mnist=False).shape == (3, 10, 20)
    ink = canvas.grey().sum()
    canvas.stroke([(SIDE / 2, 40), (SIDE / 2, SIDE - 40)], erase=True)  # the right button
    assert canvas.grey().sum() < 0.05 * ink  # only the antialiased rim is left
    canvas.clear()
    assert canvas.is_empty()
    canvas.set_array(np.ones((1, 4, 4), np.float32))
    assert canvas.grey().min() == 1.0


def test_kernel_editor_presets_sizes_channels_and_bias(qtbot):
    editor = shown(qtbot, KernelEditor())
    with qtbot.waitSignal(editor.sigChanged):
        editor.set_kernel("box blur", 3, 5)
    assert editor.kernel_size() == (3, 5)
    np.testing.assert_allclose(editor.weight(), np.full((1, 3, 5), 1 / 15), rtol=1e-6)
    assert (editor.table.rowCount(), editor.table.columnCount()) == (3, 5)
    editor.set_channels(3)
    assert editor.weight().shape == (3, 3, 5) and editor.slice.count() == 3 and editor.slice.isEnabled()
    editor.set_weights(np.arange(4, dtype=np.float32).reshape(2, 2))
    assert editor.kernel_size() == (2, 2) and editor.weight()[2, 1, 1] == 3
    assert editor.table.item(1, 0).text() == "2"
    editor.table.item(0, 1).setText("7")  # typing in a cell edits the shown slice
    assert editor.weight()[0, 0, 1] == 7
    editor.bias.setValue(1.5)
    assert editor.bias_value() == 1.5
    editor.set_weights_enabled(False)
    assert not editor.table.isEnabled() and editor.title().startswith("Pooling window")


def test_input_editor_sources_sizes_and_drawing(qtbot):
    editor = shown(qtbot, InputEditor(), 330, 400)
    editor.set_size(4, 6, 3)
    np.testing.assert_array_equal(editor.array(), presets.small_integers(4, 6, 3, seed=0, high=4))
    editor.set_source("picture: checkerboard")
    np.testing.assert_array_equal(editor.array(), presets.synthetic_image("checkerboard", 4, 6, 3))
    editor.set_source("typed")
    editor.text.setPlainText("1 2\n3 4")
    np.testing.assert_array_equal(editor.array(), [[[1, 2], [3, 4]]])
    assert editor.error.text() == ""
    editor.text.setPlainText("1 2\n3")
    assert editor.error.text() != ""  # a ragged row says why
    editor.set_source("drawn")
    with qtbot.waitSignal(editor.sigChanged):
        editor.paint(1, 2, True)
    drawn = editor.array()
    assert drawn.shape == (3, 4, 6) and list(drawn[:, 1, 2]) == [1, 1, 1] and drawn.sum() == 3  # every channel


def test_player_steps_scrubs_and_plays_to_the_end(qtbot, spin):
    player = shown(qtbot, Player(), 600, 50)
    player.set_count(5)
    assert (player.position, player.label.text()) == (0, "step 0 / 5") and not player.back_button.isEnabled()
    with qtbot.waitSignal(player.sigPositionChanged) as moved:
        player.step_forward()
    assert moved.args == [1]
    player.slider.setValue(4)
    assert player.position == 4 and player.label.text() == "step 4 / 5"
    player.to_end()
    assert player.position == 5 and not player.forward_button.isEnabled()
    player.speed.setValue(60)
    player.reset()
    player.play()
    assert player.is_playing()
    spin(500)  # 60 steps a second: the five steps are played, then it stops by itself
    assert player.position == 5 and not player.is_playing()
    player.set_count(2)
    assert player.position == 2  # clamped to the new trace


def test_scene_view_lays_out_a_trace_and_finds_cells(qtbot):
    view = shown(qtbot, SceneView(), 700, 500)
    x = presets.small_integers(5, 5)
    trace = explain.conv2d_trace(x, presets.make_kernel("pattern", 3)[None], 0.0)
    view.set_scene(explain.scene(trace, 4))
    keys = [p.key for p, _ in view._placed]
    assert keys == ["input0", "kernel0", "output"]
    assert view.cell_at(view.cell_center("output", 1, 2)) == ("output", 1, 2)
    hovered = []
    view.sigCellHovered.connect(lambda *a: hovered.append(a))
    qtbot.mouseMove(view, view.cell_center("input0", 3, 0))
    assert hovered[-1] == ("input0", 3, 0)
    assert view.cell_at(QPoint(1, 1)) is None
    view.set_message("stride must be >= 1")
    assert view.scene() is None and view._placed == []
    picture = view.grab().toImage()
    assert picture.width() == 700  # painted without a scene: the message instead


def test_settings_panel_reports_its_values(qtbot):
    panel = shown(qtbot, SettingsPanel(), 330, 400)
    with qtbot.waitSignal(panel.sigChanged):
        panel.set_values(mode="max", stride=(2, 3), padding=1, dilation=2)
    assert (panel.mode(), panel.strides(), panel.paddings(), panel.dilations()) == ("max", (2, 3), (1, 1), (2, 2))
    assert not panel.flip.isEnabled() and not panel.upstream.isEnabled()  # pooling, forward
    panel.set_values(mode="conv", backward=True, wrt="weight")
    assert panel.backward() and panel.wrt() == "weight" and panel.gradient.isEnabled()
    panel.set_channels(3)
    assert panel.channel.maximum() == 2


def test_shape_picture_draws_a_column_per_layer_and_reports_clicks(qtbot):
    picture = shown(qtbot, ShapePicture(), 400, 200)
    picture.set_layers([("input", "Input", (1, 28, 28), True), ("conv1", "Conv2d", (8, 26, 26), True),
                        ("fc", "Linear", (10,), False)])
    assert picture.minimumWidth() >= 3 * 60
    with qtbot.waitSignal(picture.sigLayerClicked) as clicked:
        qtbot.mouseClick(picture, Qt.MouseButton.LeftButton, pos=QPoint(int(picture._column() * 1.5), 50))
    assert clicked.args == [1] and picture.selected == 1
    image = picture.grab().toImage()
    reds = sum(1 for x in range(image.width()) for y in range(0, image.height(), 4)
               if image.pixelColor(x, y).red() > 150 and image.pixelColor(x, y).green() < 90)
    assert reds > 0  # the layer that does not fit is drawn red
