"""The whole-network traces of explain (issue 16): receptive fields, one neuron, the
softmax/cross-entropy, a gradient check and the optimizer's update, each checked against
the engine (and PyTorch where installed)."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
import cnnlab.optim as optim
from cnnlab import explain


def smooth_net():
    # activations with a derivative that is never 0 and pools that spread their gradient:
    # then the gradient's non-zero region is exactly the receptive field
    cnnlab.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Conv2d(3, 4, 3, stride=2, dilation=2, padding=1), nn.LeakyReLU(0.1),
                         nn.Conv2d(4, 2, (2, 3), padding=(0, 1)))


def gradient_region(model, layer_index, channel, cell, shape):
    x = cnnlab.tensor(np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float64),
                      requires_grad=True)
    model = model.double()
    y = model[:layer_index + 1](x)
    y[0, channel, cell[0], cell[1]].backward()
    nz = np.argwhere(x.grad.numpy()[0].any(axis=0))
    return (nz[:, 0].min(), nz[:, 0].max() + 1), (nz[:, 1].min(), nz[:, 1].max() + 1)


@pytest.mark.parametrize("layer,cell", [("0", (0, 0)), ("0", (5, 7)), ("3", (1, 2)), ("3", (0, 0)), ("5", (2, 1)),
                                        ("4", (3, 3))])
def test_receptive_field_is_where_the_gradient_reaches(layer, cell):
    shape = (1, 20, 18)
    net = smooth_net()
    rf = explain.receptive_field(net, layer, cell, shape)
    rows, cols = gradient_region(net, int(layer), 0, cell, shape)
    assert (rf.input_rows, rf.input_cols) == (tuple(map(int, rows)), tuple(map(int, cols)))
    assert [f.name for f in rf.layers] == [str(i) for i in range(int(layer) + 1)]
    assert rf.layers[-1].rows == (cell[0], cell[0] + 1)


def test_receptive_field_sizes_and_max_pool_subset():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3), nn.MaxPool2d(2),
                        nn.Conv2d(2, 2, 3))
    rf = explain.receptive_field(net, net[5], (0, 0), (1, 32, 32))
    # textbook recurrence: 3 -> 4 (j 2) -> 8 -> 10 (j 4) -> 18
    assert [f.size[0] for f in rf.layers] == [3, 3, 4, 8, 10, 18]
    assert [f.jump[0] for f in rf.layers] == [1, 1, 2, 2, 4, 4]
    assert rf.size == (18, 18) and rf.input_rows == (0, 18)
    rows, cols = gradient_region(net, 5, 1, (0, 0), (1, 32, 32))
    assert rf.input_rows[0] <= rows[0] and rows[1] <= rf.input_rows[1]   # max pooling routes to winners only
    with pytest.raises(ValueError, match="outside"):
        explain.receptive_field(net, "5", (9, 0), (1, 32, 32))


def trained_model():
    cnnlab.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3, groups=2),
                        nn.Sigmoid(), nn.Flatten(), nn.Linear(6 * 4 * 4, 3))
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x = cnnlab.tensor(rng.standard_normal((8, 2, 6, 6)).astype(np.float32))
    y = cnnlab.tensor(rng.integers(0, 3, 8))
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net, x, y


def test_neuron_trace_arrives_at_the_feature_map_value():
    net, x, _ = trained_model()
    net.eval()
    image = x.numpy()[3]
    with cnnlab.no_grad():
        after_relu = net[:3](cnnlab.tensor(image[None])).numpy()[0]
        after_sigmoid = net[:5](cnnlab.tensor(image[None])).numpy()[0]
    t = explain.neuron_trace(net, image, "0", channel=2, row=0, col=5)
    assert t.value == after_relu[2, 0, 5] and t.feature_layer == "2"
    assert [s.layer for s in t.stages] == ["1", "2"] and t.channels == (0, 1)
    assert t.computed == pytest.approx(t.value, rel=1e-5, abs=1e-6)
    conv_only = F.conv2d(cnnlab.tensor(image[None]), net[0].weight, net[0].bias, padding=1).numpy()[0, 2, 0, 5]
    assert t.pre_activation == pytest.approx(float(conv_only), rel=1e-5, abs=1e-6)
    assert t.windows[:, 0].tolist() == [[0.0] * 3] * 2     # the top row of the window is padding
    t2 = explain.neuron_trace(net, image, net[3], channel=4, row=1, col=2)    # grouped conv: channels 2, 3
    assert t2.channels == (2, 3) and t2.value == after_sigmoid[4, 1, 2]
    assert t2.computed == pytest.approx(t2.value, rel=1e-5)
    assert t2.lines()[-1].startswith("4: 1 / (1 + exp(")
    assert net.training is False


def test_neuron_trace_of_a_batch_norm_or_activation_stops_there():
    net, x, _ = trained_model()
    image = x.numpy()[5]
    t = explain.neuron_trace(net, image, "1", channel=3, row=4, col=1)   # the batch norm after conv 0
    after_bn = net[:2].eval()(cnnlab.tensor(image[None])).detach().numpy()[0]   # running statistics, as traced
    assert t.layer == "0" and t.feature_layer == "1" and [s.layer for s in t.stages] == ["1"]
    assert t.value == after_bn[3, 4, 1] and t.computed == pytest.approx(t.value, rel=1e-5, abs=1e-6)
    full = explain.neuron_trace(net, image, "2", channel=3, row=4, col=1)   # and through the ReLU
    assert full.partials == t.partials and [s.layer for s in full.stages] == ["1", "2"]
    with pytest.raises(ValueError, match="not a Conv2d"):
        explain.neuron_trace(net, image, "5", 0, 0, 0)          # Flatten
    dropped = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Dropout(0.5))   # dropout is off in eval mode
    d = explain.neuron_trace(dropped, image, "2", channel=1, row=2, col=3)
    assert [s.layer for s in d.stages] == ["1", "2"] and d.computed == pytest.approx(d.value, abs=1e-6)
    assert d.value == pytest.approx(max(0.0, d.pre_activation), abs=1e-6)
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.ReLU())
    with pytest.raises(ValueError, match="does not follow a Conv2d"):
        explain.neuron_trace(pooled, np.ones((1, 8, 8), np.float32), "2", 0, 0, 0)


def test_softmax_cross_entropy_matches_the_engine():
    logits = np.array([1.5, -0.25, 3.0, 0.0], np.float32)
    t = explain.softmax_cross_entropy(logits, 2)
    probs = F.softmax(cnnlab.tensor(logits[None]), dim=1).numpy()[0]
    loss = F.cross_entropy(cnnlab.tensor(logits[None]), cnnlab.tensor(np.array([2]))).item()
    np.testing.assert_allclose(t.probabilities, probs, rtol=1e-6)
    assert t.loss == pytest.approx(loss, rel=1e-6)
    assert t.shift == 3.0 and t.exps[2] == 1.0 and t.total == pytest.approx(sum(t.exps))
    assert t.lines()[-1].startswith("loss = -log p[2] = -log ")


def test_softmax_cross_entropy_of_a_confident_wrong_answer_is_finite():
    t = explain.softmax_cross_entropy([800.0, 0.0, -3.0], 2)   # p[2] = exp(-803) underflows to 0 in float64
    assert t.probabilities[2] == 0.0 and t.loss == pytest.approx(803.0)
    assert np.isnan(explain.softmax_cross_entropy([np.nan, 1.0], 0).loss)


def test_gradcheck_agrees_with_autograd():
    net, x, y = trained_model()
    for name, index in (("0.weight", (1, 0, 2, 1)), ("3.bias", 5), ("6.weight", (2, 17))):
        gc = explain.gradcheck(net, x, y, name, index)
        assert gc.relative_error < 1e-6, gc.lines()
        assert gc.autograd != 0
    before = net[0].weight.numpy().copy()
    gc32 = explain.gradcheck(net, x, y, "0.weight", 7, double=False)
    # float32: the loss is rounded to ~1e-7, so the difference quotient carries ~1e-4 of noise
    assert abs(gc32.numeric - gc32.autograd) < 2e-3 and gc32.index == (0, 0, 2, 1)
    np.testing.assert_array_equal(net[0].weight.numpy(), before)       # the live model is untouched
    # against the autograd gradient of the live model itself (eval mode, float32)
    net.eval()
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    assert gc32.autograd == pytest.approx(float(net[0].weight.grad.numpy()[0, 0, 2, 1]), rel=1e-5)


OPTIMIZERS = [
    (optim.SGD, dict(lr=0.1)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001)),
    (optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3)),
    (optim.Adam, dict(lr=0.01)),
    (optim.Adam, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    (optim.AdamW, dict(lr=0.01, weight_decay=0.05)),
]


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS)
def test_update_step_predicts_the_optimizer(cls, kwargs):
    net, x, y = trained_model()
    opt = cls(net.parameters(), **kwargs)
    p = net[3].weight
    for step in range(3):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        u = explain.update_step(opt, p, (4, 1, 2, 0))
        opt.step()
        got = float(p.numpy()[4, 1, 2, 0])
        assert u.new_value == pytest.approx(got, rel=1e-5, abs=1e-7)
        state = opt.state[p]
        for key, value in u.state_after.items():
            real = state[key] if key == "step" else state[key][4, 1, 2, 0]
            assert value == pytest.approx(float(real), rel=1e-5, abs=1e-9), key
        assert u.lines[-1].startswith("w = w - lr")
        if step and "momentum" in kwargs:
            assert "momentum_buffer" in u.state_before


def test_update_step_refuses_what_it_cannot_explain():
    net, x, y = trained_model()
    opt = optim.RMSprop(net.parameters())
    F.cross_entropy(net(x), y).backward()
    with pytest.raises(ValueError, match="SGD, Adam and AdamW"):
        explain.update_step(opt, net[0].weight, 0)
