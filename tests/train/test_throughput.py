"""img/s is wall-clock throughput: images over the wall time the run took to train them
(slow data loading and callbacks count; pauses do not), the same figure the CLI's bar,
its epoch line and the app's readout show."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from cnnlab import nn, optim
from cnnlab.data import ArrayDataset, DataLoader
from cnnlab.train import Callback, Run

BATCH, SLOW = 8, 0.03   # each batch takes at least 30 ms to load


class SlowLoader:
    """A DataLoader whose every batch takes SLOW seconds to arrive (a slow disk)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            time.sleep(SLOW)
            yield batch


class Record(Callback):
    def __init__(self) -> None:
        self.steps, self.epochs, self.ends = [], [], []

    def on_step_end(self, run, m) -> None:
        self.steps.append(m)
        self.ends.append(time.perf_counter())

    def on_epoch_end(self, run, m) -> None:
        self.epochs.append(m)


def make_run(record: Record, n: int = 96, epochs: int = 2) -> Run:
    rng = np.random.default_rng(0)
    data = ArrayDataset((rng.random((n, 1, 8, 8)) * 255).astype(np.uint8), rng.integers(0, 3, n), ["a", "b", "c"])
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    loader = SlowLoader(DataLoader(data, BATCH))
    return Run(model, loader, optim.SGD(model.parameters(), lr=0.01), epochs=epochs, callbacks=[record])


def test_images_per_second_is_wall_clock_not_compute_time():
    make_run(Record()).run()   # a first run loads the kernels
    record = Record()
    run = make_run(record)
    start = time.perf_counter()
    run.run()
    # the truth, from outside: images over the wall time to their last step (24 steps of
    # ~31 ms: the one-second window still holds them all)
    truth = BATCH * 24 / (record.ends[23] - start)
    assert truth < BATCH / SLOW   # the loader holds it back
    assert record.steps[23].images_per_s == pytest.approx(truth, rel=0.15)
    second = BATCH * 12 / (record.ends[23] - record.ends[11])
    assert record.epochs[1].images_per_s == pytest.approx(second, rel=0.15)
    # the old figure timed the step's arithmetic only: many times this on a 64-input linear model
    assert all(m.images_per_s < 1.2 * BATCH / SLOW for m in record.steps + record.epochs)


def test_a_pause_does_not_count_as_training_time():
    record = Record()
    run = make_run(record, epochs=1)

    class PauseOnce(Callback):
        def on_step_end(self, run, m) -> None:
            if m.step == 4:
                run.pause()
                threading.Timer(0.6, run.resume).start()

    run.callbacks.append(PauseOnce())
    run.run()
    after = record.steps[4].images_per_s   # the step right after the 0.6 s pause
    assert after > 0.5 * BATCH / SLOW   # a paused 0.6 s counted would give under BATCH / 0.6
    assert record.epochs[0].images_per_s > 0.5 * BATCH / SLOW
