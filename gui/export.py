"""Take a cnnlab model to PyTorch: its weights keyed by PyTorch's names and a Python file
that defines the same architecture with `torch.nn` and loads them.

cnnlab's layers print themselves exactly as PyTorch's do (`Conv2d(1, 16,
kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))`), so the layers are written from
their reprs; a zoo model's `forward` is spelled out per model below.

    export_for_pytorch("convnet_export", model)   # model.py + weights.npz (+ weights.pt with torch)
    # then, anywhere PyTorch is installed:  python convnet_export/model.py
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab import models, nn

# The forward of each zoo model in PyTorch, as lines of its body (x is the input).
FORWARDS: dict[str, list[str]] = {
    "convnet": ["x = self.conv1(x)", "x = self.max1(x)", "x = self.conv2(x)", "x = self.max2(x)",
                "x = self.conv3(x)", "x = self.conv4(x)", "x = self.flatten(x)", "return self.linear1(x)"],
    "simplecnn": ["x = F.relu(self.conv1(x))", "x = self.pool(x)", "x = x.view(-1, {features})",
                  "x = F.relu(self.fc1(x))", "return self.fc2(x)"],
    "fcnet": ["x = torch.flatten(x, 1)", "x = F.relu(self.fc1(x))",
              "return F.relu(self.fc2(x))  # the tutorial applies ReLU to the logits too"],
    "lenet5": ["x = self.pool1(F.relu(self.conv1(x)))", "x = self.pool2(F.relu(self.conv2(x)))",
               "x = torch.flatten(x, 1)", "x = F.relu(self.fc1(x))", "x = F.relu(self.fc2(x))",
               "return self.fc3(x)"],
    "modern": ["return self.classifier(self.features(x))"],
    "cifarcnn": ["return self.classifier(self.features(x))"],
}
_NOT_IN_TORCH = {"SumPool2d": "a sum pooling (PyTorch has none: use AvgPool2d times the window area)"}


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
    return f"nn.{m!r}"


def pytorch_code(model: nn.Module, class_name: str = "Net") -> str:
    """A PyTorch definition of `model`'s architecture (imports included); the instance is
    built as `model = ...` at the end."""
    desc = models.describe(model)
    head = ["import torch", "import torch.nn as nn", "import torch.nn.functional as F", "", ""]
    if desc["name"] == "sequential":
        return "\n".join(head[:-1] + [f"model = {_layer(model, '')}", ""])
    name = desc["name"]
    lines = head + [f"class {class_name}(nn.Module):",
                    f"    \"\"\"cnnlab's {name} ({', '.join(f'{k}={v!r}' for k, v in desc['kwargs'].items())}).\"\"\"",
                    "", "    def __init__(self):", "        super().__init__()"]
    for child, m in model.named_children():
        lines.append(f"        self.{child} = {_layer(m, '        ')}")
    forward = FORWARDS.get(name)
    if forward is None:  # a zoo model added later: assume its layers run in order
        forward = [f"x = self.{c}(x)" for c, _ in model.named_children()] + ["return x"]
        lines.append("        # forward assumed to apply the layers above in order: check it")
    extra = {"features": getattr(model, "features", None)}
    lines += ["", "    def forward(self, x):"] + [f"        {line.format(**extra)}" for line in forward]
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
