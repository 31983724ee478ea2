"""Small data sets for the lessons, read from what is on this machine (nothing is downloaded).

`cifar10_tiny` takes a few real CIFAR-10 photos per class from, in order: cnnlab's CIFAR-10
download (`cnnlab datasets`), the JPEG archive in the project's shared/ folder, or, where
neither is here, cnnlab's generated `shapes-rgb` pictures (said in `source`).
"""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SHARED_TAR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cifar10" / "cifar10-train-jpg.tar.gz"


def _from_download(per_class: int):
    from cnnlab.data import CIFAR10

    if not CIFAR10.is_ready():
        return None
    ds = CIFAR10(train=True)
    images, labels = [], []
    counts = np.zeros(10, int)
    for i in range(len(ds)):
        x, y = ds[i]
        if counts[y] < per_class:
            counts[y] += 1
            images.append(np.asarray(x, np.float32))
            labels.append(int(y))
        if counts.min() >= per_class:
            break
    return np.stack(images), np.array(labels), "CIFAR-10 (cnnlab's download)"


def _from_shared(per_class: int):
    tar_path = Path(os.environ.get("CNNLAB_CIFAR_JPG", SHARED_TAR))
    if not tar_path.is_file():
        return None
    from PIL import Image

    images, labels = [], []
    counts = dict.fromkeys(CIFAR_CLASSES, 0)
    with tarfile.open(tar_path) as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) != 3 or parts[1] not in counts or counts[parts[1]] >= per_class:
                continue
            counts[parts[1]] += 1
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as im:
                images.append(np.asarray(im.convert("RGB"), np.float32).transpose(2, 0, 1) / 255.0)
            labels.append(CIFAR_CLASSES.index(parts[1]))
            if min(counts.values()) >= per_class:
                break
    return np.stack(images), np.array(labels), f"CIFAR-10 JPEGs ({tar_path.name})"


def cifar10_tiny(per_class: int = 60, seed: int = 0):
    """(images (N, 3, 32, 32) float32 in 0..1, labels (N,), class names, source), shuffled."""
    got = _from_download(per_class) or _from_shared(per_class)
    classes = CIFAR_CLASSES
    if got is None:
        from cnnlab.data import shapes

        ds = shapes(train=True, n=10 * per_class, rgb=True, seed=seed)
        got = (np.stack([np.asarray(ds[i][0]) for i in range(len(ds))]).astype(np.float32),
               np.array([int(ds[i][1]) for i in range(len(ds))]), "shapes-rgb (no CIFAR-10 on this machine)")
        classes = tuple(ds.classes)
    images, labels, source = got
    order = np.random.default_rng(seed).permutation(len(labels))
    return images[order], labels[order], classes, source
