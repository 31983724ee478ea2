"""Layers, activations, losses, batch norm and dropout against NumPy formulas and finite
differences (float64); the Module API; PyTorch's default initialisation."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import cnnlab as torch
import cnnlab.nn as nn
import cnnlab.nn.functional as F

from helpers import check_grad, distinct

rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape)


def np_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ------------------------------------------------------------------- linear
@pytest.mark.parametrize("x_shape", [(5, 4), (4,), (2, 3, 4)])
def test_linear(x_shape):
    x, w, b = r(*x_shape), r(3, 4), r(3)
    check_grad(F.linear, x, w, b, ref=lambda x, w, b: x @ w.T + b)
    check_grad(lambda x, w: F.linear(x, w), x, w, ref=lambda x, w: x @ w.T)


def test_linear_module():
    lin = nn.Linear(4, 3).double()
    x = r(5, 4)
    expected = x @ lin.weight.numpy().T + lin.bias.numpy()
    np.testing.assert_allclose(lin(torch.tensor(x)).numpy(), expected, rtol=1e-12)
    assert nn.Linear(4, 3, bias=False).bias is None


# -------------------------------------------------------------- activations
ACTIVATIONS = [
    ("relu", F.relu, lambda x: np.maximum(x, 0)),
    ("relu_module", nn.ReLU(), lambda x: np.maximum(x, 0)),
    ("leaky_relu", F.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x)),
    ("leaky_relu_0.2", nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    ("sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    ("sigmoid_module", nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", F.tanh, np.tanh),
    ("tanh_module", nn.Tanh(), np.tanh),
    ("tensor_relu", lambda t: t.relu(), lambda x: np.maximum(x, 0)),
    ("torch_sigmoid", lambda t: torch.sigmoid(t), lambda x: 1 / (1 + np.exp(-x))),
]


@pytest.mark.parametrize("name, fn, ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activations(name, fn, ref):
    check_grad(fn, distinct((3, 4, 5), spread=4.0), ref=ref)


def test_sigmoid_saturates_without_overflow():
    y = F.sigmoid(torch.tensor([-1000.0, 1000.0]))
    assert y.numpy().tolist() == [0.0, 1.0]


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_softmax_and_log_softmax(dim):
    x = r(2, 3, 4)
    check_grad(lambda x: F.softmax(x, dim), x, ref=lambda x: np.exp(np_log_softmax(x, dim)))
    check_grad(lambda x: F.log_softmax(x, dim), x, ref=lambda x: np_log_softmax(x, dim))
    check_grad(lambda x: nn.Softmax(dim=dim)(x), x, ref=lambda x: np.exp(np_log_softmax(x, dim)))
    check_grad(lambda x: nn.LogSoftmax(dim)(x), x, ref=lambda x: np_log_softmax(x, dim))
    check_grad(lambda x: x.softmax(dim), x, ref=lambda x: np.exp(np_log_softmax(x, dim)))


def test_softmax_is_stable_for_large_scores():
    p = F.softmax(torch.tensor([[1000.0, 1000.0, -1000.0]]), 1).numpy()
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]])
    assert np.isfinite(F.log_softmax(torch.tensor([[1000.0, 0.0]]), 1).numpy()).all()


# ------------------------------------------------------------------- losses
def ce_reference(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's documented cross entropy for class-index targets, rows of x (N, C)."""
    n, c = x.shape
    w = np.ones(c) if weight is None else weight
    logp = np_log_softmax(x, 1)
    keep = t != ignore_index
    tt = np.where(keep, t, 0)
    nll = np.where(keep, -w[tt] * logp[np.arange(n), tt], 0.0)
    smooth = np.where(keep, -(logp * w).sum(1), 0.0)  # sum over classes, divided by C below
    per = (1 - label_smoothing) * nll + label_smoothing / c * smooth
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / w[tt][keep].sum()


