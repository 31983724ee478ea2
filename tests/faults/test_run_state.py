"""What a run keeps when things go wrong, in-process: the divergence guard (weights, batch-norm
statistics, optimizer state), a loss that runs away while finite, the epoch's running sums
across a mid-epoch resume, saves that fail (disk full, read-only folder) and signals held
back during a save."""
from __future__ import annotations

import errno
import math
import os
import signal

import numpy as np
import pytest

import cnnlab
from cnnlab import checkpoint, nn, optim
from cnnlab.data import ArrayDataset, DataLoader
from cnnlab.divergence import RunawayRule
from cnnlab.train import Callback, Run, TrainingDiverged, evaluate, fit


def bars(n: int, seed: int = 0) -> ArrayDataset:
    """Learnable toy images: a bright bar in one of four rows (the class)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = (rng.random((n, 1, 12, 12)) * 60).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 0, 1 + 3 * c:3 + 3 * c, 2:10] = 255
    return ArrayDataset(x, y, ["a", "b", "c", "d"])


def bn_model() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 4))


def poisoned(data: ArrayDataset, index: int) -> ArrayDataset:
    """The images as floats, with a NaN pixel in image `index`: the forward pass of its batch
    poisons batch-norm's running statistics."""
    images = data.images.astype(np.float32) / 255
    images[index, 0, 0, 0] = np.nan
    return ArrayDataset(images, data.targets, data.classes)


def state(model, opt) -> dict[str, np.ndarray]:
    out = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"opt.{i}.{k}"] = np.array(v.numpy() if hasattr(v, "numpy") else v)
    return out


def test_nan_guard_restores_buffers_and_optimizer_state():
    cnnlab.manual_seed(0)
    data = bars(64)
    model = bn_model()
    opt = optim.Adam(model.parameters(), 1e-2)
    seen = {}

    class Keep(Callback):
        def on_step_end(self, run, m):
            seen[m.step] = state(model, opt)

    run = Run(model, DataLoader(poisoned(data, 32), 16), opt, epochs=1, callbacks=[Keep()])   # the third batch
    with pytest.raises(TrainingDiverged, match="batch-norm statistics and optimizer state"):
        run.run()
    # everything is as it was after step 1 (the state step 2 started from, whose loss was finite):
    # the running mean and variance too, which step 3's forward pass had turned to NaN
    after = state(model, opt)
    assert after.keys() == seen[1].keys() and any(k.endswith("running_var") for k in after)
    for k, v in after.items():
        assert np.array_equal(v, seen[1][k]), k
    r = evaluate(model, DataLoader(data, 32))   # finite: the NaN statistics are gone
    assert math.isfinite(r.loss) and 0 <= r.accuracy <= 1


def test_nan_on_the_first_step_puts_back_the_starting_state():
    cnnlab.manual_seed(0)
    data = bars(32)
    model = bn_model()
    opt = optim.SGD(model.parameters(), 0.1, momentum=0.9)
    start = state(model, opt)
    run = Run(model, DataLoader(poisoned(data, 0), 16), opt, epochs=1)
    with pytest.raises(TrainingDiverged, match="step 1"):
        run.run()
    assert all(np.array_equal(v, start[k]) for k, v in state(model, opt).items())


def test_a_loss_that_runs_away_while_finite_stops_the_run():
    cnnlab.manual_seed(0)
    model = bn_model()

    class Exploding(nn.Module):   # a loss that grows a million times after step 4
        calls = 0

        def forward(self, out, y):
            self.calls += 1
            loss = nn.CrossEntropyLoss()(out, y)
            return loss * 1e6 if self.calls > 4 else loss

    run = Run(model, DataLoader(bars(128), 4), optim.SGD(model.parameters(), 1e-9), Exploding(), epochs=1)
    run.runaway = RunawayRule(factor=1e3, patience=5)
    with pytest.raises(TrainingDiverged, match="1000 times its starting value\\) for 5 steps"):
        run.run()
    assert run.status == "diverged" and run.step == 8   # steps 5..8 high, the fifth high one stops it
    # a loss that stays near its start never trips it
    healthy = Run(bn_model(), DataLoader(bars(128), 4), optim.SGD(model.parameters(), 1e-3), epochs=1)
    healthy.runaway = RunawayRule(factor=1e3, patience=2)
    healthy.run()
    assert healthy.status == "finished"


