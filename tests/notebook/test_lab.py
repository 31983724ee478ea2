"""The notebook lab draws the engine's numbers: its output panel equals F.conv2d / the pooling
functions / F.conv_transpose2d and autograd's gradients; settings that cannot work are
explained in the widget; a live layer shows the model's own input and weights."""
from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

import cnnlab  # noqa: E402
import cnnlab.nn.functional as F  # noqa: E402
from cnnlab import nn  # noqa: E402
from cnnlab.notebook import lab  # noqa: E402

rng = np.random.default_rng(7)
X = rng.integers(-3, 4, (5, 6)).astype(np.float32)
K = rng.integers(-2, 3, (3, 3)).astype(np.float32)


def t(a):
    return cnnlab.tensor(np.asarray(a, np.float32))


def panel_numbers(widget, key="output") -> list[str]:
    """The numbers the SVG draws in one panel, in raster order."""
    svg = widget.picture.value
    start = svg.index(f'<g class="panel" data-key="{key}">')
    body = svg[start:svg.index('<rect class="mark', start) if '<rect class="mark' in svg[start:] else None]
    body = body[:body.find('<g class="panel"', 10)] if '<g class="panel"' in body[10:] else body
    return re.findall(r'dominant-baseline="central" pointer-events="none">([^<]*)</text>', body)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), ((1, 2), (2, 0), 1), (1, 1, 2)])
def test_the_output_panel_is_f_conv2d(stride, padding, dilation):
    w = lab(X, K, bias=0.5, stride=stride, padding=padding, dilation=dilation)
    want = F.conv2d(t(X[None, None]), t(K[None, None]), t([0.5]), stride, padding, dilation).numpy()[0, 0]
    w.go(w.slider.max)
    assert np.array_equal(w.state.output, want)
    assert panel_numbers(w) == [f"{v:g}" for v in want.ravel()]
    assert w.status.value.startswith(f"step {want.size} of {want.size}")


def test_stepping_fills_the_output_one_cell_at_a_time_with_the_arithmetic():
    w = lab(X, K)
    want = F.conv2d(t(X[None, None]), t(K[None, None])).numpy()[0, 0].ravel()
    assert w.step == 1 and panel_numbers(w) == [f"{want[0]:g}"]
    w.next().next()
    assert panel_numbers(w) == [f"{v:g}" for v in want[:3]]
    assert w.caption.value.count("×") >= 9 and f"= {want[2]:g}" in w.caption.value
    w.previous()
    assert len(panel_numbers(w)) == 2


@pytest.mark.parametrize("op,fn", [("max", F.max_pool2d), ("avg", F.avg_pool2d), ("sum", F.sum_pool2d)])
def test_pooling_panels_match_the_engine(op, fn):
    w = lab(X, 2, op=op, padding=1)
    want = fn(t(X[None, None]), 2, None, 1).numpy()[0, 0]
    w.go(w.slider.max)
    assert np.allclose(w.state.output, want)
    assert panel_numbers(w) == [f"{v:.4g}" for v in want.ravel()]


def test_backward_views_equal_autograd():
    g = rng.integers(-2, 3, (3, 4)).astype(np.float32)
    x = cnnlab.tensor(X[None, None], requires_grad=True)
    k = cnnlab.tensor(K[None, None], requires_grad=True)
    (F.conv2d(x, k) * t(g[None, None])).sum().backward()
    dx = lab(X, K, backward=True, wrt="input", grad_output=g)
    dw = lab(X, K, backward=True, wrt="weight", grad_output=g)
    assert np.array_equal(dx.state.output[0], x.grad.numpy()[0, 0])
    assert np.array_equal(dw.state.output[0, 0], k.grad.numpy()[0, 0])
    assert dx.slider.max == X.size and dw.slider.max == K.size
    xp = cnnlab.tensor(X[None, None], requires_grad=True)
    F.max_pool2d(xp, 2).sum().backward()
    assert np.array_equal(lab(X, 2, op="max", backward=True, grad_output=np.ones((2, 3))).state.output,
                          xp.grad.numpy()[0, 0])


