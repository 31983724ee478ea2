"""Compiled kernels are cached: a second process compiles nothing, even with another thread count.

pynndescent (PR #175) found that `parallel=True` with `cache=True` can crash when a cache written
with one number of threads is loaded with another; both orders are run here in fresh processes.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import naive

JOB = r"""
import sys
import numpy as np
import cnnlab as torch
import cnnlab.nn.functional as F

rng = np.random.default_rng(0)
x = torch.tensor(rng.standard_normal((3, 2, 9, 8)).astype(np.float32), requires_grad=True)
w = torch.tensor(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), requires_grad=True)
if sys.argv[2] == "small":   # one small convolution, forward only
    print(repr(float(F.conv2d(x, w).numpy().sum())))
    sys.exit(0)
y = F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2)
(y * y).sum().backward()
if sys.argv[2] == "wide":   # wide outputs take the other im2col layout: compile (and cache) both
    F.conv2d(torch.zeros(1, 2, 4, 40, requires_grad=True), w).sum().backward()
np.save(sys.argv[1], y.numpy())
print(repr(float(y.numpy().sum())), repr(float(x.grad.numpy().sum())), repr(float(w.grad.numpy().sum())))
"""

pytestmark = pytest.mark.slow   # two cold compiles in fresh processes: ~15-30 s on a shared 2-core machine


def run_job(cache_dir, threads: int, out, which: str = "wide"):
    """Run JOB in a fresh process; returns (its numbers, its stderr, how many kernels it compiled)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS=str(threads), NUMBA_DEBUG_CACHE="1")
    env.pop("CNNLAB_QUIET", None)
    proc = subprocess.run([sys.executable, "-c", JOB, str(out), which], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode} with {threads} thread(s):\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.strip().splitlines()
    compiled = sum("[cache] data saved" in ln for ln in lines)   # numba's NUMBA_DEBUG_CACHE report
    numbers = [ln for ln in lines if not ln.startswith("[cache]")]
    return numbers, proc.stderr, compiled


@pytest.mark.parametrize("first, second", [(2, 1), (1, 2)])
def test_second_run_uses_the_cache_with_another_thread_count(tmp_path, first, second):
    cache = tmp_path / "numba-cache"
    numbers1, err1, compiled1 = run_job(cache, first, tmp_path / "y1.npy")
    assert "compiling" in err1, f"the first run should say it is compiling; stderr: {err1!r}"
    assert compiled1 > 0 and any(cache.rglob("*.nbi")), "nothing was written to NUMBA_CACHE_DIR"
    numbers2, err2, compiled2 = run_job(cache, second, tmp_path / "y2.npy")
    assert compiled2 == 0, "the second run compiled kernels again"
    assert "compiling" not in err2, f"the second run said it was compiling; stderr: {err2!r}"
    assert numbers1 == numbers2 and len(numbers1) == 1
    # ... and the numbers are right, not merely repeatable
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 9, 8)).astype(np.float32).astype(np.float64)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32).astype(np.float64)
    expected = naive.pool2d(np.maximum(naive.conv2d(x, w, None, 1, 1), 0), "max", 2)
    for out in ("y1.npy", "y2.npy"):
        np.testing.assert_allclose(np.load(tmp_path / out), expected, rtol=1e-4, atol=1e-4)


def test_no_compiling_notice_when_everything_comes_from_the_cache(tmp_path):
    cache = tmp_path / "numba-cache"
    run_job(cache, 2, tmp_path / "y1.npy", which="small")
    _, err, compiled = run_job(cache, 2, tmp_path / "y2.npy", which="small")
    assert compiled == 0
    assert "compiling" not in err
