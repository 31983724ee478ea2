"""PyTorch's training steps timed in a process of their own (no cnnlab imported).

    .venv/bin/python benchmarks/torch_alone.py [--repeat 30] [--only resnet18]

bench_engine.py times PyTorch in the same process as cnnlab, where cnnlab's
OMP_WAIT_POLICY=PASSIVE (see cnnlab/_config.py) also applies to PyTorch's OpenMP
threads and slows it by about 15%. This script gives the figure for PyTorch alone, at
its default settings, with the same models, batch and optimizer as bench_engine.py;
`--only resnet18` times just the textbook ResNet-18 (batch 16, 1x28x28), to alternate with
`bench_engine.py --only resnet18 --no-torch` (cnnlab alone in its process).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import resnet18_def
from timing import median_ms
from torch_models import build


def make_step(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--only", choices=["resnet18"], help="time this net alone")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = resnet18_def.build(torch)
    x = torch.from_numpy(rng.standard_normal((16, 1, 28, 28)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, 16))
    print(f"PyTorch alone, resnet18 (d2l) train step, batch 16, 28x28: "
          f"{median_ms(make_step(model, x, y), args.repeat):7.2f} ms ({torch.get_num_threads()} threads)", flush=True)
    if args.only:
        return
    for name, shape in (("convnet", (1, 28, 28)), ("simplecnn", (3, 32, 32)), ("modern", (1, 28, 28))):
        torch.manual_seed(0)
        model = build(name, in_channels=shape[0], num_classes=10, input_size=shape[1])
        x = torch.from_numpy(rng.standard_normal((64,) + shape).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, 10, 64))
        print(f"PyTorch alone, {name} train step, batch 64: {median_ms(make_step(model, x, y), args.repeat):7.2f} ms "
              f"({torch.get_num_threads()} threads)", flush=True)


if __name__ == "__main__":
    main()
