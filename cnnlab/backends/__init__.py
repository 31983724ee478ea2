"""Backends: one module per device type, found by name and imported lazily.

Every backend module exposes the same functions with the same signatures, listed
with their contracts in `contract.py` (a test checks both backends against it).
Autograd, layers and optimizers reach kernels only through `get(device_type)`, so
adding a device never touches them.
"""
from __future__ import annotations

import importlib
from types import ModuleType

_loaded: dict[str, ModuleType] = {}


class DeviceUnavailable(RuntimeError):
    """A device was asked for that this machine cannot provide; the message says why."""


def get(device_type: str) -> ModuleType:
    mod = _loaded.get(device_type)
    if mod is None:
        if device_type not in ("cpu", "cuda"):
            raise ValueError(f"unknown device type {device_type!r}; expected 'cpu' or 'cuda'")
        if device_type == "cuda":
            from .. import cuda as _cuda

            reason = _cuda.unavailable_reason()
            if reason:
                raise DeviceUnavailable(f"cannot use device 'cuda': {reason}")
        mod = importlib.import_module(f"{__name__}.{device_type}")
        _loaded[device_type] = mod
    return mod
