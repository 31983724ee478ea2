"""`cnnlab.cuda`: is a CUDA GPU usable here, and if not, why not.

>>> cnnlab.cuda.is_available()
False
>>> cnnlab.cuda.unavailable_reason()
'no CUDA GPU or driver was found (...); to try the CUDA backend without one, ...'

`is_available()` does not only ask numba whether a driver answers: it compiles
and launches a one-line kernel, so a machine with a driver but without the
NVVM/NVRTC compiler libraries, or with a driver older than the compiler, says so
here, in one sentence, instead of failing at the first operation with numba's
page of folder listings. `explain(error)` turns any such numba error into that
sentence (the backend's launch errors use it too).

With NUMBA_ENABLE_CUDASIM=1 (set before numba is imported) the CUDA backend runs
in numba's simulator on the CPU: very slow, but every kernel runs, which is how the
tests check it on machines without a GPU.
"""
from __future__ import annotations

import functools

_SIMULATOR_HINT = ("to try the CUDA backend without one, run with NUMBA_ENABLE_CUDASIM=1 "
                   "(numba's simulator: correct but very slow)")
_INSTALL = "pip install 'cnnlab[cuda]'"

# (words that identify numba's error, what it means and what to do), first match wins
_DIAGNOSES = (
    (("unsupported_ptx_version", "ptx version", "unsupported toolchain"),
     "the NVIDIA driver is older than the CUDA compiler numba uses, so it cannot load the kernels "
     "(CUDA_ERROR_UNSUPPORTED_PTX_VERSION); update the driver, or install compiler wheels as old as it "
     "(e.g. pip install 'numba-cuda[cu12]' for a CUDA 12 driver)"),
    (("nvvm",),
     f"numba could not find NVVM, the CUDA compiler library (libnvvm); install it with {_INSTALL} "
     "(the NVIDIA compiler wheels) or a CUDA toolkit"),
    (("nvrtc",),
     f"numba could not find NVRTC, the CUDA runtime compiler library (libnvrtc); install it with {_INSTALL} "
     "or a CUDA toolkit"),
    (("nvjitlink",),
     f"numba could not find nvJitLink, the CUDA linker library; install it with {_INSTALL} or a CUDA toolkit"),
    (("libcuda", "driver library", "cuda driver", "cuinit", "display driver"),
     "the NVIDIA driver (libcuda) could not be loaded; install or repair the NVIDIA driver"),
    (("no_device", "no cuda-capable device", "no cuda gpus"),
     "the NVIDIA driver found no CUDA GPU"),
    (("out_of_memory", "out of memory"),
     "the GPU is out of memory; use a smaller batch, or free other programs' GPU memory"),
    (("launch_out_of_resources", "too many resources"),
     "the kernel needs more registers or shared memory than the GPU has for this block size; "
     "lower the CUDA_* thread counts in cnnlab._config"),
    (("unsupported gpu architecture", "-arch", "compute capability"),
     "the CUDA compiler does not support this GPU's compute capability; install compiler wheels "
     "that match the GPU (pip install 'numba-cuda[cu12]' or 'numba-cuda[cu13]')"),
)


def explain(error: BaseException) -> str:
    """One sentence saying what a numba CUDA error means and what to do about it (no trailing period)."""
    first = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), "")
    # the first line names the missing piece; the rest (folder listings) may name others
    for text in (f"{type(error).__name__}: {first}", f"{type(error).__name__}: {error}"):
        low = text.lower()
        for words, meaning in _DIAGNOSES:
            if any(w in low for w in words):
                return meaning
    return f"{type(error).__name__}: {first}".rstrip(": .")


def _probe(cuda) -> None:
    """Compile and launch a one-line kernel, and read its result back."""
    import numpy as np

    def write_answer(out):
        out[0] = 42

    kernel = cuda.jit(write_answer)
    out = cuda.to_device(np.zeros(1, np.int32))
    kernel[1, 1](out)
    got = int(out.copy_to_host()[0])
    if got != 42:
        raise RuntimeError(f"a test kernel ran but its result was {got}, not 42: the GPU or driver is faulty")


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None when the 'cuda' device works (a GPU, or numba's simulator); otherwise why not, in one sentence."""
    try:
        from numba import cuda
        from numba.core import config
    except Exception as e:  # numba built without its CUDA target, and numba-cuda missing
        return (f"numba's CUDA target could not be imported ({e}); "
                f"install it with: {_INSTALL} (numba-cuda)")
    if not config.ENABLE_CUDASIM:
        try:
            found = cuda.is_available()
            why = "" if found else _driver_error(cuda)
        except Exception as e:
            found, why = False, explain(e)
        if not found:
            return f"no CUDA GPU or driver was found ({why}); {_SIMULATOR_HINT}"
    try:
        _probe(cuda)
    except Exception as e:
        return f"a CUDA device was found but cannot run cnnlab's kernels: {explain(e)}"
    return None


def _driver_error(cuda) -> str:
    """numba's own words for why the driver did not load, when it kept them."""
    try:
        err = cuda.cuda_error()
    except Exception:
        err = None
    first_line = str(err).strip().splitlines()[0].rstrip(".") if err else ""
    return first_line or "numba.cuda.is_available() is False"


def is_available() -> bool:
    """True when tensors and models can be moved to 'cuda' (a test kernel compiled, ran and answered)."""
    return unavailable_reason() is None


def is_simulator() -> bool:
    """True when 'cuda' is numba's CPU simulator (NUMBA_ENABLE_CUDASIM=1), not a GPU."""
    try:
        from numba.core import config
    except Exception:
        return False
    return bool(config.ENABLE_CUDASIM)


def device_count() -> int:
    if not is_available():
        return 0
    if is_simulator():
        return 1
    from numba import cuda

    return len(cuda.gpus)


def empty_cache() -> None:
    """Release the device buffers cnnlab keeps for reuse (PyTorch's name). Each training step
    allocates the same sizes, so the backend pools freed buffers (at most
    cnnlab._config.CUDA_POOL_BYTES); call this to hand that memory back, e.g. to another program."""
    import sys

    alloc = sys.modules.get("cnnlab.backends.cuda_alloc")
    if alloc is not None:  # nothing pooled before the backend was first used
        alloc.empty_pool()
