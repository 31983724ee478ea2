"""DataLoader: a dataset cut into shuffled mini-batches of cnnlab Tensors.

It takes PyTorch's arguments (`torch.utils.data.DataLoader`) and adds `seed=`.

>>> import numpy as np
>>> from cnnlab.data import ArrayDataset, DataLoader
>>> ds = ArrayDataset(np.zeros((10, 1, 28, 28), np.uint8), np.arange(10) % 2, ["even", "odd"])
>>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0)
>>> [tuple(images.shape) for images, labels in loader]
[(4, 1, 28, 28), (4, 1, 28, 28), (2, 1, 28, 28)]
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ._rng import as_generator, draw_seed
from .collate import default_collate, default_convert, to_tensor
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler


class DataLoader:
    """Iterate over a dataset in mini-batches, like PyTorch's `torch.utils.data.DataLoader`.

    Each batch holds one Tensor per field of a sample: for an image dataset
    `(images, labels)`, images float32 N x C x H x W and labels int64 N. Samples are
    combined by `collate_fn` (default: `default_collate`, PyTorch's rules).

    Args:
        dataset: anything with `len()` and `[i]`, or an `IterableDataset`. If it also has
            `get_batch(indices, rng)` (every cnnlab in-memory dataset has) and no
            `collate_fn` is given, a batch is gathered and transformed in one vectorised
            step instead of sample by sample.
        batch_size: samples per batch (default 1); None yields single samples unbatched.
        shuffle: visit the samples in a new random order every epoch.
        sampler: the order of the indices instead (excludes `shuffle`).
        batch_sampler: yields whole lists of indices (excludes batch_size, shuffle,
            sampler and drop_last).
        collate_fn: makes a batch from a list of samples.
        drop_last: leave out the last batch when it is smaller than `batch_size`.
        generator: seeds the shuffling when `seed` is not given (a seed, a NumPy
            Generator or a seeded Generator object).
        seed: cnnlab's addition: fixes the order of every epoch and the random
            transforms of the vectorised path; the same seed gives the same batches.
            None draws one from `cnnlab.manual_seed`'s stream.
        num_workers, pin_memory, timeout, worker_init_fn, prefetch_factor, ...: accepted
            so PyTorch code runs unchanged. Batches are always made in the calling
            process (with `num_workers > 0` too), which is fast enough because cnnlab's
            datasets live in memory and are gathered a batch at a time.

    `len(loader)` is the number of batches per epoch:
    `ceil(len(sampler) / batch_size)`, or `floor(...)` with `drop_last=True`.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = False,
        sampler: Sampler | Iterable[int] | None = None,
        batch_sampler: Iterable[list[int]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        seed: int | None = None,
    ) -> None:
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
        ):
            raise ValueError(f"DataLoader: batch_size must be a positive int or None, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError(
                "DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                "and drop_last"
            )
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative int, got {num_workers!r}")
        self.dataset = dataset
        self.batch_size = None if batch_sampler is not None or batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.batch_sampler = batch_sampler
        self.generator = generator
        if seed is None:
            seed = draw_seed() if generator is None else int(as_generator(generator).integers(2**31 - 1))
        self.seed = int(seed)
        self._own_sampler = sampler is None
        if sampler is None and not isinstance(dataset, IterableDataset):
            sampler = RandomSampler(dataset) if self.shuffle else SequentialSampler(dataset)
        self.sampler = sampler
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.worker_init_fn, self.multiprocessing_context = worker_init_fn, multiprocessing_context
        self.prefetch_factor, self.persistent_workers = prefetch_factor, persistent_workers
        self.pin_memory_device, self.in_order = pin_memory_device, in_order
        self._epoch = 0

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator:
        # One generator per epoch, from (seed, epoch): epoch k's order does not depend on
        # how far earlier epochs were iterated or how many random numbers they used.
        rng = np.random.default_rng([self.seed, self._epoch])
        self._epoch += 1
        if isinstance(self.dataset, IterableDataset):
            return self._stream()
        if self.batch_sampler is not None:
            return self._batches(iter(self.batch_sampler), rng)
        if self._own_sampler:
            n = len(self.dataset)
            order: Iterable[int] = rng.permutation(n) if self.shuffle else np.arange(n)
        else:
            order = self.sampler
        if self.batch_size is None:
            return (default_convert(self.dataset[int(i)]) for i in order)
        return self._batches(_chunks(order, self.batch_size, self.drop_last), rng)

    def _batches(self, index_lists: Iterator, rng: np.random.Generator) -> Iterator:
        get_batch = getattr(self.dataset, "get_batch", None) if self.collate_fn is None else None
        collate = self.collate_fn or default_collate
        for indices in index_lists:
            if get_batch is None:
                yield collate([self.dataset[int(i)] for i in indices])
                continue
            fields = get_batch(np.asarray(indices, dtype=np.int64), rng)
            if isinstance(fields, tuple):
                yield tuple(_as_tensor(f) for f in fields)
            else:
                yield _as_tensor(fields)

    def _stream(self) -> Iterator:
        samples = iter(self.dataset)
        if self.batch_size is None:
            yield from (default_convert(s) for s in samples)
            return
        collate = self.collate_fn or default_collate
        while batch := list(itertools.islice(samples, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield collate(batch)

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})"
        )


def _chunks(order: Iterable[int], size: int, drop_last: bool) -> Iterator:
    if isinstance(order, np.ndarray):  # the common case: slice, no Python-level loop
        stop = len(order) - len(order) % size if drop_last else len(order)
        return (order[start : start + size] for start in range(0, stop, size))
    return iter(BatchSampler(order, size, drop_last))


def _as_tensor(field: Any):
    return field if hasattr(field, "requires_grad") else to_tensor(np.asarray(field))

