"""The Dataset protocol and the in-memory datasets every loader builds on.

A dataset has `len(ds)`, `ds[i] -> (image, label)` with a float32 C x H x W image in
0..1 (after its transform) and an int label, and `ds.classes`, the class names in label
order. A dataset that can also answer `get_batch(indices, rng)` lets the DataLoader
gather and transform a whole batch with a few vectorised NumPy operations.

>>> import numpy as np
>>> ds = ArrayDataset(np.zeros((10, 1, 4, 4), np.uint8), np.arange(10) % 2, classes=["a", "b"])
>>> image, label = ds[3]
>>> image.shape, image.dtype, label, ds.classes[label]
((1, 4, 4), dtype('float32'), 1, 'b')
"""
from __future__ import annotations

import bisect
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ._rng import as_generator
from .download import cache_dir
from .transforms import apply


class Dataset:
    """Base class for datasets: subclass and define `__len__` and `__getitem__`.

    Like PyTorch's `torch.utils.data.Dataset`; `classes` lists the class names.
    """

    classes: list[str] = []

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} samples, {len(self.classes)} classes)"


class IterableDataset(Dataset):
    """A stream of samples: subclass and define `__iter__` (PyTorch's IterableDataset).

    The DataLoader batches it in the order it yields; it has no indices, so no shuffle
    or sampler.
    """

    def __iter__(self):
        raise NotImplementedError

    def __len__(self) -> int:
        raise TypeError(f"{type(self).__name__} is a stream without a length")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _index(i: int, n: int) -> int:
    i = int(i)
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of range for a dataset of {n} samples")
    return i % n


