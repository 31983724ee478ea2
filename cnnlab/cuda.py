"""`cnnlab.cuda`: is a CUDA GPU usable here, and if not, why not.

>>> cnnlab.cuda.is_available()
False
>>> cnnlab.cuda.unavailable_reason()
'no CUDA GPU or driver was found (...); to try the CUDA backend without one, ...'

With NUMBA_ENABLE_CUDASIM=1 (set before numba is imported) the CUDA backend runs
in numba's simulator on the CPU: very slow, but every kernel runs, which is how the
tests check it on machines without a GPU.
"""
from __future__ import annotations

import functools

_SIMULATOR_HINT = ("to try the CUDA backend without one, run with NUMBA_ENABLE_CUDASIM=1 "
                   "(numba's simulator: correct but very slow)")


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None when the 'cuda' device works (a GPU, or numba's simulator); otherwise why not, in one sentence."""
    try:
        from numba import cuda
        from numba.core import config
    except Exception as e:  # numba built without its CUDA target, and numba-cuda missing
        return (f"numba's CUDA target could not be imported ({e}); "
                f"install it with: pip install 'cnnlab[cuda]' (numba-cuda)")
    if config.ENABLE_CUDASIM:
        return None
    try:
        if cuda.is_available():
            return None
        why = _driver_error(cuda)
    except Exception as e:
        why = str(e)
    return f"no CUDA GPU or driver was found ({why}); {_SIMULATOR_HINT}"


def _driver_error(cuda) -> str:
    """numba's own words for why the driver did not load, when it kept them."""
    try:
        err = cuda.cuda_error()
    except Exception:
        err = None
    first_line = str(err).strip().splitlines()[0].rstrip(".") if err else ""
    return first_line or "numba.cuda.is_available() is False"


def is_available() -> bool:
    """True when tensors and models can be moved to 'cuda'."""
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
