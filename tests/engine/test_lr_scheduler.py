"""Learning-rate schedules: each sequence against its documented formula (worked here
in float64, no torch needed), against PyTorch's schedulers where torch is installed,
and their state (initial_lr, last_epoch, state_dict, chaining)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
from cnnlab import optim
from cnnlab.optim import lr_scheduler
from cnnlab.optim.lr_scheduler import (CosineAnnealingLR, ExponentialLR, LambdaLR, MultiplicativeLR,
                                       MultiStepLR, OneCycleLR, ReduceLROnPlateau, StepLR)

try:
    import torch as pt
except ImportError:   # CI has no torch: the formulas below still check every schedule
    pt = None
needs_torch = pytest.mark.skipif(pt is None, reason="PyTorch is not installed")
# torch warns that these schedules step without an optimizer step in between; only rates are compared
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")

BASES = (0.1, 0.04)   # two parameter groups with their own rates
EPOCHS = 14


def sgd(lib=cnnlab, bases=BASES, momentum=0.9):
    groups = [{"params": [lib.zeros(1, requires_grad=True)], "lr": lr} for lr in bases]
    opt = (optim if lib is cnnlab else pt.optim).SGD(groups, lr=1.0, momentum=momentum)
    return opt


def rates(make, lib=cnnlab, epochs=EPOCHS, metrics=None, opt=None):
    """Rates of every group after construction and after each of `epochs` steps."""
    opt = opt or sgd(lib)
    sched = make(opt, lib)
    out = [[g["lr"] for g in opt.param_groups]]
    for e in range(epochs):
        if metrics is not None:
            sched.step(metrics[e])
        else:
            sched.step()
        out.append(sched.get_last_lr())
        assert out[-1] == [g["lr"] for g in opt.param_groups]
    return np.array(out)


def ns(lib):
    return lr_scheduler if lib is cnnlab else pt.optim.lr_scheduler


def by_formula(fn, epochs=EPOCHS):
    return np.array([[fn(base, e) for base in BASES] for e in range(epochs + 1)])


SCHEDULES = {
    "step": (lambda o, lib: ns(lib).StepLR(o, step_size=3, gamma=0.1),
             lambda b, e: b * 0.1 ** (e // 3)),
    "multistep": (lambda o, lib: ns(lib).MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.5),
                  lambda b, e: b * 0.5 ** sum(m <= e for m in (2, 5, 5, 9))),
    "exponential": (lambda o, lib: ns(lib).ExponentialLR(o, gamma=0.8),
                    lambda b, e: b * 0.8 ** e),
    "cosine": (lambda o, lib: ns(lib).CosineAnnealingLR(o, T_max=5, eta_min=0.01),   # past T_max it climbs back
               lambda b, e: 0.01 + (b - 0.01) * (1 + math.cos(math.pi * e / 5)) / 2),
    "lambda": (lambda o, lib: ns(lib).LambdaLR(o, lambda e: 1 / (e + 1)),
               lambda b, e: b / (e + 1)),
    "lambda-per-group": (lambda o, lib: ns(lib).LambdaLR(o, [lambda e: 0.5 ** e, lambda e: 0.5 ** e]),
                         lambda b, e: b * 0.5 ** e),
    "multiplicative": (lambda o, lib: ns(lib).MultiplicativeLR(o, lambda e: 0.9),
                       lambda b, e: b * 0.9 ** e),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_sequence_follows_the_formula(name):
    make, formula = SCHEDULES[name]
    np.testing.assert_allclose(rates(make), by_formula(formula), rtol=1e-12, atol=1e-15)


@needs_torch
@pytest.mark.parametrize("name", SCHEDULES)
def test_sequence_equals_pytorchs(name):
    make, _ = SCHEDULES[name]
    np.testing.assert_allclose(rates(make), rates(make, pt), rtol=1e-14, atol=0)


def one_cycle_by_hand(step, three_phase=False, linear=False):
    """total 10, max_lr 1, div 10, final_div 100: from 0.1 up to 1 over steps 0..2, then down
    to 0.001 at step 9 (three_phase: back to 0.1 at step 4, then to 0.001); momentum mirrors it."""
    def anneal(a, b, pct):
        return a + (b - a) * pct if linear else b + (a - b) * (1 + math.cos(math.pi * pct)) / 2
    if step <= 2:
        return anneal(0.1, 1.0, step / 2), anneal(0.95, 0.85, step / 2)
    if three_phase:
        if step <= 4:
            return anneal(1.0, 0.1, (step - 2) / 2), anneal(0.85, 0.95, (step - 2) / 2)
        return anneal(0.1, 0.001, (step - 4) / 5), 0.95
    return anneal(1.0, 0.001, (step - 2) / 7), anneal(0.85, 0.95, (step - 2) / 7)


@pytest.mark.parametrize("kw", [dict(), dict(three_phase=True), dict(anneal_strategy="linear")], ids=str)
def test_one_cycle_by_hand(kw):
    opt = sgd(bases=(0.5,))
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=10, div_factor=10, final_div_factor=100, **kw)
    got = [(opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"])]
    for _ in range(9):
        sched.step()
        got.append((opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]))
    hand = [one_cycle_by_hand(s, kw.get("three_phase", False), "anneal_strategy" in kw) for s in range(10)]
    np.testing.assert_allclose(got, hand, rtol=1e-12, atol=1e-15)
    assert opt.param_groups[0]["initial_lr"] == 0.1 and opt.param_groups[0]["min_lr"] == pytest.approx(0.001)
    sched.step()                            # PyTorch allows one step past the end (step 10 of 10)
    with pytest.raises(ValueError, match="total_steps is 10"):
        sched.step()


def test_one_cycle_needs_a_length_and_cycles_adams_beta1():
    p = [nn.Parameter(cnnlab.ones(1))]
    with pytest.raises(ValueError, match="total_steps, or epochs and steps_per_epoch"):
        OneCycleLR(optim.Adam(p), max_lr=0.1)
    opt = optim.Adam(p, betas=(0.5, 0.99))
    sched = OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=5)
    assert sched.total_steps == 10 and opt.param_groups[0]["betas"] == (0.95, 0.99)
    with pytest.raises(ValueError, match="cycle_momentum"):
        OneCycleLR(optim.Adagrad(p), max_lr=0.1, total_steps=5)


ONE_CYCLES = {
    "sgd": (lambda lib: sgd(lib), dict(max_lr=[1.0, 0.5], total_steps=EPOCHS + 1)),
    "sgd-3phase-linear": (lambda lib: sgd(lib), dict(max_lr=0.3, epochs=3, steps_per_epoch=5, pct_start=0.25,
                                                     three_phase=True, anneal_strategy="linear")),
    "adam": (lambda lib: (optim if lib is cnnlab else pt.optim).Adam([lib.zeros(1, requires_grad=True)]),
             dict(max_lr=0.01, total_steps=20, base_momentum=0.8, max_momentum=0.9, div_factor=5.0)),
}


@needs_torch
@pytest.mark.parametrize("name", ONE_CYCLES)
def test_one_cycle_equals_pytorchs(name):
    make_opt, kw = ONE_CYCLES[name]

    def trace(lib):
        opt = make_opt(lib)
        sched = ns(lib).OneCycleLR(opt, **kw)
        out = []
        for _ in range(EPOCHS):
            g = opt.param_groups
            out.append([x["lr"] for x in g] + [x.get("momentum", x.get("betas", (0,))[0]) for x in g])
            sched.step()
        return np.array(out)

    np.testing.assert_allclose(trace(cnnlab), trace(pt), rtol=1e-14, atol=0)


PLATEAUS = {
    # patience 2, cooldown 1: the rate halves on the 3rd bad epoch, the cooldown epoch does not count
    "min-rel": (dict(factor=0.5, patience=2, cooldown=1), [1.0] + [0.9] * 9,
                [1, 1, 1, 1, 1, .5, .5, .5, .5, .25, .25]),
    # max, absolute threshold 0.1, no patience, floored at min_lr, the floor then holds
    "max-abs-floor": (dict(mode="max", threshold_mode="abs", threshold=0.1, patience=0, factor=0.1, min_lr=0.05),
                      [1.0, 1.05, 1.2, 1.25, 0.0], [1, 1, .1, .1, .05, .05]),
}


@pytest.mark.parametrize("name", PLATEAUS)
def test_plateau_worked_by_hand(name):
    kw, metrics, want = PLATEAUS[name]
    got = rates(lambda o, lib: ns(lib).ReduceLROnPlateau(o, **kw), opt=sgd(bases=(1.0,)), epochs=len(metrics),
                metrics=metrics)
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-15)


@needs_torch
@pytest.mark.parametrize("kw", [dict(), dict(mode="max", factor=0.3, patience=1, threshold=0.05),
                                dict(patience=0, cooldown=2, min_lr=[0.01, 0.02], eps=1e-3)], ids=str)
def test_plateau_equals_pytorchs(kw):
    metrics = list(np.random.default_rng(3).random(40))   # a noisy metric that plateaus now and then
    make = lambda o, lib: ns(lib).ReduceLROnPlateau(o, **kw)   # noqa: E731
    np.testing.assert_allclose(rates(make, epochs=40, metrics=metrics),
                               rates(make, pt, epochs=40, metrics=metrics), rtol=1e-15)


def test_plateau_takes_a_tensor_metric_and_needs_one():
    opt = sgd(bases=(1.0,))
    sched = ReduceLROnPlateau(opt, patience=0)
    sched.step(cnnlab.tensor(1.0))
    sched.step(cnnlab.tensor(2.0))
    assert sched.get_last_lr() == [0.1]
    with pytest.raises(TypeError):
        sched.step()
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(opt, factor=1.0)


def test_chained_schedulers_multiply_as_in_pytorch():
    """StepLR and ExponentialLR on one optimizer: each step scales the current rate."""
    def chain(lib):
        opt = sgd(lib)
        a, b = ns(lib).StepLR(opt, step_size=2, gamma=0.5), ns(lib).ExponentialLR(opt, gamma=0.9)
        out = []
        for _ in range(8):
            a.step()
            b.step()
            out.append([g["lr"] for g in opt.param_groups])
        return np.array(out)

    got = chain(cnnlab)
    np.testing.assert_allclose(got, by_formula(lambda base, e: base * 0.5 ** (e // 2) * 0.9 ** e, 8)[1:],
                               rtol=1e-12)
    if pt is not None:
        np.testing.assert_allclose(got, chain(pt), rtol=1e-14)


def test_initial_lr_last_epoch_and_the_deprecated_epoch_argument():
    opt = sgd()
    sched = StepLR(opt, step_size=2, gamma=0.1)
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASES) and sched.last_epoch == 0
    assert sched.base_lrs == list(BASES)
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(5)                      # the closed form: base * 0.1 ** (5 // 2)
    assert sched.last_epoch == 5
    np.testing.assert_allclose(sched.get_last_lr(), [b * 0.01 for b in BASES], rtol=1e-12)
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(sgd(), step_size=2, last_epoch=3)
    # made with last_epoch on an optimizer that knows its initial_lr: its step 0 keeps the
    # optimizer's rate (PyTorch's resume), the next steps scale it by the cosine's ratio
    before = [g["lr"] for g in opt.param_groups]
    cos = CosineAnnealingLR(opt, T_max=4, last_epoch=1)
    assert cos.last_epoch == 2 and cos.get_last_lr() == before
    cos.step()
    ratio = (1 + math.cos(math.pi * 3 / 4)) / (1 + math.cos(math.pi * 2 / 4))
    np.testing.assert_allclose(cos.get_last_lr(), [lr * ratio for lr in before], rtol=1e-12)


STATEFUL = {
    "step": lambda o: StepLR(o, step_size=2, gamma=0.5),
    "multistep": lambda o: MultiStepLR(o, milestones=[1, 3, 3], gamma=0.3),
    "exponential": lambda o: ExponentialLR(o, gamma=0.7),
    "cosine": lambda o: CosineAnnealingLR(o, T_max=3),
    "one-cycle": lambda o: OneCycleLR(o, max_lr=0.5, total_steps=12, three_phase=True),
    "plateau": lambda o: ReduceLROnPlateau(o, patience=0, cooldown=1),
}
METRIC = [3.0, 2.0, 2.5, 2.5, 1.0, 1.5, 1.5, 1.5, 0.5, 0.6]


@pytest.mark.parametrize("name", STATEFUL)
def test_state_dict_through_a_file_continues_identically(name, tmp_path):
    """Run 4 steps, save (optimizer + scheduler type, config and state, as checkpoints do),
    rebuild from the file in checkpoint order and go on: the same rates as without a break."""
    make = STATEFUL[name]

    def advance(sched, opt, start, stop):
        out = []
        for e in range(start, stop):
            sched.step(METRIC[e]) if isinstance(sched, ReduceLROnPlateau) else sched.step()
            out.append([g["lr"] for g in opt.param_groups] + [g["momentum"] for g in opt.param_groups])
        return out

    opt = sgd()
    sched = make(opt)
    whole = advance(sched, opt, 0, 10)
    opt = sgd()
    sched = make(opt)
    first = advance(sched, opt, 0, 4)
    cnnlab.save({"opt": opt.state_dict(), "type": type(sched).__name__, "kwargs": sched.config(),
                 "state": sched.state_dict()}, tmp_path / "s.npz")
    saved = cnnlab.load(tmp_path / "s.npz")
    opt2 = sgd(bases=(9.0, 9.0), momentum=0.0)
    opt2.load_state_dict(saved["opt"])
    sched2 = getattr(lr_scheduler, saved["type"])(opt2, **saved["kwargs"])
    sched2.load_state_dict(saved["state"])
    assert sched2.last_epoch == sched.last_epoch and sched2.get_last_lr() == sched.get_last_lr()
    assert [g["momentum"] for g in opt2.param_groups] == [g["momentum"] for g in opt.param_groups]
    assert first + advance(sched2, opt2, 4, 10) == whole


def test_state_dict_of_a_lambda_schedule_and_why_checkpoints_refuse_it():
    class Halve:
        def __init__(self):
            self.factor = 0.5

        def __call__(self, e):
            return self.factor ** e

    opt = sgd()
    fn = Halve()
    sched = LambdaLR(opt, [fn, lambda e: 1.0])
    sched.step()
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"factor": 0.5}, None] and state["last_epoch"] == 1
    fn.factor = 0.1
    sched.load_state_dict(state)
    assert fn.factor == 0.5 and "optimizer" not in state
    for s in (sched, MultiplicativeLR(opt, lambda e: 0.9)):
        with pytest.raises(TypeError, match="cannot be saved in a checkpoint.*StepLR"):
            s.config()


def test_checkpoint_of_older_versions_still_loads():
    """Before this package a scheduler saved only last_epoch and base_lrs."""
    opt = sgd()
    sched = StepLR(opt, step_size=2, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.load_state_dict({"last_epoch": 5, "base_lrs": list(BASES)})
    np.testing.assert_allclose(sched.get_last_lr(), [b * 0.25 for b in BASES])
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [b * 0.125 for b in BASES])


def test_old_name_and_package_layout():
    import cnnlab.optim.lr_scheduler as ls
    assert ls.StepLR is StepLR and optim.lr_scheduler is ls and ls._LRScheduler is ls.LRScheduler
    with pytest.raises(ImportError):
        import cnnlab.lr_scheduler  # noqa: F401 - one home: cnnlab.optim.lr_scheduler
    with pytest.raises(TypeError, match="not an Optimizer"):
        StepLR(object(), step_size=1)
