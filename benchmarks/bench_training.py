"""Accuracy and wall time on real data, cnnlab beside PyTorch with the same protocol.

    .venv/bin/python benchmarks/bench_training.py mnist --model convnet --epochs 3
    .venv/bin/python benchmarks/bench_training.py mnist --model modern --epochs 2
    .venv/bin/python benchmarks/bench_training.py cifar10 --model simplecnn --epochs 10 [--torch]
    .venv/bin/python benchmarks/bench_training.py mnist --model convnet --epochs 3 \
        --lr 3e-3 --schedule cosine --normalize

MNIST: the 60,000 training images in ../shared/datasets/mnist; train on the first 50,000,
report on the last 10,000. CIFAR-10: the JPEG training set in ../shared/datasets/cifar10,
unpacked to a temporary folder; 45,000 / 5,000 split. Adam, batch 64. The default
recipe is the tutorials' (lr 1e-3, constant; inputs in 0..1, no augmentation); the
options change it for both engines alike: --lr, --schedule cosine (per step, from lr
towards 0 over the whole run, after a linear warm-up over the first 2% of steps),
--normalize (the dataset's channel mean and std, measured on the training split),
--augment (MNIST: random shifts of up to 2 pixels; CIFAR-10: 4-pixel padded random
crops and horizontal flips; `--augment flip`: horizontal flips only). One line per
epoch: wall time since the start (data loading excluded), validation accuracy. With
--torch the same architecture, initial weights, batches (augmentation included),
dropout masks and lr schedule run in PyTorch afterwards, in the same process.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import cnnlab  # before NumPy: it sets OpenBLAS's thread timeout (cnnlab/_config.py)
import numpy as np
from cnnlab import models, optim
from cnnlab.data import MNIST, ArrayDataset, DataLoader, ImageFolder
from cnnlab.data.transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomShift,
)
from cnnlab.optim.lr_scheduler import WarmupCosineLR, warmup_cosine
from cnnlab.train import Callback, Run, evaluate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def mnist():
    ds = MNIST(root=SHARED, train=True)
    return ds, np.arange(50_000), np.arange(50_000, 60_000)


def cifar10():
    tmp = Path(tempfile.mkdtemp(prefix="cnnlab-cifar-"))
    with tarfile.open(SHARED / "cifar10" / "cifar10-train-jpg.tar.gz") as tar:
        tar.extractall(tmp, filter="data")
    root = next(p for p in tmp.rglob("train") if p.is_dir())
    ds = ImageFolder(root, size=(32, 32), channels=3)
    order = np.random.default_rng(0).permutation(len(ds))
    return ds, order[:45_000], order[45_000:]


def splits(name, normalize, augment):
    """(train, validation, image shape): two ArrayDatasets over one set of stored images,
    so that only the training split is augmented."""
    ds, tr, va = mnist() if name == "mnist" else cifar10()
    images, labels = ds.images, np.asarray(ds.targets)
    train_tf, val_tf = [], []
    if augment == "flip":
        train_tf = [RandomHorizontalFlip()]
    elif augment:
        train_tf = [RandomShift(2)] if name == "mnist" else [RandomCrop(32, padding=4), RandomHorizontalFlip()]
    if normalize:
        x = images[tr].astype(np.float32) / 255.0
        norm = Normalize(x.mean(axis=(0, 2, 3)).tolist(), x.std(axis=(0, 2, 3)).tolist())
        train_tf.append(norm)
        val_tf.append(norm)
    train = ArrayDataset(images[tr], labels[tr], ds.classes, Compose(train_tf) if train_tf else None)
    val = ArrayDataset(images[va], labels[va], ds.classes, Compose(val_tf) if val_tf else None)
    return train, val, tuple(images.shape[1:])


def lr_at(step, total, lr, schedule):
    """The learning rate of step `step` (0-based) of `total`: constant, or cnnlab's
    WarmupCosineLR (linear warm-up over the first 2% of steps, then a cosine towards 0)."""
    return lr if schedule == "none" else warmup_cosine(step, total, lr, warmup=max(1, total // 50))


class Clock(Callback):
    def __init__(self, label):
        self.label, self.start = label, time.perf_counter()

    def on_epoch_end(self, run, m):
        print(f"{self.label:8} epoch {m.epoch}: {time.perf_counter() - self.start:7.1f} s  "
              f"train loss {m.train_loss:.4f}  val acc {m.val_accuracy:.2%}", flush=True)


def run_cnnlab(model, train, val, epochs, seed, lr, schedule):
    """Train and return (validation accuracy, the global generator's state at the start),
    the state being what every dropout mask of the run was drawn from."""
    loader = DataLoader(train, 64, shuffle=True, seed=seed)
    val_loader = DataLoader(val, 500)   # before the snapshot: an unseeded loader draws its seed
    masks_from = cnnlab.get_rng_state()
    total = epochs * len(loader)
    opt = optim.Adam(model.parameters(), lr)
    sched = None if schedule == "none" else WarmupCosineLR(opt, total, warmup=max(1, total // 50))
    Run(model, loader, opt, epochs=epochs, val_loader=val_loader, callbacks=[Clock("cnnlab")],
        scheduler=sched, scheduler_interval="step").run()
    return evaluate(model, val_loader).accuracy, masks_from


def shared_mask_dropouts(tm, rng_state):
    """Swap the twin's Dropout layers for ones that draw cnnlab's masks, from cnnlab's
    generator state at the start of its run. Both engines call their dropout layers in
    the same order with the same shapes, so every step drops the same units in both, and
    the two runs differ only by arithmetic, which is what the comparison is about."""
    import torch

    gen = np.random.default_rng()
    gen.bit_generator.state = rng_state
    mask = cnnlab.backends.get("cpu").dropout_mask

    class SharedMaskDropout(torch.nn.Module):
        def __init__(self, p):
            super().__init__()
            self.p = p

        def forward(self, x):
            if not self.training or self.p == 0:
                return x
            return x * torch.from_numpy(mask(gen, tuple(x.shape), self.p, np.dtype(np.float32)))

    for parent in list(tm.modules()):
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.Dropout):
                setattr(parent, name, SharedMaskDropout(child.p))
    return tm


def run_torch(model_name, kwargs, state, train, val, epochs, seed, lr, schedule, masks_from):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from torch_models import build  # same architectures written in PyTorch

    tm = shared_mask_dropouts(build(model_name, **kwargs), masks_from)
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in state.items()})
    opt = torch.optim.Adam(tm.parameters(), lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    loader = DataLoader(train, 64, shuffle=True, seed=seed)      # the very same batches
    total, step = epochs * len(loader), 0
    for epoch in range(1, epochs + 1):
        tm.train()
        for x, y in loader:
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, lr, schedule)
            opt.zero_grad()
            loss_fn(tm(torch.from_numpy(x.numpy())), torch.from_numpy(y.numpy())).backward()
            opt.step()
            step += 1
        tm.eval()
        correct = 0
        with torch.no_grad():
            for x, y in DataLoader(val, 500):
                correct += int((tm(torch.from_numpy(x.numpy())).argmax(1).numpy() == y.numpy()).sum())
        print(f"{'torch':8} epoch {epoch}: {time.perf_counter() - start:7.1f} s  val acc {correct / len(val):.2%}",
              flush=True)
    return correct / len(val)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", choices=["mnist", "cifar10"])
    ap.add_argument("--model", default="convnet")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", choices=["none", "cosine"], default="none")
    ap.add_argument("--normalize", action="store_true")
    ap.add_argument("--augment", nargs="?", const="full", choices=["full", "flip"], default=None,
                    help="full: MNIST shifts, CIFAR-10 padded crops + flips; flip: horizontal flips only")
    ap.add_argument("--width", type=int, default=None, help="the modern net's first-stage channels (default 32)")
    ap.add_argument("--torch", action="store_true", help="also run PyTorch, same protocol")
    args = ap.parse_args()
    t = time.perf_counter()
    train, val, shape = splits(args.data, args.normalize, args.augment)
    recipe = (f"Adam {args.lr:g}{', cosine' if args.schedule == 'cosine' else ''}"
              f"{', normalized' if args.normalize else ''}"
              f"{f', augmented ({args.augment})' if args.augment else ''}")
    model_name = args.model + (f" width {args.width}" if args.width else "")
    print(f"{args.data}: {len(train):,} train / {len(val):,} validation images, loaded in "
          f"{time.perf_counter() - t:.1f} s; {model_name}, {recipe}, batch 64, {os.cpu_count()} cores")
    cnnlab.manual_seed(args.seed)
    kwargs = dict(in_channels=shape[0], num_classes=10, input_size=shape[1])
    if args.width is not None:
        kwargs["width"] = args.width
    model = models.create(args.model, **kwargs)
    state = {k: v.detach() for k, v in model.state_dict().items()}
    state = {k: cnnlab.tensor(v.numpy().copy(), dtype=v.dtype) for k, v in state.items()}
    acc, masks_from = run_cnnlab(model, train, val, args.epochs, args.seed, args.lr, args.schedule)
    print(f"cnnlab final validation accuracy {acc:.2%}")
    if args.torch:
        tacc = run_torch(args.model, kwargs, state, train, val, args.epochs, args.seed, args.lr, args.schedule,
                         masks_from)
        print(f"torch  final validation accuracy {tacc:.2%}  (difference {100 * (acc - tacc):+.2f} points)")


if __name__ == "__main__":
    main()
