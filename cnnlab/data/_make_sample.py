"""Rebuild cnnlab/assets/mnist-sample/ from the MNIST training files; the same bytes every run.

    python -m cnnlab.data._make_sample [MNIST_DIR] [OUT_DIR]

MNIST_DIR holds train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz (default:
../shared/datasets/mnist beside the repository); OUT_DIR defaults to cnnlab/assets/mnist-sample.

The rule, with no randomness: training = the first 1,200 images of each digit among
MNIST training images 0..49,999; validation = the first 200 of each digit among
50,000..59,999 (the tail that cnnlab's benchmarks hold out), both kept in file order.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, write_idx
from .mnist import SAMPLE_DIR

TRAIN_PER_CLASS, VAL_PER_CLASS, HOLD_OUT_START = 1200, 200, 50_000
DEFAULT_SOURCE = SAMPLE_DIR.parents[3] / "shared" / "datasets" / "mnist"

README = """\
# MNIST sample

A sample of real MNIST handwritten digits that ships with cnnlab, so that training
works offline on a fresh machine (`cnnlab.data.mnist_sample()`, dataset name
`mnist-sample`).

| file | images | md5 of the decompressed content |
|---|---|---|
{rows}

Format: IDX (gzip), as the official MNIST files: big-endian header, then uint8 pixels.

## Source and selection

Taken from the MNIST training set (train-images-idx3-ubyte / train-labels-idx1-ubyte,
60,000 images). Training split: the first {train} images of each digit among images
0..{hold_last}; validation split: the first {val} images of each digit among images
{hold}..59,999, each kept in file order. No randomness: `python -m
cnnlab.data._make_sample` rebuilds these files from the MNIST training files.

## Licence

The MNIST database of handwritten digits is by Yann LeCun and Corinna Cortes
(http://yann.lecun.com/exdb/mnist/), made available under the Creative Commons
Attribution-Share Alike 3.0 licence (CC BY-SA 3.0,
https://creativecommons.org/licenses/by-sa/3.0/). This sample is a subset of it and is
shared under the same licence; see LICENSE.
"""

LICENSE = """\
The files in this folder are a subset of the MNIST database of handwritten digits,
by Yann LeCun and Corinna Cortes (http://yann.lecun.com/exdb/mnist/).

They are licensed under the Creative Commons Attribution-Share Alike 3.0 Unported
licence (CC BY-SA 3.0): https://creativecommons.org/licenses/by-sa/3.0/legalcode

Changes: images were selected (see README.md); pixels and labels are unchanged.
"""


def first_per_class(labels: np.ndarray, per_class: int, start: int, stop: int) -> np.ndarray:
    """Indices in [start, stop) of the first `per_class` samples of each label, in order."""
    window = np.arange(start, stop)
    chosen = [window[labels[start:stop] == c][:per_class] for c in np.unique(labels)]
    if any(len(c) < per_class for c in chosen):
        raise ValueError(f"fewer than {per_class} samples of some class in {start}..{stop - 1}")
    return np.sort(np.concatenate(chosen))


def make_sample(source: Path, out: Path) -> None:
    images = read_idx(source / "train-images-idx3-ubyte.gz", magic=IMAGES_MAGIC)
    labels = read_idx(source / "train-labels-idx1-ubyte.gz", magic=LABELS_MAGIC)
    splits = {
        "train": first_per_class(labels, TRAIN_PER_CLASS, 0, HOLD_OUT_START),
        "val": first_per_class(labels, VAL_PER_CLASS, HOLD_OUT_START, len(labels)),
    }
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, indices in splits.items():
        for kind, values in (("images-idx3", images[indices]), ("labels-idx1", labels[indices])):
            name = f"{split}-{kind}-ubyte.gz"
            write_idx(out / name, values)
            header = bytes([0, 0, 8, values.ndim]) + b"".join(
                int(n).to_bytes(4, "big") for n in values.shape
            )
            md5 = hashlib.md5(header + values.tobytes()).hexdigest()
            rows.append(f"| {name} | {len(values):,} | {md5} |")
    (out / "README.md").write_text(
        README.format(
            rows="\n".join(rows),
            train=f"{TRAIN_PER_CLASS:,}",
            val=VAL_PER_CLASS,
            hold=f"{HOLD_OUT_START:,}",
            hold_last=f"{HOLD_OUT_START - 1:,}",
        )
    )
    (out / "LICENSE").write_text(LICENSE)


if __name__ == "__main__":
    args = sys.argv[1:]
    make_sample(
        Path(args[0]) if args else DEFAULT_SOURCE,
        Path(args[1]) if len(args) > 1 else SAMPLE_DIR,
    )
    print(f"wrote the MNIST sample to {Path(args[1]) if len(args) > 1 else SAMPLE_DIR}")
