"""The training settings panel's Advanced section (weight decay, Nesterov, label smoothing,
hold-out, mirrored validation): each field reaches the recipe from its widget and comes
back from a session, and no combination the recipe refuses can be made (offscreen)."""
from __future__ import annotations

from dataclasses import fields

import pytest

from cnnlab import nn
from cnnlab.recipe import Recipe, SettingError, build_optimizer, load_data
from gui.session import Session, load_session, save_session
from gui.train_settings import TrainSettings

# every advanced field away from its default, with an optimizer that allows Nesterov
ADVANCED = dict(optimizer="sgd", momentum=0.9, weight_decay=5e-4, nesterov=True, label_smoothing=0.1,
                holdout=300, tta=True)


@pytest.fixture
def panel(qtbot) -> TrainSettings:
    w = TrainSettings()
    qtbot.addWidget(w)
    return w


def shown(panel: TrainSettings) -> dict[str, object]:
    """What the advanced widgets show, read straight off them."""
    return {"weight_decay": panel.weight_decay.value(), "nesterov": panel.nesterov.isChecked(),
            "label_smoothing": panel.label_smoothing.value(), "holdout": panel.holdout.value(),
            "tta": panel.tta.isChecked()}


def test_opens_on_the_recipes_defaults_folded_away(panel):
    default = Recipe()
    assert shown(panel) == {k: getattr(default, k) for k in shown(panel)}
    assert not panel.advanced.is_open() and not panel.weight_decay.isVisibleTo(panel)
    assert panel.advanced.header.text() == "Advanced"
    assert panel.holdout.text() == "off: the test split" and panel.label_smoothing.text() == "off"
    panel.advanced.header.click()
    assert panel.advanced.is_open() and panel.weight_decay.isVisibleTo(panel)


@pytest.mark.parametrize("change", [dict(weight_decay=0.01), dict(label_smoothing=0.25), dict(holdout=1200),
                                    dict(tta=True), dict(optimizer="sgd", momentum=0.5, nesterov=True)])
def test_each_field_round_trips_through_apply_and_session(panel, qtbot, change):
    panel.apply(Session(**change))
    widgets = shown(panel)
    for key, value in change.items():
        assert getattr(panel.session(), key) == value
        assert widgets.get(key, value) == value
    again = TrainSettings()  # a second panel shows exactly what the first one's session says
    qtbot.addWidget(again)
    again.apply(panel.session())
    assert shown(again) == shown(panel)
    assert panel.advanced.is_open()  # a session that relies on them shows them
    assert panel.advanced.header.text() == "Advanced (1 in use)"


def test_the_shown_fields_come_from_the_widgets_not_from_the_last_session(panel):
    panel.apply(Session(**ADVANCED))
    panel.weight_decay.setValue(0)
    panel.nesterov.setChecked(False)
    panel.label_smoothing.setValue(0)
    panel.holdout.setValue(0)
    panel.tta.setChecked(False)
    s = panel.session()
    assert (s.weight_decay, s.nesterov, s.label_smoothing, s.holdout, s.tta) == (0, False, 0, 0, False)
    assert panel.advanced.header.text() == "Advanced"


def test_a_session_with_hold_out_and_tta_makes_the_recipe_the_widgets_show(panel):
    panel.optimizer.setCurrentText("sgd")
    panel.momentum.setValue(0.8)
    panel.nesterov.setChecked(True)
    panel.weight_decay.setValue(1e-3)
    panel.label_smoothing.setValue(0.15)
    panel.holdout.setValue(250)
    panel.tta.setChecked(True)
    recipe = panel.session().recipe()
    assert type(recipe) is Recipe
    assert {k: getattr(recipe, k) for k in shown(panel)} == shown(panel)
    assert (recipe.optimizer, recipe.momentum) == ("sgd", pytest.approx(0.8))
    recipe.check()
    # and the engine uses them: the last 250 training images validate, the rest train
    whole = load_data(Recipe(data=recipe.data))
    held = load_data(recipe)
    assert len(held.val) == 250 and len(held.train) == len(whole.train) - 250
    assert recipe.to_dict() == Recipe.from_dict(recipe.to_dict()).to_dict()
    assert {f.name for f in fields(Recipe)} >= set(shown(panel))