TARGETS = np.array([0, 2, 1, 3, 2, 2])
WEIGHT = np.array([0.5, 2.0, 1.0, 1.5])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy(reduction, weighted, ignore_index):
    w = WEIGHT if weighted else None
    kw = dict(ignore_index=ignore_index, reduction=reduction)

    def fn(x):
        return F.cross_entropy(x, torch.tensor(TARGETS), None if w is None else torch.tensor(w), **kw)

    check_grad(fn, r(6, 4), ref=lambda x: ce_reference(x, TARGETS, w, **kw))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_label_smoothing(reduction):
    check_grad(lambda x: F.cross_entropy(x, torch.tensor(TARGETS), reduction=reduction, label_smoothing=0.2),
               r(6, 4), ref=lambda x: ce_reference(x, TARGETS, reduction=reduction, label_smoothing=0.2))


def test_cross_entropy_label_smoothing_with_weights():
    check_grad(lambda x: F.cross_entropy(x, torch.tensor(TARGETS), torch.tensor(WEIGHT), label_smoothing=0.1),
               r(6, 4), ref=lambda x: ce_reference(x, TARGETS, WEIGHT, label_smoothing=0.1))


def test_cross_entropy_label_smoothing_with_ignore_index():
    check_grad(lambda x: F.cross_entropy(x, torch.tensor(TARGETS), ignore_index=2, label_smoothing=0.1),
               r(6, 4), ref=lambda x: ce_reference(x, TARGETS, ignore_index=2, label_smoothing=0.1))


def test_cross_entropy_over_spatial_positions():
    """(N, C, H, W) scores with (N, H, W) targets: every pixel is a row."""
    t = rng.integers(0, 3, (2, 2, 3))

    def ref(x):
        rows = x.transpose(0, 2, 3, 1).reshape(-1, 3)
        return ce_reference(rows, t.reshape(-1), reduction="none").reshape(2, 2, 3)

    check_grad(lambda x: F.cross_entropy(x, torch.tensor(t), reduction="none"), r(2, 3, 2, 3), ref=ref)
    check_grad(lambda x: F.cross_entropy(x, torch.tensor(t)), r(2, 3, 2, 3),
               ref=lambda x: ce_reference(x.transpose(0, 2, 3, 1).reshape(-1, 3), t.reshape(-1)))


def test_cross_entropy_with_probability_targets():
    p = np.random.default_rng(1).dirichlet(np.ones(4), size=5)
    check_grad(lambda x, p: F.cross_entropy(x, p), r(5, 4), p, wrt=[0],
               ref=lambda x, p: -(p * np_log_softmax(x, 1)).sum(1).mean())


def test_cross_entropy_with_probability_targets_and_weights():
    p = np.random.default_rng(1).dirichlet(np.ones(4), size=5)
    check_grad(lambda x, p: F.cross_entropy(x, p, torch.tensor(WEIGHT)), r(5, 4), p, wrt=[0],
               ref=lambda x, p: -(p * WEIGHT * np_log_softmax(x, 1)).sum(1).mean())


def test_cross_entropy_module_matches_hand_value():
    # scores [0, 0] for 2 classes: loss = log 2 whatever the label
    loss = nn.CrossEntropyLoss()(torch.zeros(3, 2), torch.tensor([0, 1, 1]))
    assert abs(loss.item() - np.log(2)) < 1e-6


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(reduction, weighted):
    w = WEIGHT if weighted else None
    t = np.array([3, 0, 0, 1, 2])

    def ref(x):
        wt = np.ones(4)[t] if w is None else w[t]
        per = -wt * x[np.arange(5), t]
        return {"none": per, "sum": per.sum(), "mean": per.sum() / wt.sum()}[reduction]

    check_grad(lambda x: F.nll_loss(x, torch.tensor(t), None if w is None else torch.tensor(w),
                                    reduction=reduction), r(5, 4), ref=ref)
    check_grad(lambda x: nn.NLLLoss(None if w is None else torch.tensor(w), reduction=reduction)(
        x, torch.tensor(t)), r(5, 4), ref=ref)


def test_nll_loss_ignore_index():
    t = np.array([3, 0, 0, 1, 2])
    check_grad(lambda x: F.nll_loss(x, torch.tensor(t), ignore_index=0), r(5, 4),
               ref=lambda x: -(x[[0, 3, 4], [3, 1, 2]]).mean())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    red = {"mean": np.mean, "sum": np.sum, "none": lambda d: d}[reduction]
    check_grad(lambda a, b: F.mse_loss(a, b, reduction=reduction), r(3, 4), r(3, 4),
               ref=lambda a, b: red((a - b) ** 2))
    check_grad(lambda a, b: nn.MSELoss(reduction)(a, b), r(3, 4), r(3, 4), ref=lambda a, b: red((a - b) ** 2))


