"""Samplers: the order in which a DataLoader visits a dataset, as PyTorch names them.

A sampler is an iterable of dataset indices with a `len()`; a batch sampler yields
lists of indices. Random samplers draw from their `generator` when given (a seed, a
NumPy Generator or a seeded Generator object), else from a fresh seed taken from
`cnnlab.manual_seed`'s stream at the start of every pass, as PyTorch's take one from
`torch.manual_seed`'s.

>>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
[[0, 1], [2, 3], [4]]
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence, Sized

import numpy as np

from ._rng import as_generator


class Sampler:
    """Base class: subclasses define `__iter__` (indices) and usually `__len__`."""

    def __init__(self, data_source: Sized | None = None) -> None:  # PyTorch accepts one
        pass

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1, in order."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class _Random(Sampler):
    """Holds the generator rule shared by the random samplers."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator
        # A seed, or a PyTorch-style Generator: one stream that goes on across passes.
        self._rng = None if generator is None else as_generator(generator)

    def _pass_rng(self) -> np.random.Generator:
        return self._rng if self._rng is not None else as_generator(None)


class RandomSampler(_Random):
    """Indices in a random order (a permutation), or drawn with `replacement`.

    `num_samples` (default: the dataset's length) is how many to yield per pass; without
    replacement a longer pass chains whole permutations, as PyTorch does.
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Any = None,
    ) -> None:
        super().__init__(generator)
        self.data_source = data_source
        self.replacement = bool(replacement)
        self._num_samples = num_samples
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n, rng = len(self.data_source), self._pass_rng()
        if self.replacement:
            return iter(rng.integers(0, n, self.num_samples).tolist())
        repeats = -(-self.num_samples // n) if n else 0
        order = np.concatenate([rng.permutation(n) for _ in range(repeats)]) if repeats else np.empty(0, int)
        return iter(order[: self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(_Random):
    """The given indices, in a new random order every pass (for train/validation splits)."""

    def __init__(self, indices: Sequence[int], generator: Any = None) -> None:
        super().__init__(generator)
        self.indices = indices

    def __iter__(self) -> Iterator[int]:
        order = self._pass_rng().permutation(len(self.indices))
        return (int(self.indices[i]) for i in order)

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(_Random):
    """`num_samples` indices drawn with probability proportional to `weights`."""

    def __init__(
        self, weights: Sequence[float], num_samples: int, replacement: bool = True, generator: Any = None
    ) -> None:
        super().__init__(generator)
        w = np.asarray(weights.numpy() if hasattr(weights, "numpy") else weights, dtype=np.float64)
        if w.ndim != 1 or (w < 0).any() or not w.sum() > 0:
            raise ValueError("weights must be a 1-D sequence of non-negative numbers with a positive sum")
        if not replacement and num_samples > len(w):
            raise ValueError("without replacement num_samples cannot exceed the number of weights")
        self.weights, self.num_samples, self.replacement = w, int(num_samples), bool(replacement)

    def __iter__(self) -> Iterator[int]:
        p = self.weights / self.weights.sum()
        draws = self._pass_rng().choice(len(p), self.num_samples, replace=self.replacement, p=p)
        return iter(draws.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of `batch_size`."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, bool(drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
