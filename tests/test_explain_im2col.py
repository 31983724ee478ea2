"""Convolution as a matrix product (cnnlab.explain.im2col) and the gather reading of a
transposed convolution, checked against the engine's F.conv2d / F.conv_transpose2d, a
hand-written unfold and (when installed) PyTorch."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from cnnlab import explain, tensor
from cnnlab.nn import functional as F

CONV_SETTINGS = list(itertools.product([(1, 1), (2, 1), (2, 3)], [(0, 0), (1, 2)], [(1, 1), (2, 1)]))
TRANSPOSE_SETTINGS = [  # stride, padding, output_padding, dilation
    ((1, 1), (0, 0), (0, 0), (1, 1)), ((2, 2), (0, 0), (1, 1), (1, 1)), ((2, 3), (1, 0), (1, 2), (1, 1)),
    ((2, 2), (1, 1), (0, 1), (2, 2)), ((3, 1), (2, 1), (2, 0), (1, 2)), ((1, 2), (1, 1), (1, 0), (2, 1)),
]


def image(c: int, h: int, w: int, seed: int = 0, integers: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if integers:
        return rng.integers(-3, 4, (c, h, w)).astype(np.float32)
    return rng.normal(0, 1, (c, h, w)).astype(np.float32)


def naive_unfold(x: np.ndarray, k, s, p, d) -> np.ndarray:
    """Windows read one by one from a zero-padded copy: row (c, i, j), column = output cell."""
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (p[0], p[0]), (p[1], p[1])))
    ho = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    wo = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    cols = np.zeros((c * k[0] * k[1], ho * wo), np.float32)
    for (ch, i, j), (r, q) in itertools.product(np.ndindex(c, *k), np.ndindex(ho, wo)):
        cols[(ch * k[0] + i) * k[1] + j, r * wo + q] = xp[ch, r * s[0] + i * d[0], q * s[1] + j * d[1]]
    return cols


@pytest.mark.parametrize("s,p,d", CONV_SETTINGS)
def test_unfold_is_every_window_tap_by_tap(s, p, d):
    x = image(2, 6, 7)
    assert np.array_equal(explain.unfold(x, (3, 2), s, p, d), naive_unfold(x, (3, 2), s, p, d))


@pytest.mark.parametrize("s,p,d", CONV_SETTINGS)
def test_kernel_row_times_unfolded_input_is_conv2d(s, p, d):
    x, w = image(2, 6, 7, 1), image(2, 3, 2, 2)
    m = explain.conv2d_matrix(x, w, 0.25, s, p, d)
    want = F.conv2d(tensor(x[None]), tensor(w[None]), tensor(np.array([0.25], np.float32)), s, p, d).numpy()[0, 0]
    assert m.matrix.shape == (2 * 3 * 2, want.size)
    np.testing.assert_allclose(m.output(), want, rtol=1e-5, atol=1e-5)
    xi, wi = image(2, 6, 7, 3, integers=True), image(2, 3, 2, 4, integers=True)
    exact = F.conv2d(tensor(xi[None]), tensor(wi[None]), None, s, p, d).numpy()[0, 0]
    assert np.array_equal(explain.conv2d_matrix(xi, wi, None, s, p, d).output(), exact)


@pytest.mark.parametrize("s,p,op,d", TRANSPOSE_SETTINGS)
def test_input_row_times_stamp_matrix_is_conv_transpose2d(s, p, op, d):
    x, w = image(2, 3, 4, 5), image(2, 3, 3, 6)
    m = explain.conv_transpose2d_matrix(x, w, -0.5, s, p, op, d)
    want = F.conv_transpose2d(tensor(x[None]), tensor(w[:, None]), tensor(np.array([-0.5], np.float32)),
                              s, p, op, 1, d).numpy()[0, 0]
    assert m.matrix.shape == (x.size, want.size) and m.out_shape == want.shape
    np.testing.assert_allclose(m.output(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("s,p,d", [((1, 1), (0, 0), (1, 1)), ((2, 2), (1, 0), (1, 1)), ((2, 3), (1, 1), (2, 1))])
def test_the_transposed_convolution_uses_the_transpose_of_conv2ds_matrix(s, p, d):
    """conv2d (big grid -> small) as a matrix, built from one-hot big images, is C transposed."""
    x, w = image(1, 3, 3, 7), image(1, 3, 3, 8)
    c = explain.conv_transpose2d_matrix(x, w, None, s, p, 0, d).matrix
    big = c.shape[1]
    ho, wo = explain.check_conv_transpose2d(x.shape, 3, s, p, 0, d).out_shape
    hot = np.eye(big, dtype=np.float32).reshape(big, 1, ho, wo)
    conv = F.conv2d(tensor(hot), tensor(w[None]), None, s, p, d).numpy()  # (big, 1, 3, 3): column k of C
    assert conv.shape[2:] == (3, 3)
    assert np.array_equal(conv.reshape(big, -1).T, c)


def test_the_matrix_scene_highlights_the_steps_column_and_output_cell():
    t = explain.conv2d_trace(image(1, 5, 5, integers=True), image(1, 3, 3, 1, integers=True), stride=2, padding=1)
    m = explain.matrix_of(t)
    padding = naive_unfold(np.ones((1, 5, 5), np.float32), (3, 3), (2, 2), (1, 1), (1, 1)) == 0
    assert explain.matrix_scene(m, 0).panel("matrix").marks["gap"] == {tuple(rc) for rc in np.argwhere(padding)}
    for done in (1, 5, 9):
        sc = explain.matrix_scene(m, done)
        j = done - 1
        assert sc.panel("matrix").marks["window"] == {(r, j) for r in range(9)}
        assert sc.panel("output").marks["current"] == {t.steps[j].out_pos}
        row = sc.panel("product").values[0]
        assert np.array_equal(row[:done], t.output.reshape(-1)[:done]) and np.isnan(row[done:]).all()
        assert sc.caption.endswith(f"= {explain.format_number(t.steps[j].value)}")


@pytest.mark.parametrize("s,p,op,d", TRANSPOSE_SETTINGS)
def test_both_readings_and_the_matrix_agree_at_every_step(s, p, op, d):
    """The scatter's running sums, the gather (z correlated by the engine's conv2d) and
    the running matrix product x[:n] @ C[:n] are the same numbers after every step."""
    x, w = image(1, 3, 3, 9, integers=True), image(1, 3, 3, 10, integers=True)
    t = explain.conv_transpose2d_trace(x, w, 1.5, s, p, op, d)
    m = explain.matrix_of(t)
    region = t.output_region()
    for done in range(len(t.steps) + 1):
        scatter = explain.conv_transpose_scene(t, done).panel("output").values[region]
        gather = explain.gather_scene(t, done).panel("gather").values
        product = explain.matrix_scene(m, done).panel("output").values
        assert np.array_equal(np.isnan(scatter), np.isnan(gather)), done
        assert np.array_equal(np.isnan(scatter), np.isnan(product)), done
        if done < len(t.steps):
            assert np.array_equal(np.nan_to_num(gather), np.nan_to_num(scatter)), done
            assert np.array_equal(np.nan_to_num(product), np.nan_to_num(scatter)), done
    assert np.array_equal(gather + 1.5, t.output) and np.array_equal(product, t.output)


def test_the_gather_scene_places_each_input_cell_stride_apart():
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    t = explain.conv_transpose2d_trace(x, np.ones((2, 2), np.float32), stride=(2, 3), padding=0)
    sc = explain.gather_scene(t, 4)
    z = sc.panel("z0").values
    assert z.shape == (1 + 2 + 2, 1 + 2 * 3 + 2)  # 1 zero / 2 zeros between, padded by 1*(2-1) on each side
    assert z[1, 1] == 1 and z[1, 4] == 2 and z[1, 7] == 3 and z[3, 1] == 4 and np.isnan(z[3, 4])
    assert sc.panel("z0").marks["current"] == {(3, 1)}
    assert "1 zero(s)" not in sc.note and "1/2 zero(s) between input cells" in sc.note


def test_settings_without_output_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="at least 1|kernel"):
        explain.unfold(image(1, 2, 2), 3)
    with pytest.raises(TypeError, match="forward convolution and the transposed"):
        explain.matrix_of(explain.pool2d_trace(image(1, 4, 4), 2))


def test_unfold_and_the_transposed_matrix_match_pytorch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, w = image(3, 7, 6, 11), image(3, 3, 2, 12)
    for s, p, d in CONV_SETTINGS:
        want = tf.unfold(torch.from_numpy(x[None]), (3, 2), dilation=d, padding=p, stride=s)[0].numpy()
        assert np.array_equal(explain.unfold(x, (3, 2), s, p, d), want)
    xt, wt = image(2, 3, 4, 13), image(2, 3, 3, 14)
    for s, p, op, d in TRANSPOSE_SETTINGS:
        want = tf.conv_transpose2d(torch.from_numpy(xt[None]), torch.from_numpy(wt[:, None]), None, s, p, op, 1,
                                   d)[0, 0].numpy()
        np.testing.assert_allclose(explain.conv_transpose2d_matrix(xt, wt, None, s, p, op, d).output(), want,
                                   rtol=1e-5, atol=1e-5)
