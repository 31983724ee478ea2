"""The MNIST sample shipped in cnnlab/assets/mnist-sample."""
from __future__ import annotations

import gzip

import numpy as np
from datafiles import MNIST_DIR, needs_shared

from cnnlab.data import DataLoader, get_dataset, mnist_sample
from cnnlab.data._make_sample import make_sample
from cnnlab.data.mnist import SAMPLE_DIR


def test_sizes_balance_and_licence():
    train, val = mnist_sample(train=True), mnist_sample(train=False)
    assert len(train) == 12_000 and len(val) == 2_000
    assert np.bincount(train.targets).tolist() == [1200] * 10
    assert np.bincount(val.targets).tolist() == [200] * 10
    assert train.classes == [str(d) for d in range(10)]
    image, label = val[0]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32 and 0 <= image.min() <= image.max() <= 1
    licence = (SAMPLE_DIR / "LICENSE").read_text() + (SAMPLE_DIR / "README.md").read_text()
    assert "CC BY-SA 3.0" in licence and "LeCun" in licence and "Cortes" in licence
    total = sum(p.stat().st_size for p in SAMPLE_DIR.iterdir())
    assert total < 4_000_000


def test_by_name_and_through_the_loader():
    ds = get_dataset("mnist-sample", train=False)
    batches = list(DataLoader(ds, batch_size=128, shuffle=True, seed=0))
    assert len(batches) == 16 and tuple(batches[-1][0].shape) == (2000 - 15 * 128, 1, 28, 28)


def raw_idx(path, header):
    return np.frombuffer(gzip.open(path).read()[header:], np.uint8)


@needs_shared(MNIST_DIR)
def test_sample_is_real_mnist_at_the_documented_indices():
    images = raw_idx(MNIST_DIR / "train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = raw_idx(MNIST_DIR / "train-labels-idx1-ubyte.gz", 8)
    # The rule in cnnlab/assets/mnist-sample/README.md, recomputed here by brute force.
    train_idx = [i for c in range(10) for i in np.flatnonzero(labels[:50_000] == c)[:1200]]
    val_idx = [50_000 + i for c in range(10) for i in np.flatnonzero(labels[50_000:] == c)[:200]]
    for split, idx in (("train", sorted(train_idx)), ("val", sorted(val_idx))):
        ds = mnist_sample(train=split == "train")
        np.testing.assert_array_equal(ds.images[:, 0], images[idx])
        np.testing.assert_array_equal(ds.targets, labels[idx])


@needs_shared(MNIST_DIR)
def test_the_script_rebuilds_the_same_content(tmp_path):
    make_sample(MNIST_DIR, tmp_path)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "val-images-idx3-ubyte.gz", "val-labels-idx1-ubyte.gz"):
        rebuilt, shipped = gzip.open(tmp_path / name).read(), gzip.open(SAMPLE_DIR / name).read()
        assert rebuilt == shipped, name
    assert (tmp_path / "README.md").read_text() == (SAMPLE_DIR / "README.md").read_text()
