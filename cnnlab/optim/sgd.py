"""SGD with momentum, dampening, Nesterov momentum and weight decay, PyTorch's rule,
run by the backend's `sgd_steps` kernel (one launch per device, dtype and first step on a GPU)."""
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

    def _update_many(self, group, items) -> None:
        first = {id(p) for p, state in items if "momentum_buffer" not in state}
        for p, state in items:
            if id(p) in first:
                state["momentum_buffer"] = p._backend.zeros(p.shape, p.dtype)
        for bucket in self._buckets(items, lambda p, state: id(p) in first):
            params = [p for p, _ in bucket]
            params[0]._backend.sgd_steps(
                [p._data for p in params], [p.grad._data for p in params],
                [state["momentum_buffer"] for _, state in bucket], float(group["lr"]), float(group["momentum"]),
                float(group["dampening"]), bool(group["nesterov"]), float(group["weight_decay"]),
                id(params[0]) in first, bool(group.get("maximize")))
