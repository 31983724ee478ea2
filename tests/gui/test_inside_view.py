"""The Train tab's Inside view (issue 16, items 3-7) on a live run: a neuron worked out to
the number its feature map shows, the receptive field against autograd's gradient, the
update step against the optimizer's own step, the gradient check against autograd, and
softmax / cross-entropy against the engine's functions."""
from __future__ import annotations

import time

import numpy as np
import pytest

import cnnlab
import cnnlab.nn.functional as F
from gui.inside_neuron import NO_RUN
from gui.session import Session
from gui.train_view import TrainView
from gui.worker import Refresh

# smooth everywhere (tanh, average pooling, batch norm in eval mode): a gradient reaches
# every cell of the receptive field and a central difference agrees with autograd
LAYERS = [{"type": "Conv2d", "args": {"in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1}},
          {"type": "BatchNorm2d", "args": {"num_features": 4}},
          {"type": "Tanh"},
          {"type": "AvgPool2d", "args": {"kernel_size": 2}},
          {"type": "Conv2d", "args": {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "stride": 2,
                                      "dilation": 2}},
          {"type": "Tanh"},
          {"type": "Flatten"},
          {"type": "Linear", "args": {"in_features": 150, "out_features": 10}}]
# the model is Sequential(Normalize, *LAYERS): layer i of LAYERS is named str(i + 1)


def wait(spin, until, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        spin(20)
    assert until()


def trained_view(qtbot, spin, steps: int = 3, **settings) -> TrainView:
    view = TrainView(refresh=Refresh(curves=0.02, pictures=0.05))
    qtbot.addWidget(view)
    view.resize(1400, 900)
    view.show()
    view.settings.apply(Session(**{**dict(limit=256, batch_size=32, lr=1e-2, schedule="none", epochs=1,
                                          model="custom", layers=LAYERS), **settings}))
    view.train_steps(steps)
    wait(spin, lambda: view.state == "paused" and view.feature_maps.step == steps == view.controller.state_step)
    spin(30)
    return view


@pytest.fixture
def view(qtbot, spin):
    v = trained_view(qtbot, spin)
    yield v
    v.controller.shutdown()


def test_a_neuron_steps_to_the_number_its_feature_map_shows(view, spin):
    fm, inside = view.feature_maps, view.inside
    for layer, channel, row, col, stages in (("3", 2, 5, 9, ["2", "3"]), ("1", 1, 0, 27, []), ("6", 4, 2, 3, ["6"])):
        fm.click_cell(layer, channel, row, col)
        spin(20)
        assert view.side_tabs.currentWidget() is inside and inside.currentWidget() is inside.neuron
        n = inside.neuron
        shown = float(inside.acts[layer][0, channel, row, col])   # the probe's activations the maps draw
        assert [s.layer for s in n.stages()] == stages
        assert n.result() == pytest.approx(shown, rel=1e-5, abs=1e-6)
        # the number the map itself names on hover, and the panel's last step
        n_tiles, h, w, frame = fm.tiles[layer]
        r0, c0 = divmod(channel, int(np.ceil(np.sqrt(n_tiles))))
        hover = fm.grid.hover_text(layer, frame + r0 * (h + 1) + row, frame + c0 * (w + 1) + col)
        assert hover == f"{layer} channel {channel} ({row}, {col}) = {shown:.4g}"
        assert n.slider.value() == 0 and len(n.trace.channels) == view.model[int(layer) if not stages else
                                                                              int(layer) - len(stages)].in_channels
        n.end_button.click()
        assert "✓ the same number" in n.body.toPlainText()
        # the running sums add up to the pre-activation, channel by channel
        assert sum(n.trace.partials) + n.trace.bias == pytest.approx(n.trace.pre_activation)


def test_the_receptive_field_is_where_the_cells_gradient_reaches(view, spin):
    view.feature_maps.click_cell("5", 3, 1, 2)   # the strided, dilated conv after a pool
    spin(20)
    regions = view.feature_maps.highlight
    model = view.model_copy().double()
    x = cnnlab.tensor(np.random.default_rng(1).standard_normal((1, 1, 28, 28)), requires_grad=True)
    acts = [x]
    for i in range(6):
        a = model[i](acts[-1].detach().requires_grad_(True) if i else acts[-1])
        acts.append(a)

    def nonzero(g: np.ndarray):
        nz = np.argwhere(np.abs(g[0]).sum(axis=0) > 0)
        return (int(nz[:, 0].min()), int(nz[:, 0].max()) + 1), (int(nz[:, 1].min()), int(nz[:, 1].max()) + 1)

    # each layer's output and the input, against the gradient of the cell with respect to it
    for j, name in [(0, "input"), (1, "0"), (2, "1"), (3, "2"), (4, "3"), (5, "4")]:
        leaf = acts[j] if j == 0 else acts[j].detach().requires_grad_(True)
        y = leaf
        for i in range(j, 6):
            y = model[i](y)
        y[0, 3, 1, 2].backward()
        rows, cols, channel = regions[name]
        assert (rows, cols) == nonzero(leaf.grad.numpy()), name
        assert channel is None  # a conv after it mixes every channel
    assert regions["5"] == ((1, 2), (2, 3), 3) and view.feature_maps.cell == ("5", 3, 1, 2)
    fm = view.feature_maps
    # input and "0" (one tile each), "1"-"4" on all 4 channels, on "5" the region, the cell and its tile, and
    # the window summed at the first step (channel 0 of "4")
    assert len(fm._overlays) == 2 + 16 + 3 + 1 and fm.marks == [("4", 0, (2, 7), (4, 9))]
    view.resize(760, 900)   # the grid lays its panels out again: the outlines follow
    spin(80)
    assert fm.grid.columns < 5 and len(fm._overlays) == 22
    assert all(v in fm.grid.views.values() and item.scene() is v.scene() for v, item in fm._overlays)


@pytest.mark.parametrize("settings", [dict(optimizer="sgd", momentum=0.9, weight_decay=0.01), dict(optimizer="adamw")])
def test_the_update_step_is_the_optimizers_own(qtbot, spin, settings):
    view = trained_view(qtbot, spin, steps=2, **settings)
    try:
        page = view.inside.update_page
        page.picker.choose("5.weight", 77)
        before = view.controller.recorder.last.step
        page.step_button.click()                  # one more step, recorded
        wait(spin, lambda: view.state == "paused" and page.record is not None and page.record.step == before + 1)
        idx = page.picker.index
        u, run = page.shown, view.run
        p = dict(run.model.named_parameters())["5.weight"]   # paused: nothing trains now
        assert u.new_value == pytest.approx(float(p.numpy()[idx]), rel=1e-5, abs=1e-8) == page.actual
        state = run.optimizer.state[p]
        assert set(u.state_after) == ({"momentum_buffer"} if settings["optimizer"] == "sgd"
                                      else {"step", "exp_avg", "exp_avg_sq"})
        for key, value in u.state_after.items():
            real = state[key] if key == "step" else p._backend.to_numpy(state[key])[idx]
            assert value == pytest.approx(float(real), rel=1e-5, abs=1e-10), key
        assert u.grad != 0 and u.weight == pytest.approx(page.record.weight["5.weight"][idx])
        text = page.body.toPlainText()
        assert f"Step {before + 1}" in text and "✓" in text and ("decay" in text or "weight_decay" in text)
    finally:
        view.controller.shutdown()


def test_the_gradient_check_and_the_softmax_use_the_live_numbers(view, spin):
    inside = view.inside
    inside.check.picker.choose("1.weight", 5)
    assert inside.update_page.picker.name == "1.weight" and inside.update_page.picker.index == (0, 0, 1, 2)
    inside.check.eps.setCurrentText("1e-4")
    inside.check.check_button.click()
    gc = inside.check.result
    # autograd by hand on the same batch and weights, in float64 and eval mode
    x, y, _ = inside.check_batch()
    model = view.model_copy().double().eval()
    model.zero_grad()
    F.cross_entropy(model(cnnlab.tensor(x.astype(np.float64))), cnnlab.from_numpy(y)).backward()
    assert gc.autograd == pytest.approx(float(model[1].weight.grad.numpy()[0, 0, 1, 2]), rel=1e-9)
    assert gc.relative_error < 1e-6 and gc.eps == 1e-4
    assert "agree" in inside.check.body.toPlainText()

    t = inside.softmax.trace
    logits = inside.acts["output"]
    assert t.target == view.probe_label
    np.testing.assert_allclose(t.probabilities, F.softmax(cnnlab.tensor(logits), dim=1).numpy()[0], rtol=1e-5)
    assert t.loss == pytest.approx(F.cross_entropy(cnnlab.tensor(logits), cnnlab.tensor([t.target])).item(),
                                   rel=1e-5)
    np.testing.assert_allclose(t.probabilities, view.probabilities.probabilities, rtol=1e-5)


def test_before_a_run_the_pages_say_what_to_do(qtbot):
    view = TrainView()
    qtbot.addWidget(view)
    inside = view.inside
    assert inside.neuron.head.text() == NO_RUN
    assert "Start or load a run" in inside.update_page.body.toPlainText()
    assert inside.update_page.step_button.isEnabled()   # it starts one
    view.settings.apply(Session(model="custom", layers=[{"type": "Conv2d", "args": {
        "in_channels": 3, "out_channels": 2, "kernel_size": 3}}]))   # does not fit: no model
    assert view.model is None and not inside.check.check_button.isEnabled()
    assert "does not fit" in inside.neuron.head.text()   # the reason, not a stale trace


def test_the_update_page_follows_a_running_run_only_while_it_shows(qtbot, spin):
    view = trained_view(qtbot, spin, steps=1, epochs=50)
    inside, recorder = view.inside, view.controller.recorder
    page = inside.update_page
    try:
        view.side_tabs.setCurrentWidget(inside)
        inside.setCurrentWidget(page)
        assert recorder.live and page.record.step == 1   # the step before the pause is always recorded
        view.resume()
        wait(spin, lambda: page.record.step > 3 and view.state == "running")
        inside.setCurrentWidget(inside.neuron)
        assert not recorder.live
        spin(20)
        seen, steps = page.record.step, view.run.step
        wait(spin, lambda: view.run.step > steps + 10)
        assert page.record.step == seen   # nothing copied while nobody looks
    finally:
        view.controller.shutdown()
