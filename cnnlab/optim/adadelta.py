"""Adadelta, PyTorch's rule, written with the backend's array operations so it runs on any device."""
from __future__ import annotations

from typing import Iterable

from .optimizer import Optimizer


class Adadelta(Optimizer):
    """v = rho*v + (1-rho)*g^2; delta = sqrt(u + eps) / sqrt(v + eps) * g;
    u = rho*u + (1-rho)*delta^2; p -= lr*delta."""

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    _bounds = {**Optimizer._bounds, "rho": (0.0, 1.0)}

    def _update(self, group, p, state) -> None:
        B = p._backend
        self._count_step(state, p, ("square_avg", "acc_delta"))
        g, rho, eps = self._gradient(group, p), group["rho"], group["eps"]
        v = state["square_avg"] = state["square_avg"] * rho + g * (1 - rho) * g
        delta = B.sqrt(state["acc_delta"] + eps) / B.sqrt(v + eps) * g
        state["acc_delta"] = state["acc_delta"] * rho + delta * (1 - rho) * delta
        p._data[...] = p._data + delta * -group["lr"]
