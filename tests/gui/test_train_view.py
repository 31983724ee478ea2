"""The training dashboard driven through its widgets (offscreen), on tiny slices of the
offline MNIST sample so every run takes a second or two."""
from __future__ import annotations

import time

import numpy as np
import pytest

import cnnlab

from cnnlab.train import load_checkpoint
from gui.session import Session
from gui.train_view import TrainView
from gui.worker import Refresh

# 8 steps an epoch, 256 validation images; a fixed rate, so the tests can set it while a run trains
TINY = dict(limit=256, batch_size=32, lr=1e-3, schedule="none")


def make_view(qtbot, **settings) -> TrainView:
    view = TrainView(refresh=Refresh(curves=0.02, pictures=0.05))
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    view.settings.apply(Session(**{**TINY, "epochs": 1, **settings}))
    return view


@pytest.fixture
def view(qtbot):
    return make_view(qtbot)


def run_to_end(qtbot, view: TrainView, timeout: int = 60_000) -> None:
    with qtbot.waitSignal(view.sigRunFinished, timeout=timeout):
        view.start()


def test_opens_with_the_offline_default_and_seed_004s_convnet(qtbot):
    view = TrainView()
    qtbot.addWidget(view)
    s = view.settings.session()
    assert (s.model, s.data) == ("convnet", "mnist-sample")
    assert view.param_count() == 13_686
    assert view.start_button.isEnabled() and view.state == "idle"
    assert view.feature_maps.updates == 1 and "conv1" in view.feature_maps.grid.frames  # before training


def test_the_default_run_is_the_recipes_default_and_reaches_95_percent(qtbot):
    from cnnlab.recipe import default_recipe

    view = TrainView(refresh=Refresh(curves=0.5, pictures=1.0))
    qtbot.addWidget(view)
    assert view.settings.session().recipe() == default_recipe("convnet", "mnist-sample")
    run_to_end(qtbot, view, timeout=300_000)
    assert view.run.status == "finished" and view.run.epoch == 1
    assert view.run.history.epochs[-1]["val_accuracy"] >= 0.95
    assert view.model.normalize is not None  # trained with the normalisation inside the model


def test_a_short_run_fills_the_curves_maps_and_confusion_matrix(qtbot, view):
    view.settings.epochs.setValue(2)
    before = {k: v.copy() for k, v in view.feature_maps.grid.frames.items()}
    filters_before = view.filters.grid.frames["conv1"].copy()
    run_to_end(qtbot, view)
    assert view.state == "idle" and view.run.status == "finished"
    assert view.curves.point_count() == 16  # 2 epochs of 8 batches
    assert len(view.curves.current.val_x) == 2
    m = view.confusion.matrix
    assert m is not None and m.sum() == len(view.val_set) == 256
    assert np.trace(m) > 0
    changed = [k for k in ("conv1", "conv2", "linear1") if not np.array_equal(before[k], view.feature_maps.grid.frames[k])]
    assert changed == ["conv1", "conv2", "linear1"]
    assert view.feature_maps.step == 16  # the final weights are shown
    assert not np.array_equal(filters_before, view.filters.grid.frames["conv1"])
    assert set(view.grad_bars.values) >= {"conv1", "linear1"} and all(v > 0 for v in view.grad_bars.values.values())
    assert view.probabilities.probabilities.sum() == pytest.approx(1.0)
    assert len(view.curves.finished) == 1 and "13,686 params" in view.curves.runs.item(0).text()
    assert "finished after 16 steps" in view.live.text()


def test_pause_resume_and_stop(qtbot, spin):
    view = make_view(qtbot, epochs=200)
    view.start()
    qtbot.waitUntil(lambda: view.curves.point_count() > 0, timeout=30_000)
    view.pause()
    qtbot.waitUntil(lambda: view.state == "paused", timeout=10_000)
    assert view.resume_button.isEnabled() and view.step_button.isEnabled() and not view.pause_button.isEnabled()
    step = view.run.step
    spin(300)
    assert view.run.step == step  # nothing trains while paused
    view.resume()
    assert view.state == "running"
    qtbot.waitUntil(lambda: view.run.step > step + 2, timeout=10_000)
    with qtbot.waitSignal(view.sigRunFinished, timeout=10_000) as finished:
        view.stop()
    assert finished.args == ["stopped"] and view.state == "idle"
    assert view.run.status == "stopped" and view.run.step < 200 * 8
    assert "stopped" in view.curves.runs.item(0).text()


def test_step_trains_one_batch_at_a_time(qtbot, view):
    view.step()
    qtbot.waitUntil(lambda: view.state == "paused", timeout=30_000)
    assert view.run.step == 1 and view.curves.point_count() == 1
    assert view.feature_maps.step == 1  # pictures follow every single step
    view.step()
    qtbot.waitUntil(lambda: view.state == "paused" and view.run.step == 2, timeout=10_000)
    assert view.curves.point_count() == 2
    with qtbot.waitSignal(view.sigRunFinished, timeout=10_000):
        view.stop()


