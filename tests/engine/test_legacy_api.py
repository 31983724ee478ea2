"""The last three tutorial blockers (issue 13): PyTorch's legacy tensor types (FloatTensor ...
and x.type()), binary cross-entropy with and without logits, cudnn flags and nn.parallel, and
tiny matrix products rounded as PyTorch rounds them. Hand-worked values and float64 finite
differences always; PyTorch itself where it is installed."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab.backends import cpu

from helpers import check_grad

try:
    import torch
except ImportError:  # CI has no torch: the hand-worked halves still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
RNG = np.random.default_rng(1313)
LEGACY = {"FloatTensor": cnnlab.float32, "DoubleTensor": cnnlab.float64, "HalfTensor": cnnlab.float16,
          "LongTensor": cnnlab.int64, "IntTensor": cnnlab.int32, "ShortTensor": cnnlab.int16,
          "CharTensor": cnnlab.int8, "ByteTensor": cnnlab.uint8, "BoolTensor": cnnlab.bool}


# ------------------------------------------------------------------ legacy tensor types
@pytest.mark.parametrize("name", sorted(LEGACY))
def test_legacy_types_name_their_dtype_both_ways(name):
    cls = getattr(cnnlab, name)
    x = cnnlab.zeros(2, 3, dtype=cnnlab.uint8)
    y = x.type(cls)
    assert y.dtype == LEGACY[name] and y.shape == (2, 3)
    assert y.type() == f"torch.{name}"
    assert x.type(f"torch.{name}").dtype == LEGACY[name] == x.type(f"cnnlab.{name}").dtype
    assert isinstance(y, cls) and not isinstance(y, cnnlab.FloatTensor if name != "FloatTensor" else cnnlab.LongTensor)


def test_legacy_types_construct_like_pytorchs():
    assert cnnlab.FloatTensor([1, 2]).dtype == cnnlab.float32
    assert cnnlab.FloatTensor([1, 2]).tolist() == [1.0, 2.0]
    assert cnnlab.LongTensor([1.7, -2.9]).tolist() == [1, -2]             # C truncation, as PyTorch
    zeros = cnnlab.FloatTensor(2, 3)                                       # sizes: PyTorch's memory is
    assert zeros.shape == (2, 3) and zeros.sum().item() == 0               # uninitialised; ours zeros
    assert cnnlab.ByteTensor(cnnlab.Size([4])).shape == (4,)
    assert cnnlab.FloatTensor().shape == (0,)
    assert cnnlab.BoolTensor([1, 0]).tolist() == [True, False]
    same = cnnlab.tensor([1.0, 2.0])
    assert cnnlab.FloatTensor(same).tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="LongTensor|int64"):
        cnnlab.FloatTensor(cnnlab.tensor([1, 2]))                          # PyTorch refuses too
    with pytest.raises(ValueError, match="torch.FloatTensor"):
        cnnlab.zeros(2).type("torch.NoSuchTensor")
    assert repr(cnnlab.FloatTensor) == "<class 'cnnlab.FloatTensor'>"


def test_type_without_argument_and_new_device_flags():
    assert cnnlab.zeros(1).type() == "torch.FloatTensor"
    assert cnnlab.zeros(1, dtype=cnnlab.int64).type() == "torch.LongTensor"
    x = cnnlab.zeros(1)
    assert (x.is_cuda, x.is_xpu, x.is_mps) == (False, False, False)
    assert x.type(cnnlab.float64).dtype == cnnlab.float64                 # dtypes still work
    assert x.to(cnnlab.DoubleTensor).dtype == cnnlab.float64


@needs_torch
def test_legacy_types_agree_with_pytorch():
    for name in LEGACY:
        t = torch.zeros(2, dtype=torch.uint8).type(getattr(torch, name))
        c = cnnlab.zeros(2, dtype=cnnlab.uint8).type(getattr(cnnlab, name))
        assert c.type() == t.type() and str(c.dtype) == str(t.dtype).replace("torch.", "")
    assert cnnlab.LongTensor([1.7, -2.9]).tolist() == torch.LongTensor([1.7, -2.9]).tolist()
    assert cnnlab.FloatTensor(3, 2).shape == tuple(torch.FloatTensor(3, 2).shape)
    assert isinstance(cnnlab.zeros(2), cnnlab.FloatTensor) == isinstance(torch.zeros(2), torch.FloatTensor)


# ------------------------------------------------------------ binary cross-entropy
def test_bce_hand_worked_with_the_minus_100_floor():
    p = cnnlab.tensor([0.9, 0.2, 0.6], requires_grad=True)
    loss = nn.BCELoss()(p, cnnlab.ones(3))
    loss.backward()
    expected = -(np.log(0.9) + np.log(0.2) + np.log(0.6)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(p.grad.numpy(), [-1 / 0.9 / 3, -1 / 0.2 / 3, -1 / 0.6 / 3], rtol=1e-6)
    # a certain, wrong prediction costs 100 (log floored), not infinity; a right one costs 0
    per = F.binary_cross_entropy(cnnlab.tensor([0.0, 1.0, 0.0, 1.0]), cnnlab.tensor([1.0, 0.0, 0.0, 1.0]),
                                 reduction="none")
    assert per.tolist() == [100.0, 100.0, 0.0, 0.0]
    weighted = F.binary_cross_entropy(cnnlab.tensor([0.5, 0.5]), cnnlab.tensor([1.0, 0.0]),
                                      weight=cnnlab.tensor([1.0, 3.0]), reduction="sum")
    assert weighted.item() == pytest.approx(4 * np.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(cnnlab.tensor([1.5]), cnnlab.tensor([1.0]))
    with pytest.raises(ValueError, match="target shape"):
        nn.BCELoss()(cnnlab.tensor([0.5, 0.5]), cnnlab.tensor([1.0]))


def test_bce_with_logits_hand_worked_and_stable():
    # log(1 + e^-x) for y = 1: 0 at +inf, x itself at -inf, without overflow either way
    per = F.binary_cross_entropy_with_logits(cnnlab.tensor([0.0, 100.0, -100.0, 30.0]),
                                             cnnlab.tensor([1.0, 1.0, 1.0, 0.0]), reduction="none")
    np.testing.assert_allclose(per.numpy(), [np.log(2), np.exp(-100.0), 100.0, 30.0], rtol=1e-6, atol=1e-44)
    tiny = F.binary_cross_entropy_with_logits(cnnlab.tensor([20.0]), cnnlab.tensor([1.0]), reduction="none")
    assert tiny.item() == pytest.approx(np.log1p(np.exp(-20.0)), rel=1e-5)  # log1p, not log(1 + 2e-9) = 0
    pw = nn.BCEWithLogitsLoss(pos_weight=cnnlab.tensor([3.0]))(cnnlab.tensor([0.0, 0.0]), cnnlab.tensor([1.0, 0.0]))
    assert pw.item() == pytest.approx((3 * np.log(2) + np.log(2)) / 2, rel=1e-6)


def _bce_ref(x, t, w):
    return np.mean(-w * (t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log1p(-x), -100)))


def _bce_logits_ref(x, t, w, pw):
    logsig = -np.logaddexp(0, -x)
    return np.sum(w * ((1 - t) * x - (1 + (pw - 1) * t) * logsig))


def test_bce_gradients_match_finite_differences():
    x = RNG.uniform(0.05, 0.95, (3, 4))
    t = RNG.uniform(0, 1, (3, 4))
    w = RNG.uniform(0.5, 2, (4,))
    check_grad(lambda a, b: F.binary_cross_entropy(a, b, weight=cnnlab.tensor(w)), x, t,
               ref=lambda a, b: _bce_ref(a, b, w))
    z = RNG.standard_normal((3, 4)) * 4
    pw = RNG.uniform(0.5, 3, (4,))
    for red in ("sum", "none", "mean"):
        check_grad(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=cnnlab.tensor(w), reduction=red,
                                                                   pos_weight=cnnlab.tensor(pw)), z, t,
                   ref=(lambda a, b: _bce_logits_ref(a, b, w, pw)) if red == "sum" else None)
    check_grad(lambda a, b: F.binary_cross_entropy_with_logits(a, b), z, t,
               ref=lambda a, b: _bce_logits_ref(a, b, 1.0, 1.0) / a.size)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_agrees_with_pytorch(reduction):
    p = RNG.random((6, 5)).astype(np.float32)
    p[0, :3] = [0.0, 1.0, 1e-9]                                     # the floor and log1p's regime
    z = (RNG.standard_normal((6, 5)) * 6).astype(np.float32)
    t = RNG.random((6, 5)).astype(np.float32)
    w, pw = RNG.random(5).astype(np.float32), (RNG.random(5) * 3).astype(np.float32)
    cases = [("binary_cross_entropy", p, {"weight": w}),
             ("binary_cross_entropy_with_logits", z, {"weight": w, "pos_weight": pw}),
             ("binary_cross_entropy_with_logits", z, {})]
    for fn, x, extra in cases:
        cx, ct = cnnlab.tensor(x, requires_grad=True), cnnlab.tensor(t, requires_grad=True)
        tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
        cl = getattr(F, fn)(cx, ct, reduction=reduction, **{k: cnnlab.tensor(v) for k, v in extra.items()})
        tl = getattr(torch.nn.functional, fn)(tx, tt, reduction=reduction, **{k: torch.tensor(v) for k, v in extra.items()})
        cl.sum().backward()
        tl.sum().backward()
        np.testing.assert_allclose(cl.detach().numpy(), tl.detach().numpy(), rtol=1e-6, atol=1e-6, err_msg=fn)
        # gradients: as close as float32 allows (one ulp of the sigmoid in s - t)
        scale = 1.0 if reduction != "mean" else 1 / x.size
        np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=2e-7 * scale, err_msg=fn)
        # d/dt is log(1 - x) - log(x): PyTorch's is infinite at x = 0 or 1, ours finite (about +-103)
        inside = (x > 0) & (x < 1)
        np.testing.assert_allclose(ct.grad.numpy()[inside], tt.grad.numpy()[inside], rtol=1e-5, atol=2e-7 * scale,
                                   err_msg=fn)
        assert np.all(np.isfinite(ct.grad.numpy())) and np.all(np.sign(ct.grad.numpy()) == np.sign(tt.grad.numpy()))


# ------------------------------------------------------------- cudnn and parallel
def test_cudnn_flags_exist_and_do_nothing():
    import cnnlab.backends.cudnn as cudnn

    assert cnnlab.backends.cudnn is cudnn and cudnn.is_available() is False and cudnn.version() is None
    model = nn.Linear(3, 2)
    x = cnnlab.randn(4, 3)
    before = model(x).detach().numpy()
    cudnn.benchmark, cudnn.deterministic = True, True
    try:
        np.testing.assert_array_equal(model(x).detach().numpy(), before)
    finally:
        cudnn.benchmark, cudnn.deterministic = False, False


def test_data_parallel_wraps_and_calls_the_module():
    inner = nn.Linear(3, 2)
    dp = nn.parallel.DataParallel(inner, device_ids=[0])
    assert dp.module is inner and nn.DataParallel is nn.parallel.DataParallel
    assert list(dp.state_dict()) == ["module.weight", "module.bias"]
    x = cnnlab.randn(5, 3)
    np.testing.assert_array_equal(dp(x).detach().numpy(), inner(x).detach().numpy())
    np.testing.assert_array_equal(nn.parallel.data_parallel(inner, x, range(2)).detach().numpy(),
                                  inner(x).detach().numpy())
    assert nn.parallel.data_parallel(lambda a, b: a + b, (x, x)).shape == (5, 3)
    assert len(list(dp.parameters())) == 2


@needs_torch
def test_data_parallel_checkpoints_load_into_pytorchs():
    dp = nn.DataParallel(nn.Linear(3, 2))
    tdp = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    tdp.load_state_dict({k: torch.tensor(v.numpy()) for k, v in dp.state_dict().items()})
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(tdp(torch.tensor(x)).detach().numpy(), dp(cnnlab.tensor(x)).detach().numpy(),
                               rtol=1e-6)


# ------------------------------------------------------------- tiny matrix products
def _in_order(a, b):
    """Each output a left-to-right sum of rounded products, in the operands' precision."""
    out = np.zeros((a.shape[0], b.shape[1]), a.dtype)
    for p in range(a.shape[1]):
        out = out + a[:, p:p + 1] * b[p]
    return out


