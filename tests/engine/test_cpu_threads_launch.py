"""cpu_threads.launch: small kernels run on the calling thread alone, and the caller's
thread count comes back, also when the kernel raises (numba's counts are per thread)."""
from __future__ import annotations

import threading

import numba
import numpy as np
import pytest
from numba import njit

from cnnlab.backends import cpu_threads


@njit
def _threads_inside(a):
    a[0] = numba.get_num_threads()
    return a[0]


@njit
def _fails(a):
    if a[0] >= 0:
        raise ValueError("kernel failed")
    return a[0]


@pytest.fixture
def two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(before)


def test_small_work_runs_on_one_thread_and_the_count_comes_back(two_threads):
    a = np.zeros(1)
    assert cpu_threads.launch(_threads_inside, cpu_threads.SERIAL_BELOW - 1, a) == 1
    assert numba.get_num_threads() == 2
    assert cpu_threads.launch(_threads_inside, cpu_threads.SERIAL_BELOW, a) == 2
    with pytest.raises(ValueError, match="kernel failed"):
        cpu_threads.launch(_fails, 10, a)
    assert numba.get_num_threads() == 2


def test_another_threads_count_is_its_own(two_threads):
    seen = []

    def worker():
        numba.set_num_threads(1)   # this thread's count only
        seen.append(cpu_threads.launch(_threads_inside, 10, np.zeros(1)))
        seen.append(numba.get_num_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [1, 1]
    assert numba.get_num_threads() == 2
    assert cpu_threads.launch(_threads_inside, cpu_threads.SERIAL_BELOW, np.zeros(1)) == 2


def test_large_adds_on_numbas_threads_are_numpys_adds():
    # cpu.add runs same-shape float arrays from _THREADED_ADD elements on numba's threads
    from cnnlab.backends import cpu
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((4, cpu._THREADED_ADD // 4 + 3)).astype(dtype)
        b = rng.standard_normal(a.shape).astype(dtype)
        b[0, :4] = [np.inf, -np.inf, np.nan, -0.0]
        out = cpu.add(a, b)
        assert out.dtype == dtype and out.shape == a.shape
        np.testing.assert_array_equal(out, np.add(a, b))
    # broadcasting, mixed dtypes, views and scalars keep NumPy's own add
    np.testing.assert_array_equal(cpu.add(a, b[:1]), a + b[:1])
    np.testing.assert_array_equal(cpu.add(a.T, b.T), a.T + b.T)
    assert cpu.add(np.float32(1), np.ones(3, np.float32)).tolist() == [2.0, 2.0, 2.0]
