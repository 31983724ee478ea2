"""cnnlab sets the thread settings of OpenMP and OpenBLAS before NumPy loads them.

Both runtimes read their settings once, when their library loads; set later they do
nothing (on 2 cores a spinning OpenBLAS pool made the modern net's step 1.5x slower).
So the check is *what the environment held at the moment NumPy was first imported*.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import importlib.abc, json, os, sys

seen = {}

class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" and not seen:
            seen.update({k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")})
        return None

sys.meta_path.insert(0, Watch())
import %s
print(json.dumps(seen))
"""


def _env_at_numpy_import(module: str, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    out = subprocess.run([sys.executable, "-c", PROBE % module], env={**base, **env}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cnnlab_sets_both_before_numpy_loads():
    seen = _env_at_numpy_import("cnnlab")
    assert seen == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "16"}


def test_a_users_own_settings_are_kept():
    seen = _env_at_numpy_import("cnnlab", OMP_WAIT_POLICY="ACTIVE", OPENBLAS_THREAD_TIMEOUT="24")
    assert seen == {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": "24"}


def test_the_app_package_imports_cnnlab_before_numpy():
    # the desktop app's modules import pyqtgraph (hence NumPy) at the top
    seen = _env_at_numpy_import("gui")
    assert seen["OPENBLAS_THREAD_TIMEOUT"] == "16"
