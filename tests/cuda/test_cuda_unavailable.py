"""Without a GPU and without the simulator, asking for 'cuda' says why, clearly."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import cnnlab
from cuda_twins import SIMULATOR

SCRIPT = """
import cnnlab, cnnlab.nn as nn
print("available:", cnnlab.cuda.is_available())
for what, move in (("tensor", lambda: cnnlab.zeros(2).to("cuda")), ("module", lambda: nn.Linear(2, 2).cuda())):
    try:
        move()
        print(what, "moved")
    except cnnlab.backends.DeviceUnavailable as e:
        print(what, "refused:", e)
"""


@pytest.mark.without_cuda
def test_to_cuda_without_a_gpu_says_why():
    if SIMULATOR:  # the simulator counts as a device: ask a fresh process without it
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        text = out.stdout
    elif cnnlab.cuda.is_available():
        pytest.skip("this machine has a GPU")
    else:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(SCRIPT, {})
        text = buf.getvalue()
    if "available: True" in text:
        pytest.skip("this machine has a GPU")
    for what in ("tensor", "module"):
        line = next(ln for ln in text.splitlines() if ln.startswith(what))
        assert "refused: cannot use device 'cuda':" in line, line
        assert "no CUDA GPU or driver was found" in line, line
        assert "NUMBA_ENABLE_CUDASIM=1" in line, line
