"""The one timing rule the CPU benchmarks share, and the zoo nets' inputs (no cnnlab or torch
import: torch_alone.py and the fresh processes of import_order.py use it too)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    """Median wall time of `fn` in milliseconds over `repeat` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


# (channels, size) of each zoo net's input in the step benchmarks (batch 64)
ZOO_INPUTS = {"convnet": (1, 28), "simplecnn": (3, 32), "modern": (1, 28), "vgg": (3, 32), "cifarresnet": (3, 32),
              "cifarfast": (3, 32)}