# --------------------------------------------------------------- batch norm
def bn_reference(x, mean, var, w, b, eps=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)


def batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes)


@pytest.mark.parametrize("shape", [(4, 3, 2, 3), (5, 3), (2, 3, 4)])
def test_batch_norm_training_gradients(shape):
    x, w, b = r(*shape), r(3), r(3)

    def ref(x, w, b):
        return bn_reference(x, *batch_stats(x), w, b)

    check_grad(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), x, w, b, ref=ref, atol=1e-5)


def test_batch_norm_eval_gradients():
    x, w, b = r(4, 3, 2, 2), r(3), r(3)
    rm, rv = r(3), np.random.default_rng(2).uniform(0.5, 2, 3)
    check_grad(lambda x, w, b: F.batch_norm(x, torch.tensor(rm), torch.tensor(rv), w, b, training=False),
               x, w, b, ref=lambda x, w, b: bn_reference(x, rm, rv, w, b))


def test_batch_norm_running_statistics():
    bn = nn.BatchNorm2d(3)
    assert bn.training and bn.num_batches_tracked.item() == 0
    x1 = (r(4, 3, 5, 5) * 2 + 1).astype(np.float32)
    x2 = (r(6, 3, 2, 2) - 3).astype(np.float32)
    y1 = bn(torch.tensor(x1))
    mean1, var1 = batch_stats(x1.astype(np.float64))
    np.testing.assert_allclose(y1.numpy(), bn_reference(x1, mean1, var1, np.ones(3), np.zeros(3)), atol=1e-5)
    n1 = 4 * 25
    rm = 0.9 * 0 + 0.1 * mean1
    rv = 0.9 * 1 + 0.1 * var1 * n1 / (n1 - 1)       # the running variance is unbiased
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-5)
    bn(torch.tensor(x2))
    mean2, var2 = batch_stats(x2.astype(np.float64))
    n2 = 6 * 4
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.9 * rm + 0.1 * mean2, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 * rv + 0.1 * var2 * n2 / (n2 - 1), rtol=1e-5)
    assert int(bn.num_batches_tracked.item()) == 2
    # eval normalises with the running statistics and leaves them alone
    bn.eval()
    before = bn.running_mean.numpy().copy()
    y = bn(torch.tensor(x1))
    np.testing.assert_allclose(y.numpy(), bn_reference(x1, 0.9 * rm + 0.1 * mean2,
                                                       0.9 * rv + 0.1 * var2 * n2 / (n2 - 1),
                                                       np.ones(3), np.zeros(3)), atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)
    assert int(bn.num_batches_tracked.item()) == 2


def test_batch_norm_cumulative_average_when_momentum_is_none():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [r(5, 2).astype(np.float32) for _ in range(3)]
    for x in xs:
        bn(torch.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean([x.var(0, ddof=1) for x in xs], axis=0), rtol=1e-5)


def test_batch_norm_module_gradients_reach_weight_and_bias():
    bn = nn.BatchNorm2d(2).double()
    x = torch.tensor(r(3, 2, 2, 2), requires_grad=True)
    (bn(x) * torch.tensor(r(3, 2, 2, 2))).sum().backward()
    assert bn.weight.grad is not None and bn.bias.grad is not None and x.grad is not None


# ----------------------------------------------------------------- dropout
def test_dropout_eval_is_identity():
    d = nn.Dropout(0.5).eval()
    x = torch.randn(4, 5)
    np.testing.assert_array_equal(d(x).numpy(), x.numpy())
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).numpy(), x.numpy())


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_mask_statistics_and_scaling(p):
    torch.manual_seed(0)
    n = 200_000
    y = F.dropout(torch.ones(n), p, training=True).numpy()
    zero = y == 0
    assert abs(zero.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[~zero], 1 / (1 - p), rtol=1e-6)   # survivors scaled by 1/(1-p)
    assert abs(y.mean() - 1) < 0.02                                  # the expectation is kept


