"""What the Convolution lab shows is exactly true and readable (issue 15): numbers fit their
cells with their sign, one colour map, every panel visible, controls describe what is shown,
hover texts in the arithmetic's terms, keys and presenter mode."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from cnnlab.colormap import signed_rgb
from gui.app import MainWindow
from gui.conv_lab import ConvLab
from gui.filters import filter_picture
from test_conv_lab import lab, move_to  # noqa: F401 - the lab fixture and the pointer helper

# a trained conv2 filter's slice and its input, with the values the issue saw drop their sign
TRAINED_W = np.array([[-0.04096, 0.0123, -0.2751], [0.1987, -0.0049, 0.3311], [-0.1502, 0.0871, -0.0009]],
                     np.float32)


def trained_input(h: int, w: int, c: int = 1, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 0.4, (c, h, w)).astype(np.float32)
    x.flat[0], x.flat[1] = -0.1008, 12345.678  # and one large value
    return x


def assert_numbers_fit(lab: ConvLab) -> int:
    lab.view.grab()  # paints, recording each number drawn
    drawn = lab.view.drawn
    for d in drawn:
        assert d.width <= d.box.width() - 4, (d.key, d.text, d.width, d.box.width())
        if d.value != 0:
            assert d.text.startswith("-") == (d.value < 0), (d.text, d.value)
        if math.isinf(d.value):
            continue
        shown = d.fmt.value(d.text)
        digits = d.fmt.digits
        tol = 0.5 * 10 ** (math.floor(math.log10(abs(d.value))) - digits + 1) if d.value else 0
        assert abs(shown - d.value) <= tol * 1.0001 + 1e-12, (d.text, d.fmt, d.value)
    return len(drawn)


LAYOUTS = list(itertools.product([(5, 5), (12, 9), (28, 28)], [1, 3], [(3, 3), (5, 2)], [(1, 0, 1), (2, 1, 2)]))


@pytest.mark.parametrize("size,channels,k,spd", LAYOUTS)
def test_every_number_fits_its_cell_with_its_sign(lab, size, channels, k, spd):
    stride, pad, dil = spd
    x = trained_input(*size, channels)
    w = np.resize(TRAINED_W, (channels, *k)).astype(np.float32)
    lab.load_layer(x, w, bias=-0.0371, stride=stride, padding=pad, dilation=dil, title="trained", origin="conv2 f5")
    if lab.trace is None:
        pytest.skip("no output for this layout")
    for pos in (1, lab.step_count()):
        lab.player.set_position(pos)
        n = assert_numbers_fit(lab)
        assert n > 0 or lab.view.cell_size() < 20  # big enough cells always show their numbers
    lab.settings.set_values(backward=True, wrt="weight")
    lab.player.set_position(2)
    assert_numbers_fit(lab)


def test_trained_layer_shows_negative_numbers_with_their_sign(lab):
    x = np.full((1, 5, 5), -0.1008, np.float32)
    lab.load_layer(x, TRAINED_W[None], title="conv2 filter 5")
    lab.player.set_position(1)
    assert assert_numbers_fit(lab) > 0
    texts = {(d.key, d.row, d.col): d for d in lab.view.drawn}
    k = texts[("kernel0", 0, 0)]
    assert k.text.startswith("-") and k.fmt.value(k.text) == pytest.approx(-0.04096, rel=0.02)
    assert texts[("input0", 2, 2)].text.startswith("-")
    move_to(lab.view, lab.view.cell_center("kernel0", 0, 0))  # the exact value on hover
    assert "= -0.04096" in lab.hover_info.text() and "w[0,0,0]" in lab.hover_info.text()
    assert lab.arithmetic.text().startswith("(-0.1008)×(-0.04096)")  # the arithmetic keeps its digits


def test_lab_and_filters_colour_a_kernel_the_same(lab):
    w = TRAINED_W[None, None]  # one filter, one input channel: the Filters tab's tile is this kernel
    picture = filter_picture(w)
    lab.load_layer(np.zeros((1, 5, 5), np.float32), w[0])
    panel = lab.view.scene().panel("kernel0")
    scale = float(np.abs(TRAINED_W).max())
    img = lab.view.grab().toImage()
    for r, c in np.ndindex(3, 3):
        lab_fill = signed_rgb(float(panel.values[r, c]), scale)
        assert tuple(int(v) for v in picture[r, c]) == lab_fill
        pt = lab.view.cell_center("kernel0", r, c) + QPoint(-int(lab.view.cell_size() * 0.4),
                                                            -int(lab.view.cell_size() * 0.4))
        px = img.pixelColor(pt)
        assert (px.red(), px.green(), px.blue()) == lab_fill
    assert picture[0, 0, 2] > picture[0, 0, 0]  # -0.04096: bluish, not red
    assert lab.colour_bar.labels()[0].startswith("− negative (blue)")


@pytest.mark.parametrize("window_size", [(1360, 860), (1024, 700)])
def test_every_panel_is_visible_or_scrolls_into_view(qtbot, window_size):
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(*window_size)
    win.show()
    qtbot.waitExposed(win)
    lab = win.conv_lab
    win.tabs.setCurrentWidget(lab)
    cases = [dict(x=(1, 28, 28), k=(5, 5), pad=2), dict(x=(1, 28, 28), k=(3, 3), pad=1),
             dict(x=(3, 32, 32), k=(3, 3), pad=1), dict(x=(1, 32, 32), k=(7, 7), pad=8),
             dict(x=(3, 32, 32), k=(7, 7), pad=8, back="weight"), dict(x=(3, 8, 8), k=(2, 2), pad=0, back="input"),
             dict(x=(1, 3, 3), k=(1, 1), pad=0)]
    for case in cases:
        x = np.random.default_rng(1).normal(size=case["x"]).astype(np.float32)
        w = np.ones((case["x"][0], *case["k"]), np.float32)
        lab.load_layer(x, w, padding=case["pad"])
        if "back" in case:
            lab.settings.set_values(backward=True, wrt=case["back"])
        QApplication.processEvents()
        view, area = lab.view, lab.view_scroll
        port = area.viewport().size()
        reach_w = port.width() + area.horizontalScrollBar().maximum()
        reach_h = port.height() + area.verticalScrollBar().maximum()
        for key, rect in view.panel_rects().items():
            assert rect.left() >= 0 and rect.top() >= 0, (case, key, rect)
            assert rect.right() <= min(view.width(), reach_w), (case, key, rect, view.width(), port)
            assert rect.bottom() <= min(view.height(), reach_h), (case, key, rect)
        if case["x"] == (1, 28, 28):  # the default conv1 "Open in lab" fits with no scrolling at all
            assert area.horizontalScrollBar().maximum() == 0 and area.verticalScrollBar().maximum() == 0
        lab.settings.set_values(backward=False)


def test_open_in_lab_controls_describe_what_is_shown(lab):
    x = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    lab.load_layer(x, np.ones((3, 3, 3), np.float32), padding=1, title="conv1 filter 2", origin="conv1 filter 2")
    i = lab.inputs
    assert (i.rows.value(), i.cols.value(), i.n_channels()) == (32, 32, 3)
    assert lab.kernel.preset_name() == "from layer conv1 filter 2"
    assert lab.kernel.kernel_size() == (3, 3) and i.source.currentText() == "typed numbers"
    lab.load_layer(np.zeros((1, 28, 28), np.float32), np.ones((1, 5, 5), np.float32), padding=2)
    assert (i.rows.value(), i.cols.value(), i.n_channels()) == (28, 28, 1)
    assert lab.kernel.preset_name() == "custom" and lab.kernel.kernel_size() == (5, 5)
    lab.kernel.set_kernel("sobel-x", 3)  # choosing a preset again leaves 'custom'
    assert lab.kernel.preset_name() == "sobel-x"


def _avg_pool_by_hand(x: np.ndarray, k: int, s: int, p: int, include: bool) -> np.ndarray:
    """Each window's sum over the real cells, divided by k*k or by how many real cells it holds."""
    n = (x.shape[0] + 2 * p - k) // s + 1
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            rows = range(max(0, i * s - p), min(x.shape[0], i * s - p + k))
            cols = range(max(0, j * s - p), min(x.shape[1], j * s - p + k))
            total = sum(float(x[r, c]) for r in rows for c in cols)
            out[i, j] = total / (k * k if include else len(rows) * len(cols))
    return out


