"""The training recipe (cnnlab.recipe), normalisation as the model's first layer, old
checkpoints that kept it beside the model, and Run.submit."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import cnnlab
from cnnlab import models, nn, optim
from cnnlab import recipe as recipes
from cnnlab.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from cnnlab.cli import build_parser
from cnnlab.data import ArrayDataset, DataLoader, get_dataset
from cnnlab.recipe import Recipe, SettingError
from cnnlab.train import Callback, Run


def small(**kw) -> Recipe:
    return Recipe(**{"limit": 300, "batch_size": 50, **kw})


# ----------------------------------------------------------------------------- the recipe
def test_cli_defaults_are_the_recipe_defaults():
    args = build_parser().parse_args(["train"])
    d = Recipe()
    for name in ("model", "data", "size", "channels", "limit", "holdout", "seed", "epochs", "batch_size",
                 "optimizer", "lr", "momentum", "nesterov", "weight_decay", "label_smoothing", "schedule",
                 "normalize", "augment", "tta", "device"):
        assert getattr(args, name) == getattr(d, name), name
    # the best measured: Adam, a per-step cosine, normalised inputs, the model's own rate
    assert (d.optimizer, d.schedule, d.normalize, d.lr) == ("adam", "cosine", True, None)
    assert d.resolved_lr() == recipes.BEST_LR["convnet"] == recipes.default_recipe().lr
    assert Recipe(model="modern").resolved_lr() == recipes.BEST_LR["modern"]
    assert Recipe(lr=0.5).resolved_lr() == 0.5


@pytest.mark.parametrize("change, setting", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": 0.0}, "lr"), ({"lr": -1.0}, "lr"),
    ({"optimizer": "rmsprop"}, "optimizer"), ({"schedule": "linear"}, "schedule"), ({"device": "tpu"}, "device"),
    ({"model": "resnet9000"}, "model"), ({"model": "custom"}, "model"), ({"limit": -2}, "limit"),
    ({"channels": 2}, "channels"), ({"momentum": -0.1}, "momentum"),
])
def test_check_names_the_bad_setting(change, setting):
    with pytest.raises(SettingError) as e:
        Recipe(**change).check()
    assert e.value.setting == setting
    assert isinstance(e.value, ValueError)


def test_to_dict_and_back():
    r = Recipe(model="custom", layers=[{"type": "Flatten", "args": {}}], model_args={"width": 8}, lr=3e-3,
               epochs=2, augment=True, normalize=False)
    assert Recipe.from_dict(r.to_dict()) == r
    # numbers typed as text (a hand-edited file), unknown keys ignored
    assert Recipe.from_dict({"epochs": "3", "lr": "0.01", "normalize": "false", "colour": "red"}) == \
        Recipe(epochs=3, lr=0.01, normalize=False)
    with pytest.raises(SettingError, match="epochs"):
        Recipe.from_dict({"epochs": "many"})


def test_load_data_spreads_the_limit_and_measures_the_training_images():
    data = recipes.load_data(small())
    train = get_dataset("mnist-sample", train=True)
    idx = np.unique(np.linspace(0, len(train) - 1, 300).astype(int))
    assert len(data.train) == len(data.val) == 300
    assert np.array_equal(np.asarray(data.train.targets), train.targets[idx])
    assert len(set(data.train.targets.tolist())) == 10       # every class, though the set is sorted by class
    pixels = train.images[idx].astype(np.float64) / 255.0
    assert data.stats["mean"] == pytest.approx([pixels.mean()], rel=1e-6)
    assert data.stats["std"] == pytest.approx([pixels.std()], rel=1e-6)
    assert data.shape == (1, 28, 28) and data.classes == train.classes
    assert recipes.load_data(small(normalize=False)).stats is None


def test_augmentation_only_on_the_training_side_and_the_stored_set_untouched():
    plain = recipes.load_data(small())
    aug = recipes.load_data(small(augment=True))
    x_plain = next(iter(DataLoader(plain.train, 300)))[0].numpy()
    x_aug = next(iter(DataLoader(aug.train, 300, seed=1)))[0].numpy()
    assert not np.array_equal(x_plain, x_aug)
    # shifted copies of the same digits: the ink is the same up to what fell off the edge
    assert np.abs(x_aug.sum(axis=(1, 2, 3)) - x_plain.sum(axis=(1, 2, 3))).max() < 0.35 * x_plain.sum(axis=(1, 2, 3)).max()
    assert np.array_equal(next(iter(DataLoader(aug.val, 300)))[0].numpy(),
                          next(iter(DataLoader(plain.val, 300)))[0].numpy())
    assert recipes.load_split(small(), True).transform is None


def normalized(x: np.ndarray, stats) -> np.ndarray:
    mean = np.asarray(stats["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(stats["std"], np.float32).reshape(1, -1, 1, 1)
    return ((x - mean) / std).astype(np.float32)


def test_the_model_normalizes_its_inputs_itself():
    data = recipes.load_data(small())
    model = recipes.build_model(small(), data).eval()
    assert isinstance(model.normalize, nn.Normalize)
    plain = models.create("convnet")
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("normalize.")})
    x = next(iter(DataLoader(data.val, 8)))[0]
    with cnnlab.no_grad():
        ours = model(x).numpy()
        reference = plain.eval()(cnnlab.from_numpy(normalized(x.numpy(), data.stats))).numpy()
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)
    # a custom layer list gets the same first layer
    layers = [{"type": "Flatten", "args": {}}, {"type": "Linear", "args": {"in_features": 784, "out_features": 10}}]
    custom = recipes.build_model(small(model="custom", layers=layers), data)
    assert [type(m).__name__ for m in custom] == ["Normalize", "Flatten", "Linear"]
    assert models.describe(custom)["layers"][0]["type"] == "Normalize"
    # the same seed, the same weights
    again = recipes.build_model(small(), data)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(model.state_dict().values(),
                                                                     again.state_dict().values()))


def test_optimizer_and_schedule():
    params = [nn.Parameter(cnnlab.zeros(3))]
    opt = recipes.build_optimizer(Recipe(optimizer="sgd", lr=0.1, momentum=0.5), params)
    assert isinstance(opt, optim.SGD) and opt.param_groups[0]["momentum"] == 0.5
    assert isinstance(recipes.build_optimizer(Recipe(), params), optim.Adam)
    assert recipes.build_optimizer(Recipe(optimizer="adamw"), params).param_groups[0]["weight_decay"] == 1e-2
    sched, interval = recipes.build_schedule(Recipe(epochs=2), recipes.build_optimizer(Recipe(), params), 100)
    assert interval == "step" and sched.T_max == 200 and sched.warmup == 4
    sched, interval = recipes.build_schedule(Recipe(schedule="step", epochs=6), opt, 10)
    assert interval == "epoch" and sched.step_size == 2
    assert recipes.build_schedule(Recipe(schedule="none"), opt, 10) == (None, "epoch")


def test_build_run_trains_and_its_checkpoint_rebuilds_the_recipe(tmp_path):
    recipe = small(lr=5e-3, augment=True)
    data = recipes.load_data(recipe)
    run = recipes.build_run(recipe, data)
    run.run()
    assert run.history.epochs[-1]["val_accuracy"] > 0.3        # 300 images, 6 steps; chance is 0.1
    save_checkpoint(tmp_path / "c.npz", run, recipes.checkpoint_extra(recipe, data))
    ckpt = load_checkpoint(tmp_path / "c.npz")
    again = recipes.recipe_from_checkpoint(ckpt, base=Recipe(epochs=5))
    assert again == Recipe(**{**recipe.to_dict(), "epochs": 5})
    r = recipes.resume_run(tmp_path / "c.npz", again, recipes.load_data(again, ckpt["extra"]["normalize"]), 2)
    assert (r.epoch, r.step, r.epochs) == (1, 6, 2)


def test_the_default_recipe_reaches_95_percent_in_its_one_epoch():
    # `cnnlab train` with no options: the embedded MNIST sample's 12,000 images, then its 2,000
    run = recipes.build_run(Recipe())
    run.run()
    assert len(run.history.epochs) == 1
    assert run.history.epochs[-1]["val_accuracy"] >= 0.95


# ----------------------------------------------------------------------------- old checkpoints
def old_checkpoint(tmp_path, model: nn.Module, stats) -> dict:
    """A checkpoint as `cnnlab train --normalize` wrote it before normalisation was a layer:
    a model without it, the statistics only in extra."""
    run = Run(model, DataLoader(ArrayDataset(np.zeros((2, 1, 28, 28), np.uint8), [0, 1], ["a", "b"]), 2),
              optim.Adam(model.parameters()))
    save_checkpoint(tmp_path / "old.npz", run, {"data": "mnist-sample", "normalize": stats,
                                                "input_shape": [1, 28, 28], "classes": [str(i) for i in range(10)]})
    return load_checkpoint(tmp_path / "old.npz")


@pytest.mark.parametrize("kind", ["zoo", "sequential"])
def test_an_old_normalized_checkpoint_gets_its_normalize_layer(tmp_path, kind):
    cnnlab.manual_seed(4)
    stats = {"mean": [0.2], "std": [0.4]}
    old = models.create("convnet") if kind == "zoo" else nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 26 * 26, 10))
    model = model_from_checkpoint(old_checkpoint(tmp_path, old, stats)).eval()
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    with cnnlab.no_grad():
        got = model(cnnlab.from_numpy(x)).numpy()
        want = old.eval()(cnnlab.from_numpy(normalized(x, stats))).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # and the old run resumes with the layer in place (no parameters: the optimizer state still fits)
    recipe = recipes.recipe_from_checkpoint(load_checkpoint(tmp_path / "old.npz"))
    assert recipe.normalize is True
    if kind == "zoo":
        run = recipes.resume_run(tmp_path / "old.npz", recipe.__class__(**{**recipe.to_dict(), "limit": 100}),
                                 recipes.load_data(small(limit=100), stats), 1)
        assert isinstance(run.model.normalize, nn.Normalize)


# ----------------------------------------------------------------------------- Run.submit
def bars(n: int = 64) -> ArrayDataset:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    x = (rng.random((n, 1, 8, 8)) * 50).astype(np.uint8)
    x[y == 1, 0, 2:4, :] = 255
    return ArrayDataset(x, y, ["plain", "bar"])


def tiny_run(callbacks=(), epochs: int = 3) -> Run:
    cnnlab.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    return Run(model, DataLoader(bars(), 8, shuffle=True, seed=0), optim.SGD(model.parameters(), 0.1),
               epochs=epochs, callbacks=callbacks)


def test_submit_during_training_runs_between_steps_on_the_training_thread():
    ends = []
    started = threading.Event()

    class Count(Callback):
        def on_step_end(self, run, m):
            ends.append(m.step)
            started.set()

    run = tiny_run([Count()], epochs=500)
    trainer = threading.Thread(target=run.run)
    trainer.start()
    assert started.wait(10)

    def request(r):   # what a step boundary looks like: every finished step reported, the next not begun
        return threading.get_ident(), r.step, len(r.history.steps), list(ends), r.status

    ident, step, recorded, reported, status = run.submit(request).result(timeout=10)
    run.stop()
    trainer.join(10)
    assert ident == trainer.ident != threading.get_ident()
    assert status == "running" and step >= 1
    assert recorded == step and reported == list(range(1, step + 1))
    assert run.status == "stopped" and run.step > 0


def test_submit_while_paused_is_answered_without_a_step():
    paused = threading.Event()

    class Watch(Callback):
        def on_pause(self, run):
            paused.set()

    run = tiny_run([Watch()])
    run.pause()
    run.step_once(3)
    trainer = threading.Thread(target=run.run)
    trainer.start()
    assert paused.wait(10)
    before = run.step
    f = run.submit(lambda r: (threading.get_ident(), r.step, r.paused))
    ident, step, was_paused = f.result(timeout=5)
    assert (ident, step, was_paused) == (trainer.ident, before, True) and before == 3
    f = run.submit(lambda r: 1 / 0)                 # an error reaches the caller, the run goes on
    with pytest.raises(ZeroDivisionError):
        f.result(timeout=5)
    assert run.step == 3 and trainer.is_alive()
    run.stop()
    trainer.join(10)
    assert run.status == "stopped"


def test_submit_outside_run_runs_at_once_in_the_callers_thread():
    run = tiny_run(epochs=1)
    f = run.submit(lambda r: (threading.get_ident(), r.status))
    assert f.done() and f.result() == (threading.get_ident(), "ready")
    run.run()
    f = run.submit(lambda r: (threading.get_ident(), r.status, r.step))
    assert f.done() and f.result() == (threading.get_ident(), "finished", 8)


def test_submit_from_inside_a_callback_does_not_wait_for_itself():
    results = []

    class Inner(Callback):
        def on_step_end(self, run, m):
            if m.step == 1:
                results.append(run.submit(lambda r: r.step).result(timeout=1))

    tiny_run([Inner()], epochs=1).run()
    assert results == [1]


# ----------------------------------------------------------------------------- holdout
def test_holdout_validates_on_the_last_training_images_and_trains_on_the_rest():
    whole = get_dataset("mnist-sample", train=True)
    data = recipes.load_data(Recipe(holdout=500, normalize=False))
    assert (len(data.train), len(data.val)) == (len(whole) - 500, 500)
    got_x, got_y = data.val[0]
    want_x, want_y = whole[len(whole) - 500]
    np.testing.assert_array_equal(np.asarray(got_x), np.asarray(want_x))
    assert got_y == want_y
    np.testing.assert_array_equal(np.asarray(data.train[len(whole) - 501][0]), np.asarray(whole[len(whole) - 501][0]))
    # the batched path the loaders take reads the same images
    xb, yb = data.val.get_batch(np.array([0, 499]))
    np.testing.assert_array_equal(np.asarray(xb[1]), np.asarray(whole[len(whole) - 1][0]))
    assert list(np.asarray(yb)) == [whole[len(whole) - 500][1], whole[len(whole) - 1][1]]
    # --limit then spreads over the two parts, as it does over a test split
    limited = recipes.load_data(Recipe(holdout=500, limit=100, normalize=False))
    assert (len(limited.train), len(limited.val)) == (100, 100)


def test_holdout_that_leaves_nothing_to_train_on_names_the_setting():
    n = len(get_dataset("mnist-sample", train=True))
    with pytest.raises(SettingError, match=f"holdout {n} leaves no training images") as e:
        recipes.load_data(Recipe(holdout=n))
    assert e.value.setting == "holdout"
    with pytest.raises(SettingError) as e:
        Recipe(holdout=-1).check()
    assert e.value.setting == "holdout"


# ----------------------------------------------------------------------------- fast-recipe settings
def test_label_smoothing_nesterov_and_mirror_validation_reach_the_run():
    r = Recipe(model="convnet", optimizer="sgd", nesterov=True, label_smoothing=0.2, tta=True, limit=64,
               batch_size=32)
    run = recipes.build_run(r)
    assert run.optimizer.param_groups[0]["nesterov"] is True
    assert run.eval_flip is True
    # the loss is cross-entropy against (1 - s) * one-hot + s / classes, worked here in float64
    logits = np.random.default_rng(0).standard_normal((5, 10))
    y = np.array([0, 3, 9, 3, 1])
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    target = np.full((5, 10), 0.2 / 10)
    target[np.arange(5), y] += 0.8
    want = -(target * logp).sum(1).mean()
    got = run.loss_fn(cnnlab.tensor(logits), cnnlab.tensor(y)).item()
    assert abs(got - want) < 1e-9
    with pytest.raises(SettingError) as e:
        Recipe(nesterov=True).check()                       # Adam has no Nesterov switch here
    assert e.value.setting == "nesterov"
    with pytest.raises(SettingError) as e:
        Recipe(label_smoothing=1.0).check()
    assert e.value.setting == "label_smoothing"


def test_mirror_validation_scores_the_mean_of_each_image_and_its_mirror():
    from cnnlab.train import evaluate

    cnnlab.manual_seed(0)
    model = models.create("simplecnn", input_size=8)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 12)
    model.eval()
    with cnnlab.no_grad():
        plain = model(cnnlab.tensor(x)).numpy()
        mirror = model(cnnlab.tensor(np.ascontiguousarray(x[..., ::-1]))).numpy()
    mean = (plain + mirror) / 2
    assert not np.allclose(plain, mirror, atol=1e-3)      # the mirror really is another input
    loader = DataLoader(ArrayDataset(x, y, [str(i) for i in range(10)]), batch_size=5)
    r = evaluate(model, loader, flip=True)
    assert r.accuracy == np.mean(mean.argmax(1) == y)
    logp = mean - mean.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    assert abs(r.loss - float(-logp[np.arange(12), y].mean())) < 1e-5
    assert evaluate(model, loader).accuracy == np.mean(plain.argmax(1) == y)
