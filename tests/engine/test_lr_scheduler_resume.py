"""Every scheduler and optimizer survives a training checkpoint: a run stopped, saved
and resumed takes the same rates and losses as one that never stopped."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
from cnnlab import nn, optim
from cnnlab.data import ArrayDataset, DataLoader
from cnnlab.optim import lr_scheduler as ls
from cnnlab.train import Run, resume, save_checkpoint


def data() -> ArrayDataset:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 48)
    x = (rng.random((48, 1, 6, 6)) * 80).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 0, 2 * c:2 * c + 2, 1:5] = 255
    return ArrayDataset(x, y, ["a", "b", "c"])


def model() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 3))


CASES = {   # (optimizer, scheduler or None, when it steps); 3 steps an epoch, 4 epochs
    "multistep": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                  lambda o: ls.MultiStepLR(o, milestones=[1, 3], gamma=0.3), "epoch"),
    "exponential": (lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
                    lambda o: ls.ExponentialLR(o, gamma=0.5), "epoch"),
    "cosine": (lambda p: optim.Adagrad(p, lr=0.1), lambda o: ls.CosineAnnealingLR(o, T_max=3), "epoch"),
    "one-cycle-sgd": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                      lambda o: ls.OneCycleLR(o, max_lr=0.2, epochs=4, steps_per_epoch=3), "step"),
    "one-cycle-adam": (lambda p: optim.Adam(p, lr=0.01),
                       lambda o: ls.OneCycleLR(o, max_lr=0.05, total_steps=12, three_phase=True), "step"),
    "adadelta": (lambda p: optim.Adadelta(p), None, "epoch"),
}


@pytest.mark.parametrize("name", CASES)
def test_resumed_run_takes_the_same_rates_and_losses(name, tmp_path):
    make_opt, make_sched, interval = CASES[name]

    def start(epochs):
        cnnlab.manual_seed(4)
        m = model()
        opt = make_opt(m.parameters())
        sched = make_sched(opt) if make_sched else None
        return Run(m, DataLoader(data(), 16, shuffle=True, seed=2), opt, epochs=epochs, scheduler=sched,
                   scheduler_interval=interval)

    whole = start(4)
    whole.run()
    first = start(2)
    first.run()
    save_checkpoint(tmp_path / "ck.npz", first)
    rest = resume(tmp_path / "ck.npz", DataLoader(data(), 16, shuffle=True, seed=2), epochs=4, model=model())
    assert type(rest.optimizer) is type(whole.optimizer)
    rest.run()
    assert [s["lr"] for s in rest.history.steps] == [s["lr"] for s in whole.history.steps]
    assert [s["loss"] for s in rest.history.steps] == [s["loss"] for s in whole.history.steps]
    if make_sched is not None:
        assert type(rest.scheduler) is type(whole.scheduler)
        assert rest.scheduler.last_epoch == whole.scheduler.last_epoch


def test_a_lambda_schedule_is_refused_when_the_checkpoint_is_saved(tmp_path):
    m = model()
    opt = optim.SGD(m.parameters(), lr=0.1)
    run = Run(m, DataLoader(data(), 16), opt, epochs=1, scheduler=ls.LambdaLR(opt, lambda e: 0.5 ** e))
    with pytest.raises(TypeError, match="LambdaLR cannot be saved in a checkpoint"):
        save_checkpoint(tmp_path / "ck.npz", run)
