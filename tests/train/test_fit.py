"""The training loop: learning, controls, NaN guard, checkpoints, reproducibility."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import cnnlab
from cnnlab import models, nn, optim
from cnnlab.data import ArrayDataset, DataLoader, get_dataset
from cnnlab.train import Callback, Run, TrainingDiverged, evaluate, fit, probe, resume, save_checkpoint


def bars(n: int, seed: int) -> ArrayDataset:
    """Learnable toy images: a bright bar in one of four places (the class)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = (rng.random((n, 1, 12, 12)) * 60).astype(np.uint8)
    for i, c in enumerate(y):
        r = 1 + 3 * c
        x[i, 0, r:r + 2, 2:10] = 255
    return ArrayDataset(x, y, ["row1", "row4", "row7", "row10"])


def tiny() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.1),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 4))


def losses(history):
    return [s["loss"] for s in history.steps]


def test_fit_on_offline_default_learns():
    cnnlab.manual_seed(0)
    train = get_dataset("mnist-sample")
    val = get_dataset("mnist-sample", train=False)
    model = models.create("convnet")
    history = fit(model, DataLoader(train, 64, shuffle=True, seed=0), optim.Adam(model.parameters(), 1e-3),
                  epochs=1, val_loader=DataLoader(val, 500))
    first = np.mean(losses(history)[:20])
    last = np.mean(losses(history)[-20:])
    assert len(history.steps) == math.ceil(len(train) / 64)
    assert last < 0.5 * first
    assert history.epochs[0]["val_accuracy"] > 0.8          # chance is 0.1


def test_evaluate_confusion_matches_predictions():
    cnnlab.manual_seed(1)
    ds = bars(64, 1)
    model = tiny()
    r = evaluate(model, DataLoader(ds, 16))
    x, y = next(iter(DataLoader(ds, 64)))
    model.eval()
    with cnnlab.no_grad():
        pred = model(x).argmax(1).numpy()
    expected = np.zeros((4, 4), np.int64)
    for t, p in zip(y.numpy(), pred):
        expected[t, p] += 1
    assert np.array_equal(r.confusion, expected)
    assert r.accuracy == pytest.approx(np.mean(pred == y.numpy()))


def test_same_seed_same_losses():
    def once():
        cnnlab.manual_seed(3)
        model = tiny()
        return losses(fit(model, DataLoader(bars(96, 0), 16, shuffle=True, seed=5),
                          optim.SGD(model.parameters(), 0.05, momentum=0.9), epochs=2))
    assert once() == once()


def test_resume_continues_exactly(tmp_path):
    data = bars(96, 0)

    def setup():
        cnnlab.manual_seed(7)
        model = tiny()
        return model, DataLoader(data, 16, shuffle=True, seed=11), optim.Adam(model.parameters(), 1e-2)

    model, loader, opt = setup()
    full = losses(fit(model, loader, opt, epochs=3))

    class StopAt(Callback):
        def on_step_end(self, run, m):
            if m.step == 8:          # mid-epoch (6 batches per epoch)
                run.stop()

    model, loader, opt = setup()
    run = Run(model, loader, opt, epochs=3, callbacks=[StopAt()])
    run.run()
    assert run.status == "stopped" and run.step == 8
    save_checkpoint(tmp_path / "ck.npz", run)
    cnnlab.manual_seed(999)  # whatever happens in between must not matter
    resumed = resume(tmp_path / "ck.npz", DataLoader(data, 16, shuffle=True, seed=11), epochs=3, model=tiny())
    resumed.run()
    assert losses(resumed.history) == full


def test_resume_refuses_other_architecture(tmp_path):
    cnnlab.manual_seed(0)
    model = tiny()
    run = Run(model, DataLoader(bars(32, 0), 16), optim.SGD(model.parameters(), 0.1), epochs=1)
    run.run()
    save_checkpoint(tmp_path / "ck.npz", run)
    other = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 6 * 6, 4))
    with pytest.raises(ValueError, match="0.weight"):
        resume(tmp_path / "ck.npz", DataLoader(bars(32, 0), 16), epochs=2, model=other)


def test_corrupt_checkpoint_refused(tmp_path):
    bad = tmp_path / "ck.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="ck.npz"):
        resume(bad, DataLoader(bars(32, 0), 16), epochs=1)


