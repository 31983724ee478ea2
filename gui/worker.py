"""TrainWorker: runs one `cnnlab.train.Run` in a QThread and forwards its events to the
GUI as Qt signals that carry NumPy copies, never live tensors.

The engine's loop is not rewritten here: the thread calls `run.run()`, and a Callback
turns each event into a signal. Events are throttled in the worker thread, so the GUI
draws a few times a second however fast training goes:

- step metrics are collected and sent in batches at most every `Refresh.curves` s;
- the probe's activations and a snapshot of parameters, gradients and the whole
  state_dict are taken at most every `Refresh.pictures` s (and after every single
  step, and when the run pauses or ends);
- an epoch's metrics and confusion matrix are sent as they come.

The controls (`pause`, `resume`, `step_once`, `stop`, `set_lr`) are the Run's own,
which act between steps. `sigPaused` says the run is waiting between steps, so the
GUI may then read or save the live model.

>>> worker = TrainWorker(run, probe_images=image[None])
>>> worker.sigFinished.connect(view.on_finished)
>>> worker.start()
"""
from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from cnnlab import Tensor
from cnnlab.train import Callback, EpochMetrics, Run, TrainingDiverged, probe


@dataclass
class Refresh:
    """How often the worker sends updates (seconds)."""

    # On 2 cores the GUI thread competes with the engine's two kernel threads, so every
    # millisecond of drawing counts: 5 and 2 updates a second cost about 5 % of a core.
    curves: float = 0.2     # step metrics, i.e. at most 5 Hz
    pictures: float = 0.5   # feature maps, filters, gradients, probabilities: at most 2 Hz


@dataclass
class Snapshot:
    """NumPy copies taken between two steps: `state` is the full state_dict (buffers too)."""

    step: int
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    state: dict[str, np.ndarray] = field(default_factory=dict)


def state_arrays(model: Any) -> dict[str, np.ndarray]:
    """A model's state_dict as NumPy copies (safe to keep while the model trains on)."""
    return {k: v.cpu().numpy().copy() for k, v in model.state_dict().items()}


class _Forwarder(Callback):
    """Lives in the training thread: turns Run events into the worker's signals.

    Run asks for probes and snapshots every `probe_every` / `snapshot_every` steps; here
    those are properties that read 1 when a refresh is due and 0 otherwise, which turns
    the step-based hooks into time-based ones."""

    def __init__(self, worker: "TrainWorker", images: Tensor | None, layers: Sequence[str], refresh: Refresh):
        self.worker = worker
        self.probe_images = images
        self.probe_layers = tuple(layers)
        self.refresh = refresh
        self._steps: list[dict[str, Any]] = []
        self._last_steps = 0.0
        self._last_picture = -1e9
        self._picture_step = -1
        self._due = False

    @property
    def probe_every(self) -> int:  # type: ignore[override]
        return 1 if self._due else 0

    @property
    def snapshot_every(self) -> int:  # type: ignore[override]
        return 1 if self._due else 0

    # ----- events (training thread)
    def on_step_end(self, run: Run, m) -> None:
        now = time.perf_counter()
        self._steps.append(asdict(m))
        last = m.batch == m.batches and m.epoch == run.epochs
        if run.paused or last or now - self._last_steps >= self.refresh.curves:
            self._flush(now)
        self._due = run.paused or last or now - self._last_picture >= self.refresh.pictures

    def on_probe(self, run: Run, activations: dict[str, np.ndarray]) -> None:
        self.worker.sigProbe.emit(run.step, activations)

    def on_snapshot(self, run: Run, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self._due = False
        self._last_picture = time.perf_counter()
        self._picture_step = run.step
        self.worker.sigSnapshot.emit(Snapshot(run.step, params, grads, state_arrays(run.model)))

    def on_epoch_end(self, run: Run, m: EpochMetrics) -> None:
        self._flush(time.perf_counter())
        self.worker.sigEpoch.emit(m)

    def on_pause(self, run: Run) -> None:
        self._flush(time.perf_counter())
        self.worker.sigPaused.emit(run.step)

    def on_run_end(self, run: Run, status: str) -> None:
        self._flush(time.perf_counter())
        if run.step != self._picture_step:  # the pictures show the final weights
            self.pictures_now(run)

    # ----- helpers
    def pictures_now(self, run: Run) -> None:
        """Probe and snapshot at once (only between steps, in the training thread)."""
        if self.probe_images is not None:
            self.on_probe(run, probe(run.model, self.probe_images, self.probe_layers, run.device))
        named = list(run.model.named_parameters())
        self.on_snapshot(run, {k: p.detach().cpu().numpy().copy() for k, p in named},
                         {k: p.grad.cpu().numpy().copy() for k, p in named if p.grad is not None})

    def _flush(self, now: float) -> None:
        self._last_steps = now
        if self._steps:
            steps, self._steps = self._steps, []
            self.worker.sigSteps.emit(steps)


class _Thread(QThread):
    def __init__(self, job) -> None:
        super().__init__()
        self._job = job

    def run(self) -> None:
        self._job()


class TrainWorker(QObject):
    """One Run in one QThread. Signals arrive in the GUI thread (queued)."""

    sigSteps = Signal(object)      # list of StepMetrics as dicts, oldest first
    sigEpoch = Signal(object)      # EpochMetrics (with the confusion matrix when there is a val set)
    sigProbe = Signal(int, object)   # step, {layer name: activations (N, ...)}; 'output' = logits
    sigSnapshot = Signal(object)   # Snapshot
    sigPaused = Signal(int)        # step: the run waits between steps
    sigFailed = Signal(str)        # why the run ended early (diverged or an error)
    sigFinished = Signal(str)      # 'finished', 'stopped', 'diverged' or 'failed'

    def __init__(self, run: Run, probe_images: Tensor | None = None, probe_layers: Sequence[str] = (),
                 refresh: Refresh | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run = run
        self.refresh = refresh or Refresh()
        self.forwarder = _Forwarder(self, probe_images, probe_layers, self.refresh)
        run.callbacks.append(self.forwarder)
        self.status = "ready"
        self._thread = _Thread(self._work)

    # ----- lifetime
    def start(self) -> None:
        self.status = "running"
        self._thread.start()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, ms: int = 30_000) -> bool:
        """Block until the thread has ended (True) or `ms` passed (False)."""
        return self._thread.wait(ms)

    def shutdown(self, ms: int = 30_000) -> bool:
        """Stop between steps and join the thread."""
        self.run.stop()
        return self.wait(ms)

    # ----- controls (any thread)
    def pause(self) -> None:
        self.run.pause()

    def resume(self) -> None:
        self.run.resume()

    def step_once(self, n: int = 1) -> None:
        self.run.step_once(n)

    def stop(self) -> None:
        self.run.stop()

    def set_lr(self, lr: float) -> None:
        self.run.set_lr(lr)

    # ----- the training thread
    def _work(self) -> None:
        status = "failed"
        try:
            self.run.run()
            status = self.run.status
        except TrainingDiverged as e:
            status = "diverged"
            self.sigFailed.emit(str(e))
        except Exception as e:  # shown to the user; the GUI stays alive
            self.sigFailed.emit(f"{type(e).__name__}: {e}\n\n{traceback.format_exc(limit=4)}")
        finally:
            self.status = status
            self.sigFinished.emit(status)
