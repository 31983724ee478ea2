"""Where the data package gets its randomness, so one `cnnlab.manual_seed` governs it."""
from __future__ import annotations

import numpy as np


def draw_seed() -> int:
    """A fresh seed drawn from cnnlab's global generator (see `cnnlab.manual_seed`)."""
    import cnnlab  # here, not at the top: cnnlab's own import may reach this package

    return int(cnnlab.randint(0, 2**31 - 1, (1,)).item())


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy Generator from a seed, a Generator (used as is) or None (a fresh seed)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(draw_seed() if seed is None else seed)