def test_dropout_gradient_uses_the_same_mask():
    torch.manual_seed(1)
    x = torch.ones(1000, requires_grad=True)
    y = nn.Dropout(0.3)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())   # dy/dx = mask / (1-p) = y here


def test_dropout_extremes():
    x = torch.randn(10)
    np.testing.assert_array_equal(F.dropout(x, 0.0).numpy(), x.numpy())
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros(10))


def test_dropout_is_reproducible_with_manual_seed():
    x = torch.ones(50, 50)
    torch.manual_seed(123)
    a = F.dropout(x, 0.5).numpy()
    torch.manual_seed(123)
    b = F.dropout(x, 0.5).numpy()
    torch.manual_seed(124)
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_dropout2d_zeroes_whole_channels():
    torch.manual_seed(0)
    y = nn.Dropout2d(0.5)(torch.ones(4, 16, 3, 3)).numpy().reshape(64, 9)
    assert set(np.unique(y.min(1) == y.max(1))) == {True}


# -------------------------------------------------------------- Module API
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.features = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 2, 3, bias=False), nn.Dropout(0.5))
        self.fc = nn.Linear(2 * 2 * 2, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(self.bn(self.conv1(x))), 1))


PARAM_NAMES = ["conv1.weight", "conv1.bias", "bn.weight", "bn.bias", "features.1.weight", "fc.weight", "fc.bias"]
STATE_KEYS = ["conv1.weight", "conv1.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
              "bn.num_batches_tracked", "features.1.weight", "fc.weight", "fc.bias"]


def test_parameters_in_registration_order_with_pytorch_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == PARAM_NAMES
    assert [p.shape for p in net.parameters()] == [(4, 1, 3, 3), (4,), (4,), (4,), (2, 4, 3, 3), (3, 8), (3,)]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_children_and_modules():
    net = Net()
    assert [type(m).__name__ for m in net.children()] == ["Conv2d", "BatchNorm2d", "Sequential", "Linear"]
    assert [n for n, _ in net.named_modules()] == ["", "conv1", "bn", "features", "features.0", "features.1",
                                                   "features.2", "fc"]
    assert list(net.modules())[0] is net


def test_train_and_eval_reach_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_eval_makes_the_forward_deterministic():
    torch.manual_seed(0)
    net = Net()
    x = torch.randn(2, 1, 6, 6)
    net.eval()
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())


def test_zero_grad():
    net = Net()
    net(torch.randn(2, 1, 6, 6)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_keys_and_round_trip():
    torch.manual_seed(0)
    a = Net()
    a(torch.randn(2, 1, 6, 6))   # training step: running stats move
    sd = a.state_dict()
    assert list(sd) == STATE_KEYS
    assert not any(v.requires_grad for v in sd.values())
    torch.manual_seed(1)
    b = Net()
    b.load_state_dict(sd)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy(), err_msg=k)
    x = torch.randn(3, 1, 6, 6)
    np.testing.assert_array_equal(a.eval()(x).numpy(), b.eval()(x).numpy())
    # the loaded values are copies: training b does not move a
    with torch.no_grad():
        b.fc.weight.add_(1.0)
    assert not np.array_equal(a.fc.weight.numpy(), b.fc.weight.numpy())


def test_load_state_dict_refuses_another_architecture():
    other = nn.Sequential(OrderedDict(conv1=nn.Conv2d(1, 8, 5), fc=nn.Linear(8, 3)))
    with pytest.raises(ValueError) as err:
        Net().load_state_dict(other.state_dict())
    msg = str(err.value)
    assert "conv1.weight" in msg and "[8, 1, 5, 5]" in msg and "[4, 1, 3, 3]" in msg   # shapes that differ
    assert "bn.running_mean" in msg                                                 # keys it lacks


def test_load_state_dict_unexpected_and_missing_keys():
    net = Net()
    sd = dict(net.state_dict())
    sd["extra.weight"] = torch.zeros(2)
    with pytest.raises(ValueError, match="extra.weight"):
        Net().load_state_dict(sd)
    del sd["extra.weight"], sd["fc.bias"]
    with pytest.raises(ValueError, match="fc.bias"):
        Net().load_state_dict(sd)
    result = Net().load_state_dict(sd, strict=False)
    assert result.missing_keys == ["fc.bias"] and result.unexpected_keys == []