def test_learning_rate_changes_while_running(qtbot):
    view = make_view(qtbot, epochs=200)
    view.start()
    qtbot.waitUntil(lambda: view.curves.point_count() > 0, timeout=30_000)
    view.settings.lr.setValue(0.01)
    assert view.run.lr == pytest.approx(0.01)
    assert view.settings.lr.isEnabled() and not view.settings.batch.isEnabled()  # only the lr is live
    n = view.run.step
    qtbot.waitUntil(lambda: view.run.step > n + 2, timeout=10_000)
    assert view.run.history.steps[-1]["lr"] == pytest.approx(0.01)
    with qtbot.waitSignal(view.sigRunFinished, timeout=10_000):
        view.stop()


def test_a_layer_list_that_does_not_fit_says_why_and_cannot_start(qtbot, view):
    view.settings.model.setCurrentIndex(view.settings.model.findData("custom"))
    editor = view.settings.editor
    assert editor.isVisible() and view.start_button.isEnabled()  # starts as seed 004's ConvNet
    assert view.param_count() == 13_686
    editor.set_arg(5, "kernel_size", 9)  # conv4 on a 7x7 input
    assert "⚠" in editor.list.item(5).text() and "⚠" not in editor.list.item(4).text()
    assert "layer 5 (Conv2d): the kernel spans 9 cells (1*(9-1) + 1) but the input height is only 7 cells" \
        in editor.message()
    editor.list.setCurrentRow(5)
    assert "H: floor((7 + 2*0 - 1*(9-1) - 1) / 1) + 1 = -1" in editor.derivation.text()
    assert "does not fit" in view.message.text() and not view.start_button.isEnabled()
    editor.set_arg(5, "kernel_size", 5)
    assert editor.ok() and view.start_button.isEnabled() and view.message.text() == ""


def test_layer_editor_add_remove_reorder_and_mismatch_messages(qtbot, view):
    from gui.layer_editor import LayerEditor

    editor = LayerEditor()
    qtbot.addWidget(editor)
    editor.set_input((1, 28, 28), 10)
    editor.list.setCurrentRow(0)
    editor.add_layer("ReLU")
    assert [c.kind for c in editor.checks()][:3] == ["Conv2d", "ReLU", "MaxPool2d"] and editor.ok()
    editor.move_layer(1, +1)
    assert [c.kind for c in editor.checks()][:3] == ["Conv2d", "MaxPool2d", "ReLU"] and editor.ok()
    editor.remove_layer(2)
    assert len(editor.layers()) == 8 and editor.ok()
    editor.auto.setChecked(False)
    editor.set_arg(7, "in_features", 50)
    assert "layer 7 (Linear) expects in_features=50 but the previous layer gives 36" in editor.message()
    editor.auto.setChecked(True)  # following the previous layer repairs it
    assert editor.ok()
    editor.remove_layer(6)  # no Flatten before the Linear
    assert "needs a flat vector but gets images 4×3×3: add a Flatten before it" in editor.message()
    editor.set_arg(0, "out_channels", 8)
    assert editor.checks()[2].in_shape == (8, 14, 14)  # the next conv follows


def test_finished_runs_are_compared_with_their_parameter_counts(qtbot, view):
    run_to_end(qtbot, view)
    view.settings.model.setCurrentIndex(view.settings.model.findData("fcnet"))
    run_to_end(qtbot, view)
    names = [view.curves.runs.item(i).text() for i in range(view.curves.runs.count())]
    assert names[0].startswith("convnet") and "13,686 params" in names[0]
    assert names[1].startswith("fcnet") and "12,730 params" in names[1]
    view.curves.set_compared([0, 1])
    assert len(view.curves._overlays) == 8 and view.curves.compared() == [0, 1]
    view.curves.set_compared([1])
    assert len(view.curves._overlays) == 4


def test_reset_gives_fresh_weights_and_keeps_finished_runs(qtbot, view):
    run_to_end(qtbot, view)
    trained = view.model.state_dict()["conv1.weight"].numpy().copy()
    view.reset()
    assert view.curves.point_count() == 0 and view.confusion.matrix is None and view.state == "idle"
    assert not np.array_equal(trained, view.model.state_dict()["conv1.weight"].numpy())
    assert len(view.curves.finished) == 1


def test_checkpoint_saved_and_loaded_continues_the_run(qtbot, view, tmp_path):
    run_to_end(qtbot, view)
    path = tmp_path / "run.npz"
    view.save_checkpoint(path)
    saved = view.model.state_dict()["linear1.weight"].numpy().copy()
    assert load_checkpoint(path)["step"] == 8

    other = make_view(qtbot, model="fcnet", lr=0.5)
    other.load_checkpoint(path)
    s = other.settings.session()
    assert (s.model, s.limit, s.batch_size) == ("convnet", 256, 32)
    assert other.settings.lr.value() == pytest.approx(1e-3)
    assert np.array_equal(saved, other.model.state_dict()["linear1.weight"].numpy())
    assert other.curves.point_count() == 8 and other.start_button.text() == "Continue"
    run_to_end(qtbot, other)
    assert other.run.epoch == 2 and other.run.step == 16 and other.curves.point_count() == 16


