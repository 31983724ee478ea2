"""Launches are checked against CUDA's limits before they run, and fail in words.

The pure checks (marked without_cuda) run in every pass; those that launch kernels run
in numba's simulator (or on a GPU), with the documented limits standing in for a device's.
"""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab import _config
from cnnlab.backends import cuda_launch
from cnnlab.backends.cuda_launch import DOCUMENTED, CudaLaunchError, check_resources, check_shape


class _Kernel:
    __name__ = "_some_kernel"


@pytest.mark.without_cuda
@pytest.mark.parametrize("grid, block, words", [
    ((1, 65536), 32, ["grid dimension y is 65,536", "limit of 65,535"]),
    ((1, 1, 70000), 32, ["grid dimension z is 70,000"]),
    (2 ** 31, 32, ["grid dimension x is 2,147,483,648", "2,147,483,647"]),
    (4, 1025, ["1025 threads per block, over the device's 1024"]),
    (4, (64, 32), ["2048 threads per block"]),
    (4, (1, 1, 65), ["block dimension z is 65, over the device's limit of 64"]),
    ((0, 1), 32, ["at least 1"]),
])
def test_a_launch_over_cuda_limits_is_refused_in_words(grid, block, words):
    with pytest.raises(CudaLaunchError) as e:
        check_shape(_Kernel(), grid, block, DOCUMENTED)
    message = str(e.value)
    assert message.startswith("cannot launch CUDA kernel _some_kernel with grid"), message
    for w in words:
        assert w in message, message


@pytest.mark.without_cuda
@pytest.mark.parametrize("grid, block", [((2 ** 31 - 1, 65535, 65535), (32, 32)), (1, (1024, 1, 1)), (7, (8, 8, 16))])
def test_launches_at_the_limits_pass(grid, block):
    check_shape(_Kernel(), grid, block, DOCUMENTED)


@pytest.mark.without_cuda
def test_registers_and_shared_memory_are_checked_per_block():
    class Compiled:
        regs_per_thread = 96
        shared_mem_per_block = 1024

    check_resources(_Kernel(), Compiled(), 512, DOCUMENTED)  # 96 x 512 = 49,152 registers: fits
    with pytest.raises(CudaLaunchError, match=r"96 registers per thread, and 96 x 1024 is over the device's "
                                              r"65,536 registers per block"):
        check_resources(_Kernel(), Compiled(), 1024, DOCUMENTED)
    Compiled.regs_per_thread, Compiled.shared_mem_per_block = 32, 64 * 1024
    with pytest.raises(CudaLaunchError, match="65,536 bytes of shared memory per block, over the device's 49,152"):
        check_resources(_Kernel(), Compiled(), 128, DOCUMENTED)


@pytest.mark.without_cuda
def test_gemm_grid_folds_a_million_rows_under_the_y_limit():
    from cnnlab.backends.cuda_math import gemm_grid

    assert gemm_grid(65535 * 16, 10, 1, 16) == (1, 65535, 1)   # the last row count the old grid could launch
    assert gemm_grid(65535 * 16 + 1, 10, 1, 16) == (1, 65535, 1)  # one more row: ceil(m/16) = 65,536 before
    assert gemm_grid(5_000_000, 33, 70_000, 16) == (3, 65535, 65535)
    assert gemm_grid(1, 1, 1, 16) == (1, 1, 1)


@pytest.mark.without_cuda
@pytest.mark.parametrize("settings, name, words", [
    (dict(CUDA_TILE=33), "CUDA_TILE", "33 x 33 threads per block, over 1024"),
    (dict(CUDA_THREADS=2048), "CUDA_THREADS", "a block holds at most 1024 threads"),
    (dict(CUDA_REDUCE_THREADS=96), "CUDA_REDUCE_THREADS", "power of two"),
    (dict(CUDA_BLOCK_2D=(64, 32)), "CUDA_BLOCK_2D", "2048 threads per block"),
    (dict(CUDA_CONV_TAPS=25, CUDA_REDUCE_THREADS=256), "CUDA_CONV_TAPS", "over 49,152 bytes per block"),
    (dict(CUDA_CONV_CHANNELS=120), "CUDA_CONV_CHANNELS", "registers per thread"),
    (dict(CUDA_THREADS=0), "CUDA_THREADS", "positive integer"),
])
def test_config_refuses_settings_no_gpu_could_launch(settings, name, words):
    before = {k: getattr(_config, k) for k in settings}
    with pytest.raises(ValueError) as e:
        _config.set_cuda(**settings)
    assert str(e.value).startswith(f"cnnlab._config.{name} = "), str(e.value)
    assert words in str(e.value), str(e.value)
    assert {k: getattr(_config, k) for k in settings} == before  # nothing changed


