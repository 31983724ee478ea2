"""Training steps with the register-tiled float32 conv kernels against the scalar ones, in one process.

    .venv/bin/python benchmarks/tiled_ab.py [--nets vgg,cifarresnet,cifarfast] [--rounds 8]
    NUMBA_CPU_NAME=znver2 NUMBA_CACHE_DIR=/tmp/nb_avx2 .venv/bin/python benchmarks/tiled_ab.py
    .venv/bin/python benchmarks/tiled_ab.py --switch unpadded --rounds 10
    .venv/bin/python benchmarks/tiled_ab.py --switch unpadded_s2 --nets cifarresnet --rounds 10

With --switch unpadded it compares the 3x3 padding-1 kernels that read unpadded planes
(cpu_conv_masked.py) with the tiled ones they replace (cpu_conv._UNPADDED on and off);
with --switch unpadded_s2 only the stride-2 ones (cpu_conv_masked_s2.py, cpu_conv._UNPADDED_S2).
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
    ap.add_argument("--switch", choices=("tiled", "unpadded", "unpadded_s2"), default="tiled",
                    help="tiled: tiled against scalar kernels; unpadded: unpadded against tiled; "
                         "unpadded_s2: the same for the stride-2 kernels alone")
    args = ap.parse_args()
    flag = {"tiled": "_TILED", "unpadded": "_UNPADDED", "unpadded_s2": "_UNPADDED_S2"}[args.switch]
    labels = ("tiled", "scalar") if args.switch == "tiled" else ("unpadded", "tiled")
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
            setattr(cpu_conv, flag, tiled)
            for _ in range(3):
                step()
        for r in range(args.rounds):
            for tiled in ((True, False) if r % 2 == 0 else (False, True)):
                setattr(cpu_conv, flag, tiled)
                best = float("inf")
                for _ in range(3):
                    t = time.perf_counter()
                    step()
                    best = min(best, time.perf_counter() - t)
                times[tiled].append(best)
        ratios = [a / b for a, b in zip(times[True], times[False])]
        print(f"{name:12s} {labels[0]} {statistics.median(times[True]) * 1e3:7.2f} ms   "
              f"{labels[1]} {statistics.median(times[False]) * 1e3:7.2f} ms   "
              f"per round {labels[0]}/{labels[1]}: median {statistics.median(ratios):.3f} "
              f"({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
