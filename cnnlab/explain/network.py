"""Traces through a whole model: one neuron written out, and receptive fields layer by layer.

Both run the live model once on the caller's input with forward hooks, so the numbers
are the engine's own (the feature map a view shows), and both walk the layers in the
order they executed. Receptive fields follow a chain of layers (a Sequential, or any
model whose spatial layers run one after another); a branch (a ResNet's shortcut) is
not followed.

>>> from cnnlab import nn
>>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, dilation=2))
>>> rf = receptive_field(net, "3", (0, 0), (1, 16, 16))
>>> rf.input_rows, rf.size
((0, 12), (12, 12))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..autograd import no_grad
from ..creation import tensor, zeros
from ..nn import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Dropout2d, Identity, LeakyReLU, \
    MaxPool2d, Module, ReLU, Sigmoid, SumPool2d, Tanh
from ..nn.geometry import pair
from ._common import as_array, num, paren

Range = tuple[int, int]


def _find(model: Module, layer: Module | str) -> tuple[str, Module]:
    for name, m in model.named_modules():
        if m is layer or name == layer:
            return name, m
    names = [n for n, m in model.named_modules() if n and not m._modules]
    raise ValueError(f"no layer {layer!r} in the model; its layers are {', '.join(names)}")


def _run_recording(model: Module, x) -> list[tuple[str, Module, Any, Any]]:
    """(name, module, input, output) of every leaf layer, in the order they ran."""
    ran: list[tuple[str, Module, Any, Any]] = []
    handles = [m.register_forward_hook(lambda mod, args, out, name=name: ran.append((name, mod, args[0], out)))
               for name, m in model.named_modules() if not m._modules]
    try:
        with no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return ran


# ------------------------------------------------------------ receptive field

@dataclass(frozen=True)
class LayerField:
    """The region of one layer's output (rows and cols [lo, hi)) that the chosen cell
    depends on, with the layer's geometry and the running receptive-field size and jump
    (input cells between neighbouring outputs) at that layer."""

    name: str
    kind: str
    out_hw: tuple[int, int]
    rows: Range
    cols: Range
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    size: tuple[int, int]
    jump: tuple[int, int]


@dataclass(frozen=True)
class ReceptiveField:
    """Where a cell of `layer`'s output looks in the input image and in every layer in between.

    `layers` run from the first layer to `layer`; `input_rows`/`input_cols` are the image
    region ([lo, hi), clipped to the image); `size` the unclipped field (the textbook
    r_l = r_(l-1) + d(k-1) * jump_(l-1)), which padding can make larger than the region.
    """

    cell: tuple[int, int]
    input_hw: tuple[int, int]
    input_rows: Range
    input_cols: Range
    size: tuple[int, int]
    layers: tuple[LayerField, ...]

    def region(self, name: str) -> tuple[Range, Range]:
        """(rows, cols) of layer `name`'s output that the cell depends on."""
        f = next(f for f in self.layers if f.name == name)
        return f.rows, f.cols


