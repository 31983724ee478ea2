"""cnnlab.explain: traces against hand-worked numbers, the engine, PyTorch and NumPy."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import cnnlab
import cnnlab.nn.functional as F
from cnnlab import explain
from cnnlab.explain import presets

EPS32 = float(np.finfo(np.float32).eps)
X9 = np.arange(9, dtype=np.float32).reshape(3, 3)
K4 = np.array([[0, 1], [2, 3]], np.float32)


def close_to_sum(products, extra: float, value: float) -> bool:
    """sum(products) + extra equals a float32 result up to float32 summation rounding.

    The products are exact (float32 x float32 fits a double); the engine's BLAS sums
    them in its own order, which moves the result by a few units of float32 rounding
    of the magnitudes involved (0.9 at most over this file's cases)."""
    exact = float(np.sum(np.array(products, np.float64))) + extra
    bound = 4 * EPS32 * (float(np.sum(np.abs(products))) + abs(extra)) + 1e-30
    return abs(exact - value) <= bound


# ---------------------------------------------------------------- hand-worked (seed 004)

def test_cross_correlation_worked_example():
    t = explain.conv2d_trace(X9, K4)
    assert t.output.tolist() == [[19, 25], [37, 43]]
    assert [s.arithmetic() for s in t.steps] == [
        "0×0 + 1×1 + 3×2 + 4×3 = 19", "1×0 + 2×1 + 4×2 + 5×3 = 25",
        "3×0 + 4×1 + 6×2 + 7×3 = 37", "4×0 + 5×1 + 7×2 + 8×3 = 43"]
    assert t.steps[0].positions == ((0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1))


def test_padding_and_stride_worked_example():
    t = explain.conv2d_trace(X9, K4, padding=1, stride=(3, 2))
    assert t.output.tolist() == [[0, 8], [6, 8]]
    assert t.steps[1].arithmetic() == "0×0 + 0×1 + 1×2 + 2×3 = 8"
    assert t.steps[2].arithmetic() == "0×0 + 6×1 + 0×2 + 0×3 = 6"
    assert t.padded.shape == (1, 5, 5) and t.padded[0, 1:4, 1:4].tolist() == X9.tolist()
    assert t.check.derivations[0] == "floor((3 + 2*1 - 1*(2-1) - 1) / 3) + 1 = 2"


def test_pooling_worked_example():
    assert explain.pool2d_trace(X9, 2, stride=1).output.tolist() == [[4, 5], [7, 8]]
    avg = explain.pool2d_trace(X9, 2, stride=1, mode="avg")
    assert avg.output.tolist() == [[2, 3], [5, 6]]
    assert avg.steps[0].arithmetic() == "(0 + 1 + 3 + 4) / 4 = 2"
    s = explain.pool2d_trace(X9, 2, stride=1, mode="sum")
    assert s.output.tolist() == [[8, 12], [20, 24]]
    m = explain.pool2d_trace(X9, 2, stride=1)
    assert m.steps[3].argmax == (0, 2, 2) and m.steps[3].arithmetic() == "max(4, 5, 7, 8) = 8"


def test_bias_and_negative_numbers_in_arithmetic():
    t = explain.conv2d_trace([[1, -2]], [[3, -1]], bias=0.5)
    assert t.steps[0].arithmetic() == "1×3 + (-2)×(-1) + 0.5 (bias) = 5.5"


def test_flip_is_true_convolution():
    from scipy.signal import convolve2d

    x = np.random.default_rng(1).integers(-3, 4, (6, 5)).astype(np.float32)
    k = np.array([[1, 2, 0], [0, -1, 3]], np.float32)
    t = explain.conv2d_trace(x, k, flip=True)
    np.testing.assert_allclose(t.output, convolve2d(x, k, mode="valid"), rtol=1e-6)
    first = t.steps[0]
    assert first.taps[0] == (0, 1, 2) and first.weights[0] == k[1, 2]  # the kernel runs backwards


def test_three_channel_filter_sums_the_slices():
    """Seed 003: a 3-D filter on an RGB image gives one map, the sum over channels."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, (3, 5, 5)).astype(np.float32)
    w = rng.integers(-1, 2, (3, 3, 3)).astype(np.float32)
    t = explain.conv2d_trace(x, w, padding=1)
    per_channel = sum(explain.conv2d_trace(x[c], w[c], padding=1).output for c in range(3))
    np.testing.assert_array_equal(t.output, per_channel)  # small integers: exact
    step = t.steps[7]
    assert len(step.products) == 27 and {p[0] for p in step.positions} == {0, 1, 2}
    assert step.arithmetic().count("(") >= 3  # one bracket per channel slice


# ---------------------------------------------------------------- against the engine

def _conv_cases():
    rng = np.random.default_rng(0)
    fixed = [  # (C, H, W), (K, kh, kw), stride, padding, dilation
        ((1, 5, 5), (1, 3, 3), 1, 0, 1), ((1, 5, 5), (1, 3, 3), 2, 1, 1), ((1, 7, 6), (2, 3, 2), (2, 1), (1, 2), (2, 1)),
        ((3, 6, 6), (2, 3, 3), 1, 1, 1), ((2, 9, 8), (1, 2, 4), (3, 2), 0, (1, 2)), ((1, 4, 4), (1, 1, 1), 3, 2, 1),
        ((3, 8, 8), (1, 5, 5), 2, 2, 1), ((1, 10, 10), (1, 3, 3), 1, 0, 3),
    ]
    for _ in range(16):  # plus a seeded sweep of valid settings
        c, kk = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        s, p, d = [tuple(int(v) for v in rng.integers(lo, hi, 2)) for lo, hi in ((1, 4), (0, 3), (1, 3))]
        h = max(1, d[0] * (kh - 1) + 1 - 2 * p[0]) + int(rng.integers(0, 6))
        w = max(1, d[1] * (kw - 1) + 1 - 2 * p[1]) + int(rng.integers(0, 6))
        fixed.append(((c, h, w), (kk, kh, kw), s, p, d))
    return fixed


CONV_CASES = _conv_cases()


def _conv_data(shape, kshape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((kshape[0], shape[0], *kshape[1:])).astype(np.float32)
    b = rng.standard_normal(kshape[0]).astype(np.float32)
    return x, w, b


def _numpy_conv(x, w, b, s, p, d):
    """An independent float64 reference with plain loops over output cells."""
    s, p, d = (explain.pair(v) for v in (s, p, d))
    xp = np.pad(x.astype(np.float64), ((0, 0), (p[0], p[0]), (p[1], p[1])))
    k, _, kh, kw = w.shape
    ho = (xp.shape[1] - d[0] * (kh - 1) - 1) // s[0] + 1
    wo = (xp.shape[2] - d[1] * (kw - 1) - 1) // s[1] + 1
    out = np.zeros((k, ho, wo))
    for i, j in itertools.product(range(ho), range(wo)):
        win = xp[:, i * s[0]: i * s[0] + d[0] * (kh - 1) + 1: d[0], j * s[1]: j * s[1] + d[1] * (kw - 1) + 1: d[1]]
        out[:, i, j] = (win[None] * w).sum(axis=(1, 2, 3)) + b
    return out


@pytest.mark.parametrize("shape,kshape,s,p,d", CONV_CASES)
def test_conv_trace_equals_engine(shape, kshape, s, p, d):
    x, w, b = _conv_data(shape, kshape)
    engine_out = F.conv2d(cnnlab.tensor(x[None]), cnnlab.tensor(w), cnnlab.tensor(b),
                          stride=s, padding=p, dilation=d).numpy()[0]
    reference = _numpy_conv(x, w, b, s, p, d)
    for k in range(kshape[0]):
        t = explain.conv2d_trace(x, w, b, s, p, d, out_channel=k)
        np.testing.assert_array_equal(t.output, engine_out[k])  # to the float32 number
        np.testing.assert_allclose(t.output, reference[k], rtol=1e-5, atol=1e-5)
        assert len(t.steps) == t.output.size
        for step in t.steps:
            assert step.value == engine_out[k][step.out_pos]
            assert close_to_sum(step.products, step.bias, step.value)
            assert [t.padded[q] for q in step.positions] == list(np.float32(step.inputs))
            assert [t.kernel[q] for q in step.taps] == list(np.float32(step.weights))


def test_conv_trace_matches_torch():
    torch = pytest.importorskip("torch")
    for shape, kshape, s, p, d in CONV_CASES[:10]:
        x, w, b = _conv_data(shape, kshape, seed=5)
        ref = torch.nn.functional.conv2d(torch.from_numpy(x[None]), torch.from_numpy(w), torch.from_numpy(b),
                                         stride=s, padding=p, dilation=d).numpy()[0]
        for k in range(kshape[0]):
            np.testing.assert_allclose(explain.conv2d_trace(x, w, b, s, p, d, out_channel=k).output, ref[k],
                                       rtol=1e-5, atol=1e-5)


def _engine_conv_grads(x, w, b, g, s, p, d):
    xt, wt, bt = (cnnlab.tensor(a, requires_grad=True) for a in (x[None], w, b))
    F.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d).backward(cnnlab.tensor(g[None]))
    return xt.grad.numpy()[0], wt.grad.numpy(), bt.grad.numpy()


def _scatter_grads(x, w, g, s, p, d):
    """dL/dX and dL/dW by scattering each output gradient — the opposite order to the trace's gathering."""
    s, p, d = (explain.pair(v) for v in (s, p, d))
    xp = np.pad(x.astype(np.float64), ((0, 0), (p[0], p[0]), (p[1], p[1])))
    gxp, gw = np.zeros_like(xp), np.zeros(w.shape)
    k_n, _, kh, kw = w.shape
    for k, i, j, m, n in itertools.product(range(k_n), range(g.shape[1]), range(g.shape[2]), range(kh), range(kw)):
        r, c = i * s[0] + m * d[0], j * s[1] + n * d[1]
        gxp[:, r, c] += g[k, i, j] * w[k, :, m, n]
        gw[k, :, m, n] += g[k, i, j] * xp[:, r, c]
    return gxp[:, p[0]: p[0] + x.shape[1], p[1]: p[1] + x.shape[2]], gw


@pytest.mark.parametrize("shape,kshape,s,p,d", CONV_CASES[:14])
def test_conv_backward_trace_equals_engine(shape, kshape, s, p, d):
    x, w, b = _conv_data(shape, kshape, seed=3)
    ho, wo = explain.check_conv2d(shape, kshape[1:], s, p, d).out_shape
    g = np.random.default_rng(4).standard_normal((kshape[0], ho, wo)).astype(np.float32)
    t = explain.conv2d_backward_trace(x, w, g, b, s, p, d)
    gx, gw, gb = _engine_conv_grads(x, w, b, g, s, p, d)
    np.testing.assert_array_equal(t.grad_input, gx)
    np.testing.assert_array_equal(t.grad_weight, gw)
    np.testing.assert_array_equal(t.grad_bias, gb)
    ref_x, ref_w = _scatter_grads(x, w, g, s, p, d)
    np.testing.assert_allclose(gx, ref_x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gw, ref_w, rtol=1e-4, atol=1e-5)
    assert len(t.input_steps) == x.size and len(t.weight_steps) == w.size and len(t.bias_steps) == kshape[0]
    for step in t.input_steps:
        assert step.value == gx[step.target]
        assert close_to_sum(step.products, 0.0, step.value)
        assert all(g[q] == np.float32(v) for q, v in zip(step.grad_positions, step.grads))
        assert all(w[q] == np.float32(v) for q, v in zip(step.factor_positions, step.factors))
    for step in t.weight_steps:
        assert step.value == gw[step.target]
        assert close_to_sum(step.products, 0.0, step.value)
        assert all(t.padded[q] == np.float32(v) for q, v in zip(step.factor_positions, step.factors))
    for step in t.bias_steps:
        assert step.value == gb[step.target] and close_to_sum(step.products, 0.0, step.value)


def test_conv_backward_matches_torch():
    torch = pytest.importorskip("torch")
    for shape, kshape, s, p, d in CONV_CASES[:8]:
        x, w, b = _conv_data(shape, kshape, seed=6)
        ho, wo = explain.check_conv2d(shape, kshape[1:], s, p, d).out_shape
        g = np.random.default_rng(7).standard_normal((kshape[0], ho, wo)).astype(np.float32)
        xt, wt = torch.tensor(x[None], requires_grad=True), torch.tensor(w, requires_grad=True)
        torch.nn.functional.conv2d(xt, wt, stride=s, padding=p, dilation=d).backward(torch.from_numpy(g[None]))
        t = explain.conv2d_backward_trace(x, w, g, None, s, p, d)
        np.testing.assert_allclose(t.grad_input, xt.grad.numpy()[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(t.grad_weight, wt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_backward_hand_worked():
    t = explain.conv2d_backward_trace([[1, 2], [3, 4]], [[1, 10]])
    assert t.weight_steps[1].arithmetic() == "dL/dw[0,0,0,1] = 1×2 + 1×4 = 6"
    assert t.input_steps[1].arithmetic() == "dL/dx[0,0,1] = 1×10 = 10"
    # stride 2 leaves input cells no window touches: their gradient is 0, said in words
    t = explain.conv2d_backward_trace(np.ones((3, 3)), [[1]], stride=2)
    assert t.input_steps[1].arithmetic() == "dL/dx[0,0,1] = 0 (no window covers this cell)"


# ---------------------------------------------------------------- pooling against the engine

POOL_CASES = [  # mode, (H, W), kernel, stride, padding, dilation, ceil_mode, count_include_pad
    ("max", (6, 6), 2, None, 0, 1, False, True), ("max", (7, 7), 3, 2, 1, 1, False, True),
    ("max", (7, 5), (3, 2), (2, 1), (1, 0), (2, 1), False, True), ("max", (7, 7), 2, 2, 0, 1, True, True),
    ("max", (5, 5), 3, 2, 1, 1, True, True), ("avg", (6, 6), 2, None, 0, 1, False, True),
    ("avg", (7, 7), 3, 2, 1, 1, False, True), ("avg", (7, 7), 3, 2, 1, 1, False, False),
    ("avg", (7, 6), (3, 2), (2, 2), (1, 1), 1, True, True), ("avg", (5, 5), 2, 2, 1, 1, True, False),
    ("sum", (6, 6), 2, None, 0, 1, False, True), ("sum", (7, 7), 3, 2, 1, 1, False, True),
    ("sum", (8, 7), (2, 3), (1, 2), (1, 1), 1, False, True),
]


def _engine_pool(mode, x, k, s, p, d, ceil, cip):
    xt = cnnlab.tensor(x[None], requires_grad=True)
    if mode == "max":
        out = F.max_pool2d(xt, k, s, p, d, ceil_mode=ceil)
    elif mode == "avg":
        out = F.avg_pool2d(xt, k, s, p, ceil_mode=ceil, count_include_pad=cip)
    else:
        out = F.sum_pool2d(xt, k, s, p, ceil_mode=ceil)
    return xt, out


@pytest.mark.parametrize("mode,hw,k,s,p,d,ceil,cip", POOL_CASES)
def test_pool_traces_equal_engine(mode, hw, k, s, p, d, ceil, cip):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, *hw)).astype(np.float32)
    xt, out = _engine_pool(mode, x, k, s, p, d, ceil, cip)
    g = rng.standard_normal(out.numpy().shape[1:]).astype(np.float32)
    out.backward(cnnlab.tensor(g[None]))
    for ch in (0, 1):
        t = explain.pool2d_backward_trace(x, g, k, s, p, mode, d, ceil, cip, channel=ch)
        f = t.forward
        np.testing.assert_array_equal(f.output, out.numpy()[0, ch])
        np.testing.assert_array_equal(t.grad_input, xt.grad.numpy()[0, ch])
        for step in f.steps:
            assert step.value == out.numpy()[0, ch][step.out_pos]
            real = [v for v in step.inputs if np.isfinite(v)]
            if mode == "max":
                assert step.value == max(real) == f.padded[step.argmax]
            else:
                assert close_to_sum(real, 0.0, step.value * (step.divisor if mode == "avg" else 1))
        acc = np.nan_to_num(t.accumulated(len(t.steps)))
        np.testing.assert_allclose(acc, t.grad_input, rtol=1e-5, atol=1e-6)


def test_pool_matches_torch():
    torch = pytest.importorskip("torch")
    for mode, hw, k, s, p, d, ceil, cip in POOL_CASES:
        if mode == "sum":
            continue
        x = np.random.default_rng(9).standard_normal((1, *hw)).astype(np.float32)
        tx = torch.from_numpy(x[None])
        ref = (torch.nn.functional.max_pool2d(tx, k, s, p, d, ceil_mode=ceil) if mode == "max" else
               torch.nn.functional.avg_pool2d(tx, k, s, p, ceil_mode=ceil, count_include_pad=cip)).numpy()[0, 0]
        np.testing.assert_allclose(explain.pool2d_trace(x, k, s, p, mode, d, ceil, cip).output, ref, rtol=1e-6)


def test_max_pool_backward_routes_to_the_first_maximum():
    t = explain.pool2d_backward_trace([[1, 5], [5, 2]], [[2.0]], 2)
    assert t.steps[0].targets == ((0, 0, 1),)
    assert t.steps[0].arithmetic() == "dL/dy[0,0] = 2 goes to the max, x[0,0,1]: dL/dx[0,0,1] += 2"
    assert t.grad_input.tolist() == [[0, 2], [0, 0]]
    assert t.accumulated(1).tolist() == [[0, 2], [0, 0]]  # the losers of the window show 0, not blank
    uncovered = explain.pool2d_backward_trace(np.ones((3, 3)), None, 1, stride=2)
    assert np.isnan(uncovered.accumulated(3)[0, 1]) and uncovered.accumulated(4)[0, 1] == 0


def test_avg_pool_backward_spreads_and_drops_padding_shares():
    t = explain.pool2d_backward_trace(np.ones((3, 3)), None, 3, stride=2, padding=1, mode="avg")
    first = t.steps[0]
    assert first.divisor == 9 and len(first.targets) == 4
    assert "5 share(s) fall on padding" in first.arithmetic()
    np.testing.assert_allclose(t.accumulated(1)[:2, :2], np.full((2, 2), 1 / 9))
    assert np.isnan(t.accumulated(1)[2, 2])  # not reached yet: blank


# ---------------------------------------------------------------- output size and validation

def test_output_size_issue_example():
    c = explain.explain_output_size(5, 3, s=2, p=1, d=1)
    assert c.derivation == "floor((5 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 3" and c.size == 3 and c.ok


def test_output_size_grid_matches_formula_and_engine():
    for n, k, s, p, d in itertools.product(range(1, 10), range(1, 5), range(1, 4), range(0, 3), range(1, 4)):
        check = explain.explain_output_size(n, k, s, p, d)
        expected = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if d * (k - 1) + 1 > n + 2 * p:
            assert check.size is None and check.problems
            with pytest.raises(ValueError):
                explain.output_size(n, k, s, p, d)
        else:
            assert explain.output_size(n, k, s, p, d) == check.size == expected
            assert check.derivation.endswith(f"= {expected}")
    for n, k, s, p, d in [(5, 3, 2, 1, 1), (7, 2, 3, 0, 2), (9, 4, 2, 2, 1), (4, 1, 3, 1, 1)]:
        out = F.conv2d(cnnlab.tensor(np.zeros((1, 1, n, n), np.float32)), cnnlab.tensor(np.zeros((1, 1, k, k), np.float32)),
                       stride=s, padding=p, dilation=d)
        assert out.shape[-1] == explain.output_size(n, k, s, p, d)


def test_ceil_mode_sizes_match_torch():
    torch = pytest.importorskip("torch")
    for n, k, s, p in itertools.product(range(2, 9), range(1, 4), range(1, 4), range(0, 2)):
        if p > k // 2 or k > n + 2 * p:
            continue
        shape = torch.nn.functional.max_pool2d(torch.zeros(1, 1, n, n), k, s, p, ceil_mode=True).shape
        assert explain.output_size(n, k, s, p, ceil_mode=True) == shape[-1], (n, k, s, p)


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(stride=0), "stride height must be at least 1"),
    (dict(padding=-1), "padding height cannot be negative"),
    (dict(dilation=0), "dilation height must be at least 1"),
    (dict(kernel_size=(5, 2)), "kernel spans 5 cells"),
    (dict(dilation=3), "kernel spans 7 cells (3*(3-1) + 1)"),
])
def test_invalid_conv_settings_are_explained_not_raised(kwargs, fragment):
    args = dict(input_shape=(1, 4, 4), kernel_size=3, stride=1, padding=0, dilation=1) | kwargs
    check = explain.check_conv2d(**args)
    assert not check.ok and check.out_shape is None
    assert any(fragment in p for p in check.problems), check.problems
    with pytest.raises(ValueError, match=fragment.split("(")[0].strip()):
        explain.conv2d_trace(np.zeros(args["input_shape"]), np.zeros(explain.pair(args["kernel_size"])),
                             stride=args["stride"], padding=args["padding"], dilation=args["dilation"])


