"""RMSprop, PyTorch's rule (Hinton's lecture 6e, with PyTorch's eps outside the root,
optional centring and momentum), written with the backend's array operations so it
runs on any device, in PyTorch's order of operations."""
from __future__ import annotations

import math
from typing import Iterable

from .optimizer import Optimizer


def lerp(start, end, weight: float):
    """start + weight * (end - start) in the form PyTorch's lerp uses: exact at the nearer end."""
    if weight < 0.5:
        return start + (end - start) * weight
    return end - (end - start) * (1.0 - weight)


class RMSprop(Optimizer):
    """v = alpha*v + (1-alpha)*g^2;  centred: gbar = lerp(gbar, g, 1-alpha), v~ = v - gbar^2;
    avg = sqrt(v~) + eps;  momentum: buf = momentum*buf + g/avg, p -= lr*buf;  else p -= lr*g/avg.
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    _bounds = {**Optimizer._bounds, "alpha": (0.0, math.inf)}

    def _update(self, group, p, state) -> None:
        B = p._backend
        self._count_step(state, p, ["square_avg"] + ["momentum_buffer"] * (group["momentum"] > 0)
                         + ["grad_avg"] * bool(group["centered"]))
        g, alpha, lr = self._gradient(group, p), group["alpha"], group["lr"]
        v = state["square_avg"] = state["square_avg"] * alpha + g * (1 - alpha) * g
        if group["centered"]:
            gbar = state["grad_avg"] = lerp(state["grad_avg"], g, 1 - alpha)
            v = v - gbar * gbar
        avg = B.sqrt(v) + group["eps"]
        if group["momentum"] > 0:
            buf = state.get("momentum_buffer")
            if buf is None:   # momentum switched on after the first step
                buf = B.zeros(p.shape, p.dtype)
            buf = state["momentum_buffer"] = buf * group["momentum"] + g / avg
            p._data[...] = p._data + buf * -lr
        else:
            p._data[...] = p._data + g * -lr / avg
