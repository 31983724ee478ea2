"""explain.conv_transpose2d_trace, its output-size explanation and `cnnlab animate
conv-transpose`: every number checked against the engine's F.conv_transpose2d (and, where
installed, PyTorch's)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import cnnlab
import cnnlab.nn.functional as F
from cnnlab import explain
from cnnlab.cli import main

SETTINGS = [  # stride, padding, output_padding, dilation
    (1, 0, 0, 1), (2, 0, 0, 1), (2, 1, 1, 1), (3, 1, 2, 1), (1, 2, 0, 2), (2, 2, 1, 2), ((2, 1), (0, 1), (1, 0), 1),
]


def engine(x, w, b, s, p, op, d):
    return F.conv_transpose2d(cnnlab.tensor(x[None]), cnnlab.tensor(w), None if b is None else cnnlab.tensor(b),
                              s, p, op, 1, d).numpy()[0]


@pytest.mark.parametrize("s,p,op,d", SETTINGS)
def test_trace_output_running_sums_and_the_equivalent_convolution(s, p, op, d):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, (2, 3, 4)).astype(np.float32)
    w = rng.integers(-2, 3, (2, 3, 3, 2)).astype(np.float32)
    b = np.array([0.5, -1.0, 2.0], np.float32)
    want = engine(x, w, b, s, p, op, d)
    for oc in range(3):
        t = explain.conv_transpose2d_trace(x, w, b, s, p, op, d, out_channel=oc)
        np.testing.assert_array_equal(t.output, want[oc])          # the engine's numbers, exactly
        assert len(t.steps) == x.size                                # one step per input cell
        assert [st.in_pos for st in t.steps][:2] == [(0, 0, 0), (0, 0, 1)]
        rows, cols = t.output_region()
        final = np.nan_to_num(t.canvas_after(len(t.steps)))[rows, cols] + t.bias
        np.testing.assert_allclose(final, t.output, atol=1e-5)     # the running sums arrive at the output
        # every step: value times the kernel slice, each product landing where the definition says
        st = t.steps[5]
        ch, i, j = st.in_pos
        np.testing.assert_array_equal(st.products, x[ch, i, j] * t.kernel[ch].reshape(-1))
        sp, dp = explain.pair(s), explain.pair(d)
        assert st.targets[-1] == (i * sp[0] + 2 * dp[0], j * sp[1] + 1 * dp[1])
        # the gather reading: zeros inserted, padded, correlated with the flipped kernel
        eq = F.conv2d(cnnlab.tensor(t.zero_inserted[None]), cnnlab.tensor(t.flipped_kernel[None]),
                      dilation=d).numpy()[0, 0]
        np.testing.assert_allclose(eq + t.bias, t.output, atol=1e-5)
        np.testing.assert_allclose(t.equivalent_trace().output + t.bias, t.output, atol=1e-5)


def test_trace_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((1, 3, 3)).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((1, 2, 3, 3)).astype(np.float32)
    t = explain.conv_transpose2d_trace(x, w, None, 2, 1, 1, 1, out_channel=1)
    ref = torch.nn.functional.conv_transpose2d(torch.tensor(x[None]), torch.tensor(w), None, 2, 1, 1)[0, 1]
    np.testing.assert_allclose(t.output, ref.numpy(), rtol=1e-5, atol=1e-6)


def test_step_arithmetic_and_zero_insertion_by_hand():
    t = explain.conv_transpose2d_trace([[1, 2], [3, 4]], [[1, 10], [100, 1000]], stride=1)
    assert t.steps[3].arithmetic() == ("x[1,1] = 4 scatters 4×kernel onto y[1..2,1..2]: y[1,1] = 1230 + 4×1 = 1234, "
                                       "y[1,2] = 2000 + 4×10 = 2040, y[2,1] = 3000 + 4×100 = 3400, "
                                       "y[2,2] = 4×1000 = 4000")
    t2 = explain.conv_transpose2d_trace([[1, 2], [3, 4]], [[1, 1], [1, 1]], stride=2, padding=1)
    assert t2.zero_inserted[0].tolist() == [[1, 0, 2], [0, 0, 0], [3, 0, 4]]   # pad d(k-1)-p = 0
    assert t2.equivalent_padding == (0, 0, 0, 0)
    assert t2.output.tolist() == [[1, 2], [3, 4]]   # 2x2 stamps, the outer ring cropped


def test_output_size_explained():
    c = explain.explain_conv_transpose_output_size(5, 3, s=2, p=1, output_padding=1)
    assert c.ok and c.size == 10 and c.derivation == "(5-1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 10"
    assert c.size == engine(np.zeros((1, 5, 5), np.float32), np.zeros((1, 1, 3, 3), np.float32), None,
                            2, 1, 1, 1).shape[-1]
    bad = explain.explain_conv_transpose_output_size(3, 3, s=2, output_padding=2)
    assert not bad.ok and bad.size is None and "smaller than the stride (2) or the dilation (1)" in bad.problems[0]
    crop = explain.check_conv_transpose2d((1, 1), 1, padding=1)
    assert not crop.ok and "crops" in crop.problems[0]
    assert explain.check_conv_transpose2d((2, 3, 3), 3, kernel_channels=1).problems[0].startswith("the kernel has 1")
    with pytest.raises(ValueError, match="output_padding"):
        explain.conv_transpose2d_trace(np.ones((3, 3)), np.ones((3, 3)), stride=1, output_padding=1)


def test_animate_one_frame_per_input_cell_nothing_cut_off(tmp_path, capsys):
    gif, frames = tmp_path / "t.gif", tmp_path / "frames"
    assert main(["animate", "conv-transpose", "--size", "3", "--kernel", "3", "--stride", "2", "-o", str(gif),
                 "--frames", str(frames)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 9
    assert "9 frames" in capsys.readouterr().out
    pngs = sorted(frames.glob("*.png"))
    assert len(pngs) == 9
    for png in pngs:
        a = np.asarray(Image.open(png).convert("RGB")).astype(int)
        border = np.concatenate([a[:6].reshape(-1, 3), a[-6:].reshape(-1, 3), a[:, :6].reshape(-1, 3),
                                 a[:, -6:].reshape(-1, 3)])
        assert (border == a[0, 0]).all(), f"{png.name}: something is drawn in the outer margin"


def test_animate_options_and_bad_settings(tmp_path, capsys):
    gif = tmp_path / "t.gif"
    assert main(["animate", "conv-transpose", "--size", "3x2", "--kernel", "3", "--stride", "2", "--padding", "1",
                 "--output-padding", "1", "--channels", "3", "--dilation", "2", "-o", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 18
    assert main(["animate", "conv-transpose", "--size", "3", "--kernel", "3", "--stride", "2",
                 "--output-padding", "2", "-o", str(gif)]) == 2
    assert "output_padding" in capsys.readouterr().err