def test_nan_loss_stops_and_keeps_last_good_weights():
    cnnlab.manual_seed(0)
    data = bars(64, 0)
    x = data.images.copy()

    class Poisoned(ArrayDataset):
        def get_batch(self, indices, rng):
            images, labels = super().get_batch(indices, rng)
            if self.calls == 2:
                images = images.copy()
                images[0, 0, 0, 0] = np.nan
            self.calls += 1
            return images, labels

    poisoned = Poisoned(x, data.targets, data.classes)
    poisoned.calls = 0
    model = tiny()
    seen = {}

    class Keep(Callback):
        def on_step_end(self, run, m):
            seen[m.step] = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    run = Run(model, DataLoader(poisoned, 16), optim.SGD(model.parameters(), 0.1), epochs=1, callbacks=[Keep()])
    with pytest.raises(TrainingDiverged, match="step 3"):
        run.run()
    # the weights are those that gave the last finite loss (before step 2's update)
    before_step2 = seen[1]
    for k, v in model.state_dict().items():
        assert np.array_equal(v.numpy(), before_step2[k]), k
    assert run.status == "diverged"


def test_pause_resume_stop_from_another_thread():
    cnnlab.manual_seed(0)
    model = tiny()
    steps = []
    paused_at = threading.Event()

    class Ctl(Callback):
        def on_step_end(self, run, m):
            steps.append(m.step)
            if m.step == 2:
                run.pause()
                paused_at.set()

    run = Run(model, DataLoader(bars(160, 0), 16), optim.SGD(model.parameters(), 0.05), epochs=500,
              callbacks=[Ctl()])
    worker = threading.Thread(target=run.run)
    worker.start()
    assert paused_at.wait(30)
    worker.join(0.3)
    assert steps == [1, 2] and run.paused        # nothing happens while paused
    run.step_once(2)                              # single-stepping: exactly two more
    deadline = threading.Event()
    for _ in range(600):
        if len(steps) == 4:
            break
        deadline.wait(0.05)
    worker.join(0.3)
    assert steps == [1, 2, 3, 4] and run.paused
    run.set_lr(0.01)
    run.resume()
    for _ in range(600):  # until resumed training has made progress (slow machines too)
        if len(steps) > 6:
            break
        deadline.wait(0.05)
    run.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert run.status == "stopped"
    assert run.history.steps[-1]["lr"] == 0.01
    assert 6 < len(steps) < 5000


def test_probes_and_snapshots_every_n_steps():
    cnnlab.manual_seed(0)
    model = tiny()
    data = bars(64, 0)
    got = []

    class P(Callback):
        probe_every = 2
        probe_layers = ("0", "2")
        probe_images = cnnlab.from_numpy(data.images[:3].astype(np.float32) / 255)
        snapshot_every = 4

        def on_probe(self, run, acts):
            got.append(("probe", run.step, {k: v.shape for k, v in acts.items()}))

        def on_snapshot(self, run, params, grads):
            got.append(("snap", run.step, sorted(params), sorted(grads)))

    fit(model, DataLoader(data, 16), optim.SGD(model.parameters(), 0.1), epochs=1, callbacks=[P()])
    probes = [g for g in got if g[0] == "probe"]
    snaps = [g for g in got if g[0] == "snap"]
    assert [p[1] for p in probes] == [2, 4]
    assert probes[0][2] == {"0": (3, 4, 12, 12), "2": (3, 4, 6, 6), "output": (3, 4)}
    assert [s[1] for s in snaps] == [4]
    assert snaps[0][2] == ["0.bias", "0.weight", "5.bias", "5.weight"] == snaps[0][3]
    # a probe sees eval mode: dropout off, so two probes of the same weights agree
    a = probe(model, P.probe_images, ["2"])["2"]
    b = probe(model, P.probe_images, ["2"])["2"]
    assert np.array_equal(a, b)


