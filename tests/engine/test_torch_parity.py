"""The same weights and inputs through PyTorch and cnnlab give the same numbers (float32 rounding).

Runs only where PyTorch is installed; these add to the NumPy and finite-difference tests, never replace them.
"""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as cnn
import cnnlab.nn.functional as cF
import cnnlab.optim as coptim
from cnnlab import models

torch = pytest.importorskip("torch")
import torch.nn as tnn  # noqa: E402
import torch.nn.functional as tF  # noqa: E402

torch.set_num_threads(1)   # the machine's cores are shared; cnnlab keeps its own threads
RTOL, ATOL = 1e-4, 1e-5


def define(torch, nn, F):
    """A network for the layer options the zoo does not use, written once against whichever
    library is passed in (the zoo's own models are written once in cnnlab/zoo_defs.py)."""

    class BNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, (3, 2), stride=(1, 2), padding=1, dilation=(2, 1)), nn.BatchNorm2d(8),
                nn.LeakyReLU(0.1), nn.AvgPool2d(2, ceil_mode=True), nn.Conv2d(8, 6, 3, padding="same"),
                nn.Tanh(), nn.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True))
            self.drop = nn.Dropout(0.5)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(6 * 3 * 2, 5), nn.Sigmoid(), nn.Linear(5, 4))

        def forward(self, x):
            return self.head(self.drop(self.features(x)))

    return BNNet


def models_of(lib, nn, F):
    """The seed models (the zoo's simplecnn and convnet at their defaults) and BNNet, built with `lib`."""
    zoo = models.define(lib)
    return {"SimpleCNN": (zoo["simplecnn"], (6, 3, 32, 32), 10), "ConvNet": (zoo["convnet"], (8, 1, 28, 28), 10),
            "BNNet": (define(lib, nn, F), (5, 3, 11, 9), 4)}


TORCH_MODELS = models_of(torch, tnn, tF)
CNNLAB_MODELS = models_of(cnnlab, cnn, cF)


def pair_of(name, seed=0):
    torch.manual_seed(seed)
    t_cls, shape, classes = TORCH_MODELS[name]
    t_model = t_cls()
    c_model = CNNLAB_MODELS[name][0]()
    c_model.load_state_dict({k: cnnlab.from_numpy(v.detach().numpy().copy()) for k, v in t_model.state_dict().items()})
    return t_model, c_model, shape, classes


def batch(shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, classes, shape[0])


