"""cnnlab.cuda_layout.launch_map names the block and thread that really computes each output
cell: checked by recording, in the simulator, which thread writes which cell."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import cnnlab
import cnnlab.nn.functional as F
from cnnlab import _config, cuda_layout
from cuda_twins import SIMULATOR

pytestmark = pytest.mark.skipif(not SIMULATOR, reason="records thread indices through numba's simulator")


def _record_writes(monkeypatch, kernel_name, out_arg):
    """Run with kernel `kernel_name`'s output argument replaced by an array that notes, for each
    cell written, the (blockIdx, threadIdx) of the simulated thread writing it."""
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    from cnnlab.backends import cuda_array

    writes: dict[tuple, tuple] = {}

    class Recording(FakeCUDAArray):
        def __setitem__(self, index, value):
            t = threading.current_thread()
            cell = tuple(int(i) for i in np.atleast_1d(index))  # flat (conv) or (n, k, y, x) (pooling)
            assert cell not in writes, f"cell {cell} written twice"
            writes[cell] = (tuple(t.blockIdx), tuple(t.threadIdx)[:2])
            super().__setitem__(index, value)

    original = cuda_array.launch

    def launch(kernel, grid, block, *args):
        rebuild = getattr(kernel, "cnnlab_rebuild", None)
        name = rebuild[1][0] if rebuild else kernel.__name__
        if name == kernel_name:
            args = list(args)
            args[out_arg] = Recording(args[out_arg]._ary)
        original(kernel, grid, block, *args)

    monkeypatch.setattr(cuda_array, "launch", launch)
    return writes


def _assert_matches(writes, layout, shape):
    writes = {(np.unravel_index(c[0], shape) if len(c) == 1 else c): who for c, who in writes.items()}
    assert len(writes) == int(np.prod(shape))
    for cell, (block, thread) in writes.items():
        assert tuple(layout.block_index[cell]) == block, cell
        assert tuple(layout.thread_index[cell]) == thread, cell


@pytest.mark.parametrize("max_z", [cuda_layout.MAX_GRID_Z, 2])  # 2: blocks along z take several planes
def test_conv_cells(monkeypatch, max_z):
    monkeypatch.setattr(cuda_layout, "MAX_GRID_Z", max_z)
    writes = _record_writes(monkeypatch, "forward", out_arg=4)
    x = cnnlab.randn(2, 2, 5, 7).cuda()
    w = cnnlab.randn(3, 2, 3, 3).cuda()
    y = F.conv2d(x, w, padding=(1, 0))
    layout = cuda_layout.launch_map(y.shape)
    assert layout.block == tuple(_config.CUDA_BLOCK_2D) and layout.channels_per_thread == _config.CUDA_CONV_CHANNELS
    assert layout.grid[2] == min(max_z, 2 * 2)  # 2 images x ceil(3 channels / 2 per thread)
    _assert_matches(writes, layout, y.shape)


def test_pool_cells(monkeypatch):
    writes = _record_writes(monkeypatch, "_pool_fwd", out_arg=1)  # max and average pooling: one kernel
    y = F.max_pool2d(cnnlab.randn(1, 3, 9, 6).cuda(), 2, 2, 1)
    _assert_matches(writes, cuda_layout.launch_map(y.shape, channels_per_thread=1), y.shape)


def test_block_ids_number_blocks_densely():
    m = cuda_layout.launch_map((2, 5, 9, 10), block=(4, 4), channels_per_thread=2)
    assert m.grid == (3, 3, 6)
    assert sorted(np.unique(m.block_id)) == list(range(3 * 3 * 6))
