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


# ----------------------------------------------------------------- input recipes
def channel_stats(ds) -> dict[str, list[float]]:
    """Per-channel mean and std of a dataset's images (0..1 pixels), in one float64 pass."""
    import numpy as np

    from ..data import DataLoader

    total = total_sq = None
    count = 0
    for x, _ in DataLoader(ds, batch_size=1000):
        a = x.numpy().astype(np.float64)
        s1, s2 = a.sum(axis=(0, 2, 3)), (a * a).sum(axis=(0, 2, 3))
        total, total_sq = (s1, s2) if total is None else (total + s1, total_sq + s2)
        count += a.shape[0] * a.shape[2] * a.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return {"mean": [float(m) for m in mean], "std": [float(max(s, 1e-6)) for s in std]}


def normalization(stats: dict[str, list[float]] | None):
    """The Normalize for `cnnlab train --normalize` statistics (a checkpoint's
    extra["normalize"]), or None when the run trained on plain pixels."""
    if not stats:
        return None
    from ..data.transforms import Normalize

    return Normalize(stats["mean"], stats["std"])


def augmentation(shape) -> list:
    """`cnnlab train --augment`: shifts of up to 1/14 of the side for one-channel images
    (digits: flipping would change them), padded random crops and flips for colour ones."""
    from ..data.transforms import RandomCrop, RandomHorizontalFlip, RandomShift

    c, h, _ = shape
    if c == 1:
        return [RandomShift(max(1, h // 14))]
    return [RandomCrop(h, padding=max(1, h // 8)), RandomHorizontalFlip()]


def set_transform(ds, transforms: list) -> None:
    """Give a dataset (or the dataset under a Subset) these transforms, in order."""
    from ..data import Subset
    from ..data.transforms import Compose

    target = ds.dataset if isinstance(ds, Subset) else ds
    target.transform = Compose(transforms) if transforms else None