def test_invalid_pool_and_channel_settings_are_explained():
    assert "more than half the pooling window" in explain.check_pool2d((4, 4), 2, padding=2).message()
    assert "only to max pooling" in explain.check_pool2d((4, 4), 2, dilation=2, mode="avg").message()
    mismatch = explain.check_conv2d((3, 4, 4), 3, kernel_channels=1)
    assert "1 channel(s) but the input has 3" in mismatch.problems[0]
    with pytest.raises(ValueError, match="more than half"):
        explain.pool2d_trace(np.zeros((4, 4)), 2, padding=2)


# ---------------------------------------------------------------- scenes, presets, fallback

def test_scene_marks_window_gaps_and_blanks():
    t = explain.conv2d_trace(np.arange(49).reshape(7, 7), np.ones((3, 3)), dilation=2)
    sc = explain.scene(t, 2)
    inp, out = sc.panel("input0"), sc.panel("output")
    assert sc.done == 2 and sc.total == 9 and sc.caption == t.steps[1].arithmetic()
    assert inp.marks["window"] == {(r, c) for r in (0, 2, 4) for c in (1, 3, 5)}
    assert (1, 2) in inp.marks["gap"] and (0, 0) not in inp.marks["gap"]
    assert out.marks["current"] == {(0, 1)}
    assert np.isnan(out.values[0, 2]) and not np.isnan(out.values[0, 1])


