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


# ------------------------------------------------------------- numba's errors, in one sentence

def _error(module: str, name: str, *args):
    """numba's (or cuda-pathfinder's) own exception class, or a stand-in of the same name
    where this install lacks it: explain() reads the class name and message only."""
    import importlib

    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        cls = type(name, (RuntimeError,), {})
    return cls(*args)


_LISTING = "\n".join(f"  searched: /usr/local/cuda-12.{i}/nvvm/lib64: not found" for i in range(40))
_ERRORS = [  # (module, class, arguments, words the sentence must contain)
    ("cuda.pathfinder", "DynamicLibNotFoundError", (f'Failure finding "libnvvm.so": not found\n{_LISTING}',),
     ["NVVM", "pip install 'cnnlab[cuda]'"]),
    ("numba.cuda.cudadrv.error", "NvvmSupportError", ("libNVVM cannot be found. Do `conda install cudatoolkit`",),
     ["NVVM", "pip install 'cnnlab[cuda]'"]),
    ("cuda.pathfinder", "DynamicLibNotFoundError", (f'Failure finding "libnvrtc.so.12": not found\n{_LISTING}',),
     ["NVRTC", "pip install 'cnnlab[cuda]'"]),
    ("numba.cuda.cudadrv.driver", "CudaAPIError",
     (222, "Call to cuModuleLoadDataEx results in CUDA_ERROR_UNSUPPORTED_PTX_VERSION"),
     ["driver is older than the CUDA compiler", "update the driver"]),
    ("numba.cuda.cudadrv.error", "CudaSupportError",
     ("Error at driver init: \n\nCUDA driver library cannot be found.\nEnsure that a compatible NVIDIA driver is "
      "installed and available on your system path.\n:",), ["NVIDIA driver (libcuda) could not be loaded"]),
    ("numba.cuda.cudadrv.driver", "CudaAPIError", (2, "Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY"),
     ["out of memory", "smaller batch"]),
    ("builtins", "ValueError", ("first line\nsecond line",), ["ValueError: first line"]),
]


@pytest.mark.without_cuda
@pytest.mark.parametrize("module, name, args, words", _ERRORS, ids=[f"{e[1]}-{i}" for i, e in enumerate(_ERRORS)])
def test_numba_errors_become_one_sentence(module, name, args, words):
    sentence = cnnlab.cuda.explain(_error(module, name, *args))
    assert "\n" not in sentence and len(sentence) < 300, sentence
    assert "searched:" not in sentence  # no folder listings
    for w in words:
        assert w in sentence, sentence


@pytest.fixture
def fresh_reason(monkeypatch):
    """unavailable_reason() asked again (it is cached), and the real answer restored afterwards."""
    import numba.cuda

    cnnlab.cuda.unavailable_reason.cache_clear()
    if not SIMULATOR:  # pretend a driver answered, so that the kernel probe is what fails
        monkeypatch.setattr(numba.cuda, "is_available", lambda: True)
    yield
    cnnlab.cuda.unavailable_reason.cache_clear()


@pytest.mark.without_cuda
@pytest.mark.parametrize("module, name, args, words", _ERRORS[:4], ids=["nvvm-pathfinder", "nvvm", "nvrtc", "ptx"])
def test_a_driver_without_compiler_libraries_is_not_available(fresh_reason, monkeypatch, module, name, args, words):
    def probe(cuda):
        raise _error(module, name, *args)

    monkeypatch.setattr(cnnlab.cuda, "_probe", probe)
    reason = cnnlab.cuda.unavailable_reason()
    assert not cnnlab.cuda.is_available()
    assert reason.startswith("a CUDA device was found but cannot run cnnlab's kernels: "), reason
    assert "\n" not in reason
    for w in words:
        assert w in reason, reason


@pytest.mark.without_cuda
def test_a_faulty_device_that_runs_kernels_wrong_is_not_available(fresh_reason, monkeypatch):
    class Broken:  # a device whose kernels run but write nothing
        @staticmethod
        def jit(fn):
            class Launch:
                def __getitem__(self, _):
                    return lambda out: None
            return Launch()

        @staticmethod
        def to_device(a):
            import numpy as np

            class Buf:
                def copy_to_host(self):
                    return np.zeros(1, np.int32)
            return Buf()

    original = cnnlab.cuda._probe
    monkeypatch.setattr(cnnlab.cuda, "_probe", lambda cuda: original(Broken))
    assert "its result was 0, not 42" in cnnlab.cuda.unavailable_reason()


def test_is_available_compiles_and_runs_a_kernel(fresh_reason, monkeypatch):
    calls = []
    original = cnnlab.cuda._probe
    monkeypatch.setattr(cnnlab.cuda, "_probe", lambda cuda: calls.append(original(cuda)))
    assert cnnlab.cuda.is_available() and calls == [None]
