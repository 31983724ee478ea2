"""PyTorch's spellings that tutorials use: size= and axis=/keepdims= keywords, print options,
inference_mode, cnnlab.accelerator, lazy layers, and shape errors that are RuntimeErrors.
Checked against NumPy and hand-worked values, and against torch where it is installed."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
from cnnlab.errors import LayerError, MismatchError

A = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 10


# -------------------------------------------------------------------- keywords
@pytest.mark.parametrize("make", ["zeros", "ones", "rand", "randn", "empty"])
def test_factories_take_the_shape_three_ways(make):
    f = getattr(cnnlab, make)
    for t in (f(2, 3), f((2, 3)), f([2, 3]), f(size=(2, 3)), f(size=[2, 3], dtype=cnnlab.float64)):
        assert t.shape == (2, 3)
    assert f(size=(2,), requires_grad=True).requires_grad
    assert f(size=(1, 2), dtype=cnnlab.float64).dtype == np.float64
    with pytest.raises(TypeError, match="twice"):
        f(2, size=(2,))


def test_full_takes_keywords():
    t = cnnlab.full(size=(2, 2), fill_value=1.5, dtype=cnnlab.float64)
    np.testing.assert_array_equal(t.numpy(), [[1.5, 1.5], [1.5, 1.5]])
    assert cnnlab.full(3, 2.0).shape == (3,)
    cnnlab.manual_seed(0)
    a = cnnlab.rand(size=(4,))
    cnnlab.manual_seed(0)
    np.testing.assert_array_equal(cnnlab.rand(4).numpy(), a.numpy())   # the same draws however spelled


@pytest.mark.parametrize("name, numpy_name", [
    ("sum", "sum"), ("mean", "mean"), ("prod", "prod"), ("all", "all"), ("any", "any"), ("argmax", "argmax"),
])
def test_axis_and_keepdims_are_aliases_of_dim_and_keepdim(name, numpy_name):
    t = cnnlab.tensor(A)
    for axis in (0, 1, -1):
        keep = name not in ("argmax",)
        got = getattr(t, name)(axis=axis, keepdims=keep)
        same = getattr(t, name)(dim=axis, keepdim=keep)
        want = getattr(np, numpy_name)(A, axis=axis, keepdims=keep) if keep else getattr(np, numpy_name)(A, axis=axis)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
        np.testing.assert_array_equal(got.numpy(), same.numpy())
        np.testing.assert_array_equal(getattr(cnnlab, name)(t, axis=axis, keepdims=keep).numpy(), got.numpy())


def test_max_min_var_std_take_the_aliases():
    t = cnnlab.tensor(A)
    values, indices = t.max(axis=2, keepdims=True)
    np.testing.assert_array_equal(values.numpy(), A.max(axis=2, keepdims=True))
    np.testing.assert_array_equal(indices.numpy(), A.argmax(axis=2)[..., None])
    np.testing.assert_array_equal(cnnlab.min(t, axis=0).values.numpy(), A.min(axis=0))
    np.testing.assert_allclose(t.var(axis=1).numpy(), A.var(axis=1, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(t.std(axis=(0, 2), keepdims=True, correction=0).numpy(),
                               A.std(axis=(0, 2), keepdims=True), rtol=1e-5)


def test_prod_is_differentiated_since_issue_13():
    # it used to refuse; PyTorch differentiates it, so now cnnlab does too (product of the others)
    x = cnnlab.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.prod()
    y.backward()
    assert y.item() == 6.0
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 3.0, 2.0])
    with cnnlab.no_grad():
        assert x.prod().item() == 6.0


# ---------------------------------------------------------------- print options
def test_set_printoptions_changes_the_repr_and_profile_resets_it():
    t = cnnlab.tensor([1.23456, 2.0, 1e-3])
    before = repr(t)
    try:
        cnnlab.set_printoptions(precision=2)
        assert repr(t) == "tensor([1.23e+00, 2.00e+00, 1.00e-03])"   # automatic: a wide range goes scientific
        cnnlab.set_printoptions(sci_mode=False, precision=3)
        assert repr(t) == "tensor([1.235, 2.   , 0.001])"
        cnnlab.set_printoptions(sci_mode=True, precision=1)
        assert repr(t) == "tensor([1.2e+00, 2.0e+00, 1.0e-03])"
        cnnlab.set_printoptions(profile="default", threshold=5, edgeitems=2)
        assert repr(cnnlab.arange(10)) == "tensor([0, 1, ..., 8, 9])"
        cnnlab.set_printoptions(linewidth=20, threshold=1000)
        assert len(repr(cnnlab.arange(10)).splitlines()) > 1
    finally:
        cnnlab.set_printoptions(profile="default")
    assert repr(t) == before


# --------------------------------------------------------- grad modes, devices
def test_inference_mode_is_a_context_manager_and_a_decorator():
    x = cnnlab.ones(2, requires_grad=True)
    with cnnlab.inference_mode():
        assert not (x * 2).requires_grad and cnnlab.is_inference_mode_enabled()
    assert (x * 2).requires_grad and not cnnlab.is_inference_mode_enabled()
    with cnnlab.inference_mode(False):
        assert (x * 2).requires_grad

    @cnnlab.inference_mode()
    def predict(v):
        return (v * 2).requires_grad

    @cnnlab.no_grad
    def bare(v):
        return (v * 2).requires_grad

    assert predict(x) is False and bare(x) is False and cnnlab.is_grad_enabled()


def test_accelerator_reports_the_cuda_device_or_none():
    acc = cnnlab.accelerator
    if cnnlab.cuda.is_available():
        assert acc.is_available() and acc.current_accelerator() == "cuda" and acc.device_count() >= 1
    else:
        assert not acc.is_available() and acc.current_accelerator() is None
        assert acc.device_count() == 0 and acc.current_device_index() == -1
    device = acc.current_accelerator().type if acc.is_available() else "cpu"   # the tutorial idiom
    assert cnnlab.zeros(1, device=device).device.type == device


# --------------------------------------------------------------------- errors
def test_shape_errors_are_runtime_errors_that_name_the_layer():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(10, 2))
    with pytest.raises(RuntimeError) as err:
        model(cnnlab.zeros(1, 1, 5, 5))
    assert isinstance(err.value, ValueError) and isinstance(err.value, LayerError)
    assert str(err.value).startswith("0 (Conv2d): expected input with 3 channels")
    with pytest.raises(RuntimeError, match="gradient has shape"):
        (cnnlab.ones(2, requires_grad=True) * 2).backward(cnnlab.ones(3))
    with pytest.raises(RuntimeError):
        nn.Linear(2, 2).load_state_dict(nn.Linear(3, 2).state_dict())
    assert issubclass(MismatchError, ValueError)


# ---------------------------------------------------------------------- lazy
def _lenet(nn_):
    return nn_.Sequential(nn_.LazyConv2d(6, kernel_size=5, padding=2), nn_.Sigmoid(), nn_.AvgPool2d(2, 2),
                          nn_.LazyConv2d(16, kernel_size=5), nn_.LazyBatchNorm2d(), nn_.ReLU(),
                          nn_.Flatten(), nn_.LazyLinear(10))


def test_lazy_layers_become_ordinary_layers_at_the_first_call():
    net = _lenet(nn)
    early = list(net.parameters())               # an optimizer made before the dry run
    assert all(p.numel() == 0 for p in early)
    shapes = []
    x = cnnlab.zeros(2, 1, 28, 28)
    for layer in net:
        x = layer(x)
        shapes.append((type(layer).__name__, tuple(x.shape)))
    assert shapes[0] == ("Conv2d", (2, 6, 28, 28)) and shapes[3] == ("Conv2d", (2, 16, 10, 10))
    assert shapes[4][0] == "BatchNorm2d" and shapes[-1] == ("Linear", (2, 10))
    assert net[7].in_features == 1600 and net[3].in_channels == 6 and net[4].num_features == 16
    assert [p is q for p, q in zip(early, net.parameters())] == [True] * len(early)
    assert tuple(early[0].shape) == (6, 1, 5, 5) and repr(early[0]).startswith("Parameter containing")
    # PyTorch's default init with the inferred fan-in: U(+-1/sqrt(6*5*5)) for the second conv
    bound = 1 / np.sqrt(6 * 25)
    w = net[3].weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound

    def init(m):                                 # d2l's init after the dry run
        if type(m) in (nn.Linear, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)

    net.apply(init)
    fan_in, fan_out = 1600, 10
    assert np.abs(net[7].weight.numpy()).max() <= np.sqrt(6 / (fan_in + fan_out))
    loss = net(cnnlab.randn(2, 1, 28, 28)).sum()
    loss.backward()
    assert all(p.grad is not None for p in early)


def test_a_lazy_layer_needs_an_input_it_can_read_the_size_from():
    with pytest.raises(RuntimeError, match="cannot infer in_channels"):
        nn.LazyConv2d(4, 3)(cnnlab.zeros(5))


def test_lazy_net_trains_like_pytorchs():
    torch = pytest.importorskip("torch")
    ours, theirs = _lenet(nn), _lenet(torch.nn)
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    y = np.array([1, 0, 3, 9])
    ours(cnnlab.tensor(x))
    theirs(torch.tensor(x))
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    losses = []
    for net, lib in ((ours, cnnlab), (theirs, torch)):
        loss = lib.nn.functional.cross_entropy(net(lib.tensor(x)), lib.tensor(y))
        loss.backward()
        losses.append(loss.detach().numpy().item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-3, atol=1e-5, err_msg=name)
