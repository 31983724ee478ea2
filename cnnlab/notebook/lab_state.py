"""What the notebook lab shows, without any widget: the settings, their size check, the
trace they make and each step's picture. `cnnlab.notebook.lab` wires widgets to this; the
tests check its numbers against the engine.

>>> s = LabState([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
>>> s.steps, s.output.tolist()
(4, [[19.0, 25.0], [37.0, 43.0]])
>>> LabState([[1, 2], [3, 4]], [[1, 1, 1]], stride=0).problems[0][:36]
'the stride height must be at least 1'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import explain
from ..explain import presets
from ..explain._common import as_array, as_image
from .svg import HoverMap, hover_css, hover_map, scene_svg

OPS = ("conv", "max", "avg", "sum", "conv_transpose")
WRT = ("input", "weight", "bias")


def _size_of(weight: Any) -> tuple[int, int]:
    """A pooling window's (kh, kw): from an int, a pair, or the last two axes of an array."""
    if isinstance(weight, (int, np.integer)):
        return int(weight), int(weight)
    if isinstance(weight, tuple) and len(weight) == 2 and all(isinstance(v, (int, np.integer)) for v in weight):
        return int(weight[0]), int(weight[1])
    shape = as_array(weight).shape
    if len(shape) < 2:
        raise ValueError(f"a pooling window is an int, a (kh, kw) pair or a 2-D array, got shape {shape}")
    return shape[-2], shape[-1]


@dataclass
class LabState:
    """One lab set-up. Attributes after construction: `trace` (None when the settings have
    no output), `problems` (why, in words), `check` (the size derivations), `steps`."""

    input: Any
    weight: Any
    bias: Any = None
    stride: Any = None          # None: 1 for convolutions, the window size for pooling (PyTorch's defaults)
    padding: Any = 0
    dilation: Any = 1
    op: str = "conv"
    backward: bool = False
    wrt: str = "input"
    grad_output: Any = None     # dL/dY for the backward views (None: small integers -1..2, readable)
    output_padding: Any = 0     # transposed convolution only
    count_include_pad: bool = True
    channel: int = 0            # pooling: which channel is traced
    out_channel: int = 0        # convolution: which filter is traced
    trace: Any = field(init=False, default=None)
    problems: tuple[str, ...] = field(init=False, default=())
    derivation: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.rebuild()

    # ------------------------------------------------------------ building
    def rebuild(self) -> None:
        """Make the trace for the current settings; on settings that cannot work, keep the
        reasons in `problems` instead of raising."""
        self.trace, self._links = None, None
        try:
            problems, derivation = self._check()
        except (ValueError, TypeError) as e:
            problems, derivation = (str(e),), ""
        self.derivation = derivation
        if not problems:
            try:
                self.trace = self._make_trace()
            except (ValueError, TypeError, IndexError) as e:   # the engine's own verdict, shown like ours
                problems = (str(e),)
        self.problems = tuple(problems)

    def _pool_stride(self) -> Any:
        return self.stride if self.stride is not None else _size_of(self.weight)

    def _check(self) -> tuple[tuple[str, ...], str]:
        if self.op not in OPS:
            return (f"op must be one of {', '.join(OPS)}; got {self.op!r}",), ""
        if self.wrt not in WRT:
            return (f"wrt must be one of {', '.join(WRT)}; got {self.wrt!r}",), ""
        x = as_image(self.input)
        stride = 1 if self.stride is None else self.stride
        if self.op == "conv":
            w = as_array(self.weight)
            w = w.reshape((1,) * (4 - w.ndim) + w.shape) if w.ndim < 4 else w
            check = explain.check_conv2d(x.shape, w.shape[2:], stride, self.padding, self.dilation,
                                         kernel_channels=w.shape[1])
        elif self.op == "conv_transpose":
            w = as_array(self.weight)
            w = w[None, None] if w.ndim == 2 else (w[:, None] if w.ndim == 3 else w)
            check = explain.check_conv_transpose2d(x.shape, w.shape[2:], stride, self.padding, self.output_padding,
                                                   self.dilation, kernel_channels=w.shape[0])
            if self.backward:
                return ("the lab steps a transposed convolution forward only: its backward with respect to the "
                        "input is an ordinary convolution (try op='conv' with the same kernel and stride)",), ""
        else:
            check = explain.check_pool2d(x.shape, _size_of(self.weight), self._pool_stride(), self.padding,
                                         self.dilation, mode=self.op)
        return check.problems, check.summary()

    def _make_trace(self) -> Any:
        x, stride = as_image(self.input), (1 if self.stride is None else self.stride)
        if self.op == "conv":
            if self.backward:
                fwd = explain.conv2d_trace(x, self.weight, self.bias, stride, self.padding, self.dilation)
                w = as_array(self.weight)
                g = self._upstream((w.shape[0] if w.ndim == 4 else 1, *fwd.output.shape))
                return explain.conv2d_backward_trace(x, self.weight, g, self.bias, stride, self.padding, self.dilation)
            return explain.conv2d_trace(x, self.weight, self.bias, stride, self.padding, self.dilation,
                                        out_channel=self.out_channel)
        if self.op == "conv_transpose":
            return explain.conv_transpose2d_trace(x, self.weight, self.bias, stride, self.padding,
                                                  self.output_padding, self.dilation, self.out_channel)
        args = (x, _size_of(self.weight), self._pool_stride(), self.padding, self.op,
                self.dilation if self.op == "max" else 1)
        kw = dict(count_include_pad=self.count_include_pad, channel=self.channel)
        if self.backward:
            fwd = explain.pool2d_trace(*args, **kw)
            return explain.pool2d_backward_trace(x, self._upstream(fwd.output.shape), *args[1:], **kw)
        return explain.pool2d_trace(*args, **kw)

    def _upstream(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.grad_output is not None:
            return as_array(self.grad_output)
        return presets.upstream_gradient(shape, "pattern")

    # ------------------------------------------------------------ reading
    @property
    def ok(self) -> bool:
        return self.trace is not None

    @property
    def view_wrt(self) -> str:
        return self.wrt if (self.op == "conv" and self.backward) else "input"

    @property
    def steps(self) -> int:
        return 0 if self.trace is None else explain.step_count(self.trace, self.view_wrt)

    @property
    def output(self) -> np.ndarray | None:
        """The finished result the lab fills in: the output, or the gradient for a backward view."""
        t = self.trace
        if t is None:
            return None
        if isinstance(t, explain.ConvBackwardTrace):
            return {"input": t.grad_input, "weight": t.grad_weight, "bias": t.grad_bias}[self.wrt]
        if isinstance(t, explain.PoolBackwardTrace):
            return t.grad_input
        return t.output

    def scene(self, done: int) -> explain.Scene:
        return explain.scene(self.trace, done, self.view_wrt)

    def links(self) -> HoverMap:
        """What each cell connects to (computed on first use, once per trace)."""
        if self._links is None:
            self._links = hover_map(self.trace, self.view_wrt) if self.trace is not None else {}
        return self._links

    def svg(self, done: int, root: str = "cnnlab-lab", css: bool = True) -> str:
        t = self.trace
        channel = getattr(t, "channel", getattr(getattr(t, "forward", None), "channel", 0))
        return scene_svg(self.scene(done), self.links(), root=root, channel=channel, css=css)

    def hover_style(self, root: str = "cnnlab-lab") -> str:
        """The hover rules of `svg(..., css=False)` pictures, as one <style> (the same for every step)."""
        return f"<style>{hover_css(root, self.links())}</style>" if self.trace is not None else ""