def _geometry(m: Module, in_hw: tuple[int, int], out_hw: tuple[int, int]):
    """(kernel, stride, padding, dilation) of a spatial layer; None for a layer that maps
    each cell to itself (activations, batch norm, dropout)."""
    if isinstance(m, Conv2d):
        if isinstance(m.padding, str):  # 'same' pads d(k-1) in total, the odd one at the end
            pad = tuple(d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation)) if m.padding == "same" else (0, 0)
        else:
            pad = m.padding
        return m.kernel_size, m.stride, pad, m.dilation
    if isinstance(m, (MaxPool2d, AvgPool2d, SumPool2d)):
        k = pair(m.kernel_size)
        s = pair(m.stride) if m.stride not in (None, ()) else k
        return k, s, pair(m.padding), pair(getattr(m, "dilation", 1))
    if isinstance(m, AdaptiveAvgPool2d):
        k = tuple(n // o for n, o in zip(in_hw, out_hw))
        return k, k, (0, 0), (1, 1)
    if in_hw == out_hw:
        return None
    raise ValueError(f"{type(m).__name__} changes the image size and has no kernel geometry; "
                     "the receptive field cannot be followed through it")


def receptive_field(model: Module, layer: Module | str, cell: tuple[int, int],
                    input_shape: Sequence[int]) -> ReceptiveField:
    """The receptive field of output cell (row, col) of `layer` (a name from
    named_modules() or the module), for an input of shape (C, H, W)."""
    name, target = _find(model, layer)
    like = next(model.parameters(), None)  # run in the model's own dtype and device
    probe = zeros(1, *tuple(input_shape)[-3:], dtype=like.dtype if like is not None else None,
                  device=like.device if like is not None else None)
    ran = _run_recording(model, probe)
    mine = [i for i, entry in enumerate(ran) if entry[0] == name or entry[0].startswith(name + ".")]
    if not mine:
        raise ValueError(f"layer {name} did not run in the model's forward pass")
    chain = ran[:mine[-1] + 1]
    geo = []
    for lname, m, x, y in chain:
        if y.ndim != 4:
            raise ValueError(f"layer {lname} ({type(m).__name__}) has no spatial output (shape {tuple(y.shape)})")
        in_hw, out_hw = tuple(x.shape[-2:]), tuple(y.shape[-2:])
        geo.append((lname, m, in_hw, out_hw, _geometry(m, in_hw, out_hw)))
    row, col = cell
    oh, ow = geo[-1][3]
    if not (0 <= row < oh and 0 <= col < ow):
        raise ValueError(f"cell ({row}, {col}) is outside layer {name}'s {oh}x{ow} output")
    # forward: the field's size and jump after each layer; backward: the region in each layer
    size, jump, sizes = (1, 1), (1, 1), []
    for *_, g in geo:
        if g is not None:
            k, s, _, d = g
            size = tuple(r + dl * (kk - 1) * j for r, dl, kk, j in zip(size, d, k, jump))
            jump = tuple(j * st for j, st in zip(jump, s))
        sizes.append((size, jump))
    rows, cols = (row, row + 1), (col, col + 1)
    fields = []
    for (lname, m, in_hw, out_hw, g), (sz, jp) in zip(reversed(geo), reversed(sizes)):
        none = ((1, 1), (1, 1), (0, 0), (1, 1))
        k, s, p, d = g or none
        fields.append(LayerField(lname, type(m).__name__, out_hw, rows, cols, k, s, p, d, sz, jp))
        rows, cols = (_back(rows, k[0], s[0], p[0], d[0], in_hw[0]), _back(cols, k[1], s[1], p[1], d[1], in_hw[1]))
    input_hw = geo[0][2]
    return ReceptiveField((row, col), input_hw, rows, cols, sizes[-1][0], tuple(reversed(fields)))


def _back(r: Range, k: int, s: int, p: int, d: int, n: int) -> Range:
    """The smallest [lo, hi) holding every real input cell that outputs [r0, r1) read.
    Counted tap by tap: with dilation the edge taps may fall in the padding while an
    inner one is real, so clipping the window's span would overstate it."""
    ends = [o * s - p + t * d for o in (r[0], r[1] - 1) for t in range(k)]
    real = [i for i in ends if 0 <= i < n]
    if not real:  # the edge windows see only padding: look at every window in between
        real = [o * s - p + t * d for o in range(*r) for t in range(k) if 0 <= o * s - p + t * d < n]
    return min(real), max(real) + 1


# ------------------------------------------------------------------ one neuron

@dataclass(frozen=True)
class NeuronStage:
    """One step after the weighted sum: a layer applied to the running value."""

    layer: str
    formula: str
    value: float


@dataclass(frozen=True)
class NeuronTrace:
    """Output cell (channel, row, col) of a Conv2d in a live model, worked out.

    `partials[i]` is input channel `channels[i]`'s sum of products over the window
    (`windows[i]` the padded-input values it read, `kernel[i]` the weights); then + bias,
    then each following batch norm / activation in `stages`. `computed` is the trace's
    own result, `value` the engine's number in the feature map (they agree to rounding).
    """

    layer: str
    out_pos: tuple[int, int, int]
    channels: tuple[int, ...]
    windows: np.ndarray
    kernel: np.ndarray
    partials: tuple[float, ...]
    bias: float
    pre_activation: float
    stages: tuple[NeuronStage, ...]
    computed: float
    value: float
    feature_layer: str

    def lines(self) -> list[str]:
        """The whole computation, one line per step, with the real numbers."""
        out, total = [], 0.0
        for c, part in zip(self.channels, self.partials):
            total += part
            out.append(f"input channel {c}: sum of {self.kernel.shape[1] * self.kernel.shape[2]} products = "
                       f"{num(part)}  (running {num(total)})")
        out.append(f"+ bias {paren(self.bias)} = {num(self.pre_activation)}")
        out += [f"{s.layer}: {s.formula} = {num(s.value)}" for s in self.stages]
        return out


_STAGES = (BatchNorm2d, ReLU, LeakyReLU, Sigmoid, Tanh, Dropout, Dropout2d, Identity)


def _stage(name: str, m: Module, z: float, c: int) -> NeuronStage:
    if isinstance(m, BatchNorm2d):
        mean, var = float(m.running_mean.numpy()[c]), float(m.running_var.numpy()[c])
        g = float(m.weight.numpy()[c]) if m.weight is not None else 1.0
        b = float(m.bias.numpy()[c]) if m.bias is not None else 0.0
        v = (z - mean) / math.sqrt(var + m.eps) * g + b
        return NeuronStage(name, f"({num(z)} - {num(mean)}) / sqrt({num(var)} + {m.eps:g}) × {paren(g)} + {paren(b)}",
                           v)
    if isinstance(m, (Dropout, Dropout2d)):
        return NeuronStage(name, f"dropout is off when evaluating: {num(z)}", z)
    if isinstance(m, Identity):
        return NeuronStage(name, f"identity: {num(z)}", z)
    if isinstance(m, LeakyReLU):
        return NeuronStage(name, f"leaky_relu({num(z)})", z if z > 0 else z * m.negative_slope)
    if isinstance(m, ReLU):
        return NeuronStage(name, f"max(0, {num(z)})", max(0.0, z))
    if isinstance(m, Sigmoid):
        return NeuronStage(name, f"1 / (1 + exp(-{paren(z)}))", 1 / (1 + math.exp(-z)))
    return NeuronStage(name, f"tanh({num(z)})", math.tanh(z))


def neuron_trace(model: Module, image: Any, layer: Module | str, channel: int, row: int, col: int) -> NeuronTrace:
    """Work out one cell of a Conv2d's feature map from the image: per input channel the
    window times the kernel, + bias, then the batch norm and activation that follow the
    conv directly (in eval mode, as a feature-map view shows a trained model; a dropout
    among them passes the value on).

    `layer` may also be one of those batch norms or activations: the trace then starts at
    the conv that feeds it and stops at it, so `value` is that layer's number."""
    name, chosen = _find(model, layer)
    if not isinstance(chosen, (Conv2d,) + _STAGES):
        raise ValueError(f"layer {name} is a {type(chosen).__name__}, not a Conv2d (or a batch norm or "
                         "activation right after one)")
    x = as_array(image)
    x = x[None] if x.ndim == 3 else x
    was_training = model.training
    model.eval()
    try:
        ran = _run_recording(model, tensor(x[:1]))
    finally:
        model.train(was_training)
    at = end = next(i for i, entry in enumerate(ran) if entry[1] is chosen)
    while not isinstance(ran[at][1], Conv2d):  # back through the stages to the conv that feeds them
        if at == 0 or not isinstance(ran[at][1], _STAGES) or ran[at][2] is not ran[at - 1][3]:
            raise ValueError(f"layer {name} ({type(chosen).__name__}) does not follow a Conv2d directly")
        at -= 1
    conv = ran[at][1]
    inp = as_array(ran[at][2])[0].astype(np.float64)
    w = conv.weight.numpy().astype(np.float64)[channel]
    per_group = conv.out_channels // conv.groups
    first = channel // per_group * w.shape[0]
    channels = tuple(range(first, first + w.shape[0]))
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    ph, pw = _geometry(conv, (0, 0), (0, 0))[2]
    xp = np.pad(inp, ((0, 0), (ph, ph + kh * dh), (pw, pw + kw * dw)))
    windows = xp[list(channels)][:, row * sh:row * sh + dh * (kh - 1) + 1:dh, col * sw:col * sw + dw * (kw - 1) + 1:dw]
    partials = tuple(float((windows[i] * w[i]).sum()) for i in range(len(channels)))
    bias = float(conv.bias.numpy()[channel]) if conv.bias is not None else 0.0
    z = sum(partials) + bias
    stages, value_from, prev = [], ran[at], ran[at][3]
    last = end if end > at else len(ran) - 1  # a conv chosen: every stage that follows it
    for entry in ran[at + 1:last + 1]:
        if not isinstance(entry[1], _STAGES) or entry[2] is not prev:
            break
        stages.append(_stage(entry[0], entry[1], stages[-1].value if stages else z, channel))
        value_from, prev = entry, entry[3]
    value = float(as_array(value_from[3])[0, channel, row, col])
    return NeuronTrace(ran[at][0], (channel, row, col), channels, windows, w, partials, bias, z, tuple(stages),
                       stages[-1].value if stages else z, value, value_from[0])
