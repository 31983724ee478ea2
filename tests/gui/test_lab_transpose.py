"""The lab's transposed convolution (issue 16, item 1): both readings side by side, in step,
their numbers equal to the engine's F.conv_transpose2d; the output size live; invalid
settings explained, never raised."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab import explain, tensor
from cnnlab.nn import functional as F
from gui.app import main
from test_conv_lab import lab, move_to  # noqa: F401 - the lab fixture and the pointer helper
from test_lab_truth import assert_numbers_fit


def engine_transpose(lab) -> np.ndarray:
    """F.conv_transpose2d on what the lab's controls say, independent of the trace."""
    s, k = lab.settings, lab.kernel
    x, w = lab.inputs.array(), k.weight()
    b = tensor(np.array([k.bias_value()], np.float32))
    return F.conv_transpose2d(tensor(x[None]), tensor(w[:, None]), b, s.strides(), s.paddings(),
                              s.output_paddings(), 1, s.dilations()).numpy()[0, 0]


def set_transpose(lab, **kw) -> None:
    with lab.batch():
        lab.kernel.bias.setValue(kw.pop("bias", 0.0))
        lab.settings.set_values(mode="transpose", **kw)


def test_output_padding_is_offered_only_for_the_transposed_convolution(lab):
    form = lab.settings._form
    row = lab.settings._output_padding_row
    assert not form.isRowVisible(row)
    lab.settings.set_values(mode="transpose")
    assert form.isRowVisible(row) and lab.gather.isVisible() and lab.scatter_title.isVisible()
    assert not lab.settings.direction.isEnabled() and not lab.settings.backward()
    lab.settings.set_values(mode="max")
    assert not form.isRowVisible(row) and not lab.gather.isVisible()


@pytest.mark.parametrize("kw", [dict(stride=2), dict(stride=2, padding=1, output_padding=1),
                                dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2), dilation=(1, 2)),
                                dict(stride=1, padding=1, dilation=2, output_padding=1)])
def test_both_readings_end_at_the_engines_output(lab, kw):
    lab.inputs.set_size(3, 4)
    set_transpose(lab, bias=0.5, **kw)
    assert lab.trace is not None, lab.problems.text()
    want = engine_transpose(lab)
    assert lab.output_shape() == want.shape and lab.step_count() == 12
    lab.player.to_end()
    scatter = lab.view.scene().panel("output").values[lab.trace.output_region()]
    gather = lab.gather.view.scene().panel("gather").values
    assert np.array_equal(scatter + 0.5, want)  # the canvas holds the sums; the bias comes after
    assert np.array_equal(gather + 0.5, want)
    assert lab.gather.agreement.text().startswith("✓")


def test_the_readings_step_in_sync(lab):
    set_transpose(lab, stride=2, padding=1, output_padding=1)
    t = lab.trace
    for n in (1, 4, 7):
        lab.player.set_position(n)
        step = t.steps[n - 1]
        assert lab.arithmetic.text() == step.arithmetic()
        scatter = lab.view.scene().panel("output").values[t.output_region()]
        gather = lab.gather.view.scene()
        assert np.array_equal(np.isnan(scatter), np.isnan(gather.panel("gather").values))
        assert np.array_equal(np.nan_to_num(scatter), np.nan_to_num(gather.panel("gather").values))
        # the gather's z holds the same input cell, stride apart, as the scatter's current one
        r, c = step.in_pos[1] * 2 + t.equivalent_padding[0], step.in_pos[2] * 2 + t.equivalent_padding[2]
        assert gather.panel("z0").marks["current"] == {(r, c)}
        assert gather.panel("z0").values[r, c] == step.value
        assert "✓" in lab.gather.agreement.text()
        assert_numbers_fit(lab)


def test_the_size_derivation_is_live_and_bad_settings_are_explained(lab):
    set_transpose(lab, stride=2, padding=1, output_padding=1)
    assert "rows: (5-1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 10" in lab.derivation.text()
    assert "gather: 1 zero(s) between input cells, pad d*(k-1)-p = 1*(3-1)-1 = 1" in lab.derivation.text()
    lab.settings.set_values(output_padding=2)  # not below the stride (2) nor the dilation (1)
    assert lab.trace is None and lab.step_count() == 0
    assert "output_padding (2) must be smaller than the stride (2)" in lab.problems.text()
    assert not lab.gather.isVisible()
    lab.settings.set_values(output_padding=0, stride=1, padding=4)  # crops more than the scatter covers
    assert lab.trace is None and "padding crops" in lab.problems.text()
    lab.settings.set_values(padding=-1)
    assert "cannot be negative" in lab.problems.text()
    lab.settings.set_values(padding=0, dilation=2, output_padding=1)  # allowed: below the dilation
    assert lab.trace is not None and lab.output_shape() == engine_transpose(lab).shape


def test_hover_speaks_in_output_coordinates(lab):
    set_transpose(lab, stride=2, padding=1)
    lab.player.set_position(1)
    move_to(lab.view, lab.view.cell_center("output", 1, 1))  # canvas (1,1) = output y[0,0] under padding 1
    assert lab.hover_info.text().startswith("output y[0,0]")
    move_to(lab.view, lab.view.cell_center("output", 0, 0))
    assert "cropped by the padding" in lab.hover_info.text()
    lab.player.to_end()
    gv = lab.gather.view
    move_to(gv, gv.cell_center("gather", 0, 1))
    eq = lab.trace.equivalent_trace()
    assert lab.gather.hover_info.text().endswith(eq.steps[1].arithmetic(max_terms=12))
    assert len(gv.scene().panel("z0").marks["hover"]) == 9  # the window of a 3x3 kernel


def test_transpose_view_exports_and_screenshots(lab, tmp_path):
    lab.apply_view("transpose")
    assert lab.settings.mode() == "transpose" and lab.settings.output_paddings() == (1, 1)
    assert lab.export(gif=tmp_path / "t.gif") == 9
    with Image.open(tmp_path / "t.gif") as im:
        assert im.n_frames == 9
    shot = tmp_path / "t.png"
    assert main(["--view", "transpose", "--screenshot", str(shot), "--size", "1360x860"]) == 0
    with Image.open(shot) as im:
        assert im.size == (1360, 860)  # nothing widened the window


def test_explain_hover_connects_the_scatter(lab):
    set_transpose(lab, stride=2)
    sc = explain.scene(lab.trace, 3)
    cells = explain.hover(sc, lab.trace, "input0", 0, 1)
    assert {c for k, c in cells if k == "output"} == {(r, c) for r in range(3) for c in range(2, 5)}
