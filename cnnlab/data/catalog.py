"""Datasets by name, as the `cnnlab` command and the app ask for them.

>>> train = get_dataset("shapes", train=True)
>>> [info.name for info in available() if info.ready][:3]
['mnist-sample', 'shapes', 'shapes-rgb']
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .cifar import CIFAR10
from .dataset import Dataset, random_split
from .download import cache_dir
from .folder import ImageFolder
from .mnist import MNIST, SAMPLE_DIR, FashionMNIST, mnist_sample
from .shapes import shapes

DESCRIPTIONS = {
    "mnist-sample": "14,000 real MNIST digits shipped with cnnlab (12,000 train / 2,000 val)",
    "shapes": "ten drawn shapes, 28x28 grey, generated from a seed (10,000 / 2,000)",
    "shapes-rgb": "the same shapes in random colours, 32x32 RGB (10,000 / 2,000)",
    "mnist": "MNIST handwritten digits, 28x28 grey (60,000 train / 10,000 test)",
    "fashion-mnist": "Zalando's clothes pictures, 28x28 grey (60,000 / 10,000)",
    "cifar10": "CIFAR-10 photos in ten classes, 32x32 RGB (50,000 / 10,000)",
}
NAMES = tuple(DESCRIPTIONS)
_DOWNLOADABLE = {"mnist": MNIST, "fashion-mnist": FashionMNIST, "cifar10": CIFAR10}
_BY_COMPACT_NAME = {name.replace("-", ""): name for name in NAMES}


def canonical_name(name: str) -> str | None:
    """The catalogue name for `name` ('MNIST', 'fashion_mnist', 'CIFAR-10' ...), or None."""
    compact = name.strip().lower().replace("_", "").replace("-", "")
    return _BY_COMPACT_NAME.get(compact)


def get_dataset(
    name: str | os.PathLike,
    train: bool = True,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    transform: Callable | None = None,
    seed: int = 0,
    size: int | Sequence[int] = (28, 28),
    channels: int = 1,
    val_fraction: float = 0.2,
) -> Dataset:
    """The training (`train=True`) or validation/test split of a dataset named by the user.

    Args:
        name: `mnist-sample`, `shapes`, `shapes-rgb`, `mnist`, `fashion-mnist`,
            `cifar10`, or the path of a folder with one sub-folder per class (a
            `Path` is always taken as a folder).
        root: data folder for the downloadable datasets (default `cache_dir()`).
        download: fetch a missing `mnist`, `fashion-mnist` or `cifar10` first.
        transform: applied to every image on the way out.
        seed: for `shapes`, and for splitting a folder into train and validation.
        size, channels: for a folder, the size and channel count images are made to.
        val_fraction: for a folder without `train/` and `val/` (or `test/`)
            sub-folders, the share held out (the same samples every time for a seed).

    Raises:
        ValueError: `name` is neither a known dataset nor an existing folder.
        DataError: the dataset's files are missing or damaged.
    """
    key = canonical_name(name) if isinstance(name, str) else None  # a Path is a folder
    if key == "mnist-sample":
        return mnist_sample(train, transform)
    if key in ("shapes", "shapes-rgb"):
        return shapes(train, seed=seed, rgb=key == "shapes-rgb", transform=transform)
    if key in _DOWNLOADABLE:
        return _DOWNLOADABLE[key](root=root, train=train, download=download, transform=transform)
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ValueError(
            f"unknown dataset {str(name)!r}: choose one of {', '.join(NAMES)}, "
            "or give a folder holding one sub-folder of images per class"
        )
    return _folder_split(folder, train, transform, seed, size, channels, val_fraction)


def _folder_split(folder, train, transform, seed, size, channels, val_fraction) -> Dataset:
    held_out = next((folder / n for n in ("val", "test") if (folder / n).is_dir()), None)
    if (folder / "train").is_dir() and held_out is not None:
        return ImageFolder(folder / "train" if train else held_out, size, channels, transform)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie between 0 and 1, got {val_fraction}")
    whole = ImageFolder(folder, size, channels, transform)
    n_val = max(1, round(len(whole) * val_fraction)) if len(whole) > 1 else 0
    train_part, val_part = random_split(whole, [len(whole) - n_val, n_val], generator=seed)
    return train_part if train else val_part


@dataclass(frozen=True)
class DatasetInfo:
    """What `available()` reports about one dataset."""

    name: str
    description: str
    ready: bool
    location: str
    detail: str


def available(root: str | os.PathLike | None = None) -> list[DatasetInfo]:
    """Which named datasets are ready here and which need downloading first.

    `root` is the data folder searched for the downloadable ones (default `cache_dir()`).
    """
    sample_ready = all(
        (SAMPLE_DIR / f"{split}-{kind}-ubyte.gz").is_file()
        for split in ("train", "val")
        for kind in ("images-idx3", "labels-idx1")
    )
    infos = [
        DatasetInfo(
            "mnist-sample", DESCRIPTIONS["mnist-sample"], sample_ready, str(SAMPLE_DIR),
            "built in" if sample_ready else "missing from this installation",
        ),
        DatasetInfo("shapes", DESCRIPTIONS["shapes"], True, "-", "generated on the fly"),
        DatasetInfo("shapes-rgb", DESCRIPTIONS["shapes-rgb"], True, "-", "generated on the fly"),
    ]
    for name, cls in _DOWNLOADABLE.items():
        folder = cache_dir(root) / cls.folder_name
        ready = cls.is_ready(root)
        if ready:
            detail = "downloaded"
        else:
            mb = sum(f.size or 0 for f in cls.all_files()) / 1e6
            detail = f"needs download ({mb:.0f} MB)"
        infos.append(DatasetInfo(name, DESCRIPTIONS[name], ready, str(folder), detail))
    return infos
