"""Regenerate the sample images of the Convolution lab (deterministic).

    python cnnlab/assets/samples/make_samples.py [--datasets ../shared/datasets]

Writes, next to this file: one MNIST digit per class (28x28 grey, the first of each
class in the training file), three CIFAR-10 pictures (32x32 RGB, image 0000 of the
class) and the synthetic pictures that `cnnlab.explain.presets` draws in code.
"""
from __future__ import annotations

import argparse
import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
CIFAR_CLASSES = ("cat", "ship", "automobile")


def mnist_digits(folder: Path) -> None:
    with gzip.open(folder / "train-images-idx3-ubyte.gz") as f:
        data = f.read()
    with gzip.open(folder / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    n, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    for digit in range(10):
        first = int(np.flatnonzero(labels == digit)[0])
        Image.fromarray(images[first]).save(HERE / f"mnist_{digit}.png", optimize=True)


def cifar_pictures(archive: Path) -> None:
    with tarfile.open(archive) as tar:
        for name in CIFAR_CLASSES:
            member = tar.extractfile(f"train/{name}/0000.jpg")
            assert member is not None
            with Image.open(io.BytesIO(member.read())) as im:
                im.convert("RGB").save(HERE / f"cifar10_{name}.png", optimize=True)


def synthetic(size: int = 16) -> None:
    from cnnlab.explain import presets

    for name in presets.SYNTHETIC:
        a = presets.synthetic_image(name, size, size)[0]
        Image.fromarray((a * 255).round().astype(np.uint8)).save(HERE / f"picture_{name}.png", optimize=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", type=Path, default=HERE.parents[3] / "shared" / "datasets")
    args = p.parse_args()
    mnist_digits(args.datasets / "mnist")
    cifar_pictures(args.datasets / "cifar10" / "cifar10-train-jpg.tar.gz")
    synthetic()
    print(f"wrote samples to {HERE}")


if __name__ == "__main__":
    main()
