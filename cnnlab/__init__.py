"""cnnlab: a convolutional-neural-network engine for learning how CNNs work.

It speaks PyTorch's API, so tutorial code runs with its imports changed::

    import cnnlab as torch
    import cnnlab.nn as nn
    import cnnlab.nn.functional as F
"""
__version__ = "0.1.0"

from . import _config  # noqa: F401  (first: sets OpenMP's wait policy before any runtime loads)
from . import autograd, backends, cuda
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .errors import LayerError
from .tensor import (
    Size, Tensor, arange, as_tensor, bool_, cat, device, empty, eye, flatten, float16, float32,
    float64, from_numpy, full, full_like, int8, int16, int32, int64, is_tensor, linspace, manual_seed,
    get_rng_state, numel, ones, ones_like, rand, randint, randn, randperm, seed, set_rng_state, stack, tensor, uint8, where, zeros,
    zeros_like,
)

# PyTorch's dtype aliases
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
bool = bool_  # noqa: A001

from . import nn, optim  # noqa: E402  (nn needs the names above)
from .serialization import load, save  # noqa: E402
from .summary import summary  # noqa: E402
from . import models, train  # noqa: E402


def _tensor_op(name):
    def op(t, *args, **kwargs):
        return getattr(t, name)(*args, **kwargs)

    op.__name__ = name
    op.__doc__ = f"cnnlab.{name}(t, ...) is t.{name}(...)."
    return op


# functions PyTorch offers both as torch.f(x) and x.f()
for _name in ("exp", "log", "sqrt", "abs", "sum", "mean", "max", "min", "argmax", "argmin", "matmul",
              "reshape", "squeeze", "unsqueeze", "permute", "transpose", "clamp", "var", "std",
              "relu", "sigmoid", "tanh", "softmax", "log_softmax", "t", "mm"):
    globals()[_name] = _tensor_op(_name)
del _name
