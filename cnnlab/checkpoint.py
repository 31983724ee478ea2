"""Training checkpoints: a run's model description, weights, optimizer and schedule state,
counters, history, random state and the caller's extra facts, in one file that
`cnnlab.load` reads without pickle.

>>> save_checkpoint("runs/first/checkpoint.npz", run, extra)
>>> model = model_from_checkpoint(open_checkpoint("runs/first"))   # a file or a run folder
>>> run = resume("runs/first/checkpoint.npz", train_loader, epochs=4, val_loader=val_loader)

A run folder is saved whole by `save_run` (checkpoint.npz, metrics.json, steps.csv,
epochs.csv), each file written to a temporary beside it and renamed into place, with
SIGINT and SIGTERM held back until the files are in place: whatever stops the process,
the folder holds either the previous save or the new one. `Autosave` does that after
every epoch and every few minutes within one.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from .optim import lr_scheduler
from . import models as zoo
from . import nn, optim
from .serialization import load, save, write_atomically
from .tensor import get_rng_state, set_rng_state
from .train import Callback, History, Run

CHECKPOINT_FORMAT = "cnnlab-checkpoint"
RUN_FILES = ("checkpoint.npz", "metrics.json", "steps.csv", "epochs.csv", "config.json")
# tests set this to hold a save open (seconds, after the data is written, before the rename)
# so that a signal can be sent while it is under way
_SAVE_DELAY = "CNNLAB_TEST_SAVE_DELAY"
_OPTIMIZERS = {name: getattr(optim, name) for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta")}


def save_checkpoint(path: str | os.PathLike, run: Run, extra: dict[str, Any] | None = None) -> None:
    """Model description + weights + optimizer state + counters + history (+ extra), atomically."""
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model": zoo.describe(run.model),
        "state_dict": run.model.state_dict(),
        "optimizer": {"type": type(run.optimizer).__name__, "state": run.optimizer.state_dict()},
        "scheduler": None if run.scheduler is None else {
            "type": type(run.scheduler).__name__, "kwargs": run.scheduler.config(),
            "state": run.scheduler.state_dict(), "interval": run.scheduler_interval},
        "epoch": run.epoch,
        "step": run.step,
        "batch_in_epoch": run.batch_in_epoch,
        "elapsed": run.elapsed,
        "epoch_sums": dict(run.epoch_sums),
        "history": run.history.to_dict(),
        "rng": get_rng_state(),
        "extra": extra or {},
    }

    def write(fh) -> None:
        save(ckpt, fh)
        delay = float(os.environ.get(_SAVE_DELAY) or 0)
        if delay > 0:
            fh.flush()
            time.sleep(delay)

    with signals_held():
        write_atomically(path, write)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block is done, then deliver them to the
    handlers in place before: a save is never cut between its write and its rename.
    (Python runs signal handlers in the main thread only, so elsewhere there is nothing to hold.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    kinds = [signal.SIGINT, signal.SIGTERM]
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in kinds}
    try:
        yield
    finally:
        for sig, handler in previous.items():   # None: a handler set outside Python, not restorable
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in caught:
            signal.raise_signal(sig)


def remove_temporaries(folder: str | os.PathLike, older_than: float = 0.0) -> list[Path]:
    """Delete the temporaries an interrupted save left in a run folder (a SIGKILL or a power
    cut gives no chance to clean up); only those untouched for `older_than` seconds."""
    removed = []
    now = time.time()
    for name in RUN_FILES:
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            try:
                if now - tmp.stat().st_mtime >= older_than:
                    tmp.unlink()
                    removed.append(tmp)
            except FileNotFoundError:   # its writer finished meanwhile
                pass
    return removed


class SaveError(RuntimeError):
    """A run could not be saved (disk full, read-only folder...); the files saved before are kept."""


def save_run(folder: str | os.PathLike, run: Run, extra: dict[str, Any] | None = None) -> Path:
    """The run's checkpoint and metrics into `folder`, each file atomically, with signals
    held back until all are in place; returns the checkpoint's path. A failure to write
    (SaveError, one line) leaves the previous files as they were."""
    folder = Path(folder)
    with signals_held():
        try:
            remove_temporaries(folder, older_than=60.0)   # a running save keeps touching its own
            save_checkpoint(folder / "checkpoint.npz", run, extra)
            run.history.write(folder)
        except OSError as e:
            kept = "the files saved before are kept" if (folder / "checkpoint.npz").exists() else "nothing was saved"
            raise SaveError(f"cannot save the run in {folder}: {e.strerror or e}; {kept}") from e
    return folder / "checkpoint.npz"


class Autosave(Callback):
    """Save the run with `save_run` after every epoch, and within an epoch once `every`
    seconds have passed since the last save (0: after every step); not while the loss lies
    far beyond its start (see cnnlab.divergence). `saved` is the (epoch, step) of the last save."""

    def __init__(self, folder: str | os.PathLike, extra: dict[str, Any] | None = None, every: float = 300.0):
        self.folder, self.extra, self.every = Path(folder), extra, float(every)
        self.saved: tuple[int, int] | None = None
        self._last = time.monotonic()

    def save(self, run: Run) -> None:
        save_run(self.folder, run, self.extra)
        self.saved = (run.epoch, run.step)
        self._last = time.monotonic()

    def on_step_end(self, run: Run, m: Any) -> None:
        # the epoch's last step is saved by on_epoch_end, after validation
        if m.batch < m.batches and time.monotonic() - self._last >= self.every and not run.runaway.high:
            self.save(run)

    def on_epoch_end(self, run: Run, m: Any) -> None:
        if not run.runaway.high:   # a loss running away: keep the last save from before it
            self.save(run)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint; a file that is not one (or is damaged) raises ValueError naming it."""
    ckpt = load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a cnnlab training checkpoint (it may be a bare state_dict: "
                         f"load it with cnnlab.load and model.load_state_dict)")
    from .checkpoint_check import validate_checkpoint   # imports checkpoint: hence here
    return validate_checkpoint(ckpt, path)


