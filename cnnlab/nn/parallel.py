"""`cnnlab.nn.parallel`: PyTorch's data-parallel names, for code written for several GPUs.

cnnlab runs a model on one device, so both names here run the module once on the whole batch;
that is exactly what PyTorch's do when no more than one GPU is present, which is how such code
behaves on a laptop. `DataParallel` keeps PyTorch's layout (the model under `.module`, state_dict
keys prefixed `module.`), so checkpoints move between the two libraries.
"""
from __future__ import annotations

from typing import Any, Sequence

from .module import Module


class DataParallel(Module):
    """Wraps `module` as PyTorch's DataParallel does; forward calls it on the whole batch.

    device_ids, output_device and dim are kept for code that reads them; they change nothing.
    """

    def __init__(self, module: Module, device_ids: Sequence[Any] | None = None, output_device: Any = None,
                 dim: int = 0):
        super().__init__()
        self.module = module
        self.device_ids = [] if device_ids is None else list(device_ids)
        self.output_device, self.dim = output_device, dim

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)


def data_parallel(module: Module, inputs: Any, device_ids: Sequence[Any] | None = None, output_device: Any = None,
                  dim: int = 0, module_kwargs: dict | None = None) -> Any:
    """module(*inputs, **module_kwargs) on one device: PyTorch's functional DataParallel; a single
    input need not be wrapped in a tuple."""
    if not isinstance(inputs, tuple):
        inputs = (inputs,)
    return module(*inputs, **(module_kwargs or {}))


__all__ = ["DataParallel", "data_parallel"]
