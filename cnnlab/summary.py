"""`cnnlab.summary(model, input_size)`: the torchinfo table of a model.

It runs one forward pass on zeros with hooks on every sub-module and records
each call's output shape. The totals follow the torchinfo version seed 004
printed: mult-adds count, per sample, a conv weight once per output pixel and
every other weight or bias once; the forward/backward size counts the outputs
of layers that have parameters, twice (activation and its gradient), in float32.

>>> print(cnnlab.summary(ConvNet(), input_size=(64, 1, 28, 28)))   # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .autograd import no_grad
from .nn.module import Module
from .creation import zeros
from .tensor import Tensor

_WIDTH = 90


@dataclass
class LayerRow:
    name: str                 # attribute path, e.g. "features.0"
    type: str                 # class name, e.g. "Conv2d"
    depth: int                # 1 for the model's direct children
    depth_index: int          # position among the rows of that depth
    output_shape: list[int] = field(default_factory=list)
    num_params: int = 0       # parameters this layer owns itself (not its children)
    trainable: int = 0
    mult_adds: int = 0
    is_container: bool = False

    @property
    def label(self) -> str:
        lead = "├─" if self.depth == 1 else "│    " * (self.depth - 1) + "└─"
        return f"{lead}{self.type}: {self.depth}-{self.depth_index}"


@dataclass
class ModelSummary:
    """What `summary` measured; `str()` gives the table, the fields give the numbers."""

    model_name: str
    input_size: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    total_mult_adds: int
    input_bytes: int
    forward_backward_bytes: int
    params_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.input_bytes + self.forward_backward_bytes + self.params_bytes

    def __str__(self) -> str:
        sep = "=" * _WIDTH
        out = [sep, f"{'Layer (type:depth-idx)':<41}{'Output Shape':<26}Param #", sep]
        for r in self.rows:
            shape = "[" + ", ".join(str(s) for s in r.output_shape) + "]"
            params = "--" if r.num_params == 0 else f"{r.num_params:,}"
            out.append(f"{r.label:<41}{shape:<26}{params}")
        mb = lambda b: f"{b / 1e6:.2f}"  # noqa: E731 - torchinfo's MB are 10^6 bytes
        out += [
            sep,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Total mult-adds (M): {self.total_mult_adds / 1e6:.2f}",
            sep,
            f"Input size (MB): {mb(self.input_bytes)}",
            f"Forward/backward pass size (MB): {mb(self.forward_backward_bytes)}",
            f"Params size (MB): {mb(self.params_bytes)}",
            f"Estimated Total Size (MB): {mb(self.total_bytes)}",
            sep,
        ]
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self) -> str:   # the same table in a notebook
        from .notebook.rich import summary_html
        return summary_html(self)


def _mult_adds(module: Module, output_shape: Sequence[int]) -> int:
    total = 0
    conv = type(module).__name__.startswith("Conv")
    for pname, p in module._parameters.items():
        if p is None:
            continue
        if pname == "weight" and conv:
            total += p.numel() * int(np.prod(output_shape[2:], dtype=np.int64))
        else:
            total += p.numel()
    return total


def summary(model: Module, input_size: Sequence[int] | None = None, input_data: Tensor | None = None,
            dtypes=None, device=None, verbose: int = 0, **_ignored) -> ModelSummary:
    """Run one forward pass and tabulate each layer's output shape and parameters.

    input_size includes the batch, e.g. (64, 1, 28, 28), like torchinfo.
    """
    if input_data is None:
        if input_size is None:
            raise ValueError("summary: give input_size (with the batch, e.g. (64, 1, 28, 28)) or input_data")
        dev = device or next((p.device for p in model.parameters()), "cpu")
        dtype = next((p.dtype for p in model.parameters()), np.float32)
        input_data = zeros(tuple(input_size), dtype=dtype, device=dev)
    names = {id(m): n for n, m in model.named_modules()}
    rows: list[LayerRow] = []
    counters: dict[int, int] = {}
    pending: dict[int, list[LayerRow]] = {}
    handles = []

    def pre_hook(module, inputs):
        name = names.get(id(module), "")
        depth = name.count(".") + 1
        counters[depth] = counters.get(depth, 0) + 1
        own = sum(p.numel() for p in module._parameters.values() if p is not None)
        trainable = sum(p.numel() for p in module._parameters.values() if p is not None and p.requires_grad)
        row = LayerRow(name, type(module).__name__, depth, counters[depth], num_params=own,
                       trainable=trainable, is_container=bool(module._modules))
        rows.append(row)
        pending.setdefault(id(module), []).append(row)

    def post_hook(module, inputs, output):
        row = pending[id(module)].pop()
        out = output[0] if isinstance(output, (tuple, list)) else output
        row.output_shape = list(out.shape) if isinstance(out, Tensor) else []
        row.mult_adds = _mult_adds(module, row.output_shape)

    for name, m in model.named_modules():
        if name:
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(post_hook))
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(input_data)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()

    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    seen: set[str] = set()
    fb = 0
    for r in rows:
        if r.num_params and r.name not in seen:
            seen.add(r.name)
            fb += int(np.prod(r.output_shape, dtype=np.int64)) * 4 * 2
    return ModelSummary(
        model_name=type(model).__name__,
        input_size=tuple(input_data.shape),
        rows=rows,
        total_params=total,
        trainable_params=trainable,
        total_mult_adds=sum(r.mult_adds for r in rows),
        input_bytes=input_data.numel() * 4,
        forward_backward_bytes=fb,
        params_bytes=sum(p.numel() * p.dtype.itemsize for p in params),
    )
