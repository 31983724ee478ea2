"""Training steps with the register-tiled float32 conv kernels against the scalar ones, in one process.

    .venv/bin/python benchmarks/tiled_ab.py [--nets vgg,cifarresnet,cifarfast] [--rounds 8]
    NUMBA_CPU_NAME=znver2 NUMBA_CACHE_DIR=/tmp/nb_avx2 .venv/bin/python benchmarks/tiled_ab.py

Both kernels run in the same process, switched (cpu_conv._TILED) every three steps and the
order alternated every round, so a VM's drift over minutes reaches both alike; medians over
the rounds of each side's fastest step. With NUMBA_CPU_NAME numba compiles for another CPU
(znver2: AVX2 only, 16 vector registers), which is how cpu_conv_tiled.wide_registers'
choice was measured on an AVX-512 machine.
"""
from __future__ import annotations

import argparse
import statistics
import time

import cnnlab
from cnnlab import models, nn, optim
from cnnlab.backends import cpu_conv
from timing import ZOO_INPUTS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="vgg,cifarresnet,cifarfast")
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    for name in args.nets.split(","):
        cnnlab.manual_seed(0)
        model = models.create(name)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        channels, size = ZOO_INPUTS[name]
        x, y = cnnlab.randn(64, channels, size, size), cnnlab.randint(0, 10, (64,))
        loss_fn = nn.CrossEntropyLoss()

        def step() -> None:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()

        times: dict[bool, list[float]] = {True: [], False: []}
        for tiled in (True, False):   # compile and warm both
            cpu_conv._TILED = tiled
            for _ in range(3):
                step()
        for r in range(args.rounds):
            for tiled in ((True, False) if r % 2 == 0 else (False, True)):
                cpu_conv._TILED = tiled
                best = float("inf")
                for _ in range(3):
                    t = time.perf_counter()
                    step()
                    best = min(best, time.perf_counter() - t)
                times[tiled].append(best)
        print(f"{name:12s} tiled {statistics.median(times[True]) * 1e3:7.2f} ms   "
              f"scalar {statistics.median(times[False]) * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
