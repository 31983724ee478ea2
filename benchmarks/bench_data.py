"""How fast cnnlab's DataLoader serves batches, against a plain NumPy slicing loop.

    python benchmarks/bench_data.py [--repeat 3] [--skip-cifar]

Uses the real data in ../shared/datasets: MNIST (60,000 images, IDX) and CIFAR-10
(50,000 JPEGs, unpacked into a temporary folder and read with ImageFolder). For each, one
epoch at batch size 64 is timed (best of --repeat) through:

  numpy slice     images[i:i+64] -> float32 / 255, labels[i:i+64]   (the floor: no shuffle)
  numpy shuffled  the same through a random permutation (fancy indexing)
  DataLoader      cnnlab.data.DataLoader(shuffle=True), Tensors out
  + transforms    with the usual normalisation / augmentation
  per-item path   the same dataset without its batched getter (what a user's own
                  Dataset subclass gets): __getitem__ per sample, then stack

and printed with the ratio to the NumPy loop and the cost per batch as a share of a
5 ms training step (the target for a small ConvNet at batch 64 on 2 cores). The step
of such a ConvNet in cnnlab's engine is also measured, for scale.
"""
from __future__ import annotations

import argparse
import platform
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from cnnlab.data import MNIST, DataLoader, Dataset, ImageFolder
from cnnlab.data import transforms as T

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
BATCH = 64
STEP_MS = 5.0


class PerItem(Dataset):
    """Hides the batched getter, so the loader takes the per-sample path."""

    def __init__(self, inner):
        self.inner = inner
        self.classes = inner.classes

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_slices(images, labels):
    for i in range(0, len(images), BATCH):
        x = np.multiply(images[i : i + BATCH], np.float32(1 / 255), dtype=np.float32)
        y = labels[i : i + BATCH]
    return x, y


def numpy_shuffled(images, labels, seed=0):
    order = np.random.default_rng(seed).permutation(len(images))
    for i in range(0, len(images), BATCH):
        idx = order[i : i + BATCH]
        x = np.multiply(images[idx], np.float32(1 / 255), dtype=np.float32)
        y = labels[idx]
    return x, y


def loader_epoch(dataset):
    for x, y in DataLoader(dataset, batch_size=BATCH, shuffle=True, seed=0):
        pass


def report(title: str, ds, transform, label: str, repeat: int, per_item_repeat: int = 1) -> None:
    n, batches = len(ds), -(-len(ds) // BATCH)
    rows = []
    floor = best_of(repeat, lambda: numpy_slices(ds.images, ds.targets))
    rows.append(("numpy slice", floor))
    rows.append(("numpy shuffled", best_of(repeat, lambda: numpy_shuffled(ds.images, ds.targets))))
    ds.transform = None
    rows.append(("DataLoader", best_of(repeat, lambda: loader_epoch(ds))))
    ds.transform = transform
    rows.append((f"DataLoader + {label}", best_of(repeat, lambda: loader_epoch(ds))))
    ds.transform = None
    rows.append(("per-item path (no transform)", best_of(per_item_repeat, lambda: loader_epoch(PerItem(ds)))))
    print(f"\n{title}: {n:,} images {'x'.join(map(str, ds.images.shape[1:]))}, "
          f"{batches} batches of {BATCH}")
    print(f"  {'path':<50} {'epoch s':>8} {'images/s':>11} {'us/batch':>9} {'x numpy':>8} {'% of 5 ms':>9}")
    for name, seconds in rows:
        per_batch_us = seconds / batches * 1e6
        print(f"  {name:<50} {seconds:8.3f} {n / seconds:11,.0f} {per_batch_us:9.1f} "
              f"{seconds / floor:8.1f} {per_batch_us / (STEP_MS * 10):8.1f}%")


def convnet_step_ms(loader_dataset, steps: int = 40) -> float:
    """Milliseconds per SGD step of a small MNIST ConvNet in cnnlab at batch 64."""
    import cnnlab
    import cnnlab.nn as nn

    cnnlab.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    )
    optimizer = cnnlab.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    batches = iter(DataLoader(loader_dataset, batch_size=BATCH, shuffle=True, seed=0))
    for i in range(steps + 5):
        if i == 5:  # the first steps compile kernels
            start = time.perf_counter()
        x, y = next(batches)
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps * 1e3


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-cifar", action="store_true")
    args = parser.parse_args()
    print(machine())

    start = time.perf_counter()
    mnist = MNIST(root=SHARED)
    print(f"MNIST: read and decoded the IDX gz files in {time.perf_counter() - start:.2f} s")
    report("MNIST", mnist, T.Normalize(0.1307, 0.3081), "Normalize", args.repeat)
    report("MNIST", mnist, T.Compose([T.RandomShift(2), T.Normalize(0.1307, 0.3081)]),
           "RandomShift(2) + Normalize", args.repeat)
    try:
        print(f"\nFor scale: one SGD step of a small ConvNet (conv8-pool-conv16-pool-fc) at batch "
              f"{BATCH} in cnnlab takes {convnet_step_ms(mnist):.1f} ms")
    except Exception as e:  # the engine is not this benchmark's subject: report and go on
        print(f"\n(ConvNet step not measured: {type(e).__name__}: {e})")

    if args.skip_cifar:
        return
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with tarfile.open(SHARED / "cifar10" / "cifar10-train-jpg.tar.gz") as tar:
            tar.extractall(tmp, filter="data")
        print(f"\nCIFAR-10 JPEG: unpacked the archive in {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        cifar = ImageFolder(Path(tmp) / "train", size=32, channels=3)
        print(f"CIFAR-10 JPEG: ImageFolder decoded {len(cifar):,} JPEGs in "
              f"{time.perf_counter() - start:.2f} s (once; epochs then read memory)")
    augment = T.Compose([
        T.RandomCrop(32, padding=4),
        T.RandomHorizontalFlip(),
        T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    ])
    report("CIFAR-10 (ImageFolder)", cifar, augment, "RandomCrop(32, 4) + flip + Normalize", args.repeat)


if __name__ == "__main__":
    main()
