"""torchvision.models' place for cnnlab's model zoo: one builder per zoo name.

    model = cnnlab.vision.models.get_model("lenet5", num_classes=10)
    model = cnnlab.vision.models.lenet5(num_classes=10)

The zoo holds the tutorials' small networks (see `cnnlab.models`); there are no
pretrained weights, so `weights=` is accepted only as None.
"""
from __future__ import annotations

from typing import Any, Callable

from .. import models as _zoo
from ..models import CifarCNN, ConvNet, FCNet, LeNet5, ModernCNN, SimpleCNN  # noqa: F401
from ..nn import Module


def list_models() -> list[str]:
    """The names `get_model` accepts."""
    return _zoo.names()


def get_model(name: str, *, weights: Any = None, **kwargs: Any) -> Module:
    """A fresh zoo model by name; `weights` must be None (cnnlab ships no trained weights)."""
    if weights is not None:
        raise ValueError(f"cnnlab's zoo has no pretrained weights; pass weights=None (got {weights!r})")
    return _zoo.create(name, **kwargs)


def _builder(name: str) -> Callable[..., Module]:
    def build(*, weights: Any = None, **kwargs: Any) -> Module:
        return get_model(name, weights=weights, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"The zoo's {name!r} model (see cnnlab.models)."
    return build


globals().update({name: _builder(name) for name in _zoo.names()})