def test_nesterov_is_enabled_only_for_sgd_with_momentum(panel):
    assert panel.optimizer.currentText() == "adam" and not panel.nesterov.isEnabled()
    panel.optimizer.setCurrentText("sgd")
    panel.momentum.setValue(0.9)
    assert panel.nesterov.isEnabled()
    panel.momentum.setValue(0.0)
    assert not panel.nesterov.isEnabled()
    panel.momentum.setValue(0.5)
    assert panel.nesterov.isEnabled()
    panel.optimizer.setCurrentText("adamw")
    assert not panel.nesterov.isEnabled()


@pytest.mark.parametrize("away", [dict(optimizer="adam"), dict(optimizer="adamw"), dict(momentum=0.0)])
def test_a_tick_left_on_a_disabled_nesterov_box_never_reaches_the_recipe(panel, away):
    panel.optimizer.setCurrentText("sgd")
    panel.momentum.setValue(0.9)
    panel.nesterov.setChecked(True)
    if "optimizer" in away:
        panel.optimizer.setCurrentText(away["optimizer"])
    else:
        panel.momentum.setValue(away["momentum"])
    s = panel.session()
    with pytest.raises(SettingError):  # what the widgets would say taken literally: refused
        Recipe(optimizer=s.optimizer, momentum=s.momentum, nesterov=True).check()
    assert s.nesterov is False
    s.check()
    assert panel.nesterov.isChecked()  # remembered for when SGD with momentum comes back
    panel.optimizer.setCurrentText("sgd")
    panel.momentum.setValue(0.9)
    assert panel.session().nesterov is True


def test_while_a_run_trains_the_advanced_settings_are_locked(panel):
    panel.apply(Session(optimizer="sgd", momentum=0.9))
    advanced = (panel.weight_decay, panel.nesterov, panel.label_smoothing, panel.holdout, panel.tta)
    panel.set_architecture_enabled(False)
    assert not any(w.isEnabled() for w in advanced)
    panel.momentum.setValue(0.8)  # even a change that re-decides Nesterov keeps it locked
    assert not panel.nesterov.isEnabled()
    panel.set_architecture_enabled(True)
    assert all(w.isEnabled() for w in advanced)
    panel.optimizer.setCurrentText("adam")
    panel.set_architecture_enabled(False)
    panel.set_architecture_enabled(True)
    assert not panel.nesterov.isEnabled() and panel.label_smoothing.isEnabled()


@pytest.mark.parametrize("spin", ["holdout", "limit", "seed"])
def test_the_hold_out_reloads_the_data_and_the_others_do_not(panel, qtbot, spin):
    with qtbot.waitSignal(panel.sigArchitectureChanged, timeout=1000):
        getattr(panel, spin).setValue(500)
    with qtbot.assertNotEmitted(panel.sigArchitectureChanged):
        panel.tta.setChecked(True)
        panel.label_smoothing.setValue(0.1)
        panel.weight_decay.setValue(0.01)


def test_adamw_says_what_no_weight_decay_means_for_it(panel):
    param = nn.Linear(2, 2).parameters()
    assert build_optimizer(Recipe(optimizer="adamw", weight_decay=0.0), param).param_groups[0]["weight_decay"] == 0.01
    panel.optimizer.setCurrentText("adamw")
    assert panel.weight_decay.value() == 0 and panel.weight_decay.text() == "0.01 (AdamW's default)"
    panel.optimizer.setCurrentText("adam")
    assert panel.weight_decay.text() == "none"


def test_the_advanced_fields_survive_a_session_file(panel, qtbot, tmp_path):
    panel.apply(Session(**ADVANCED))
    save_session(tmp_path / "s.json", panel.session())
    again = TrainSettings()
    qtbot.addWidget(again)
    again.apply(load_session(tmp_path / "s.json"))
    assert shown(again) == {k: ADVANCED[k] for k in shown(again)}
    assert again.advanced.header.text() == "Advanced (5 in use)"


def test_the_fast_cifar_net_can_be_chosen_and_brings_its_rate(panel):
    i = panel.model.findData("cifarfast")
    assert i >= 0 and panel.model.itemText(i) == "Fast CIFAR net (speedrun-style)"
    panel.model.setCurrentIndex(i)
    assert panel.session().model == "cifarfast" and panel.lr.value() == pytest.approx(5e-3)  # benchmarks/RESULTS.md


def test_the_dashboard_validates_on_the_hold_out_the_panel_sets(qtbot):
    from gui.train_view import TrainView

    view = TrainView()
    qtbot.addWidget(view)
    view.settings.apply(Session(limit=0, epochs=1))
    whole = len(view.controller.data.train)
    view.settings.holdout.setValue(300)
    assert (len(view.controller.data.val), len(view.controller.data.train)) == (300, whole - 300)
