"""TrainController: what the training dashboard does, without drawing anything.

It owns the state machine, the data and the model, the run and the TrainWorker that
trains it in its own thread, the probe image, and the file actions (checkpoints,
sessions, export). The view (TrainView) forwards the user's actions here and draws
what the signals carry.

Engine work never runs on the GUI thread while a run trains: the lab bridge, probe
changes and evaluations go through `Run.submit`, which calls them on the training
thread between two steps (also while paused), and their results come back as queued
signals. The live model is read directly only when no run trains.

States: 'idle' (no run trains), 'running', 'pausing' (asked, the step in flight
finishing), 'paused' (waiting between steps) and 'stopping'.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

import cnnlab
from cnnlab import data, models, nn
from cnnlab.checkpoint import check_fits, load_checkpoint, resume, save_checkpoint
from cnnlab.export import export_for_pytorch
from cnnlab.recipe import (Data, build_model, build_run, checkpoint_extra, load_data, make_loaders,
                           recipe_from_checkpoint, run_device)
from cnnlab.train import Run, evaluate, probe

from .inside_capture import StepRecorder
from .lab_bridge import lab_request
from .session import Session, load_session, save_session
from .shapes import check_layers, fit_problems
from .worker import Refresh, Snapshot, TrainWorker, state_arrays

PROBE_CHOICES = 12  # at most this many validation images (one per class) to pick the probe from


@dataclass
class Training:
    """How much the weights the Predict view uses have learnt."""

    steps: int                    # training steps behind them (0: fresh random weights)
    val_accuracy: float | None    # the last validation accuracy measured, None before an epoch ended


class TrainController(QObject):
    sigStateChanged = Signal(str)
    sigSettings = Signal(object)        # a Session for the settings panel to show (from a checkpoint or file)
    sigDataChanged = Signal(int)        # new data (or a session chose another probe): the probe's index in `samples`
    sigModelReplaced = Signal()         # another model (self.model may be None: `message` says why)
    sigModelChanged = Signal()          # the weights shown moved on (at most a few times a second)
    sigPictures = Signal(object, object)  # step (None before training), probe activations ('output' = logits)
    sigWeights = Signal(object, object)   # parameters and gradients as NumPy arrays
    sigRunStarted = Signal(str, int, int)   # label, parameter count, epochs
    sigRunLoaded = Signal(str, int, object)  # name, parameter count, history (a loaded checkpoint)
    sigEpochs = Signal(int)             # the loaded run now trains to this many epochs
    sigSteps = Signal(object)           # StepMetrics dicts
    sigEpoch = Signal(object)           # EpochMetrics
    sigConfusion = Signal(object, str)  # matrix (None: clear it), title
    sigPaused = Signal(int)             # step
    sigRunEnded = Signal(str, bool)     # status, keep (list it among the finished runs)
    sigRunFinished = Signal(str)        # 'finished', 'stopped', 'diverged' or 'failed'
    sigLive = Signal(str)               # what just happened, in a line
    sigMessage = Signal(str)            # a problem to show ('' clears it)
    sigStepInLab = Signal(dict)         # keyword arguments of ConvLab.load_layer
    _sigDone = Signal(object, object)   # (deliver, future): a job's result back on the GUI thread

    def __init__(self, settings: Callable[[], Session], refresh: Refresh | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings            # reads the settings panel
        self.refresh = refresh or Refresh()
        self.state = "idle"
        self.model: nn.Module | None = None
        self.run: Run | None = None          # the current (or last) run
        self.worker: TrainWorker | None = None
        self.data: Data | None = None        # the recipe's data
        self.samples: list[int] = []         # validation indices the probe is picked from
        self._data_key: tuple | None = None
        self._pending: Run | None = None     # a run loaded from a checkpoint, not yet started
        self.fresh = True                    # self.model has never trained
        self._version = 0                    # bumped whenever the weights shown change
        self.architecture = 0                # bumped whenever another model is built or loaded
        self._state: dict[str, np.ndarray] = {}
        self.state_step = 0
        self._copy: tuple[int, nn.Module] | None = None
        self.probe_image = np.zeros((1, 28, 28), np.float32)
        self.probe_label: int | None = None
        self.probe_index = 0
        self.problem = ""                    # why there is no model (self.model is None)
        self.recorder = StepRecorder(parent=self)  # the optimizer steps the Inside view writes out
        self._sigDone.connect(self._deliver)

    # ------------------------------------------------------------ what the view reads
    @property
    def train_set(self):
        return self.data.train if self.data else None

    @property
    def val_set(self):
        return self.data.val if self.data else None

    @property
    def classes(self) -> list[str]:
        return self.data.classes if self.data else []

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.data.shape if self.data else (1, 28, 28)

    @property
    def loaded(self) -> bool:
        """A checkpoint is loaded and waits for Continue."""
        return self._pending is not None

    def label(self) -> str:
        s = self.settings()
        name = "layers" if s.model == "custom" else s.model
        return f"{name} · {Path(s.data).name} · {s.optimizer} {s.resolved_lr():g}"

    def param_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters()) if self.model is not None else 0

    def is_training(self) -> bool:
        return self.worker is not None

    # ------------------------------------------------------------ preparing a model
    def reload(self, starting: bool = False) -> None:
        """Load the chosen data and build fresh weights for the chosen model (only when idle).
        starting: a run starts on them at once (Start after a run), whose first step sends
        pictures anyway, so the fresh weights are not probed and drawn on the GUI thread first."""
        if self.state != "idle":
            return
        self._pending, self.run = None, None
        self.sigMessage.emit("")
        try:
            self._load_data(self.settings())
            self.model = self._build_model(self.settings())  # the settings again: the data may fill the layers in
        except (ValueError, data.DataError, OSError) as e:
            self.model, self.problem = None, str(e)
            self.architecture += 1  # the other views show why, not the last model
            self.sigMessage.emit(self.problem)
            self.sigModelReplaced.emit()
            self.sigModelChanged.emit()
            return
        self.problem = ""
        self.fresh = True
        if not starting:  # else the run's start clears the curves and the matrix itself
            self.sigRunStarted.emit("", 0, 1)
            self.sigConfusion.emit(None, "")
        self._model_replaced(pictures=not starting)

    def _load_data(self, s: Session) -> None:
        key = (s.data, s.size, s.channels, s.root, s.seed, s.limit, s.holdout, s.normalize, s.augment)
        if self._data_key == key:  # the same data: keep the probe too
            return
        self._data_key, self.data = None, load_data(s.recipe())
        val = self.data.val
        first: dict[int, int] = {}  # the first validation image of each class
        for i in range(min(len(val), 2000)):
            first.setdefault(int(val[i][1]), i)
            if len(first) >= min(len(self.classes), PROBE_CHOICES):
                break
        self.samples = [first[k] for k in sorted(first)]
        self.probe_index = min(s.probe, len(self.samples) - 1)
        self._set_probe_array(*val[self.samples[self.probe_index]])
        self._data_key = key
        self.sigDataChanged.emit(self.probe_index)

    def _build_model(self, s: Session) -> nn.Module:
        if s.model == "custom":
            problems = fit_problems(check_layers(s.layers or [], self.input_shape), len(self.classes))
            if problems:
                raise ValueError("The layer list does not fit the data:\n" + problems)
        return build_model(s.recipe(), self.data)

    def _model_replaced(self, pictures: bool = True) -> None:
        self.architecture += 1
        self._version += 1
        self._state = state_arrays(self.model)
        self.sigModelReplaced.emit()
        if pictures:
            self._show_model_pictures()
        self.sigModelChanged.emit()

    # ------------------------------------------------------------ the probe
    def _set_probe_array(self, image: np.ndarray, label: int | None) -> None:
        self.probe_image = np.asarray(image, np.float32)
        self.probe_label = None if label is None else int(label)

    def set_probe(self, index: int) -> None:
        """Use sample `index` of the picker's row as the probe."""
        self.probe_index = index
        self._set_probe_array(*self.val_set[self.samples[index]])
        self._probe_changed()

    def load_probe_file(self, path: str) -> None:
        c, h, w = self.input_shape
        try:
            image = data.load_image(path, (h, w), c)
        except data.DataError as e:
            self.sigMessage.emit(str(e))
            return
        self._set_probe_array(image, None)
        self._probe_changed()

    def _probe_images(self) -> cnnlab.Tensor:
        return cnnlab.from_numpy(self.probe_image[None].copy())

    def _probe_changed(self) -> None:
        worker = self.worker
        if worker is None:
            self._show_model_pictures()
            return
        images = self._probe_images()

        def swap(run: Run) -> None:  # on the training thread: the forwarder is its own
            worker.forwarder.probe_images = images
            worker.forwarder.pictures_now(run)
        self._on_training_thread(swap, lambda _: None)

    def _model_device(self) -> Any:
        """None for the CPU, else the device the model's weights are on (after a GPU run)."""
        p = next(iter(self.model.parameters()), None)
        return None if p is None or p.device.type == "cpu" else p.device

    def _show_model_pictures(self) -> None:
        """Probe and show the model directly (only while no run trains)."""
        if self.model is None:
            return
        acts = probe(self.model, self._probe_images(), device=self._model_device())
        self.sigPictures.emit(None if self.fresh else self.state_step, acts)
        params = {k: p.detach().cpu().numpy() for k, p in self.model.named_parameters()}  # copies off a GPU
        grads = {k: p.grad.cpu().numpy() for k, p in self.model.named_parameters() if p.grad is not None}
        self.sigWeights.emit(params, grads)

    # ------------------------------------------------------------ work where no step runs
    def _on_training_thread(self, job: Callable[[Any], Any], deliver: Callable[[Any], None]) -> Future:
        """job(run) between two steps on the training thread, then deliver(result) on the GUI
        thread. With no run training, both at once, and job sees the model as an idle run."""
        if self.worker is None:
            future: Future = Future()
            try:
                future.set_result(job(_Idle(self.model, self._model_device(), self.state_step)))
            except Exception as e:  # noqa: BLE001 - delivered as a message
                future.set_exception(e)
            self._deliver(deliver, future)
            return future
        future = self.run.submit(job)
        future.add_done_callback(lambda f: self._sigDone.emit(deliver, f))  # queued: emitted off the GUI thread
        return future

    def _deliver(self, deliver: Callable[[Any], None], future: Future) -> None:
        try:
            result = future.result()
        except (ValueError, RuntimeError, KeyError, data.DataError) as e:
            self.sigMessage.emit(str(e))
            return
        deliver(result)

    # ------------------------------------------------------------ controls
    def start(self) -> None:
        """Start a new run from fresh weights (or continue a loaded checkpoint)."""
        if self.state != "idle" or self.model is None:
            return
        run = self._next_run()
        if run is not None:
            self._launch(run, "running")

    def step(self) -> None:
        """Train on one batch then pause (starting a run first when none is going)."""
        if self.state == "paused":
            self.run.step_once(1)
            self._set_state("pausing")
        else:
            self.train_steps(1)

    def train_steps(self, n: int) -> None:
        """Start a run that pauses after `n` steps (Step, and scripted screenshots)."""
        if self.state == "idle" and self.model is not None:
            run = self._next_run()
            if run is not None:
                run.pause()
                run.step_once(n)
                self._launch(run, "pausing")

    def pause(self) -> None:
        if self.state == "running":
            self.run.pause()
            self._set_state("pausing")

    def resume(self) -> None:
        if self.state in ("paused", "pausing"):
            self.run.resume()
            self._set_state("running")

    def stop(self) -> None:
        if self.state in ("running", "pausing", "paused"):
            self.run.stop()
            self._set_state("stopping")

    def reset(self) -> None:
        """Stop and forget the current run, then fresh weights (finished runs stay listed)."""
        self.shutdown(keep=False)
        self.reload()
        if self.model is not None:  # the status line must not still describe the run thrown away
            self.sigLive.emit(f"reset: fresh weights for {self.label()} ({self.param_count():,} parameters); "
                              f"press Start or Step")

    def set_lr(self, lr: float) -> None:
        if self.run is not None and self.worker is not None:
            self.run.set_lr(lr)

    def shutdown(self, keep: bool = True) -> Run | None:
        """Stop the worker between steps and join its thread; the run is listed unless keep=False."""
        worker = self.worker
        if worker is None:
            return self.run
        worker.shutdown()
        self._finish(worker.status, keep)
        return self.run

    def _next_run(self) -> Run | None:
        s = self.settings()
        try:
            s.check()
        except ValueError as e:
            self.sigMessage.emit(str(e))
            return None
        if self._pending is not None:  # continue the loaded checkpoint for `epochs` more epochs
            run, self._pending = self._pending, None
            run.epochs = run.epoch + s.epochs
            if run.scheduler is None:  # a schedule sets the rate itself at every step
                run.set_lr(s.resolved_lr())
            self.sigEpochs.emit(run.epochs)
            return run
        if not self.fresh:
            self.reload(starting=True)
            if self.model is None:
                return None
        cnnlab.manual_seed(s.seed)  # dropout draws the same masks run after run
        run = build_run(s.recipe(), self.data, self.model)
        self.sigRunStarted.emit(self.label(), self.param_count(), s.epochs)
        self.sigConfusion.emit(None, "")
        return run

    def _launch(self, run: Run, state: str) -> None:
        self.run, self.model = run, run.model
        self.fresh = False
        self.state_step = run.step  # self._state holds these weights already (reload or load_checkpoint)
        w = TrainWorker(run, self._probe_images(), (), self.refresh, parent=self)
        for signal, slot in ((w.sigSteps, self._on_steps), (w.sigEpoch, self._on_epoch), (w.sigProbe, self._on_probe),
                             (w.sigSnapshot, self._on_snapshot), (w.sigPaused, self._on_paused),
                             (w.sigFailed, self._on_failed), (w.sigFinished, self._on_finished)):
            signal.connect(slot)
        self.worker = w
        self.recorder.interval = self.refresh.pictures
        self.recorder.attach(run)  # before the thread starts: no step can run meanwhile
        self.sigMessage.emit("")
        self._set_state(state)
        w.start()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.sigStateChanged.emit(state)

    # ------------------------------------------------------------ worker events
    def _mine(self) -> bool:
        return self.worker is not None and self.sender() is self.worker

    def _on_steps(self, steps: list[dict[str, Any]]) -> None:
        if self._mine():
            self.sigSteps.emit(steps)

    def _on_epoch(self, m) -> None:
        if not self._mine():
            return
        self.sigEpoch.emit(m)
        if m.confusion is not None:
            self.sigConfusion.emit(m.confusion, f"epoch {m.epoch} · val acc {m.val_accuracy:.1%}")

    def _on_probe(self, step: int, acts: dict[str, np.ndarray]) -> None:
        if self._mine():
            self.sigPictures.emit(step, acts)

    def _on_snapshot(self, snap: Snapshot) -> None:
        if not self._mine():
            return
        self.sigWeights.emit(snap.params, snap.grads)
        self._state, self.state_step = snap.state, snap.step
        self._version += 1
        self.sigModelChanged.emit()

    def _on_paused(self, step: int) -> None:
        if self._mine() and self.state in ("pausing", "running") and self.run.paused:
            self._set_state("paused")
            self.sigPaused.emit(step)

    def _on_failed(self, text: str) -> None:
        if self._mine():
            self.sigMessage.emit(text)

    def _on_finished(self, status: str) -> None:
        if self._mine():
            self._finish(status)

    def _finish(self, status: str, keep: bool = True) -> None:
        worker, self.worker = self.worker, None
        worker.wait()
        worker.deleteLater()
        self.recorder.detach(self.run)
        self.sigRunEnded.emit(status, keep)
        self._set_state("idle")
        self.sigLive.emit(f"{status} after {self.run.step} steps ({self.run.epoch} epochs, "
                          f"{self.run.elapsed:.1f} s of training)")
        self._version += 1
        self.state_step = self.run.step
        self.sigRunFinished.emit(status)
        self.sigModelChanged.emit()

    # ------------------------------------------------------------ the model for other views
    def model_copy(self) -> nn.Module | None:
        """A copy of the current model with its latest weights (eval mode), safe to use in the
        GUI thread whatever the worker does. Cached until the weights change."""
        if self.model is None:
            return None
        if self._copy is not None and self._copy[0] == self._version:
            return self._copy[1]
        state = self._state if self.worker is not None else state_arrays(self.model)
        m = models.from_description(models.describe(self.model))
        m.load_state_dict(state)
        m.eval()
        self._copy = (self._version, m)
        return m

    def predictor(self) -> tuple[nn.Module, tuple[int, ...], list[str], Training] | None:
        """(model copy, input shape, class names, how trained it is) for the Predict view."""
        m = self.model_copy()
        if m is None:
            return None
        run = self.run or self._pending
        epochs = run.history.epochs if run is not None and not self.fresh else []
        measured = [e["val_accuracy"] for e in epochs if e.get("val_accuracy") is not None]
        steps = 0 if self.fresh else self.state_step
        return m, self.input_shape, self.classes, Training(steps, measured[-1] if measured else None)

    def step_in_lab(self, layer: str, index: int, channel: int | None = None) -> Future | None:
        """Send sigStepInLab with filter `index` of conv layer `layer` and its real input for the
        probe image: all input channels when `channel` is None (and there are at most three)."""
        if self.model is None:
            return None
        image, fresh = self.probe_image.copy(), self.fresh

        def job(run) -> dict[str, Any]:
            when = "before training" if fresh else f"step {run.step}"
            return lab_request(run.model, layer, index, image, channel, run.device, when)
        return self._on_training_thread(job, self.sigStepInLab.emit)

    # ------------------------------------------------------------ evaluation and files
    def evaluate_now(self) -> Future | None:
        """The confusion matrix of the model as it is now (idle or paused), sent by sigConfusion."""
        if self.state not in ("idle", "paused") or self.model is None:
            return None
        loader, classes = data.DataLoader(self.val_set, 500), self.classes

        def job(run) -> tuple[np.ndarray, str]:
            r = evaluate(run.model, loader, device=run.device, num_classes=len(classes))
            return r.confusion, f"step {run.step} · val acc {r.accuracy:.1%}"
        return self._on_training_thread(job, lambda result: self.sigConfusion.emit(*result))

    def save_checkpoint(self, path: str | Path) -> None:
        """Save the run (idle or paused only: no step may run meanwhile)."""
        if self.state not in ("idle", "paused"):
            raise RuntimeError("pause the run before saving a checkpoint")
        run = self.run or self._pending
        recipe = self.settings().recipe()
        if run is None:  # a model that has not trained yet
            run = build_run(recipe, self.data, self.model)
        save_checkpoint(path, run, checkpoint_extra(recipe, self.data))

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a checkpoint: its model, weights, history and settings; Start continues it."""
        if self.state != "idle":
            raise RuntimeError("stop the run before loading a checkpoint")
        ckpt = load_checkpoint(path)
        try:
            run, s = self._resume(path, ckpt)
        except Exception:
            self.reload()  # back to a consistent state: the chosen settings, fresh weights
            raise
        self._pending, self.run, self.model = run, None, run.model
        self.fresh = False
        self.state_step = run.step
        self.sigRunLoaded.emit(f"{Path(path).name} · {s.model}", self.param_count(), ckpt["history"])
        self.sigConfusion.emit(None, "")
        self._model_replaced()
        self.sigLive.emit(f"loaded {Path(path).name}: {run.epoch} epochs, {run.step} steps done; "
                          f"Continue trains {s.epochs} more epoch(s)")

    def _resume(self, path: str | Path, ckpt: dict[str, Any]) -> tuple[Run, Session]:
        current = self.settings()
        recipe = recipe_from_checkpoint(ckpt, current.recipe())
        s = Session(**vars(recipe), probe=current.probe)
        if not ckpt.get("extra", {}).get("recipe"):  # from before the recipe: the rate it stopped at
            s.lr = float(ckpt["optimizer"]["state"]["param_groups"][0]["lr"])
        self.sigSettings.emit(s)
        self._load_data(s)
        check_fits(ckpt, self.input_shape, len(self.classes), str(path))
        train_loader, val_loader = make_loaders(recipe, self.data)
        run = resume(path, train_loader, int(ckpt["epoch"]) + s.epochs, val_loader, device=run_device(recipe))
        return run, s

    def export(self, folder: str | Path) -> list[Path]:
        """model.py + weights.npz (+ weights.pt with PyTorch) of the current model."""
        files = export_for_pytorch(folder, self.model_copy(), class_name="Net")
        missing = [f.name for f in files if not (f.is_file() and f.stat().st_size > 0)]
        if not files or missing:  # never report a success that did not happen
            raise OSError(f"the export to {folder} wrote {'nothing' if not files else 'empty ' + ', '.join(missing)}")
        self.sigLive.emit("exported " + ", ".join(f.name for f in files) + f" to {folder}")
        return files

    def save_session(self, path: str | Path) -> None:
        s = self.settings()
        s.probe = self.probe_index
        save_session(path, s)

    def open_session(self, path: str | Path) -> None:
        if self.state != "idle":
            raise RuntimeError("stop the run before opening a session")
        s = load_session(path)
        self.sigSettings.emit(s)
        self.reload()
        if self.samples:
            self.set_probe(min(s.probe, len(self.samples) - 1))
            self.sigDataChanged.emit(self.probe_index)


class _Idle:
    """What a job sees instead of a Run when none trains: the model, its device and step."""

    def __init__(self, model: nn.Module, device: Any, step: int) -> None:
        self.model, self.device, self.step = model, device, step
