"""`cnnlab.accelerator`: PyTorch's device-neutral questions about the GPU.

Here the one accelerator is 'cuda' (a GPU, or numba's simulator when
NUMBA_ENABLE_CUDASIM=1); on a machine without one, `is_available()` is False and
`current_accelerator()` is None, so tutorial code falls back to the CPU:

>>> device = cnnlab.accelerator.current_accelerator().type if cnnlab.accelerator.is_available() else "cpu"
"""
from __future__ import annotations

from . import cuda
from .tensor import device


def is_available() -> bool:
    """True when tensors can be moved to the accelerator ('cuda')."""
    return cuda.is_available()


def current_accelerator(check_available: bool = False) -> device | None:
    """device('cuda') when one is usable, else None."""
    return device("cuda") if cuda.is_available() else None


def device_count() -> int:
    return cuda.device_count()


def current_device_index() -> int:
    """0 when an accelerator is usable, else -1 (PyTorch's 'none')."""
    return 0 if cuda.is_available() else -1


current_device_idx = current_device_index


def set_device_index(device: "int | str | device | None") -> None:
    """Only device 0 exists here."""
    index = getattr(device, "index", device)
    if index not in (None, 0, "cuda", "cuda:0"):
        raise RuntimeError(f"cnnlab uses one accelerator, device 0; got {device!r}")


set_device_idx = set_device_index


def synchronize(device: "int | str | device | None" = None) -> None:
    """Wait for the accelerator's queued work (a no-op without one)."""
    if cuda.is_available():
        from numba import cuda as numba_cuda

        numba_cuda.synchronize()


def empty_cache() -> None:
    """Hand the device buffers kept for reuse back (see cnnlab.cuda.empty_cache)."""
    cuda.empty_cache()
