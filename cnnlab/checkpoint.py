"""Training checkpoints: a run's model description, weights, optimizer and schedule state,
counters, history, random state and the caller's extra facts, in one file that
`cnnlab.load` reads without pickle.

>>> save_checkpoint("runs/first/checkpoint.npz", run, extra)
>>> model = model_from_checkpoint(open_checkpoint("runs/first"))   # a file or a run folder
>>> run = resume("runs/first/checkpoint.npz", train_loader, epochs=4, val_loader=val_loader)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from . import lr_scheduler
from . import models as zoo
from . import nn, optim
from .serialization import load, save
from .tensor import get_rng_state, set_rng_state
from .train import Callback, History, Run

CHECKPOINT_FORMAT = "cnnlab-checkpoint"
_OPTIMIZERS = {"SGD": optim.SGD, "Adam": optim.Adam, "AdamW": optim.AdamW}


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
        "history": run.history.to_dict(),
        "rng": get_rng_state(),
        "extra": extra or {},
    }
    save(ckpt, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint; a file that is not one (or is damaged) raises ValueError naming it."""
    ckpt = load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a cnnlab training checkpoint (it may be a bare state_dict: "
                         f"load it with cnnlab.load and model.load_state_dict)")
    return ckpt


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
    run.history = History.from_dict(ckpt["history"])
    set_rng_state(ckpt["rng"])
    return run
