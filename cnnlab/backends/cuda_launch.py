"""What runs before and around every kernel launch of the CUDA backend.

`cuda_array.launch` (the one place every launch goes through) calls `run`, which

- checks the launch shape (threads per block, block and grid dimensions) against
  the device's limits, and on a GPU each kernel's registers and static shared
  memory at its first launch, so a launch that cannot run fails with a sentence
  naming the kernel, not with CUDA_ERROR_INVALID_VALUE;
- checks cnnlab._config's CUDA_* launch settings (cached until one changes);
- prints the compile notice once, before the first kernel that numba has in
  neither memory nor its disk cache (`cache=True`) compiles;
- turns a failed launch into `CudaLaunchError`: kernel, grid, block, argument
  types, and numba's error in one sentence (cnnlab.cuda.explain).

In numba's simulator there are no registers and no compiler: the documented CUDA
limits stand in for the device's, and the compile notice never prints.
"""
from __future__ import annotations

import functools
import sys
from typing import Any, NamedTuple

import numpy as np
from numba.core import config as _numba_config

from .. import _config as cfg

SIMULATOR = bool(_numba_config.ENABLE_CUDASIM)


class CudaLaunchError(RuntimeError):
    """A kernel could not be launched (or failed while running); the message says which and why."""


class Limits(NamedTuple):
    threads_per_block: int
    block: tuple[int, int, int]
    grid: tuple[int, int, int]
    shared_bytes_per_block: int
    registers_per_block: int


# CUDA's documented limits for every compute capability from 5.0 on (static shared memory: 48 KiB)
DOCUMENTED = Limits(1024, (1024, 1024, 64), (2 ** 31 - 1, 65535, 65535), 48 * 1024, 65536)


@functools.lru_cache(maxsize=None)
def device_limits() -> Limits:
    """The current device's limits (the documented ones in the simulator or when the driver will not say)."""
    if SIMULATOR:
        return DOCUMENTED
    try:
        from numba import cuda

        d = cuda.get_current_device()
        return Limits(d.MAX_THREADS_PER_BLOCK, (d.MAX_BLOCK_DIM_X, d.MAX_BLOCK_DIM_Y, d.MAX_BLOCK_DIM_Z),
                      (d.MAX_GRID_DIM_X, d.MAX_GRID_DIM_Y, d.MAX_GRID_DIM_Z), d.MAX_SHARED_MEMORY_PER_BLOCK,
                      d.MAX_REGISTERS_PER_BLOCK)
    except Exception:  # no attribute API in this numba: the documented limits are the floor of every GPU
        return DOCUMENTED


def dims3(d) -> tuple[int, int, int]:
    """A launch dimension (int or tuple of 1-3 ints) as (x, y, z)."""
    d = (d,) if isinstance(d, int) else tuple(int(v) for v in d)
    return tuple(d) + (1,) * (3 - len(d))  # type: ignore[return-value]


def capped(blocks: int, axis: int = 1) -> int:
    """At most the device's limit of blocks along `axis` (0 x, 1 y, 2 z), at least 1: for kernels
    whose blocks stride over the rest (`for b in range(blockIdx.y, count, gridDim.y)`)."""
    return max(1, min(int(blocks), device_limits().grid[axis]))


def kernel_name(kernel) -> str:
    rebuild = getattr(kernel, "cnnlab_rebuild", None)
    name = getattr(kernel, "__name__", None) or getattr(getattr(kernel, "py_func", None), "__name__", "kernel")
    return f"{rebuild[0]}{tuple(rebuild[1])}" if rebuild else name


def check_shape(kernel, grid, block, limits: Limits | None = None) -> None:
    """Raise CudaLaunchError when the grid or block cannot be launched on the device."""
    lim = limits or device_limits()
    g, b = dims3(grid), dims3(block)
    problem = None
    threads = b[0] * b[1] * b[2]
    if min(b) < 1 or min(g) < 1:
        problem = "every grid and block dimension must be at least 1"
    elif threads > lim.threads_per_block:
        problem = f"{threads} threads per block, over the device's {lim.threads_per_block}"
    else:
        for what, have, top in (("block", b, lim.block), ("grid", g, lim.grid)):
            for axis, (v, m) in enumerate(zip(have, top)):
                if v > m:
                    problem = f"{what} dimension {'xyz'[axis]} is {v:,}, over the device's limit of {m:,}"
                    break
            if problem:
                break
    if problem:
        raise CudaLaunchError(f"cannot launch CUDA kernel {kernel_name(kernel)} with grid {g} and block {b}: "
                              f"{problem}")


