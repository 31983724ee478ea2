"""Freed device buffers are reused: after its first steps a training loop allocates nothing."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab import _config, optim


def _backend():
    from cnnlab.backends import cuda_alloc, cuda_array

    return cuda_alloc, cuda_array


def _delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in before}


def test_a_freed_buffer_serves_the_next_request_of_its_size_and_dtype():
    alloc, A = _backend()
    gc.collect()
    a = A.new((5, 7), np.float32)
    del a
    before = alloc.counts()
    b = A.new((7, 5), np.float32)            # same length and dtype: the freed buffer
    c = A.new((35,), np.float64)             # another dtype: a new buffer
    assert _delta(before, alloc.counts()) == dict(launches=0, to_host=0, to_device=0, allocations=1, reuses=1)
    del b, c


def test_uploads_go_into_pooled_buffers_and_read_back_correctly():
    alloc, A = _backend()
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    first = A.from_numpy(x)
    del first
    before = alloc.counts()
    second = A.from_numpy(x[::-1] * 2)
    np.testing.assert_array_equal(A.to_numpy(second), x[::-1] * 2)
    assert _delta(before, alloc.counts()) == dict(launches=0, to_host=1, to_device=1, allocations=0, reuses=1)


def _train(steps: int) -> list[dict]:
    """Counter deltas of each step of a small conv net's training loop, batch uploaded every step."""
    alloc, _ = _backend()
    cnnlab.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8, 3)).to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    per_step = []
    for _ in range(steps):
        x = cnnlab.from_numpy(rng.standard_normal((2, 1, 4, 4)).astype(np.float32))
        y = cnnlab.from_numpy(rng.integers(0, 3, 2).astype(np.int64))
        before = alloc.counts()
        opt.zero_grad()
        loss = F.cross_entropy(model(x.to("cuda")), y.to("cuda"))
        loss.backward()
        opt.step()
        assert np.isfinite(loss.item())
        del loss
        per_step.append(_delta(before, alloc.counts()))
    return per_step


def test_a_training_loop_allocates_nothing_after_its_first_steps(monkeypatch):
    from cnnlab.backends import cuda_nn

    # the label check keeps the latest label uploads alive (on the host's side of the bus);
    # with 2 kept instead of 16, the loop reaches its steady state within this test's steps
    monkeypatch.setattr(cuda_nn, "_LABEL_UPLOADS", 2, raising=False)
    steps = _train(6)
    assert all(s["allocations"] == 0 for s in steps[3:]), steps
    assert all(s["reuses"] > 10 for s in steps[3:]), steps  # every temporary comes from the pool
    assert steps[0]["allocations"] > 10, steps  # the reference: a step's temporaries, allocated once


def test_without_a_pool_every_step_allocates(monkeypatch):
    """The counter is what the test above relies on: with the pool's budget at zero, buffers are not kept."""
    alloc, _ = _backend()
    monkeypatch.setattr(_config, "CUDA_POOL_BYTES", 0)
    alloc.empty_pool()
    steps = _train(3)
    assert all(s["allocations"] > 10 and s["reuses"] == 0 for s in steps), steps


def test_the_pool_stays_within_its_budget(monkeypatch):
    alloc, A = _backend()
    alloc.empty_pool()
    monkeypatch.setattr(_config, "CUDA_POOL_BYTES", 1000)
    arrays = [A.new((100,), np.float32) for _ in range(5)]  # 400 bytes each
    del arrays
    assert alloc.pool_bytes() == 800


@pytest.fixture(autouse=True)
def _fresh_pool():
    yield
    _backend()[0].empty_pool()


def test_empty_cache_hands_the_pooled_buffers_back():
    alloc, A = _backend()
    a = A.new((64,), np.float32)
    del a
    assert alloc.pool_bytes() >= 256
    cnnlab.cuda.empty_cache()
    assert alloc.pool_bytes() == 0
    before = alloc.counts()
    b = A.new((64,), np.float32)
    assert _delta(before, alloc.counts())["allocations"] == 1
    del b
