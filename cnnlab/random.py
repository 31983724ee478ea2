"""cnnlab's random generators (PyTorch's `torch.Generator` and `torch.random`).

`default_generator` is the global one: weights, randn, dropout and, through
cnnlab/data/_rng.py, shuffling and augmentation all draw from it, so
`cnnlab.manual_seed(n)` makes a whole run repeatable. A `Generator()` of one's own,
passed as `generator=` to `randn`, `rand`, `randint`, `randperm`, `normal`,
`random_split` or `DataLoader`, gives a stream that the global one does not disturb.

>>> g = cnnlab.Generator().manual_seed(42)
>>> a = cnnlab.randn(3, generator=g)
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

_DEFAULT_SEED = 67280421310721  # PyTorch's default CPU seed


class Generator:
    """A seeded stream of random numbers: PyTorch's `torch.Generator`, on NumPy's PCG64.

    The numbers differ from PyTorch's (another algorithm); the API is PyTorch's:
    `manual_seed(n)` returns the generator itself, `seed()` reseeds from fresh entropy,
    `initial_seed()` is the seed last set, `get_state()`/`set_state()` save and restore
    the position in the stream (as a uint8 tensor, as PyTorch's). `numpy_generator` is
    the NumPy Generator underneath (cnnlab's data package draws from it directly).
    """

    def __init__(self, device: Any = "cpu"):
        self.device = device
        self.manual_seed(_DEFAULT_SEED)

    @property
    def numpy_generator(self) -> np.random.Generator:
        return self._rng

    def manual_seed(self, seed: int) -> "Generator":
        # a new NumPy generator (not a reseed): the CUDA dropout states notice the change by identity
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        """Reseed from fresh entropy; the new seed."""
        s = int(np.random.SeedSequence().entropy % (2**63))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        """The stream's position as a uint8 tensor (JSON of NumPy's state), for `set_state`."""
        from .tensor import Tensor

        raw = json.dumps(self._rng.bit_generator.state).encode()
        return Tensor._from_host(np.frombuffer(raw, np.uint8).copy())

    def set_state(self, new_state) -> "Generator":
        arr = np.asarray(new_state.numpy() if hasattr(new_state, "numpy") else new_state, np.uint8)
        try:
            state = json.loads(arr.tobytes().decode())
            self._rng.bit_generator.state = state
        except (ValueError, TypeError, KeyError) as e:
            raise RuntimeError(f"set_state: not a state that cnnlab's Generator.get_state() gave ({e})") from None
        return self

    def __repr__(self) -> str:
        return f"<cnnlab.Generator device={self.device!r} initial_seed={self._seed}>"


default_generator = Generator()


def generator() -> np.random.Generator:
    """The global NumPy generator (manual_seed replaces it, so look it up at each use)."""
    return default_generator.numpy_generator


def numpy_rng(gen: Any = None) -> np.random.Generator:
    """The NumPy generator behind a `generator=` argument: None is the global one."""
    if gen is None:
        return default_generator.numpy_generator
    if isinstance(gen, Generator):
        return gen.numpy_generator
    if isinstance(gen, np.random.Generator):
        return gen
    raise TypeError(f"generator must be a cnnlab.Generator (or a numpy.random.Generator), got {type(gen).__name__}")


def manual_seed(seed: int) -> Generator:
    """Seed cnnlab's global random generator (weights, randn, dropout, shuffling); returns it."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    """The global generator's seed."""
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    """The global generator's state (a JSON-able dict), for checkpoints."""
    return default_generator.numpy_generator.bit_generator.state


def set_rng_state(state: Any) -> None:
    """Restore the global generator: a dict from get_rng_state, or a tensor from Generator.get_state."""
    if isinstance(state, dict):
        default_generator.numpy_generator.bit_generator.state = state
    else:
        default_generator.set_state(state)


def seed() -> int:
    """Seed the global generator from fresh entropy and return the seed."""
    return default_generator.seed()