def check_resources(kernel, compiled, threads: int, limits: Limits | None = None) -> None:
    """Registers and static shared memory of a compiled kernel against the device, for `threads` per block."""
    lim = limits or device_limits()
    regs = int(getattr(compiled, "regs_per_thread", 0) or 0)
    shared = int(getattr(compiled, "shared_mem_per_block", 0) or 0)
    if regs and regs * threads > lim.registers_per_block:
        raise CudaLaunchError(
            f"cannot launch CUDA kernel {kernel_name(kernel)} with {threads} threads per block: it uses {regs} "
            f"registers per thread, and {regs} x {threads} is over the device's {lim.registers_per_block:,} "
            f"registers per block; lower the thread count in cnnlab._config (CUDA_THREADS, CUDA_REDUCE_THREADS, "
            f"CUDA_BLOCK_2D, or CUDA_TILE and CUDA_TILE_OUTPUTS)")
    if shared > lim.shared_bytes_per_block:
        raise CudaLaunchError(
            f"cannot launch CUDA kernel {kernel_name(kernel)}: it needs {shared:,} bytes of shared memory per "
            f"block, over the device's {lim.shared_bytes_per_block:,}; lower CUDA_REDUCE_THREADS, CUDA_TILE or "
            f"CUDA_TILE_OUTPUTS")


# --------------------------------------------------------------------------- _config's CUDA settings

CONFIG_NAMES = ("CUDA_THREADS", "CUDA_REDUCE_THREADS", "CUDA_BLOCK_2D", "CUDA_CONV_CHANNELS", "CUDA_CONV_TAPS",
                "CUDA_TILE", "CUDA_TILE_OUTPUTS", "CUDA_RNG_STATES", "CUDA_POOL_BYTES")
_valid_config: list = [None]


def check_config() -> None:
    """Validate cnnlab._config's CUDA settings (once per change of any of them)."""
    values = tuple(getattr(cfg, n) for n in CONFIG_NAMES)
    if values != _valid_config[0]:
        cfg.check_cuda_settings(DOCUMENTED.threads_per_block, DOCUMENTED.shared_bytes_per_block)
        _valid_config[0] = values


# --------------------------------------------------------------------------- the compile notice

NOTICE = "cnnlab: compiling CUDA kernels (first run only; later runs load them from numba's cache)..."
_notice = {"printed": False}
_resources_checked: set = set()  # (id(kernel), threads per block) already checked


def will_compile(kernel, argtypes) -> bool:
    """Will launching `kernel` with these argument types compile it: not in memory, not in the disk cache?"""
    if argtypes in kernel.overloads:
        return False
    try:
        cache = kernel._cache
        key = cache._index_key(argtypes, kernel.targetctx.codegen())
        return key not in cache._cache_file._load_index()
    except Exception:  # no disk cache (cache=False, read-only folder) or numba's internals moved
        return True


def before_compile(kernel, argtypes, stream=None) -> None:
    """Print the compile notice once per process, when this launch is about to compile."""
    if not _notice["printed"] and will_compile(kernel, argtypes):
        _notice["printed"] = True
        if not cfg.QUIET:
            print(NOTICE, file=stream or sys.stderr, flush=True)


def _configure(kernel, grid, block, args):
    """kernel[grid, block], with (on a GPU, at the first launch of each kernel and block size) the
    compile notice before numba compiles, and registers and shared memory checked after it compiles
    (numba's pre-launch callback hands over the compiled kernel, before the launch)."""
    configured = kernel[grid, block]
    if SIMULATOR or not hasattr(kernel, "overloads"):
        return configured
    b = dims3(block)
    key = (id(kernel), b[0] * b[1] * b[2])
    if key not in _resources_checked:
        before_compile(kernel, tuple(kernel.typeof_pyval(a) for a in args))
        callbacks = getattr(configured, "pre_launch_callbacks", None)
        if callbacks is not None:  # older numba has no callbacks: the launch error is explained instead
            callbacks.append(lambda compiled, _config: check_resources(kernel, compiled, key[1]))
        _resources_checked.add(key)
    return configured


# --------------------------------------------------------------------------- the launch

def arg_types(args) -> str:
    """Argument types as numba sees them, in short: float32[4d], int64, tuple, ..."""
    out = []
    for a in args:
        shape, dtype = getattr(a, "shape", None), getattr(a, "dtype", None)
        if isinstance(a, np.generic):
            out.append(str(a.dtype))
        elif shape is not None and dtype is not None:
            out.append(f"{dtype}[{len(shape)}d]")
        else:
            out.append(type(a).__name__)
    return ", ".join(out)


_fine_shapes: set = set()  # (grid, block) pairs already checked against the device


def run(kernel: Any, grid, block, args: tuple) -> None:
    """Check, then launch kernel[grid, block](*args); every failure becomes a CudaLaunchError."""
    check_config()
    shape = (grid, block)
    if shape not in _fine_shapes:  # a training loop repeats its few dozen shapes: check each once
        check_shape(kernel, grid, block)
        if len(_fine_shapes) > 4096:
            _fine_shapes.clear()
        _fine_shapes.add(shape)
    try:
        _configure(kernel, grid, block, args)(*args)
    except CudaLaunchError:
        raise
    except Exception as e:
        from ..cuda import explain

        raise CudaLaunchError(f"CUDA kernel {kernel_name(kernel)} failed (grid {dims3(grid)}, block "
                              f"{dims3(block)}, arguments ({arg_types(args)})): {explain(e)}") from e
