"""The desktop app's process runs the engine's workers with passive waiting (gui.app.main):
spinning workers took the cores the GUI thread draws on (benchmarks/bench_gui.py). Importing
the gui package alone changes nothing."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

APP = r"""
import sys
from gui.app import main
sys.exit(main(["--view", "train", "--train-steps", "2", "--screenshot", sys.argv[1]]))
"""

IMPORT_ONLY = r"""
import gui, gui.app, os
import cnnlab.nn as nn, cnnlab
nn.Conv2d(3, 4, 3)(cnnlab.randn(2, 3, 8, 8)).sum().backward()   # the CPU backend's pool starts
assert "CNNLAB_THREAD_WAIT" not in os.environ
"""


def _libgomp_settings(code: str, *args: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "CNNLAB_THREAD"))}
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**base, "OMP_DISPLAY_ENV": "VERBOSE", "QT_QPA_PLATFORM": "offscreen", **env})
    assert out.returncode == 0, out.stderr
    return out.stderr


@pytest.fixture(scope="module")
def spin_count():
    import numba

    numba.get_num_threads()
    if numba.threading_layer() != "omp":
        pytest.skip(f"numba uses its {numba.threading_layer()} threading layer here, not OpenMP")
    from cnnlab.backends.cpu_threads import SPIN_COUNT
    return SPIN_COUNT


def test_the_app_waits_passively_unless_told_otherwise(spin_count, tmp_path):
    err = _libgomp_settings(APP, str(tmp_path / "a.png"))
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in err and f"GOMP_SPINCOUNT = '{spin_count}'" not in err
    err = _libgomp_settings(APP, str(tmp_path / "b.png"), CNNLAB_THREAD_WAIT="spin")   # the user's choice wins
    assert f"GOMP_SPINCOUNT = '{spin_count}'" in err


def test_importing_the_gui_package_leaves_the_engine_default(spin_count):
    err = _libgomp_settings(IMPORT_ONLY)
    assert f"GOMP_SPINCOUNT = '{spin_count}'" in err
