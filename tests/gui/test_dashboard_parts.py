"""The dashboard's parts alone: the worker, shapes, sessions, PyTorch export, mosaics,
and the guard against PySide6 6.12's reference-count bug."""
from __future__ import annotations

import json
import runpy
import sys
import threading
import time

import numpy as np
import pytest

import cnnlab
from cnnlab import models, optim
from cnnlab.data import DataLoader, Subset, get_dataset
from cnnlab.train import Callback, Run
from cnnlab.export import export_for_pytorch, pytorch_code
from gui.layer_editor import CONVNET_LAYERS
from gui.mosaic import mosaic, vector_tiles
from gui.session import Session, load_session, save_session
from gui.shapes import check_layers, fill_inputs
from gui.worker import Refresh, TrainWorker


def dataset(name: str, train: bool):
    return get_dataset(name, train=train)


def tiny_run(epochs: int = 1, n: int = 128) -> Run:
    cnnlab.manual_seed(0)
    model = models.create("convnet")
    train = DataLoader(Subset(dataset("mnist-sample", True), np.arange(n)), 32, shuffle=True, seed=0)
    val = DataLoader(Subset(dataset("mnist-sample", False), np.arange(64)), 64)
    return Run(model, train, optim.Adam(model.parameters()), epochs=epochs, val_loader=val)


def test_worker_forwards_throttled_events_with_numpy_copies(qtbot, spin):
    run = tiny_run(epochs=2)
    image = dataset("mnist-sample", False)[0][0]
    worker = TrainWorker(run, cnnlab.from_numpy(image[None]), refresh=Refresh(curves=60, pictures=60))
    got = {"steps": [], "probes": [], "snaps": [], "epochs": []}
    worker.sigSteps.connect(lambda s: got["steps"].append(s))
    worker.sigProbe.connect(lambda step, a: got["probes"].append((step, a)))
    worker.sigSnapshot.connect(lambda s: got["snaps"].append(s))
    worker.sigEpoch.connect(lambda m: got["epochs"].append(m))
    with qtbot.waitSignal(worker.sigFinished, timeout=60_000) as done:
        worker.start()
    assert worker.wait(5_000) and done.args == ["finished"]
    spin(50)  # queued signals
    batches = [len(b) for b in got["steps"]]
    assert batches == [1, 3, 4]  # the first step at once, then one batch of metrics per epoch at this refresh
    assert [m.epoch for m in got["epochs"]] == [1, 2] and got["epochs"][-1].confusion.sum() == 64
    assert [s for s, _ in got["probes"]] == [1, 8]  # the first step at once, then the final weights
    step, acts = got["probes"][-1]
    assert acts["conv1"].shape == (1, 16, 28, 28) and acts["output"].shape == (1, 10)
    snap = got["snaps"][-1]
    assert snap.step == 8 and set(snap.grads) == set(snap.params) and "conv1.weight" in snap.state
    snap.state["conv1.weight"][:] = 0  # a copy: the model is untouched
    assert np.abs(run.model.conv1.weight.numpy()).sum() > 0


def test_worker_reports_an_error_and_ends(qtbot, spin):
    run = tiny_run()
    run.train_loader = None  # len(None) fails inside the loop
    worker = TrainWorker(run)
    errors = []
    worker.sigFailed.connect(errors.append)
    with qtbot.waitSignal(worker.sigFinished, timeout=10_000) as done:
        worker.start()
    worker.wait()
    spin(20)
    assert done.args == ["failed"] and "TypeError" in errors[0]


def test_shapes_explain_each_layer():
    rows = check_layers(CONVNET_LAYERS, (1, 28, 28))
    assert [r.out_shape for r in rows] == [(16, 28, 28), (16, 14, 14), (32, 12, 12), (32, 7, 7), (64, 7, 7),
                                           (4, 3, 3), (36,), (10,)]
    assert sum(r.params for r in rows) == 13_686
    assert rows[3].derivation[0] == "H: floor((12 + 2*1 - 1*(2-1) - 1) / 2) + 1 = 7"
    assert rows[6].derivation == ["4 × 3 × 3 = 36"]
    rgb = check_layers(CONVNET_LAYERS, (3, 32, 32))
    assert "layer 0 (Conv2d) expects in_channels=1 but the input is 3×32×32, i.e. 3 channels" in rgb[0].problems
    fixed = check_layers(fill_inputs(CONVNET_LAYERS, (3, 32, 32)), (3, 32, 32))
    assert all(r.ok for r in fixed) and fixed[-1].in_shape == (64,)  # 4 x 4 x 4 after conv4 on 32x32
    pool = check_layers([{"type": "MaxPool2d", "args": {"kernel_size": 2, "padding": 2}}], (1, 8, 8))
    assert "more than half the pooling window" in pool[0].problems[0]


