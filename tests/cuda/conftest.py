"""tests/cuda: the CUDA backend against its CPU twin, in numba's simulator or on a GPU.

Without a GPU (the variable must be set before numba is imported):

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda -q

On a machine with a GPU the same tests run on it (all carry the marker `gpu`).
With neither, every test here is skipped except those marked `without_cuda`,
which check the error a user gets. Launch shapes are shrunk for the whole session
so that even tiny arrays span several blocks.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SMALL_LAUNCHES = dict(CUDA_THREADS=8, CUDA_REDUCE_THREADS=8, CUDA_BLOCK_2D=(4, 2), CUDA_CONV_CHANNELS=2,
                      CUDA_CONV_TAPS=4, CUDA_TILE=4, CUDA_TILE_OUTPUTS=(2, 1), CUDA_RNG_STATES=16)


def _unavailable() -> str | None:
    import cnnlab

    return cnnlab.cuda.unavailable_reason()


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: runs the CUDA backend (on a GPU, or in numba's CUDA simulator)")
    config.addinivalue_line("markers", "without_cuda: checks what happens when no CUDA device is usable")


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if HERE in Path(str(item.path)).parents]
    if not mine:
        return
    reason = _unavailable()
    for item in mine:
        if item.get_closest_marker("without_cuda"):
            continue
        item.add_marker(pytest.mark.gpu)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"the CUDA backend is unavailable: {reason}"))


@pytest.fixture(autouse=True, scope="session")
def small_launches():
    """Threads per block (and friends) small, so several blocks launch even for tiny arrays."""
    from cnnlab import _config

    old = {k: getattr(_config, k) for k in SMALL_LAUNCHES}
    for k, v in SMALL_LAUNCHES.items():
        setattr(_config, k, v)
    yield
    for k, v in old.items():
        setattr(_config, k, v)


@pytest.fixture(autouse=True, scope="session")
def record_launches():
    """With CNNLAB_RECORD_LAUNCHES=path, write every (kernel, argument types) launched to path
    as JSON; tests/cuda/ptx_check.py compiles each of them for a real GPU from it."""
    path = os.environ.get("CNNLAB_RECORD_LAUNCHES")
    if not path or _unavailable():
        yield
        return
    from ptx_check import Recorder

    recorder = Recorder()
    yield
    # under pytest-xdist each worker records its own share; ptx_check's load_launches merges them
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    recorder.save(f"{path}.{worker}" if worker else path)
