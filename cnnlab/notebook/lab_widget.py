"""The convolution lab as a notebook widget (ipywidgets): the same scene as the desktop lab,
a step slider with play/pause, the arithmetic of each step with the real numbers, the
output-size derivation, the receptive field under the pointer, and settings you can change
in place. Settings that cannot work are explained in the widget, never raised.

>>> lab([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])                 # d2l's worked example
>>> lab(image, 2, op="max", backward=True)                                   # max-pool routing
>>> lab.from_layer(model, "conv2", image, filter=5)                          # a live model's layer
"""
from __future__ import annotations

import html
import itertools
from typing import Any

import ipywidgets as W
import numpy as np

from ..colormap import NEGATIVE, POSITIVE, ZERO
from ..explain._common import as_image
from .lab_state import OPS, WRT, LabState

_ids = itertools.count()
_CSS = ("<style>.cnnlab-lab .caption{font-family:monospace;font-size:13px;white-space:pre-wrap}"
        ".cnnlab-lab .problems{color:#b03a2e;font-weight:bold;white-space:pre-wrap}"
        ".cnnlab-lab .derivation{font-family:monospace;color:#34495e;white-space:pre-wrap}</style>")

# the one diverging map (cnnlab.colormap) as a small bar: what the cell colours mean
_LEGEND = ("<span style='margin-left:24px;color:#555;font-size:12px'>− blue "
           "<span style='display:inline-block;width:120px;height:10px;vertical-align:middle;border:1px solid #777;"
           "background:linear-gradient(to right,rgb{0},rgb{1},rgb{2})'></span> red + "
           "(each grid: its largest |value|; hover a cell for its exact value)</span>").format(NEGATIVE, ZERO, POSITIVE)


def _pair_text(v: Any) -> str:
    return "" if v is None else (str(v) if isinstance(v, (int, np.integer)) else ",".join(str(int(a)) for a in v))


