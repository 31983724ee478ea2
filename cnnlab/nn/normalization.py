"""Batch normalisation layers with running statistics as buffers."""
from __future__ import annotations

import numpy as np

from ..errors import LayerError, shape_str
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter


class _BatchNorm(Module):
    _dims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dt = dtype or np.float32
        if affine:
            self.weight = Parameter(Tensor(np.ones(num_features, dt)))
            self.bias = Parameter(Tensor(np.zeros(num_features, dt)))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dt)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dt)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64), dtype=np.int64))
        else:
            self.running_mean = self.running_var = None
        if device is not None:
            self.to(device)

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor) or input.ndim not in self._dims:
            got = shape_str(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise LayerError("batch_norm", f"expected a {' or '.join(f'{d}-D' for d in self._dims)} input, got {got}")
        if input.shape[1] != self.num_features:
            raise LayerError("batch_norm", f"expected input with {self.num_features} channels "
                                           f"(num_features={self.num_features}), got {input.shape[1]} in input "
                                           f"of shape {shape_str(input.shape)}")
        use_batch = self.training or not self.track_running_stats
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data[...] += 1
            if momentum is None:  # cumulative average, as PyTorch
                momentum = 1.0 / float(self.num_batches_tracked.item())
        rm = self.running_mean if (self.training or not use_batch) else None
        rv = self.running_var if (self.training or not use_batch) else None
        return F.batch_norm(input, rm, rv, self.weight, self.bias, use_batch, momentum or 0.0, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    """Per-channel normalisation of (N, C, H, W) activations; shape unchanged."""

    _dims = (4,)


class BatchNorm1d(_BatchNorm):
    """Per-feature normalisation of (N, C) or (N, C, L) activations."""

    _dims = (2, 3)
