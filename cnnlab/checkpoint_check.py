"""Is a loaded training checkpoint whole? `validate_checkpoint` checks every section that
resuming, evaluating, predicting and exporting read, then rebuilds the model, optimizer and
schedule on the side, so a damaged or foreign file is refused when it is opened, with one
line naming it (CheckpointError), instead of a KeyError later or a crash mid-training.

>>> ckpt = validate_checkpoint(load("runs/first/checkpoint.npz"), "runs/first/checkpoint.npz")
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from . import nn
from .creation import zeros
from .optim import lr_scheduler
from .random import generator
from .serialization import CheckpointError
from .tensor import Tensor

_COUNTERS = ("epoch", "step", "batch_in_epoch")
# what the CLI and the app read from "extra", with the types they rely on
_EXTRA_TYPES: dict[str, tuple[type, ...]] = {
    "data": (str,), "seed": (int,), "batch_size": (int,), "channels": (int,), "limit": (int, type(None)),
    "size": (int, list, tuple), "augment": (bool,), "recipe": (dict, type(None)),
}
# a rebuild may fail in any of these ways on a file that was changed after it was written
_REBUILD_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
                   ZeroDivisionError, MemoryError, RecursionError)


class _Wrong(Exception):
    """What is wrong with a checkpoint, before the caller adds the file's name."""


def validate_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """`ckpt` unchanged when everything in it holds together; CheckpointError naming `path`
    and the first thing wrong otherwise. Keys it does not know are left alone."""
    try:
        _check_model(ckpt)
        _check_optimizer(ckpt)
        _check_scheduler(ckpt)
        _check_counters(ckpt)
        _check_history_and_extra(ckpt)
        _rebuild(ckpt)
    except _Wrong as e:
        raise CheckpointError(f"{path} is a damaged checkpoint: {e}") from None
    return ckpt


def _section(owner: dict[str, Any], key: str, kinds: type | tuple[type, ...], where: str = "") -> Any:
    if key not in owner:
        raise _Wrong(f"{where}{key!r} is missing")
    value = owner[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise _Wrong(f"{where}{key!r} is {type(value).__name__}, not {_names(kinds)}")
    return value


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _names(kinds: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _tuple(kinds))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _check_model(ckpt: dict[str, Any]) -> None:
    desc = _section(ckpt, "model", dict)
    name = _section(desc, "name", str, "the model's ")
    if name == "sequential":
        for i, layer in enumerate(_section(desc, "layers", list, "the model's ")):
            if not isinstance(layer, dict):
                raise _Wrong(f"layer {i} of the model is a {type(layer).__name__}, not a dict")
            _section(layer, "type", str, f"layer {i}'s ")
            if "args" in layer:
                _section(layer, "args", dict, f"layer {i}'s ")
    elif "kwargs" in desc:
        _section(desc, "kwargs", dict, "the model's ")
    for key, value in _section(ckpt, "state_dict", dict).items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise _Wrong(f"the state_dict entry {key!r} is not a named tensor")


def _check_optimizer(ckpt: dict[str, Any]) -> None:
    from .checkpoint import _OPTIMIZERS

    opt = _section(ckpt, "optimizer", dict)
    kind = _section(opt, "type", str, "the optimizer's ")
    if kind not in _OPTIMIZERS:
        raise _Wrong(f"unknown optimizer {kind!r}")
    state = _section(opt, "state", dict, "the optimizer's ")
    for i, group in enumerate(_section(state, "param_groups", list, "the optimizer's ")):
        if not isinstance(group, dict):
            raise _Wrong(f"the optimizer's parameter group {i} is a {type(group).__name__}, not a dict")
        params = _section(group, "params", list, f"the optimizer's parameter group {i}: ")
        if not all(_is_count(p) for p in params):
            raise _Wrong(f"the optimizer's parameter group {i} lists parameters that are not indices")
    for key, values in _section(state, "state", dict, "the optimizer's ").items():
        if not _is_count(key) or not isinstance(values, dict):
            raise _Wrong(f"the optimizer's state for parameter {key!r} is not a dict keyed by a parameter index")
        for name, value in values.items():
            if not (value is None or _is_number(value) or isinstance(value, (Tensor, np.ndarray))):
                raise _Wrong(f"the optimizer's {name!r} of parameter {key} is a {type(value).__name__}")


def _check_scheduler(ckpt: dict[str, Any]) -> None:
    sched = ckpt.get("scheduler")
    if sched is None:
        return
    if not isinstance(sched, dict):
        raise _Wrong(f"'scheduler' is a {type(sched).__name__}, not a dict")
    kind = _section(sched, "type", str, "the scheduler's ")
    cls = getattr(lr_scheduler, kind, None) if kind in lr_scheduler.__all__ else None
    if not (isinstance(cls, type) and issubclass(cls, lr_scheduler.LRScheduler)):
        raise _Wrong(f"unknown scheduler {kind!r}")
    _section(sched, "kwargs", dict, "the scheduler's ")
    _section(sched, "state", dict, "the scheduler's ")
    if sched.get("interval", "epoch") not in ("epoch", "step"):
        raise _Wrong(f"the scheduler's interval {sched['interval']!r} is neither 'epoch' nor 'step'")


def _check_counters(ckpt: dict[str, Any]) -> None:
    for key in _COUNTERS:
        if _section(ckpt, key, int) < 0:
            raise _Wrong(f"{key!r} is negative ({ckpt[key]})")
    elapsed = _section(ckpt, "elapsed", (int, float))
    if not 0 <= elapsed < math.inf:
        raise _Wrong(f"'elapsed' is {elapsed}, not a time in seconds")
    sums = ckpt.get("epoch_sums", {})
    if not isinstance(sums, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in sums.items()):
        raise _Wrong("'epoch_sums' is not a dict of numbers")


def _check_history_and_extra(ckpt: dict[str, Any]) -> None:
    history = _section(ckpt, "history", dict)
    for part in ("steps", "epochs"):
        rows = history.get(part, [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) and all(isinstance(k, str) for k in r)
                                                 for r in rows):
            raise _Wrong(f"the history's {part!r} is not a list of named values")
    _section(ckpt, "rng", dict)
    extra = _section(ckpt, "extra", dict)
    for key, kinds in _EXTRA_TYPES.items():
        if key in extra:
            _section(extra, key, kinds, "extra: ")
    shape = extra.get("input_shape")
    if shape is not None and not (isinstance(shape, (list, tuple)) and len(shape) == 3
                                  and all(_is_count(n, 1) for n in shape)):
        raise _Wrong(f"extra: the input shape {shape!r} is not [channels, height, width]")
    classes = extra.get("classes")
    if classes is not None and not (isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes)):
        raise _Wrong("extra: 'classes' is not a list of class names")
    stats = extra.get("normalize")
    if stats is not None and not (isinstance(stats, dict) and all(
            isinstance(stats.get(k), list) and stats[k] and all(_is_number(v) and math.isfinite(v) for v in stats[k])
            for k in ("mean", "std"))):
        raise _Wrong("extra: 'normalize' is not {'mean': [...], 'std': [...]} of numbers")


