"""Datasets, the DataLoader and transforms, in PyTorch's shapes and names.

A dataset gives `(image, label)` pairs: a float32 C x H x W image with values in 0..1
(after its transform) and an int class index; `ds.classes` names the classes. The
DataLoader cuts it into shuffled batches of cnnlab Tensors, images N x C x H x W.

Built in, no network needed: `mnist_sample()` (real MNIST digits shipped in cnnlab/assets/)
and `shapes()` (generated). Downloaded on request into a checked cache: `MNIST`,
`FashionMNIST`, `CIFAR10`. The user's own pictures: `ImageFolder`, `load_image`.

>>> from cnnlab.data import DataLoader, get_dataset, transforms
>>> train = get_dataset("mnist-sample", transform=transforms.Normalize(0.1307, 0.3081))
>>> loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
>>> images, labels = next(iter(loader))
>>> tuple(images.shape), tuple(labels.shape)
((64, 1, 28, 28), (64,))
"""
from . import transforms
from .catalog import NAMES, DatasetInfo, available, get_dataset
from .cifar import CIFAR10
from .collate import default_collate, default_convert
from .dataset import (
    ArrayDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split,
)
from .download import cache_dir
from .errors import ChecksumError, DataError, DownloadError
from .folder import ImageFolder, load_image
from .loader import DataLoader
from .mnist import MNIST, FashionMNIST, mnist_sample
from .sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler,
)
from .shapes import SHAPE_CLASSES, shapes

__all__ = [
    "ArrayDataset",
    "BatchSampler",
    "CIFAR10",
    "ChecksumError",
    "ConcatDataset",
    "DataError",
    "DataLoader",
    "Dataset",
    "DatasetInfo",
    "DownloadError",
    "FashionMNIST",
    "ImageFolder",
    "IterableDataset",
    "MNIST",
    "NAMES",
    "RandomSampler",
    "SHAPE_CLASSES",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "available",
    "cache_dir",
    "default_collate",
    "default_convert",
    "get_dataset",
    "load_image",
    "mnist_sample",
    "random_split",
    "shapes",
    "transforms",
]
