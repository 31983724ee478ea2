"""The training loop the command line and the desktop app share.

`fit` trains a model and returns its History; callbacks see every event and can
ask for activations of chosen layers on fixed probe images, for parameter and
gradient snapshots, and can pause, resume, single-step and stop the run between
steps (the GUI drives exactly this, from a worker thread).

>>> history = fit(model, DataLoader(train, 64, shuffle=True, seed=0), optim.Adam(model.parameters()),
...               epochs=2, val_loader=DataLoader(val, 500))
>>> history.epochs[-1]["val_accuracy"]
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import nn, optim
from .autograd import no_grad
from .divergence import RunawayRule, StateKeeper, TrainingDiverged
from .tensor import Tensor
from .creation import from_numpy


# ----------------------------------------------------------------------------- events
@dataclass
class StepMetrics:
    epoch: int            # 1-based
    step: int             # global step, 1-based
    batch: int            # batch within the epoch, 1-based
    batches: int          # batches per epoch
    loss: float
    accuracy: float       # on this batch
    images_per_s: float   # wall-clock throughput over about the last second (see _Throughput)
    lr: float
    elapsed: float        # seconds of training so far (pauses and kernel compilation excluded)


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    confusion: np.ndarray | None = None
    elapsed: float = 0.0          # seconds of training so far, as StepMetrics.elapsed
    seconds: float = 0.0          # this epoch's own time: its steps and its validation
    compile_seconds: float = 0.0  # spent compiling kernels during the epoch (not in `seconds`)
    images_per_s: float = 0.0     # the epoch's training images / their wall-clock seconds (_Throughput)


class Callback:
    """Override what you need. Set `probe_every` (steps), `probe_layers` (module names
    from `model.named_modules()`) and `probe_images` (N, C, H, W) to receive activations;
    `snapshot_every` to receive parameters and gradients."""

    probe_every: int = 0
    probe_layers: Sequence[str] = ()
    probe_images: Tensor | None = None
    snapshot_every: int = 0

    def on_run_start(self, run: "Run") -> None: ...
    def on_step_end(self, run: "Run", m: StepMetrics) -> None: ...
    def on_probe(self, run: "Run", activations: dict[str, np.ndarray]) -> None: ...
    def on_snapshot(self, run: "Run", params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None: ...
    def on_epoch_end(self, run: "Run", m: EpochMetrics) -> None: ...
    def on_pause(self, run: "Run") -> None:
        """The run stopped between steps to wait (paused, or a single step done): until it is
        resumed, stepped or stopped it touches neither the model nor the optimizer."""
    def on_run_end(self, run: "Run", status: str) -> None: ...


# ----------------------------------------------------------------------------- compile time
class _CompileClock:
    """Seconds numba spent compiling, summed over outermost compilations (a kernel's compile
    nests those of the kernels it calls), so a step's time can leave them out."""

    def __init__(self) -> None:
        self.total = 0.0
        self._depth: dict[int, tuple[int, float]] = {}   # per thread: nesting depth, start time
        self._lock = threading.Lock()

    def start(self) -> None:
        key = threading.get_ident()
        with self._lock:
            depth, t0 = self._depth.get(key, (0, 0.0))
            self._depth[key] = (depth + 1, time.perf_counter() if depth == 0 else t0)

    def end(self) -> None:
        key = threading.get_ident()
        with self._lock:
            depth, t0 = self._depth.get(key, (1, time.perf_counter()))
            if depth <= 1:
                self._depth.pop(key, None)
                self.total += time.perf_counter() - t0
            else:
                self._depth[key] = (depth - 1, t0)


_COMPILES = _CompileClock()


def _listen_to_compiles() -> None:
    try:
        from numba.core import event
    except ImportError:  # numba moved its event API: compile time then counts as training time
        return

    class Listener(event.Listener):
        def on_start(self, ev):
            _COMPILES.start()

        def on_end(self, ev):
            _COMPILES.end()

    event.register("numba:compile", Listener())


_listen_to_compiles()


