"""Resident memory of training, cnnlab next to PyTorch, each in a fresh process of its own.

    .venv/bin/python benchmarks/bench_memory.py [--nets convnet,simplecnn,vgg,cifarresnet]
                                                [--long convnet --steps 2000]

Per net (batch 64, SGD momentum): the process's resident set after imports, model and
batch (the baseline), and its peak (ru_maxrss) after 20 training steps; the difference
is what a step needs at its highest. cnnlab raises glibc's mmap and trim thresholds
(cnnlab/_config.py) so a step's temporaries are reused instead of mapped afresh; --long
then trains one net for --steps steps and samples the resident set every 10% of them,
to show that the kept memory stops growing (a leak would climb steadily).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys
sys.path.insert(0, {here!r})
from timing import ZOO_INPUTS

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

name, lib, steps, samples = {name!r}, {lib!r}, {steps}, {samples}
c, s = ZOO_INPUTS[name]
if lib == "torch":
    import torch
    from torch_models import build
    torch.manual_seed(0)
    model = build(name, in_channels=c, num_classes=10, input_size=s)
    mod = torch
else:
    import cnnlab as mod
    mod.manual_seed(0)
    model = mod.models.create(name, in_channels=c, num_classes=10, input_size=s)
opt = mod.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = mod.nn.CrossEntropyLoss()
x, y = mod.randn(64, c, s, s), mod.randint(0, 10, (64,))
base = rss_mb()
trace = []
for i in range(steps):
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()
    if samples and (i + 1) % max(1, steps // samples) == 0:
        trace.append((i + 1, round(rss_mb(), 1)))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"base": base, "peak": peak, "now": rss_mb(), "trace": trace}}))
"""


def child(name: str, lib: str, steps: int, samples: int = 0) -> dict:
    code = CHILD.format(here=str(HERE), name=name, lib=lib, steps=steps, samples=samples)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="convnet,simplecnn,vgg,cifarresnet")
    ap.add_argument("--long", default="convnet", help="net for the long run ('' to skip it)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    libs = ["cnnlab"] + ([] if args.no_torch else ["torch"])
    print(f"resident memory (MB), each library alone in a fresh process; {os.cpu_count()} cores")
    print(f"{'net (batch 64, SGD momentum)':<30}" + "".join(f"{lib + ' base':>14}{lib + ' peak':>14}"
                                                           f"{'step':>8}" for lib in libs))
    for name in args.nets.split(","):
        row = f"{name:<30}"
        for lib in libs:
            r = child(name, lib, 20)
            row += f"{r['base']:14.0f}{r['peak']:14.0f}{r['peak'] - r['base']:8.0f}"
        print(row, flush=True)
    if args.long:
        r = child(args.long, "cnnlab", args.steps, samples=10)
        print(f"\ncnnlab {args.long}, RSS (MB) every {args.steps // 10} of {args.steps} steps: "
              + ", ".join(f"{mb:.0f}" for _, mb in r["trace"])
              + f"; peak {r['peak']:.0f}; growth over the last 90%: {r['trace'][-1][1] - r['trace'][0][1]:+.1f} MB")


if __name__ == "__main__":
    main()
