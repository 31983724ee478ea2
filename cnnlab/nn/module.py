"""Module and Parameter: the state-holding half of `cnnlab.nn`.

A Module registers the Parameters, buffers and sub-Modules assigned to it as
attributes, so `parameters()`, `state_dict()` and `to()` can walk the tree.
State-dict keys are PyTorch's: attribute names joined by dots (`conv1.weight`).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import LayerError, MismatchError, shape_str
from ..tensor import Tensor, _as_dtype, device as _device


class Parameter(Tensor):
    """A Tensor that a Module learns: requires_grad defaults to True."""

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        src = data if isinstance(data, Tensor) else Tensor(np.empty(0, np.float32) if data is None else data)
        # a new leaf sharing data's storage, as nn.Parameter(t) does
        self._become(src.detach())
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    def __init__(self, hooks: dict, key: int):
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


class Module:
    """Base class of every layer and model. Subclass, assign layers in `__init__`, write `forward`."""

    training: bool
    _hook_counter = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_name", None)

    def _ensure_init(self) -> None:
        # A subclass that forgot super().__init__() (seed 004's listing does) still works.
        if "_parameters" not in self.__dict__:
            Module.__init__(self)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, (Parameter, Module)) or "_parameters" in self.__dict__:
            self._ensure_init()
            for store in (self._parameters, self._modules, self._buffers):
                if name in store and not (store is self._buffers and isinstance(value, Tensor)):
                    del store[name]
            if isinstance(value, Parameter):
                self._parameters[name] = value
                return
            if isinstance(value, Module):
                self._modules[name] = value
                if value._name is None:
                    object.__setattr__(value, "_name", name)
                return
            if name in self._buffers:
                self._buffers[name] = value
                return
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        self._ensure_init()
        self._buffers[name] = tensor
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._ensure_init()
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: "Module | None") -> None:
        self._ensure_init()
        self._modules[name] = module
        if module is not None and module._name is None:
            object.__setattr__(module, "_name", name)

    register_module = add_module

    # ------------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._ensure_init()
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self._tagged(self.forward, *args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def _tagged(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs), a LayerError from it tagged with where it happened (innermost layer first)."""
        try:
            return fn(*args, **kwargs)
        except LayerError as e:
            if e.layer_type is None:
                e.layer_type = type(self).__name__
            if self._name is not None:
                e.path.insert(0, self._name)
            raise

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """hook(module, inputs, output) runs after every forward; returning a value replaces the output."""
        self._ensure_init()
        Module._hook_counter += 1
        self._forward_hooks[Module._hook_counter] = hook
        return RemovableHandle(self._forward_hooks, Module._hook_counter)

    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        self._ensure_init()
        Module._hook_counter += 1
        self._forward_pre_hooks[Module._hook_counter] = hook
        return RemovableHandle(self._forward_pre_hooks, Module._hook_counter)

    # ------------------------------------------------------------------ walking
    def named_modules(self, memo: set | None = None, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        self._ensure_init()
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        self._ensure_init()
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for pname, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for mname, m in self.named_modules(prefix=prefix):
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self) -> Iterator[Tensor]:
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    # ------------------------------------------------------------------ moving
    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """Move (in place) every parameter and buffer to a device and/or floating dtype."""
        dev, dtype = kwargs.get("device"), kwargs.get("dtype")
        for a in args:
            if isinstance(a, (str, _device)):
                dev = a
            elif isinstance(a, Tensor):
                dev = a.device
            else:
                dtype = a
        dtype = _as_dtype(dtype)
        for t in list(self.parameters()) + list(self.buffers()):
            new = t
            if dtype is not None and t.dtype.kind == "f":
                new = new.detach().to(dtype)
            if dev is not None:
                new = new.detach().to(dev)
            if new is not t:
                t._data, t._device, t._backend = new._data, new._device, new._backend
                if t.grad is not None:
                    t.grad = t.grad.to(new.device).to(t.dtype)
        return self

    def cuda(self, device: int | None = None) -> "Module":
        return self.to("cuda")

    def cpu(self) -> "Module":
        return self.to("cpu")

    def float(self) -> "Module":
        return self.to(np.float32)

    def double(self) -> "Module":
        return self.to(np.float64)

    # ------------------------------------------------------------------ state
    def state_dict(self, prefix: str = "") -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers by PyTorch's dotted names, detached from the graph."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for mname, m in self.named_modules(prefix=prefix.rstrip(".")):
            skip = m.__dict__.get("_non_persistent", set())
            for pname, p in list(m._parameters.items()) + list(m._buffers.items()):
                if p is not None and pname not in skip:
                    out[f"{mname}.{pname}" if mname else pname] = p.detach()
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True):
        """Copy values into this module's parameters and buffers.

        Refuses (ValueError naming every key and shape that differ) when the dict
        was made for another architecture; with strict=False only missing and
        unexpected keys are tolerated, never a shape mismatch.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for k, t in own.items():
            if k in state_dict:
                v = state_dict[k]
                vshape = tuple(v.shape)
                if vshape != tuple(t.shape):
                    mismatched.append(f"{k}: checkpoint {shape_str(vshape)}, model {shape_str(t.shape)}")
        problems = []
        if mismatched:
            problems.append("shapes differ for " + "; ".join(mismatched))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise MismatchError(f"load_state_dict into {type(self).__name__}: the state does not fit this "
                             f"architecture: " + " | ".join(problems))
        params = dict(self.named_parameters())
        params.update(dict(self.named_buffers()))
        for k in own:
            if k in state_dict:
                v = state_dict[k]
                arr = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
                target = params[k]
                target._data[...] = target._backend.from_numpy(np.asarray(arr, dtype=target.dtype)) \
                    if target._device.type == "cpu" else target._backend.from_numpy(arr.astype(target.dtype))
                target._vc[0] += 1  # as PyTorch's copy_: a graph that saved the old values now refuses backward
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        self._ensure_init()
        lines = []
        extra = self.extra_repr()
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        if not lines:
            return f"{type(self).__name__}({extra})"
        inner = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {inner}\n)"

    def __dir__(self):
        self._ensure_init()
        return list(super().__dir__()) + list(self._parameters) + list(self._modules) + list(self._buffers)


class _IncompatibleKeys(tuple):
    def __new__(cls, missing, unexpected):
        t = super().__new__(cls, (missing, unexpected))
        t.missing_keys, t.unexpected_keys = missing, unexpected
        return t

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"
