"""Adam and AdamW, PyTorch's rules with bias correction and optional amsgrad, run by the
backend's `adam_steps` kernel (one launch per device, dtype and step count on a GPU)."""
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

    def _update_many(self, group, items) -> None:
        names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")[:3 if group["amsgrad"] else 2]
        for p, state in items:
            self._count_step(state, p, names)
            if group["amsgrad"] and "max_exp_avg_sq" not in state:  # amsgrad switched on part-way
                state["max_exp_avg_sq"] = p._backend.zeros(p.shape, p.dtype)
        b1, b2 = group["betas"]
        for bucket in self._buckets(items, lambda p, state: state["step"]):
            params, states = [p for p, _ in bucket], [state for _, state in bucket]
            params[0]._backend.adam_steps(
                [p._data for p in params], [p.grad._data for p in params], [st["exp_avg"] for st in states],
                [st["exp_avg_sq"] for st in states],
                [st["max_exp_avg_sq"] for st in states] if group["amsgrad"] else None,
                float(group["lr"]), float(b1), float(b2), float(group["eps"]), float(group["weight_decay"]),
                self._decoupled, int(states[0]["step"]), bool(group["amsgrad"]), bool(group.get("maximize")))


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr*wd before the Adam step)."""

    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
