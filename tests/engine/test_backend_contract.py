"""Both backends provide every kernel of cnnlab/backends/contract.py with exactly its
signature, wherever in the backend's modules the function is defined (cpu.py re-exports
cpu_conv, cpu_pool, cpu_nn and cpu_optim; cuda.py re-exports cuda_*.py).

The CUDA module is imported directly, without the simulator: numba.cuda imports on a
machine without a GPU and compiles kernels only when they are first launched.
"""
from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from cnnlab.backends import contract

BACKENDS = ["cpu", "cuda"]


def _shape(sig: inspect.Signature) -> list[tuple]:
    """What the contract fixes: names, kinds and defaults, in order (annotations are each backend's own)."""
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def _backend(name: str):
    return importlib.import_module(f"cnnlab.backends.{name}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_provides_every_kernel_with_its_signature(backend):
    module = _backend(backend)
    assert module.name == backend
    problems = []
    for kernel in contract.CONTRACT:
        fn = getattr(module, kernel.name, None)
        if fn is None:
            problems.append(f"{kernel.name}: missing")
            continue
        if backend == "cpu" and kernel.numpy and fn is getattr(np, kernel.numpy):
            want = len(contract.signature(kernel.name).parameters)
            if isinstance(fn, np.ufunc) and fn.nin != want:
                problems.append(f"{kernel.name}: np.{kernel.numpy} takes {fn.nin} arrays, the contract {want}")
            continue
        where = getattr(fn, "__module__", "?")
        if not where.startswith("cnnlab.backends."):
            problems.append(f"{kernel.name}: bound to {where}.{getattr(fn, '__name__', fn)}, not a backend function")
            continue
        got, want = inspect.signature(fn), contract.signature(kernel.name)
        if _shape(got) != _shape(want):
            problems.append(f"{kernel.name} (in {where}): signature {got}, contract says {want}")
    assert not problems, f"{backend} breaks the backend contract:\n  " + "\n  ".join(problems)


def test_contract_names_are_unique_and_documented():
    assert len(contract.NAMES) == len(set(contract.NAMES))
    assert all(k.contract for k in contract.CONTRACT)


def test_the_engine_calls_no_kernel_outside_the_contract():
    # every public function cpu.py exposes is in the contract, so the list stays complete
    cpu = _backend("cpu")
    public = {n for n in dir(cpu) if not n.startswith("_") and callable(getattr(cpu, n))
              and not inspect.ismodule(getattr(cpu, n))}
    assert public - set(contract.NAMES) == set()
