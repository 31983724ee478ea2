"""Helpers for the data tests: files in the official formats, and where the shared data is."""
from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data import MNIST
from cnnlab.data.download import RemoteFile

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
MNIST_DIR = SHARED / "mnist"
CIFAR_TAR = SHARED / "cifar10" / "cifar10-train-jpg.tar.gz"
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data folder, also set as $CNNLAB_DATA, so no test touches the real cache."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("CNNLAB_DATA", str(root))
    return root


def needs_shared(path: Path):
    """Skip unless the shared real data file or folder exists."""
    return pytest.mark.skipif(
        not path.exists(), reason=f"real data not found at {path.resolve()} (see shared/datasets/README.md)"
    )


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The IDX encoding of a uint8 array, written from the format's description."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 | array.ndim  # two zero bytes, type 0x08 (ubyte), ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx_gz(path: Path, array: np.ndarray, magic: int | None = None) -> bytes:
    """Write `array` as a gzip-compressed IDX file; return the gzip bytes."""
    data = gzip.compress(idx_bytes(array, magic), mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def small_mnist(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_mnist_folder(folder: Path, n: int = 30, split: str = "train", seed: int = 0):
    """Write `{split}-images/labels` IDX gz files of random digits into `folder`."""
    images, labels = small_mnist(n, seed)
    write_idx_gz(folder / f"{split}-images-idx3-ubyte.gz", images)
    write_idx_gz(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return images, labels


def cifar_records(n: int = 7, seed: int = 0) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Official CIFAR-10 binary records: 1 label byte then R, G, B planes of 32 x 32."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    data = b"".join(bytes([labels[i]]) + images[i].tobytes() for i in range(n))
    return data, images, labels


def mnist_mirror(tmp_path, monkeypatch) -> Path:
    """A file:// mirror of small MNIST files, with MNIST's checksums patched to match."""
    mirror = tmp_path / "mirror"
    write_mnist_folder(mirror, n=10, split="train", seed=1)
    write_mnist_folder(mirror, n=4, split="t10k", seed=2)
    files = {
        split: tuple(
            RemoteFile(spec.name, hashlib.md5((mirror / spec.name).read_bytes()).hexdigest())
            for spec in MNIST.files[split]
        )
        for split in ("train", "test")
    }
    monkeypatch.setattr(MNIST, "files", files)
    monkeypatch.setattr(MNIST, "mirrors", [mirror.as_uri()])
    return mirror
