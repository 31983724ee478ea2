"""`cnnlab.cuda`: is a CUDA GPU usable here, and if not, why not."""
from __future__ import annotations

import functools
import os


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None when CUDA works; otherwise one sentence a user can act on."""
    if not os.path.exists(os.path.join(os.path.dirname(__file__), "backends", "cuda.py")):
        return "this version of cnnlab has no CUDA backend yet (only the CPU backend exists)"
    try:
        from numba import cuda
    except Exception as e:  # numba built without CUDA support
        return f"numba's CUDA target could not be imported ({e}); install the extra: pip install 'cnnlab[cuda]'"
    try:
        if not cuda.is_available():
            return "no CUDA driver or GPU was found (numba.cuda.is_available() is False)"
    except Exception as e:
        return f"the CUDA driver failed to initialise ({e})"
    return None


def is_available() -> bool:
    """True when tensors and models can be moved to 'cuda'."""
    return unavailable_reason() is None


def device_count() -> int:
    if not is_available():
        return 0
    from numba import cuda

    return len(cuda.gpus)
