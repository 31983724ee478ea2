"""Which CUDA block and thread computes which output cell of a conv2d or pooling.

The CUDA backend gives every output cell its own thread. Threads form blocks of
`bx x by` cells tiling the output plane; the grid's third axis walks the planes,
plane z = image * groups + channel group, where a conv thread computes
`channels_per_thread` output channels of its cell (pooling: one channel). A grid
has at most 65,535 blocks along z, so block z handles planes z, z + grid_z, ...

This module is pure Python: the backend launches with `grid()` and the teaching
views colour cells with `launch_map()`, so both read the same arithmetic.

>>> m = launch_map((1, 8, 6, 6), block=(4, 4), channels_per_thread=4)
>>> m.grid, m.block
((2, 2, 2), (4, 4))
>>> m.block_index[0, 5, 1, 4], m.thread_index[0, 5, 1, 4]   # cell (n=0, k=5, y=1, x=4)
(array([1, 0, 1]), array([0, 1]))
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

MAX_GRID_Z = 65535  # CUDA's limit on gridDim.z


class LaunchMap(NamedTuple):
    """For an output of shape (N, K, H, W): the launch and, per cell, its block and thread."""

    grid: tuple[int, int, int]          # blocks along (x, y, z)
    block: tuple[int, int]              # threads along (x, y)
    channels_per_thread: int
    block_index: np.ndarray             # (N, K, H, W, 3): blockIdx (x, y, z) computing the cell
    thread_index: np.ndarray            # (N, K, H, W, 2): threadIdx (x, y) within that block
    block_id: np.ndarray                # (N, K, H, W): blocks numbered x + gx*(y + gy*z), for colouring


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def grid(out_shape: Sequence[int], block: Sequence[int], channels_per_thread: int = 1) -> tuple[int, int, int]:
    """Blocks along (x, y, z) for one thread per output cell of an (N, K, H, W) output."""
    n, k, h, w = (int(s) for s in out_shape)
    bx, by = block
    planes = n * _ceil_div(k, channels_per_thread)
    return _ceil_div(w, bx), _ceil_div(h, by), max(1, min(planes, MAX_GRID_Z))


def launch_map(out_shape: Sequence[int], block: Sequence[int] | None = None,
               channels_per_thread: int | None = None) -> LaunchMap:
    """Map every cell (n, k, y, x) of a conv output to the CUDA block and thread that computes it.

    Defaults are the backend's: block = cnnlab._config.CUDA_BLOCK_2D and
    channels_per_thread = CUDA_CONV_CHANNELS (pass 1 for pooling).
    Cell (n, k, y, x) is computed by thread (x % bx, y % by) of block
    (x // bx, y // by, (n * groups + k // c) % grid_z), where c = channels_per_thread
    and groups = ceil(K / c).
    """
    from . import _config

    block = tuple(int(b) for b in (block or _config.CUDA_BLOCK_2D))
    c = int(channels_per_thread or _config.CUDA_CONV_CHANNELS)
    n, k, h, w = (int(s) for s in out_shape)
    g = grid(out_shape, block, c)
    groups = _ceil_div(k, c)
    nn, kk, yy, xx = np.meshgrid(np.arange(n), np.arange(k), np.arange(h), np.arange(w), indexing="ij")
    plane = nn * groups + kk // c
    block_index = np.stack([xx // block[0], yy // block[1], plane % g[2]], axis=-1)
    thread_index = np.stack([xx % block[0], yy % block[1]], axis=-1)
    block_id = block_index[..., 0] + g[0] * (block_index[..., 1] + g[1] * block_index[..., 2])
    return LaunchMap(g, block, c, block_index, thread_index, block_id)
