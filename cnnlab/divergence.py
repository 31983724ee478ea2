"""The training loop's guard against divergence: a copy of the last state known to be good,
and the rule that says a finite loss has run away.

A step is known good once its forward pass gave a finite loss, so the guard copies the
whole state -- weights, buffers (batch-norm running statistics) and the optimizer's
moments -- before each forward pass and keeps the copy taken before the last step whose
loss was finite. Restoring it puts back a model that evaluates to finite numbers: the
running statistics of the failing forward pass (already poisoned) are replaced too.

A loss can also run away while staying finite (Adam at an absurd learning rate sits at
~1e35 for ever). The rule: the loss stays above FACTOR times its starting value (the mean
the smallest of the run's first STARTING_STEPS losses -- a run can blow up within them --
and at least 1.0) for PATIENCE steps in a row.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import nn, optim
from .autograd import no_grad
from .tensor import Tensor

FACTOR = 1e3
PATIENCE = 10
STARTING_STEPS = 10


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or ran far beyond its starting value."""


class StateKeeper:
    """Two copies of (weights and buffers, optimizer state): the one taken before the step
    under way, and the one taken before the last step whose loss was finite."""

    def __init__(self, model: nn.Module, optimizer: optim.Optimizer):
        self.model, self.optimizer = model, optimizer
        # two slots used in turn, so each step copies into arrays it already has
        self._copies: list[tuple[list[np.ndarray], dict[str, Any]] | None] = [None, None]
        self._good: int | None = None
        self._pending: int | None = None

    def _tensors(self) -> list[Tensor]:
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        seen = {id(p) for p in params}
        return params + [b for b in self.model.buffers() if id(b) not in seen]

    def before_step(self) -> None:
        """Copy the state this step starts from."""
        slot = 1 if self._good == 0 else 0
        tensors = self._tensors()
        old = self._copies[slot]
        if old is None or len(old[0]) != len(tensors):
            arrays = [t.detach().cpu().numpy().copy() for t in tensors]
        else:
            arrays = old[0]
            for buf, t in zip(arrays, tensors):
                np.copyto(buf, t.detach().cpu().numpy())
        self._copies[slot] = (arrays, self.optimizer.state_dict())
        self._pending = slot

    def step_was_finite(self) -> None:
        """The step's forward pass gave a finite loss: the state it started from is good."""
        self._good = self._pending

    def restore(self) -> bool:
        """Put back the last good state (or, on the run's first step, the state it started
        from: nothing was learned from a bad batch yet). False when there is none."""
        slot = self._good if self._good is not None else self._pending
        if slot is None or self._copies[slot] is None:
            return False
        arrays, opt_state = self._copies[slot]  # type: ignore[misc]
        with no_grad():
            for buf, t in zip(arrays, self._tensors()):
                t.copy_(Tensor(buf, dtype=buf.dtype).to(t.device))
        self.optimizer.load_state_dict(opt_state)
        return True


class RunawayRule:
    """Counts the steps in a row whose loss lies beyond FACTOR times the starting loss."""

    def __init__(self, factor: float = FACTOR, patience: int = PATIENCE):
        self.factor, self.patience = factor, patience
        self.high = 0

    def limit(self, steps: list[dict[str, Any]]) -> float | None:
        """The loss beyond which a step counts as high; None before the run's first step."""
        first = [s["loss"] for s in steps[:STARTING_STEPS]]
        return self.factor * max(min(first), 1.0) if first else None

    def check(self, loss: float, steps: list[dict[str, Any]], where: str) -> None:
        """Raise TrainingDiverged when this loss makes PATIENCE high ones in a row."""
        limit = self.limit(steps)
        self.high = self.high + 1 if limit is not None and loss > limit else 0
        if self.high >= self.patience:
            raise TrainingDiverged(
                f"the loss stayed above {limit:.3g} ({self.factor:g} times its starting value) for "
                f"{self.patience} steps in a row, reaching {loss:.3g} at {where}: the run diverged "
                f"(try a smaller learning rate)")
