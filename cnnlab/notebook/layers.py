"""One filter of a live model's conv layer with the input it really gets, for the lab. The
layer is found and run with `cnnlab.explain.network`'s recording pass (the one
`neuron_trace` uses), so the numbers are the model's own, in eval mode.

>>> req = layer_request(model, "conv2", 5, image)              # doctest: +SKIP
>>> sorted(req)                                                # doctest: +SKIP
['bias', 'dilation', 'padding', 'stride', 'title', 'weight', 'x']
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..creation import tensor
from ..explain._common import as_array
from ..explain.network import _find, _geometry, _run_recording
from ..nn import Conv2d, Module


def layer_request(model: Module, layer: str, index: int, image: np.ndarray, channel: int | None = None
                  ) -> dict[str, Any]:
    """Filter `index` of Conv2d `layer` on its input for `image` (C, H, W): all input channels
    when there are at most three and `channel` is None, else one channel (0 by default)."""
    name, conv = _find(model, layer)
    if not isinstance(conv, Conv2d):
        raise ValueError(f"layer {name} is a {type(conv).__name__}, not a Conv2d")
    if not 0 <= index < conv.out_channels:
        raise ValueError(f"{name} has {conv.out_channels} filters (0..{conv.out_channels - 1}); got filter={index}")
    was_training = model.training
    model.eval()   # no dropout, batch norm on its running statistics: the picture a trained model gives
    try:
        ran = _run_recording(model, tensor(np.asarray(image, np.float32)[None]))
    finally:
        model.train(was_training)
    x = as_array(next(entry[2] for entry in ran if entry[1] is conv))[0]
    w = conv.weight.numpy()[index].copy()
    b = float(conv.bias.numpy()[index]) if conv.bias is not None else 0.0
    _, stride, padding, dilation = _geometry(conv, x.shape[1:], x.shape[1:])
    title = f"{name} filter {index} on this image"
    if channel is None and x.shape[0] > 3:
        channel = 0
    if channel is not None:
        x, w = x[channel:channel + 1], w[channel:channel + 1]
        title = (f"{name} filter {index}, input channel {channel} of {conv.in_channels}: the layer adds up all "
                 f"{conv.in_channels} channels' results and the bias {b:.4g}")
        b = 0.0
    return dict(x=x, weight=w, bias=b, stride=tuple(stride), padding=tuple(padding), dilation=tuple(dilation),
                title=title)
