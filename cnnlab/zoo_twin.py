"""The zoo's PyTorch twins: the zoo's one definition (cnnlab/zoo_defs.py) executed with PyTorch.

This module needs nothing of cnnlab's but two of its files, read by path, so a benchmark
can build the twins in a process that never imports cnnlab (whose thread and malloc
settings would change PyTorch's timings): load this file with importlib and call
`zoo_classes(torch)`. Inside cnnlab, use `cnnlab.models.torch_twin(name, **kwargs)`.
"""
from __future__ import annotations

import importlib.util
import types
from pathlib import Path

_HERE = Path(__file__).resolve().parent

# cnnlab.nn.Normalize for PyTorch, which has no such layer: what the twins are built with,
# and what an exported model.py carries when its model normalises its input
TORCH_NORMALIZE = '''\
class Normalize(nn.Module):
    """cnnlab.nn.Normalize: (x - mean) / std per channel, the statistics the model was trained with."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(-1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(-1))

    def forward(self, x):
        per_channel = (-1,) + (1,) * (x.dim() - 2)
        return (x - self.mean.reshape(per_channel)) / self.std.reshape(per_channel)

    def extra_repr(self):
        short = [", ".join(f"{v:.7g}" for v in t.tolist()) for t in (self.mean, self.std)]
        return f"mean=[{short[0]}], std=[{short[1]}]"
'''


def _run(path: Path, ns: dict) -> None:
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), ns)


def zoo_classes(lib: types.ModuleType) -> dict[str, type]:
    """{'convnet': ConvNet, ...} built with `lib` (the `torch` module)."""
    spec = importlib.util.spec_from_file_location("_zoo_geometry", _HERE / "nn" / "geometry.py")
    geometry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(geometry)
    ns = {"__name__": f"cnnlab.zoo_defs[{lib.__name__}]", "torch": lib, "nn": lib.nn, "F": lib.nn.functional,
          "conv_output_size": geometry.conv_output_size}
    exec(compile(TORCH_NORMALIZE, "<cnnlab TORCH_NORMALIZE>", "exec"), ns)
    _run(_HERE / "zoo_defs.py", ns)
    return ns["ZOO"]
