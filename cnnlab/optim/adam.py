"""Adam and AdamW, PyTorch's rules with bias correction and optional amsgrad, run by the
backend's `adam_step` kernel."""
from __future__ import annotations

from typing import Iterable

from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's bias correction; amsgrad optional."""

    _decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _check(self, group) -> None:
        super()._check(group)
        b1, b2 = group["betas"]
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {group['betas']}")

    def _update(self, group, p, state) -> None:
        B = p._backend
        self._count_step(state, p, ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")[:3 if group["amsgrad"] else 2])
        b1, b2 = group["betas"]
        vmax = state.get("max_exp_avg_sq")
        if vmax is None:  # the kernel's signature wants an array even when amsgrad is off
            vmax = B.zeros((1,), p.dtype)
        g = -p.grad._data if group.get("maximize") else p.grad._data
        B.adam_step(p._data, g, state["exp_avg"], state["exp_avg_sq"], vmax,
                    float(group["lr"]), float(b1), float(b2), float(group["eps"]), float(group["weight_decay"]),
                    self._decoupled, int(state["step"]), bool(group["amsgrad"]))


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr*wd before the Adam step)."""

    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
