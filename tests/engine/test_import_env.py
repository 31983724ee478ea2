"""cnnlab leaves the process's thread settings to their owner (issue 17).

Importing cnnlab and running its kernels changes no OMP_*, OPENBLAS_*, MKL_* or GOTO_*
variable (one set at import reached every library loaded later, PyTorch's OpenMP threads
included). What those variables did is done at run time instead, for cnnlab alone: numba's
OpenMP pool starts with a short spin before its workers sleep, and NumPy's OpenBLAS runs on the calling thread
while a cnnlab kernel runs, the user's thread count restored after, whatever the import order.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

PREFIXES = ("OMP_", "GOMP_", "OPENBLAS_", "MKL_", "GOTO_", "KMP_")

PROBE = r"""
import json, os, sys
PREFIXES = %r
def threads_env():
    return {k: v for k, v in os.environ.items() if k.startswith(PREFIXES)}
before = threads_env()
if %r:
    import numpy
import cnnlab
import cnnlab.nn as nn
after_import = threads_env()
m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
m(cnnlab.randn(2, 3, 8, 8)).sum().backward()     # the CPU backend loads, numba's pool starts
print(json.dumps({"before": before, "after_import": after_import, "after_step": threads_env()}))
"""


def _run(numpy_first: bool, **env: str) -> tuple[dict, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES) and k != "CNNLAB_THREAD_WAIT"}
    out = subprocess.run([sys.executable, "-c", PROBE % (PREFIXES, numpy_first)], env={**base, **env},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


@pytest.mark.parametrize("numpy_first", [False, True], ids=["cnnlab-first", "numpy-first"])
def test_importing_and_training_leave_the_thread_variables_as_they_were(numpy_first):
    seen, _ = _run(numpy_first)
    assert seen["before"] == {}
    assert seen["after_import"] == {}
    assert seen["after_step"] == {}


def test_a_users_own_thread_variables_are_kept_unchanged():
    mine = {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "3"}
    seen, _ = _run(False, **mine)
    assert seen["before"] == seen["after_import"] == seen["after_step"] == mine


def test_numbas_openmp_pool_spins_briefly_and_the_users_setting_wins():
    import numba

    from cnnlab.backends.cpu_threads import SPIN_COUNT

    numba.get_num_threads()
    if numba.threading_layer() != "omp":
        pytest.skip(f"numba uses its {numba.threading_layer()} threading layer here, not OpenMP")
    # libgomp prints the settings it read when it loaded (OMP_DISPLAY_ENV is the test's own variable)
    _, err = _run(False, OMP_DISPLAY_ENV="VERBOSE")
    assert f"GOMP_SPINCOUNT = '{SPIN_COUNT}'" in err
    _, err = _run(False, OMP_DISPLAY_ENV="VERBOSE", OMP_WAIT_POLICY="PASSIVE")   # the user's choice wins
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in err and f"GOMP_SPINCOUNT = '{SPIN_COUNT}'" not in err
    _, err = _run(False, OMP_DISPLAY_ENV="VERBOSE", GOMP_SPINCOUNT="123")
    assert "GOMP_SPINCOUNT = '123'" in err
    # cnnlab's own switch (the desktop app's choice): sleep at once, for cnnlab's pool only
    seen, err = _run(False, OMP_DISPLAY_ENV="VERBOSE", CNNLAB_THREAD_WAIT="passive")
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in err and f"GOMP_SPINCOUNT = '{SPIN_COUNT}'" not in err
    assert seen["after_step"] == {"OMP_DISPLAY_ENV": "VERBOSE"}   # the test's own, nothing added


def test_a_bad_thread_wait_setting_is_refused_by_name():
    base = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    out = subprocess.run([sys.executable, "-c", PROBE % (PREFIXES, False)], env={**base, "CNNLAB_THREAD_WAIT": "fast"},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "CNNLAB_THREAD_WAIT must be 'spin' or 'passive', got 'fast'" in out.stderr


def test_blas_runs_on_the_calling_thread_inside_a_kernel_and_the_users_count_comes_back():
    from cnnlab.backends import cpu_threads

    if cpu_threads.serial_blas.libraries() == 0:
        pytest.skip("NumPy's BLAS here is not OpenBLAS")
    libs = cpu_threads._numpy_blas()
    get, set_ = libs[0]
    users = get()
    seen = []

    @cpu_threads.blas_on_caller
    def kernel(depth):
        seen.append(get())
        if depth:
            kernel(depth - 1)   # nested kernels (conv_transpose calls conv's) keep one thread
        return np.ones((64, 64), np.float32) @ np.ones((64, 64), np.float32)

    try:
        set_(2)
        out = kernel(2)
        assert seen == [1, 1, 1]
        assert get() == 2
        np.testing.assert_array_equal(out, np.full((64, 64), 64, np.float32))
        with pytest.raises(ZeroDivisionError):   # restored when a kernel raises, too
            with cpu_threads.serial_blas:
                assert get() == 1
                1 / 0
        assert get() == 2
    finally:
        set_(users)


def test_the_engines_blas_kernels_are_wrapped():
    from cnnlab.backends import cpu_conv, cpu_nn

    for fn in (cpu_conv.conv2d_forward, cpu_conv.conv2d_backward, cpu_nn.linear_forward, cpu_nn.linear_backward):
        assert getattr(fn, "__wrapped__", None) is not None, fn.__name__