@dataclass
class History:
    steps: list[dict[str, float]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        epochs = [{k: v for k, v in e.items() if k != "confusion"} for e in self.epochs]
        return {"steps": self.steps, "epochs": epochs}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(list(d.get("steps", [])), list(d.get("epochs", [])))

    def write(self, folder: str | os.PathLike) -> None:
        """metrics.json (everything) and steps.csv / epochs.csv, each written atomically."""
        folder = Path(folder)
        _atomic_text(folder / "metrics.json", json.dumps(self.to_dict(), indent=1))
        for name, rows in (("steps.csv", self.steps), ("epochs.csv", self.to_dict()["epochs"])):
            if rows:
                lines = [",".join(rows[0].keys())]
                lines += [",".join("" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)
                                   for v in r.values()) for r in rows]
                _atomic_text(folder / name, "\n".join(lines) + "\n")


def _atomic_text(path: Path, text: str) -> None:
    from .serialization import write_atomically

    write_atomically(path, lambda f: f.write(text.encode("utf-8")))


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    confusion: np.ndarray   # confusion[true, predicted]

    @property
    def per_class_accuracy(self) -> np.ndarray:
        totals = self.confusion.sum(axis=1)
        return np.where(totals > 0, np.diag(self.confusion) / np.maximum(totals, 1), np.nan)


# ----------------------------------------------------------------------------- evaluate
def evaluate(model: nn.Module, loader: Iterable, loss_fn: nn.Module | None = None, device: Any = None,
             num_classes: int | None = None, flip: bool = False) -> EvalResult:
    """Mean loss, accuracy and confusion matrix of `model` over `loader` (eval mode, no grad).

    flip: test-time augmentation; the model's answer for an image is the mean of its logits
    for the image and for its mirror image (left to right), as the fast CIFAR-10 recipes
    score. Not for images whose class a mirror changes (digits, letters)."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    total_loss, seen = 0.0, 0
    confusion = None
    try:
        with no_grad():
            for x, y in loader:
                mirror = _mirrored(x) if flip else None   # on the host, before the batch moves
                if device is not None:
                    x, y = x.to(device), y.to(device)
                    mirror = mirror.to(device) if flip else None
                out = model(x)
                if flip:
                    out = (out + model(mirror)) * 0.5
                total_loss += float(loss_fn(out, y).item()) * len(y)
                seen += len(y)
                c = num_classes or out.shape[1]
                if confusion is None:
                    confusion = np.zeros((c, c), np.int64)
                np.add.at(confusion, (y.cpu().numpy(), out.argmax(1).cpu().numpy()), 1)
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate: the loader gave no batches")
    return EvalResult(total_loss / seen, float(np.trace(confusion) / seen), confusion)


def _mirrored(x: Tensor) -> Tensor:
    """The batch with every image mirrored left to right."""
    return from_numpy(np.ascontiguousarray(x.cpu().numpy()[..., ::-1]))


# ----------------------------------------------------------------------------- throughput
class _Throughput:
    """Images per second of wall-clock time, the one img/s the CLI and the app show. All
    time between two steps counts (loading data, callbacks, probes, the GUI's share of the
    cores), except waiting while paused, jobs submitted to the run and kernel compilation:
    timing the step's own arithmetic alone overstated it up to twice. `rate` covers about
    the last second; `epoch_rate` the epoch's steps so far (validation left out)."""

    WINDOW = 1.0

    def __init__(self) -> None:
        self._recent: deque[tuple[float, int]] = deque()   # (seconds, images) per step
        self._seconds = self._images = 0.0                  # sums over _recent
        self.epoch_seconds, self.epoch_images = 0.0, 0
        self._mark = time.perf_counter()

    def new_epoch(self) -> None:
        self.epoch_seconds, self.epoch_images = 0.0, 0
        self._mark = time.perf_counter()

    def add(self, images: int, not_counted: float) -> float:
        """A step of `images` just ended; `not_counted` seconds since the last were not training."""
        now = time.perf_counter()
        dt = max(now - self._mark - not_counted, 1e-9)
        self._mark = now
        self._recent.append((dt, images))
        self._seconds += dt
        self._images += images
        self.epoch_seconds += dt
        self.epoch_images += images
        while len(self._recent) > 1 and self._seconds - self._recent[0][0] >= self.WINDOW:
            old_dt, old_n = self._recent.popleft()
            self._seconds -= old_dt
            self._images -= old_n
        return self._images / self._seconds

    @property
    def epoch_rate(self) -> float:
        return self.epoch_images / self.epoch_seconds if self.epoch_seconds else 0.0


