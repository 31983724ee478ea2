"""The optimizers written with the backend's array operations (RMSprop, Adagrad,
Adadelta) and the maximize option of the kernel-backed ones take the same steps on
'cuda' as on the CPU."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
from cnnlab import optim

MAKERS = {
    "rmsprop-centered-momentum": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True,
                                                          weight_decay=0.1),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01, maximize=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    "adadelta": lambda ps: optim.Adadelta(ps, weight_decay=0.01),
    "sgd-maximize": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, maximize=True),
    "adam-maximize": lambda ps: optim.Adam(ps, lr=0.1, maximize=True),
}


@pytest.mark.parametrize("name", MAKERS)
def test_optimizer_step_on_cuda_matches_cpu(name):
    start = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)
    paths = []
    for device in ("cpu", "cuda"):
        p = nn.Parameter(cnnlab.tensor(start).to(device))
        opt = MAKERS[name]([p])
        path = []
        for _ in range(3):
            opt.zero_grad()
            (p * p * p).sum().backward()
            opt.step()
            path.append(p.detach().cpu().numpy().copy())
        assert p.device.type == device and all(
            not isinstance(v, np.ndarray) for v in opt.state[p].values()) == (device == "cuda")
        paths.append(np.array(path))
    np.testing.assert_allclose(paths[1], paths[0], rtol=1e-5, atol=1e-6)
