"""SGD with momentum, dampening, Nesterov momentum and weight decay, PyTorch's rule,
run by the backend's `sgd_step` kernel."""
from __future__ import annotations

from typing import Iterable

from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule:
    d = g + wd*p; buf = momentum*buf + (1-dampening)*d; d = d + momentum*buf (nesterov) or buf; p -= lr*d.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _update(self, group, p, state) -> None:
        B = p._backend
        first = "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = B.zeros(p.shape, p.dtype)
        g = -p.grad._data if group.get("maximize") else p.grad._data
        B.sgd_step(p._data, g, state["momentum_buffer"], float(group["lr"]),
                   float(group["momentum"]), float(group["dampening"]), bool(group["nesterov"]),
                   float(group["weight_decay"]), first)
