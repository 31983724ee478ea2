"""Helpers shared by the sub-commands: datasets, models and checkpoints from user input."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..cli import UsageError


def dataset(name: str, train: bool, size: int = 28, channels: int = 1, seed: int = 0, root: str | None = None):
    from .. import data

    try:
        return data.get_dataset(name, train=train, size=size, channels=channels, seed=seed, root=root)
    except ValueError as e:
        raise UsageError(str(e)) from e
    except data.DataError as e:
        raise UsageError(str(e)) from e


def input_spec(ds) -> tuple[int, int, int]:
    image, _ = ds[0]
    shape = tuple(int(s) for s in getattr(image, "shape", ()))
    if len(shape) != 3:
        raise UsageError(f"the dataset's images have shape {shape}, expected (channels, height, width)")
    return shape  # type: ignore[return-value]


def model_kwargs(pairs: list[str]) -> dict[str, Any]:
    """--model-arg width=64 dropout=0.1 -> {'width': 64, 'dropout': 0.1}."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--model-arg expects KEY=VALUE, got {pair!r}")
        for conv in (int, float):
            try:
                out[key] = conv(value)
                break
            except ValueError:
                continue
        else:
            out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out


def build_model(name: str, shape: tuple[int, int, int], num_classes: int, extra: dict[str, Any]):
    from .. import models

    c, h, w = shape
    if h != w:
        raise UsageError(f"the zoo models expect square images, the data has {h}x{w}")
    try:
        return models.create(name, in_channels=c, num_classes=num_classes, input_size=h, **extra)
    except ValueError as e:
        raise UsageError(str(e)) from e


def checkpoint_file(path: str) -> Path:
    """The checkpoint file a user named: the file itself or RUN_FOLDER/checkpoint.npz."""
    p = Path(path)
    return p / "checkpoint.npz" if p.is_dir() else p


def checkpoint(path: str) -> dict[str, Any]:
    from ..train import load_checkpoint

    if not Path(path).exists():
        raise UsageError(f"no such checkpoint: {path}")
    if Path(path).is_dir():
        candidate = Path(path) / "checkpoint.npz"
        if not candidate.exists():
            raise UsageError(f"{path} is a folder without checkpoint.npz")
        path = str(candidate)
    try:
        return load_checkpoint(path)
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from e


def model_from(ckpt: dict[str, Any], path: str):
    from ..train import model_from_checkpoint

    try:
        return model_from_checkpoint(ckpt)
    except ValueError as e:
        raise UsageError(f"{path}: {e}") from e


def check_fits(ckpt: dict[str, Any], shape, num_classes: int, where: str) -> None:
    info = ckpt.get("extra", {})
    want = tuple(info.get("input_shape", ()))
    if want and tuple(shape) != want:
        raise UsageError(f"{where} was trained on images of shape {list(want)}, the data has {list(shape)}")
    classes = info.get("classes")
    if classes is not None and len(classes) != num_classes:
        raise UsageError(f"{where} was trained on {len(classes)} classes, the data has {num_classes}")


def default_out(model: str, data: str) -> str:
    import time

    stem = Path(data).name if os.sep in data or Path(data).is_dir() else data
    return str(Path("runs") / f"{model}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