@pytest.mark.parametrize("shape", [(2, 3, 9), (3, 4, 5), (8, 8, 8), (1, 64, 10), (5, 17, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiny_matmul_rounds_like_a_loop(shape, dtype):
    m, k, n = shape
    for _ in range(10):
        a = RNG.standard_normal((m, k)).astype(dtype)
        b = RNG.standard_normal((k, n)).astype(dtype)
        np.testing.assert_array_equal((cnnlab.tensor(a) @ cnnlab.tensor(b)).numpy(), _in_order(a, b))
        np.testing.assert_array_equal(cpu.matmul(a.T.copy().T, b[:, ::-1][:, ::-1]), _in_order(a, b))  # strides


def test_d2l_channels_assertion_holds_on_every_draw():
    for seed in range(100):
        rng = np.random.default_rng(seed)
        x, k = rng.standard_normal((3, 9)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
        y1 = cnnlab.tensor(k) @ cnnlab.tensor(x)
        y2 = cnnlab.zeros(2, 9)
        for c in range(3):
            y2 = y2 + cnnlab.tensor(k[:, c:c + 1]) * cnnlab.tensor(x[c])
        assert float((y1 - y2).abs().sum()) < 1e-6


def test_larger_and_other_products_stay_on_blas():
    a = RNG.standard_normal((16, 16)).astype(np.float32)
    np.testing.assert_array_equal(cpu.matmul(a, a), np.matmul(a, a))       # BLAS's FMA tiles
    batched = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(cpu.matmul(batched, a[:4, :5]), np.matmul(batched, a[:4, :5]))
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(cpu.matmul(ints, ints.T), ints @ ints.T)
    assert cpu.matmul(np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32)).tolist() == [[0.0] * 3] * 2


@needs_torch
def test_tiny_matmul_equals_pytorch_bit_for_bit():
    torch.set_num_threads(1)
    for shape in [(2, 3, 9), (3, 4, 5), (8, 8, 8), (5, 17, 3), (2, 100, 2), (16, 16, 16), (10, 20, 30)]:
        m, k, n = shape
        for _ in range(10):
            a = RNG.standard_normal((m, k)).astype(np.float32)
            b = RNG.standard_normal((k, n)).astype(np.float32)
            np.testing.assert_array_equal((cnnlab.tensor(a) @ cnnlab.tensor(b)).numpy(),
                                          (torch.from_numpy(a) @ torch.from_numpy(b)).numpy(), err_msg=str(shape))


def test_tiny_products_with_a_vector_or_a_bad_shape_behave_as_numpys():
    a, v = RNG.standard_normal((2, 3)).astype(np.float32), RNG.standard_normal(3).astype(np.float32)
    np.testing.assert_array_equal(cpu.matmul(a, v), np.matmul(a, v))
    np.testing.assert_array_equal(cpu.matmul(v, a.T), np.matmul(v, a.T))
    with pytest.raises(ValueError):
        cpu.matmul(a, a)
