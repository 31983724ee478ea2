"""The lab's matrix view (issue 16, item 2): im2col for the convolution, the transposed
matrix for the transposed convolution, in step with the player, its product equal to the
engine's F.conv2d / F.conv_transpose2d."""
from __future__ import annotations

import numpy as np
from PIL import Image

from cnnlab import tensor
from cnnlab.nn import functional as F
from gui.app import main
from test_conv_lab import lab, move_to  # noqa: F401 - the lab fixture and the pointer helper
from test_lab_transpose import engine_transpose, set_transpose


def engine_conv(lab) -> np.ndarray:
    s, k = lab.settings, lab.kernel
    b = tensor(np.array([k.bias_value()], np.float32))
    return F.conv2d(tensor(lab.inputs.array()[None]), tensor(k.weight()[None]), b, s.strides(), s.paddings(),
                    s.dilations()).numpy()[0, 0]


def hand_unfold(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    n = (h + 2 * p - k) // s + 1
    return np.array([[xp[ch, r * s + i, q * s + j] for r in range(n) for q in range(n)]
                     for ch in range(c) for i in range(k) for j in range(k)])


def test_the_button_switches_to_the_matrix_and_back(lab, qtbot):
    assert lab.stage.currentWidget() is not lab.matrix
    lab.matrix_button.click()
    assert lab.matrix_shown() and lab.stage.currentWidget() is lab.matrix
    assert lab.matrix.view.scene() is not None
    lab.matrix_button.click()
    assert not lab.matrix_shown() and lab.stage.currentWidget() is not lab.matrix


def test_im2col_product_is_the_engines_convolution(lab):
    lab.apply_view("im2col")
    with lab.batch():
        lab.kernel.bias.setValue(-1.5)
        lab.inputs.set_size(6, 6, 2)
    x, s, p = lab.inputs.array(), lab.settings.strides()[0], lab.settings.paddings()[0]
    sc = lab.matrix.view.scene()
    assert np.array_equal(sc.panel("matrix").values, hand_unfold(x, 3, s, p))  # a row per tap per channel
    assert np.array_equal(sc.panel("left").values[0], lab.kernel.weight().reshape(-1))
    lab.player.to_end()
    sc = lab.matrix.view.scene()
    want = engine_conv(lab)
    assert np.array_equal(sc.panel("output").values.astype(np.float32), want)
    assert np.array_equal(sc.panel("product").values[0].astype(np.float32), want.reshape(-1))


def test_the_column_and_output_cell_follow_the_player(lab):
    lab.apply_view("im2col")
    t = lab.trace
    for n in (1, 3, 9):
        lab.player.set_position(n)
        sc = lab.matrix.view.scene()
        assert sc.panel("matrix").marks["window"] == {(r, n - 1) for r in range(9)}
        assert sc.panel("output").marks["current"] == {t.steps[n - 1].out_pos}
        assert sc.panel("product").marks["current"] == {(0, n - 1)}
        assert lab.matrix.caption.text().endswith(f"= {t.steps[n - 1].arithmetic().split(' = ')[-1]}")
        filled = ~np.isnan(sc.panel("product").values[0])
        assert filled.sum() == n
    move_to(lab.matrix.view, lab.matrix.view.cell_center("matrix", 4, 2))
    assert lab.matrix.hover_info.text().startswith("X[4,2] = ") and "w[0,1,1]" in lab.matrix.hover_info.text()


def test_the_transposed_matrix_product_is_the_engines_transposed_convolution(lab):
    lab.inputs.set_size(3, 4)
    set_transpose(lab, stride=2, padding=1, output_padding=1, bias=0.25)
    lab.set_matrix_view(True)
    mp = lab.matrix.product
    assert mp.kind == "transpose" and mp.matrix.shape == (12, engine_transpose(lab).size)
    lab.player.set_position(5)  # running sums: the scatter's, row by row
    sc = lab.matrix.view.scene()
    scatter = lab.view.scene().panel("output").values[lab.trace.output_region()]
    assert np.array_equal(np.isnan(sc.panel("output").values), np.isnan(scatter))
    assert np.array_equal(np.nan_to_num(sc.panel("output").values), np.nan_to_num(scatter))
    window = sc.panel("matrix").marks["window"]  # row 4: input cell 4's stamp, where it lands
    assert {r for r, c in window} == {4} and {c for r, c in window} == set(np.flatnonzero(mp.support[4]))
    lab.player.to_end()
    out = lab.matrix.view.scene().panel("output").values.astype(np.float32)
    np.testing.assert_allclose(out, engine_transpose(lab), rtol=1e-6, atol=1e-6)


def test_other_operations_and_huge_inputs_get_a_message(lab):
    lab.set_matrix_view(True)
    lab.settings.set_values(mode="max")
    assert lab.matrix.product is None and lab.matrix.view.scene() is None
    lab.settings.set_values(mode="conv", backward=True)
    assert lab.matrix.product is None
    lab.settings.set_values(backward=False)
    assert lab.matrix.product is not None
    lab.inputs.set_size(32, 32)  # 9 x 900 entries would be specks
    assert lab.matrix.product is None
    lab.settings.set_values(stride=0)
    assert lab.matrix.product is None and lab.trace is None  # no output: the lab says why, no traceback


def test_matrix_views_screenshot(tmp_path):
    for view in ("im2col", "transpose-matrix"):
        shot = tmp_path / f"{view}.png"
        assert main(["--view", view, "--screenshot", str(shot), "--size", "1360x860"]) == 0
        with Image.open(shot) as im:
            assert im.size == (1360, 860)
