"""`cnnlab.backends.cudnn`: PyTorch's cuDNN switches, so `import torch.backends.cudnn as cudnn;
cudnn.benchmark = True` runs unchanged. They have no effect in cnnlab: its CUDA backend has its
own kernels (no cuDNN), picks no algorithm by timing, and gives the same results run to run
whatever `deterministic` says.
"""
from __future__ import annotations

enabled: bool = True          # PyTorch: use cuDNN where it can
benchmark: bool = False       # PyTorch: time the convolution algorithms and keep the fastest
deterministic: bool = False   # PyTorch: only algorithms that give the same bits every run
allow_tf32: bool = True       # PyTorch: TF32 inside cuDNN convolutions on Ampere and later


def is_available() -> bool:
    """False: cnnlab never uses cuDNN (its CUDA kernels are its own)."""
    return False


def version() -> None:
    """None, as PyTorch answers when cuDNN is not available."""
    return None