def forward_backward(t_model, c_model, x, y):
    t_out = t_model(torch.from_numpy(x))
    t_loss = tF.cross_entropy(t_out, torch.from_numpy(y))
    t_loss.backward()
    c_out = c_model(cnnlab.from_numpy(x))
    c_loss = cF.cross_entropy(c_out, cnnlab.from_numpy(y))
    c_loss.backward()
    np.testing.assert_allclose(c_out.numpy(), t_out.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(c_loss.item(), t_loss.item(), rtol=RTOL, atol=ATOL)
    c_params = dict(c_model.named_parameters())
    t_params = dict(t_model.named_parameters())
    assert list(c_params) == list(t_params)
    for name, tp in t_params.items():
        np.testing.assert_allclose(c_params[name].grad.numpy(), tp.grad.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"gradient of {name}")


@pytest.mark.parametrize("name", ["SimpleCNN", "ConvNet", "BNNet"])
def test_same_outputs_loss_and_gradients(name):
    t_model, c_model, shape, classes = pair_of(name)
    if name == "BNNet":   # batch norm on batch statistics, dropout off
        t_model.train()
        t_model.drop.eval()
        c_model.train()
        c_model.drop.eval()
    forward_backward(t_model, c_model, *batch(shape, classes))
    for k, tv in t_model.state_dict().items():   # running statistics moved the same way
        np.testing.assert_allclose(np.asarray(c_model.state_dict()[k].numpy(), np.float64).reshape(tv.shape),
                                   tv.numpy(), rtol=RTOL, atol=ATOL, err_msg=k)


def test_bn_dropout_net_in_eval_mode():
    t_model, c_model, shape, classes = pair_of("BNNet", seed=1)
    x, y = batch(shape, classes, seed=1)
    for m in (t_model, c_model):   # give the running statistics something to hold
        m.train()
        for _ in range(3):
            m(m_input(m, x))
        m.eval()
    forward_backward(t_model, c_model, x, y)


def m_input(model, x):
    return torch.from_numpy(x) if isinstance(model, tnn.Module) else cnnlab.from_numpy(x)


@pytest.mark.parametrize("name", ["SimpleCNN", "ConvNet"])
def test_repr_matches(name):
    t_model, c_model, _, _ = pair_of(name)
    assert repr(c_model) == repr(t_model)


def test_load_a_pytorch_state_dict_given_as_numpy_arrays():
    _, c_model, _, _ = pair_of("BNNet")
    t_model = TORCH_MODELS["BNNet"][0]()
    c_model.load_state_dict({k: v.numpy() for k, v in t_model.state_dict().items()})


ZOO_SMALL = {"modern": {"width": 4}, "cifarcnn": {"input_size": 16}, "simplecnn": {"input_size": 16},
             "vgg": {"width": 4, "input_size": 8}, "cifarresnet": {"width": 4, "input_size": 12},
             "cifarfast": {"width": 2, "input_size": 8}}
WITH_BATCH_NORM = {"modern", "vgg", "cifarresnet", "cifarfast"}


@pytest.mark.parametrize("normalized", [False, True], ids=["plain", "normalized"])
@pytest.mark.parametrize("name", [n for n in models.names() if n != "sequential"])
def test_every_zoo_model_and_its_pytorch_twin_agree(name, normalized):
    kwargs = ZOO_SMALL.get(name, {})
    c_model = models.create(name, **kwargs)
    c = c_model.config["in_channels"]
    if normalized:
        kwargs = {**kwargs, "normalize": {"mean": [0.4] * c, "std": [0.2 + 0.1 * i for i in range(c)]}}
        c_model = models.create(name, **kwargs)
    torch.manual_seed(0)
    t_model = models.torch_twin(name, **kwargs)
    assert list(c_model.state_dict()) == list(t_model.state_dict())
    if name not in WITH_BATCH_NORM:   # PyTorch 2.14's BatchNorm2d prints a `bias=` that cnnlab's does not
        assert repr(c_model) == repr(t_model)
    c_model.load_state_dict({k: v.detach().numpy().copy() for k, v in t_model.state_dict().items()})
    for m in (t_model, c_model):   # dropout off; batch norm on its (initial) running statistics
        m.eval()
    size = c_model.config["input_size"]
    forward_backward(t_model, c_model, *batch((4, c, size, size), c_model.config["num_classes"]))


CONV_SETTINGS = [
    dict(stride=1, padding=0, dilation=1),
    dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
    dict(stride=3, padding=2, dilation=2),
    dict(padding="same", dilation=(1, 2)),
    dict(padding="valid"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kw", CONV_SETTINGS, ids=str)
@pytest.mark.parametrize("kernel", [(3, 3), (2, 4)])
def test_conv2d_functional(kw, kernel):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    w = rng.standard_normal((4, 3) + kernel).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    cx, cw, cb = (cnnlab.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = tF.conv2d(tx, tw, tb, **kw)
    cy = cF.conv2d(cx, cw, cb, **kw)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=RTOL, atol=ATOL)
    g = rng.standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    cy.backward(cnnlab.from_numpy(g))
    for c, t in ((cx, tx), (cw, tw), (cb, tb)):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=RTOL, atol=1e-4)


POOLS = [
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1), dilation=(2, 1), ceil_mode=True)),
    ("max", dict(kernel_size=2, stride=3, padding=1, ceil_mode=True)),
    ("avg", dict(kernel_size=3, stride=2, padding=1)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False, ceil_mode=True)),
    ("avg", dict(kernel_size=(2, 3), stride=(3, 2), padding=(1, 0), ceil_mode=True)),
    ("avg", dict(kernel_size=2, stride=1, padding=1, divisor_override=3)),
]