def _rebuild(ckpt: dict[str, Any]) -> None:
    """What `model_from_checkpoint` and `resume` do, on throwaway objects."""
    from .checkpoint import model_from_checkpoint

    step = "the model"
    try:
        model = model_from_checkpoint(ckpt)
        step = "the optimizer state"
        opt = _rebuild_optimizer(ckpt["optimizer"], list(model.parameters()))
        info = ckpt.get("scheduler")
        if info:
            step = "the learning-rate schedule"
            sched = getattr(lr_scheduler, info["type"])(opt, **info["kwargs"])
            _same_kind(info["state"], sched.state_dict(), "its state")
            sched.load_state_dict(info["state"])
        step = "the random generator state"
        type(generator().bit_generator)().state = ckpt["rng"]
    except _Wrong as e:
        raise _Wrong(f"{step}: {e}") from None
    except _REBUILD_ERRORS as e:
        text = " ".join(str(e).split()) or type(e).__name__
        raise _Wrong(f"{step} cannot be restored: {text[:300]}") from None


def _rebuild_optimizer(info: dict[str, Any], params: list[nn.Parameter]) -> Any:
    """The saved optimizer, on the model's parameters where `resume` would put it there (one
    group over all of them), so each state's shape is checked; otherwise (a script's optimizer
    over some of the parameters, a model without any) on stand-ins, which checks the rest."""
    from .checkpoint import _OPTIMIZERS

    kind, state = _OPTIMIZERS[info["type"]], info["state"]
    groups = state["param_groups"]
    if not groups:
        raise _Wrong("it has no parameter groups")
    owned = [index for group in groups for index in group["params"]]
    if len(groups) == 1 and params and len(owned) == len(params):
        opt = kind(params)
    else:
        opt = kind([{"params": [nn.Parameter(zeros(1)) for _ in group["params"]] or [nn.Parameter(zeros(1))]}
                    for group in groups])
        if any(index >= len(owned) for index in state["state"]):
            raise _Wrong("it holds state for a parameter it does not list")
        state = {**state, "state": {}}   # the stand-ins' shapes say nothing about the saved ones
    _same_kind(state["param_groups"], opt.state_dict()["param_groups"][:1], "a group")
    opt.load_state_dict(state)
    return opt


def _same_kind(saved: Any, fresh: Any, where: str) -> None:
    """`saved` holds values of the kinds a freshly made object holds (numbers where numbers
    belong, lists where lists ...), so nothing fails later when training uses them."""
    if saved is None or fresh is None:
        return
    if isinstance(fresh, bool):
        ok = isinstance(saved, bool)
    elif _is_number(fresh):
        ok = _is_number(saved)
    elif isinstance(fresh, str):
        ok = isinstance(saved, str)
    elif isinstance(fresh, (list, tuple)):
        ok = isinstance(saved, (list, tuple))
        for item in saved if ok and fresh else ():
            _same_kind(item, fresh[0], where)
    elif isinstance(fresh, dict):
        ok = isinstance(saved, dict)
        for key in set(saved) & set(fresh) if ok else ():
            _same_kind(saved[key], fresh[key], f"{where} {key!r}")
    else:
        return
    if not ok:
        raise _Wrong(f"{where} holds a {type(saved).__name__} where a {type(fresh).__name__} belongs")
