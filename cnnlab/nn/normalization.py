"""Normalisation layers: batch norm with running statistics, and Normalize with fixed input statistics."""
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
        return self._forward(input, False)

    def _with_relu(self, input: Tensor) -> Tensor:
        """relu(self(input)) in one kernel each way: nn.Sequential calls this for a batch norm
        followed by a ReLU when neither layer has hooks (the same numbers as the two layers)."""
        self._ensure_init()
        return self._tagged(self._forward, input, True)

    def _forward(self, input: Tensor, relu: bool) -> Tensor:
        if not isinstance(input, Tensor) or input.ndim not in self._dims:
            got = shape_str(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise LayerError("batch_norm", f"expected a {' or '.join(f'{d}-D' for d in self._dims)} input, got {got}")
        if input.shape[1] != self.num_features:
            raise LayerError("batch_norm", f"expected input with {self.num_features} channels "
                                           f"(num_features={self.num_features}), got {input.shape[1]} in input "
                                           f"of shape {shape_str(input.shape)}")
        use_batch = self.training or not self.track_running_stats
        momentum, counter = self.momentum, None
        if self.training and self.track_running_stats:
            if momentum is None:  # cumulative average, as PyTorch
                self.num_batches_tracked._data[...] += 1
                momentum = 1.0 / float(self.num_batches_tracked.item())
            else:  # counted by batch norm's statistics kernel: no launch of its own on a GPU
                counter = self.num_batches_tracked
        rm = self.running_mean if (self.training or not use_batch) else None
        rv = self.running_var if (self.training or not use_batch) else None
        return F._batch_norm(input, rm, rv, self.weight, self.bias, use_batch, momentum or 0.0, self.eps,
                             counter, relu)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    """Per-channel normalisation of (N, C, H, W) activations; shape unchanged."""

    _dims = (4,)


class BatchNorm1d(_BatchNorm):
    """Per-feature normalisation of (N, C) or (N, C, L) activations."""

    _dims = (2, 3)


class Normalize(Module):
    """(x - mean) / std per channel: the input statistics a model was trained with, kept inside
    the model (as buffers, so they travel in its state dict and its PyTorch export) instead of
    beside it. Raw pixels go in; every later layer sees what it was trained on.

    Shape: (N, C, *) -> the same, with C == len(mean).

    >>> norm = Normalize(mean=[0.1307], std=[0.3081])     # MNIST's statistics
    >>> norm(cnnlab.full((1, 1, 2, 2), 0.1307)).sum().item()
    0.0
    """

    def __init__(self, mean, std):
        super().__init__()
        m = np.asarray(mean, np.float32).reshape(-1)
        s = np.asarray(std, np.float32).reshape(-1)
        if m.size == 0 or m.shape != s.shape:
            raise ValueError(f"Normalize: mean and std need one value per channel each, got {m.size} and {s.size}")
        if not np.all(s > 0):
            raise ValueError(f"Normalize: every std must be > 0, got {s.tolist()}")
        self.register_buffer("mean", Tensor(m))
        self.register_buffer("std", Tensor(s))

    def forward(self, input: Tensor) -> Tensor:
        channels = self.mean.shape[0]
        if not isinstance(input, Tensor) or input.ndim < 2 or input.shape[1] != channels:
            got = shape_str(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise LayerError("normalize", f"expected (N, {channels}, ...) input, got {got}")
        per_channel = (channels,) + (1,) * (input.ndim - 2)
        return (input - self.mean.reshape(per_channel)) / self.std.reshape(per_channel)

    def extra_repr(self) -> str:
        return f"mean={_short(self.mean)}, std={_short(self.std)}"


def _short(t: Tensor) -> str:
    # float32 printed to its 7 significant digits: [0.1307], not [0.13070000708103180]
    return "[" + ", ".join(f"{v:.7g}" for v in t.numpy().tolist()) + "]"
