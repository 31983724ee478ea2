"""Take a cnnlab model to PyTorch: its weights keyed by PyTorch's names and a Python file
that defines the same architecture with `torch.nn` and loads them.

cnnlab's layers print themselves exactly as PyTorch's do (`Conv2d(1, 16,
kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))`), so a model's layers are written
from their reprs; a zoo model's `forward` is copied from its one definition
(cnnlab/zoo_defs.py), which runs unchanged in PyTorch. A Normalize layer, which PyTorch
lacks, comes with its own small definition (zoo_twin.TORCH_NORMALIZE).

    export_for_pytorch("convnet_export", model)   # model.py + weights.npz (+ weights.pt with torch)
    # then, anywhere PyTorch is installed:  python convnet_export/model.py
"""
from __future__ import annotations

import ast
import inspect
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from . import models, nn
from .zoo_twin import TORCH_NORMALIZE

_NOT_IN_TORCH = {"SumPool2d": "a sum pooling (PyTorch has none: use AvgPool2d times the window area)"}
_HEAD = ["import torch", "import torch.nn as nn", "import torch.nn.functional as F", ""]


def state_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    """The state_dict as NumPy arrays under PyTorch's names (conv1.weight, features.1.running_mean ...)."""
    return {k: v.cpu().numpy().copy() for k, v in model.state_dict().items()}


def _layer(m: nn.Module, indent: str) -> str:
    kind = type(m).__name__
    if kind in _NOT_IN_TORCH:
        raise ValueError(f"cannot export {kind}: it is {_NOT_IN_TORCH[kind]}")
    if isinstance(m, nn.Sequential):
        inner = ",\n".join(indent + "    " + _layer(c, indent + "    ") for c in m)
        return f"nn.Sequential(\n{inner},\n{indent})"
    if m._modules:
        raise ValueError(f"cannot export a nested {kind}: only standard layers and Sequentials")
    return repr(m) if isinstance(m, nn.Normalize) else f"nn.{m!r}"


def _forward_source(model: nn.Module) -> list[str]:
    """The model's own forward, as written in its class; with a `normalize` child, a first
    line applies it (in cnnlab a forward pre-hook does, see zoo_defs.ZooModel)."""
    code = textwrap.dedent(inspect.getsource(type(model).forward))
    lines = code.splitlines()
    if "normalize" in model._modules:
        fn = ast.parse(code).body[0]
        arg = fn.args.args[1].arg
        first = fn.body[0].lineno - 1
        indent = lines[first][:len(lines[first]) - len(lines[first].lstrip())]
        lines.insert(first, f"{indent}{arg} = self.normalize({arg})  # raw pixels in, as in cnnlab")
    return ["    " + line if line else line for line in lines]


def _plain_attributes(model: nn.Module) -> list[str]:
    # numbers a forward may read (SimpleCNN's `features`), as the instance holds them
    skip = {"training", "config"}
    return [f"        self.{k} = {v!r}" for k, v in vars(model).items()
            if not k.startswith("_") and k not in skip and isinstance(v, (bool, int, float, str))]


def pytorch_code(model: nn.Module, class_name: str = "Net") -> str:
    """A PyTorch definition of `model`'s architecture (imports included); the instance is
    built as `model = ...` at the end."""
    desc = models.describe(model)
    head = list(_HEAD)
    if any(isinstance(m, nn.Normalize) for m in model.modules()):
        head += ["", TORCH_NORMALIZE]
    if desc["name"] == "sequential":
        return "\n".join(head + [f"model = {_layer(model, '')}", ""])
    settings = ", ".join(f"{k}={v!r}" for k, v in desc["kwargs"].items())
    lines = head + ["", f"class {class_name}(nn.Module):", f"    \"\"\"cnnlab's {desc['name']} ({settings}).\"\"\"",
                    "", "    def __init__(self):", "        super().__init__()"]
    lines += [f"        self.{child} = {_layer(m, '        ')}" for child, m in model.named_children()]
    lines += _plain_attributes(model) + [""] + _forward_source(model)
    lines += ["", "", f"model = {class_name}()", ""]
    return "\n".join(lines)


LOADER = '''

if __name__ == "__main__":
    import os
    import numpy as np

    here = os.path.dirname(os.path.abspath(__file__))
    arrays = np.load(os.path.join(here, "{weights}"))
    model.load_state_dict({{k: torch.from_numpy(arrays[k]) for k in arrays.files}})
    model.eval()
    print(model)
    print("loaded", sum(p.numel() for p in model.parameters()), "parameters from {weights}")
'''


def export_for_pytorch(folder: str | os.PathLike, model: nn.Module, state: dict[str, np.ndarray] | None = None,
                       class_name: str = "Net") -> list[Path]:
    """Write model.py (the architecture, and a loader when run) and weights.npz into `folder`;
    also weights.pt when PyTorch is importable here. `state` defaults to the model's own.
    Returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = state_arrays(model) if state is None else state
    code = pytorch_code(model, class_name) + LOADER.format(weights="weights.npz")
    written = [folder / "model.py", folder / "weights.npz"]
    written[0].write_text(code)
    np.savez(written[1], **state)
    try:
        import torch
    except ImportError:
        return written
    pt = folder / "weights.pt"
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, pt)
    return written + [pt]


def load_npz_state(path: str | os.PathLike) -> dict[str, Any]:
    """The arrays of a weights.npz, by name."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
