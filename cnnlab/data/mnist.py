"""MNIST and Fashion-MNIST in their official IDX files, and the MNIST sample in cnnlab/assets/.

>>> ds = mnist_sample(train=False)          # ships with cnnlab: no download
>>> len(ds), ds[0][0].shape, ds.classes
(2000, (1, 28, 28), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from .dataset import ArrayDataset, CachedDataset
from .download import RemoteFile, cache_dir, ensure_files, manual_instructions
from .errors import DataError
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

from ..assets import MNIST_SAMPLE_DIR as SAMPLE_DIR


class MNIST(CachedDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 1 x 28 x 28.

    Args:
        root: the data folder; the files live in `root/mnist/`. Default: `cache_dir()`
            (`$CNNLAB_DATA`, else the user cache folder).
        train: the 60,000 training images, else the 10,000 test images.
        download: fetch this split's missing files first, checking their published md5.
        transform: applied to each float32 image (values 0..1) on the way out.

    Files: `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
    `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz` (gzip or unpacked).
    MNIST is by Yann LeCun and Corinna Cortes, licensed CC BY-SA 3.0.

    >>> train = MNIST(train=True, download=True)          # doctest: +SKIP
    >>> loader = DataLoader(train, batch_size=64, shuffle=True)   # doctest: +SKIP
    """

    title = "MNIST"
    folder_name = "mnist"
    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    files = {
        "train": (
            RemoteFile(
                "train-images-idx3-ubyte.gz",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                9_912_422,
                raw_md5="6bbc9ace898e44ae57da46a324031adb",
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz",
                "d53e105ee54ea40749a09fcbcd1e9432",
                28_881,
                raw_md5="a25bea736e30d166cdddb491f175f624",
            ),
        ),
        "test": (
            RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1_648_877),
            RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4_542),
        ),
    }
    classes = [str(digit) for digit in range(10)]

    def _load(self, folder: Path, download: bool) -> tuple[np.ndarray, np.ndarray]:
        image_spec, label_spec = self.files["train" if self.train else "test"]
        if download:
            ensure_files(self.title, folder, [image_spec, label_spec], self.mirrors)
        missing = [s.name for s in (image_spec, label_spec) if _find(folder, s.name) is None]
        if missing:
            raise DataError(
                f"{self.title} {'training' if self.train else 'test'} files not found in {folder}: "
                f"missing {', '.join(missing)}. Pass download=True (or run `cnnlab datasets "
                f"download {self.folder_name}`) to fetch them.\n"
                + manual_instructions(folder, self.all_files(), self.mirrors)
            )
        return read_idx_pair(
            _find(folder, image_spec.name), _find(folder, label_spec.name), len(self.classes)
        )

    @classmethod
    def all_files(cls) -> list[RemoteFile]:
        return [spec for pair in cls.files.values() for spec in pair]

    @classmethod
    def has_split(cls, folder: Path, train: bool) -> bool:
        return all(_find(folder, s.name) for s in cls.files["train" if train else "test"])

    @classmethod
    def is_ready(cls, root: str | os.PathLike | None = None) -> bool:
        """Whether every file of both splits is in place (no download needed)."""
        folder = cache_dir(root) / cls.folder_name
        return all(_find(folder, s.name) for s in cls.all_files())


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: 28 x 28 grey pictures of clothes in MNIST's file format.

    Same arguments and file names as `MNIST`; the files live in `root/fashion-mnist/`.
    Fashion-MNIST is by Zalando Research, licensed MIT.
    """

    title = "Fashion-MNIST"
    folder_name = "fashion-mnist"
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    files = {
        "train": (
            RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26_421_880),
            RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29_515),
        ),
        "test": (
            RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4_422_102),
            RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5_148),
        ),
    }
    classes = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]  # fmt: skip


def _find(folder: Path, name: str) -> Path | None:
    """The file `name` in `folder`, or its unpacked twin (without .gz), if either exists."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike, n_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file; uint8 N x 1 x H x W and int64 N."""
    images = read_idx(images_path, magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=LABELS_MAGIC).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; they must match"
        )
    if len(labels) and labels.max() >= n_classes:
        raise DataError(
            f"{labels_path}: labels must be 0..{n_classes - 1}, found {labels.max()}"
        )
    return images[:, None], labels


def mnist_sample(
    train: bool = True,
    transform: Callable | None = None,
    root: str | os.PathLike | None = None,
) -> ArrayDataset:
    """A sample of real MNIST digits that ships with cnnlab, for training offline.

    12,000 training images (1,200 of each digit) and, with `train=False`, 2,000
    validation images (200 of each digit), taken from MNIST's training set; see
    cnnlab/assets/mnist-sample/README.md. `root` overrides the folder holding the files.
    """
    folder = Path(root) if root is not None else SAMPLE_DIR
    split = "train" if train else "val"
    images_path = folder / f"{split}-images-idx3-ubyte.gz"
    labels_path = folder / f"{split}-labels-idx1-ubyte.gz"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataError(
                f"the MNIST sample file {path} is missing; it ships inside the cnnlab package "
                "(cnnlab/assets/mnist-sample/): reinstall cnnlab, or rebuild it from the MNIST "
                "training files with python -m cnnlab.data._make_sample"
            )
    images, labels = read_idx_pair(images_path, labels_path)
    return ArrayDataset(images, labels, MNIST.classes, transform)
