"""Train seed 004's ConvNet on the embedded MNIST sample and print what happens.

This is the README's main job until the desktop app lands: no network and no
files to fetch. It prints the model's summary table, the loss as it falls, and
the accuracy on the held-out digits.

example:
  cnnlab demo                 # one epoch on 12,000 digits, then validation
  cnnlab demo --epochs 2 --lr 0.003
"""
from __future__ import annotations

import argparse
import time

HELP = "train seed 004's ConvNet on the embedded MNIST sample (headless engine demo)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=1, help="passes over the 12,000 training digits (default 1)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0)


def _convnet():
    from .. import nn

    # seed 004's ConvNet, written as its tutorial does
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, 1, 1), nn.MaxPool2d(2, 2, 0), nn.Conv2d(16, 32, 3, 1, 0),
        nn.MaxPool2d(2, 2, 1), nn.Conv2d(32, 64, 1, 1, 0), nn.Conv2d(64, 4, 5, 1, 0),
        nn.Flatten(), nn.Linear(36, 10),
    )


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        raise UsageError("--epochs and --batch-size must be >= 1 and --lr > 0")
    import cnnlab
    from cnnlab import nn
    from cnnlab.data import DataLoader, get_dataset

    cnnlab.manual_seed(args.seed)
    train = get_dataset("mnist-sample", train=True)
    val = get_dataset("mnist-sample", train=False)
    model = _convnet()
    print(cnnlab.summary(model, input_size=(args.batch_size, 1, 28, 28)))
    print(f"\ntraining on {len(train):,} MNIST digits, validating on {len(val):,} (embedded sample)")
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    opt = cnnlab.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    seen = 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        running, correct, count = 0.0, 0, 0
        for step, (x, y) in enumerate(loader, 1):
            opt.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            running += loss.item() * len(y)
            correct += int((out.argmax(1) == y).sum().item())
            count += len(y)
            seen += len(y)
            if step % 50 == 0 or step == len(loader):
                rate = seen / (time.perf_counter() - start)
                print(f"epoch {epoch} step {step:4d}/{len(loader)}  loss {running / count:.4f}  "
                      f"acc {correct / count:6.2%}  {rate:,.0f} img/s", flush=True)
        model.eval()
        vcorrect = 0
        with cnnlab.no_grad():
            for x, y in DataLoader(val, batch_size=500):
                vcorrect += int((model(x).argmax(1) == y).sum().item())
        print(f"epoch {epoch}: validation accuracy {vcorrect / len(val):.2%} "
              f"({time.perf_counter() - start:.1f} s so far)")
    return 0
