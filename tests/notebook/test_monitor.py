"""monitor(): a fit callback whose widgets show the run's own numbers, redrawn at a
throttled rate, with the probe's feature maps and the confusion matrix."""
from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

import cnnlab  # noqa: E402
from cnnlab import nn, optim  # noqa: E402
from cnnlab.data import DataLoader, TensorDataset  # noqa: E402
from cnnlab.notebook import monitor  # noqa: E402
from cnnlab.train import fit, probe  # noqa: E402


def _run(every: float, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.random((96, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).astype(np.int64)   # top half brighter?
    cnnlab.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 64, 2))
    mon = monitor(layers=["0"], probe=x[0], classes=["bottom", "top"], every=every, **kwargs)
    mon._shown = True   # no display() outside a notebook
    data = TensorDataset(cnnlab.tensor(x), cnnlab.tensor(y))
    history = fit(model, DataLoader(data, batch_size=8, shuffle=True, seed=0), optim.SGD(model.parameters(), lr=0.1),
                  epochs=2, val_loader=DataLoader(data, batch_size=32), callbacks=[mon])
    return mon, history, model, x


def test_the_monitor_shows_the_runs_numbers():
    mon, history, model, x = _run(every=0.0)
    assert mon.losses == [s["loss"] for s in history.steps]
    assert mon.bar.value == mon.bar.max == 24 and mon.bar.bar_style == "success"
    last = history.epochs[-1]
    assert f"validation accuracy {100 * last['val_accuracy']:.2f}%" in mon.label.value
    # the confusion matrix drawn is the last epoch's, row by row
    cells = [int(v) for v in re.findall(r"<td[^>]*>(\d+)</td>", mon.matrix.value)]
    assert cells == mon.confusion.ravel().tolist() and sum(cells) == 96
    assert np.trace(mon.confusion) / 96 == pytest.approx(last["val_accuracy"])
    # feature maps: the last probe is of the trained model (probes ran every few steps)
    assert mon.activations["0"].shape == (1, 3, 8, 8) and "data:image/png;base64," in mon.maps.value
    assert np.allclose(mon.activations["0"], probe(model, cnnlab.tensor(x[:1]), ["0"])["0"], atol=1e-6)
    assert "<polyline" in mon.curves.value and mon.curves.value.count("<circle") == 2   # one dot per epoch


def test_redraws_are_throttled():
    fast, _, _, _ = _run(every=0.0)
    slow, _, _, _ = _run(every=60.0)
    assert fast.draws >= 24
    assert slow.draws <= 2 + 2 + 1   # the start, each epoch's end and the run's end
