"""The model zoo: the tutorials' networks, LeNet-5, a small modern CNN, a VGG-style net and a
small CIFAR ResNet.

Every model is built by name with keyword arguments and can describe itself as
JSON, so a checkpoint rebuilds its model without code:

>>> m = cnnlab.models.create("convnet", in_channels=1, num_classes=10)
>>> cnnlab.models.describe(m)
{'name': 'convnet', 'kwargs': {'in_channels': 1, 'num_classes': 10, 'input_size': 28}}
>>> cnnlab.models.from_description(cnnlab.models.describe(m))   # the same architecture

The architectures themselves are written once, in cnnlab/zoo_defs.py; `define(torch)` and
`torch_twin(name, **kwargs)` build the same classes with PyTorch (benchmarks, parity tests,
the PyTorch export).
"""
from __future__ import annotations

import copy
import functools
import types
from typing import Any

import numpy as np

from . import nn
from .tensor import Tensor
from .zoo_defs import ZOO as _REGISTRY
from .zoo_defs import (
    CifarCNN, CifarResNet, ConvNet, FCNet, LeNet5, ModernCNN, SimpleCNN, VGGStyle, ZooModel, register,
)

__all__ = ["ZooModel", "ConvNet", "SimpleCNN", "CifarCNN", "FCNet", "LeNet5", "ModernCNN", "VGGStyle", "CifarResNet",
           "register", "names",
           "create", "describe", "from_description", "build_sequential", "define", "torch_twin"]


# ------------------------------------------------------------------ the one definition, either library
def define(lib: types.ModuleType) -> dict[str, type]:
    """The zoo's classes by name, built with `lib`: cnnlab itself, or `torch` for the
    PyTorch twins (cnnlab/zoo_defs.py executed with PyTorch, see cnnlab/zoo_twin.py)."""
    if lib.__name__ == "cnnlab":
        return dict(_REGISTRY)
    return dict(_executed(lib.__name__))


@functools.lru_cache(maxsize=None)
def _executed(lib_name: str) -> dict[str, type]:
    import importlib

    from .zoo_twin import zoo_classes

    return zoo_classes(importlib.import_module(lib_name))


def torch_twin(name: str, **kwargs: Any):
    """The PyTorch twin of a zoo model: a `torch.nn.Module` with the same architecture,
    forward, parameter names and state-dict keys as `create(name, **kwargs)`. Imports
    torch (ImportError without it)."""
    import torch

    return _build(define(torch), name, kwargs)


# ------------------------------------------------------------------ building
def names() -> list[str]:
    return sorted(_REGISTRY) + ["sequential"]


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build a zoo model by name ('convnet', 'simplecnn', 'cifarcnn', 'fcnet', 'lenet5', 'modern', 'vgg',
    'cifarresnet', 'cifarfast').
    Every model also takes normalize={"mean": [...], "std": [...]} (see `ZooModel`)."""
    return _build(_REGISTRY, name, kwargs)


def _build(classes: dict[str, type], name: str, kwargs: dict[str, Any]):
    key = name.lower().replace("-", "").replace("_", "")
    if key not in classes:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(classes))}")
    try:
        return classes[key](**kwargs)
    except (TypeError, KeyError) as e:
        raise ValueError(f"model {name!r}: {e}") from e


# layer types a Sequential description may hold, with the constructor argument names it records
_LAYER_ARGS: dict[str, tuple[str, ...]] = {
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
    "ConvTranspose2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                        "groups", "bias", "dilation"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "SumPool2d": ("kernel_size", "stride", "padding", "ceil_mode"),
    "AdaptiveAvgPool2d": ("output_size",),
    "Linear": ("in_features", "out_features", "bias"),
    "BatchNorm2d": ("num_features", "eps", "momentum"),
    "BatchNorm1d": ("num_features", "eps", "momentum"),
    "Dropout": ("p",),
    "Flatten": ("start_dim", "end_dim"),
    "ReLU": (), "Sigmoid": (), "Tanh": (), "Identity": (),
    "LeakyReLU": ("negative_slope",),
    "Softmax": ("dim",), "LogSoftmax": ("dim",),
    "Normalize": ("mean", "std"),
}


def _layer_args(m: nn.Module) -> dict[str, Any]:
    args = {}
    for a in _LAYER_ARGS[type(m).__name__]:
        v = getattr(m, a)
        if a == "bias":
            v = v is not None
        elif isinstance(v, Tensor):   # Normalize's statistics: float32, written shortest
            v = [float(str(x)) for x in v.numpy().astype(np.float32)]
        args[a] = list(v) if isinstance(v, tuple) else v
    return args


def describe(model: nn.Module) -> dict[str, Any]:
    """JSON-ready description: {'name', 'kwargs'} for a zoo model, {'name': 'sequential',
    'layers': [{'type', 'args'}, ...]} for a Sequential of standard layers."""
    if isinstance(model, ZooModel):
        return {"name": model.zoo_name, "kwargs": copy.deepcopy(model.config)}
    if isinstance(model, nn.Sequential):
        layers = []
        for m in model:
            kind = type(m).__name__
            if kind not in _LAYER_ARGS:
                raise ValueError(f"describe: a Sequential with a {kind} layer cannot be described as JSON")
            layers.append({"type": kind, "args": _layer_args(m)})
        return {"name": "sequential", "layers": layers}
    raise ValueError(f"describe: {type(model).__name__} is neither a zoo model nor a Sequential of standard layers")


def from_description(desc: dict[str, Any]) -> nn.Module:
    """Rebuild a model from `describe`'s output (fresh weights)."""
    if not isinstance(desc, dict) or "name" not in desc:
        raise ValueError(f"not a model description: {desc!r}")
    if desc["name"] == "sequential":
        return build_sequential(desc["layers"])
    return create(desc["name"], **desc.get("kwargs", {}))


def build_sequential(layers: list[dict[str, Any]]) -> nn.Sequential:
    """nn.Sequential from [{'type': 'Conv2d', 'args': {...}}, ...]; unknown types are refused."""
    mods = []
    for i, spec in enumerate(layers):
        kind = spec.get("type")
        if kind not in _LAYER_ARGS:
            raise ValueError(f"layer {i}: unknown type {kind!r}; choose one of {', '.join(_LAYER_ARGS)}")
        args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.get("args", {}).items()}
        try:
            mods.append(getattr(nn, kind)(**args))
        except (TypeError, ValueError) as e:
            raise ValueError(f"layer {i} ({kind}): {e}") from e
    return nn.Sequential(*mods)
