"""The desktop app's process runs the engine's workers with passive waiting (gui/__init__.py):
spinning workers took the cores the GUI thread draws on (benchmarks/bench_gui.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = r"""
import gui                      # the app's package, first, as `cnnlab gui` imports it
import cnnlab
(cnnlab.randn(2, 3, 8, 8) * 2).sum()
import cnnlab.nn as nn
nn.Conv2d(3, 4, 3)(cnnlab.randn(2, 3, 8, 8)).sum().backward()   # the CPU backend's pool starts
"""


def _libgomp_settings(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "CNNLAB_THREAD"))}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, "OMP_DISPLAY_ENV": "VERBOSE", **env},
                         capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stderr
    return out.stderr


def test_the_app_process_waits_passively_unless_told_otherwise():
    import numba

    numba.get_num_threads()
    if numba.threading_layer() != "omp":
        pytest.skip(f"numba uses its {numba.threading_layer()} threading layer here, not OpenMP")
    from cnnlab.backends.cpu_threads import SPIN_COUNT

    err = _libgomp_settings()
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in err and f"GOMP_SPINCOUNT = '{SPIN_COUNT}'" not in err
    err = _libgomp_settings(CNNLAB_THREAD_WAIT="spin")   # the user's choice wins
    assert f"GOMP_SPINCOUNT = '{SPIN_COUNT}'" in err