def test_transposed_convolution_is_f_conv_transpose2d():
    x = X[:3, :3]
    w = lab(x, K, op="conv_transpose", stride=2, padding=1)
    want = F.conv_transpose2d(t(x[None, None]), t(K[None, None]), None, 2, 1).numpy()[0, 0]
    assert np.array_equal(w.state.output, want) and w.slider.max == x.size


@pytest.mark.parametrize("kwargs,words", [
    (dict(weight=np.ones((7, 7))), "the kernel spans 7 cells"),
    (dict(stride=0), "must be at least 1"),
    (dict(padding=-1), "cannot be negative"),
    (dict(weight=2, op="max", padding=2), "more than half the pooling window"),
    (dict(op="median"), "op must be one of"),
    (dict(weight=np.ones((2, 3, 3))), "channel"),
    (dict(backward=True, op="conv_transpose"), "forward only"),
    (dict(unknown_option=1), "unexpected keyword"),
])
def test_settings_that_cannot_work_are_explained_not_raised(kwargs, words):
    args = dict(input=X, weight=K)
    args.update(kwargs)
    w = lab(args.pop("input"), args.pop("weight"), **args)
    assert not w.state.ok and w.slider.max == 0 and w.picture.value == ""
    assert words in w.problems.value, w.problems.value


def test_changing_a_setting_in_the_widget_rebuilds_and_recovers():
    w = lab(X, K)
    w.go(3)
    w.stride_box.value = "0"
    assert "stride" in w.problems.value and w.slider.max == 0
    w.stride_box.value = "2"
    want = F.conv2d(t(X[None, None]), t(K[None, None]), None, 2).numpy()[0, 0]
    assert w.problems.value == "" and w.slider.max == want.size and w.step == 3
    w.op_box.value = "avg"
    w.stride_box.value = ""        # pooling's default stride: the window size
    assert np.allclose(w.state.output, F.avg_pool2d(t(X[None, None]), 3).numpy()[0, 0])


def test_hover_links_outline_the_receptive_field_in_css():
    w = lab(X, K, stride=2, padding=1)
    svg = w.picture.value
    root = re.search(r'<svg id="([^"]+)"', svg).group(1)
    assert f"#{root}:has(.c-output-0-1:hover) .l-output-0-1 rect" in w.hover_style.value
    lit = re.findall(r'<g class="cell c-(input0-\d+-\d+) [^"]*\bl-output-0-1\b', svg)
    field = w.state.trace.receptive_field(0, 1)
    assert sorted(lit) == sorted(f"input0-{r}-{c}" for _, r, c in field)


def test_from_layer_steps_the_models_own_numbers():
    cnnlab.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2))
    image = rng.random((1, 8, 8)).astype(np.float32)
    w = lab.from_layer(model, "2", image, filter=5, channel=None)
    hidden = F.relu(model[0](t(image[None])))
    want = model[2](hidden).detach().numpy()[0, 5]
    # more than three input channels: one channel is shown, and the title says the layer adds them all
    assert w.state.trace.input.shape == (1, 8, 8) and "adds up all 4 channels" in w.title.value
    full = lab(hidden.numpy()[0], model[2].weight.detach().numpy()[5], model[2].bias.detach().numpy()[5], stride=2)
    assert np.allclose(full.state.output, want, atol=1e-6)
    assert np.array_equal(w.state.trace.input[0], hidden.numpy()[0, 0])
    with pytest.raises(ValueError, match="has 6 filters"):
        lab.from_layer(model, "2", image, filter=6)


def test_hover_on_a_transposed_convolution_shows_where_an_input_cell_lands():
    w = lab([[1, 2], [3, 4]], np.ones((2, 2), np.float32), op="conv_transpose", stride=2)
    svg = w.picture.value
    lit = re.findall(r'<g class="cell c-(output-\d+-\d+) [^"]*\bl-input0-0-1\b', svg)
    assert sorted(lit) == ["output-0-2", "output-0-3", "output-1-2", "output-1-3"]
