"""DataLoader: a dataset cut into shuffled mini-batches of cnnlab Tensors.

>>> import numpy as np
>>> from cnnlab.data import ArrayDataset, DataLoader
>>> ds = ArrayDataset(np.zeros((10, 1, 28, 28), np.uint8), np.arange(10) % 2, ["even", "odd"])
>>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0)
>>> [tuple(images.shape) for images, labels in loader]
[(4, 1, 28, 28), (4, 1, 28, 28), (2, 1, 28, 28)]
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from ._rng import draw_seed
from .transforms import _as_array


class DataLoader:
    """Iterate over a dataset in mini-batches, like PyTorch's `torch.utils.data.DataLoader`.

    Each batch is a tuple of Tensors, one per field of a sample: for an image dataset
    `(images, labels)`, images float32 N x C x H x W and labels int64 N.

    Args:
        dataset: anything with `len()` and `[i]`; if it also has
            `get_batch(indices, rng)` (every cnnlab in-memory dataset has), a batch is
            gathered and transformed in one vectorised step instead of image by image.
        batch_size: samples per batch (default 1).
        shuffle: visit the samples in a new random order every epoch.
        drop_last: leave out the last batch when it is smaller than `batch_size`.
        seed: fixes the order of every epoch and the random transforms; the same seed
            gives the same batches. None draws one from `cnnlab.manual_seed`'s stream.
        num_workers, pin_memory: accepted so PyTorch code runs unchanged, and ignored:
            batches are made in the calling thread, which is fast enough because the
            datasets live in memory as arrays.

    `len(loader)` is the number of batches per epoch:
    `ceil(len(dataset) / batch_size)`, or `floor(...)` with `drop_last=True`.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        *,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = draw_seed() if seed is None else int(seed)
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self._epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple]:
        # One generator per epoch, from (seed, epoch): epoch k's order does not depend on
        # how far earlier epochs were iterated or how many random numbers they used.
        rng = np.random.default_rng([self.seed, self._epoch])
        self._epoch += 1
        n = len(self.dataset)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        return self._batches(order, rng)

    def _batches(self, order: np.ndarray, rng: np.random.Generator) -> Iterator[tuple]:
        get_batch = getattr(self.dataset, "get_batch", None)
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            indices = order[start : start + self.batch_size]
            if get_batch is not None:
                fields = get_batch(indices, rng)
            else:
                fields = collate([self.dataset[int(i)] for i in indices])
            if isinstance(fields, tuple):
                yield tuple(_to_tensor(f) for f in fields)
            else:
                yield _to_tensor(fields)

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})"
        )


def collate(samples: list) -> tuple[np.ndarray, ...] | np.ndarray:
    """Stack a list of samples field by field: images into N x ..., numbers into a vector.

    Python ints become int64, Python floats float32; arrays and Tensors keep their dtype.
    """
    if isinstance(samples[0], (tuple, list)):
        return tuple(_stack(list(field)) for field in zip(*samples))
    return _stack(samples)


def _stack(values: list) -> np.ndarray:
    first = values[0]
    if isinstance(first, (bool, int, np.integer)):
        return np.asarray(values, dtype=np.int64)
    if isinstance(first, (float, np.floating)):
        return np.asarray(values, dtype=np.float32)
    return np.stack([_as_array(v) for v in values])


def _to_tensor(array: np.ndarray):
    import cnnlab

    return cnnlab.from_numpy(np.ascontiguousarray(array))
