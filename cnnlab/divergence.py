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
        # two slots used in turn, so each step copies into host arrays it already has
        # (the optimizer's moments included: a fresh state_dict() per step cost more than
        # the Adam update itself)
        self._copies: list[dict[str, Any] | None] = [None, None]
        self._good: int | None = None
        self._pending: int | None = None

    def _params(self) -> list[Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _tensors(self) -> list[Tensor]:
        params = self._params()
        seen = {id(p) for p in params}
        return params + [b for b in self.model.buffers() if id(b) not in seen]

    def _sources(self) -> tuple[list[np.ndarray], list[tuple[int, str]], dict[tuple[int, str], Any]]:
        """Host views of everything to keep: weights, buffers, then the optimizer's
        per-parameter arrays (named by (parameter index, key)); its scalars apart."""
        arrays = [t.detach().cpu().numpy() for t in self._tensors()]
        names: list[tuple[int, str]] = []
        scalars: dict[tuple[int, str], Any] = {}
        for i, p in enumerate(self._params()):
            for k, v in self.optimizer.state.get(p, {}).items():
                if hasattr(v, "shape") and not isinstance(v, (int, float)):
                    names.append((i, k))
                    arrays.append(p._backend.to_numpy(v))
                else:
                    scalars[(i, k)] = v
        return arrays, names, scalars

    def before_step(self) -> None:
        """Copy the state this step starts from."""
        slot = 1 if self._good == 0 else 0
        arrays, names, scalars = self._sources()
        old = self._copies[slot]
        if old is not None and old["names"] == names and all(
                b.shape == a.shape and b.dtype == a.dtype for b, a in zip(old["arrays"], arrays)) \
                and len(old["arrays"]) == len(arrays):
            for buf, a in zip(old["arrays"], arrays):
                np.copyto(buf, a)
            kept = old["arrays"]
        else:
            kept = [a.copy() for a in arrays]
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        self._copies[slot] = {"arrays": kept, "names": names, "scalars": scalars, "groups": groups}
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
        copy = self._copies[slot]
        tensors, params = self._tensors(), self._params()
        arrays = copy["arrays"]
        with no_grad():
            for buf, t in zip(arrays, tensors):
                t.copy_(Tensor(buf, dtype=buf.dtype).to(t.device))
        # the optimizer's state in state_dict()'s form, so load_state_dict puts it back
        state: dict[int, dict[str, Any]] = {}
        for (i, k), buf in zip(copy["names"], arrays[len(tensors):]):
            state.setdefault(i, {})[k] = Tensor(buf, dtype=buf.dtype).to(params[i].device)
        for (i, k), v in copy["scalars"].items():
            state.setdefault(i, {})[k] = v
        groups, start = [], 0
        for saved, g in zip(copy["groups"], self.optimizer.param_groups):
            groups.append({**saved, "params": list(range(start, start + len(g["params"])))})
            start += len(g["params"])
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
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
