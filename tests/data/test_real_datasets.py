"""The real files in ../shared/datasets: MNIST in IDX, CIFAR-10 JPEGs through ImageFolder."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from datafiles import CIFAR_CLASSES, MNIST_DIR, SHARED, needs_shared
from PIL import Image

from cnnlab.data import MNIST, DataLoader, ImageFolder, get_dataset


@pytest.fixture(scope="module")
def mnist_raw():
    """Images and labels read straight from the bytes, independently of cnnlab's reader."""
    images = np.frombuffer(gzip.open(MNIST_DIR / "train-images-idx3-ubyte.gz").read(), np.uint8)
    labels = np.frombuffer(gzip.open(MNIST_DIR / "train-labels-idx1-ubyte.gz").read(), np.uint8)
    return images[16:].reshape(-1, 28, 28), labels[8:]


@needs_shared(MNIST_DIR)
def test_mnist_training_set(mnist_raw):
    raw_images, raw_labels = mnist_raw
    ds = MNIST(root=SHARED, train=True)
    assert len(ds) == 60_000 and ds.images.shape == (60_000, 1, 28, 28)
    np.testing.assert_array_equal(
        np.bincount(ds.targets, minlength=10), np.bincount(raw_labels, minlength=10)
    )
    assert np.bincount(raw_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    np.testing.assert_array_equal(ds.images[:, 0], raw_images)
    image, label = ds[59_999]
    assert label == raw_labels[-1]
    np.testing.assert_allclose(image[0] * 255, raw_images[-1], atol=1e-3)


@needs_shared(MNIST_DIR)
def test_mnist_through_the_loader(mnist_raw):
    ds = MNIST(root=SHARED)
    seen = np.zeros(10, np.int64)
    for images, labels in DataLoader(ds, batch_size=1000, shuffle=True, seed=0):
        assert tuple(images.shape[1:]) == (1, 28, 28)
        seen += np.bincount(labels.numpy(), minlength=10)
    np.testing.assert_array_equal(seen, np.bincount(mnist_raw[1], minlength=10))


def test_cifar_jpeg_whole_class_folders(cifar_jpeg_dir):
    ds = ImageFolder(cifar_jpeg_dir, size=32, channels=3)
    assert ds.classes == CIFAR_CLASSES  # sorted folder names are CIFAR-10's label order
    counts = np.bincount(ds.targets, minlength=10)
    assert counts[CIFAR_CLASSES.index("airplane")] == 5000 and counts[CIFAR_CLASSES.index("cat")] == 5000
    assert all(counts[i] == 20 for i, c in enumerate(CIFAR_CLASSES) if c not in ("airplane", "cat"))
    assert ds.images.shape == (len(ds), 3, 32, 32)
    path, label = ds.samples[1234]
    expected = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
    np.testing.assert_array_equal(ds.images[1234], expected)
    assert ds.classes[label] == path.parent.name


def test_cifar_jpeg_by_folder_name_grey_28(cifar_jpeg_dir):
    val = get_dataset(cifar_jpeg_dir, train=False)  # a folder: 20% held out, grey 28x28
    assert len(val) == 2032  # a fifth of 10,160
    images, labels = next(iter(DataLoader(val, batch_size=64, shuffle=True, seed=0)))
    assert tuple(images.shape) == (64, 1, 28, 28)
    assert 0 <= images.numpy().min() and images.numpy().max() <= 1
