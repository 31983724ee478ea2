"""Turning a list of samples into one batch, with PyTorch's `default_collate` rules.

- Tensors are stacked along a new first axis (their dtype kept); NumPy arrays and
  NumPy scalars become Tensors of their own dtype, stacked.
- Python ints become an int64 Tensor (bools a bool Tensor), Python floats a float64
  Tensor -- PyTorch's choice, so `labels.float()` habits carry over.
- Strings stay a list; dicts are collated key by key; tuples and lists field by field
  (a tuple sample gives a list, a namedtuple stays a namedtuple), recursively.
- Anything else (a PIL image, say: add `transforms.ToTensor()`) is a TypeError.

>>> import cnnlab
>>> images, labels = default_collate([(cnnlab.zeros(1, 2, 2), 3), (cnnlab.ones(1, 2, 2), 5)])
>>> tuple(images.shape), str(labels.dtype), labels.tolist()
((2, 1, 2, 2), 'int64', [3, 5])
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_NOT_COLLATABLE = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def _tensor_type():
    from ..tensor import Tensor  # late: cnnlab's own import reaches this package first

    return Tensor


def to_tensor(array: np.ndarray):
    """A cnnlab Tensor over an array (contiguous, dtype kept)."""
    from ..creation import from_numpy

    return from_numpy(np.ascontiguousarray(array))


def default_collate(batch: list) -> Any:
    """Collate a list of samples into a batch, as `torch.utils.data.default_collate`."""
    elem = batch[0]
    tensor = _tensor_type()
    if isinstance(elem, tensor):
        return to_tensor(np.stack([t.numpy() for t in batch]))
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        if elem.dtype.kind in "OSUV":
            raise TypeError(_NOT_COLLATABLE.format(elem.dtype))
        return to_tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, float):
        return to_tensor(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, bool):
        return to_tensor(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return to_tensor(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:  # a Mapping type that cannot be built from a dict
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(_NOT_COLLATABLE.format(type(elem)))


def default_convert(data: Any) -> Any:
    """What the DataLoader does to each sample when `batch_size=None` (no batching):
    NumPy arrays become Tensors, containers are converted inside, the rest is kept."""
    if isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind not in "OSUV":
        return to_tensor(np.asarray(data))
    if isinstance(data, Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data
