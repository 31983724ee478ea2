"""Learning-rate schedules with PyTorch's names; call `step()` once per epoch
(or once per batch: `WarmupCosineLR` is meant for that, and `Run` does it with
`scheduler_interval="step"`).

>>> sched = cnnlab.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
"""
from __future__ import annotations

import math
from typing import Any


class _Scheduler:
    def __init__(self, optimizer: Any):
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_epoch = 0

    def _lr(self, base: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self._lr(base)

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments (besides the optimizer), for checkpoints."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_epoch = int(state["last_epoch"])
        self.base_lrs = list(state["base_lrs"])


class StepLR(_Scheduler):
    """lr = base * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def config(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}

    def _lr(self, base: float) -> float:
        return base * self.gamma ** (self.last_epoch // self.step_size)


class CosineAnnealingLR(_Scheduler):
    """lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0):  # noqa: N803 - PyTorch's name
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def config(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}

    def _lr(self, base: float) -> float:
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2


def warmup_cosine(step: int, total: int, base: float, warmup: int = 0, eta_min: float = 0.0) -> float:
    """The learning rate of step `step` (0-based) of `total`: a linear warm-up to `base` over
    the first `warmup` steps, then a cosine from `base` down to `eta_min` at step `total`.

    Steps past the end keep the last step's rate, so a run resumed for longer trains on
    at the end of the schedule instead of at zero.
    """
    step = min(step, total - 1)
    if step < warmup:
        return base * (step + 1) / warmup
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))) / 2


class WarmupCosineLR(_Scheduler):
    """`warmup_cosine` stepped once per batch: T_max is the run's number of steps.

    Not one of PyTorch's classes (there it takes LinearLR and CosineAnnealingLR chained
    in SequentialLR); one class keeps it a name plus numbers in a checkpoint. Unlike the
    per-epoch schedules it sets the first step's rate when it is made.
    """

    def __init__(self, optimizer: Any, T_max: int, warmup: int = 0, eta_min: float = 0.0):  # noqa: N803
        if T_max < 1 or warmup < 0:
            raise ValueError(f"WarmupCosineLR: T_max must be >= 1 and warmup >= 0, got {T_max} and {warmup}")
        super().__init__(optimizer)
        self.T_max, self.warmup, self.eta_min = int(T_max), int(warmup), eta_min
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self._lr(base)

    def config(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "warmup": self.warmup, "eta_min": self.eta_min}

    def _lr(self, base: float) -> float:
        return warmup_cosine(self.last_epoch, self.T_max, base, self.warmup, self.eta_min)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # the constructor set step 0's rate; a resumed run needs the rate of its next step
        super().load_state_dict(state)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self._lr(base)
