"""Learning-rate schedules with PyTorch's names and semantics; call `step()` once per
epoch (or once per batch: `OneCycleLR` and `WarmupCosineLR` are meant for that, and
`Run` does it with `scheduler_interval="step"`). `ReduceLROnPlateau.step(metric)`
takes the quantity it watches.

As in PyTorch, making a scheduler records each group's starting rate as
`group["initial_lr"]` and takes step 0 (`last_epoch == 0`); the per-epoch schedules
use PyTorch's chainable forms (each step scales the group's current rate), so two
schedulers on one optimizer compose as they do there.

>>> sched = cnnlab.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)

Checkpoints store a scheduler as its class name, `config()` (the constructor's
arguments) and `state_dict()`. One difference from PyTorch, for resuming: a
`load_state_dict` also puts the saved rates back into the optimizer, so the order of
loading the optimizer and making the scheduler does not matter.
"""
from __future__ import annotations

import math
import types
import warnings
from bisect import bisect_right
from collections import Counter
from typing import Any, Callable, Iterable, Sequence

def _groups(optimizer: Any) -> list[dict[str, Any]]:
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    return optimizer.param_groups


class LRScheduler:
    """Base class: subclasses give `get_lr()` (the rates for `self.last_epoch`, usually
    from the groups' current rates) and, where one exists, `_get_closed_form_lr()`."""

    def __init__(self, optimizer: Any, last_epoch: int = -1):
        self.optimizer = optimizer
        groups = _groups(optimizer)
        if last_epoch == -1:
            for g in groups:
                g.setdefault("initial_lr", g["lr"])
        else:
            for i, g in enumerate(groups):
                if "initial_lr" not in g:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming a "
                                   f"scheduler with last_epoch={last_epoch}: load the optimizer's state first")
        self.base_lrs = [g["initial_lr"] for g in groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> None:
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            warnings.warn("passing an epoch to scheduler.step() is deprecated (as in PyTorch); "
                          "call step() without arguments", UserWarning, stacklevel=2)
            self.last_epoch = epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        self._set_lrs(values)

    def _set_lrs(self, values: Sequence[float]) -> None:
        for g, lr in zip(self.optimizer.param_groups, values):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The rates the last `step()` set, one per parameter group."""
        return list(self._last_lr)

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments (besides the optimizer), for checkpoints."""
        return {}

    _unsaved: tuple[str, ...] = ("optimizer",)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer, as PyTorch saves it."""
        return {k: v for k, v in self.__dict__.items() if k not in self._unsaved}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k not in self._unsaved})
        if hasattr(self, "base_lrs"):
            self.base_lrs = list(self.base_lrs)
        if "_last_lr" in state:
            self._set_lrs(list(state["_last_lr"]))
        else:   # a checkpoint from before cnnlab saved the rates: they follow from the epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            self._set_lrs(closed() if closed is not None else [g["lr"] for g in self.optimizer.param_groups])


_LRScheduler = LRScheduler   # PyTorch's old name, still used by older tutorials


def _current(scheduler: LRScheduler) -> list[float]:
    return [g["lr"] for g in scheduler.optimizer.param_groups]


class StepLR(LRScheduler):
    """lr = base * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def config(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _current(self)
        return [lr * self.gamma for lr in _current(self)]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = base * gamma ** (number of milestones <= epoch); a milestone listed twice counts twice."""

    def __init__(self, optimizer: Any, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = Counter(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def config(self) -> dict[str, Any]:
        return {"milestones": sorted(self.milestones.elements()), "gamma": self.gamma}

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return _current(self)
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in _current(self)]

    def _get_closed_form_lr(self) -> list[float]:
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        # a plain dict of int -> count, which checkpoints can store
        return {**super().state_dict(), "milestones": dict(self.milestones)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.milestones = Counter({int(k): int(v) for k, v in dict(self.milestones).items()})


class ExponentialLR(LRScheduler):
    """lr = base * gamma ** epoch."""

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def config(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return _current(self)
        return [lr * self.gamma for lr in _current(self)]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, computed as PyTorch
    does from the previous rate (past T_max the rate climbs back, as there)."""

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def config(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}

    def get_lr(self) -> list[float]:
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return _current(self)
        if self._step_count == 1 and t > 0:   # made with last_epoch > -1: no previous rate to scale
            return self._get_closed_form_lr()
        if (t - 1 - T) % (2 * T) == 0:        # leaving the trough, where the ratio below is 0/0
            return [lr + (base - lo) * (1 - math.cos(math.pi / T)) / 2
                    for lr, base in zip(_current(self), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - lo) + lo for lr in _current(self)]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class _LambdaScheduler(LRScheduler):
    """A rate from Python functions of the epoch, one per group (or one for all groups).

    Functions cannot be written into a checkpoint (a cnnlab checkpoint holds no code),
    so `config()` refuses with a message saying what to use instead; `state_dict()`
    keeps PyTorch's format (None for each function, a callable object's attributes).
    """

    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1):
        self.lr_lambdas = per_group("lr_lambda", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    _unsaved = ("optimizer", "lr_lambdas")

    def config(self) -> dict[str, Any]:
        raise TypeError(f"{type(self).__name__} cannot be saved in a checkpoint: its lr_lambda is Python code, "
                        f"and a checkpoint holds numbers only. Use StepLR, MultiStepLR, ExponentialLR, "
                        f"CosineAnnealingLR, OneCycleLR or WarmupCosineLR for a run that saves checkpoints")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for fn, saved in zip(self.lr_lambdas, state.get("lr_lambdas", ())):
            if saved is not None:
                fn.__dict__.update(saved)


class LambdaLR(_LambdaScheduler):
    """lr = base * lr_lambda(epoch)."""

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaScheduler):
    """lr = previous lr * lr_lambda(epoch), from epoch 1 on."""

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return _current(self)
        return [lr * fn(self.last_epoch) for fn, lr in zip(self.lr_lambdas, _current(self))]


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


class WarmupCosineLR(LRScheduler):
    """`warmup_cosine` stepped once per batch: T_max is the run's number of steps.

    Not one of PyTorch's classes (there it takes LinearLR and CosineAnnealingLR chained
    in SequentialLR); one class keeps it a name plus numbers in a checkpoint. Being
    made sets the first step's rate, as every scheduler here does.
    """

    def __init__(self, optimizer: Any, T_max: int, warmup: int = 0, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1):
        if T_max < 1 or warmup < 0:
            raise ValueError(f"WarmupCosineLR: T_max must be >= 1 and warmup >= 0, got {T_max} and {warmup}")
        self.T_max, self.warmup, self.eta_min = int(T_max), int(warmup), eta_min
        super().__init__(optimizer, last_epoch)

    def config(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "warmup": self.warmup, "eta_min": self.eta_min}

    def get_lr(self) -> list[float]:
        return self._get_closed_form_lr()

    def _get_closed_form_lr(self) -> list[float]:
        return [warmup_cosine(self.last_epoch, self.T_max, base, self.warmup, self.eta_min) for base in self.base_lrs]


def per_group(name: str, optimizer: Any, value: Any) -> list[Any]:
    """A number for every parameter group: one given for all, or a list with one per group."""
    n = len(_groups(optimizer))
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"expected {n} values for {name}, one per parameter group, got {len(value)}")
        return list(value)
    return [value] * n


# they subclass LRScheduler, so they come after it
from ._one_cycle import OneCycleLR  # noqa: E402,F401
from ._plateau import ReduceLROnPlateau  # noqa: E402,F401

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR",
           "MultiplicativeLR", "ReduceLROnPlateau", "OneCycleLR", "WarmupCosineLR", "warmup_cosine"]