def test_mid_epoch_resume_reports_the_whole_epoch(tmp_path):
    data = bars(96)

    def setup():
        cnnlab.manual_seed(3)
        model = bn_model()
        return model, DataLoader(data, 16, shuffle=True, seed=5), optim.Adam(model.parameters(), 1e-2)

    model, loader, opt = setup()
    full = fit(model, loader, opt, epochs=2).epochs

    class StopAt(Callback):
        def on_step_end(self, run, m):
            if m.step == 9:   # the middle of epoch 2 (6 batches an epoch)
                run.stop()

    model, loader, opt = setup()
    run = Run(model, loader, opt, epochs=2, callbacks=[StopAt()])
    run.run()
    checkpoint.save_checkpoint(tmp_path / "ck.npz", run)
    resumed = checkpoint.resume(tmp_path / "ck.npz", DataLoader(data, 16, shuffle=True, seed=5), epochs=2,
                                model=bn_model())
    resumed.run()
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert resumed.history.epochs[1][key] == full[1][key], key
    assert resumed.history.epochs[1]["seconds"] > 0


def small_run(tmp_path) -> Run:
    cnnlab.manual_seed(0)
    model = bn_model()
    run = Run(model, DataLoader(bars(32), 16), optim.Adam(model.parameters(), 1e-2), epochs=1)
    run.run()
    return run


def fail_with(err: int):
    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))
    return fail


@pytest.mark.parametrize("where, err", [("numpy.savez", errno.ENOSPC), ("tempfile.mkstemp", errno.EROFS),
                                        ("os.fsync", errno.EIO)])
def test_a_failed_save_keeps_the_old_files_and_says_so_in_one_line(tmp_path, monkeypatch, where, err):
    folder = tmp_path / "run"
    run = small_run(tmp_path)
    checkpoint.save_run(folder, run)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    run.epochs = 2
    run.run()   # more to save
    module, name = where.rsplit(".", 1)
    monkeypatch.setattr(__import__(module), name, fail_with(err))
    with pytest.raises(checkpoint.SaveError) as info:
        checkpoint.save_run(folder, run)
    monkeypatch.undo()
    message = str(info.value)
    assert "\n" not in message and os.strerror(err) in message and "files saved before are kept" in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before   # nothing new, no temporaries
    assert checkpoint.load_checkpoint(folder / "checkpoint.npz")["epoch"] == 1


def test_a_failed_text_write_leaves_no_hidden_file(tmp_path):
    from cnnlab.serialization import write_atomically

    def write(fh):
        fh.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        write_atomically(tmp_path / "metrics.json", write)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_removed_at_the_next_save(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    stale = [folder / ".checkpoint.npz.abc123.tmp", folder / ".metrics.json.x.tmp"]
    fresh = folder / ".steps.csv.new.tmp"
    for p in (*stale, fresh):
        p.write_bytes(b"partial")
    old = os.stat(stale[0]).st_mtime - 3600
    for p in stale:
        os.utime(p, (old, old))
    checkpoint.save_run(folder, small_run(tmp_path))
    assert not any(p.exists() for p in stale)
    assert fresh.exists()   # a temporary written just now may be another save's, under way
    checkpoint.remove_temporaries(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.npz", "epochs.csv", "metrics.json", "steps.csv"]


def test_signals_wait_until_the_save_is_in_place(tmp_path):
    folder = tmp_path / "run"
    run = small_run(tmp_path)
    real = checkpoint.save

    def save_then_interrupt(obj, fh):
        real(obj, fh)
        os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C between the write and the rename

    checkpoint.save = save_then_interrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            checkpoint.save_run(folder, run)
    finally:
        checkpoint.save = real
    assert checkpoint.load_checkpoint(folder / "checkpoint.npz")["step"] == run.step
    assert not list(folder.glob(".*.tmp"))


def test_run_files_get_the_mode_of_other_new_files(tmp_path):
    folder = tmp_path / "run"
    checkpoint.save_run(folder, small_run(tmp_path))
    (folder / "plain.txt").write_text("x")   # what open() gives under this umask
    want = os.stat(folder / "plain.txt").st_mode & 0o777
    for name in ("checkpoint.npz", "metrics.json", "steps.csv", "epochs.csv"):
        assert os.stat(folder / name).st_mode & 0o777 == want, name