@pytest.mark.parametrize("kind, kw", POOLS, ids=str)
def test_pool_functional(kind, kw):
    x = np.random.default_rng(3).permutation(2 * 3 * 9 * 8).reshape(2, 3, 9, 8).astype(np.float32) / 50
    tx = torch.tensor(x, requires_grad=True)
    cx = cnnlab.tensor(x, requires_grad=True)
    ty = getattr(tF, f"{kind}_pool2d")(tx, **kw)
    cy = getattr(cF, f"{kind}_pool2d")(cx, **kw)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=RTOL, atol=ATOL)
    g = np.random.default_rng(4).standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    cy.backward(cnnlab.from_numpy(g))
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_variants(label_smoothing):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 5)).astype(np.float32)
    y = rng.integers(0, 5, 7)
    for kw in (dict(), dict(reduction="sum"), dict(reduction="none")):
        t = tF.cross_entropy(torch.from_numpy(x), torch.from_numpy(y), label_smoothing=label_smoothing, **kw)
        c = cF.cross_entropy(cnnlab.from_numpy(x), cnnlab.from_numpy(y), label_smoothing=label_smoothing, **kw)
        np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("make", [
    (lambda lib, ps: lib.SGD(ps, lr=0.01, momentum=0.9)),
    (lambda lib, ps: lib.SGD(ps, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (lambda lib, ps: lib.Adam(ps, lr=1e-3)),
    (lambda lib, ps: lib.AdamW(ps, lr=1e-3, amsgrad=True)),
], ids=["sgd-momentum", "sgd-nesterov-wd", "adam", "adamw-amsgrad"])
def test_optimizer_trajectories(make):
    t_model, c_model, shape, classes = pair_of("ConvNet", seed=3)
    t_opt = make(torch.optim, t_model.parameters())
    c_opt = make(coptim, c_model.parameters())
    for step in range(5):
        x, y = batch(shape, classes, seed=10 + step)
        for model, opt, lib, F in ((t_model, t_opt, torch, tF), (c_model, c_opt, cnnlab, cF)):
            opt.zero_grad()
            F.cross_entropy(model(lib.from_numpy(x)), lib.from_numpy(y)).backward()
            opt.step()
        c_state = c_model.state_dict()
        for k, tv in t_model.state_dict().items():
            np.testing.assert_allclose(c_state[k].numpy(), tv.numpy(), rtol=1e-4, atol=2e-5,
                                       err_msg=f"{k} after step {step + 1}")


@pytest.mark.parametrize("name, kw, atol", [
    ("Adam", dict(lr=1e-3), 1e-7),
    ("Adam", dict(lr=3e-3, weight_decay=0.01, amsgrad=True), 1e-7),
    ("AdamW", dict(lr=1e-3, weight_decay=0.05), 1e-7),
    ("Adam", dict(lr=1e-2, betas=(0.3, 0.9)), 1e-7),     # the other branch of PyTorch's lerp
    # PyTorch's add(alpha=...) may fuse the multiply-add, cnnlab's does not: a few ulp apart
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3), 5e-7),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3), 5e-7),
], ids=["adam", "adam-l2-amsgrad", "adamw", "adam-low-beta1", "sgd-nesterov-wd", "sgd-dampening"])
def test_optimizer_float32_arithmetic_follows_pytorch(name, kw, atol):
    # the very same gradients for 20 steps: only the update's own float32 arithmetic differs
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(4096).astype(np.float32)
    cp, tp = cnn.Parameter(cnnlab.tensor(p0.copy())), tnn.Parameter(torch.tensor(p0.copy()))
    c_opt, t_opt = getattr(coptim, name)([cp], **kw), getattr(torch.optim, name)([tp], **kw)
    for _ in range(20):
        g = rng.standard_normal(4096).astype(np.float32)
        cp.grad, tp.grad = cnnlab.tensor(g.copy()), torch.tensor(g.copy())
        c_opt.step()
        t_opt.step()
    assert cp.detach().numpy().dtype == np.float32
    np.testing.assert_allclose(cp.detach().numpy(), tp.detach().numpy(), rtol=1e-6, atol=atol)
