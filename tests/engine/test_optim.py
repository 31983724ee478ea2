"""Optimizers against their update rules written out in NumPy (PyTorch's documented algorithms)."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab as torch
import cnnlab.nn as nn
from cnnlab import optim

STEPS = 6
TARGET = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
SCALE = np.array([[1.0, 0.5, 2.0], [0.1, 3.0, 1.0]])
START = np.array([[0.3, 0.1, -0.4], [2.0, -1.0, 0.7]])


def loss_of(p):
    """A quadratic bowl whose gradient, 2*SCALE*(p - TARGET), the NumPy references compute by hand."""
    d = p - torch.tensor(TARGET, dtype=p.dtype)
    return (d * d * torch.tensor(SCALE, dtype=p.dtype)).sum()


def grad_of(p):
    return 2 * SCALE * (p - TARGET)


def run_cnnlab(make_opt, steps=STEPS, dtype=torch.float64):
    p = nn.Parameter(torch.tensor(START, dtype=dtype))
    opt = make_opt([p])
    path = []
    for _ in range(steps):
        opt.zero_grad()
        loss_of(p).backward()
        opt.step()
        path.append(p.numpy().astype(np.float64).copy())
    return np.array(path)


def sgd_reference(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, steps=STEPS):
    p, buf, path = START.copy(), None, []
    for _ in range(steps):
        g = grad_of(p) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        path.append(p.copy())
    return np.array(path)


def adam_reference(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False,
                   steps=STEPS):
    b1, b2 = betas
    p, m, v, vmax, path = START.copy(), 0.0, 0.0, 0.0, []
    for t in range(1, steps + 1):
        g = grad_of(p)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        vmax = np.maximum(vmax, v)
        v_hat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(p.copy())
    return np.array(path)


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.5),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.05, momentum=0.8, weight_decay=0.01, nesterov=True),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sgd(kw):
    got = run_cnnlab(lambda ps: optim.SGD(ps, **kw))
    np.testing.assert_allclose(got, sgd_reference(**kw), rtol=1e-12, atol=1e-12)


ADAM_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, amsgrad=True),
    dict(lr=0.1, weight_decay=0.05, amsgrad=True),
]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_adam(kw):
    got = run_cnnlab(lambda ps: optim.Adam(ps, **kw))
    np.testing.assert_allclose(got, adam_reference(**kw), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, weight_decay=0.2), dict(lr=0.05, amsgrad=True)],
                         ids=str)
def test_adamw(kw):
    got = run_cnnlab(lambda ps: optim.AdamW(ps, **kw))
    expected = adam_reference(decoupled=True, **{"weight_decay": 1e-2, **kw})   # AdamW's default decay is 0.01
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_float32_parameters_follow_the_same_rules():
    got = run_cnnlab(lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9), dtype=torch.float32)
    np.testing.assert_allclose(got, sgd_reference(lr=0.05, momentum=0.9), rtol=1e-5, atol=1e-6)
    got = run_cnnlab(lambda ps: optim.Adam(ps, lr=0.1), dtype=torch.float32)
    np.testing.assert_allclose(got, adam_reference(lr=0.1), rtol=1e-5, atol=1e-5)


def test_param_groups_with_their_own_learning_rates():
    a = nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    b = nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    (a.sum() + b.sum()).backward()   # every gradient is 1
    opt.step()
    np.testing.assert_allclose(a.numpy(), [0.9, 1.9])
    np.testing.assert_allclose(b.numpy(), [2.5])


def test_parameters_without_a_gradient_are_left_alone():
    a = nn.Parameter(torch.tensor([1.0]))
    b = nn.Parameter(torch.tensor([2.0]))
    opt = optim.Adam([a, b], lr=0.1)
    (a * 3).sum().backward()
    opt.step()
    assert b.numpy().tolist() == [2.0] and a.numpy()[0] != 1.0


def test_zero_grad():
    p = nn.Parameter(torch.ones(2))
    opt = optim.SGD([p], lr=0.1)
    p.sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad.numpy().tolist() == [0, 0]
    opt.zero_grad()
    assert p.grad is None


def test_bad_hyper_parameters():
    p = [nn.Parameter(torch.ones(2))]
    with pytest.raises(ValueError):
        optim.SGD(p, lr=-0.1)
    with pytest.raises(ValueError):
        optim.SGD(p, lr=0.1, nesterov=True)            # nesterov needs momentum
    with pytest.raises(ValueError):
        optim.Adam(p, betas=(1.0, 0.999))
    with pytest.raises(ValueError):
        optim.SGD([], lr=0.1)


def _resume(make_opt, steps_before=3, steps_after=3):
    """Train steps_before, copy the model and the optimizer's state_dict into fresh ones, then both go on."""
    p = nn.Parameter(torch.tensor(START))
    opt = make_opt([p])
    for _ in range(steps_before):
        opt.zero_grad()
        loss_of(p).backward()
        opt.step()
    q = nn.Parameter(torch.tensor(p.numpy().copy()))
    opt2 = make_opt([q])
    opt2.load_state_dict(opt.state_dict())
    for _ in range(steps_after):
        for param, o in ((p, opt), (q, opt2)):
            o.zero_grad()
            loss_of(param).backward()
            o.step()
    return p.numpy(), q.numpy()


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=0.1, amsgrad=True),
], ids=["sgd-momentum", "adam-amsgrad", "adamw-amsgrad"])
def test_state_dict_round_trip_continues_identically(make_opt):
    a, b = _resume(make_opt)
    np.testing.assert_array_equal(a, b)


def test_adam_state_dict_round_trip_without_amsgrad():
    a, b = _resume(lambda ps: optim.Adam(ps, lr=0.1))
    np.testing.assert_array_equal(a, b)


def test_state_dict_restores_the_hyper_parameters():
    p = nn.Parameter(torch.ones(2))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt2 = optim.SGD([nn.Parameter(torch.ones(2))], lr=0.5)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["momentum"] == 0.9


def test_load_state_dict_of_another_model_is_refused():
    opt = optim.SGD([nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(3))], lr=0.1)
    other = optim.SGD([nn.Parameter(torch.ones(2))], lr=0.1)
    with pytest.raises(ValueError):
        other.load_state_dict(opt.state_dict())
