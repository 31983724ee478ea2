"""Every public function of backends/cuda.py against its twin in backends/cpu.py, on tiny
random shapes (launch shapes are shrunk by conftest, so several blocks run)."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from cnnlab.backends import cpu
from cnnlab.nn.functional import conv_output_size
from cuda_twins import assert_same, cuda, rand, to_device, to_host, twin

F32 = dict(rtol=1e-4, atol=1e-5)


def test_same_public_functions_and_arguments():
    C = cuda()
    # every function cpu.py exposes, wherever in the CPU backend's modules it is defined
    public = [n for n in dir(cpu) if not n.startswith("_") and callable(getattr(cpu, n))
              and (getattr(getattr(cpu, n), "__module__", None) or "cnnlab.backends.").startswith("cnnlab.backends.")]
    public += [n for n in dir(cpu) if isinstance(getattr(cpu, n), np.ufunc)]
    for n in sorted(set(public)):
        assert hasattr(C, n), f"cuda.py lacks {n}()"
        f = getattr(cpu, n)
        if inspect.isfunction(f):
            assert list(inspect.signature(getattr(C, n)).parameters) == list(inspect.signature(f).parameters), n


# ------------------------------------------------------------------ arrays
def test_array_basics():
    a = rand(2, 3)
    C = cuda()
    d = C.from_numpy(a)
    assert isinstance(d, C.DeviceArray) and d.shape == (2, 3) and d.dtype == np.float32
    np.testing.assert_array_equal(C.to_numpy(d), a)
    np.testing.assert_array_equal(C.to_numpy(C.copy(d)), a)
    np.testing.assert_array_equal(C.to_numpy(C.zeros((2, 2), np.float64)), np.zeros((2, 2)))
    np.testing.assert_array_equal(C.to_numpy(C.full((3,), 7, np.int64)), [7, 7, 7])
    assert C.empty((0, 3), np.float32).shape == (0, 3)
    assert C.to_numpy(C.from_numpy(np.zeros((0, 2), np.float32))).shape == (0, 2)
    twin("astype", a, np.float64)
    twin("astype", rand(5, low=-3, high=3), np.int32)
    twin("asarray", [[1, 2], [3, 4]], np.float32)
    d0 = C.from_numpy(np.array(2.5, np.float32))
    assert C.to_numpy(d0).shape == () and float(C.to_numpy(d0)) == 2.5


# ------------------------------------------------------------- elementwise
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "equal", "not_equal", "less", "less_equal",
          "greater", "greater_equal", "logical_and", "logical_or"]
SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((3, 1), (1, 4)), ((), (3,))]


@pytest.mark.parametrize("op", BINARY)
def test_binary_ops(op):
    for sa, sb in SHAPES:
        twin(op, rand(*sa), rand(*sb), **F32)
    a = rand(2, 3)
    twin(op, a, np.float32(0.5), **F32)   # array, scalar
    twin(op, np.float32(0.25), a, **F32)  # scalar, array
    twin(op, a, 2.0, **F32)               # a Python float stays weak (float32 result)


def test_binary_dtypes_follow_numpy():
    i = np.array([1, 2, 3], np.int64)
    twin("divide", i, np.int64(2))                   # int / int -> float64
    twin("add", i, rand(3))                          # int64 + float32 -> float64
    twin("multiply", rand(3, dtype=np.float64), rand(3))
    twin("power", rand(4, low=0.5, high=2.0), np.float32(1.5), **F32)
    twin("maximum", np.array([1.0, np.nan, 3.0], np.float32), np.array([np.nan, 2.0, 1.0], np.float32))
    twin("equal", np.array([True, False]), np.array([True, True]))


@pytest.mark.parametrize("op", ["negative", "exp", "log", "sqrt", "absolute", "sign"])
def test_unary_ops(op):
    low = 0.1 if op in ("log", "sqrt") else -2.0
    twin(op, rand(3, 5, low=low, high=2.0), **F32)
    twin(op, rand(4, low=low, high=2.0, dtype=np.float64))


def test_sign_of_zero_and_nan():
    twin("sign", np.array([0.0, -0.0, np.nan, -3.0, 2.0], np.float32))


def test_where_and_clip():
    cond = rand(2, 3) > 0
    twin("where", cond, rand(2, 3), rand(3))
    twin("where", cond, rand(2, 3), np.float32(0))
    twin("where", rand(3) > 0, rand(2, 3), np.zeros((), np.float32))  # ops.Where's backward shape
    x = rand(3, 4, low=-3, high=3)
    twin("clip", x, -1.0, 1.0)
    twin("clip", x, None, 0.5)
    twin("clip", x, 0.0, None)
    twin("clip", np.array([np.nan, 5.0], np.float32), 0.0, 1.0)


def test_matmul():
    twin("matmul", rand(3, 5), rand(5, 6), **F32)
    twin("matmul", rand(2, 3, 5), rand(5, 4), **F32)          # batch broadcast
    twin("matmul", rand(2, 1, 3, 5), rand(4, 5, 2), **F32)    # both batched, broadcast
    twin("matmul", rand(5), rand(5, 3), **F32)                # 1-D on the left
    twin("matmul", rand(3, 5), rand(5), **F32)                # 1-D on the right
    twin("matmul", rand(5), rand(5), **F32)                   # dot
    twin("matmul", rand(9, 7, dtype=np.float64), rand(7, 10, dtype=np.float64), rtol=1e-12)


# ------------------------------------------------------------- reductions
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                           ((0, 2), True), (-1, False)])
def test_reductions(axis, keepdims):
    x = rand(3, 4, 5)
    twin("sum", x, axis, keepdims, **F32)
    twin("amax", x, axis, keepdims)
    ties = np.round(rand(3, 4, 5, low=0, high=2))  # many equal maxima: the first one wins
    twin("amax", ties, axis, keepdims)
    if axis is None or isinstance(axis, int):
        twin("argmax", ties, axis, keepdims and axis is not None)


def test_reduction_dtypes_and_nan():
    twin("sum", rand(4, 3) > 0, 0)                       # bool -> int64
    twin("sum", np.arange(12, dtype=np.int32).reshape(3, 4))
    twin("sum", np.array(3.0, np.float32))               # 0-d
    x = rand(3, 4)
    x[1, 2] = np.nan
    x[2, 0] = np.nan
    twin("amax", x, 1)
    twin("argmax", x, 1)
    twin("argmax", x)


def test_sum_to_shape():
    twin("sum_to_shape", rand(2, 3, 4), (3, 1), **F32)
    twin("sum_to_shape", rand(3, 4), (3, 4))
    twin("sum_to_shape", rand(2, 3), (), **F32)


# ------------------------------------------------------------------ shapes
def test_shapes():
    x = rand(2, 3, 4)
    twin("reshape", x, (6, -1))
    twin("transpose", x, (2, 0, 1))
    twin("transpose", x, (0, 1, 2))
    twin("broadcast_to", rand(3, 1), (2, 3, 4))
    twin("ascontiguous", x)
    twin("concatenate", [rand(2, 3), rand(1, 3), rand(4, 3)], 0)
    twin("concatenate", [rand(2, 3, 1), rand(2, 3, 2)], 2)
    twin("split", rand(6, 2), [1, 4], 0)
    twin("pad2d", rand(2, 1, 3, 4), 1, 2, 0, 3)
    twin("pad2d", rand(3, 4), 1, 0, 2, 1, -np.inf)
    twin("unpad2d", rand(2, 2, 6, 7), 1, 2, 0, 3)


INDICES = [1, -1, (0, 2), slice(1, None), (slice(None), 0), (Ellipsis, 1), (None, 0), (slice(None, None, -1), 1),
           (0, slice(3, 0, -2), None, 1), (1, Ellipsis, slice(0, 2)), ()]


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_basic_indexing(index):
    x = rand(3, 4, 5)
    twin("getitem", x, index)
    g = rand(*x[index].shape)
    twin("index_add", x.shape, x.dtype, index, g)


def test_fancy_indexing_falls_back_to_the_host():
    x = rand(4, 3)
    twin("getitem", x, np.array([2, 0, 2]))
    twin("getitem", x, x[:, 0] > 0)
    twin("index_add", x.shape, x.dtype, np.array([1, 1, 3]), rand(3, 3))


def test_item_assignment():
    C = cuda()
    x = rand(3, 4)
    d = C.from_numpy(x)
    d[1] = 5.0
    d[:, 2] = C.from_numpy(np.arange(3, dtype=np.float32))
    d[0, 0:2] = C.from_numpy(np.array([7, 8], np.int64))   # cast on store
    d[...] = C.add(d, 1)
    x[1] = 5.0
    x[:, 2] = np.arange(3)
    x[0, 0:2] = [7, 8]
    x += 1
    np.testing.assert_array_equal(C.to_numpy(d), x)
    d[np.array([0, 2])] = 0.0    # fancy: host fallback
    x[[0, 2]] = 0.0
    np.testing.assert_array_equal(C.to_numpy(d), x)


def test_device_array_operators():
    C = cuda()
    a, b = rand(2, 3), rand(2, 3)
    da, db = C.from_numpy(a), C.from_numpy(b)
    checks = {"&": ((da > 0) & (db > 0), (a > 0) & (b > 0)), "|": ((da > 0) | (db > 0), (a > 0) | (b > 0)),
              "~": (~(da > 0), ~(a > 0)), ">=": (da >= db, a >= b), "+": (da + 1, a + 1), "rsub": (1 - da, 1 - a),
              "*": (2 * da, 2 * a), "/": (da / db, a / b), "neg": (-da, -a), "T": (da.T, a.T),
              "astype": (da.astype(np.float64), a.astype(np.float64)), "[None]": (da[None, :], a[None, :])}
    for what, (got, expected) in checks.items():
        assert_same(C.to_numpy(got), expected, 1e-6, 1e-7, what)
    with pytest.raises(TypeError):
        np.add(da, 1)  # NumPy must never compute on device data behind the backend's back


def test_first_bad_target():
    t = np.array([0, 2, -100, 1], np.int64)
    twin("first_bad_target", t, 3, -100)
    twin("first_bad_target", np.array([0, 5, -1, 7], np.int64), 3, -100)
    twin("first_bad_target", np.array([1, -100, -3], np.int32), 3, -100)


# ------------------------------------------------------------- convolution
CONVS = [  # x shape, w shape, stride, padding, dilation, bias
    ((2, 3, 5, 6), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), True),
    ((1, 2, 7, 6), (3, 2, 2, 3), (2, 1), (0, 1), (1, 1), False),   # rectangular kernel, odd channel count
    ((2, 2, 7, 7), (2, 2, 3, 2), (2, 2), (1, 0), (2, 1), True),    # dilation
    ((1, 3, 4, 4), (5, 3, 1, 1), (1, 1), (0, 0), (1, 1), True),    # 1x1
    ((1, 1, 9, 8), (2, 1, 5, 5), (1, 2), (2, 2), (1, 1), True),    # 25 taps: several weight-gradient passes
]


def _conv_out(xs, ws, s, p, d):
    return tuple(conv_output_size(n, k, st, pd, dl) for n, k, st, pd, dl in zip(xs[2:], ws[2:], s, p, d))


@pytest.mark.parametrize("xs,ws,s,p,d,bias", CONVS)
def test_conv2d(xs, ws, s, p, d, bias):
    x, w = rand(*xs), rand(*ws)
    b = rand(ws[0]) if bias else None
    out_hw = _conv_out(xs, ws, s, p, d)
    (y, _), _ = twin("conv2d_forward", x, w, b, s, p, d, out_hw, **F32)
    g = rand(*y.shape)
    twin("conv2d_backward", x, w, g, None, s, p, d, True, True, bias, **F32)
    twin("conv2d_backward", x, w, g, None, s, p, d, False, True, False, **F32)


def test_conv2d_float64():
    xs, ws, s, p, d = (1, 2, 5, 5), (3, 2, 3, 3), (1, 1), (1, 1), (1, 1)
    x, w = rand(*xs, dtype=np.float64), rand(*ws, dtype=np.float64)
    out_hw = _conv_out(xs, ws, s, p, d)
    twin("conv2d_forward", x, w, rand(3, dtype=np.float64), s, p, d, out_hw, rtol=1e-12)
    g = rand(1, 3, *out_hw, dtype=np.float64)
    twin("conv2d_backward", x, w, g, None, s, p, d, True, True, True, rtol=1e-12)


# ---------------------------------------------------------------- pooling
MAX_POOLS = [  # x shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 2, 6, 7), (2, 3), (2, 1), (1, 1), (1, 1), False),
    ((1, 3, 7, 7), (3, 3), (2, 2), (1, 1), (2, 2), False),
    ((1, 2, 5, 7), (2, 2), (2, 2), (0, 0), (1, 1), True),
    ((1, 1, 5, 5), (3, 3), (1, 1), (1, 1), (1, 1), False),   # overlapping windows: atomics collide
]


def _pool_out(xs, k, s, p, d, ceil):
    return tuple(conv_output_size(n, kk, st, pd, dl, ceil) for n, kk, st, pd, dl in zip(xs[2:], k, s, p, d))


def _max_pool_twin(x, k, s, p, d, out_hw):
    """Both backends' forward and backward on the same input. What a forward keeps for
    its backward is its own affair (the CPU keeps the arg-max, CUDA finds it again)."""
    C = cuda()
    y, saved = cpu.max_pool2d_forward(x.copy(), k, s, p, d, out_hw)
    y_dev, saved_dev = C.max_pool2d_forward(to_device(x), k, s, p, d, out_hw)
    assert_same(to_host(y_dev), y, what="max_pool2d_forward")
    g = rand(*y.shape)
    dx = cpu.max_pool2d_backward(g, x, y, saved, k, s, p, d)
    dx_dev = C.max_pool2d_backward(to_device(g), to_device(x), y_dev, saved_dev, k, s, p, d)
    assert_same(to_host(dx_dev), dx, what="max_pool2d_backward", **F32)


@pytest.mark.parametrize("xs,k,s,p,d,ceil", MAX_POOLS)
def test_max_pool(xs, k, s, p, d, ceil):
    x = np.round(rand(*xs, low=0, high=3))  # ties: the first maximum in scan order gets the gradient
    out_hw = _pool_out(xs, k, s, p, d, ceil)
    _max_pool_twin(x, k, s, p, d, out_hw)


def test_max_pool_nan():
    x = rand(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    _max_pool_twin(x, (2, 2), (2, 2), (0, 0), (1, 1), (2, 2))


AVG_POOLS = [  # x shape, kernel, stride, padding, ceil_mode, include_pad, divisor, summing
    ((2, 2, 6, 7), (2, 3), (2, 1), (1, 1), False, True, 0, False),
    ((1, 2, 7, 6), (3, 2), (2, 2), (1, 1), True, False, 0, False),
    ((1, 1, 5, 5), (2, 2), (1, 1), (0, 0), False, True, 3, False),
    ((1, 2, 6, 6), (3, 3), (3, 3), (0, 0), False, True, 0, True),   # sum pooling
]


@pytest.mark.parametrize("xs,k,s,p,ceil,inc,div,summing", AVG_POOLS)
def test_avg_pool(xs, k, s, p, ceil, inc, div, summing):
    x = rand(*xs)
    out_hw = _pool_out(xs, k, s, p, (1, 1), ceil)
    y, _ = twin("avg_pool2d_forward", x, k, s, p, out_hw, inc, div, summing, **F32)
    twin("avg_pool2d_backward", rand(*y.shape), xs, np.dtype(np.float32), k, s, p, inc, div, summing, **F32)


# -------------------------------------------------------- dense, activations
def test_linear():
    x, w, b = rand(5, 7), rand(3, 7), rand(3)
    twin("linear_forward", x, w, b, **F32)
    twin("linear_forward", x, w, None, **F32)
    twin("linear_forward", rand(7), w, b, **F32)   # unbatched
    g = rand(5, 3)
    twin("linear_backward", x, w, g, True, True, True, **F32)
    twin("linear_backward", x, w, g, False, True, False, **F32)


def test_activations():
    x = rand(3, 7, low=-4, high=4)
    g = rand(3, 7)
    twin("relu_forward", x)
    twin("relu_forward", x, 0.1, **F32)
    twin("relu_backward", g, x)
    twin("relu_backward", g, x, 0.1, **F32)
    for name in ("sigmoid", "tanh"):
        y, _ = twin(f"{name}_forward", x, **F32)
        twin(f"{name}_backward", g, y, **F32)
    twin("sigmoid_forward", np.array([-100.0, 100.0, 0.0], np.float32))  # no overflow either way


def test_softmax_family():
    x = rand(4, 6, low=-5, high=5)
    g = rand(4, 6)
    for name in ("log_softmax", "softmax"):
        y, _ = twin(f"{name}_forward", x, **F32)
        twin(f"{name}_backward", g, y, **F32)


def test_nll():
    logp = np.log(np.abs(rand(5, 4)) + 0.1).astype(np.float32)
    target = np.array([0, 3, -100, 2, 1], np.int64)
    weight = rand(4, low=0.5, high=2.0)
    (losses, wsel), _ = twin("nll_forward", logp, target, weight, -100, **F32)
    twin("nll_backward", rand(5), target, wsel, logp.shape, logp.dtype, **F32)
    twin("nll_forward", logp, np.array([0, 3, 3, 2, 1], np.int32), np.ones(4, np.float32), 3, **F32)


# --------------------------------------------------------------- batch norm
def test_batch_norm():
    x3 = rand(3, 4, 5, low=-2, high=3)
    (mean, var), _ = twin("batch_norm_stats", x3, **F32)
    invstd = (1 / np.sqrt(var + 1e-5)).astype(np.float32)
    gamma, beta = rand(4), rand(4)
    twin("batch_norm_forward", x3, mean, invstd, gamma, beta, **F32)
    g = rand(3, 4, 5)
    for training in (True, False):
        twin("batch_norm_backward", g, x3, mean, invstd, gamma, training, **F32)
    # BatchNorm + ReLU as nn.Sequential runs them (the CPU fuses them into one kernel each way)
    y, _ = twin("batch_norm_relu_forward", x3, mean, invstd, gamma, beta, **F32)
    assert (y == 0).any() and (y > 0).any()
    for training in (True, False):
        twin("batch_norm_relu_backward", g, y, x3, mean, invstd, gamma, training, **F32)


# ----------------------------------------------------------------- optimizers
@pytest.mark.parametrize("momentum,dampening,nesterov,wd,first", [
    (0.0, 0.0, False, 0.0, True), (0.9, 0.0, False, 1e-2, True), (0.9, 0.1, False, 0.0, False),
    (0.9, 0.0, True, 1e-3, False)])
def test_sgd_step(momentum, dampening, nesterov, wd, first):
    p, g, buf = rand(3, 4), rand(3, 4), rand(3, 4)
    C = cuda()
    dp, dbuf = to_device(p.copy()), to_device(buf.copy())
    cpu.sgd_step(p, g, buf, 0.1, momentum, dampening, nesterov, wd, first)
    C.sgd_step(dp, to_device(g), dbuf, 0.1, momentum, dampening, nesterov, wd, first)
    assert_same(to_host(dp), p, **F32)
    assert_same(to_host(dbuf), buf, **F32)


@pytest.mark.parametrize("wd,decoupled,amsgrad", [(0.0, False, False), (1e-2, False, True), (1e-2, True, False)])
def test_adam_step(wd, decoupled, amsgrad):
    state = [rand(2, 5) for _ in range(5)]
    state[3] = np.abs(state[3])
    state[4] = np.abs(state[4])
    C = cuda()
    dev = to_device([s.copy() for s in state])
    for step in (1, 2, 3):
        cpu.adam_step(*state[:1], state[1], *state[2:], 1e-2, 0.9, 0.999, 1e-8, wd, decoupled, step, amsgrad)
        C.adam_step(*dev[:1], dev[1], *dev[2:], 1e-2, 0.9, 0.999, 1e-8, wd, decoupled, step, amsgrad)
    for k, (d, s) in enumerate(zip(dev, state)):
        assert_same(to_host(d), s, 1e-4, 1e-6, f"adam state {k}")


# -------------------------------------------------------------- randomness
def test_random_draws_are_the_cpu_generators():
    for name, args in (("random_uniform", (-1.0, 2.0)), ("random_normal", (0.5, 2.0))):
        a = getattr(cpu, name)(np.random.default_rng(3), (4, 5), *args, np.dtype(np.float32))
        b = to_host(getattr(cuda(), name)(np.random.default_rng(3), (4, 5), *args, np.dtype(np.float32)))
        assert_same(b, a)


def test_dropout_mask():
    C = cuda()
    rng = np.random.default_rng(1)
    m = to_host(C.dropout_mask(rng, (20, 25), 0.25, np.dtype(np.float32)))
    assert m.shape == (20, 25) and m.dtype == np.float32
    assert set(np.unique(m)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.6 < (m > 0).mean() < 0.9
    m2 = to_host(C.dropout_mask(rng, (20, 25), 0.25, np.dtype(np.float32)))
    assert not np.array_equal(m, m2), "the device generators must advance between masks"
    again = to_host(C.dropout_mask(np.random.default_rng(1), (20, 25), 0.25, np.dtype(np.float32)))
    np.testing.assert_array_equal(again, m)   # a new host generator with the same seed: the same mask


# ------------------------------------------- issue 19: fused kernels, fast gradients
GRADIENT_CASES = [  # x shape, w shape, stride, padding, dilation: the tap-stepping and slicing paths
    ((1, 1, 9, 9), (1, 1, 3, 3), (2, 2), (3, 3), (4, 4)),    # stride | dilation: every second row skips
    ((1, 2, 9, 10), (2, 2, 2, 3), (4, 3), (2, 1), (2, 2)),   # gcd 2: some input rows get no tap at all
    ((3, 2, 12, 5), (3, 2, 1, 5), (1, 1), (0, 2), (1, 1)),   # 1x5 with 4 taps a pass: two passes along x
    ((6, 1, 10, 3), (2, 1, 3, 3), (1, 1), (1, 1), (1, 1)),   # 60 image rows: many slices per weight plane
]


@pytest.mark.parametrize("xs,ws,s,p,d", GRADIENT_CASES)
def test_conv2d_gradients_step_over_taps_and_slice_the_rows(xs, ws, s, p, d):
    x, w = rand(*xs), rand(*ws)
    out_hw = _conv_out(xs, ws, s, p, d)
    g = rand(xs[0], ws[0], *out_hw)
    (_, dw, db), got = twin("conv2d_backward", x, w, g, None, s, p, d, True, True, True, **F32)
    # and against sums written out here, independent of both backends
    want_db = g.sum(axis=(0, 2, 3))
    np.testing.assert_allclose(db, want_db, rtol=1e-5, atol=1e-5)
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0] + s[0] * out_hw[0]), (p[1], p[1] + s[1] * out_hw[1])))
    want_dw = np.zeros(ws, np.float64)
    for i in range(ws[2]):
        for j in range(ws[3]):
            win = xp[:, :, i * d[0]:i * d[0] + s[0] * out_hw[0]:s[0], j * d[1]:j * d[1] + s[1] * out_hw[1]:s[1]]
            want_dw[:, :, i, j] = np.einsum("nkyx,ncyx->kc", g, win)
    np.testing.assert_allclose(got[1], want_dw, rtol=1e-4, atol=1e-5)


def test_weight_gradient_is_the_same_every_run():
    C = cuda()
    x, g = to_device(rand(5, 2, 8, 6)), to_device(rand(5, 3, 8, 6))
    w = to_device(rand(3, 2, 3, 3))
    runs = [C.conv2d_backward(x, w, g, None, (1, 1), (1, 1), (1, 1), False, True, True) for _ in range(3)]
    for _, dw, db in runs[1:]:
        np.testing.assert_array_equal(to_host(dw), to_host(runs[0][1]))
        np.testing.assert_array_equal(to_host(db), to_host(runs[0][2]))


@pytest.mark.parametrize("running", [True, False])
def test_batch_norm_train_stats_and_invstd(running):
    x3 = rand(3, 4, 5, low=-2, high=3)
    rm, rv = rand(4), rand(4, low=0.5, high=2.0)
    rm0, rv0 = rm.copy(), rv.copy()
    C = cuda()
    drm, drv = to_device(rm.copy()), to_device(rv.copy())
    mean, invstd = cpu.batch_norm_train_stats(x3, rm if running else None, rv if running else None, 0.1, 1e-5)
    dmean, dinvstd = C.batch_norm_train_stats(to_device(x3), drm if running else None, drv if running else None,
                                              0.1, 1e-5)
    assert_same(to_host((dmean, dinvstd)), (mean, invstd), **F32)
    assert_same(to_host((drm, drv)), (rm, rv), **F32)
    # against the definition: biased variance for normalising, unbiased for the running average
    want_mean, want_var = x3.mean(axis=(0, 2)), x3.var(axis=(0, 2))
    np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(want_var + 1e-5), rtol=1e-5)
    if running:
        np.testing.assert_allclose(rm, 0.9 * rm0 + 0.1 * want_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rv, 0.9 * rv0 + 0.1 * x3.var(axis=(0, 2), ddof=1), rtol=1e-5)
    else:
        np.testing.assert_array_equal(to_host(drm), rm0)
    twin("batch_norm_invstd", rand(4, low=0.0, high=2.0), 1e-3, **F32)


def _param_sets(sizes, k, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.uniform(0.1, 1.0, n).astype(np.float32) for n in sizes] for _ in range(k)]


@pytest.mark.parametrize("momentum,nesterov,wd,maximize", [(0.9, False, 0.0, False), (0.9, True, 1e-2, True),
                                                           (0.0, False, 1e-2, False)])
def test_sgd_steps_update_many_parameters_in_one_launch(monkeypatch, momentum, nesterov, wd, maximize):
    from cnnlab.backends import cuda_optim

    monkeypatch.setattr(cuda_optim, "_BLOCKS_X", 2)  # so the blocks of a row stride over 70 elements
    sizes = [3, 70, 1, 0, 25] * 5   # 25 parameters: two chunks of at most 21
    p, g, buf = _param_sets(sizes, 3)
    C = cuda()
    dp, dg, dbuf = to_device([a.copy() for a in p]), to_device(g), to_device([a.copy() for a in buf])
    for first in (True, False):
        cpu.sgd_steps(p, g, buf, 0.1, momentum, 0.0, nesterov, wd, first, maximize)
        C.sgd_steps(dp, dg, dbuf, 0.1, momentum, 0.0, nesterov, wd, first, maximize)
    for k in range(len(sizes)):
        assert_same(to_host(dp[k]), p[k], **F32)
        assert_same(to_host(dbuf[k]), buf[k], **F32)


@pytest.mark.parametrize("wd,decoupled,amsgrad,maximize", [(0.0, False, False, False), (1e-2, True, True, True)])
def test_adam_steps_update_many_parameters_in_one_launch(wd, decoupled, amsgrad, maximize):
    sizes = [4, 33, 1, 9] * 4   # 16 parameters: two chunks of five arrays each
    p, g, m, v, vmax = _param_sets(sizes, 5, seed=1)
    C = cuda()
    dev = [to_device([a.copy() for a in arrays]) for arrays in (p, g, m, v, vmax)]
    for step in (1, 2):
        cpu.adam_steps(p, g, m, v, vmax, 1e-2, 0.9, 0.999, 1e-8, wd, decoupled, step, amsgrad, maximize)
        C.adam_steps(*dev, 1e-2, 0.9, 0.999, 1e-8, wd, decoupled, step, amsgrad, maximize)
    for name, host, device in zip(("p", "g", "m", "v", "vmax"), (p, g, m, v, vmax), dev):
        for k in range(len(sizes)):
            assert_same(to_host(device[k]), host[k], 1e-4, 1e-6, f"adam {name}[{k}]")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_forward_and_backward_fused(reduction, weighted):
    logp = np.log(rand(7, 4, low=0.05, high=1.0))
    target = np.array([0, 3, -100, 2, 1, 3, 0], np.int64)
    weight = rand(4, low=0.5, high=2.0) if weighted else None
    (loss, wsel, denominator), _ = twin("nll_loss_forward", logp, target, weight, -100, reduction, **F32)
    # against the definition: -w[t] * logp[r, t] over the rows not ignored
    keep = target != -100
    w = weight if weighted else np.ones(4, np.float32)
    per = np.where(keep, -logp[np.arange(7), np.where(keep, target, 0)] * w[np.where(keep, target, 0)], 0)
    want = {"none": per, "sum": per.sum(), "mean": per.sum() / w[target[keep]].sum()}[reduction]
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    g = rand(7) if reduction == "none" else np.array(0.7, np.float32)
    denominator = None if denominator is None else np.asarray(denominator)  # the CPU's is a NumPy scalar
    twin("nll_loss_backward", g, target, wsel, denominator, logp.shape, np.float32, reduction, **F32)


@pytest.mark.parametrize("rows_in_out", [(3, 7, 4), (37, 70, 9)])
def test_linear_weight_gradient_and_bias_from_one_gemm(rows_in_out):
    """dw and db from one gemm launch (db: the row sums of g.T, an extra column of ones)."""
    rows, in_f, out_f = rows_in_out
    x, w, g = rand(2, rows, in_f), rand(out_f, in_f), rand(2, rows, out_f)
    (_, dw, db), _ = twin("linear_backward", x, w, g, True, True, True, **F32)
    np.testing.assert_allclose(dw, np.einsum("rk,rc->kc", g.reshape(-1, out_f), x.reshape(-1, in_f)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(db, g.reshape(-1, out_f).sum(0), rtol=1e-5, atol=1e-6)
