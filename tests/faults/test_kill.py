"""Fault injection: `cnnlab train` killed (SIGKILL) or stopped (SIGTERM, Ctrl-C twice) at
random moments, during saves too, always leaves a checkpoint that loads, a run that
resumes, and no temporary files once the run goes on.

CNNLAB_TEST_SAVE_DELAY holds every save open for a moment between writing its temporary
and renaming it into place, so a signal can be aimed at a save under way."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlab.checkpoint import load_checkpoint, model_from_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

STEPS = 20   # 320 images, batch 32, 2 epochs


def train(out: Path, *more: str, delay: float = 0.2) -> subprocess.Popen:
    env = dict(os.environ, CNNLAB_QUIET="1", CNNLAB_TEST_SAVE_DELAY=str(delay))
    args = ["--limit", "320", "--epochs", "2", "--batch-size", "32", "--save-every", "0", "--quiet", *more]
    return subprocess.Popen([sys.executable, "-m", "cnnlab", "train", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for(condition, p: subprocess.Popen, timeout: float = 240.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert p.poll() is None, f"training ended early: {p.communicate()}"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def temporaries(out: Path) -> list[Path]:
    return list(out.glob(".*.tmp"))


def saving(out: Path):
    return lambda: bool(list(out.glob(".checkpoint.npz.*.tmp")))


def check_loads(out: Path, killed: bool = False) -> dict:
    ckpt = load_checkpoint(out / "checkpoint.npz")
    model_from_checkpoint(ckpt)
    saved = len(json.loads((out / "metrics.json").read_text())["steps"])
    # the metrics belong to the checkpoint beside them; a SIGKILL between the two renames
    # leaves them one save behind (the checkpoint holds the whole history too)
    assert saved == ckpt["step"] or (killed and saved < ckpt["step"])
    assert ckpt["history"]["steps"][-1]["step"] == ckpt["step"]
    return ckpt


def resume_to_the_end(out: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--resume", str(out), "--quiet"],
                       capture_output=True, text=True, env=dict(os.environ, CNNLAB_QUIET="1"), timeout=300)
    assert r.returncode == 0, r.stderr
    assert not temporaries(out)
    steps = json.loads((out / "metrics.json").read_text())["steps"]
    assert [s["step"] for s in steps] == list(range(1, STEPS + 1))


def test_sigkill_at_random_moments_and_during_a_save(tmp_path):
    rng = random.Random(os.environ.get("CNNLAB_FAULT_SEED", "14"))
    for trial in range(3):
        out = tmp_path / f"run{trial}"
        p = train(out)
        wait_for(lambda: (out / "checkpoint.npz").exists(), p)
        if trial == 0:
            wait_for(saving(out), p)          # in the middle of a save
        else:
            time.sleep(rng.uniform(0.0, 2.0))   # anywhere
        p.kill()
        p.communicate()
        ckpt = check_loads(out, killed=True)
        assert 1 <= ckpt["step"] <= STEPS
        if trial == 0:
            assert temporaries(out)   # killed mid-save: its temporary stays until the run goes on
    resume_to_the_end(tmp_path / "run0")


@pytest.mark.parametrize("during_save", [True, False])
def test_sigterm_stops_saves_and_exits_143(tmp_path, during_save):
    out = tmp_path / "run"
    p = train(out)
    wait_for(lambda: (out / "checkpoint.npz").exists(), p)
    if during_save:
        wait_for(saving(out), p)
    else:
        time.sleep(random.Random(7).uniform(0.0, 1.0))
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=240)
    assert p.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert not temporaries(out)
    steps = int(re.search(r"stopped after (\d+) steps", stdout).group(1))
    assert check_loads(out)["step"] == steps
    if during_save:
        resume_to_the_end(out)


def test_a_second_ctrl_c_during_the_save_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    p = train(out, delay=0.5)
    wait_for(lambda: (out / "checkpoint.npz").exists(), p)
    wait_for(saving(out), p)
    p.send_signal(signal.SIGINT)
    time.sleep(0.05)
    p.send_signal(signal.SIGINT)   # while the same save is still held open
    stdout, stderr = p.communicate(timeout=240)
    assert p.returncode == 130, stderr
    assert "aborted" in stderr and "Traceback" not in stderr
    assert not temporaries(out)
    check_loads(out)
