"""PyTorch's `torch.utils` namespace: `cnnlab.utils.data` is `torch.utils.data`."""
from . import data

__all__ = ["data"]
