"""Device memory of the CUDA backend: the buffer pool and the traffic counters.

A training loop allocates the same sizes every step (the uploaded batch, each
layer's activations and gradients). cudaMalloc per op would cost more than the
small kernels themselves, and numba frees dropped buffers in batches, each batch a
device synchronisation. So a freed buffer goes back to a pool keyed by (length,
dtype) and the next request of that size takes it. Reuse needs no event or sync:
every kernel and copy runs on the default stream, in order, so a kernel that read
the old contents has finished before anything queued later writes the new ones.

The pool holds at most cnnlab._config.CUDA_POOL_BYTES; a buffer freed while it is
full is released to numba. On out-of-memory the pool is emptied and the
allocation tried once more.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from .. import _config as cfg

COUNTS: dict[str, int] = dict(launches=0, to_host=0, to_device=0, allocations=0, reuses=0)
"""Running totals since import, for tests and profiling (subtract two `counts()` snapshots):

    launches     kernels launched through cuda_array.launch (every launch goes there)
    to_host      device-to-host copies (each one waits for the device: a synchronisation)
    to_device    host-to-device copies (uploads)
    allocations  new device buffers (cudaMalloc), i.e. requests the pool could not serve
    reuses       requests served from the pool
"""

_free: dict[tuple[int, str], list] = {}
_free_bytes = [0]


def counts() -> dict[str, int]:
    """A snapshot of COUNTS: `after - before` per key counts what ran in between."""
    return dict(COUNTS)


def pool_bytes() -> int:
    """Bytes of freed device buffers the pool holds for reuse."""
    return _free_bytes[0]


def empty_pool() -> None:
    """Release every pooled buffer to numba (which frees them on its next flush)."""
    _free.clear()
    _free_bytes[0] = 0


class Block:
    """One device buffer; when the last DeviceArray viewing it dies, it returns to the pool."""

    __slots__ = ("buf", "key")

    def __init__(self, n: int, dtype: np.dtype):
        self.key = (max(int(n), 1), dtype.str)
        stack = _free.get(self.key)
        if stack:
            self.buf = stack.pop()
            _free_bytes[0] -= self.buf.nbytes
            COUNTS["reuses"] += 1
            return
        COUNTS["allocations"] += 1
        try:
            self.buf = cuda.device_array(self.key[0], dtype)
        except Exception:  # out of memory (numba's error types vary by version): drop the pool, try once more
            empty_pool()
            self.buf = cuda.device_array(self.key[0], dtype)

    def __del__(self):
        try:
            if _free_bytes[0] + self.buf.nbytes <= cfg.CUDA_POOL_BYTES:
                _free.setdefault(self.key, []).append(self.buf)
                _free_bytes[0] += self.buf.nbytes
        except Exception:  # interpreter shutdown: the modules are already half gone
            pass


def upload(host: np.ndarray) -> Block:
    """A block holding a copy of the C-contiguous, non-empty `host` (a pooled buffer when one fits)."""
    block = Block(host.size, host.dtype)
    block.buf.copy_to_device(host.reshape(-1))
    COUNTS["to_device"] += 1
    return block


def download(buf) -> np.ndarray:
    """The flat contents of a device buffer on the host (waits for the kernels before it)."""
    COUNTS["to_host"] += 1
    return buf.copy_to_host()