@pytest.mark.without_cuda
def test_config_accepts_its_defaults_and_the_tests_small_launches():
    # by path: in a whole-suite run "conftest" may name another folder's conftest
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("cuda_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    SMALL_LAUNCHES = module.SMALL_LAUNCHES

    saved = {k: getattr(_config, k) for k in SMALL_LAUNCHES}
    try:
        _config.set_cuda(**SMALL_LAUNCHES)
        _config.set_cuda(CUDA_THREADS=256, CUDA_REDUCE_THREADS=256, CUDA_BLOCK_2D=(16, 8), CUDA_TILE=16,
                         CUDA_TILE_OUTPUTS=(4, 4), CUDA_CONV_CHANNELS=4, CUDA_CONV_TAPS=9)
        _config.set_cuda(**_config.GPU_LAUNCHES)
        _config.set_cuda(**_config.SIMULATOR_LAUNCHES)
        with pytest.raises(ValueError, match="unknown CUDA setting"):
            _config.set_cuda(CUDA_THREDS=64)
    finally:
        _config.set_cuda(**saved)


# ------------------------------------------------------------- launches (simulator or GPU)

def _launches(monkeypatch):
    from cnnlab.backends import cuda_array

    seen = []
    original = cuda_array.launch

    def recording(kernel, grid, block, *args):
        seen.append((cuda_launch.kernel_name(kernel), cuda_launch.dims3(grid), cuda_launch.dims3(block)))
        original(kernel, grid, block, *args)

    monkeypatch.setattr(cuda_array, "launch", recording)
    return seen


def test_matmul_row_tiles_stride_past_the_grid_limit(monkeypatch):
    """A device whose grid is 2 blocks high and deep stands in for one with more than 65,535 row
    tiles: the kernel's blocks must stride over every row tile and every matrix of a batch."""
    from cnnlab.backends import cuda as C

    monkeypatch.setattr(cuda_launch, "device_limits", lambda: DOCUMENTED._replace(grid=(2 ** 31 - 1, 2, 2)))
    seen = _launches(monkeypatch)
    r = np.random.default_rng(0)
    a = r.standard_normal((5, 37, 3)).astype(np.float32)   # 37 rows: 5 row tiles of 4 x 2 (tests' settings)
    b = r.standard_normal((5, 3, 6)).astype(np.float32)
    got = C.to_numpy(C.matmul(C.from_numpy(a), C.from_numpy(b)))
    np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-6)
    gemms = [g for name, g, _ in seen if name.startswith("_gemm_kernel")]
    assert gemms == [(2, 2, 2)], seen


def test_a_grid_over_the_limit_is_refused_before_the_kernel_runs(monkeypatch):
    from cnnlab.backends import cuda_array

    out = cuda_array.zeros((3,), np.float32)
    with pytest.raises(CudaLaunchError, match=r"_fill with grid \(1, 65536, 1\) and block \(4, 1, 1\): grid "
                                              r"dimension y is 65,536"):
        cuda_array.launch(cuda_array._fill, (1, 65536), 4, out.buf, np.float32(7))
    assert (cuda_array.to_numpy(out) == 0).all()


def test_a_failing_launch_names_kernel_grid_block_and_argument_types():
    from cnnlab.backends import cuda_array

    out = cuda_array.zeros((3,), np.float32)
    with pytest.raises(CudaLaunchError) as e:
        cuda_array.launch(cuda_array._fill, 1, 4, out.buf)  # the value argument is missing
    message = str(e.value)
    assert message.startswith("CUDA kernel _fill failed (grid (1, 1, 1), block (4, 1, 1), "
                              "arguments (float32[1d])): "), message
    assert "\n" not in message


def test_a_setting_changed_behind_set_cuda_is_refused_at_the_next_launch(monkeypatch):
    from cnnlab.backends import cuda_array

    monkeypatch.setattr(_config, "CUDA_THREADS", 4096)
    with pytest.raises(ValueError, match="CUDA_THREADS = 4096 cannot run on a CUDA GPU"):
        cuda_array.full((5,), 1.0, np.float32)
