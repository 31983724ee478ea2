"""The bridge from a trained model to the Convolution lab: one filter of a real conv layer
with the real input that reaches it for the probe image, as ConvLab.load_layer's keyword
arguments. No Qt here: the controller runs it where no training step can run (on the
training thread between steps, through `Run.submit`, or at once when no run trains).

>>> request = lab_request(model, "conv2", 5, image, channel=7)
>>> lab.load_layer(**request)
"""
from __future__ import annotations

from typing import Any

import numpy as np

import cnnlab
from cnnlab import nn


def conv_layers(model: nn.Module | None) -> list[tuple[str, tuple[int, ...]]]:
    """(name, weight shape) of each Conv2d of `model`, in order."""
    if model is None:
        return []
    return [(name, tuple(m.weight.shape)) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _layer_input(model: nn.Module, conv: nn.Module, image: np.ndarray, device: Any) -> np.ndarray:
    seen: dict[str, np.ndarray] = {}
    handle = conv.register_forward_hook(lambda m, i, o: seen.__setitem__("x", i[0].detach().cpu().numpy().copy()))
    was_training = model.training
    model.eval()  # no dropout, and BatchNorm's running statistics stay as they are
    try:
        with cnnlab.no_grad():
            x = cnnlab.from_numpy(image[None].copy())
            model(x if device is None else x.to(device))
    finally:
        model.train(was_training)
        handle.remove()
    return seen["x"][0]


def lab_request(model: nn.Module, layer: str, index: int, image: np.ndarray, channel: int | None = None,
                device: Any = None, when: str = "") -> dict[str, Any]:
    """Filter `index` of conv layer `layer` on the input it gets for `image` (C, H, W): all input
    channels when `channel` is None and there are at most three, else that channel alone (0 by default)."""
    conv = dict(model.named_modules())[layer]
    x = _layer_input(model, conv, np.asarray(image, np.float32), device)
    w = conv.weight.detach().cpu().numpy()[index].copy()
    b = float(conv.bias.detach().cpu().numpy()[index]) if conv.bias is not None else 0.0
    if channel is None and x.shape[0] > 3:
        channel = 0
    if channel is None:
        what = f"{layer} filter {index} on the probe image ({when})"
    else:
        x, w = x[channel:channel + 1], w[channel:channel + 1]
        what = (f"{layer} filter {index}, input channel {channel} of {conv.in_channels} on the probe image "
                f"({when}); the layer adds up all {conv.in_channels} channels' results and the bias {b:.4g}")
        b = 0.0
    padding = conv.padding
    if isinstance(padding, str):  # 'valid' or 'same' (odd kernels: the same on both sides)
        padding = (0, 0) if padding == "valid" else tuple(d * (k - 1) // 2 for d, k in
                                                          zip(conv.dilation, conv.kernel_size))
    origin = f"{layer} filter {index}" + ("" if channel is None else f" ch {channel}")
    return dict(x=x, weight=w, bias=b, stride=tuple(conv.stride), padding=tuple(padding),
                dilation=tuple(conv.dilation), title=what, origin=origin)