def checkpoint_file(path: str | os.PathLike) -> Path:
    """The checkpoint file a user named: the file itself or RUN_FOLDER/checkpoint.npz."""
    p = Path(path)
    return p / "checkpoint.npz" if p.is_dir() else p


def open_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read the checkpoint a user named (a file or a run folder); ValueError says what is wrong."""
    if not Path(path).exists():
        raise ValueError(f"no such checkpoint: {path}")
    if Path(path).is_dir() and not checkpoint_file(path).exists():
        raise ValueError(f"{path} is a folder without checkpoint.npz")
    try:
        return load_checkpoint(checkpoint_file(path))
    except OSError as e:
        raise ValueError(str(e)) from e


def check_fits(ckpt: dict[str, Any], shape: Sequence[int], num_classes: int, where: str) -> None:
    """ValueError when the data's image shape or class count differ from the run's."""
    info = ckpt.get("extra", {})
    want = tuple(info.get("input_shape", ()))
    if want and tuple(shape) != want:
        raise ValueError(f"{where} was trained on images of shape {list(want)}, the data has {list(shape)}")
    classes = info.get("classes")
    if classes is not None and len(classes) != num_classes:
        raise ValueError(f"{where} was trained on {len(classes)} classes, the data has {num_classes}")


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """The checkpoint's model with its weights. A checkpoint from before normalisation was
    a layer (its statistics only in extra["normalize"]) gets that layer added in front, so
    the model sees what it learned on whoever feeds it."""
    desc, state = ckpt["model"], dict(ckpt["state_dict"])
    stats = ckpt.get("extra", {}).get("normalize")
    prefix = None
    if stats and not _normalizes(desc):
        desc, state, prefix = _with_normalize(desc, state, stats)
    model = zoo.from_description(desc)
    if prefix is not None:   # the statistics' own entries come from the layer just built
        state.update({k: v for k, v in model.state_dict().items() if k.startswith(prefix)})
    model.load_state_dict(state)
    return model


def _normalizes(desc: dict[str, Any]) -> bool:
    if desc["name"] == "sequential":
        layers = desc.get("layers") or []
        return bool(layers) and layers[0].get("type") == "Normalize"
    return bool(desc.get("kwargs", {}).get("normalize"))


def _with_normalize(desc: dict[str, Any], state: dict[str, Any], stats: dict[str, list[float]]):
    """(description, state dict, the new layer's key prefix) with a first Normalize layer."""
    if desc["name"] != "sequential":
        return {**desc, "kwargs": {**desc.get("kwargs", {}), "normalize": stats}}, state, "normalize."
    layer = {"type": "Normalize", "args": {"mean": list(stats["mean"]), "std": list(stats["std"])}}
    shifted = {}
    for key, value in state.items():   # layer i becomes layer i + 1
        index, _, rest = key.partition(".")
        shifted[f"{int(index) + 1}.{rest}"] = value
    return {**desc, "layers": [layer, *desc["layers"]]}, shifted, "0."


def resume(path: str | os.PathLike, train_loader: Any, epochs: int, val_loader: Any = None,
           callbacks: Sequence[Callback] = (), device: Any = None, loss_fn: nn.Module | None = None,
           model: nn.Module | None = None) -> Run:
    """A Run restored from a checkpoint: same weights, optimizer state, counters, history and
    random state, so `run.run()` continues as if never interrupted (same loader seed needed)."""
    ckpt = load_checkpoint(path)
    if model is None:
        model = model_from_checkpoint(ckpt)
    else:
        try:
            model.load_state_dict(ckpt["state_dict"])
        except ValueError as e:
            raise ValueError(f"{path}: checkpoint of another architecture: {e}") from e
    kind = ckpt["optimizer"]["type"]
    if kind not in _OPTIMIZERS:
        raise ValueError(f"{path}: unknown optimizer {kind!r}")
    opt = _OPTIMIZERS[kind](model.parameters())
    opt.load_state_dict(ckpt["optimizer"]["state"])
    sched, interval = None, "epoch"
    if ckpt.get("scheduler"):
        info = ckpt["scheduler"]
        sched = getattr(lr_scheduler, info["type"])(opt, **info["kwargs"])
        sched.load_state_dict(info["state"])
        interval = info.get("interval", "epoch")
    run = Run(model, train_loader, opt, loss_fn, epochs, val_loader, callbacks, device, sched, interval)
    run.epoch, run.step = int(ckpt["epoch"]), int(ckpt["step"])
    run.batch_in_epoch, run.elapsed = int(ckpt["batch_in_epoch"]), float(ckpt["elapsed"])
    sums = ckpt.get("epoch_sums")   # older checkpoints did not keep them
    if isinstance(sums, dict) and run.batch_in_epoch:
        run.epoch_sums.update({k: float(v) for k, v in sums.items() if k in run.epoch_sums})
    run.history = History.from_dict(ckpt["history"])
    set_rng_state(ckpt["rng"])
    return run
