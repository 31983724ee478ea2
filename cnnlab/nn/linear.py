"""Linear (fully connected), Flatten, Unflatten and Identity."""
from __future__ import annotations

from ..errors import LayerError
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module


class Linear(Module):
    """y = x W^T + b.

    Shape: (*, in_features) -> (*, out_features); weight (out_features, in_features).
    Weight and bias start as PyTorch's, U(+-1/sqrt(in_features)).

    >>> nn.Linear(36, 10)(cnnlab.zeros(64, 36)).shape
    cnnlab.Size([64, 10])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise LayerError("Linear", f"feature counts must be positive, got in_features={in_features}, "
                                       f"out_features={out_features}")
        self.in_features, self.out_features = in_features, out_features
        init.add_weight_and_bias(self, (out_features, in_features), bias, dtype, device)

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Flattens dims start_dim..end_dim (default: all but the batch). (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        return input.unflatten(self.dim, self.unflattened_size)


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input