def test_session_round_trip_and_bad_files(tmp_path):
    s = Session(model="custom", layers=CONVNET_LAYERS, data="shapes", lr=0.02, epochs=5, probe=4)
    save_session(tmp_path / "s.json", s)
    assert load_session(tmp_path / "s.json") == s
    (tmp_path / "other.json").write_text(json.dumps({"model": "convnet"}))
    with pytest.raises(ValueError, match="not a cnnlab session file"):
        load_session(tmp_path / "other.json")
    (tmp_path / "neg.json").write_text(json.dumps({"format": "cnnlab-session", "lr": -1}))
    with pytest.raises(ValueError, match="lr must be > 0"):
        load_session(tmp_path / "neg.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_session(tmp_path / "broken.json")


def test_a_version_1_session_file_reopens_as_the_run_it_described(tmp_path):
    # written by the app before the recipe: "dataset", no schedule, no normalisation, lr 1e-3, 3 epochs
    (tmp_path / "old.json").write_text(json.dumps({
        "format": "cnnlab-session", "version": 1, "model": "lenet5", "layers": None, "dataset": "shapes",
        "limit": 128, "optimizer": "sgd", "momentum": 0.8, "batch_size": 16, "device": "cpu", "seed": 3,
        "probe": 2}))
    s = load_session(tmp_path / "old.json")
    assert (s.model, s.data, s.limit, s.optimizer, s.momentum, s.batch_size, s.seed, s.probe) == \
        ("lenet5", "shapes", 128, "sgd", 0.8, 16, 3, 2)
    assert (s.lr, s.epochs, s.schedule, s.normalize, s.augment) == (1e-3, 3, "none", False, False)
    save_session(tmp_path / "new.json", s)  # saved again as version 2, it means the same
    assert json.loads((tmp_path / "new.json").read_text())["version"] == 2
    assert load_session(tmp_path / "new.json") == s


@pytest.mark.parametrize("name", ["convnet", "fcnet", "lenet5", "simplecnn", "cifarcnn", "modern", "layers"])
def test_pytorch_export_runs_in_pytorch_with_the_same_numbers(tmp_path, name):
    torch = pytest.importorskip("torch")
    cnnlab.manual_seed(1)
    if name == "layers":
        model = models.build_sequential(CONVNET_LAYERS)
    else:
        kwargs = {"width": 8} if name == "modern" else {"in_channels": 1} if name in ("simplecnn", "cifarcnn") else {}
        model = models.create(name, input_size=28, **kwargs)
    files = export_for_pytorch(tmp_path, model)
    assert [f.name for f in files] == ["model.py", "weights.npz", "weights.pt"]
    ns = runpy.run_path(str(tmp_path / "model.py"))  # defines `model`, does not load (not __main__)
    torch_model = ns["model"]
    torch_model.load_state_dict(torch.load(tmp_path / "weights.pt"))
    torch_model.eval()
    model.eval()
    x = np.random.default_rng(0).random((2, 1, 28, 28), np.float32)
    with torch.no_grad():
        want = torch_model(torch.from_numpy(x)).numpy()
    with cnnlab.no_grad():
        got = model(cnnlab.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_pytorch_code_reads_like_the_tutorial():
    code = pytorch_code(models.create("convnet"))
    assert "self.conv1 = nn.Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in code
    assert "        return self.linear1(x)" in code
    assert pytorch_code(models.build_sequential(CONVNET_LAYERS)).count("nn.") > 8


def test_mosaic_lays_tiles_out_with_gaps():
    tiles = np.arange(6, dtype=np.float32).reshape(6, 1, 1) * np.ones((6, 2, 2), np.float32)
    pic = mosaic(tiles, cols=4, mode="all")
    assert pic.shape == (5, 11, 3)
    assert pic[0, 0, 0] == 0 and pic[0, 3, 0] == 51 and pic[3, 3, 0] == 255  # tile 0, tile 1, tile 5
    assert tuple(pic[2, 0]) == (52, 73, 94)  # a gap
    assert vector_tiles(np.arange(10)).shape == (1, 3, 4)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_pyside_calls_keep_none_alive(qtbot):
    """PySide6 6.12.0 lost a reference to None on every void call (the app aborted after
    ~20 s of training on Python 3.11); pyproject pins below it. This catches a regression."""
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(20_000):
        label.setText("x")
    assert sys.getrefcount(None) > before - 1_000


def test_run_announces_each_pause_to_its_callbacks():
    """cnnlab.train's on_pause hook, which tells the GUI when it may touch the live model."""
    events = []

    class Spy(Callback):
        def on_step_end(self, run, m):
            events.append(("step", m.step))

        def on_pause(self, run):
            events.append(("pause", run.step))

    def wait_for(event):
        deadline = time.monotonic() + 30
        while event not in events and time.monotonic() < deadline:
            time.sleep(0.01)

    run = tiny_run()
    run.callbacks.append(Spy())
    run.pause()
    run.step_once(2)
    thread = threading.Thread(target=run.run)
    thread.start()
    wait_for(("pause", 2))
    assert events == [("step", 1), ("step", 2), ("pause", 2)]  # once per wait, after the steps
    run.step_once(1)
    wait_for(("pause", 3))
    run.stop()
    thread.join(10)
    assert events[-2:] == [("step", 3), ("pause", 3)] and run.status == "stopped"
