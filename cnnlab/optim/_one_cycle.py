"""OneCycleLR: the 1cycle policy (Smith & Topin), stepped once per batch, PyTorch's rules."""
from __future__ import annotations

import math
from typing import Any

from .lr_scheduler import LRScheduler, _groups, per_group


def _anneal(kind: str, start: float, end: float, pct: float) -> float:
    if kind == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    """The rate climbs from max_lr/div_factor to max_lr over the first pct_start of
    total_steps, then falls to initial_lr/final_div_factor (three_phase: back down to
    the initial rate first, then to the minimum), by cosine or linear annealing.
    With cycle_momentum, SGD's momentum (Adam's beta1) moves the opposite way between
    max_momentum and base_momentum. Sets each group's 'initial_lr', 'max_lr', 'min_lr'
    (and 'max_momentum', 'base_momentum').
    """

    def __init__(self, optimizer: Any, max_lr: float | list[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85, max_momentum: float | list[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        groups = _groups(optimizer)
        self.total_steps = self._total(total_steps, epochs, steps_per_epoch)
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be between 0 and 1, got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self._args = dict(max_lr=max_lr, total_steps=self.total_steps, pct_start=pct_start,
                          anneal_strategy=anneal_strategy, cycle_momentum=cycle_momentum,
                          base_momentum=base_momentum, max_momentum=max_momentum, div_factor=div_factor,
                          final_div_factor=final_div_factor, three_phase=three_phase)
        # each phase: its last step and the group keys it anneals the rate and momentum between
        up = float(pct_start * self.total_steps) - 1
        if three_phase:
            ends = [up, float(2 * pct_start * self.total_steps) - 2, self.total_steps - 1]
            keys = [("initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    ("max_lr", "initial_lr", "base_momentum", "max_momentum"),
                    ("initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            ends = [up, self.total_steps - 1]
            keys = [("initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    ("max_lr", "min_lr", "base_momentum", "max_momentum")]
        self._phases = [dict(zip(("end_step", "start_lr", "end_lr", "start_momentum", "end_momentum"), (end, *k)))
                        for end, k in zip(ends, keys)]
        self.anneal_strategy = anneal_strategy
        if last_epoch == -1:
            for g, top in zip(groups, per_group("max_lr", optimizer, max_lr)):
                g["initial_lr"] = top / div_factor
                g["max_lr"] = top
                g["min_lr"] = g["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            defaults = getattr(optimizer, "defaults", {})
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas "
                                 "(SGD, Adam, AdamW, RMSprop); pass cycle_momentum=False")
            self.use_beta1 = "betas" in defaults
            if last_epoch == -1:
                highs = per_group("max_momentum", optimizer, max_momentum)
                lows = per_group("base_momentum", optimizer, base_momentum)
                for g, high, low in zip(groups, highs, lows):
                    self._set_momentum(g, high)
                    g["max_momentum"], g["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _total(total_steps: int | None, epochs: int | None, steps_per_epoch: int | None) -> int:
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(f"OneCycleLR: total_steps must be a positive integer, got {total_steps}")
            return total_steps
        if epochs is None or steps_per_epoch is None:
            raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
        for name, n in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
            if not isinstance(n, int) or n <= 0:
                raise ValueError(f"OneCycleLR: {name} must be a positive integer, got {n}")
        return epochs * steps_per_epoch

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    _unsaved = ("optimizer", "_args")   # the arguments go into checkpoints as config()

    def config(self) -> dict[str, Any]:
        return dict(self._args)

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times; total_steps is {self.total_steps}")
        lrs = []
        for g in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._phases):
                end = phase["end_step"]
                if step <= end or i == len(self._phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(_anneal(self.anneal_strategy, g[phase["start_lr"]], g[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        self._set_momentum(g, _anneal(self.anneal_strategy, g[phase["start_momentum"]],
                                                      g[phase["end_momentum"]], pct))
                    break
                start = end
        return lrs

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._set_lrs(self.get_lr())   # the momentum too: making the scheduler reset it to max_momentum
