"""Sequential, ModuleList and ModuleDict."""
from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any, Iterable, Iterator

from .module import Module


def _fuses_relu(m: Module, nxt: Module, x: Any) -> bool:
    """Whether a batch norm and the ReLU after it may run as one kernel: plain layers of the
    engine's own (no subclass forward), no hooks that would see the value between them, and
    a CPU tensor (the CUDA backend composes the two kernels, so it gains nothing)."""
    return (type(nxt) is _layers()[1] and isinstance(m, _layers()[0]) and type(m).forward is _layers()[0].forward
            and not (m._forward_hooks or m._forward_pre_hooks or nxt._forward_hooks or nxt._forward_pre_hooks)
            and getattr(getattr(x, "_backend", None), "name", None) == "cpu")


@functools.lru_cache(maxsize=None)
def _layers() -> tuple[type, type]:
    # imported on first use: normalization and activation import this package
    from .activation import ReLU
    from .normalization import _BatchNorm
    return _BatchNorm, ReLU


class Sequential(Module):
    """Layers applied one after another; built from modules or an OrderedDict of named ones.

    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 26 * 26, 10))
    >>> net(cnnlab.zeros(2, 1, 28, 28)).shape
    cnnlab.Size([2, 10])
    """

    def __init__(self, *args: Any):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, m in args[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def forward(self, input: Any) -> Any:
        mods = list(self._modules.values())
        i = 0
        while i < len(mods):
            if i + 1 < len(mods) and _fuses_relu(mods[i], mods[i + 1], input):
                input = mods[i]._with_relu(input)   # BatchNorm + ReLU in one pass each way
                i += 2
            else:
                input = mods[i](input)
                i += 1
        return input

    def __getitem__(self, idx):
        mods = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(mods[idx]))
        return mods[idx][1]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        for m in modules or []:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, idx):
        return list(self._modules.values())[idx]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class ModuleDict(Module):
    def __init__(self, modules: dict | None = None):
        super().__init__()
        for k, m in (modules or {}).items():
            self.add_module(k, m)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()