# ----------------------------------------------------------------------------- the run
class Run:
    """One training run: its model, optimizer, counters, history and controls.

    Controls are safe to call from another thread (the GUI's): `pause()`,
    `resume()`, `step_once(n)` (while paused: run n more steps, then pause again),
    `stop()`, `set_lr(lr)`. They act between steps. `submit(fn)` runs `fn(run)` on the
    training thread between steps (the way to read or change the live model safely).
    """

    def __init__(self, model: nn.Module, train_loader: Any, optimizer: optim.Optimizer,
                 loss_fn: nn.Module | None = None, epochs: int = 1, val_loader: Any = None,
                 callbacks: Sequence[Callback] = (), device: Any = None, scheduler: Any = None,
                 scheduler_interval: str = "epoch"):
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"Run: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.model, self.train_loader, self.optimizer = model, train_loader, optimizer
        self.loss_fn = loss_fn or nn.CrossEntropyLoss()
        self.epochs, self.val_loader = int(epochs), val_loader
        self.callbacks = list(callbacks)
        self.device = device
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval   # when scheduler.step() runs: after each epoch or step
        self.history = History()
        self.eval_flip = False    # validation: average each image's logits with its mirror image's
        self.epoch = 0            # completed epochs
        self.step = 0             # completed steps (global)
        self.batch_in_epoch = 0   # completed batches of the current epoch
        self.status = "ready"
        self.elapsed = 0.0
        self.compile_seconds = 0.0   # kernel compilation met by this run (not in `elapsed`)
        # the current epoch's running sums, kept in checkpoints so a mid-epoch resume reports
        # the whole epoch: summed loss (times batch size), correct answers, images, seconds
        self.epoch_sums = {"loss": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0, "compile": 0.0}
        self.runaway = RunawayRule()
        self._throughput = _Throughput()
        # controls and requests from other threads meet the training thread under one condition
        self._cond = threading.Condition()
        self._stop = False
        self._budget: int | None = None   # steps allowed before pausing; None: run freely, 0: paused
        self._requests: deque[tuple[Callable[["Run"], Any], Future]] = deque()
        self._thread: int | None = None   # the thread inside run(), if any

    # ----- controls
    def pause(self) -> None:
        with self._cond:
            self._budget = 0
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._budget = None
            self._cond.notify_all()

    def step_once(self, n: int = 1) -> None:
        with self._cond:
            self._budget = (self._budget or 0) + n
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self._budget == 0

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def set_lr(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        for g in self.optimizer.param_groups:
            g["lr"] = float(lr)

    def submit(self, fn: Callable[["Run"], Any]) -> Future:
        """Run `fn(run)` where it cannot race a training step: on the training thread at the
        next step boundary (also while paused), or at once in this thread when no thread is
        inside `run()` (or when called from the training thread itself). Its result or
        exception goes into the returned Future.

        >>> run.submit(lambda r: probe(r.model, images)).result()   # from the GUI thread
        """
        future: Future = Future()
        with self._cond:
            queued = self._thread is not None and self._thread != threading.get_ident()
            if queued:
                self._requests.append((fn, future))
                self._cond.notify_all()
        if not queued:
            _settle(future, fn, self)
        return future

    def _serve(self) -> None:
        """Answer the requests waiting (on the training thread, between steps)."""
        while True:
            with self._cond:
                if not self._requests:
                    return
                fn, future = self._requests.popleft()
            _settle(future, fn, self)

    def _wait_turn(self) -> bool:
        """Serve requests and block while paused; False when the run should stop."""
        announced = False
        while True:
            self._serve()
            with self._cond:
                if self._stop:
                    return False
                if self._requests:
                    continue
                if self._budget is None:
                    return True
                if self._budget > 0:
                    self._budget -= 1
                    return True
                if announced:
                    self._cond.wait()
                    continue
            announced = True   # tell the callbacks once, outside the lock: they may call the controls
            for cb in self.callbacks:
                cb.on_pause(self)

    # ----- the loop
    def run(self) -> History:
        """Train until `epochs` are done or stop() is called; returns the history."""
        if self.device is not None:
            self.model.to(self.device)
        self.status = "running"
        with self._cond:
            self._thread = threading.get_ident()
        status = "finished"
        try:
            for cb in self.callbacks:
                cb.on_run_start(self)
            while self.epoch < self.epochs:
                if not self._train_epoch():
                    status = "stopped"
                    break
        except TrainingDiverged:
            status = "diverged"
            raise
        finally:
            self.status = status
            try:
                for cb in self.callbacks:
                    cb.on_run_end(self, status)
            finally:
                with self._cond:
                    self._thread = None   # from now on submit() runs at once in its caller
                self._serve()             # what came in meanwhile
        return self.history

    def _batches(self):
        loader = self.train_loader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        elif hasattr(loader, "_epoch"):
            loader._epoch = self.epoch  # the order of epoch e depends only on (seed, e)
        it = iter(loader)
        for _ in range(self.batch_in_epoch):  # resuming mid-epoch: skip what was done
            next(it)
        return it

    def _train_epoch(self) -> bool:
        model, opt = self.model, self.optimizer
        model.train()
        batches = len(self.train_loader)
        sums = self.epoch_sums
        keeper = StateKeeper(model, opt)
        throughput = self._throughput
        throughput.new_epoch()
        for x, y in self._batches():
            waited = time.perf_counter()
            if not self._wait_turn():
                return False
            waited = time.perf_counter() - waited
            t0, compiled0 = time.perf_counter(), _COMPILES.total
            keeper.before_step()
            if self.device is not None:
                x, y = x.to(self.device), y.to(self.device)
            opt.zero_grad()
            out = model(x)
            loss = self.loss_fn(out, y)
            loss_value = float(loss.item())
            where = f"epoch {self.epoch + 1}, step {self.step + 1}"
            if not math.isfinite(loss_value):
                keeper.restore()
                raise TrainingDiverged(
                    f"the loss became {loss_value} at {where}; training stopped and the weights, "
                    f"batch-norm statistics and optimizer state were put back to those of the last step "
                    f"with a finite loss (try a smaller learning rate)")
            keeper.step_was_finite()
            self.runaway.check(loss_value, self.history.steps, where)
            loss.backward()
            opt.step()
            correct = int((out.argmax(1) == y).sum().item())
            compiled = _COMPILES.total - compiled0
            dt = max(time.perf_counter() - t0 - compiled, 1e-9)
            self.elapsed += dt
            self.compile_seconds += compiled
            self.step += 1
            self.batch_in_epoch += 1
            n = len(y)
            for key, value in (("loss", loss_value * n), ("correct", correct), ("seen", n), ("seconds", dt),
                               ("compile", compiled)):
                sums[key] += value
            rate = throughput.add(n, waited + compiled)
            m = StepMetrics(self.epoch + 1, self.step, self.batch_in_epoch, batches, loss_value, correct / n,
                            rate, self.lr, self.elapsed)
            self.history.steps.append({"epoch": m.epoch, "step": m.step, "loss": loss_value,
                                       "accuracy": m.accuracy, "lr": m.lr})
            self._step_scheduler("step", loss_value)   # m.lr keeps the rate this step used
            for cb in self.callbacks:
                cb.on_step_end(self, m)
            self._probe_and_snapshot()
        self.epoch += 1
        self.batch_in_epoch = 0
        seen = max(sums["seen"], 1)
        em = EpochMetrics(self.epoch, sums["loss"] / seen, sums["correct"] / seen, elapsed=self.elapsed,
                          images_per_s=throughput.epoch_rate)
        if self.val_loader is not None:
            t0, compiled0 = time.perf_counter(), _COMPILES.total
            r = evaluate(model, self.val_loader, self.loss_fn, self.device, flip=self.eval_flip)
            em.val_loss, em.val_accuracy, em.confusion = r.loss, r.accuracy, r.confusion
            compiled = _COMPILES.total - compiled0
            sums["seconds"] += time.perf_counter() - t0 - compiled
            sums["compile"] += compiled
            self.compile_seconds += compiled
        em.seconds, em.compile_seconds = sums["seconds"], sums["compile"]
        self.epoch_sums = {key: 0.0 for key in sums}
        self._step_scheduler("epoch", em.train_loss if em.val_loss is None else em.val_loss)
        self.history.epochs.append({k: v for k, v in asdict(em).items() if k != "confusion"})
        for cb in self.callbacks:
            cb.on_epoch_end(self, em)
        return True

    def _step_scheduler(self, interval: str, loss: float) -> None:
        """Advance the schedule at its interval. ReduceLROnPlateau watches a loss: the
        validation loss per epoch (the training loss without a validation set), or the
        step's own loss when it steps every batch."""
        if self.scheduler is None or self.scheduler_interval != interval:
            return
        if isinstance(self.scheduler, optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(loss)
        else:
            self.scheduler.step()

    # ----- probes and snapshots
    def _probe_and_snapshot(self) -> None:
        for cb in self.callbacks:
            if cb.probe_every and cb.probe_images is not None and self.step % cb.probe_every == 0:
                cb.on_probe(self, probe(self.model, cb.probe_images, cb.probe_layers, self.device))
            if cb.snapshot_every and self.step % cb.snapshot_every == 0:
                named = list(self.model.named_parameters())
                cb.on_snapshot(self, {k: p.detach().cpu().numpy().copy() for k, p in named},
                               {k: p.grad.cpu().numpy().copy() for k, p in named if p.grad is not None})


def _settle(future: Future, fn: Callable[[Run], Any], run: Run) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn(run))
    except BaseException as e:  # noqa: BLE001 - the caller sees it through the Future
        future.set_exception(e)


def probe(model: nn.Module, images: Tensor, layers: Sequence[str] = (), device: Any = None) -> dict[str, np.ndarray]:
    """Activations (as NumPy arrays) of the named layers for `images`, in eval mode without grad.
    No names: every leaf layer. The key 'output' holds the model's output."""
    mods = dict(model.named_modules())
    names = list(layers) or [n for n, m in mods.items() if n and not m._modules]
    missing = [n for n in names if n not in mods]
    if missing:
        raise ValueError(f"probe: no layer named {', '.join(missing)}; layers are {', '.join(n for n in mods if n)}")
    acts: dict[str, np.ndarray] = {}
    handles = [mods[n].register_forward_hook(
        lambda m, i, o, n=n: acts.__setitem__(n, o.detach().cpu().numpy().copy())) for n in names]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            x = images if device is None else images.to(device)
            acts["output"] = model(x).detach().cpu().numpy()
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return acts


def fit(model: nn.Module, train_loader: Any, optimizer: optim.Optimizer, loss_fn: nn.Module | None = None,
        epochs: int = 1, val_loader: Any = None, callbacks: Sequence[Callback] = (), device: Any = None,
        scheduler: Any = None, scheduler_interval: str = "epoch") -> History:
    """Train `model` for `epochs` passes over `train_loader`; see `Run` for the controls.
    `scheduler.step()` runs after every epoch, or after every step with scheduler_interval="step";
    a ReduceLROnPlateau is stepped with the epoch's validation loss (its training loss when there
    is no val_loader), or with each step's loss."""
    return Run(model, train_loader, optimizer, loss_fn, epochs, val_loader, callbacks, device, scheduler,
               scheduler_interval).run()


# Checkpoints live in cnnlab.checkpoint (which builds on Run and History); these names stay
# importable from here, looked up on first use so neither module imports the other at load.
_CHECKPOINT_NAMES = ("CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "model_from_checkpoint", "resume")


def __getattr__(name: str) -> Any:
    if name in _CHECKPOINT_NAMES:
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