def test_loading_a_bad_checkpoint_says_so(qtbot, view, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint")
    view._dialog(view.load_checkpoint, str(bad))
    assert "bad.npz" in view.message.text() and view.state == "idle" and view.model is not None


def test_a_normalized_command_line_checkpoint_loads_and_predicts_with_its_normalisation(qtbot, view, tmp_path):
    # normalisation is the model's first layer now, so the app feeds it plain 0..1 pixels
    from cnnlab import models, recipe as recipes
    from cnnlab.checkpoint import save_checkpoint
    from gui.probabilities import softmax

    r = recipes.Recipe(**{**TINY, "normalize": True})
    data = recipes.load_data(r)
    run = recipes.build_run(r, data)
    run.run()
    path = tmp_path / "normalized.npz"
    save_checkpoint(path, run, recipes.checkpoint_extra(r, data))
    view.settings.normalize.setChecked(False)
    view._dialog(view.load_checkpoint, str(path))
    assert view.message.text() == "" and view.settings.normalize.isChecked()
    mean, std = data.stats["mean"][0], data.stats["std"][0]
    np.testing.assert_allclose(view.model.normalize.mean.numpy().ravel(), [mean], rtol=1e-6)
    # the reference: the same weights without the layer, on inputs normalised by hand
    plain = models.create("convnet")
    plain.load_state_dict({k: v for k, v in run.model.state_dict().items() if not k.startswith("normalize.")})
    plain.eval()
    x = view.probe_image[None]
    with cnnlab.no_grad():
        want = plain(cnnlab.from_numpy(((x - mean) / std).astype(np.float32))).numpy()[0]
        raw = plain(cnnlab.from_numpy(x.copy())).numpy()[0]
    np.testing.assert_allclose(view.probabilities.probabilities, softmax(want), atol=1e-5)
    assert not np.allclose(softmax(raw), softmax(want), atol=1e-3)  # without it the answer differs


def test_session_saved_and_reopened(qtbot, view, tmp_path):
    view.settings.apply(Session(model="lenet5", data="shapes", limit=128, optimizer="sgd", lr=0.05,
                                momentum=0.8, batch_size=16, epochs=4, seed=3))
    view.picker.choose(2)
    view.save_session(tmp_path / "lesson.json")
    other = make_view(qtbot)
    other.open_session(tmp_path / "lesson.json")
    s = other.settings.session()
    assert (s.model, s.data, s.limit, s.optimizer, s.lr, s.momentum, s.batch_size, s.epochs, s.seed) == \
        ("lenet5", "shapes", 128, "sgd", 0.05, 0.8, 16, 4, 3)
    assert other.picker.group.checkedId() == 2 and other.probe_label == 2
    assert other.classes[0] == "horizontal line" and other.model.__class__.__name__ == "LeNet5"


def test_probe_click_changes_the_feature_maps(qtbot, view):
    first = view.feature_maps.grid.frames["input"].copy()
    view.picker.choose(3)
    assert view.probe_label == 3 and not np.array_equal(first, view.feature_maps.grid.frames["input"])
    assert "true 3" in view.probabilities.title


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_a_diverging_run_stops_with_a_message(qtbot):
    view = make_view(qtbot, optimizer="sgd", lr=5.0, momentum=0.99, epochs=50)
    with qtbot.waitSignal(view.sigRunFinished, timeout=60_000) as finished:
        view.start()
    assert finished.args == ["diverged"]
    assert "smaller learning rate" in view.message.text() and view.state == "idle"


def test_closing_the_view_during_training_leaves_no_thread(qtbot):
    view = make_view(qtbot, epochs=200)
    view.start()
    qtbot.waitUntil(lambda: view.curves.point_count() > 0, timeout=30_000)
    t0 = time.perf_counter()
    view.close()
    assert not view.is_training() and view.state == "idle" and time.perf_counter() - t0 < 5


def test_a_layer_list_model_round_trips_through_a_checkpoint(qtbot, view, tmp_path):
    from gui.layer_editor import CONVNET_LAYERS

    layers = [dict(spec) for spec in CONVNET_LAYERS]
    layers.insert(1, {"type": "ReLU", "args": {}})
    view.settings.apply(Session(**TINY, model="custom", layers=layers, epochs=1, normalize=False))
    assert view.model.__class__.__name__ == "Sequential" and len(view.model) == 9
    run_to_end(qtbot, view)
    view.save_checkpoint(tmp_path / "layers.npz")
    other = make_view(qtbot)
    other.load_checkpoint(tmp_path / "layers.npz")
    assert other.settings.model_name() == "custom" and other.settings.editor.isVisible()
    assert [c.kind for c in other.settings.editor.checks()][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    np.testing.assert_array_equal(view.model.state_dict()["0.weight"].numpy(),
                                  other.model.state_dict()["0.weight"].numpy())
