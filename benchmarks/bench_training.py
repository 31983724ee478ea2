"""Accuracy and wall time on real data, cnnlab beside PyTorch with the same protocol.

    .venv/bin/python benchmarks/bench_training.py mnist --model convnet --epochs 3
    .venv/bin/python benchmarks/bench_training.py mnist --model modern --epochs 2
    .venv/bin/python benchmarks/bench_training.py cifar10 --model simplecnn --epochs 10 [--torch]

MNIST: the 60,000 training images in ../shared/datasets/mnist; train on the first 50,000,
report on the last 10,000. CIFAR-10: the JPEG training set in ../shared/datasets/cifar10,
unpacked to a temporary folder; 45,000 / 5,000 split. Adam 1e-3, batch 64, inputs in
0..1 (no normalisation or augmentation), one line per epoch: wall time since the start
(data loading excluded), validation accuracy. With --torch the same architecture, initial
weights, batches and optimizer run in PyTorch afterwards, in the same process.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

import cnnlab
from cnnlab import models, optim
from cnnlab.data import DataLoader, ImageFolder, MNIST, Subset
from cnnlab.train import Callback, Run, evaluate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def mnist():
    ds = MNIST(root=SHARED, train=True)
    return Subset(ds, np.arange(50_000)), Subset(ds, np.arange(50_000, 60_000)), (1, 28, 28)


def cifar10():
    tmp = Path(tempfile.mkdtemp(prefix="cnnlab-cifar-"))
    with tarfile.open(SHARED / "cifar10" / "cifar10-train-jpg.tar.gz") as tar:
        tar.extractall(tmp, filter="data")
    root = next(p for p in tmp.rglob("train") if p.is_dir())
    ds = ImageFolder(root, size=(32, 32), channels=3)
    order = np.random.default_rng(0).permutation(len(ds))
    return Subset(ds, order[:45_000]), Subset(ds, order[45_000:]), (3, 32, 32)


class Clock(Callback):
    def __init__(self, label):
        self.label, self.start = label, time.perf_counter()

    def on_epoch_end(self, run, m):
        print(f"{self.label:8} epoch {m.epoch}: {time.perf_counter() - self.start:7.1f} s  "
              f"train loss {m.train_loss:.4f}  val acc {m.val_accuracy:.2%}", flush=True)


def run_cnnlab(model, train, val, epochs, seed):
    loader = DataLoader(train, 64, shuffle=True, seed=seed)
    Run(model, loader, optim.Adam(model.parameters(), 1e-3), epochs=epochs,
        val_loader=DataLoader(val, 500), callbacks=[Clock("cnnlab")]).run()
    return evaluate(model, DataLoader(val, 500)).accuracy


def run_torch(model_name, kwargs, state, train, val, epochs, seed):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from torch_models import build  # same architectures written in PyTorch

    tm = build(model_name, **kwargs)
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in state.items()})
    opt = torch.optim.Adam(tm.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    loader = DataLoader(train, 64, shuffle=True, seed=seed)      # the very same batches
    for epoch in range(1, epochs + 1):
        tm.train()
        for x, y in loader:
            opt.zero_grad()
            loss_fn(tm(torch.from_numpy(x.numpy())), torch.from_numpy(y.numpy())).backward()
            opt.step()
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
    ap.add_argument("--torch", action="store_true", help="also run PyTorch, same protocol")
    args = ap.parse_args()
    t = time.perf_counter()
    train, val, shape = mnist() if args.data == "mnist" else cifar10()
    print(f"{args.data}: {len(train):,} train / {len(val):,} validation images, loaded in "
          f"{time.perf_counter() - t:.1f} s; {args.model}, Adam 1e-3, batch 64, {os.cpu_count()} cores")
    cnnlab.manual_seed(args.seed)
    kwargs = dict(in_channels=shape[0], num_classes=10, input_size=shape[1])
    model = models.create(args.model, **kwargs)
    state = {k: v.detach() for k, v in model.state_dict().items()}
    state = {k: cnnlab.tensor(v.numpy().copy(), dtype=v.dtype) for k, v in state.items()}
    acc = run_cnnlab(model, train, val, args.epochs, args.seed)
    print(f"cnnlab final validation accuracy {acc:.2%}")
    if args.torch:
        tacc = run_torch(args.model, kwargs, state, train, val, args.epochs, args.seed)
        print(f"torch  final validation accuracy {tacc:.2%}  (difference {100 * (acc - tacc):+.2f} points)")


if __name__ == "__main__":
    main()
