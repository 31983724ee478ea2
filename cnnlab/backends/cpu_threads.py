"""When a CPU kernel runs on one thread instead of all of them.

numba's parallel kernels wake sleeping worker threads at every call (cnnlab sets
OMP_WAIT_POLICY=PASSIVE, cnnlab/_config.py) and wait for the slowest. On a small array
the wake-up costs more than the work: a ReLU over 16x512x1x1 took 13 us on two threads
against 4 us on one, and on a busy machine a worker that is not scheduled at once turned
such calls into milliseconds (in a ResNet-18 step, four ReLU backward passes over
16x256x2x2 took 21 ms). Below SERIAL_BELOW elements the kernel therefore runs on the
calling thread alone, as PyTorch's elementwise ops do below their grain size (32768).

Only the thread count changes, never the arithmetic: every kernel routed here gives the
same bits on any number of threads (per-element work, or per-channel sums each made by
one thread).
"""
from __future__ import annotations

from typing import Any, Callable

import numba

SERIAL_BELOW = 32768   # elements a kernel reads or writes


def launch(kernel: Callable, work: int, *args: Any) -> Any:
    """kernel(*args), on the calling thread alone when `work` is under SERIAL_BELOW."""
    if work >= SERIAL_BELOW:
        return kernel(*args)
    threads = numba.get_num_threads()
    if threads == 1:
        return kernel(*args)
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(threads)