@pytest.mark.parametrize("include", [True, False])
def test_average_pooling_says_which_cells_count(lab, include):
    lab.inputs.set_size(4, 4)
    lab.kernel.set_kernel("pattern", 3)
    lab.settings.set_values(mode="avg", stride=2, padding=1, count_include_pad=include)
    x = lab.inputs.array()[None]
    np.testing.assert_allclose(lab.trace.output, _avg_pool_by_hand(x[0, 0], 3, 2, 1, include), rtol=1e-6)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:  # CI has no PyTorch; the hand-computed pooling above still checks
        pass
    else:
        want = F.avg_pool2d(torch.from_numpy(x), 3, 2, 1, count_include_pad=include)[0, 0].numpy()
        np.testing.assert_allclose(lab.trace.output, want, rtol=1e-6)
    lab.player.set_position(1)  # the corner window: 5 of its 9 cells are padding
    text = lab.arithmetic.text()
    assert ("/ 9 =" in text and "5 padding zero(s) counted" in text) if include else \
        ("/ 4 =" in text and "5 padding cell(s) not counted" in text)
    gaps = lab.view.scene().panel("input0").marks.get("gap", set())
    assert (len(gaps) == 5) != include
    assert lab.settings.include_pad.isEnabled()


def test_hover_texts_use_the_arithmetics_names_and_coordinates(lab):
    lab.settings.set_values(padding=1)
    view = lab.view
    move_to(view, view.cell_center("input0", 2, 3))  # padded (2, 3) is input (1, 2)
    text = lab.hover_info.text()
    assert text.startswith("input x[0,1,2] = ") and "input0" not in text and "output[" in text
    move_to(view, view.cell_center("output", 0, 0))
    assert "padding (outside the input)" in lab.hover_info.text() and "x[0,0,0]" in lab.hover_info.text()
    move_to(view, view.cell_center("kernel0", 1, 1))
    assert lab.hover_info.text().startswith("weight w[0,1,1] = ")
    lab.settings.set_values(backward=True, wrt="weight")
    lab.player.set_position(3)
    move_to(view, view.cell_center("grad_w0_0", 0, 0))
    assert lab.hover_info.text().startswith("dL/dw[0,0,0,0]") and "grad_w" not in lab.hover_info.text()