def test_forward_hooks():
    net = Net()
    seen = []
    handle = net.conv1.register_forward_hook(lambda m, inp, out: seen.append((m, inp[0].shape, out.shape)))
    x = torch.randn(2, 1, 6, 6)
    net(x)
    assert seen == [(net.conv1, (2, 1, 6, 6), (2, 4, 4, 4))]
    handle.remove()
    net(x)
    assert len(seen) == 1
    # a hook that returns a value replaces the output
    net.fc.register_forward_hook(lambda m, inp, out: out * 0)
    assert not net(x).numpy().any()


def test_repr_like_pytorch():
    expected = """Net(
  (conv1): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))
  (bn): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
  (features): Sequential(
    (0): ReLU()
    (1): Conv2d(4, 2, kernel_size=(3, 3), stride=(1, 1), bias=False)
    (2): Dropout(p=0.5, inplace=False)
  )
  (fc): Linear(in_features=8, out_features=3, bias=True)
)"""
    got = repr(Net())
    # BatchNorm2d and Dropout lines are checked in test_repr_of_batchnorm_and_dropout_like_pytorch
    for want, have in zip(expected.splitlines(), got.splitlines()):
        if "BatchNorm" not in want and "Dropout" not in want:
            assert have == want
    assert len(got.splitlines()) == len(expected.splitlines())
    assert repr(nn.MaxPool2d(2, 2, 1)) == "MaxPool2d(kernel_size=2, stride=2, padding=1, dilation=1, ceil_mode=False)"
    assert repr(nn.Conv2d(3, 18, 3, 1, 1)) == "Conv2d(3, 18, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"


def test_repr_of_batchnorm_and_dropout_like_pytorch():
    assert repr(nn.BatchNorm2d(4)) == "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    assert repr(nn.Dropout(0.5)) == "Dropout(p=0.5, inplace=False)"


def test_sequential_indexing_slicing_and_names():
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    assert isinstance(seq[0], nn.Conv2d) and isinstance(seq[-1], nn.Linear)
    assert len(seq) == 4 and [type(m).__name__ for m in seq] == ["Conv2d", "ReLU", "Flatten", "Linear"]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    assert tuple(head(torch.zeros(1, 1, 4, 4)).shape) == (1, 2, 2, 2)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "3.weight", "3.bias"]
    named = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), act=nn.ReLU()))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"]
    assert named[0] is named.conv


def test_module_double_converts_parameters_and_buffers():
    net = Net().double()
    assert all(t.dtype == np.float64 for t in net.parameters())
    assert net.bn.running_mean.dtype == np.float64
    assert net.bn.num_batches_tracked.dtype == np.int64
    assert net(torch.zeros(2, 1, 6, 6, dtype=torch.float64)).dtype == np.float64


# ----------------------------------------------------------- initialisation
@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(400, 300), 400),
    (lambda: nn.Conv2d(16, 64, 3), 16 * 9),
    (lambda: nn.Conv2d(3, 200, (5, 3)), 3 * 15),
])
def test_default_init_is_pytorch_uniform(make, fan_in):
    """kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)) for the weight, the same bound for the bias."""
    torch.manual_seed(0)
    layer = make()
    bound = 1 / np.sqrt(fan_in)
    w = layer.weight.numpy().ravel().astype(np.float64)
    assert layer.weight.dtype == np.float32
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.95 * bound              # it uses the whole range
    assert abs(w.mean()) < 4 * bound / np.sqrt(3 * w.size)
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 0.1   # variance of U(-b, b) is b^2/3
    quarters = np.histogram(w, bins=4, range=(-bound, bound))[0] / w.size
    np.testing.assert_allclose(quarters, 0.25, atol=0.03)
    b = layer.bias.numpy()
    assert np.abs(b).max() <= bound * (1 + 1e-6) and np.unique(b).size == b.size


def test_manual_seed_makes_init_reproducible():
    torch.manual_seed(7)
    a = nn.Conv2d(2, 3, 3).weight.numpy().copy()
    torch.manual_seed(7)
    b = nn.Conv2d(2, 3, 3).weight.numpy()
    np.testing.assert_array_equal(a, b)
