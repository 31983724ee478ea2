"""Adagrad, PyTorch's rule, written with the backend's array operations so it runs on any device."""
from __future__ import annotations

import math
from typing import Iterable

from .optimizer import Optimizer


class Adagrad(Optimizer):
    """t += 1; clr = lr / (1 + (t-1)*lr_decay); s += g^2; p -= clr * g / (sqrt(s) + eps),
    with s starting at initial_accumulator_value."""

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize))

    _bounds = {**Optimizer._bounds, "lr_decay": (0.0, math.inf), "initial_accumulator_value": (0.0, math.inf)}

    def _update(self, group, p, state) -> None:
        B = p._backend
        step = self._count_step(state, p, ["sum"], group["initial_accumulator_value"])
        g = self._gradient(group, p)
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        s = state["sum"] = state["sum"] + g * g
        p._data[...] = p._data + g * -clr / (B.sqrt(s) + group["eps"])
