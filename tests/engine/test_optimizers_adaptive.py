"""RMSprop, Adagrad and Adadelta against their documented update rules (NumPy, float64,
and a first step worked by hand), against PyTorch where it is installed, and the
Optimizer API that every optimizer shares (groups, add_param_group, maximize, state)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from test_optim import START, STEPS, _resume, grad_of, loss_of, run_cnnlab

import cnnlab
import cnnlab.nn as nn
from cnnlab import optim

try:
    import torch as pt
except ImportError:   # CI has no torch: the hand-worked references still run
    pt = None
needs_torch = pytest.mark.skipif(pt is None, reason="PyTorch is not installed")


def rmsprop_reference(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                      maximize=False, steps=STEPS):
    p, v, gbar, buf, path = START.copy(), 0.0, 0.0, 0.0, []
    for _ in range(steps):
        g = -grad_of(p) if maximize else grad_of(p)
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        denom = v
        if centered:
            gbar = alpha * gbar + (1 - alpha) * g
            denom = v - gbar * gbar
        avg = np.sqrt(denom) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
        path.append(p.copy())
    return np.array(path)


def adagrad_reference(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                      steps=STEPS):
    p, s, path = START.copy(), initial_accumulator_value, []
    for t in range(1, steps + 1):
        g = grad_of(p) + weight_decay * p
        s = s + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
        path.append(p.copy())
    return np.array(path)


def adadelta_reference(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, steps=STEPS):
    p, v, u, path = START.copy(), 0.0, 0.0, []
    for _ in range(steps):
        g = grad_of(p) + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta
        path.append(p.copy())
    return np.array(path)


CASES = [
    ("RMSprop", rmsprop_reference, dict()),
    ("RMSprop", rmsprop_reference, dict(lr=0.05, alpha=0.9, eps=1e-6)),
    ("RMSprop", rmsprop_reference, dict(lr=0.01, momentum=0.9)),
    ("RMSprop", rmsprop_reference, dict(lr=0.01, centered=True)),
    ("RMSprop", rmsprop_reference, dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
    ("RMSprop", rmsprop_reference, dict(lr=0.01, maximize=True)),
    ("Adagrad", adagrad_reference, dict()),
    ("Adagrad", adagrad_reference, dict(lr=0.5, lr_decay=0.1)),
    ("Adagrad", adagrad_reference, dict(lr=0.1, weight_decay=0.2, initial_accumulator_value=0.5)),
    ("Adadelta", adadelta_reference, dict()),
    ("Adadelta", adadelta_reference, dict(lr=0.5, rho=0.5, eps=1e-4)),
    ("Adadelta", adadelta_reference, dict(weight_decay=0.1)),
]
IDS = [f"{name}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for name, _, kw in CASES]


@pytest.mark.parametrize("name,reference,kw", CASES, ids=IDS)
def test_against_the_documented_rule(name, reference, kw):
    got = run_cnnlab(lambda ps: getattr(optim, name)(ps, **kw))
    np.testing.assert_allclose(got, reference(**kw), rtol=1e-12, atol=1e-13)


def test_first_steps_worked_by_hand():
    """f(x) = x^2 from x = 1 (gradient 2x), each optimizer with its defaults or the lr given."""
    def walk(make, steps):
        x = nn.Parameter(cnnlab.tensor([1.0], dtype=cnnlab.float64))
        opt = make([x])
        for _ in range(steps):
            opt.zero_grad()
            (x * x).sum().backward()
            opt.step()
        return float(x.numpy()[0])

    # RMSprop: v = 0.01 * 2^2 = 0.04, x = 1 - 0.01 * 2 / (0.2 + 1e-8)
    assert walk(lambda ps: optim.RMSprop(ps), 1) == pytest.approx(1 - 0.02 / (0.2 + 1e-8), abs=1e-15)
    # Adagrad, lr 0.1: s = 4, x = 1 - 0.1 * 2 / 2 = 0.9; then g = 1.8, s = 7.24
    assert walk(lambda ps: optim.Adagrad(ps, lr=0.1), 1) == pytest.approx(0.9, abs=1e-10)
    assert walk(lambda ps: optim.Adagrad(ps, lr=0.1), 2) == pytest.approx(0.9 - 0.18 / math.sqrt(7.24), abs=1e-10)
    # Adadelta: v = 0.1 * 4 = 0.4, delta = sqrt(1e-6) / sqrt(0.4 + 1e-6) * 2, x = 1 - delta
    assert walk(lambda ps: optim.Adadelta(ps), 1) == pytest.approx(1 - 2e-3 / math.sqrt(0.400001), abs=1e-15)


def test_pytorch_defaults():
    p = [nn.Parameter(cnnlab.ones(2))]
    assert optim.RMSprop(p).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                                             centered=False, maximize=False)
    assert optim.Adagrad(p).defaults == dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                                             eps=1e-10, maximize=False)
    assert optim.Adadelta(p).defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)


def _torch_path(name, kw, dtype):
    p = pt.tensor(START, dtype=dtype, requires_grad=True)
    opt = getattr(pt.optim, name)([p], **kw)
    target = pt.tensor(np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]]), dtype=dtype)
    scale = pt.tensor(np.array([[1.0, 0.5, 2.0], [0.1, 3.0, 1.0]]), dtype=dtype)
    path = []
    for _ in range(STEPS):
        opt.zero_grad()
        d = p - target
        (d * d * scale).sum().backward()
        opt.step()
        path.append(p.detach().numpy().astype(np.float64).copy())
    return np.array(path)


ALL = [("SGD", dict(lr=0.05, momentum=0.9, maximize=True)), ("Adam", dict(lr=0.1, maximize=True)),
       ("AdamW", dict(lr=0.1, weight_decay=0.1, maximize=True))] + [(name, kw) for name, _, kw in CASES]


@needs_torch
@pytest.mark.parametrize("name,kw", ALL, ids=[f"{n}-{kw}" for n, kw in ALL])
def test_against_pytorch(name, kw):
    got = run_cnnlab(lambda ps: getattr(optim, name)(ps, **kw))
    np.testing.assert_allclose(got, _torch_path(name, kw, pt.float64), rtol=1e-12, atol=1e-13)
    got32 = run_cnnlab(lambda ps: getattr(optim, name)(ps, **kw), dtype=cnnlab.float32)
    np.testing.assert_allclose(got32, _torch_path(name, kw, pt.float32), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
    lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    lambda ps: optim.Adadelta(ps),
], ids=["rmsprop", "adagrad", "adadelta"])
def test_state_dict_round_trip_continues_identically(make_opt):
    a, b = _resume(make_opt)
    np.testing.assert_array_equal(a, b)


def test_maximize_climbs():
    p = nn.Parameter(cnnlab.tensor([1.0], dtype=cnnlab.float64))
    opt = optim.SGD([p], lr=0.1, maximize=True)
    (p * p).sum().backward()
    opt.step()
    assert p.numpy().tolist() == [1.2]          # 1 + 0.1 * 2


def test_add_param_group_and_per_group_options():
    a = nn.Parameter(cnnlab.tensor([1.0], dtype=cnnlab.float64))
    b = nn.Parameter(cnnlab.tensor([1.0], dtype=cnnlab.float64))
    opt = optim.RMSprop([a], lr=0.01)
    opt.add_param_group({"params": b, "lr": 0.1, "centered": True})
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.1]
    assert opt.param_groups[1]["alpha"] == 0.99 and opt.param_groups[1]["centered"] is True
    (a.sum() + b.sum()).backward()              # both gradients are 1
    opt.step()
    # a: v = 0.01, x = 1 - 0.01 / (0.1 + eps); b centred: gbar = 0.01, v - gbar^2 = 0.0099
    assert a.numpy()[0] == pytest.approx(1 - 0.01 / (0.1 + 1e-8), abs=1e-15)
    assert b.numpy()[0] == pytest.approx(1 - 0.1 / (math.sqrt(0.0099) + 1e-8), abs=1e-14)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_what_pytorch_accepts_as_params():
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.named_parameters(), lr=0.1)      # (name, tensor) pairs
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    model.weight.requires_grad_(False)                     # frozen layers may stay in the list
    opt = optim.Adam(model.parameters(), lr=0.1)
    model(cnnlab.ones(1, 2)).sum().backward()
    before = model.weight.numpy().copy()
    opt.step()
    assert np.array_equal(model.weight.numpy(), before) and model.weight.grad is None
    assert model.weight not in opt.state and opt.state[model.bias]["step"] == 1   # state[p], as in PyTorch
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(model.bias, lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([model.bias * 2], lr=0.1)


def test_repr_lists_the_groups():
    text = repr(optim.Adagrad([nn.Parameter(cnnlab.ones(1))], lr=0.5))
    assert text.startswith("Adagrad (\nParameter Group 0\n") and "    lr: 0.5" in text


@pytest.mark.parametrize("bad", [dict(lr=-1.0), dict(eps=-1.0), dict(alpha=-0.1), dict(momentum=-0.5)], ids=str)
def test_bad_rmsprop_options(bad):
    with pytest.raises(ValueError):
        optim.RMSprop([nn.Parameter(cnnlab.ones(1))], **bad)


def test_loss_of_is_the_shared_quadratic():
    # the references above assume the gradient test_optim's loss has
    p = nn.Parameter(cnnlab.tensor(START))
    loss_of(p).backward()
    np.testing.assert_allclose(p.grad.numpy(), grad_of(START))
