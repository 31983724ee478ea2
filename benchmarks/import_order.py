"""Does cnnlab's training speed depend on whether a script imports NumPy first?

    .venv/bin/python benchmarks/import_order.py [--rounds 5] [--repeat 30] [--nets convnet,simplecnn]
                                                [--env OMP_WAIT_POLICY=PASSIVE]

Each measurement is a fresh process that imports either NumPy and then cnnlab
("numpy first", what most scripts and notebooks do) or cnnlab alone ("cnnlab first"),
then times training steps (SGD momentum, batch 64, median of --repeat steps after
warm-up; also the CPU time per step of the main thread and of all other threads together,
which counts a spinning thread pool even when the machine is too busy for wall times to
show it: numba's one worker takes a few ms, a spinning OpenBLAS pool tens). The two orders alternate, starting order swapped every round, and the table
gives the median over rounds of each order and their ratio. OpenBLAS reads its thread
settings only when it loads, so an engine that relied on them would differ here; the
target (issue 17) is a ratio within 5%. --env passes a variable to both children, e.g.
to compare with OMP_WAIT_POLICY=PASSIVE exported by hand.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import sys, json, os
sys.path.insert(0, {here!r})
if {numpy_first}:
    import numpy
import cnnlab
import numpy as np
from cnnlab import models, nn, optim
from timing import ZOO_INPUTS, median_ms

def thread_cpu():
    # CPU seconds of each thread of this process (Linux): a spinning BLAS pool shows up here
    # even when the machine is too busy for wall times to show it
    out = {{}}
    for t in os.listdir("/proc/self/task"):
        f = open("/proc/self/task/%s/stat" % t).read().rsplit(")", 1)[1].split()
        out[int(t)] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return out

out = {{}}
for name in {nets!r}:
    c, s = ZOO_INPUTS[name]
    cnnlab.manual_seed(0)
    model = models.create(name, in_channels=c, input_size=s)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = cnnlab.randn(64, c, s, s)
    y = cnnlab.randint(0, 10, (64,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    before = thread_cpu()
    out[name] = median_ms(step, {repeat}, warmup=5)
    after = thread_cpu()
    per_step = {{t: (after[t] - before.get(t, 0)) * 1e3 / ({repeat} + 5) for t in after}}
    out[name + " cpu"] = per_step.pop(os.getpid())
    out[name + " helpers"] = sum(per_step.values())
print(json.dumps(out))
"""


def run_child(numpy_first: bool, nets: list[str], repeat: int, env: dict[str, str]) -> dict[str, float]:
    code = CHILD.format(here=str(HERE), numpy_first=numpy_first, nets=nets, repeat=repeat)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env},
                         check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--nets", default="convnet,simplecnn")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for both children")
    args = ap.parse_args()
    nets = args.nets.split(",")
    env = dict(kv.split("=", 1) for kv in args.env)
    keys = nets + [n + " cpu" for n in nets] + [n + " helpers" for n in nets]
    times: dict[bool, dict[str, list[float]]] = {True: {k: [] for k in keys}, False: {k: [] for k in keys}}
    run_child(False, nets, 3, env)   # compile and cache the kernels outside the timed rounds
    for r in range(args.rounds):
        for numpy_first in ((True, False) if r % 2 == 0 else (False, True)):
            for n, ms in run_child(numpy_first, nets, args.repeat, env).items():
                times[numpy_first][n].append(ms)
    load = os.getloadavg()
    print(f"import order, {args.rounds} alternated rounds of fresh processes, median of {args.repeat} steps each; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" + (f"; env {env}" if env else ""))
    print(f"{'net (batch 64, SGD momentum)':<30}{'numpy first':>12}{'cnnlab first':>14}{'ratio':>8}"
          f"   CPU ms per step (main thread + all others), numpy first | cnnlab first")
    for n in nets:
        a, b = statistics.median(times[True][n]), statistics.median(times[False][n])
        cpu = [(statistics.median(times[o][n + " cpu"]), statistics.median(times[o][n + " helpers"]))
               for o in (True, False)]
        print(f"{n:<30}{a:10.2f} ms{b:11.2f} ms{a / b:8.3f}   "
              + " | ".join(f"{m:.1f} + {h:.1f}" for m, h in cpu))


if __name__ == "__main__":
    main()