def test_no_stale_hover_outline_after_the_grid_shrinks(lab):
    lab.inputs.set_size(9, 9)
    move_to(lab.view, lab.view.cell_center("input0", 8, 8))
    assert lab.view.scene().panel("input0").marks["hover"] == {(8, 8)}
    lab.inputs.set_size(5, 5)
    marks = lab.view.scene().panel("input0").marks.get("hover", set())
    assert all(r < 5 and c < 5 for r, c in marks) and lab.hover_info.text() == ""


def test_export_errors_and_status_stay_true(lab, tmp_path):
    lab.settings.set_values(stride=0)
    lab._report_export(lambda: lab.export(gif=tmp_path / "x.gif"), str(tmp_path / "x.gif"))
    assert "Nothing exported" in lab.problems.text() and "exported" not in lab.status.text()
    lab.settings.set_values(stride=1)
    lab._report_export(lambda: lab.export(gif=tmp_path / "no" / "dir" / "x.gif"), "no/dir/x.gif")
    assert "Export failed" in lab.problems.text()
    lab._report_export(lambda: lab.export(gif=tmp_path / "x.gif"), str(tmp_path / "x.gif"))
    assert lab.problems.text() == "" and lab.status.text().startswith("exported 9 frames")
    lab.player.reset_button.click()  # already at step 0: the status line still refreshes
    assert lab.status.text().startswith("step 0 of 9")


def test_keys_drive_the_player(lab, qtbot):
    lab.view.setFocus()
    p = lab.player
    QTest.keyClick(lab.view, Qt.Key.Key_Right)
    QTest.keyClick(lab.view, Qt.Key.Key_Right)
    assert p.position == 2
    QTest.keyClick(lab.view, Qt.Key.Key_Left)
    assert p.position == 1
    QTest.keyClick(lab.view, Qt.Key.Key_End)
    assert p.position == 9
    QTest.keyClick(lab.view, Qt.Key.Key_Home)
    assert p.position == 0
    speed = p.speed.value()
    QTest.keyClick(lab.view, Qt.Key.Key_Plus)
    assert p.speed.value() > speed
    QTest.keyClick(lab.view, Qt.Key.Key_Minus)
    assert p.speed.value() == speed
    QTest.keyClick(lab.view, Qt.Key.Key_Space)
    assert p.is_playing()
    QTest.keyClick(lab.view, Qt.Key.Key_Space)
    assert not p.is_playing()
    lab.inputs.set_source("typed numbers")  # a text field keeps its keys
    lab.inputs.text.setFocus()
    lab.inputs.text.moveCursor(lab.inputs.text.textCursor().MoveOperation.End)
    QTest.keyClick(lab.inputs.text, Qt.Key.Key_Space)
    assert not p.is_playing() and lab.inputs.text.toPlainText().endswith(" ")


def test_presenter_mode(lab, qtbot):
    lab.view.setFocus()
    QTest.keyClick(lab.view, Qt.Key.Key_F5)
    assert lab.presenter() and not lab.controls.isVisible() and lab.plain.isVisible()
    lab.player.set_position(1)
    assert lab.plain.text().startswith("Multiply each of the 9 numbers") and "output[0,0]" in lab.plain.text()
    small = lab.view.cell_size()
    assert assert_numbers_fit(lab) > 0 and small > 0
    lab.set_presenter(False)
    assert lab.controls.isVisible() and not lab.plain.isVisible()


def test_gui_command_accepts_presenter(tmp_path):
    from cnnlab.cli import main as cli

    shot = tmp_path / "p.png"
    assert cli(["gui", "--view", "pool", "--presenter", "--screenshot", str(shot)]) == 0
    assert shot.stat().st_size > 10_000
