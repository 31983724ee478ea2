"""Lazy layers: `LazyConv2d(out_channels, ...)`, `LazyLinear(out_features)` and
`LazyBatchNorm1d/2d()` learn their input size from the first batch they see.

At that first call the layer builds the ordinary layer with the inferred size, so the
weights start as PyTorch's do then, and becomes it: `type(m)` is then `nn.Conv2d`,
which is what `model.apply(init_fn)` after a dry run checks. The parameter objects
handed out before (say, to an optimizer) are the ones that receive the weights.

>>> net = nn.Sequential(nn.LazyConv2d(6, kernel_size=5, padding=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
>>> net(cnnlab.zeros(1, 1, 28, 28)).shape
cnnlab.Size([1, 10])
>>> net[0]
Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import LayerError, shape_str
from ..tensor import Tensor
from .conv import Conv2d
from .linear import Linear
from .module import Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d

_HOUSEKEEPING = ("_name", "training", "_forward_hooks", "_forward_pre_hooks")


class UninitializedParameter(Parameter):
    """A parameter whose shape its lazy layer learns at the first call (empty until then)."""

    def __init__(self, requires_grad: bool = True, dtype=None):
        super().__init__(Tensor(np.empty(0, dtype or np.float32)), requires_grad)

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


class LazyModule(Module):
    """The shared mechanism: `cls_to_become(size, *args, **kwargs)` built at the first call,
    size being `size_dim` of the input's shape."""

    cls_to_become: type[Module]
    size_dim: int
    size_name: str

    def _lazy(self, args: tuple, kwargs: dict, params: tuple[str, ...]) -> None:
        super().__init__()
        self._lazy_args, self._lazy_kwargs = args, kwargs
        dtype = kwargs.get("dtype")
        for name in params:
            setattr(self, name, UninitializedParameter(dtype=dtype))

    def has_uninitialized_params(self) -> bool:
        return True

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor) or input.ndim < abs(self.size_dim) + (self.size_dim >= 0):
            got = shape_str(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise LayerError(type(self).__name__, f"cannot infer {self.size_name} from an input of shape {got}")
        self._materialize(int(input.shape[self.size_dim]), input.device)
        return self.forward(input)

    def _materialize(self, size: int, device: Any) -> None:
        placeholders = dict(self._parameters)
        first = next((p for p in placeholders.values() if p is not None), None)
        kwargs = dict(self._lazy_kwargs)
        if first is not None:  # a .double() or .to(device) before the first call carries over
            kwargs["dtype"], device = first.dtype, first.device
        real = self.cls_to_become(size, *self._lazy_args, **{**kwargs, "device": device})
        for name, p in real._parameters.items():
            old = placeholders.get(name)
            if p is not None and old is not None:
                old._become(p)
                old.__class__ = Parameter
                real._parameters[name] = old
        keep = {k: self.__dict__[k] for k in _HOUSEKEEPING if k in self.__dict__}
        self.__dict__.clear()
        self.__dict__.update(real.__dict__)
        self.__dict__.update(keep)
        self.__class__ = self.cls_to_become


class LazyLinear(LazyModule):
    """Linear whose in_features is the last dimension of its first input."""

    cls_to_become, size_dim, size_name = Linear, -1, "in_features"

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        self._lazy((out_features,), {"bias": bias, "dtype": dtype}, ("weight", "bias") if bias else ("weight",))
        self.out_features = out_features
        if device is not None:
            self.to(device)


class LazyConv2d(LazyModule):
    """Conv2d whose in_channels is the channel count (dimension -3) of its first input."""

    cls_to_become, size_dim, size_name = Conv2d, -3, "in_channels"

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        self._lazy((out_channels, kernel_size), {"stride": stride, "padding": padding, "dilation": dilation,
                                                 "groups": groups, "bias": bias, "padding_mode": padding_mode,
                                                 "dtype": dtype}, ("weight", "bias") if bias else ("weight",))
        self.out_channels = out_channels
        if device is not None:
            self.to(device)


class _LazyBatchNorm(LazyModule):
    size_dim, size_name = 1, "num_features"

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        self._lazy((), {"eps": eps, "momentum": momentum, "affine": affine,
                        "track_running_stats": track_running_stats, "dtype": dtype},
                   ("weight", "bias") if affine else ())
        if device is not None:
            self.to(device)


class LazyBatchNorm1d(_LazyBatchNorm):
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNorm):
    cls_to_become = BatchNorm2d