def _to_float(images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        return np.multiply(images, np.float32(1 / 255), dtype=np.float32)
    return images.astype(np.float32)


class ArrayDataset(Dataset):
    """Images and labels held in memory: the home of MNIST, CIFAR-10, shapes and folders.

    Args:
        images: N x C x H x W, uint8 (0..255, stored compactly and scaled to 0..1 on
            the way out) or float (0..1).
        labels: N integer class indices.
        classes: the class names in label order.
        transform: applied to each float32 image (or whole batch) on the way out.

    Attributes `images` and `targets` give the stored arrays.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        classes: Sequence[str],
        transform: Callable | None = None,
    ) -> None:
        images = np.asarray(images)
        labels = np.asarray(labels, dtype=np.int64)
        if images.ndim != 4:
            raise ValueError(f"images must be N x C x H x W, got shape {images.shape}")
        if labels.shape != (len(images),):
            raise ValueError(
                f"expected {len(images)} labels (one per image), got shape {labels.shape}"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(
                f"labels must lie in 0..{len(classes) - 1} for {len(classes)} classes, "
                f"got {labels.min()}..{labels.max()}"
            )
        self.images = images
        self.targets = labels
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        i = _index(index, len(self))
        return apply(self.transform, _to_float(self.images[i])), int(self.targets[i])

    def get_batch(
        self, indices: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Images N x C x H x W (float32, transformed) and int64 labels for `indices`."""
        images = apply(self.transform, _to_float(self.images[indices]), rng)
        return images, self.targets[indices]


class CachedDataset(ArrayDataset):
    """A published dataset kept in `root/<folder_name>/` of the data cache (MNIST, CIFAR-10).

    Holds what they share: the arguments, the folder and the repr. A subclass reads the
    chosen split in `_load` (fetching it first when `download`).

    Args:
        root: the data folder. Default: `cache_dir()` (`$CNNLAB_DATA`, else the user cache).
        train: the training split, else the test split.
        download: fetch the split's missing files first, checking their published md5.
        transform: applied to each float32 image (values 0..1) on the way out.
        folder: the folder holding the files themselves, instead of `root/<folder_name>`
            (torchvision's `root/MNIST/raw/`, for instance).
    """

    title = ""
    folder_name = ""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        train: bool = True,
        download: bool = False,
        transform: Callable | None = None,
        *,
        folder: str | os.PathLike | None = None,
    ) -> None:
        self.root = cache_dir(root)
        self.train = train
        self._folder = None if folder is None else Path(folder)
        images, labels = self._load(self.folder(), download)
        super().__init__(images, labels, self.classes, transform)

    def _load(self, folder: Path, download: bool) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images N x C x H x W and int64 labels of the split `self.train` names."""
        raise NotImplementedError

    def folder(self) -> Path:
        """Where this dataset's files are (or will be downloaded)."""
        return self._folder if self._folder is not None else self.root / self.folder_name

    @classmethod
    def has_split(cls, folder: Path, train: bool) -> bool:
        """Whether `folder` holds the files of one split (so it loads without a download)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"{type(self).__name__}({split}, {len(self)} images, from {self.folder()})"


class TensorDataset(Dataset):
    """Sample i is the i-th row of each of the given Tensors (or arrays), like PyTorch's.

    Items keep the kind they were given: Tensors give Tensor rows (a 1-D Tensor a 0-d
    Tensor, as PyTorch), NumPy arrays give array rows (a 1-D array a Python number).
    `tensors` holds what was passed in.

    >>> import numpy as np
    >>> ds = TensorDataset(np.ones((5, 1, 2, 2), np.float32), np.arange(5))
    >>> len(ds), ds[4][1]
    (5, 4)
    """

    def __init__(self, *tensors: Any, classes: Sequence[str] | None = None) -> None:
        self.tensors = tuple(t if hasattr(t, "requires_grad") else np.asarray(t) for t in tensors)
        arrays = [np.asarray(t.numpy() if hasattr(t, "requires_grad") else t) for t in self.tensors]
        if not arrays or any(a.ndim == 0 or len(a) != len(arrays[0]) for a in arrays):
            raise ValueError(
                "TensorDataset needs one or more arrays of the same length, got shapes "
                f"{[a.shape for a in arrays]}"
            )
        self._arrays = arrays
        if classes is None and len(arrays) == 2 and arrays[1].dtype.kind in "iu" and len(arrays[1]):
            classes = [str(c) for c in range(int(arrays[1].max()) + 1)]
        self.classes = list(classes or [])

    def __len__(self) -> int:
        return len(self._arrays[0])

    def __getitem__(self, index: int) -> tuple:
        i = _index(index, len(self))
        return tuple(
            t[i] if hasattr(t, "requires_grad") else (t[i].item() if t.ndim == 1 else t[i])
            for t in self.tensors
        )

    def get_batch(self, indices: np.ndarray, rng: np.random.Generator | None = None) -> tuple:
        return tuple(a[indices] for a in self._arrays)


class ConcatDataset(Dataset):
    """Several datasets one after another (`ds_a + ds_b` builds one), like PyTorch's.

    `cumulative_sizes[k]` is the number of samples in the first k + 1 datasets.
    """

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        if any(isinstance(d, IterableDataset) for d in self.datasets):
            raise ValueError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    @property
    def classes(self) -> list[str]:
        return getattr(self.datasets[0], "classes", [])

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        i = _index(index, len(self))
        k = bisect.bisect_right(self.cumulative_sizes, i)
        return self.datasets[k][i - (self.cumulative_sizes[k - 1] if k else 0)]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        n = len(dataset)
        if len(self.indices) and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset indices must lie in 0..{n - 1} for a dataset of {n}")

    @property
    def classes(self) -> list[str]:
        return self.dataset.classes

    @property
    def targets(self) -> np.ndarray:
        return np.asarray(self.dataset.targets)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[_index(index, len(self))])]

    def __getattr__(self, name: str) -> Any:
        # Offer the batched getter only when the wrapped dataset has one, so the
        # DataLoader can tell which path to take with a plain hasattr.
        inner = self.__dict__.get("dataset")
        if name == "get_batch" and hasattr(inner, "get_batch"):
            return lambda indices, rng=None: inner.get_batch(self.indices[indices], rng)
        raise AttributeError(name)


def random_split(
    dataset: Dataset,
    lengths: Sequence[int | float],
    generator: int | np.random.Generator | None = None,
) -> list[Subset]:
    """Split a dataset into non-overlapping random subsets of the given lengths.

    `lengths` are counts summing to `len(dataset)`, or fractions summing to 1 (the
    leftover samples go one each to the first subsets, as PyTorch does). `generator`
    is a seed or a NumPy Generator; None draws from `cnnlab.manual_seed`'s stream.

    >>> import numpy as np
    >>> train, val = random_split(TensorDataset(np.arange(10)), [0.8, 0.2], generator=0)
    >>> len(train), len(val)
    (8, 2)
    """
    n = len(dataset)
    if all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0):
        if any(x < 0 for x in lengths):
            raise ValueError(f"random_split: fractions must be non-negative, got {lengths}")
        counts = [int(math.floor(n * x)) for x in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        counts = [int(x) for x in lengths]
        if any(c < 0 for c in counts) or sum(counts) != n:
            raise ValueError(
                f"random_split: lengths {list(lengths)} must be non-negative counts summing "
                f"to the dataset's {n} samples, or fractions summing to 1"
            )
    order = as_generator(generator).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
