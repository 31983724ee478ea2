"""StepRecorder: the numbers of an optimizer step that really ran, for the Inside tab.

The update step is written out from a step of the live run, not from a re-enactment:
the weights, gradients and optimizer state just before `optimizer.step()` and the
weights and state just after. The training loop is not changed for it: `attach(run)`
wraps that one optimizer object's `step` (an attribute on the instance, removed again by
`detach`), which the loop calls on the training thread between backward and the next
batch, so the record is taken where the numbers already are and nothing waits for the
GUI. A record is always taken for the step before the run pauses or ends, so a paused
run shows exactly the step that just ran; while it runs on, at most every `interval`
seconds, and only while `live` (someone watches the update page).

The weights recorded: every parameter while the model has at most ALL_PARAMS of them
(any weight can then be explained without another step), else only `watched`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from cnnlab.explain.training import UpdateStep, optimizer_kind, update_arithmetic

ALL_PARAMS = 1_000_000


@dataclass
class StepRecord:
    """One step's numbers for some parameters (NumPy copies, by parameter name)."""

    step: int                                  # the run's step number this update made (1 = the first)
    optimizer: str                             # 'SGD', 'Adam', 'AdamW' (or another class name)
    groups: dict[str, dict[str, Any]]          # each parameter's group settings (lr, betas, ...)
    weight: dict[str, np.ndarray]              # before the step
    grad: dict[str, np.ndarray]                # from the step's backward
    state: dict[str, dict[str, Any]]           # the optimizer's state before (arrays, and 'step' as a number)
    after: dict[str, np.ndarray]               # the weights the optimizer left
    state_after: dict[str, dict[str, Any]]

    def explain(self, name: str, index: tuple[int, ...]) -> tuple[UpdateStep, float, dict[str, float]]:
        """(the arithmetic, the optimizer's actual new value, its actual state after) for name[index]."""
        idx = tuple(int(i) for i in index)
        u = update_arithmetic(self.optimizer, self.groups[name], float(self.weight[name][idx]),
                              float(self.grad[name][idx]), _at(self.state[name], idx), idx)
        return u, float(self.after[name][idx]), _at(self.state_after[name], idx)


def _at(state: dict[str, Any], idx: tuple[int, ...]) -> dict[str, float]:
    return {k: float(v) if np.ndim(v) == 0 else float(v[idx]) for k, v in state.items()}


def _state(opt: Any, p: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in opt.state.get(p, {}).items():
        if tuple(getattr(v, "shape", ())) == tuple(p.shape) and hasattr(v, "shape"):
            out[k] = np.array(p._backend.to_numpy(v), copy=True)
        elif np.ndim(v) == 0 and not isinstance(v, bool):
            out[k] = float(v)
    return out


class StepRecorder(QObject):
    """sigRecorded(StepRecord) arrives on the GUI thread (queued from the training thread)."""

    sigRecorded = Signal(object)

    def __init__(self, interval: float = 0.5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval = interval
        self.watched: str | None = None   # the parameter always recorded
        self.live = False                  # record a running run's steps too (every `interval` s)
        self.last: StepRecord | None = None
        self._last_time = -1e9
        self._runs: list[Any] = []
        self.sigRecorded.connect(self._keep)

    def _keep(self, record: StepRecord) -> None:
        self.last = record

    def attach(self, run: Any) -> None:
        """Record `run`'s steps from now on (call before its thread starts, or on it)."""
        opt = run.optimizer
        if "step" in vars(opt):  # attached already
            return
        original = opt.step
        names = {id(p): n for n, p in run.model.named_parameters()}
        small = sum(p.numel() for p in run.model.parameters()) <= ALL_PARAMS

        def step(closure=None):
            if not self._due(run):
                return original(closure)
            chosen = [(g, p) for g in opt.param_groups for p in g["params"]
                      if p.grad is not None and (small or names.get(id(p)) == self.watched)]
            weight = {names[id(p)]: p.detach().cpu().numpy().copy() for _, p in chosen}
            grad = {names[id(p)]: p.grad.detach().cpu().numpy().copy() for _, p in chosen}
            state = {names[id(p)]: _state(opt, p) for _, p in chosen}
            result = original(closure)
            self._last_time = time.perf_counter()
            self.sigRecorded.emit(StepRecord(
                run.step + 1, optimizer_kind(opt),
                {names[id(p)]: {k: v for k, v in g.items() if k not in ("params", "param_names")} for g, p in chosen},
                weight, grad, state, {names[id(p)]: p.detach().cpu().numpy().copy() for _, p in chosen},
                {names[id(p)]: _state(opt, p) for _, p in chosen}))
            return result
        opt.step = step
        self._runs.append(run)

    def detach(self, run: Any) -> None:
        """Stop recording `run` (its optimizer's own step again)."""
        vars(run.optimizer).pop("step", None)
        self._runs = [r for r in self._runs if r is not run]

    def _due(self, run: Any) -> bool:
        last = run.epoch + 1 >= run.epochs and run.batch_in_epoch + 1 >= len(run.train_loader)
        return run.paused or last or (self.live and time.perf_counter() - self._last_time >= self.interval)
