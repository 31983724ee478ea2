"""Every misuse of the command line is one line on stderr and exit status 2, never a
traceback, and loses nothing: an existing run is not replaced, a resumed run refuses
settings it cannot change, a finished run is left alone."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.assets import sample_image


def cnnlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, CNNLAB_QUIET="1"), timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("misuse") / "run"
    r = cnnlab("train", "--limit", "64", "--batch-size", "32", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def one_line_exit_2(r: subprocess.CompletedProcess, message: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert message in r.stderr, r.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "modern", "--model-arg", "width=abc"], "--model-arg width expects int"),
    (["train", "--model-arg", "depth=3"], "convnet takes no argument 'depth'"),
    (["train", "--momentum", "-1"], "--momentum must be >= 0"),
    (["train", "--weight-decay", "-1"], "--weight-decay must be >= 0"),
    (["train", "--lr", "inf"], "--lr must be > 0 and finite"),
    (["train", "--lr", "nan"], "--lr must be > 0 and finite"),
    (["train", "--save-every", "-5"], "--save-every must be >= 0"),
])
def test_bad_settings(args, message, tmp_path):
    one_line_exit_2(cnnlab(*args, "--out", str(tmp_path / "never")), message)
    assert not (tmp_path / "never").exists()


def test_out_naming_a_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    one_line_exit_2(cnnlab("train", "--out", str(f)), "is a file")
    assert f.read_text() == "mine"


def test_out_on_an_existing_run_refuses_unless_overwrite(run_dir):
    before = (run_dir / "checkpoint.npz").read_bytes()
    one_line_exit_2(cnnlab("train", "--limit", "32", "--out", str(run_dir)), f"--resume {run_dir}")
    assert (run_dir / "checkpoint.npz").read_bytes() == before


def test_resume_refuses_what_it_cannot_change_and_records_what_happened(run_dir, tmp_path):
    r = cnnlab("train", "--resume", str(run_dir), "--epochs", "2", "--optimizer", "sgd", "--data", "shapes")
    one_line_exit_2(r, "--data shapes (the run has mnist-sample); --optimizer sgd (the run has adam) cannot change")
    # the same values as the run's are no change; --lr applies from the next step
    more = tmp_path / "more"
    r = cnnlab("train", "--resume", str(run_dir), "--epochs", "2", "--optimizer", "adam", "--limit", "64",
               "--lr", "5e-4", "--out", str(more), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "learning rate 0.0005 from now on" in r.stdout
    steps = json.loads((more / "metrics.json").read_text())["steps"]
    assert [s["lr"] for s in steps[2:]] == [5e-4, 5e-4]   # the cosine had ended: its last rate, rescaled
    config = json.loads((more / "config.json").read_text())
    assert (config["lr"], config["optimizer"], config["epochs"], config["data"]) == (5e-4, "adam", 2, "mnist-sample")


def test_resuming_a_finished_run_does_nothing(run_dir):
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    r = cnnlab("train", "--resume", str(run_dir))
    assert r.returncode == 0, r.stderr
    assert "is finished: 1 of 1 epochs done" in r.stdout and "--epochs" in r.stdout
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


@pytest.mark.parametrize("args, message", [
    (["evaluate", "{run}", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["evaluate", "{run}", "--split", "nope"], "invalid choice"),
    (["predict", "{run}", str(sample_image("mnist_7.png")), "--top", "0"], "--top must be >= 1"),
    (["train", "--resume", "{run}/steps.csv"], "steps.csv"),
])
def test_bad_evaluate_and_predict_arguments(run_dir, args, message):
    r = cnnlab(*[a.replace("{run}", str(run_dir)) for a in args])
    if message == "invalid choice":   # argparse's own: usage and the error, still exit 2, no traceback
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    else:
        one_line_exit_2(r, message)


def test_evaluate_a_folder_uses_all_of_it(run_dir, tmp_path):
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    for digit in range(10):
        (tmp_path / "digits" / str(digit)).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(tmp_path / "digits" / str(digit) / f"{i}.png")
    r = cnnlab("evaluate", str(run_dir), "--data", str(tmp_path / "digits"))
    assert r.returncode == 0, r.stderr
    assert "(all, 30 images)" in r.stdout
    r = cnnlab("evaluate", str(run_dir), "--data", str(tmp_path / "digits"), "--split", "val")
    assert r.returncode == 0 and "(val, 6 images)" in r.stdout


def test_root_is_accepted(run_dir, tmp_path):
    r = cnnlab("evaluate", str(run_dir), "--root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    r = cnnlab("train", "--limit", "32", "--root", str(tmp_path), "--out", str(tmp_path / "r"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r" / "config.json").read_text())["root"] == str(tmp_path)


def test_disk_full_while_training_is_one_line_and_keeps_the_last_checkpoint(run_dir, tmp_path, monkeypatch, capsys):
    import errno
    import shutil

    import numpy

    from cnnlab.cli import main

    run = tmp_path / "copy"
    shutil.copytree(run_dir, run)
    before = (run / "checkpoint.npz").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setenv("CNNLAB_QUIET", "1")
    monkeypatch.setattr(numpy, "savez", full)
    status = main(["train", "--resume", str(run), "--epochs", "2", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip() == (f"cnnlab train: error: cannot save the run in {run}: No space left on device; "
                           f"the files saved before are kept")
    assert (run / "checkpoint.npz").read_bytes() == before
    assert not list(run.glob(".*.tmp"))