def _parse_pair(text: str) -> Any:
    """'2' -> 2, '2,1' -> (2, 1); anything else is passed on and explained by the check."""
    parts = [p.strip() for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        return text
    return nums[0] if len(nums) == 1 else tuple(nums)


class Lab(W.VBox):
    """The widget. `state` is the LabState it draws (trace, problems, output); `step` is the
    slider position (0 = nothing computed yet). `next()`, `previous()` and `go(k)` step it."""

    def __init__(self, state: LabState, title: str = "", interval_ms: int = 700) -> None:
        self.state = state
        self._keep = 0
        self._root = f"cnnlab-lab-{next(_ids)}"
        self.title = W.HTML(f"<b>{html.escape(title)}</b>" if title else "")
        self.status = W.HTML()
        self.picture = W.HTML()
        self.hover_style = W.HTML()   # the receptive-field hover rules: sent once per trace, not every step
        self.caption = W.HTML()
        self.derivation = W.HTML()
        self.problems = W.HTML()
        self.play = W.Play(value=0, min=0, max=0, step=1, interval=interval_ms, description="play")
        self.slider = W.IntSlider(value=0, min=0, max=0, description="step", continuous_update=True,
                                  layout=W.Layout(width="420px"))
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.back_button = W.Button(description="◀", layout=W.Layout(width="40px"), tooltip="previous step")
        self.next_button = W.Button(description="▶", layout=W.Layout(width="40px"), tooltip="next step")
        self.back_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        self.slider.observe(lambda ch: self._show(), names="value")
        self.controls = self._settings_controls()
        player = W.HBox([self.play, self.back_button, self.slider, self.next_button])
        super().__init__([W.HTML(_CSS), self.hover_style, self.title, self.controls, self.status, self.picture,
                          self.caption, self.derivation, self.problems, player])
        self.add_class("cnnlab-lab")
        self._rebuilt()

    # ------------------------------------------------------------ settings
    def _settings_controls(self) -> W.Widget:
        s = self.state
        text = lambda v, d: W.Text(_pair_text(v), description=d, layout=W.Layout(width="150px"),  # noqa: E731
                                   continuous_update=False)
        self.op_box = W.Dropdown(options=OPS, value=s.op if s.op in OPS else None, description="op",
                                 layout=W.Layout(width="200px"))
        self.stride_box = text(s.stride, "stride")
        self.stride_box.placeholder = "default"
        self.padding_box = text(s.padding, "padding")
        self.dilation_box = text(s.dilation, "dilation")
        self.backward_box = W.Checkbox(value=s.backward, description="backward", indent=False,
                                       layout=W.Layout(width="100px"))
        self.wrt_box = W.Dropdown(options=WRT, value=s.wrt if s.wrt in WRT else None, description="wrt",
                                  layout=W.Layout(width="160px"))
        for box in (self.op_box, self.stride_box, self.padding_box, self.dilation_box, self.backward_box,
                    self.wrt_box):
            box.observe(lambda ch: self._settings_changed(), names="value")
        return W.HBox([self.op_box, self.stride_box, self.padding_box, self.dilation_box, self.backward_box,
                       self.wrt_box], layout=W.Layout(flex_flow="row wrap"))

    def _settings_changed(self) -> None:
        s = self.state
        # an unknown op or wrt given to lab() stays (and stays explained) until one is picked
        s.op, s.wrt = self.op_box.value or s.op, self.wrt_box.value or s.wrt
        s.backward = self.backward_box.value
        s.stride = _parse_pair(self.stride_box.value) if self.stride_box.value.strip() else None
        s.padding, s.dilation = _parse_pair(self.padding_box.value), _parse_pair(self.dilation_box.value)
        s.rebuild()
        self._rebuilt()

    def _rebuilt(self) -> None:
        s = self.state
        self.wrt_box.layout.display = "" if (s.op == "conv" and s.backward) else "none"
        n = s.steps
        self.derivation.value = (f"<div class='derivation'>output size: {html.escape(s.derivation)}</div>"
                                 if s.derivation else "")
        if not s.ok:
            self.problems.value = ("<div class='problems'>These settings have no output:\n"
                                   + html.escape("\n".join(f"• {p}" for p in s.problems)) + "</div>")
            self.picture.value, self.caption.value, self.hover_style.value = "", "", ""
            self.status.value = "<i>invalid settings</i>"
            self._keep = max(self._keep, self.step)   # back at this step once the settings work again
            self.slider.max = self.play.max = 0
            return
        self.problems.value = ""
        self.hover_style.value = s.hover_style(self._root)
        self.play.max = self.slider.max = n
        self.slider.value, self._keep = min(max(self._keep, self.step), n), 0
        self._show()

    # ------------------------------------------------------------ stepping
    @property
    def step(self) -> int:
        return int(self.slider.value)

    def go(self, k: int) -> "Lab":
        self.slider.value = max(0, min(int(k), self.slider.max))
        return self

    def next(self) -> "Lab":
        return self.go(self.step + 1)

    def previous(self) -> "Lab":
        return self.go(self.step - 1)

    def _show(self) -> None:
        s = self.state
        if not s.ok:
            return
        sc = s.scene(self.step)
        self.status.value = html.escape(sc.status) + _LEGEND
        self.picture.value = s.svg(self.step, self._root, css=False)
        what = sc.caption or "Press play or ▶ to compute the first step."
        plain = f"<div style='color:#555'>{html.escape(sc.plain)}</div>" if sc.plain and sc.caption else ""
        self.caption.value = f"<div class='caption'>{html.escape(what)}</div>{plain}"


def _lab(input: Any, weight: Any, bias: Any = None, stride: Any = None, padding: Any = 0, dilation: Any = 1,
         op: str = "conv", backward: bool = False, wrt: str = "input", *, step: int | None = None,
         title: str = "", **options: Any) -> Lab:
    """Step through a convolution or pooling of `input` (H, W) or (C, H, W), inline.

    Args:
        input: numbers, an image array or tensor (H, W) / (C, H, W).
        weight: for op="conv", the kernel (kh, kw), one filter (C, kh, kw) or a bank
            (K, C, kh, kw); for pooling, the window size (an int, a pair or an array of that shape);
            for "conv_transpose", (C, kh, kw) or (C, O, kh, kw) as `nn.ConvTranspose2d.weight`.
        bias, stride, padding, dilation: as `F.conv2d` (stride None: 1 for convolutions, the
            window size for pooling, PyTorch's defaults).
        op: "conv", "max", "avg", "sum" or "conv_transpose".
        backward: step the backward pass; `wrt` picks dL/dX ("input"), dL/dW ("weight") or dL/db.
        step: the step to open at (default: the first, or all done for one-step traces).
        options: grad_output, output_padding, count_include_pad, channel, out_channel (see LabState).
    """
    try:
        state = LabState(input, weight, bias, stride, padding, dilation, op, backward, wrt, **options)
    except TypeError as e:   # an unknown option: explained in the widget like any other problem
        state = LabState(input, weight, bias, stride, padding, dilation, op, backward, wrt)
        state.trace, state.problems = None, (str(e),)
    widget = Lab(state, title)
    widget.go(1 if step is None else step)
    return widget


def from_layer(model: Any, layer: str, image: Any, filter: int = 0, channel: int | None = None,
               step: int | None = None) -> Lab:
    """The lab on filter `filter` of conv layer `layer` of a live model, fed with the input that
    layer really gets for `image` (C, H, W): every number is the model's own. With more than
    three input channels one channel is shown (`channel`, 0 by default) and the caption says
    that the layer adds up all channels and the bias."""
    from .layers import layer_request

    req = layer_request(model, layer, filter, as_image(image), channel)
    return _lab(req["x"], req["weight"], req["bias"] or None, req["stride"], req["padding"], req["dilation"],
                step=step, title=req["title"])


class _LabFunction:
    """`lab(...)` builds a lab; `lab.from_layer(...)` opens one on a live model's layer."""

    __call__ = staticmethod(_lab)
    from_layer = staticmethod(from_layer)
    __doc__ = _lab.__doc__


lab = _LabFunction()