def test_hover_shows_receptive_field_and_fed_outputs():
    t = explain.conv2d_trace(np.zeros((5, 5)), np.ones((3, 3)), stride=2, padding=1)
    sc = explain.scene(t, 0)
    explain.hover(sc, t, "output", 1, 2)
    assert sc.panel("input0").marks["hover"] == {(r, c) for r in (2, 3, 4) for c in (4, 5, 6)}
    sc = explain.scene(t, 0)
    explain.hover(sc, t, "input0", 2, 2)
    assert sc.panel("output").marks["hover"] == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_hover_on_gradient_entries_shows_their_terms():
    t = explain.conv2d_backward_trace(np.ones((4, 4)), np.ones((3, 3)), None, stride=2, padding=1)
    sc = explain.scene(t, 0)
    explain.hover(sc, t, "grad_in0", 1, 1)
    step = t.input_steps[5]
    assert sc.panel("grad_out0").marks["hover"] == {gp[1:] for gp in step.grad_positions}
    assert sc.panel("kernel0_0").marks["hover"] == {fp[2:] for fp in step.factor_positions}
    pool = explain.pool2d_backward_trace(np.arange(16).reshape(4, 4), None, 2)
    sc = explain.scene(pool, 0)
    explain.hover(sc, pool, "grad_out", 0, 1)
    assert sc.panel("grad_in").marks["hover"] == {(1, 3)}  # the max of that window


