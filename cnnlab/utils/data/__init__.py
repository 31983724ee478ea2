"""`torch.utils.data` under cnnlab: datasets, samplers, the DataLoader and collation.

These are cnnlab.data's own classes under PyTorch's names (one implementation), so

    from torch.utils.data import DataLoader, Dataset, TensorDataset, random_split

becomes `from cnnlab.utils.data import ...` with nothing else changed. cnnlab's
DataLoader adds `seed=` and makes every batch in the calling process (`num_workers`
is accepted and has no effect).
"""
from ...data.collate import default_collate, default_convert
from ...data.dataset import ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from ...data.loader import DataLoader
from ...data.sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler,
)

__all__ = sorted(name for name in dir() if not name.startswith("_"))
