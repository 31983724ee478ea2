"""Where the data package gets its randomness, so one `cnnlab.manual_seed` governs it."""
from __future__ import annotations

from typing import Any

import numpy as np


def draw_seed() -> int:
    """A fresh seed drawn from cnnlab's global generator (see `cnnlab.manual_seed`)."""
    import cnnlab  # here, not at the top: cnnlab's own import may reach this package

    return int(cnnlab.randint(0, 2**31 - 1, (1,)).item())


def as_generator(seed: Any) -> np.random.Generator:
    """A NumPy Generator from what PyTorch code passes as `generator=` or a seed.

    None draws a fresh seed from cnnlab's global stream; an int seeds a new generator; a
    NumPy Generator is used as is. A generator object in PyTorch's style (one with
    `initial_seed()`, as `Generator().manual_seed(42)` gives) seeds one from that seed,
    and one that exposes its NumPy generator as `numpy_generator` shares that stream.
    """
    if seed is None:
        return np.random.default_rng(draw_seed())
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    inner = getattr(seed, "numpy_generator", None)
    if isinstance(inner, np.random.Generator):
        return inner
    if callable(getattr(seed, "initial_seed", None)):
        return np.random.default_rng(int(seed.initial_seed()))
    raise TypeError(
        f"generator must be None, an int seed, a numpy.random.Generator or a seeded "
        f"Generator object, got {type(seed).__name__}"
    )