def test_lr_schedules():
    model = tiny()
    opt = optim.SGD(model.parameters(), lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt = optim.SGD(model.parameters(), lr=1.0)
    cos = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    got = []
    for _ in range(4):
        cos.step()
        got.append(opt.param_groups[0]["lr"])
    assert got == pytest.approx([0.8535534, 0.5, 0.1464466, 0.0], abs=1e-6)


def test_resume_keeps_the_learning_rate_schedule(tmp_path):
    data = bars(32, 0)

    def setup():
        cnnlab.manual_seed(2)
        model = tiny()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        return model, opt, optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    model, opt, sched = setup()
    full = Run(model, DataLoader(data, 16, shuffle=True, seed=1), opt, epochs=3, scheduler=sched)
    full.run()
    model, opt, sched = setup()
    first = Run(model, DataLoader(data, 16, shuffle=True, seed=1), opt, epochs=1, scheduler=sched)
    first.run()
    save_checkpoint(tmp_path / "ck.npz", first)
    rest = resume(tmp_path / "ck.npz", DataLoader(data, 16, shuffle=True, seed=1), epochs=3, model=tiny())
    rest.run()
    assert [s["lr"] for s in rest.history.steps] == [s["lr"] for s in full.history.steps]
    assert rest.history.steps[-1]["lr"] == 0.1 * 0.5 ** 2
    assert losses(rest.history) == losses(full.history)


def test_warmup_cosine_by_hand():
    model = tiny()
    opt = optim.SGD(model.parameters(), lr=2.0)
    sched = optim.lr_scheduler.WarmupCosineLR(opt, T_max=10, warmup=2)
    got = [opt.param_groups[0]["lr"]]          # set when made: step 0 warms up already
    for _ in range(11):
        sched.step()
        got.append(opt.param_groups[0]["lr"])
    # warm-up 2 * 1/2, 2 * 2/2; then 1 + cos(pi * k / 8) for k = 0..7; past the end it holds step 9's rate
    hand = [1.0, 2.0] + [1 + math.cos(math.pi * k / 8) for k in range(8)] + [1 + math.cos(math.pi * 7 / 8)] * 2
    assert got == pytest.approx(hand, abs=1e-12)
    assert got[6] == pytest.approx(1.0)         # halfway down the cosine: half the rate
    with pytest.raises(ValueError, match="T_max must be >= 1"):
        optim.lr_scheduler.WarmupCosineLR(opt, T_max=0)


def test_per_step_schedule_and_its_resume(tmp_path):
    data = bars(48, 0)   # 3 steps an epoch at batch 16

    def setup():
        cnnlab.manual_seed(2)
        model = tiny()
        opt = optim.Adam(model.parameters(), lr=0.01)
        return model, opt, optim.lr_scheduler.WarmupCosineLR(opt, T_max=9, warmup=1)

    model, opt, sched = setup()
    full = Run(model, DataLoader(data, 16, shuffle=True, seed=1), opt, epochs=3, scheduler=sched,
               scheduler_interval="step")
    full.run()
    # every step used its own rate: 0.01 at step 0 (warm-up of one step), then the cosine
    hand = [0.01] + [0.005 * (1 + math.cos(math.pi * k / 8)) for k in range(8)]
    assert [s["lr"] for s in full.history.steps] == pytest.approx(hand, rel=1e-12)
    # stopped after 4 steps (mid-epoch), saved, resumed: the same rates and losses
    model, opt, sched = setup()
    first = Run(model, DataLoader(data, 16, shuffle=True, seed=1), opt, epochs=3, scheduler=sched,
                scheduler_interval="step")

    class StopAfter4(Callback):
        def on_step_end(self, run, m):
            if run.step == 4:
                run.stop()
    first.callbacks.append(StopAfter4())
    first.run()
    assert first.step == 4
    save_checkpoint(tmp_path / "ck.npz", first)
    rest = resume(tmp_path / "ck.npz", DataLoader(data, 16, shuffle=True, seed=1), epochs=3, model=tiny())
    assert rest.scheduler_interval == "step"
    rest.run()
    assert [s["lr"] for s in rest.history.steps] == [s["lr"] for s in full.history.steps]
    assert losses(rest.history) == losses(full.history)
    with pytest.raises(ValueError, match="scheduler_interval"):
        Run(model, DataLoader(data, 16), opt, scheduler=sched, scheduler_interval="batch")


class WatchedPlateau(optim.lr_scheduler.ReduceLROnPlateau):
    """ReduceLROnPlateau that remembers every metric it was stepped with."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[float] = []

    def step(self, metrics, epoch=None):
        self.seen.append(float(metrics))
        super().step(metrics, epoch)


def test_plateau_is_stepped_with_the_validation_loss_or_the_training_loss():
    data, val = bars(48, 0), bars(24, 5)
    cnnlab.manual_seed(3)
    model = tiny()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = WatchedPlateau(opt, patience=0, threshold=0.5)   # a 50% drop needed: most epochs are bad
    history = fit(model, DataLoader(data, 16), opt, epochs=4, val_loader=DataLoader(val, 24), scheduler=sched)
    assert sched.seen == [e["val_loss"] for e in history.epochs]
    # the rates the run used follow PyTorch's rules applied to those losses, replayed by hand:
    # with patience 0, every epoch not 50% below the best so far cuts the rate by factor 0.1
    best, lr, hand = math.inf, 0.1, []
    for v in sched.seen:
        hand.append(lr)
        if v < best * 0.5:
            best = v
        else:
            lr *= 0.1
    assert [history.steps[3 * k]["lr"] for k in range(4)] == pytest.approx(hand, rel=1e-12)
    assert opt.param_groups[0]["lr"] == pytest.approx(lr, rel=1e-12) and lr < 0.1   # it did cut the rate

    cnnlab.manual_seed(3)
    model = tiny()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = WatchedPlateau(opt)
    history = fit(model, DataLoader(data, 16), opt, epochs=2, scheduler=sched)   # no validation set
    assert sched.seen == pytest.approx([e["train_loss"] for e in history.epochs], rel=1e-12)
    per_step = WatchedPlateau(opt)
    history = fit(model, DataLoader(data, 16), opt, epochs=1, scheduler=per_step, scheduler_interval="step")
    assert per_step.seen == losses(history)


def test_plateau_matches_pytorch_on_the_same_losses():
    torch = pytest.importorskip("torch")
    losses_seen = [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.7]
    opt = optim.SGD(tiny().parameters(), lr=1.0)
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    kw = dict(factor=0.5, patience=1, cooldown=1, threshold=0.02, min_lr=0.2)
    ours, theirs = optim.lr_scheduler.ReduceLROnPlateau(opt, **kw), torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, **kw)
    for v in losses_seen:
        ours.step(v)
        theirs.step(v)
        assert opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"]
    assert ref_opt.param_groups[0]["lr"] < 1.0


def test_plateau_resumes_exactly(tmp_path):
    data, val = bars(48, 0), bars(24, 5)   # 3 steps an epoch

    def setup():
        cnnlab.manual_seed(2)
        model = tiny()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        # an improvement must be 1e6 below the best: every epoch after the first is bad, so
        # the rate is cut after epochs 3 and 5 -- the bad-epoch count must survive a resume
        sched = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1, threshold=1e6,
                                                     threshold_mode="abs")
        return model, opt, sched

    def loaders():
        return DataLoader(data, 16, shuffle=True, seed=1), DataLoader(val, 24)

    model, opt, sched = setup()
    full = Run(model, loaders()[0], opt, epochs=6, val_loader=loaders()[1], scheduler=sched)
    full.run()
    epoch_lrs = [full.history.steps[3 * k]["lr"] for k in range(6)]
    assert epoch_lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025], rel=1e-12)
    for stop_at in (2, 7):   # in epoch 1 (nothing seen yet: best is infinite), in epoch 3 (one bad epoch)
        model, opt, sched = setup()
        first = Run(model, loaders()[0], opt, epochs=6, val_loader=loaders()[1], scheduler=sched)

        class Stop(Callback):
            def on_step_end(self, run, m, stop_at=stop_at):
                if run.step == stop_at:
                    run.stop()
        first.callbacks.append(Stop())
        first.run()
        save_checkpoint(tmp_path / "ck.npz", first)
        rest = resume(tmp_path / "ck.npz", loaders()[0], epochs=6, model=tiny(), val_loader=loaders()[1])
        assert type(rest.scheduler) is optim.lr_scheduler.ReduceLROnPlateau
        assert rest.scheduler.num_bad_epochs == sched.num_bad_epochs and rest.scheduler.best == sched.best
        rest.run()
        assert [s["lr"] for s in rest.history.steps] == [s["lr"] for s in full.history.steps]
        assert losses(rest.history) == losses(full.history)
        assert [e["val_loss"] for e in rest.history.epochs] == [e["val_loss"] for e in full.history.epochs]
