"""PyTorch's training steps timed in a process of their own (no cnnlab imported).

    .venv/bin/python benchmarks/torch_alone.py [--repeat 30] [--only resnet18]
    .venv/bin/python benchmarks/torch_alone.py --nets convnet,simplecnn,vgg,cifarresnet [--json]

`--nets` times just those zoo nets (batch 64, SGD momentum) and, with --json, prints them
as one JSON line: `bench_engine.py --alone` runs it that way, alternating with cnnlab in
a fresh process of its own.

bench_engine.py's in-process rows time PyTorch in the same process as cnnlab, where the
two libraries' thread pools share the cores (and, once cnnlab's first kernel has loaded
libgomp, a PyTorch imported later shares its short spin, cpu_threads.SPIN_COUNT). This script gives the
figure for PyTorch alone, at its default settings, with the same models, batch and
optimizer as bench_engine.py;
`--only resnet18` times just the textbook ResNet-18 (batch 16, 1x28x28), to alternate with
`bench_engine.py --only resnet18 --no-torch` (cnnlab alone in its process).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import resnet18_def
from timing import ZOO_INPUTS, median_ms
from torch_models import build


def make_step(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def zoo_step_ms(name: str, repeat: int, batch: int = 64) -> float:
    """Median time of one PyTorch training step of a zoo net's twin."""
    rng = np.random.default_rng(0)
    c, size = ZOO_INPUTS[name]
    torch.manual_seed(0)
    model = build(name, in_channels=c, num_classes=10, input_size=size)
    x = torch.from_numpy(rng.standard_normal((batch, c, size, size)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, batch))
    return median_ms(make_step(model, x, y), repeat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--only", choices=["resnet18"], help="time this net alone")
    ap.add_argument("--nets", help="comma-separated zoo nets to time (batch 64), nothing else")
    ap.add_argument("--json", action="store_true", help="with --nets: one JSON line {net: ms}")
    args = ap.parse_args()
    if args.nets:
        times = {n: zoo_step_ms(n, args.repeat) for n in args.nets.split(",")}
        if args.json:
            print(json.dumps(times))
        else:
            for n, ms in times.items():
                print(f"PyTorch alone, {n} train step, batch 64: {ms:7.2f} ms ({torch.get_num_threads()} threads)")
        return
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = resnet18_def.build(torch)
    x = torch.from_numpy(rng.standard_normal((16, 1, 28, 28)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, 16))
    print(f"PyTorch alone, resnet18 (d2l) train step, batch 16, 28x28: "
          f"{median_ms(make_step(model, x, y), args.repeat):7.2f} ms ({torch.get_num_threads()} threads)", flush=True)
    if args.only:
        return
    for name in ZOO_INPUTS:
        print(f"PyTorch alone, {name} train step, batch 64: {zoo_step_ms(name, args.repeat):7.2f} ms "
              f"({torch.get_num_threads()} threads)", flush=True)


if __name__ == "__main__":
    main()
