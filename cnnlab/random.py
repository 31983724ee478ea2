"""cnnlab's one global random generator (PyTorch's `torch.random`): weights, randn,
dropout and, through cnnlab/data/_rng.py, shuffling and augmentation all draw from it,
so `cnnlab.manual_seed(n)` makes a whole run repeatable.
"""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(67280421310721)  # PyTorch's default CPU seed


def generator() -> np.random.Generator:
    """The global generator itself (manual_seed replaces it, so look it up at each use)."""
    return _generator


def manual_seed(seed: int) -> np.random.Generator:
    """Seed cnnlab's global random generator (weights, randn, dropout, shuffling)."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def get_rng_state() -> dict:
    """The global generator's state (a JSON-able dict), for checkpoints."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state


def seed() -> int:
    """Seed the global generator from fresh entropy and return the seed."""
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s