def test_presets_and_typed_numbers():
    assert presets.make_kernel("identity", 3).tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert presets.make_kernel("box blur", 2, 3).sum() == pytest.approx(1)
    assert presets.make_kernel("edge").sum() == 0
    with pytest.raises(ValueError, match="3x3"):
        presets.make_kernel("sobel-y", 2)
    x = presets.parse_numbers("0, 1, 2\n3 4 5")
    assert x.shape == (1, 2, 3) and presets.parse_numbers(presets.format_numbers(x)).tolist() == x.tolist()
    with pytest.raises(ValueError, match="same count"):
        presets.parse_numbers("1 2\n3")


def test_traces_draw_every_number_from_the_engine(monkeypatch):
    """There is no second implementation: whatever nn.functional returns is what a trace shows."""
    x, w, b = _conv_data((2, 6, 5), (1, 3, 2))
    honest = explain.conv2d_trace(x, w, b, stride=2, padding=1)
    calls = []
    for name in ("conv2d", "avg_pool2d"):
        real = getattr(F, name)

        def shifted(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs) + 1.0
        monkeypatch.setattr(F, name, shifted)
    t = explain.conv2d_trace(x, w, b, stride=2, padding=1)
    np.testing.assert_array_equal(t.output, honest.output + np.float32(1))
    assert [s.value for s in t.steps] == (honest.output + np.float32(1)).reshape(-1).tolist()
    pool = explain.pool2d_trace(x, 3, 2, 1, "avg")
    monkeypatch.undo()
    np.testing.assert_array_equal(pool.output, explain.pool2d_trace(x, 3, 2, 1, "avg").output + np.float32(1))
    assert calls == ["conv2d", "avg_pool2d"]
