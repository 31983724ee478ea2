"""cnnlab: a convolutional-neural-network engine for learning how CNNs work.

It speaks PyTorch's API, so tutorial code runs with its imports changed::

    import cnnlab as torch
    import cnnlab.nn as nn
    import cnnlab.nn.functional as F
"""
__version__ = "0.1.0"

from . import _config  # noqa: F401  (numba flags; malloc thresholds; no environment variable)
from . import autograd, backends, cuda, random
from .backends import cudnn as _cudnn  # noqa: F401  (torch.backends.cudnn.benchmark = True needs no import)
from .autograd import (
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad, set_grad_enabled,
)
from .errors import LayerError
from .printing import set_printoptions
from .random import Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .tensor import (
    Size, Tensor, bool_, device, float16, float32, float64, int8, int16, int32, int64, uint8,
)
from .creation import (
    arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, normal, ones, ones_like, rand,
    rand_like, randint, randn, randn_like, randperm, tensor, zeros, zeros_like,
)
from .functions import (
    abs, all, any, argmax, argmin, baddbmm, bmm, cat, clamp, cos, cosh, einsum, exp, flatten, is_tensor, log,
    log_softmax, matmul, max, mean, meshgrid, min, mm, numel, permute, prod, relu, relu_, reshape, sigmoid, sin, sinh,
    softmax, sqrt, squeeze, stack, std, sum, t, tanh, transpose, unsqueeze, var, where,
)

# PyTorch's dtype aliases
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
bool = bool_  # noqa: A001

# PyTorch's legacy tensor types: FloatTensor, DoubleTensor, LongTensor, IntTensor, ByteTensor, BoolTensor ...
from .types import LEGACY_TYPES as _LEGACY_TYPES  # noqa: E402
globals().update(_LEGACY_TYPES)

from . import accelerator, nn, optim  # noqa: E402  (nn needs the names above)
from .serialization import load, save  # noqa: E402
from .summary import summary  # noqa: E402
from . import models, train  # noqa: E402
from . import utils  # noqa: E402  (torch.utils.data's names)

